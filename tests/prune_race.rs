//! Prune while backups run: the two phases (mark, then sweep once no writer may still use
//! the marked packs) lose nothing a running backup deduplicated against, on every backend.
//!
//! "Host B" is a second data directory with its own catalog, as a second machine writing to
//! the same repository would have. Its backups run in this process, so a test can halt one at
//! a chosen point and prune meanwhile.

mod common;
use common::*;
use lifeboat::catalog::Catalog;
use lifeboat::progress::Progress;
use lifeboat::repo::backup::{self, BackupOptions, BackupOutcome};
use lifeboat::repo::crypto::SecretKey;
use lifeboat::repo::session::{Session, SessionKind, Timing};
use lifeboat::repo::Repository;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

const MIB: usize = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum GateState {
    Open,
    Halted,
    Released,
}

/// A progress that halts the backup once it has read more than `after` bytes, until released.
struct Gate {
    after: u64,
    read: AtomicU64,
    state: Mutex<GateState>,
    changed: Condvar,
}

impl Gate {
    fn new(after: u64) -> Arc<Gate> {
        Arc::new(Gate {
            after,
            read: AtomicU64::new(0),
            state: Mutex::new(GateState::Open),
            changed: Condvar::new(),
        })
    }

    fn wait_halted(&self) {
        let mut s = self.state.lock().unwrap();
        while *s == GateState::Open {
            s = self.changed.wait(s).unwrap();
        }
    }

    fn release(&self) {
        *self.state.lock().unwrap() = GateState::Released;
        self.changed.notify_all();
    }
}

impl Progress for Gate {
    fn phase(&self, _: &str, _: Option<u64>, _: bool) {}
    fn advance(&self, n: u64) {
        if self.read.fetch_add(n, Ordering::SeqCst) < self.after {
            return;
        }
        let mut s = self.state.lock().unwrap();
        if *s == GateState::Open {
            *s = GateState::Halted;
            self.changed.notify_all();
        }
        while *s == GateState::Halted {
            s = self.changed.wait(s).unwrap();
        }
    }
    fn finish(&self) {}
}

/// Host B's catalog, rebuilt from the repository so it knows every stored chunk.
fn host_b(ws: &Workspace) -> PathBuf {
    let dir = ws.path("host-b");
    let mut rebuild = ws.lifeboat(&["catalog", "rebuild", "--repo"]);
    rebuild
        .arg(ws.repo())
        .arg("--signer")
        .arg(ws.path("keys/svc.cert"))
        .arg("--key")
        .arg(ws.key())
        .env("LIFEBOAT_DATA_DIR", &dir);
    // Host B's catalog is its own, embedded, whatever host A's is.
    rebuild.0.env_remove("LIFEBOAT_CATALOG");
    rebuild.ok();
    dir
}

/// Starts a backup of `src` on host B; it halts at `gate`.
fn start_backup(
    ws: &Workspace,
    data_dir: PathBuf,
    src: &Path,
    gate: Arc<Gate>,
) -> std::thread::JoinHandle<lifeboat::repo::Result<BackupOutcome>> {
    let signing = SecretKey::load(&ws.path("keys/svc.key")).unwrap();
    let repo = Repository::open(ws.backend(), signing.public()).unwrap();
    let options = BackupOptions {
        paths: vec![src.to_path_buf()],
        tags: Default::default(),
        hostname: "host-b".into(),
        threads: 1,
        retain_until: None,
        time: None,
    };
    std::thread::spawn(move || {
        let mut catalog = Catalog::open(&data_dir).unwrap();
        let mut cache = catalog.for_repo(&repo).unwrap();
        let outcome = backup::backup(&repo, &signing, &mut cache, &options, gate.as_ref())?;
        cache.record_snapshot(&outcome.snapshot).unwrap();
        Ok(outcome)
    })
}

