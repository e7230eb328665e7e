//! Integrity check of a repository.
//!
//! Without a key: every object's name is the SHA-256 of its bytes, the config and the
//! manifests carry good signatures (when the service certificate is known), and every pack a
//! manifest lists exists. With a recipient's key, also: every index decrypts and is signed by
//! the service, every chunk a tree needs is indexed, and with `read_data` every chunk of every
//! pack decrypts, decompresses and hashes to its id.

use super::crypto::{self, PublicCert, SecretKey};
use super::ids::{ChunkId, PackId};
use super::snapshot::{Manifest, Snapshot};
use super::tree::{ChunkRef, EntryKind};
use super::{check_name, ChunkMap, ChunkReader, Error, Repository, Result};
use crate::backend::{Backend, ObjectKind};
use crate::progress::Progress;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Problem {
    /// The object at fault, as a repository path (`data/ab/ab12…`).
    pub object: String,
    pub reason: String,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct CheckReport {
    pub objects: u64,
    pub bytes: u64,
    pub snapshots: u64,
    pub packs: u64,
    pub chunks_read: u64,
    /// Packs no snapshot needs (left by an interrupted writer: a backup, or a copy); harmless,
    /// removed by prune.
    pub unreferenced_packs: u64,
    /// What interrupted writers left outside the objects (`tmp/` files, multipart uploads),
    /// with their ages; harmless. Those of this host's ended writers go at the next write.
    pub leftovers: Vec<crate::backend::Leftover>,
    /// Objects listed, but gone when read: deleted meanwhile (a prune or forget elsewhere), or
    /// still listed by a store whose listings lag behind its deletions (a Garage node back from
    /// an outage). Not a problem in itself: one that a snapshot needs is reported as missing.
    pub vanished: Vec<String>,
    pub signatures_checked: bool,
    pub problems: Vec<Problem>,
}

pub struct CheckOptions<'a> {
    /// The trusted service certificate; without it signatures cannot be checked.
    pub signer: Option<PublicCert>,
    pub key: Option<&'a SecretKey>,
    pub read_data: bool,
}

impl CheckReport {
    fn problem(&mut self, object: impl Into<String>, reason: impl Into<String>) {
        self.problems.push(Problem {
            object: object.into(),
            reason: reason.into(),
        });
    }

    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }
}

fn problem_of(e: &Error) -> Problem {
    match e {
        Error::Corrupt { object, reason } => Problem {
            object: object.clone(),
            reason: reason.clone(),
        },
        Error::Backend(crate::backend::Error::NotFound { kind, name, .. }) => Problem {
            object: kind.path(name),
            reason: "missing".into(),
        },
        other => Problem {
            object: String::new(),
            reason: other.to_string(),
        },
    }
}

