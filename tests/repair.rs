//! Damage stays local: a damaged index blocks only the snapshots that need a chunk only it
//! lists, `repair index` rebuilds indexes from the packs, `repair snapshots` saves what
//! remains of a snapshot whose pack is gone, and missing or damaged data is exit 3
//! everywhere, naming the object's real path.

mod common;
use common::*;
use lifeboat::repo::crypto::SecretKey;
use lifeboat::repo::tree::{ChunkRef, EntryKind};
use lifeboat::repo::{ChunkReader, Repository};
use std::fs;
use std::path::{Path, PathBuf};

/// Two snapshots of unrelated data: (the id of each, the folder each came from).
fn two_snapshots(ws: &Workspace) -> [(String, PathBuf); 2] {
    let mut out = Vec::new();
    for (name, seed) in [("first", 1), ("second", 2)] {
        let src = ws.path(name);
        fs::create_dir_all(&src).unwrap();
        random_file(&src.join("data.bin"), 3 << 20, seed);
        fs::write(src.join("notes.txt"), format!("{name}\n")).unwrap();
        let id = ws.backup(&[&src])["id"].as_str().unwrap().to_string();
        out.push((id, src));
    }
    [out.remove(0), out.remove(0)]
}

fn restores_identically(ws: &Workspace, snapshot: &str, src: &Path, into: &str) -> Run {
    let out = ws.path(into);
    let run = ws.restore(snapshot, &out, &[]);
    if run.code == 0 {
        let diff = diff_trees(src, &out.join(src.strip_prefix("/").unwrap()));
        assert!(diff.is_empty(), "{diff:?}");
    }
    run
}

fn repair(ws: &Workspace, what: &str, extra: &[&str]) -> Run {
    ws.lifeboat(&["repair", what, "--repo"])
        .arg(ws.repo())
        .arg("--key")
        .arg(ws.key())
        .arg("--signing-key")
        .arg(ws.path("keys/svc.key"))
        .args(extra)
        .run()
}

/// The index objects, oldest first (each backup wrote one).
fn indexes(ws: &Workspace) -> Vec<PathBuf> {
    let mut all = ws.objects("index");
    all.sort_by_key(|p| fs::metadata(p).unwrap().modified().unwrap());
    all
}

#[test]
fn a_damaged_index_blocks_only_the_snapshots_that_need_it_until_repaired() {
    let ws = Workspace::new();
    let [(first, first_src), (second, second_src)] = two_snapshots(&ws);
    let index = indexes(&ws);
    assert_eq!(index.len(), 2, "one index per backup");
    // One flipped byte in the first backup's index.
    let mut bytes = fs::read(&index[0]).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    fs::write(&index[0], bytes).unwrap();

    // The second snapshot needs nothing of it: it restores, with a warning.
    let ok = restores_identically(&ws, &second, &second_src, "out-second");
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stderr.contains("left out"), "{}", ok.stderr);
    // The first needs chunks only that index lists: refused as damage, with what to do.
    let bad = restores_identically(&ws, &first, &first_src, "out-first");
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    assert!(bad.stderr.contains("repair index"), "{}", bad.stderr);
    assert_eq!(ws.check(true).code, 3);

    let fixed = repair(&ws, "index", &[]);
    assert_eq!(fixed.code, 0, "{}", fixed.stderr);
    assert!(
        fixed.stderr.contains("removed 1 damaged"),
        "{}",
        fixed.stderr
    );
    let ok = restores_identically(&ws, &first, &first_src, "first-again");
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    ws.check(true).ok();
}

