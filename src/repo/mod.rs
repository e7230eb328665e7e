//! The storage format: a content-addressed, deduplicated, encrypted and signed repository on a
//! `Backend`. See docs/FORMAT.md for the bytes. This module knows nothing of tenants or HTTP.
//!
//! Objects: `config/` (the signed repository config), `data/` (packs of compressed chunks,
//! encrypted), `index/` (where chunks live, signed and encrypted), `snapshots/` (signed
//! manifests, the commit points), and the coordination objects `sessions/` and `marks/` (see
//! `session`). Every object's name is the SHA-256 of its stored bytes.

pub mod backup;
pub mod check;
pub mod chunker;
pub mod copy;
pub mod crypto;
pub mod export;
pub mod hold;
pub mod ids;
pub mod index;
pub mod lock;
pub mod pack;
pub mod prune;
pub mod purge;
pub mod rekey;
pub mod repair;
pub mod restore;
pub mod session;
pub mod snapshot;
pub mod split;
pub mod transfer;
pub mod tree;

use crate::backend::{self, Backend, ObjectKind};
use chrono::{DateTime, Utc};
use chunker::ChunkerParams;
use crypto::{CryptoError, PublicCert, SecretKey};
use ids::{ChunkId, ConfigId, Hash, IndexId, PackId, SnapshotId};
use index::PackEntry;
use serde::{Deserialize, Serialize};
use snapshot::{Manifest, Snapshot, SNAPSHOT_FORMAT};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

pub const CONFIG_FORMAT: &str = "lifeboat-repository";
pub const FORMAT_VERSION: u32 = 1;
/// Packs are sealed once their plaintext reaches this size.
pub const DEFAULT_PACK_SIZE: u64 = 16 * 1024 * 1024;
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Backend(#[from] backend::Error),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("{object} is damaged: {reason}")]
    Corrupt { object: String, reason: String },
    #[error("{0}")]
    NotFound(String),
    #[error("key {key} cannot decrypt this repository; it is encrypted to: {}. Give the secret key of one of these recipients", recipients.join(", "))]
    WrongKey {
        key: String,
        recipients: Vec<String>,
    },
    #[error("{0}")]
    Untrusted(String),
    #[error("reading the source failed: {0}")]
    Source(String),
    #[error("{0}")]
    Target(String),
    #[error("{0}")]
    Invalid(String),
    /// The run stopped before its commit and may succeed if run again.
    #[error("{0}")]
    Interrupted(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Whether running the same command again may succeed without changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Backend(e) if e.is_transient())
            || matches!(self, Error::Interrupted(_))
    }

    /// Whether the error means the repository holds damaged or unauthentic data.
    pub fn is_integrity(&self) -> bool {
        matches!(self, Error::Corrupt { .. } | Error::Untrusted(_))
            || matches!(self, Error::Crypto(CryptoError::Signature(_)))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    pub fingerprint: String,
    /// The armored public certificate.
    pub cert: String,
}

/// The repository config, stored signed (not encrypted) as `config/<sha256>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    pub format: String,
    pub version: u32,
    /// Random, chosen at init; names the repository in the catalog and in pinned certificates.
    pub id: String,
    pub created: DateTime<Utc>,
    pub chunker: ChunkerParams,
    pub pack_size: u64,
    pub zstd_level: i32,
    pub recipients: Vec<Recipient>,
    /// Fingerprint of the service certificate that signs manifests and indexes.
    pub signer: String,
    /// 0 at init; one more each time the recipients change (`set_recipients`). Of two
    /// configs of one repository (a change cut off between storing the new and deleting the
    /// old), the higher revision is the repository's.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revision: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

pub struct Repository {
    backend: Arc<dyn Backend>,
    pub config: RepoConfig,
    pub config_id: ConfigId,
    recipients: Vec<PublicCert>,
    signer: PublicCert,
}

/// Checks that an object's stored bytes hash to its name.
pub fn check_name(kind: ObjectKind, name: &str, data: &[u8]) -> Result<Hash> {
    let hash = Hash::of(data);
    if hash.to_hex() != name {
        return Err(Error::Corrupt {
            object: kind.path(name),
            reason: format!("its SHA-256 is {hash}, not its name"),
        });
    }
    Ok(hash)
}

