//! Stock OpenPGP tools read what Lifeboat writes, and keys made by gpg work in Lifeboat.

mod common;
use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.env("GNUPGHOME", home).args([
        "--batch",
        "--quiet",
        "--yes",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
    ]);
    c
}

fn gnupg_home(ws: &Workspace) -> std::path::PathBuf {
    let home = ws.path("gnupg");
    fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut fs::metadata(&home).unwrap().permissions(),
        0o700,
    );
    fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    tool(gpg(&home).arg("--import").arg(ws.key()));
    tool(gpg(&home).arg("--import").arg(ws.path("keys/svc.cert")));
    home
}

fn zstd_decompress(data: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.zst");
    fs::write(&f, data).unwrap();
    tool(Command::new("zstd").args(["-dqc"]).arg(&f))
}

/// One file smaller than a chunk: its pack's plaintext is one zstd frame of exactly the file.
fn one_file_repo() -> (Workspace, Vec<u8>) {
    let ws = Workspace::new();
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    let content = b"the ERP database dump, in miniature\n".repeat(2000);
    fs::write(src.join("dump.sql"), &content).unwrap();
    ws.backup(&[&src]);
    (ws, content)
}

#[test]
fn gpg_and_sq_decrypt_a_pack() {
    let (ws, content) = one_file_repo();
    let home = gnupg_home(&ws);
    let packs = ws.objects("data");
    assert_eq!(packs.len(), 2, "one data pack and one tree pack");
    let mut found_gpg = false;
    let mut found_sq = false;
    for pack in &packs {
        let plain = tool(gpg(&home).arg("--decrypt").arg(pack));
        found_gpg |= zstd_decompress(&plain) == content;
        let plain = tool(
            Command::new("sq")
                .arg("decrypt")
                .arg("--recipient-key")
                .arg(ws.key())
                .arg(pack),
        );
        found_sq |= zstd_decompress(&plain) == content;
    }
    assert!(found_gpg, "gpg + zstd did not give the file back");
    assert!(found_sq, "sq + zstd did not give the file back");
    // Manifests are signed OpenPGP messages that stock tools verify.
    let snap = ws.objects("snapshots").remove(0);
    let out = gpg(&home).arg("--decrypt").arg(&snap).output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Good signature"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(manifest["format"], "lifeboat-snapshot");
    let verified = tool(
        Command::new("sq")
            .arg("verify")
            .arg("--signer-cert")
            .arg(ws.path("keys/svc.cert"))
            .arg(&snap),
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&verified).unwrap(),
        manifest
    );
    // A certificate that did not sign it fails.
    let other = Command::new("sq")
        .arg("verify")
        .arg("--signer-cert")
        .arg(ws.path("keys/rec.cert"))
        .arg(&snap)
        .output()
        .unwrap();
    assert!(!other.status.success());
}

fn tar_x(stream: Vec<u8>, into: &Path) {
    fs::create_dir_all(into).unwrap();
    let archive = into.with_extension("tar.zst");
    fs::write(&archive, stream).unwrap();
    tool(Command::new("sh").arg("-c").arg(format!(
        "zstd -dqc '{}' | tar -x -C '{}'",
        archive.display(),
        into.display()
    )));
}

