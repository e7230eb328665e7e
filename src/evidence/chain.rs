//! Appending records to a tenant's chain, copying them into repositories, exporting them, and
//! verifying exported records offline.
//!
//! Exported layout (what an auditor gets): `TENANT/00000001.json` (the record's canonical bytes)
//! and `TENANT/00000001.json.asc` (its armored detached signature), one pair per record. Stock
//! tools check a signature with `sqv --keyring service.cert 00000001.json.asc 00000001.json`
//! or `gpg --verify 00000001.json.asc 00000001.json`.

use super::record::{sha256_hex, Record};
use crate::backend::{Backend, ObjectKind};
use crate::catalog::evidence::{Built, StoredEvidence};
use crate::catalog::Catalog;
use crate::repo::crypto::{self, PublicCert, SecretKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const ENVELOPE_FORMAT: &str = "lifeboat-evidence-object";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Catalog(#[from] crate::catalog::Error),
    #[error(transparent)]
    Backend(#[from] crate::backend::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// A record as stored in a repository: the record and its signature, in canonical JSON, under
/// the SHA-256 of these bytes.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    format: String,
    record: Record,
    signature: String,
}

/// The name of a signed record's object in the repositories.
pub fn object_name(record: &Record, signature: &str) -> std::result::Result<String, String> {
    Ok(sha256_hex(&envelope_bytes(record, signature)?))
}

fn envelope_bytes(record: &Record, signature: &str) -> std::result::Result<Vec<u8>, String> {
    serde_json_canonicalizer::to_vec(&Envelope {
        format: ENVELOPE_FORMAT.into(),
        record: record.clone(),
        signature: signature.into(),
    })
    .map_err(|e| e.to_string())
}

/// Appends `record` to its tenant's chain: sets its sequence and previous hash, signs it, and
/// stores it in the catalog. Copy it into repositories with `copy_to`.
pub fn append(
    catalog: &mut Catalog,
    signer: &SecretKey,
    mut record: Record,
) -> Result<StoredEvidence> {
    let tenant = record.tenant.clone();
    let stored = catalog.append_evidence(&tenant, &mut |sequence, previous| {
        record.sequence = sequence;
        record.previous = previous.map(str::to_string);
        let bytes = record.canonical()?;
        let signature = crypto::sign_detached(signer, &bytes).map_err(|e| e.to_string())?;
        let object = sha256_hex(&envelope_bytes(&record, &signature)?);
        Ok(Built {
            sha256: sha256_hex(&bytes),
            record: bytes,
            signature,
            object,
        })
    })?;
    Ok(stored)
}

/// Copies every record of the catalog that `backend` lacks into it; returns how many.
pub fn copy_to(catalog: &Catalog, backend: &dyn Backend, tenant: Option<&str>) -> Result<usize> {
    let present: std::collections::HashSet<String> = backend
        .list(ObjectKind::Evidence)?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let mut copied = 0;
    for e in catalog.evidence(tenant)? {
        if present.contains(&e.object) {
            continue;
        }
        let record = Record::parse(&e.record).map_err(Error::Invalid)?;
        let bytes = envelope_bytes(&record, &e.signature).map_err(Error::Invalid)?;
        backend.put(ObjectKind::Evidence, &e.object, bytes)?;
        copied += 1;
    }
    Ok(copied)
}

/// Copies `tenant`'s records from the repository `src` (a shared one of earlier versions)
/// into `dst`, byte for byte, each signature checked first; returns how many it copied.
pub fn copy_between(
    src: &dyn Backend,
    dst: &dyn Backend,
    tenant: &str,
    signer: &PublicCert,
) -> Result<usize> {
    let present: std::collections::HashSet<String> = dst
        .list(ObjectKind::Evidence)?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let mut copied = 0;
    for e in read_from(src, signer)? {
        if e.tenant != tenant || present.contains(&e.object) {
            continue;
        }
        let bytes = src.get(ObjectKind::Evidence, &e.object)?;
        dst.put(ObjectKind::Evidence, &e.object, bytes)?;
        copied += 1;
    }
    Ok(copied)
}

/// Reads the records a repository holds (for rebuilding a catalog), checking each signature.
pub fn read_from(backend: &dyn Backend, signer: &PublicCert) -> Result<Vec<StoredEvidence>> {
    let mut out = Vec::new();
    for (name, _) in backend.list(ObjectKind::Evidence)? {
        let bytes = backend.get(ObjectKind::Evidence, &name)?;
        let bad = |why: String| Error::Invalid(format!("evidence object {name}: {why}"));
        if sha256_hex(&bytes) != name {
            return Err(bad("its bytes do not hash to its name".into()));
        }
        let envelope: Envelope =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not an envelope: {e}")))?;
        let record = envelope.record.canonical().map_err(bad)?;
        crypto::verify_detached(signer, &record, envelope.signature.as_bytes())
            .map_err(|e| bad(e.to_string()))?;
        out.push(StoredEvidence {
            tenant: envelope.record.tenant.clone(),
            sequence: envelope.record.sequence,
            sha256: sha256_hex(&record),
            record,
            signature: envelope.signature,
            object: name,
        });
    }
    out.sort_by(|a, b| (&a.tenant, a.sequence).cmp(&(&b.tenant, b.sequence)));
    Ok(out)
}

/// The file name of record `sequence` in an export.
pub fn file_name(sequence: u64) -> String {
    format!("{sequence:08}.json")
}

/// Writes records into `dir/TENANT/`, each with its signature beside it. Returns the files
/// written.
pub fn export(records: &[StoredEvidence], dir: &Path) -> Result<usize> {
    let io = |path: &Path, source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    for e in records {
        if e.tenant.is_empty() || e.tenant.contains(['/', '\\', '\0']) || e.tenant.starts_with('.')
        {
            return Err(Error::Invalid(format!(
                "tenant name '{}' cannot be a folder name",
                e.tenant
            )));
        }
        let folder = dir.join(&e.tenant);
        std::fs::create_dir_all(&folder).map_err(|err| io(&folder, err))?;
        let file = folder.join(file_name(e.sequence));
        std::fs::write(&file, &e.record).map_err(|err| io(&file, err))?;
        let sig = signature_path(&file);
        std::fs::write(&sig, &e.signature).map_err(|err| io(&sig, err))?;
    }
    Ok(records.len())
}

fn signature_path(record: &Path) -> PathBuf {
    let mut name = record.as_os_str().to_owned();
    name.push(".asc");
    PathBuf::from(name)
}

/// What `verify` found in one tenant's folder.
#[derive(Debug, Clone, Serialize)]
pub struct ChainReport {
    pub tenant: String,
    pub folder: String,
    pub records: usize,
    pub first: u64,
    pub last: u64,
    /// SHA-256 of the newest record: compare it with the head a report states.
    pub head: String,
    /// The chain starts after record 1: earlier records were not exported.
    pub partial: bool,
}

/// The first thing wrong, with the file it is in.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub file: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub chains: Vec<ChainReport>,
    /// Empty when everything verified; otherwise the first bad record of each bad chain.
    pub problems: Vec<Problem>,
}

/// Verifies exported records: `path` is a tenant's folder, or a folder of tenant folders.
/// Every record must be canonical, signed by `cert`, numbered after its file, and chained to
/// the record before it with no gap.
pub fn verify(path: &Path, cert: &PublicCert) -> Result<Verified> {
    let io = |p: &Path, source| Error::Io {
        path: p.display().to_string(),
        source,
    };
    let mut folders = Vec::new();
    let has_records = |dir: &Path| -> Result<bool> {
        Ok(std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with(".json")))
    };
    if has_records(path)? {
        folders.push(path.to_path_buf());
    } else {
        let mut subs: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| io(path, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        subs.sort();
        for sub in subs {
            if has_records(&sub)? {
                folders.push(sub);
            }
        }
    }
    if folders.is_empty() {
        return Err(Error::Invalid(format!(
            "{} holds no evidence records (NNNNNNNN.json with NNNNNNNN.json.asc beside each)",
            path.display()
        )));
    }
    let mut verified = Verified {
        chains: Vec::new(),
        problems: Vec::new(),
    };
    for folder in folders {
        match verify_folder(&folder, cert)? {
            Ok(report) => verified.chains.push(report),
            Err(problem) => verified.problems.push(problem),
        }
    }
    Ok(verified)
}

fn verify_folder(
    folder: &Path,
    cert: &PublicCert,
) -> Result<std::result::Result<ChainReport, Problem>> {
    let io = |p: &Path, source| Error::Io {
        path: p.display().to_string(),
        source,
    };
    let mut files: Vec<(u64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(|e| io(folder, e))? {
        let path = entry.map_err(|e| io(folder, e))?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let problem = |message: String| Problem {
            file: path.display().to_string(),
            message,
        };
        match stem.parse::<u64>() {
            Ok(n) if stem.len() >= 8 => files.push((n, path.clone())),
            _ => {
                return Ok(Err(problem(format!(
                    "'{name}' is not a record's file name (NNNNNNNN.json)"
                ))))
            }
        }
    }
    files.sort();
    let mut previous: Option<(u64, String)> = None;
    let mut tenant: Option<String> = None;
    let first = files.first().map_or(0, |(n, _)| *n);
    for (number, path) in &files {
        let problem = |message: String| Problem {
            file: path.display().to_string(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
        let record = match Record::parse(&bytes) {
            Ok(r) => r,
            Err(e) => return Ok(Err(problem(format!("record {number}: {e}")))),
        };
        let sig_path = signature_path(path);
        let signature = match std::fs::read(&sig_path) {
            Ok(s) => s,
            Err(e) => {
                return Ok(Err(problem(format!(
                    "record {number}: its signature {} cannot be read: {e}",
                    sig_path.display()
                ))))
            }
        };
        if let Err(e) = crypto::verify_detached(cert, &bytes, &signature) {
            return Ok(Err(problem(format!(
                "record {number}: the signature does not verify ({e}): the record was changed \
                 or not signed by {}",
                cert.describe()
            ))));
        }
        if record.sequence != *number {
            return Ok(Err(problem(format!(
                "the file of record {number} holds record {}: records were renamed or reordered",
                record.sequence
            ))));
        }
        match &tenant {
            None => tenant = Some(record.tenant.clone()),
            Some(t) if *t != record.tenant => {
                return Ok(Err(problem(format!(
                    "record {number} is of tenant '{}', the chain of tenant '{t}'",
                    record.tenant
                ))))
            }
            Some(_) => {}
        }
        let hash = sha256_hex(&bytes);
        match &previous {
            None if record.sequence == 1 && record.previous.is_some() => {
                return Ok(Err(problem(
                    "record 1 names a previous record: the chain's start was altered".into(),
                )))
            }
            None => {}
            Some((before, _)) if record.sequence != before + 1 => {
                return Ok(Err(problem(format!(
                    "record {} is missing: the chain jumps from {before} to {}",
                    before + 1,
                    record.sequence
                ))))
            }
            Some((before, before_hash)) if record.previous.as_deref() != Some(before_hash) => {
                return Ok(Err(problem(format!(
                    "record {number} does not follow record {before}: it names previous {}, \
                     record {before} hashes to {before_hash}",
                    record.previous.as_deref().unwrap_or("none")
                ))))
            }
            Some(_) => {}
        }
        previous = Some((record.sequence, hash));
    }
    let (last, head) = previous.unwrap_or_default();
    Ok(Ok(ChainReport {
        tenant: tenant.unwrap_or_default(),
        folder: folder.display().to_string(),
        records: files.len(),
        first,
        last,
        head,
        partial: first > 1,
    }))
}