impl Repository {
    /// Creates a new repository on an empty backend.
    pub fn init(
        backend: Arc<dyn Backend>,
        recipients: &[PublicCert],
        signing: &SecretKey,
    ) -> Result<Repository> {
        if recipients.is_empty() {
            return Err(Error::Invalid(
                "a repository needs at least one recipient certificate".into(),
            ));
        }
        for r in recipients {
            r.check_encryption_capable()?;
        }
        let (min, avg, max) = ChunkerParams::default_params();
        let config = RepoConfig {
            format: CONFIG_FORMAT.into(),
            version: FORMAT_VERSION,
            id: hex::encode(rand::random::<[u8; 16]>()),
            created: Utc::now(),
            chunker: ChunkerParams {
                algorithm: chunker::FASTCDC_2020.into(),
                min,
                avg,
                max,
            },
            pack_size: DEFAULT_PACK_SIZE,
            zstd_level: DEFAULT_ZSTD_LEVEL,
            recipients: recipients
                .iter()
                .map(|c| {
                    Ok(Recipient {
                        fingerprint: c.fingerprint().to_hex(),
                        cert: c.armored()?,
                    })
                })
                .collect::<Result<_>>()?,
            signer: signing.fingerprint().to_hex(),
            revision: 0,
        };
        let json =
            serde_json::to_vec_pretty(&config).map_err(|e| Error::Internal(e.to_string()))?;
        let signed = crypto::sign(signing, &json)?;
        let id = ConfigId::of(&signed);
        backend.put(ObjectKind::Config, &id.to_hex(), signed)?;
        Ok(Repository {
            backend,
            config,
            config_id: id,
            recipients: recipients.to_vec(),
            signer: signing.public(),
        })
    }