#[test]
fn repair_index_rebuilds_every_index_from_the_packs() {
    let ws = Workspace::new();
    let snaps = two_snapshots(&ws);
    for i in indexes(&ws) {
        fs::remove_file(i).unwrap();
    }
    let bad = ws.restore(&snaps[0].0, &ws.path("none"), &[]);
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    // A dry run changes nothing.
    let dry = repair(&ws, "index", &["--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(indexes(&ws).is_empty());
    let fixed = repair(&ws, "index", &["--json"]);
    assert_eq!(fixed.code, 0, "{}", fixed.stderr);
    let report = fixed.json();
    assert_eq!(report["indexes_kept"], 0);
    assert!(report["packs_scanned"].as_u64().unwrap() >= 2, "{report}");
    assert_eq!(report["indexes_written"], 1);
    for (i, (id, src)) in snaps.iter().enumerate() {
        let run = restores_identically(&ws, id, src, &format!("out{i}"));
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    ws.check(true).ok();
    // And a backup after it still deduplicates against the catalog.
    let again = ws.backup(&[&snaps[0].1]);
    assert!(
        again["bytes_added"].as_u64().unwrap() < 64 * 1024,
        "{again}"
    );
}

/// The pack holding the data of `file` in `snapshot` that holds none of its tree.
fn data_pack_of(ws: &Workspace, snapshot: &str, file: &str) -> PathBuf {
    let signing = SecretKey::load(&ws.path("keys/svc.key")).unwrap();
    let key = SecretKey::load(&ws.key()).unwrap();
    let repo = Repository::open(ws.backend(), signing.public()).unwrap();
    let snap = repo.find_snapshot(snapshot).unwrap();
    let map = repo
        .chunk_map(&key, &snap.manifest.packs.iter().copied().collect())
        .unwrap();
    let tree_packs: Vec<_> = snap.manifest.tree.iter().map(|c| map.chunks[c].0).collect();
    let entries = repo
        .read_tree(&mut ChunkReader::new(&repo, &key, &map), &snap)
        .unwrap();
    let entry = entries
        .iter()
        .find(|e| e.path_lossy().ends_with(file))
        .unwrap();
    let EntryKind::File { chunks } = &entry.kind else {
        panic!("not a file")
    };
    for c in chunks {
        if let ChunkRef::Data { id, .. } = c {
            let pack = map.chunks[id].0;
            if !tree_packs.contains(&pack) {
                let hex = pack.to_hex();
                return ws.objects_root().join("data").join(&hex[..2]).join(hex);
            }
        }
    }
    panic!("every pack of {file} also holds the tree; use more data")
}

#[test]
fn repair_snapshots_saves_what_remains_after_a_pack_is_lost() {
    let ws = Workspace::new();
    let src = ws.path("share");
    fs::create_dir_all(&src).unwrap();
    // Enough for several packs: the big file's first pack holds none of the tree.
    random_file(&src.join("big.bin"), 40 << 20, 7);
    fs::write(src.join("small.txt"), "kept\n").unwrap();
    fs::create_dir_all(src.join("docs")).unwrap();
    fs::write(src.join("docs/contract.pdf"), "also kept\n").unwrap();
    let id = ws.backup(&[&src])["id"].as_str().unwrap().to_string();
    let pack = data_pack_of(&ws, &id, "big.bin");
    fs::remove_file(&pack).unwrap();
    let hex = pack.file_name().unwrap().to_string_lossy().into_owned();

    // A restore refuses it as damage, naming the pack's real path.
    let bad = ws.restore(&id, &ws.path("refused"), &[]);
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    assert!(
        bad.stderr.contains(&format!("data/{}/{hex}", &hex[..2])),
        "{}",
        bad.stderr
    );
    let check = ws.check(false);
    assert_eq!(check.code, 3, "{}", check.stderr);

    let dry = repair(&ws, "snapshots", &["--dry-run"]);
    assert_eq!(dry.code, 3, "{}", dry.stderr);
    assert!(
        dry.stderr.contains("would save what remains"),
        "{}",
        dry.stderr
    );
    assert_eq!(ws.objects("snapshots").len(), 1);

    let run = repair(&ws, "snapshots", &["--json"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["checked"], 1);
    let r = &report["repairs"][0];
    assert_eq!(r["snapshot"], id.as_str());
    let lost: Vec<&str> = r["lost"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert!(lost[0].ends_with("big.bin"));
    assert!(r["causes"][0].as_str().unwrap().contains(&hex), "{r}");
    let repaired = r["repaired"].as_str().unwrap().to_string();
    assert_eq!(r["forgotten"], false);

    // The repaired snapshot restores what remains; the original is still there.
    let list = ws.snapshots_json();
    let snaps = list.as_array().unwrap();
    assert_eq!(snaps.len(), 2, "{list}");
    let fixed = snaps.iter().find(|s| s["id"] == repaired.as_str()).unwrap();
    assert_eq!(fixed["tags"]["repaired-from"], id.as_str(), "{fixed}");
    let out = ws.path("saved");
    ws.restore(&repaired, &out, &[]).ok();
    let root = out.join(src.strip_prefix("/").unwrap());
    assert_eq!(
        fs::read_to_string(root.join("small.txt")).unwrap(),
        "kept\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("docs/contract.pdf")).unwrap(),
        "also kept\n"
    );
    assert!(!root.join("big.bin").exists());

    // With --forget the damaged original goes; after a prune the repository checks clean.
    let again = repair(&ws, "snapshots", &["--forget", &id[..12]]);
    assert_eq!(again.code, 3, "{}", again.stderr);
    assert!(
        again.stderr.contains("the original is forgotten"),
        "{}",
        again.stderr
    );
    ws.lifeboat(&["prune", "--repo"])
        .arg(ws.repo())
        .arg("--signing-key")
        .arg(ws.path("keys/svc.key"))
        .ok();
    ws.check(true).ok();
}