/// The export works the same from a local and an S3 repository.
fn export_restores_with_gpg_or_sq_zstd_and_tar(store: Store) {
    let ws = Workspace::with(store);
    let src = ws.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    random_file(&src.join("sub/data.bin"), 3 << 20, 11);
    fs::write(src.join("a.txt"), "alpha").unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
    fs::hard_link(src.join("a.txt"), src.join("hard")).unwrap();
    let id = ws.backup(&[&src])["id"].as_str().unwrap().to_string();
    let archive = ws.path("export.pgp");
    ws.lifeboat(&["export", "--repo"])
        .arg(ws.repo())
        .arg("--key")
        .arg(ws.key())
        .arg(&id)
        .arg("--out")
        .arg(&archive)
        .ok();

    let home = gnupg_home(&ws);
    let rel = src.strip_prefix("/").unwrap();
    for (name, plain) in [
        ("gpg", tool(gpg(&home).arg("--decrypt").arg(&archive))),
        (
            "sq",
            tool(
                Command::new("sq")
                    .arg("decrypt")
                    .arg("--recipient-key")
                    .arg(ws.key())
                    .arg(&archive),
            ),
        ),
    ] {
        let out = ws.path(&format!("via-{name}"));
        tar_x(plain, &out);
        let got = out.join(rel);
        assert_eq!(
            fs::read(got.join("sub/data.bin")).unwrap(),
            fs::read(src.join("sub/data.bin")).unwrap(),
            "{name}"
        );
        assert_eq!(fs::read_to_string(got.join("a.txt")).unwrap(), "alpha");
        assert_eq!(fs::read_link(got.join("link")).unwrap(), Path::new("a.txt"));
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            fs::metadata(got.join("hard")).unwrap().ino(),
            fs::metadata(got.join("a.txt")).unwrap().ino()
        );
    }
}

#[test]
fn restore_without_lifeboat_following_format_md() {
    let ws = Workspace::new();
    let src = ws.path("src");
    fs::create_dir_all(src.join("docs")).unwrap();
    random_file(&src.join("docs/big.bin"), 9 << 20, 21);
    fs::write(src.join("docs/odd name\twith tab"), "tab").unwrap();
    fs::write(src.join("empty"), "").unwrap();
    std::os::unix::fs::symlink("docs/big.bin", src.join("link")).unwrap();
    fs::hard_link(src.join("empty"), src.join("empty-too")).unwrap();
    let f = fs::File::create(src.join("sparse")).unwrap();
    f.set_len(20 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"hi", 1 << 20).unwrap();
    drop(f);
    let id = ws.backup(&[&src])["id"].as_str().unwrap().to_string();
    let home = gnupg_home(&ws);
    let out = ws.path("stock");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/restore-with-stock-tools.sh");
    tool(
        Command::new("sh")
            .arg(&script)
            .arg(ws.repo())
            .arg(&id)
            .arg(&out)
            .env("GNUPGHOME", &home),
    );
    let restored = out.join(src.strip_prefix("/").unwrap());
    let diffs: Vec<String> = diff_trees(&src, &restored);
    assert!(diffs.is_empty(), "{diffs:#?}");
}

#[test]
fn keys_made_by_gpg_work() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("gnupg");
    fs::create_dir_all(&home).unwrap();
    fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    tool(gpg(&home).args([
        "--quick-gen-key",
        "MSP recovery <recovery@msp.example>",
        "default",
        "default",
        "never",
    ]));
    let secret = tool(gpg(&home).args(["--armor", "--export-secret-keys", "recovery@msp.example"]));
    let public = tool(gpg(&home).args(["--armor", "--export", "recovery@msp.example"]));
    let keys = dir.path().join("keys");
    fs::create_dir_all(&keys).unwrap();
    fs::write(keys.join("gpg.key"), secret).unwrap();
    fs::write(keys.join("gpg.cert"), public).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args(args)
            .env("LIFEBOAT_DATA_DIR", dir.path().join("data"))
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    fs::create_dir_all(dir.path().join("src")).unwrap();
    fs::write(dir.path().join("src/f"), "made with gpg keys").unwrap();
    run(&[
        "init",
        "--repo",
        "repo",
        "--recipient",
        "keys/gpg.cert",
        "--signing-key",
        "keys/gpg.key",
    ]);
    run(&[
        "backup",
        "--repo",
        "repo",
        "--signing-key",
        "keys/gpg.key",
        "src",
    ]);
    run(&[
        "restore",
        "--repo",
        "repo",
        "--key",
        "keys/gpg.key",
        "latest",
        "--target",
        "out",
    ]);
    let rel = dir.path().join("src/f");
    let got = dir.path().join("out").join(rel.strip_prefix("/").unwrap());
    assert_eq!(fs::read_to_string(got).unwrap(), "made with gpg keys");
}

on_every_backend!(export_restores_with_gpg_or_sq_zstd_and_tar);
