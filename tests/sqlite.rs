//! SQLite sources: a database that another thread keeps writing to is backed up; the restored
//! file passes `PRAGMA integrity_check` and holds every row committed before the backup
//! started, with nothing torn. In WAL mode and in rollback-journal mode.

mod common;
use common::*;
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// What row `id` holds: checked on the way back, so a torn row shows.
fn payload(id: u64) -> String {
    format!("{id:08}-").repeat(1 + (id % 40) as usize)
}

/// A writer committing one row per transaction until told to stop; `committed` is the
/// highest id whose commit has returned.
struct Writer {
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(path: &Path, started: std::sync::mpsc::Sender<()>) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicU64::new(0));
        let (s, c, path) = (stop.clone(), committed.clone(), path.to_path_buf());
        let thread = std::thread::spawn(move || {
            let db = Connection::open(&path).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(60)).unwrap();
            let mut id = 0u64;
            while !s.load(Ordering::SeqCst) {
                id += 1;
                db.execute(
                    "INSERT INTO entries (id, payload) VALUES (?1, ?2)",
                    rusqlite::params![id, payload(id)],
                )
                .unwrap();
                c.store(id, Ordering::SeqCst);
                if id == 500 {
                    let _ = started.send(());
                }
            }
        });
        Writer {
            stop,
            committed,
            thread: Some(thread),
        }
    }

    fn committed(&self) -> u64 {
        self.committed.load(Ordering::SeqCst)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn backup_while_writing(journal_mode: &str) {
    let ws = Workspace::new();
    let dir = ws.path("app");
    std::fs::create_dir_all(&dir).unwrap();
    let db_path = dir.join("till.db");
    {
        let db = Connection::open(&db_path).unwrap();
        let mode: String = db
            .query_row(&format!("PRAGMA journal_mode = {journal_mode}"), [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(mode, journal_mode);
        db.execute_batch("CREATE TABLE entries (id INTEGER PRIMARY KEY, payload TEXT NOT NULL);")
            .unwrap();
    }
    let (started, running) = std::sync::mpsc::channel();
    let writer = Writer::start(&db_path, started);
    running
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the writer commits");
    let before = writer.committed();
    let out = ws
        .lifeboat(&["backup", "--json", "--repo"])
        .arg(ws.repo())
        .arg("--signing-key")
        .arg(ws.path("keys/svc.key"))
        .arg("--sqlite")
        .arg(&db_path)
        .ok()
        .json();
    let after = writer.committed();
    drop(writer);
    assert!(
        after > before,
        "the writer committed while the backup ran ({before} then {after})"
    );
    let details = &out["details"];
    assert_eq!(details["kind"], "sqlite", "{out}");
    assert_eq!(details["journal_mode"], journal_mode);
    assert_eq!(details["quick_check"], "ok");
    assert_eq!(out["files"], 1);

    let restored = ws.path("restored");
    ws.restore("latest", &restored, &[]).ok();
    let file = restored.join("till.db");
    let names: Vec<_> = std::fs::read_dir(&restored)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["till.db"], "one self-contained file");
    let db =
        Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let (count, max): (u64, u64) = db
        .query_row(
            "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM entries",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(count, max, "ids 1..={max} with none missing");
    assert!(
        max >= before,
        "every row committed before the backup ({before}) is there; the copy has {max}"
    );
    assert!(max <= after, "{max} rows, but only {after} were committed");
    let mut rows = db.prepare("SELECT id, payload FROM entries").unwrap();
    let torn = rows
        .query_map([], |r| Ok((r.get::<_, u64>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .filter(|(id, p)| *p != payload(*id))
        .count();
    assert_eq!(torn, 0);
    ws.check(true).ok();
}

#[test]
fn a_wal_database_is_copied_consistently_while_written() {
    backup_while_writing("wal");
}

#[test]
fn a_rollback_journal_database_is_copied_consistently_while_written() {
    backup_while_writing("delete");
}

#[test]
fn a_missing_or_broken_database_fails_and_commits_nothing() {
    let ws = Workspace::new();
    let backup = |path: &Path| {
        ws.lifeboat(&["backup", "--repo"])
            .arg(ws.repo())
            .arg("--signing-key")
            .arg(ws.path("keys/svc.key"))
            .arg("--sqlite")
            .arg(path)
            .run()
    };
    let missing = backup(&ws.path("nowhere/app.db"));
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("app.db does not exist"),
        "{}",
        missing.stderr
    );
    let junk = ws.path("junk.db");
    std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
    let broken = backup(&junk);
    assert_ne!(broken.code, 0);
    assert!(
        broken.stderr.contains("not a database"),
        "{}",
        broken.stderr
    );
    let listed = ws.snapshots_json();
    assert_eq!(listed, serde_json::json!([]));
}