    /// Whether a store holds nothing of a repository: no config and no other object, as after
    /// a creation cut off before its config was written. Such a store can be initialised.
    pub fn is_blank(backend: &dyn Backend) -> Result<bool> {
        for kind in ObjectKind::ALL {
            if !backend.list(kind)?.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn read_config_object(backend: &dyn Backend) -> Result<(String, Vec<u8>)> {
        let mut names = backend.list(ObjectKind::Config)?;
        match names.len() {
            0 => Err(Error::NotFound(format!(
                "{} holds no repository config; is it a Lifeboat repository? (create one with 'lifeboat init')",
                backend.location()
            ))),
            1 => {
                let (name, _) = names.remove(0);
                let data = backend.get(ObjectKind::Config, &name)?;
                check_name(ObjectKind::Config, &name, &data)?;
                Ok((name, data))
            }
            n => {
                // A change of recipients cut off between its two steps: the highest revision
                // of the repository's configs is the current one.
                let mut found = Vec::new();
                for (name, _) in names {
                    let data = backend.get(ObjectKind::Config, &name)?;
                    check_name(ObjectKind::Config, &name, &data)?;
                    let config = crypto::unverified_content(&data)
                        .ok()
                        .and_then(|c| serde_json::from_slice::<RepoConfig>(&c).ok());
                    if let Some(c) = config {
                        found.push((c.id, c.revision, name, data));
                    }
                }
                let ids: HashSet<&String> = found.iter().map(|f| &f.0).collect();
                if ids.len() != 1 || found.len() != n {
                    return Err(Error::Corrupt {
                        object: "config/".into(),
                        reason: format!(
                            "holds {n} configs that are not revisions of one repository"
                        ),
                    });
                }
                // Ties (two writers changing it at once) go to the higher name, the same
                // for every reader.
                found.sort_by(|a, b| (a.1, &a.2).cmp(&(b.1, &b.2)));
                let (_, _, name, data) = found.pop().ok_or_else(|| Error::Internal("config".into()))?;
                Ok((name, data))
            }
        }
    }

    /// Encrypts what is stored from now on to `recipients`: a new revision of the config
    /// is stored, then the old one deleted (until then readers take the higher revision).
    /// What is already stored stays as it is: `tenant rekey` re-encrypts it.
    pub fn set_recipients(&mut self, signing: &SecretKey, recipients: &[PublicCert]) -> Result<()> {
        self.check_signing_key(signing)?;
        for r in recipients {
            r.check_encryption_capable()?;
        }
        let mut config = self.config.clone();
        config.revision += 1;
        config.recipients = recipients
            .iter()
            .map(|c| {
                Ok(Recipient {
                    fingerprint: c.fingerprint().to_hex(),
                    cert: c.armored()?,
                })
            })
            .collect::<Result<_>>()?;
        let json =
            serde_json::to_vec_pretty(&config).map_err(|e| Error::Internal(e.to_string()))?;
        let signed = crypto::sign(signing, &json)?;
        let id = ConfigId::of(&signed);
        self.backend.put(ObjectKind::Config, &id.to_hex(), signed)?;
        let old = self.config_id.to_hex();
        if old != id.to_hex() {
            match self.backend.delete(ObjectKind::Config, &old) {
                // Object Lock keeps it until then; readers take the higher revision.
                Ok(())
                | Err(backend::Error::Locked { .. })
                | Err(backend::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.config = config;
        self.config_id = id;
        self.recipients = recipients.to_vec();
        Ok(())
    }

    /// Whether the repository is encrypted (from now on) to exactly `recipients`.
    pub fn encrypts_to(&self, recipients: &[PublicCert]) -> bool {
        let want: HashSet<String> = recipients
            .iter()
            .map(|c| c.fingerprint().to_hex())
            .collect();
        let have: HashSet<String> = self
            .config
            .recipients
            .iter()
            .map(|r| r.fingerprint.clone())
            .collect();
        want == have
    }

    /// Reads the repository id without checking any signature, to find the pinned certificate.
    pub fn peek_id(backend: &dyn Backend) -> Result<String> {
        let (name, data) = Self::read_config_object(backend)?;
        let content = crypto::unverified_content(&data).map_err(|e| Error::Corrupt {
            object: ObjectKind::Config.path(&name),
            reason: e.to_string(),
        })?;
        let config: RepoConfig = serde_json::from_slice(&content).map_err(|e| Error::Corrupt {
            object: ObjectKind::Config.path(&name),
            reason: e.to_string(),
        })?;
        Ok(config.id)
    }

    /// Opens a repository, authenticating its config against the trusted service certificate.
    pub fn open(backend: Arc<dyn Backend>, signer: PublicCert) -> Result<Repository> {
        let (name, data) = Self::read_config_object(backend.as_ref())?;
        let object = ObjectKind::Config.path(&name);
        let content = crypto::verify(&signer, &data).map_err(|e| {
            Error::Untrusted(format!(
                "{object} is not signed by the trusted service certificate {}: {e}",
                signer.describe()
            ))
        })?;
        let config: RepoConfig = serde_json::from_slice(&content).map_err(|e| Error::Corrupt {
            object: object.clone(),
            reason: e.to_string(),
        })?;
        if config.format != CONFIG_FORMAT || config.version != FORMAT_VERSION {
            return Err(Error::Invalid(format!(
                "{object}: format '{}' version {} is not supported by this Lifeboat (format '{CONFIG_FORMAT}' version {FORMAT_VERSION})",
                config.format, config.version
            )));
        }
        config.chunker.validate().map_err(|reason| Error::Corrupt {
            object: object.clone(),
            reason,
        })?;
        if config.signer != signer.fingerprint().to_hex() {
            return Err(Error::Untrusted(format!(
                "{object} names signer {}, but the trusted service certificate is {}",
                config.signer,
                signer.describe()
            )));
        }
        let recipients = config
            .recipients
            .iter()
            .map(|r| PublicCert::from_bytes(r.cert.as_bytes()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Corrupt {
                object: object.clone(),
                reason: e.to_string(),
            })?;
        let config_id = name
            .parse()
            .map_err(|e: String| Error::Corrupt { object, reason: e })?;
        Ok(Repository {
            backend,
            config,
            config_id,
            recipients,
            signer,
        })
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn recipients(&self) -> &[PublicCert] {
        &self.recipients
    }

    pub fn signer(&self) -> &PublicCert {
        &self.signer
    }

    /// Fails with the list of recipients if `key` cannot decrypt this repository.
    pub fn check_key(&self, key: &SecretKey) -> Result<()> {
        if self.recipients.iter().any(|r| key.can_decrypt_for(r)) {
            Ok(())
        } else {
            Err(Error::WrongKey {
                key: key.fingerprint().to_hex(),
                recipients: self.recipients.iter().map(|r| r.describe()).collect(),
            })
        }
    }

    /// Fails unless `key` is the service key this repository is signed with.
    pub fn check_signing_key(&self, key: &SecretKey) -> Result<()> {
        if key.fingerprint() == self.signer.fingerprint() {
            Ok(())
        } else {
            Err(Error::Untrusted(format!(
                "signing key {} is not this repository's service key {}",
                key.fingerprint(),
                self.signer.describe()
            )))
        }
    }

    /// Reads and authenticates one snapshot manifest.
    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        let name = id.to_hex();
        let data = self.backend.get(ObjectKind::Snapshot, &name)?;
        self.parse_snapshot(&name, &data)
    }

    fn parse_snapshot(&self, name: &str, data: &[u8]) -> Result<Snapshot> {
        let object = ObjectKind::Snapshot.path(name);
        let hash = check_name(ObjectKind::Snapshot, name, data)?;
        let content = crypto::verify(&self.signer, data).map_err(|e| {
            Error::Untrusted(format!(
                "{object} is not signed by {}: {e}",
                self.signer.describe()
            ))
        })?;
        let manifest: Manifest = serde_json::from_slice(&content).map_err(|e| Error::Corrupt {
            object: object.clone(),
            reason: e.to_string(),
        })?;
        if manifest.format != SNAPSHOT_FORMAT || manifest.repository != self.config.id {
            return Err(Error::Untrusted(format!(
                "{object} belongs to repository {}, not {}",
                manifest.repository, self.config.id
            )));
        }
        Ok(Snapshot {
            id: SnapshotId(hash),
            manifest,
        })
    }

    /// All snapshots, oldest first, and the objects that failed to load with why.
    pub fn snapshots(&self) -> Result<(Vec<Snapshot>, Vec<Error>)> {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (name, _) in self.backend.list(ObjectKind::Snapshot)? {
            match self.backend.get(ObjectKind::Snapshot, &name) {
                Ok(data) => match self.parse_snapshot(&name, &data) {
                    Ok(s) => good.push(s),
                    Err(e) => bad.push(e),
                },
                // Listed, then gone: forgotten meanwhile, or a listing that lags behind a
                // deletion (see `check::CheckReport::vanished`). There is nothing to read.
                Err(e) if e.is_not_found() => {}
                Err(e) => bad.push(e.into()),
            }
        }
        good.sort_by(|a: &Snapshot, b: &Snapshot| {
            a.manifest.time.cmp(&b.manifest.time).then(a.id.cmp(&b.id))
        });
        Ok((good, bad))
    }

    /// Finds a snapshot by `latest`, its full id, or a unique prefix of it.
    pub fn find_snapshot(&self, spec: &str) -> Result<Snapshot> {
        if spec.len() == 64 {
            if let Ok(id) = spec.parse::<SnapshotId>() {
                return self.load_snapshot(&id);
            }
        }
        if spec == "latest" {
            let (snapshots, _) = self.snapshots()?;
            return snapshots
                .into_iter()
                .last()
                .ok_or_else(|| Error::NotFound("the repository has no snapshots yet".into()));
        }
        if spec.len() < 4 || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Invalid(format!(
                "'{spec}' is neither 'latest' nor a snapshot id (at least 4 hex digits)"
            )));
        }
        let matches: Vec<String> = self
            .backend
            .list(ObjectKind::Snapshot)?
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| n.starts_with(&spec.to_ascii_lowercase()))
            .collect();
        match matches.as_slice() {
            [one] => self.load_snapshot(&one.parse().map_err(Error::Invalid)?),
            [] => Err(Error::NotFound(format!("no snapshot with id {spec}"))),
            _ => Err(Error::Invalid(format!(
                "snapshot id {spec} is ambiguous; give more digits"
            ))),
        }
    }

    /// Reads, authenticates and decrypts one index object.
    pub fn load_index(&self, key: &SecretKey, id: &IndexId) -> Result<Vec<index::PackInfo>> {
        let name = id.to_hex();
        let data = self.backend.get(ObjectKind::Index, &name)?;
        self.parse_index(key, &name, &data)
    }

    fn parse_index(
        &self,
        key: &SecretKey,
        name: &str,
        data: &[u8],
    ) -> Result<Vec<index::PackInfo>> {
        let object = ObjectKind::Index.path(name);
        check_name(ObjectKind::Index, name, data)?;
        let plain = crypto::decrypt(key, Some(&self.signer), data).map_err(|e| match e {
            CryptoError::Signature(s) => Error::Untrusted(format!("{object}: {s}")),
            other => Error::Corrupt {
                object: object.clone(),
                reason: other.to_string(),
            },
        })?;
        index::parse(&plain).map_err(|reason| Error::Corrupt { object, reason })
    }

    /// Every index id in the repository.
    pub fn index_ids(&self) -> Result<Vec<IndexId>> {
        self.backend
            .list(ObjectKind::Index)?
            .into_iter()
            .map(|(n, _)| {
                n.parse().map_err(|e: String| Error::Corrupt {
                    object: ObjectKind::Index.path(&n),
                    reason: e,
                })
            })
            .collect()
    }

    /// Loads every index into one map from chunk to location.
    /// Where each chunk is, from all indexes. A chunk may be listed in several packs, and an
    /// index may still list packs that prune removed: a location in `prefer` (the packs a
    /// snapshot's manifest names, which are known to exist) wins over any other.
    ///
    /// A damaged or unauthentic index is left out (and named in `damaged`): it blocks only
    /// what no other index lists, so one flipped byte does not stop every restore.
    pub fn chunk_map(&self, key: &SecretKey, prefer: &HashSet<PackId>) -> Result<ChunkMap> {
        let mut map = ChunkMap::default();
        for id in self.index_ids()? {
            let packs = match self.load_index(key, &id) {
                Ok(p) => p,
                Err(e) if e.is_integrity() => {
                    map.damaged.push(e.to_string());
                    continue;
                }
                // Removed by a prune since the listing: it covered only deleted packs.
                Err(Error::Backend(e)) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            for pack in packs {
                for e in pack.entries {
                    map.insert(e.chunk, pack.id, e, prefer);
                }
            }
        }
        Ok(map)
    }

    /// Fetches a pack, checks its name, and decrypts it.
    pub fn read_pack(&self, key: &SecretKey, id: &PackId) -> Result<Vec<u8>> {
        let name = id.to_hex();
        let data = match self.backend.get(ObjectKind::Data, &name) {
            Ok(d) => d,
            // Data the repository should hold and does not: damage, like a corrupt pack.
            Err(e) if e.is_not_found() => {
                return Err(Error::Corrupt {
                    object: ObjectKind::Data.path(&name),
                    reason: "missing: an index lists it, but the repository does not hold it"
                        .into(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        check_name(ObjectKind::Data, &name, &data)?;
        crypto::decrypt(key, None, &data).map_err(|e| Error::Corrupt {
            object: ObjectKind::Data.path(&name),
            reason: e.to_string(),
        })
    }

    /// Writes a signed and encrypted index for the given packs.
    pub fn write_index(&self, signing: &SecretKey, packs: &[index::PackInfo]) -> Result<IndexId> {
        let plain = index::serialize(packs);
        let sealed = crypto::sign_and_encrypt(signing, &self.recipients, &plain)?;
        let id = IndexId::of(&sealed);
        self.backend.put(ObjectKind::Index, &id.to_hex(), sealed)?;
        Ok(id)
    }

    /// Reads and parses a snapshot's tree.
    pub fn read_tree(
        &self,
        reader: &mut ChunkReader<'_>,
        snapshot: &Snapshot,
    ) -> Result<Vec<tree::Entry>> {
        let mut data = Vec::new();
        for id in &snapshot.manifest.tree {
            data.extend_from_slice(&reader.read(id)?);
        }
        tree::parse(&data).map_err(|reason| Error::Corrupt {
            object: format!("tree of snapshot {}", snapshot.id.short()),
            reason,
        })
    }
}

/// Where every chunk lives, from the indexes.
#[derive(Default)]
pub struct ChunkMap {
    pub chunks: HashMap<ChunkId, (PackId, PackEntry)>,
    /// The indexes left out as damaged or unauthentic, each with why.
    pub damaged: Vec<String>,
}

impl ChunkMap {
    /// Where `chunk` is, or the error that says it is in no readable index (and which
    /// damaged indexes it may be in).
    pub fn locate(&self, chunk: &ChunkId, needed_by: &str) -> Result<(PackId, PackEntry)> {
        if let Some(found) = self.chunks.get(chunk) {
            return Ok(*found);
        }
        let reason = if self.damaged.is_empty() {
            format!("needed by {needed_by} but listed in no index")
        } else {
            format!(
                "needed by {needed_by} but listed in no readable index; it may be in a \
                 damaged one ({}): 'lifeboat repair index' rebuilds indexes from the packs",
                self.damaged.join("; ")
            )
        };
        Err(Error::Corrupt {
            object: format!("chunk {chunk}"),
            reason,
        })
    }

    /// Records a location of `chunk`, keeping one in `prefer` over one outside it.
    pub fn insert(
        &mut self,
        chunk: ChunkId,
        pack: PackId,
        entry: PackEntry,
        prefer: &HashSet<PackId>,
    ) {
        match self.chunks.get(&chunk) {
            Some((old, _)) if prefer.contains(old) || !prefer.contains(&pack) => {}
            _ => {
                self.chunks.insert(chunk, (pack, entry));
            }
        }
    }
}

/// Reads chunks through a small cache of decrypted packs.
pub struct ChunkReader<'a> {
    repo: &'a Repository,
    key: &'a SecretKey,
    pub map: &'a ChunkMap,
    cache: VecDeque<(PackId, Arc<Vec<u8>>)>,
    capacity: usize,
}

impl<'a> ChunkReader<'a> {
    pub fn new(repo: &'a Repository, key: &'a SecretKey, map: &'a ChunkMap) -> Self {
        ChunkReader {
            repo,
            key,
            map,
            cache: VecDeque::new(),
            capacity: 4,
        }
    }

    pub fn pack(&mut self, id: &PackId) -> Result<Arc<Vec<u8>>> {
        if let Some(pos) = self.cache.iter().position(|(p, _)| p == id) {
            let hit = self
                .cache
                .remove(pos)
                .ok_or_else(|| Error::Internal("cache".into()))?;
            let data = hit.1.clone();
            self.cache.push_front(hit);
            return Ok(data);
        }
        let data = Arc::new(self.repo.read_pack(self.key, id)?);
        self.cache.push_front((*id, data.clone()));
        self.cache.truncate(self.capacity);
        Ok(data)
    }

    pub fn read(&mut self, id: &ChunkId) -> Result<Vec<u8>> {
        let (pack, entry) = self.map.locate(id, "the snapshot")?;
        let plain = self.pack(&pack)?;
        pack::extract(pack, &plain, &entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A location in a preferred pack (one a manifest names) is never replaced by another, and
    /// replaces one outside the preferred set, whatever the order the indexes are read in.
    #[test]
    fn chunk_map_prefers_packs_a_manifest_names() {
        let chunk = ChunkId::of(b"chunk");
        let (gone, live) = (PackId::of(b"pruned pack"), PackId::of(b"live pack"));
        let entry = |offset| PackEntry {
            chunk,
            offset,
            length: 5,
            raw_length: 5,
        };
        let prefer: HashSet<PackId> = [live].into();
        for order in [[(gone, 0), (live, 7)], [(live, 7), (gone, 0)]] {
            let mut map = ChunkMap::default();
            for (pack, offset) in order {
                map.insert(chunk, pack, entry(offset), &prefer);
            }
            assert_eq!(map.chunks[&chunk].0, live);
            assert_eq!(map.chunks[&chunk].1.offset, 7);
        }
        // Without a preference the first location read stays.
        let mut map = ChunkMap::default();
        map.insert(chunk, gone, entry(0), &HashSet::new());
        map.insert(chunk, live, entry(7), &HashSet::new());
        assert_eq!(map.chunks[&chunk].0, gone);
    }
}
