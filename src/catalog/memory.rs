//! The catalog as the engine's memory: what prune, Object Lock and backup ask of it, answered
//! from the tables of one repository.

use super::db::Begin;
use super::{blob, hash_from, to_repo, Error, RepoCatalog};
use crate::args;
use crate::repo::backup::{BackupCache, CachedFile, FileCache};
use crate::repo::ids::{ChunkId, Hash, IndexId, PackId, SnapshotId};
use crate::repo::index::{PackEntry, PackInfo};
use crate::repo::lock::LockMemory;
use crate::repo::prune::PruneMemory;
use crate::repo::{self, tree};
use chrono::{DateTime, Utc};
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
        let r = self.db().query_opt(
            "SELECT until FROM locks WHERE repo = ?1 AND object = ?2",
            args![&self.repo, object],
        );
        let until = match self.sql(r).map_err(to_repo)? {
            Some(row) => Some(self.sql(row.get::<String>(0)).map_err(to_repo)?),
            None => None,
        };
        // A date this program wrote; one it cannot read counts as unknown (the store is asked).
        Ok(until
            .and_then(|u| DateTime::parse_from_rfc3339(&u).ok())
            .map(|u| u.with_timezone(&Utc)))
    }

    fn record_lock(&mut self, object: &str, until: DateTime<Utc>) -> repo::Result<()> {
        let r = self.db().execute(
            "INSERT INTO locks (repo, object, until) VALUES (?1, ?2, ?3)
             ON CONFLICT (repo, object) DO UPDATE SET until = excluded.until",
            args![&self.repo, object, until.to_rfc3339()],
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
        let mut out = std::collections::BTreeSet::new();
        for p in packs {
            let r = self.db().query_opt(
                "SELECT index_id FROM packs WHERE repo = ?1 AND id = ?2",
                args![&self.repo, blob(&p.0)],
            );
            let found = match self.sql(r).map_err(to_repo)? {
                Some(row) => self.sql(row.get::<Option<Vec<u8>>>(0)).map_err(to_repo)?,
                None => None,
            };
            if let Some(bytes) = found {
                if let Ok(h) = <[u8; 32]>::try_from(bytes.as_slice()) {
                    out.insert(IndexId(Hash(h)));
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    fn chunk_pack(&mut self, chunk: &ChunkId) -> repo::Result<Option<PackId>> {
        let r = self.db().query_opt(
            "SELECT pack FROM chunks WHERE repo = ?1 AND id = ?2 LIMIT 1",
            args![&self.repo, blob(&chunk.0)],
        );
        let Some(row) = self.sql(r).map_err(to_repo)? else {
            return Ok(None);
        };
        let pack = row.get::<Vec<u8>>(0).and_then(hash_from);
        self.sql(pack).map(|h| Some(PackId(h))).map_err(to_repo)
    }

    fn record_pack(&mut self, pack: &PackInfo) -> repo::Result<()> {
        let db = self.db();
        let stored = (|| {
            let tx = db.begin(Begin::Deferred)?;
            tx.execute(
                "INSERT INTO packs (repo, id, size) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                args![&self.repo, blob(&pack.id.0), pack.size],
            )?;
            for e in &pack.entries {
                tx.execute(
                    "INSERT INTO chunks (repo, id, pack, \"offset\", length, raw_length)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (repo, id, pack) DO NOTHING",
                    args![
                        &self.repo,
                        blob(&e.chunk.0),
                        blob(&pack.id.0),
                        e.offset,
                        e.length,
                        e.raw_length
                    ],
                )?;
            }
            tx.commit()
        })();
        self.sql(stored).map_err(to_repo)
    }

    fn unindexed_packs(&mut self) -> repo::Result<Vec<PackInfo>> {
        let r = self.db().query_map(
            "SELECT id, size FROM packs WHERE repo = ?1 AND index_id IS NULL ORDER BY id",
            args![&self.repo],
            |r| {
                Ok(PackInfo {
                    id: PackId(hash_from(r.get(0)?)?),
                    size: r.get(1)?,
                    entries: Vec::new(),
                })
            },
        );
        let mut packs = self.sql(r).map_err(to_repo)?;
        for p in &mut packs {
            let r = self.db().query_map(
                "SELECT id, \"offset\", length, raw_length FROM chunks
                 WHERE repo = ?1 AND pack = ?2 ORDER BY \"offset\"",
                args![&self.repo, blob(&p.id.0)],
                |r| {
                    Ok(PackEntry {
                        chunk: ChunkId(hash_from(r.get(0)?)?),
                        offset: r.get(1)?,
                        length: r.get(2)?,
                        raw_length: r.get(3)?,
                    })
                },
            );
            p.entries = self.sql(r).map_err(to_repo)?;
        }
        Ok(packs)
    }

    fn record_index(&mut self, index: &IndexId, packs: &[PackId]) -> repo::Result<()> {
        let db = self.db();
        let recorded = (|| {
            let tx = db.begin(Begin::Deferred)?;
            for p in packs {
                tx.execute(
                    "UPDATE packs SET index_id = ?3 WHERE repo = ?1 AND id = ?2",
                    args![&self.repo, blob(&p.0), blob(&index.0)],
                )?;
            }
            tx.commit()
        })();
        self.sql(recorded).map_err(to_repo)
    }

    fn file_cache(&mut self, paths_key: &str) -> repo::Result<(Option<SnapshotId>, FileCache)> {
        let path = self.catalog.name.clone();
        let r = self.db().query_opt(
            "SELECT snapshot, data FROM file_cache WHERE repo = ?1 AND paths_key = ?2",
            args![&self.repo, paths_key],
        );
        let Some(row) = self.sql(r).map_err(to_repo)? else {
            return Ok((None, FileCache::new()));
        };
        let read = row
            .get::<String>(0)
            .and_then(|s| Ok((s, row.get::<Vec<u8>>(1)?)));
        let (snapshot, data) = self.sql(read).map_err(to_repo)?;
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
