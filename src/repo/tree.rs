//! The tree of a snapshot: one line per file-system entry, stored like file data (chunked,
//! deduplicated, in packs). See docs/FORMAT.md, "Tree".
//!
//! The line format is deliberately plain so that a shell can read it:
//! `TYPE MODE UID GID MTIME SIZE PATH EXTRA`, fields separated by one space, every byte of PATH
//! and EXTRA outside `!`..`~` (and `\` itself) written as `\0ooo` (octal, as `printf %b` reads).

use super::ids::ChunkId;
use std::fmt::Write as _;

pub const TREE_HEADER: &str = "lifeboat-tree 1";

/// Where a piece of a file's content is: a stored chunk, or a run of zeros that is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkRef {
    Data { id: ChunkId, len: u64 },
    Zero { len: u64 },
}

impl ChunkRef {
    pub fn len(&self) -> u64 {
        match self {
            ChunkRef::Data { len, .. } | ChunkRef::Zero { len } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File {
        chunks: Vec<ChunkRef>,
    },
    Symlink {
        target: Vec<u8>,
    },
    /// A further name of a file stored earlier in the same tree, under `target`.
    Hardlink {
        target: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative path, `/`-separated, no leading `/`.
    pub path: Vec<u8>,
    pub kind: EntryKind,
    /// Permission bits including set-uid, set-gid and sticky (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_sec: i64,
    pub mtime_nsec: u32,
    /// Logical size (for files; 0 otherwise).
    pub size: u64,
}

impl Entry {
    pub fn type_char(&self) -> char {
        match self.kind {
            EntryKind::Dir => 'd',
            EntryKind::File { .. } => 'f',
            EntryKind::Symlink { .. } => 'l',
            EntryKind::Hardlink { .. } => 'h',
        }
    }

    pub fn path_lossy(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

pub fn escape(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        if (0x21..=0x7e).contains(&b) && b != b'\\' {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\0{b:03o}");
        }
    }
}

pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let digits = bytes
                .get(i + 1..i + 5)
                .ok_or_else(|| format!("truncated escape in '{s}'"))?;
            if digits[0] != b'0' || !digits[1..].iter().all(|d| (b'0'..=b'7').contains(d)) {
                return Err(format!("bad escape in '{s}'"));
            }
            let value = u32::from(digits[1] - b'0') * 64
                + u32::from(digits[2] - b'0') * 8
                + u32::from(digits[3] - b'0');
            out.push(u8::try_from(value).map_err(|_| format!("bad escape in '{s}'"))?);
            i += 5;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

impl Entry {
    pub fn to_line(&self) -> String {
        let mut line = String::with_capacity(96 + self.path.len());
        let _ = write!(
            line,
            "{} {:04o} {} {} {}.{:09} {} ",
            self.type_char(),
            self.mode,
            self.uid,
            self.gid,
            self.mtime_sec,
            self.mtime_nsec,
            self.size
        );
        escape(&self.path, &mut line);
        line.push(' ');
        match &self.kind {
            EntryKind::Dir => line.push('-'),
            EntryKind::File { chunks } if chunks.is_empty() => line.push('-'),
            EntryKind::File { chunks } => format_chunks(chunks, &mut line),
            EntryKind::Symlink { target } | EntryKind::Hardlink { target } => {
                escape(target, &mut line)
            }
        }
        line
    }

    pub fn parse_line(line: &str) -> Result<Entry, String> {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() != 8 {
            return Err(format!("expected 8 fields, found {}", fields.len()));
        }
        let num = |i: usize, what: &str| -> Result<u64, String> {
            fields[i]
                .parse::<u64>()
                .map_err(|_| format!("bad {what} '{}'", fields[i]))
        };
        let mode =
            u32::from_str_radix(fields[1], 8).map_err(|_| format!("bad mode '{}'", fields[1]))?;
        let uid = u32::try_from(num(2, "uid")?).map_err(|_| "uid out of range".to_string())?;
        let gid = u32::try_from(num(3, "gid")?).map_err(|_| "gid out of range".to_string())?;
        let (sec, nsec) = fields[4]
            .split_once('.')
            .ok_or_else(|| format!("bad mtime '{}'", fields[4]))?;
        let mtime_sec = sec
            .parse::<i64>()
            .map_err(|_| format!("bad mtime '{}'", fields[4]))?;
        let mtime_nsec = nsec
            .parse::<u32>()
            .map_err(|_| format!("bad mtime '{}'", fields[4]))?;
        let size = num(5, "size")?;
        let path = unescape(fields[6])?;
        let extra = fields[7];
        let kind = match fields[0] {
            "d" => EntryKind::Dir,
            "f" => {
                let chunks = parse_chunks(extra)?;
                let total: u64 = chunks.iter().map(|c| c.len()).sum();
                if total != size {
                    return Err(format!("chunks add up to {total} bytes, size says {size}"));
                }
                EntryKind::File { chunks }
            }
            "l" => EntryKind::Symlink {
                target: unescape(extra)?,
            },
            "h" => EntryKind::Hardlink {
                target: unescape(extra)?,
            },
            other => return Err(format!("unknown entry type '{other}'")),
        };
        Ok(Entry {
            path,
            kind,
            mode,
            uid,
            gid,
            mtime_sec,
            mtime_nsec,
            size,
        })
    }
}

/// Writes a file's chunk list: `ID:LEN` or `0:LEN` (zeros) joined by `,`; `-` when empty.
pub fn format_chunks(chunks: &[ChunkRef], out: &mut String) {
    if chunks.is_empty() {
        out.push('-');
    }
    for (i, c) in chunks.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match c {
            ChunkRef::Data { id, len } => {
                let _ = write!(out, "{}:{len}", id.to_hex());
            }
            ChunkRef::Zero { len } => {
                let _ = write!(out, "0:{len}");
            }
        }
    }
}

pub fn parse_chunks(text: &str) -> Result<Vec<ChunkRef>, String> {
    if text == "-" {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|part| {
            let (id, len) = part
                .split_once(':')
                .ok_or_else(|| format!("bad chunk reference '{part}'"))?;
            let len = len
                .parse::<u64>()
                .map_err(|_| format!("bad chunk length '{part}'"))?;
            Ok(if id == "0" {
                ChunkRef::Zero { len }
            } else {
                ChunkRef::Data {
                    id: id.parse()?,
                    len,
                }
            })
        })
        .collect()
}

/// Serializes a tree: the header line, then one line per entry, each ending in `\n`.
pub fn serialize(entries: &[Entry]) -> Vec<u8> {
    let mut out = String::with_capacity(64 + entries.len() * 128);
    out.push_str(TREE_HEADER);
    out.push('\n');
    for e in entries {
        out.push_str(&e.to_line());
        out.push('\n');
    }
    out.into_bytes()
}

pub fn parse(data: &[u8]) -> Result<Vec<Entry>, String> {
    let text = std::str::from_utf8(data).map_err(|_| "tree is not ASCII text".to_string())?;
    let mut lines = text.lines();
    if lines.next() != Some(TREE_HEADER) {
        return Err(format!("tree does not start with '{TREE_HEADER}'"));
    }
    lines
        .enumerate()
        .map(|(i, l)| Entry::parse_line(l).map_err(|e| format!("tree line {}: {e}", i + 2)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255u8).collect();
        let mut s = String::new();
        escape(&all, &mut s);
        assert!(!s.contains(' ') && !s.contains('\n'));
        assert_eq!(unescape(&s).unwrap(), all);
    }

    #[test]
    fn lines_round_trip() {
        let entries = vec![
            Entry {
                path: b"a dir".to_vec(),
                kind: EntryKind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime_sec: 1,
                mtime_nsec: 5,
                size: 0,
            },
            Entry {
                path: b"a dir/f\n\xff".to_vec(),
                kind: EntryKind::File {
                    chunks: vec![
                        ChunkRef::Data {
                            id: ChunkId::of(b"x"),
                            len: 7,
                        },
                        ChunkRef::Zero { len: 3 },
                    ],
                },
                mode: 0o4644,
                uid: 1000,
                gid: 1000,
                mtime_sec: -5,
                mtime_nsec: 999_999_999,
                size: 10,
            },
            Entry {
                path: b"l".to_vec(),
                kind: EntryKind::Symlink {
                    target: b"../x y".to_vec(),
                },
                mode: 0o777,
                uid: 1,
                gid: 2,
                mtime_sec: 3,
                mtime_nsec: 0,
                size: 0,
            },
            Entry {
                path: b"e".to_vec(),
                kind: EntryKind::File { chunks: vec![] },
                mode: 0o600,
                uid: 1,
                gid: 2,
                mtime_sec: 3,
                mtime_nsec: 0,
                size: 0,
            },
        ];
        assert_eq!(parse(&serialize(&entries)).unwrap(), entries);
    }

    #[test]
    fn size_must_match_chunks() {
        let line = format!("f 0644 0 0 1.000000000 11 x {}:10", ChunkId::of(b"x"));
        assert!(Entry::parse_line(&line).unwrap_err().contains("add up"));
    }
}
