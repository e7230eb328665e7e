//! Backup and restore of a tree with every kind of entry, compared with the original.

mod common;
use common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A tree with files, empty files and folders, symlinks (also dangling), hard links, odd
/// names, permissions, owners, nanosecond mtimes, a sparse file, a socket and a pipe.
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("docs/deep/er")).unwrap();
    fs::create_dir_all(root.join("empty dir")).unwrap();
    fs::write(root.join("docs/readme.txt"), "hello lifeboat\n").unwrap();
    fs::write(root.join("docs/deep/er/notes.md"), "x".repeat(10_000)).unwrap();
    random_file(&root.join("docs/blob.bin"), 5 * 1024 * 1024 + 17, 7);
    fs::write(root.join("empty"), "").unwrap();
    fs::write(root.join("name with spaces\nand newline\u{e9}"), "odd").unwrap();
    std::os::unix::fs::symlink("docs/readme.txt", root.join("link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", root.join("dangling")).unwrap();
    fs::hard_link(root.join("docs/readme.txt"), root.join("hardlink")).unwrap();
    fs::hard_link(
        root.join("docs/readme.txt"),
        root.join("docs/deep/hardlink2"),
    )
    .unwrap();
    // Sparse: 64 MiB with 3 bytes of data in the middle and at the end.
    let sparse = fs::File::create(root.join("sparse.img")).unwrap();
    sparse.set_len(64 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&sparse, b"mid", 30 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&sparse, b"z", (64 << 20) - 1).unwrap();
    fs::set_permissions(
        root.join("docs/readme.txt"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    fs::set_permissions(root.join("docs/deep"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::set_permissions(root.join("empty"), fs::Permissions::from_mode(0o4755)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(root.join("docs/deep/er/notes.md"), Some(1234), Some(5678))
            .unwrap();
        std::os::unix::fs::lchown(root.join("link"), Some(42), Some(43)).unwrap();
    }
    let _ = std::os::unix::net::UnixListener::bind(root.join("socket"));
    let fifo = std::ffi::CString::new(root.join("pipe").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    // Mtimes last (creating children changes a folder's mtime), with nanoseconds.
    for (i, p) in [
        "docs/readme.txt",
        "docs/blob.bin",
        "empty",
        "sparse.img",
        "docs/deep/er",
        "docs/deep",
        "docs",
        "empty dir",
    ]
    .iter()
    .enumerate()
    {
        let t = filetime::FileTime::from_unix_time(
            1_600_000_000 + i as i64 * 1000,
            123_456_789 + i as u32,
        );
        filetime::set_file_times(root.join(p), t, t).unwrap();
    }
    let t = filetime::FileTime::from_unix_time(1_500_000_000, 5);
    filetime::set_symlink_file_times(root.join("link"), t, t).unwrap();
}

fn round_trip_keeps_every_kind_of_entry(store: Store) {
    let ws = Workspace::with(store);
    let src = ws.path("src");
    make_tree(&src);
    let result = ws.backup(&[&src]);
    let warnings = result["warnings"].to_string();
    assert!(
        warnings.contains("socket") && warnings.contains("named pipe"),
        "{warnings}"
    );
    assert_eq!(result["files"], 8, "{result}");

    let out = ws.path("out");
    ws.restore("latest", &out, &[]).ok();
    // Socket and pipe are not restored: remove them from the original before comparing.
    fs::remove_file(src.join("socket")).unwrap();
    fs::remove_file(src.join("pipe")).unwrap();
    let t = filetime::FileTime::from_unix_time(1_600_000_000, 1);
    filetime::set_file_times(&src, t, t).unwrap();
    let restored = out.join(src.strip_prefix("/").unwrap());
    filetime::set_file_times(&restored, t, t).unwrap();
    let diffs = diff_trees(&src, &restored);
    assert!(diffs.is_empty(), "{diffs:#?}");

    // Holes stay holes: 64 MiB apparent, a few blocks allocated.
    let m = fs::metadata(restored.join("sparse.img")).unwrap();
    assert_eq!(m.len(), 64 << 20);
    assert!(
        m.blocks() * 512 < 1 << 20,
        "sparse file takes {} bytes",
        m.blocks() * 512
    );
}

fn restore_of_a_single_file_and_of_a_subtree(store: Store) {
    let ws = Workspace::with(store);
    let src = ws.path("src");
    fs::create_dir_all(src.join("a/b")).unwrap();
    fs::write(src.join("a/b/one.txt"), "one").unwrap();
    fs::write(src.join("a/two.txt"), "two").unwrap();
    fs::write(src.join("three.txt"), "three").unwrap();
    let id = ws.backup(&[&src])["id"].as_str().unwrap().to_string();
    let rel = src.strip_prefix("/").unwrap();

    let out = ws.path("one");
    let file = format!("/{}", rel.join("a/b/one.txt").display());
    ws.restore(&id[..12], &out, &["--include", &file]).ok();
    assert_eq!(
        fs::read_to_string(out.join(rel).join("a/b/one.txt")).unwrap(),
        "one"
    );
    assert!(!out.join(rel).join("a/two.txt").exists());
    assert!(!out.join(rel).join("three.txt").exists());

    let out = ws.path("sub");
    let dir = format!("{}/", rel.join("a").display());
    ws.restore(&id, &out, &["--include", &dir]).ok();
    assert_eq!(
        fs::read_to_string(out.join(rel).join("a/two.txt")).unwrap(),
        "two"
    );
    assert_eq!(
        fs::read_to_string(out.join(rel).join("a/b/one.txt")).unwrap(),
        "one"
    );
    assert!(!out.join(rel).join("three.txt").exists());

    let missing = ws.restore(&id, &ws.path("none"), &["--include", "/no/such/path"]);
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("nothing in the snapshot matches"),
        "{}",
        missing.stderr
    );

    // `ls` shows the tree; a path narrows it.
    let ls = ws
        .lifeboat(&["ls", "--repo"])
        .arg(ws.repo())
        .arg("--key")
        .arg(ws.key())
        .arg(&id)
        .arg(&file)
        .ok();
    assert_eq!(ls.stdout.lines().count(), 1, "{}", ls.stdout);
    assert!(ls.stdout.contains("one.txt"));
}

fn snapshots_lists_tags_and_json(store: Store) {
    let ws = Workspace::with(store);
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), "data").unwrap();
    ws.lifeboat(&["backup", "--repo"])
        .arg(ws.repo())
        .arg("--signing-key")
        .arg(ws.path("keys/svc.key"))
        .args(&["--tag", "tier=90/48", "--tag", "source=erp"])
        .arg(&src)
        .ok();
    let list = ws.snapshots_json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["tags"]["tier"], "90/48");
    assert_eq!(list[0]["stats"]["files"], 1);
    let text = ws.lifeboat(&["snapshots", "--repo"]).arg(ws.repo()).ok();
    assert!(text.stdout.contains("source=erp"), "{}", text.stdout);
}

on_every_backend!(
    round_trip_keeps_every_kind_of_entry,
    restore_of_a_single_file_and_of_a_subtree,
    snapshots_lists_tags_and_json,
);