pub fn check(
    backend: Arc<dyn Backend>,
    options: &CheckOptions<'_>,
    progress: &dyn Progress,
) -> Result<CheckReport> {
    let mut report = CheckReport {
        signatures_checked: options.signer.is_some(),
        ..Default::default()
    };

    // 1. Every object's bytes against its name.
    let mut listing: BTreeMap<ObjectKind, Vec<(String, u64)>> = BTreeMap::new();
    let mut total = 0;
    for kind in ObjectKind::ALL {
        let objects = backend.list(kind)?;
        total += objects.iter().map(|(_, s)| *s).sum::<u64>();
        listing.insert(kind, objects);
    }
    progress.phase("hashing", Some(total), true);
    let mut present: HashMap<ObjectKind, HashSet<String>> = HashMap::new();
    let mut manifests: Vec<(String, Vec<u8>)> = Vec::new();
    for (kind, objects) in &listing {
        for (name, size) in objects {
            report.objects += 1;
            report.bytes += size;
            let object = kind.path(name);
            if name.len() != 64 || !name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                report.problem(object, "name is not a SHA-256 in lower-case hex");
                continue;
            }
            match backend.get(*kind, name) {
                Ok(data) => match check_name(*kind, name, &data) {
                    Ok(_) => {
                        present.entry(*kind).or_default().insert(name.clone());
                        if *kind == ObjectKind::Snapshot {
                            manifests.push((name.clone(), data));
                        }
                    }
                    Err(e) => report.problems.push(problem_of(&e)),
                },
                Err(e) if e.is_not_found() => report.vanished.push(object),
                Err(e) => report.problems.push(problem_of(&e.into())),
            }
            progress.advance(*size);
        }
    }
    report.packs = present
        .get(&ObjectKind::Data)
        .map(|s| s.len() as u64)
        .unwrap_or(0);
    report.leftovers = backend.leftovers()?;

    // 2. Config and manifests: signatures and references.
    let repo = match &options.signer {
        Some(signer) => match Repository::open(backend.clone(), signer.clone()) {
            Ok(r) => Some(r),
            Err(e) => {
                let p = problem_of(&e);
                report.problem(
                    if p.object.is_empty() {
                        "config/".into()
                    } else {
                        p.object
                    },
                    p.reason,
                );
                None
            }
        },
        None => None,
    };
    let mut snapshots: Vec<Snapshot> = Vec::new();
    let mut referenced: HashSet<PackId> = HashSet::new();
    let data_present = present.remove(&ObjectKind::Data).unwrap_or_default();
    for (name, data) in &manifests {
        let object = ObjectKind::Snapshot.path(name);
        let manifest: Manifest = match &repo {
            Some(r) => match r.load_snapshot(&name.parse().map_err(Error::Invalid)?) {
                Ok(s) => s.manifest,
                Err(e) => {
                    report.problem(object, problem_of(&e).reason);
                    continue;
                }
            },
            None => match crypto::unverified_content(data)
                .map_err(|e| e.to_string())
                .and_then(|c| serde_json::from_slice(&c).map_err(|e| e.to_string()))
            {
                Ok(m) => m,
                Err(e) => {
                    report.problem(object, format!("unreadable manifest: {e}"));
                    continue;
                }
            },
        };
        report.snapshots += 1;
        for pack in &manifest.packs {
            referenced.insert(*pack);
            if !data_present.contains(&pack.to_hex()) {
                report.problem(
                    ObjectKind::Data.path(&pack.to_hex()),
                    format!("missing, but snapshot {} needs it", &name[..8]),
                );
            }
        }
        snapshots.push(Snapshot {
            id: name.parse().map_err(Error::Invalid)?,
            manifest,
        });
    }
    report.unreferenced_packs = data_present
        .iter()
        .filter(|p| {
            p.parse::<PackId>()
                .map(|id| !referenced.contains(&id))
                .unwrap_or(false)
        })
        .count() as u64;

    // 3. With a key: indexes, trees, and optionally every chunk.
    if let (Some(key), Some(repo)) = (options.key, &repo) {
        repo.check_key(key)?;
        let mut map = ChunkMap::default();
        // Indexes may still list packs that prune removed; locations in packs that exist win.
        let present_packs: HashSet<PackId> =
            data_present.iter().filter_map(|p| p.parse().ok()).collect();
        let mut indexed: HashMap<PackId, Vec<super::index::PackEntry>> = HashMap::new();
        // Chunks stored in more than one pack that exists (a backup stores a chunk again rather
        // than reuse a pack prune has marked): every such pack, since the map keeps one.
        let mut duplicates: HashMap<ChunkId, Vec<PackId>> = HashMap::new();
        for id in repo.index_ids()? {
            match repo.load_index(key, &id) {
                Ok(packs) => {
                    for p in packs {
                        for e in &p.entries {
                            if present_packs.contains(&p.id) {
                                if let Some((old, _)) = map.chunks.get(&e.chunk) {
                                    if present_packs.contains(old) && *old != p.id {
                                        let all = duplicates.entry(e.chunk).or_default();
                                        if all.is_empty() {
                                            all.push(*old);
                                        }
                                        all.push(p.id);
                                    }
                                }
                            }
                            map.insert(e.chunk, p.id, *e, &present_packs);
                        }
                        indexed.entry(p.id).or_default().extend(p.entries);
                    }
                }
                Err(e) => {
                    let p = problem_of(&e);
                    report.problem(ObjectKind::Index.path(&id.to_hex()), p.reason);
                }
            }
        }
        check_trees(repo, key, &map, &duplicates, &snapshots, &mut report);
        if options.read_data {
            let sizes: HashMap<&str, u64> = listing
                .get(&ObjectKind::Data)
                .map(|l| l.iter().map(|(n, s)| (n.as_str(), *s)).collect())
                .unwrap_or_default();
            let pack_size = |p: &PackId| sizes.get(p.to_hex().as_str()).copied().unwrap_or(0);
            let total: u64 = indexed.keys().map(pack_size).sum();
            progress.phase("reading", Some(total), true);
            for (pack, entries) in &indexed {
                if !data_present.contains(&pack.to_hex()) {
                    continue;
                }
                match repo.read_pack(key, pack) {
                    Ok(plain) => {
                        for e in entries {
                            report.chunks_read += 1;
                            if let Err(err) = super::pack::extract(*pack, &plain, e) {
                                report.problems.push(problem_of(&err));
                            }
                        }
                    }
                    Err(e) => report.problems.push(problem_of(&e)),
                }
                progress.advance(pack_size(pack));
            }
        }
    }
    progress.finish();
    Ok(report)
}

fn check_trees(
    repo: &Repository,
    key: &SecretKey,
    map: &ChunkMap,
    duplicates: &HashMap<ChunkId, Vec<PackId>>,
    snapshots: &[Snapshot],
    report: &mut CheckReport,
) {
    let mut reader = ChunkReader::new(repo, key, map);
    for s in snapshots {
        let object = ObjectKind::Snapshot.path(&s.id.to_hex());
        let listed: HashSet<PackId> = s.manifest.packs.iter().copied().collect();
        // A missing pack was reported from the manifest's list already.
        let need = |chunk: &ChunkId, report: &mut CheckReport| match map.chunks.get(chunk) {
            None => report.problem(
                object.clone(),
                format!("needs chunk {chunk}, which no index lists"),
            ),
            Some((pack, _))
                if !listed.contains(pack)
                    && !duplicates
                        .get(chunk)
                        .is_some_and(|all| all.iter().any(|p| listed.contains(p))) =>
            {
                report.problem(
                    object.clone(),
                    format!("needs pack {pack} but does not list it"),
                )
            }
            Some(_) => {}
        };
        for c in &s.manifest.tree {
            need(c, report);
        }
        let tree = match repo.read_tree(&mut reader, s) {
            Ok(t) => t,
            Err(e) => {
                let p = problem_of(&e);
                report.problem(
                    if p.object.is_empty() {
                        object.clone()
                    } else {
                        p.object
                    },
                    p.reason,
                );
                continue;
            }
        };
        let mut seen = HashSet::new();
        for e in &tree {
            if let EntryKind::File { chunks } = &e.kind {
                for c in chunks {
                    if let ChunkRef::Data { id, .. } = c {
                        if seen.insert(*id) {
                            need(id, report);
                        }
                    }
                }
            }
        }
    }
}
