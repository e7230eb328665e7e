//! The catalog as the engine's memory: what prune, Object Lock and backup ask of it, answered
//! from the tables of one repository.

use super::{blob, hash_from, to_repo, Error, RepoCatalog};
use crate::repo::backup::{BackupCache, CachedFile, FileCache};
use crate::repo::ids::{ChunkId, Hash, IndexId, PackId, SnapshotId};
use crate::repo::index::{PackEntry, PackInfo};
use crate::repo::lock::LockMemory;
use crate::repo::prune::PruneMemory;
use crate::repo::{self, tree};
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use std::collections::HashMap;

impl PruneMemory for RepoCatalog<'_> {
    fn index_coverage(&mut self) -> repo::Result<HashMap<IndexId, Vec<PackId>>> {
        RepoCatalog::index_coverage(self).map_err(to_repo)
    }
    fn forget_packs(&mut self, packs: &[PackId]) -> repo::Result<()> {
        self.remove_packs(packs).map_err(to_repo)
    }
    fn forget_snapshot(&mut self, id: &SnapshotId) -> repo::Result<()> {
        self.remove_snapshot(id).map_err(to_repo)
    }
}

impl LockMemory for RepoCatalog<'_> {
    fn known_lock(&mut self, object: &str) -> repo::Result<Option<DateTime<Utc>>> {
        let r = self
            .conn()
            .query_row(
                "SELECT until FROM locks WHERE repo = ?1 AND object = ?2",
                params![self.repo, object],
                |r| r.get::<_, String>(0),
            )
            .optional();
        let until = self.sql(r).map_err(to_repo)?;
        // A date this program wrote; one it cannot read counts as unknown (the store is asked).
        Ok(until
            .and_then(|u| DateTime::parse_from_rfc3339(&u).ok())
            .map(|u| u.with_timezone(&Utc)))
    }

    fn record_lock(&mut self, object: &str, until: DateTime<Utc>) -> repo::Result<()> {
        let r = self.conn().execute(
            "INSERT OR REPLACE INTO locks (repo, object, until) VALUES (?1, ?2, ?3)",
            params![self.repo, object, until.to_rfc3339()],
        );
        self.sql(r).map_err(to_repo)?;
        Ok(())
    }
}

