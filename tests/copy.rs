//! `lifeboat copy`: local to S3 and back, S3 to S3; only missing packs travel; the copy is a
//! whole repository of its own; an unrelated destination is refused.

mod common;
use common::*;
use std::fs;

fn copy(ws: &Workspace, from: &str, to: &str, snapshots: &[&str]) -> serde_json::Value {
    let mut c = ws.lifeboat(&["copy", "--json", "--from", from, "--to", to]);
    c.args(snapshots);
    c.ok().json()
}

fn restore_from(ws: &Workspace, repo: &str, snapshot: &str, out: &std::path::Path) {
    ws.lifeboat(&["restore", "--repo", repo, snapshot, "--target"])
        .arg(out)
        .arg("--key")
        .arg(ws.key())
        .ok();
}

fn check(ws: &Workspace, repo: &str) {
    let run = ws
        .lifeboat(&["check", "--read-data", "--repo", repo, "--key"])
        .arg(ws.key())
        .ok();
    assert!(run.stderr.contains("no problems"), "{}", run.stderr);
}

#[test]
fn local_to_s3_and_back_sends_only_what_is_missing() {
    // The workspace repository is local; a second, S3 one is the second site.
    let mut ws = Workspace::with(Store::Local);
    let server = common::s3::S3Server::s3s_fs();
    server.create_bucket("second-site");
    ws.server = Some(server);
    let local = ws.path("repo").display().to_string();
    let remote = "s3://second-site/erp";

    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("db.dump"), 24 << 20, 1);
    let first = ws.backup_at(&local, &[&src]);
    let report = copy(&ws, &local, remote, &[]);
    assert_eq!(report["created"], true);
    assert_eq!(report["snapshots_copied"].as_array().unwrap().len(), 1);
    let packs_first = report["packs_copied"].as_u64().unwrap();
    assert!(packs_first >= 2, "{report}");

    // One more MiB changes: the second copy sends only the new packs.
    random_file(&src.join("new.log"), 1 << 20, 2);
    let second = ws.backup_at(&local, &[&src]);
    let report = copy(&ws, &local, remote, &[]);
    assert_eq!(report["created"], false);
    assert_eq!(report["snapshots_copied"].as_array().unwrap().len(), 1);
    assert_eq!(report["snapshots_present"].as_array().unwrap().len(), 1);
    assert_eq!(
        report["packs_copied"].as_u64().unwrap(),
        second["packs_added"].as_u64().unwrap(),
        "{report}"
    );
    assert!(
        report["bytes_copied"].as_u64().unwrap() < 4 << 20,
        "{report}"
    );
    // A copy with nothing new sends nothing.
    let report = copy(&ws, &local, remote, &[]);
    assert_eq!(report["snapshots_copied"].as_array().unwrap().len(), 0);
    assert_eq!(report["packs_copied"], 0);

    // The second site is a whole repository: listed, checked, restored on its own.
    check(&ws, remote);
    let list = ws
        .lifeboat(&["snapshots", "--json", "--repo", remote])
        .ok()
        .json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let out = ws.path("from-s3");
    restore_from(&ws, remote, first["id"].as_str().unwrap(), &out);
    assert_eq!(
        fs::read(out.join(src.strip_prefix("/").unwrap()).join("db.dump")).unwrap(),
        fs::read(src.join("db.dump")).unwrap()
    );

    // And back: S3 to a new local folder, one named snapshot.
    let back = ws.path("back").display().to_string();
    let id = second["id"].as_str().unwrap();
    let report = copy(&ws, remote, &back, &[&id[..10]]);
    assert_eq!(report["snapshots_copied"][0], id);
    check(&ws, &back);
    let out = ws.path("from-back");
    restore_from(&ws, &back, "latest", &out);
    let diffs = diff_trees(&src, &out.join(src.strip_prefix("/").unwrap()));
    assert!(diffs.is_empty(), "{diffs:#?}");
}

#[test]
fn s3_to_s3_and_an_unrelated_destination_is_refused() {
    let ws = Workspace::with(Store::S3);
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("a"), 5 << 20, 3);
    ws.backup(&[&src]);
    let (copy_at, _) = ws.sibling("copy");
    copy(&ws, &ws.repo(), &copy_at, &[]);
    check(&ws, &copy_at);

    // Another repository is not a copy of this one: refused, and left as it was.
    let (other, other_dir) = ws.sibling("other");
    ws.init_at(&other).ok();
    let before = fs::read_dir(other_dir.join("config")).unwrap().count();
    let run = ws
        .lifeboat(&["copy", "--from", &ws.repo(), "--to", &other])
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("holds another repository"),
        "{}",
        run.stderr
    );
    assert_eq!(
        fs::read_dir(other_dir.join("config")).unwrap().count(),
        before
    );
    assert!(
        !other_dir.join("snapshots").exists()
            || fs::read_dir(other_dir.join("snapshots")).unwrap().count() == 0
    );

    // A snapshot that does not exist is named.
    let run = ws
        .lifeboat(&["copy", "--from", &ws.repo(), "--to", &copy_at, "deadbeef"])
        .run();
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("deadbeef"), "{}", run.stderr);
}

#[test]
fn a_damaged_pack_is_not_copied() {
    let ws = Workspace::with(Store::Local);
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("a"), 3 << 20, 4);
    ws.backup(&[&src]);
    let pack = ws
        .objects("data")
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut data = fs::read(&pack).unwrap();
    data[100] ^= 1;
    fs::write(&pack, data).unwrap();
    let (to, to_dir) = ws.sibling("copy");
    let run = ws
        .lifeboat(&["copy", "--from", &ws.repo(), "--to", &to])
        .run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    let name = pack.file_name().unwrap().to_string_lossy().into_owned();
    assert!(run.stderr.contains(&name), "{}", run.stderr);
    // Nothing damaged arrived, and no snapshot points at missing data.
    assert!(!to_dir.join("data").join(&name[..2]).join(&name).exists());
    assert_eq!(fs::read_dir(to_dir.join("snapshots")).unwrap().count(), 0);
}
