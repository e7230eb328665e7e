//! Damaged and unauthentic objects: `check` names them, restore refuses them.

mod common;
use common::*;
use lifeboat::repo::crypto::{self, PublicCert, SecretKey};
use std::fs;
use std::path::{Path, PathBuf};

fn setup(store: Store) -> (Workspace, String) {
    let ws = Workspace::with(store);
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("a"), 3 << 20, 1);
    fs::write(src.join("b"), "small").unwrap();
    let id = ws.backup(&[&src])["id"].as_str().unwrap().to_string();
    ws.check(true).ok();
    (ws, id)
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn biggest_pack(ws: &Workspace) -> PathBuf {
    ws.objects("data")
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap()
}

fn assert_named(run: &Run, object: &str) {
    assert_eq!(
        run.code, 3,
        "expected exit 3 (damaged):\n{}\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stdout.contains(object) || run.stderr.contains(object),
        "{object} not named:\n{}\n{}",
        run.stdout,
        run.stderr
    );
}

fn flipped_byte_in_a_pack(store: Store) {
    let (ws, id) = setup(store);
    let pack = biggest_pack(&ws);
    let mut data = fs::read(&pack).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x01;
    fs::write(&pack, data).unwrap();
    assert_named(&ws.check(false), &name(&pack));
    assert_named(&ws.check(true), &name(&pack));
    let r = ws.restore(&id, &ws.path("out"), &[]);
    assert_named(&r, &name(&pack));
    assert!(
        fs::read_dir(ws.path("out")).unwrap().next().is_none(),
        "a refused restore leaves nothing behind"
    );
}

fn truncated_pack(store: Store) {
    let (ws, id) = setup(store);
    let pack = biggest_pack(&ws);
    let data = fs::read(&pack).unwrap();
    fs::write(&pack, &data[..data.len() - 100]).unwrap();
    assert_named(&ws.check(false), &name(&pack));
    assert_named(&ws.restore(&id, &ws.path("out"), &[]), &name(&pack));
}

fn missing_pack(store: Store) {
    let (ws, id) = setup(store);
    let pack = biggest_pack(&ws);
    fs::remove_file(&pack).unwrap();
    let run = ws.check(false);
    assert_named(&run, &name(&pack));
    assert!(run.stdout.contains("missing"), "{}", run.stdout);
    let r = ws.restore(&id, &ws.path("out"), &[]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains(&name(&pack)), "{}", r.stderr);
}

fn damaged_index_and_snapshot(store: Store) {
    let (ws, id) = setup(store);
    let index = ws.objects("index").remove(0);
    let mut data = fs::read(&index).unwrap();
    data[40] ^= 0xff;
    fs::write(&index, data).unwrap();
    assert_named(&ws.check(false), &name(&index));
    let snap = ws.objects("snapshots").remove(0);
    let data = fs::read(&snap).unwrap();
    fs::write(&snap, &data[..data.len() / 2]).unwrap();
    assert_named(&ws.check(false), &name(&snap));
    assert_ne!(ws.restore(&id, &ws.path("out"), &[]).code, 0);
}

/// Writes `data` as an object of the repository under its SHA-256 name.
fn plant(ws: &Workspace, kind: &str, data: &[u8]) -> String {
    let name = lifeboat::repo::ids::Hash::of(data).to_hex();
    fs::write(ws.objects_root().join(kind).join(&name), data).unwrap();
    name
}

fn snapshot_signed_by_another_key_is_refused(store: Store) {
    let (ws, id) = setup(store);
    // A perfect copy of the real manifest, re-signed by an intruder's key.
    let real = fs::read(ws.objects_root().join("snapshots").join(&id)).unwrap();
    let content = crypto::unverified_content(&real).unwrap();
    let intruder = SecretKey::generate("intruder").unwrap();
    let forged = plant(
        &ws,
        "snapshots",
        &crypto::sign(&intruder, &content).unwrap(),
    );
    assert_named(&ws.check(false), &forged);
    let r = ws.restore(&forged, &ws.path("out"), &[]);
    assert_named(&r, &forged);
    // The genuine snapshot still restores.
    ws.restore(&id, &ws.path("out2"), &[]).ok();
}

fn index_signed_by_another_key_is_refused(store: Store) {
    let (ws, id) = setup(store);
    let real = ws.objects("index").remove(0);
    let key = SecretKey::load(&ws.key()).unwrap();
    let plain = crypto::decrypt(&key, None, &fs::read(&real).unwrap()).unwrap();
    let intruder = SecretKey::generate("intruder").unwrap();
    let rec = PublicCert::load(&ws.path("keys/rec.cert")).unwrap();
    let forged = plant(
        &ws,
        "index",
        &crypto::sign_and_encrypt(&intruder, &[rec], &plain).unwrap(),
    );
    fs::remove_file(&real).unwrap();
    let run = ws.check(true);
    assert_named(&run, &forged);
    let r = ws.restore(&id, &ws.path("out"), &[]);
    assert_named(&r, &forged);
}

fn config_signed_by_another_key_is_refused(store: Store) {
    let (ws, id) = setup(store);
    let real = ws.objects("config").remove(0);
    let content = crypto::unverified_content(&fs::read(&real).unwrap()).unwrap();
    let intruder = SecretKey::generate("intruder").unwrap();
    fs::remove_file(&real).unwrap();
    plant(&ws, "config", &crypto::sign(&intruder, &content).unwrap());
    let r = ws.restore(&id, &ws.path("out"), &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("not signed by the trusted service certificate"),
        "{}",
        r.stderr
    );
}

on_every_backend!(
    flipped_byte_in_a_pack,
    truncated_pack,
    missing_pack,
    damaged_index_and_snapshot,
    snapshot_signed_by_another_key_is_refused,
    index_signed_by_another_key_is_refused,
    config_signed_by_another_key_is_refused,
);