impl BackupCache for RepoCatalog<'_> {
    fn forget_missing(&mut self, packs: &[PackId]) -> repo::Result<()> {
        self.remove_packs(packs).map_err(to_repo)
    }

    fn indexes_of(&mut self, packs: &[PackId]) -> repo::Result<Vec<IndexId>> {
        let mut stmt = self
            .sql(
                self.catalog
                    .conn
                    .prepare_cached("SELECT index_id FROM packs WHERE repo = ?1 AND id = ?2"),
            )
            .map_err(to_repo)?;
        let mut out = std::collections::BTreeSet::new();
        for p in packs {
            let r = stmt
                .query_row(params![self.repo, blob(&p.0)], |r| {
                    r.get::<_, Option<Vec<u8>>>(0)
                })
                .optional();
            let found = r.map_err(|source| {
                to_repo(Error::Sql {
                    path: self.catalog.path.display().to_string(),
                    source,
                })
            })?;
            if let Some(Some(bytes)) = found {
                if let Ok(h) = <[u8; 32]>::try_from(bytes.as_slice()) {
                    out.insert(IndexId(Hash(h)));
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    fn chunk_pack(&mut self, chunk: &ChunkId) -> repo::Result<Option<PackId>> {
        let mut stmt = self
            .sql(
                self.conn()
                    .prepare_cached("SELECT pack FROM chunks WHERE repo = ?1 AND id = ?2"),
            )
            .map_err(to_repo)?;
        let r = stmt
            .query_row(params![self.repo, blob(&chunk.0)], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .optional();
        let found = self.sql(r).map_err(to_repo)?;
        found
            .map(|v| hash_from(v).map(PackId))
            .transpose()
            .map_err(|e| {
                to_repo(Error::Sql {
                    path: self.catalog.path.display().to_string(),
                    source: e,
                })
            })
    }

    fn record_pack(&mut self, pack: &PackInfo) -> repo::Result<()> {
        let repo_id = self.repo.clone();
        let wrap = &sql_to_repo(self.catalog.path.display().to_string());
        let tx = self.catalog.conn.transaction().map_err(wrap)?;
        tx.execute(
            "INSERT OR IGNORE INTO packs (repo, id, size) VALUES (?1, ?2, ?3)",
            params![repo_id, blob(&pack.id.0), pack.size as i64],
        )
        .map_err(wrap)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO chunks (repo, id, pack, offset, length, raw_length)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(wrap)?;
            for e in &pack.entries {
                stmt.execute(params![
                    repo_id,
                    blob(&e.chunk.0),
                    blob(&pack.id.0),
                    e.offset as i64,
                    e.length as i64,
                    e.raw_length as i64
                ])
                .map_err(wrap)?;
            }
        }
        tx.commit().map_err(wrap)
    }

    fn unindexed_packs(&mut self) -> repo::Result<Vec<PackInfo>> {
        let wrap = &sql_to_repo(self.catalog.path.display().to_string());
        let mut packs = Vec::new();
        let mut stmt = self
            .conn()
            .prepare("SELECT id, size FROM packs WHERE repo = ?1 AND index_id IS NULL ORDER BY id")
            .map_err(wrap)?;
        let rows = stmt
            .query_map([&self.repo], |r| {
                Ok((hash_from(r.get(0)?)?, r.get::<_, i64>(1)?))
            })
            .map_err(wrap)?;
        for row in rows {
            let (id, size) = row.map_err(wrap)?;
            packs.push(PackInfo {
                id: PackId(id),
                size: size as u64,
                entries: Vec::new(),
            });
        }
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT id, offset, length, raw_length FROM chunks WHERE repo = ?1 AND pack = ?2 ORDER BY offset",
            )
            .map_err(wrap)?;
        for p in &mut packs {
            let rows = stmt
                .query_map(params![self.repo, blob(&p.id.0)], |r| {
                    Ok(PackEntry {
                        chunk: ChunkId(hash_from(r.get(0)?)?),
                        offset: r.get::<_, i64>(1)? as u64,
                        length: r.get::<_, i64>(2)? as u64,
                        raw_length: r.get::<_, i64>(3)? as u64,
                    })
                })
                .map_err(wrap)?;
            for e in rows {
                p.entries.push(e.map_err(wrap)?);
            }
        }
        Ok(packs)
    }

    fn record_index(&mut self, index: &IndexId, packs: &[PackId]) -> repo::Result<()> {
        let repo_id = self.repo.clone();
        let wrap = &sql_to_repo(self.catalog.path.display().to_string());
        let tx = self.catalog.conn.transaction().map_err(wrap)?;
        for p in packs {
            tx.execute(
                "UPDATE packs SET index_id = ?3 WHERE repo = ?1 AND id = ?2",
                params![repo_id, blob(&p.0), blob(&index.0)],
            )
            .map_err(wrap)?;
        }
        tx.commit().map_err(wrap)
    }

    fn file_cache(&mut self, paths_key: &str) -> repo::Result<(Option<SnapshotId>, FileCache)> {
        let path = self.catalog.path.display().to_string();
        let r = self
            .conn()
            .query_row(
                "SELECT snapshot, data FROM file_cache WHERE repo = ?1 AND paths_key = ?2",
                params![self.repo, paths_key],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)),
            )
            .optional();
        let Some((snapshot, data)) = self.sql(r).map_err(to_repo)? else {
            return Ok((None, FileCache::new()));
        };
        let bad = |reason: String| {
            to_repo(Error::Other {
                path: path.clone(),
                reason,
            })
        };
        let text = zstd::stream::decode_all(data.as_slice())
            .map_err(|e| bad(format!("file cache does not decompress: {e}")))?;
        let text = String::from_utf8(text).map_err(|_| bad("file cache is not text".into()))?;
        let mut files = FileCache::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() != 6 {
                return Err(bad(format!("bad file cache line '{line}'")));
            }
            let num = |s: &str| {
                s.parse::<i128>()
                    .map_err(|_| bad(format!("bad number in '{line}'")))
            };
            files.insert(
                tree::unescape(f[0]).map_err(bad)?,
                CachedFile {
                    size: num(f[1])? as u64,
                    mtime_ns: num(f[2])?,
                    ctime_ns: num(f[3])?,
                    ino: num(f[4])? as u64,
                    chunks: tree::parse_chunks(f[5]).map_err(bad)?,
                },
            );
        }
        Ok((snapshot.parse().ok(), files))
    }
}

/// Turns a SQLite error on the catalog at `path` into the engine's error.
fn sql_to_repo(path: String) -> impl Fn(rusqlite::Error) -> repo::Error {
    move |source| {
        to_repo(Error::Sql {
            path: path.clone(),
            source,
        })
    }
}