fn assert_restores(ws: &Workspace, snapshot: &str, src: &Path) {
    assert_eq!(ws.check(true).code, 0, "{}", ws.check(true).stderr);
    let out = ws.path(&format!("restored-{snapshot}"));
    ws.restore(snapshot, &out, &[]).ok();
    let restored = out.join(src.strip_prefix("/").unwrap());
    assert_eq!(diff_trees(src, &restored), Vec::<String>::new());
}

/// Two files: `a.bin`, which host A backed up and then forgot, and `z.bin`, new. Returns the
/// source folder and the size of `a.bin`.
fn forgotten_data(ws: &Workspace) -> (PathBuf, u64) {
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("a.bin"), 3 * MIB, 1);
    let first = ws.backup(&[&src]);
    random_file(&src.join("z.bin"), 3 * MIB, 2);
    ws.signed_json(&["forget", first["id"].as_str().unwrap()]);
    (src, 3 * MIB as u64)
}

fn prune_waits_for_a_backup_that_reuses_marked_packs(store: Store) {
    let ws = Workspace::with(store);
    let (src, a_len) = forgotten_data(&ws);
    let b = host_b(&ws);
    let packs = ws.objects("data").len();

    // Host B deduplicates a.bin against the forgotten snapshot's packs, then halts.
    let gate = Gate::new(a_len);
    let backup = start_backup(&ws, b, &src, gate.clone());
    gate.wait_halted();

    // Host A prunes meanwhile: the packs are unreferenced, so they are marked, but the
    // running backup has not claimed that mark, so nothing is deleted.
    let first = ws.signed_json(&["prune"]);
    assert!(first["packs_marked"].as_u64().unwrap() >= 1, "{first}");
    assert_eq!(first["packs_deleted"], 0, "{first}");
    let waiting = first["waiting"].as_array().unwrap();
    assert_eq!(waiting.len(), 1, "{first}");
    assert!(
        waiting[0]["sessions"][0]
            .as_str()
            .unwrap()
            .starts_with("backup on"),
        "{first}"
    );
    assert_eq!(ws.objects("data").len(), packs);

    gate.release();
    let outcome = backup.join().unwrap().expect("the backup commits");
    let stats = &outcome.snapshot.manifest.stats;
    assert!(
        stats.bytes_added < a_len + 1024 * 1024,
        "a.bin was deduplicated: {} bytes added",
        stats.bytes_added
    );

    // The next prune finds the marked packs in use by the new snapshot, and keeps them.
    let second = ws.signed_json(&["prune"]);
    assert!(second["packs_spared"].as_u64().unwrap() >= 1, "{second}");
    assert_eq!(second["marks_swept"], 1, "{second}");
    assert_eq!(second["waiting"].as_array().unwrap().len(), 0, "{second}");
    assert_restores(&ws, &outcome.snapshot.id.to_hex(), &src);
}

fn a_backup_after_the_mark_stores_marked_data_again(store: Store) {
    let ws = Workspace::with(store);
    let (src, a_len) = forgotten_data(&ws);
    let b = host_b(&ws);

    // A copy into this repository is running (it claims no mark): prune can only mark.
    let copy = Session::begin(
        ws.backend(),
        "",
        SessionKind::Copy,
        Timing::default(),
        &lifeboat::progress::Silent,
    )
    .unwrap();
    let marked = ws.signed_json(&["prune"]);
    assert!(marked["packs_marked"].as_u64().unwrap() >= 1, "{marked}");
    assert_eq!(marked["packs_deleted"], 0, "{marked}");
    assert!(marked["waiting"][0]["sessions"][0]
        .as_str()
        .unwrap()
        .starts_with("copy on"));

    // Host B's backup starts after the mark: it does not reuse the marked packs, though its
    // catalog knows them, and stores a.bin again.
    let gate = Gate::new(u64::MAX);
    let outcome = start_backup(&ws, b, &src, gate).join().unwrap().unwrap();
    assert!(
        outcome.snapshot.manifest.stats.bytes_added >= 2 * a_len,
        "a.bin stored again beside z.bin: {} bytes added",
        outcome.snapshot.manifest.stats.bytes_added
    );

    // a.bin is now in two packs that exist, the marked one and the new one: the repository
    // is whole, and the snapshot names the pack it uses.
    let check = ws.check(true);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);

    // Once the copy ends, the marked packs go; the backup claimed the mark, so it does not
    // hold the sweep up.
    copy.end().unwrap();
    let swept = ws.signed_json(&["prune"]);
    assert!(swept["packs_deleted"].as_u64().unwrap() >= 1, "{swept}");
    assert_eq!(swept["packs_spared"], 0, "{swept}");
    assert_eq!(swept["waiting"].as_array().unwrap().len(), 0, "{swept}");
    assert_restores(&ws, &outcome.snapshot.id.to_hex(), &src);
}

