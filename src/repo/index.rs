//! Index objects: where each chunk lives (pack, offset, length). Stored signed and encrypted.
//!
//! Text, one pack header line followed by its chunk lines:
//! ```text
//! lifeboat-index 1
//! pack PACK_ID PACK_SIZE
//! CHUNK_ID OFFSET LENGTH RAW_LENGTH
//! ```

use super::ids::{ChunkId, PackId};
use std::fmt::Write as _;

pub const INDEX_HEADER: &str = "lifeboat-index 1";

/// One chunk inside a pack's plaintext: `length` compressed bytes at `offset`, `raw_length`
/// bytes once decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackEntry {
    pub chunk: ChunkId,
    pub offset: u64,
    pub length: u64,
    pub raw_length: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackInfo {
    pub id: PackId,
    /// Size of the stored (encrypted) pack object.
    pub size: u64,
    pub entries: Vec<PackEntry>,
}

pub fn serialize(packs: &[PackInfo]) -> Vec<u8> {
    let mut out = String::new();
    out.push_str(INDEX_HEADER);
    out.push('\n');
    for p in packs {
        let _ = writeln!(out, "pack {} {}", p.id, p.size);
        for e in &p.entries {
            let _ = writeln!(
                out,
                "{} {} {} {}",
                e.chunk, e.offset, e.length, e.raw_length
            );
        }
    }
    out.into_bytes()
}

pub fn parse(data: &[u8]) -> Result<Vec<PackInfo>, String> {
    let text = std::str::from_utf8(data).map_err(|_| "index is not text".to_string())?;
    let mut lines = text.lines();
    if lines.next() != Some(INDEX_HEADER) {
        return Err(format!("index does not start with '{INDEX_HEADER}'"));
    }
    let mut packs: Vec<PackInfo> = Vec::new();
    for (n, line) in lines.enumerate() {
        let bad = |what: &str| format!("index line {}: {what}: '{line}'", n + 2);
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.first() == Some(&"pack") {
            if fields.len() != 3 {
                return Err(bad("expected 'pack ID SIZE'"));
            }
            packs.push(PackInfo {
                id: fields[1].parse().map_err(|e: String| bad(&e))?,
                size: fields[2].parse().map_err(|_| bad("bad size"))?,
                entries: Vec::new(),
            });
        } else {
            let pack = packs
                .last_mut()
                .ok_or_else(|| bad("chunk before any pack"))?;
            if fields.len() != 4 {
                return Err(bad("expected 'CHUNK OFFSET LENGTH RAW_LENGTH'"));
            }
            let n = |i: usize| fields[i].parse::<u64>().map_err(|_| bad("bad number"));
            pack.entries.push(PackEntry {
                chunk: fields[0].parse().map_err(|e: String| bad(&e))?,
                offset: n(1)?,
                length: n(2)?,
                raw_length: n(3)?,
            });
        }
    }
    Ok(packs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let packs = vec![PackInfo {
            id: PackId::of(b"p"),
            size: 99,
            entries: vec![
                PackEntry {
                    chunk: ChunkId::of(b"a"),
                    offset: 0,
                    length: 10,
                    raw_length: 20,
                },
                PackEntry {
                    chunk: ChunkId::of(b"b"),
                    offset: 10,
                    length: 5,
                    raw_length: 5,
                },
            ],
        }];
        assert_eq!(parse(&serialize(&packs)).unwrap(), packs);
        assert!(parse(b"lifeboat-index 1\nabc 1 2 3\n").is_err());
    }
}
