//! Deduplication: unchanged data costs nothing, changed data costs only its chunks.

mod common;
use common::*;
use std::fs;

fn unchanged_tree_adds_no_pack_and_reads_nothing(store: Store) {
    let ws = Workspace::with(store);
    let src = ws.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    for i in 0..20 {
        random_file(&src.join(format!("d/f{i}")), 100_000 + i * 1000, i as u64);
    }
    let first = ws.backup(&[&src]);
    assert!(first["bytes_added"].as_u64().unwrap() > 2_000_000);
    let packs = ws.objects("data");
    let second = ws.backup(&[&src]);
    assert_eq!(second["packs_added"], 0, "{second}");
    assert_eq!(second["bytes_added"], 0);
    assert_eq!(
        second["bytes_read"], 0,
        "unchanged files must not be read again"
    );
    assert_eq!(ws.objects("data"), packs);
    assert_ne!(first["id"], second["id"]);

    // A touched file is read again but adds nothing: its chunks are known.
    let t = filetime::FileTime::from_unix_time(1_700_000_000, 0);
    filetime::set_file_times(src.join("d/f3"), t, t).unwrap();
    let third = ws.backup(&[&src]);
    assert_eq!(third["bytes_read"], 103_000);
    assert_eq!(third["packs_added"], 1, "only the tree changes: {third}");
    ws.check(true).ok();
}

fn changing_one_mib_of_a_large_file_adds_only_a_few_chunks(store: Store) {
    let ws = Workspace::with(store);
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    let big = src.join("disk.img");
    random_file(&big, 256 << 20, 1);
    let first = ws.backup(&[&src]);
    assert!(first["bytes_added"].as_u64().unwrap() >= 256 << 20);

    // Overwrite 1 MiB in the middle with other random data.
    let f = fs::OpenOptions::new().write(true).open(&big).unwrap();
    let mut patch = vec![0u8; 1 << 20];
    rand::RngCore::fill_bytes(
        &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(99),
        &mut patch,
    );
    std::os::unix::fs::FileExt::write_all_at(&f, &patch, 100 << 20).unwrap();
    drop(f);

    let second = ws.backup(&[&src]);
    let added = second["bytes_added"].as_u64().unwrap();
    // The changed MiB touches at most a few chunks (4 MiB at most each) either side.
    assert!(added < 12 << 20, "a 1 MiB change added {added} bytes");
    assert!(added >= 1 << 20, "the change must be stored: {added}");

    let out = ws.path("out");
    ws.restore("latest", &out, &[]).ok();
    let restored = out.join(big.strip_prefix("/").unwrap());
    assert!(fs::read(&restored).unwrap() == fs::read(&big).unwrap());
}

on_every_backend!(
    unchanged_tree_adds_no_pack_and_reads_nothing,
    changing_one_mib_of_a_large_file_adds_only_a_few_chunks,
);