fn a_stale_session_does_not_hold_prune_up(store: Store) {
    let ws = Workspace::with(store);
    let (_src, _) = forgotten_data(&ws);
    // A backup that crashed two hours ago left its session behind.
    let now = chrono::Utc::now();
    let record = lifeboat::repo::session::SessionRecord {
        format: lifeboat::repo::session::SESSION_FORMAT.into(),
        id: "crashed".into(),
        kind: SessionKind::Backup,
        host: "elsewhere".into(),
        pid: 4242,
        started: now - chrono::Duration::hours(3),
        refreshed: now - chrono::Duration::hours(2),
        claims: vec![],
    };
    let bytes = serde_json::to_vec(&record).unwrap();
    let name = lifeboat::repo::ids::Hash::of(&bytes).to_hex();
    let backend = ws.backend();
    backend
        .put(lifeboat::backend::ObjectKind::Session, &name, bytes)
        .unwrap();

    let report = ws.signed_json(&["prune"]);
    assert!(report["packs_deleted"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(report["stale_sessions"].as_array().unwrap().len(), 1);
    assert!(report["stale_sessions"][0]
        .as_str()
        .unwrap()
        .contains("elsewhere"));
    assert!(backend
        .list(lifeboat::backend::ObjectKind::Session)
        .unwrap()
        .is_empty());
    assert_eq!(ws.check(true).code, 0);
}

/// Backups and prunes in separate processes, over and over; each round forgets the newest
/// snapshot just as a backup that deduplicates against it starts. Whatever the interleaving,
/// every backup commits and the repository stays whole.
fn prune_racing_backups_loses_nothing(store: Store) {
    let ws = Workspace::with(store);
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("base.bin"), 2 * MIB, 100);
    let mut newest = ws.backup(&[&src])["id"].as_str().unwrap().to_string();
    for round in 0..12u64 {
        random_file(&src.join(format!("r{}.bin", round % 3)), MIB / 2, round);
        let mut backup = ws.lifeboat(&["backup", "--json", "--repo"]);
        backup
            .arg(ws.repo())
            .arg("--signing-key")
            .arg(ws.path("keys/svc.key"))
            .arg(&src);
        let running = backup
            .0
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        ws.signed_json(&["forget", &newest]);
        ws.signed_json(&["prune"]);
        let out = running.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let done: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        newest = done["id"].as_str().unwrap().to_string();
        let check = ws.check(true);
        assert_eq!(
            check.code, 0,
            "round {round}: {}{}",
            check.stdout, check.stderr
        );
    }
    // What the earlier rounds left marked goes once nothing runs.
    ws.signed_json(&["prune"]);
    assert!(ws.objects("marks").is_empty());
    assert_restores(&ws, &newest, &src);
}

on_every_backend!(
    prune_waits_for_a_backup_that_reuses_marked_packs,
    a_backup_after_the_mark_stores_marked_data_again,
    a_stale_session_does_not_hold_prune_up,
    prune_racing_backups_loses_nothing,
);
