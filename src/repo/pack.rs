//! Packs: many compressed chunks in one object, encrypted as one OpenPGP message.
//!
//! The plaintext of a pack is the concatenation of one zstd frame per chunk; the index says
//! where each frame starts. Because zstd frames are self-delimiting and a chunk's id is the
//! SHA-256 of its plaintext, a lost index can be rebuilt from the packs alone.

use super::crypto::{self, PublicCert};
use super::ids::{ChunkId, PackId};
use super::index::{PackEntry, PackInfo};
use super::Error;

pub struct PackBuilder {
    plain: Vec<u8>,
    entries: Vec<PackEntry>,
    level: i32,
}

impl PackBuilder {
    pub fn new(level: i32, capacity: usize) -> PackBuilder {
        PackBuilder {
            plain: Vec::with_capacity(capacity),
            entries: Vec::new(),
            level,
        }
    }

    /// Compresses and appends one chunk.
    pub fn add(&mut self, id: ChunkId, raw: &[u8]) -> Result<(), Error> {
        let offset = self.plain.len() as u64;
        let compressed = zstd::bulk::compress(raw, self.level)
            .map_err(|e| Error::Internal(format!("zstd compression failed: {e}")))?;
        self.plain.extend_from_slice(&compressed);
        self.entries.push(PackEntry {
            chunk: id,
            offset,
            length: compressed.len() as u64,
            raw_length: raw.len() as u64,
        });
        Ok(())
    }

    pub fn plain_len(&self) -> usize {
        self.plain.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Encrypts the pack. Returns its description and the bytes to store under its id.
    pub fn seal(self, recipients: &[PublicCert]) -> Result<(PackInfo, Vec<u8>), Error> {
        let sealed = crypto::encrypt(recipients, &self.plain)?;
        let info = PackInfo {
            id: PackId::of(&sealed),
            size: sealed.len() as u64,
            entries: self.entries,
        };
        Ok((info, sealed))
    }
}

/// Takes one chunk out of a decrypted pack, decompresses it and checks that it is the chunk
/// the index says it is.
pub fn extract(pack: PackId, plain: &[u8], entry: &PackEntry) -> Result<Vec<u8>, Error> {
    let bad = |why: String| Error::Corrupt {
        object: crate::backend::ObjectKind::Data.path(&pack.to_hex()),
        reason: format!("chunk {}: {why}", entry.chunk),
    };
    let start = usize::try_from(entry.offset).map_err(|_| bad("offset out of range".into()))?;
    let end = start
        .checked_add(usize::try_from(entry.length).map_err(|_| bad("length out of range".into()))?)
        .filter(|&e| e <= plain.len())
        .ok_or_else(|| bad(format!("lies beyond the pack's {} bytes", plain.len())))?;
    let capacity =
        usize::try_from(entry.raw_length).map_err(|_| bad("size out of range".into()))?;
    let raw = zstd::bulk::decompress(&plain[start..end], capacity.max(1))
        .map_err(|e| bad(format!("does not decompress: {e}")))?;
    if raw.len() as u64 != entry.raw_length || ChunkId::of(&raw) != entry.chunk {
        return Err(bad("content does not match its id".into()));
    }
    Ok(raw)
}
