//! Each tenant's backups in a repository of its own, on a folder and on S3: nothing shared
//! between tenants (not even a chunk both have), each encrypted to the service's recipients
//! and the tenant's own escrow key; one tenant's key opens nothing of another's; the
//! customer restores with their key alone (Lifeboat and stock gpg) and verifies their
//! evidence from their repository alone; a shared repository of earlier versions is named
//! at start-up.

mod common;
use common::server::Server;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Two tenants (acme, bakery), each with an escrow key, both backed up to a folder target
/// `nas` and an S3 target `cloud`; each tenant's source holds the same big file and one of
/// its own.
fn setup(ws: &Workspace) -> PathBuf {
    for name in ["acme-escrow", "bakery-escrow"] {
        ws.lifeboat(&["keys", "generate", "--name", name, "--out"])
            .arg(ws.path("keys"))
            .ok();
    }
    for (tenant, seed) in [("acme", 1), ("bakery", 2)] {
        let src = ws.path(&format!("srv/{tenant}"));
        fs::create_dir_all(&src).unwrap();
        random_file(&src.join("shared.bin"), 4 << 20, 99);
        random_file(&src.join("own.bin"), 1 << 20, seed);
    }
    let server = ws.server.as_ref().unwrap();
    let text = format!(
        r#"
[service]
signing_key = "{keys}/svc.key"
recipients = ["{keys}/rec.cert"]
jitter = "0s"
prune = "never"

[targets.nas]
kind = "local"
path = "{nas}"

[targets.cloud]
kind = "s3"
url = "s3://{bucket}/lifeboat"
endpoint = "{endpoint}"
region = "us-east-1"
path_style = true

[tenants.acme]
name = "ACME"
recipients = ["{keys}/acme-escrow.cert"]

[tenants.bakery]
name = "Bakery"
recipients = ["{keys}/bakery-escrow.cert"]

[contracts.acme-c]
tenant = "acme"
rpo = "1d"
rto = "1d"

[contracts.bakery-c]
tenant = "bakery"
rpo = "1d"
rto = "1d"

[sources.acme-files]
tenant = "acme"
contract = "acme-c"
kind = "files"
paths = ["{srv}/acme"]
tier = "7/1"
targets = ["nas", "cloud"]

[sources.bakery-files]
tenant = "bakery"
contract = "bakery-c"
kind = "files"
paths = ["{srv}/bakery"]
tier = "7/1"
targets = ["nas", "cloud"]
"#,
        keys = ws.path("keys").display(),
        nas = ws.path("nas").display(),
        bucket = BUCKET,
        endpoint = server.endpoint(),
        srv = ws.path("srv").display(),
    );
    let path = ws.path("lifeboat.toml");
    fs::write(&path, text).unwrap();
    path
}

/// Runs the service (on a clock of its own, in November 2026) until both sources are backed
/// up to both targets; returns it and an admin token.
fn back_up_both(ws: &Workspace, config: &Path) -> (Server, String) {
    // The workspace's environment: its data directory, and its catalog.
    let mut cmd = ws.lifeboat(&["serve", "--config"]).0;
    cmd.arg(config)
        .env("LIFEBOAT_CLOCK_START", "2026-11-10T10:00:00Z");
    for (k, v) in ws.server.as_ref().unwrap().client_env() {
        cmd.env(k, v);
    }
    let server = Server::start(cmd);
    let admin = ws.admin_token(config);
    for source in ["acme-files", "bakery-files"] {
        server.back_up_now(source, &admin);
    }
    (server, admin)
}

fn all_bytes(root: &Path) -> u64 {
    let mut total = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                // Its evidence record is written after the backup it counts.
                if e.file_name() != "tmp" && e.file_name() != "evidence" {
                    dirs.push(e.path());
                }
            } else {
                total += m.len();
            }
        }
    }
    total
}

fn pack_names(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for d in fs::read_dir(root.join("data")).unwrap().flatten() {
        for f in fs::read_dir(d.path()).unwrap().flatten() {
            out.push(f.file_name().to_string_lossy().into_owned());
        }
    }
    out
}

fn stored_bytes(root: &Path) -> u64 {
    let mut total = 0;
    for d in fs::read_dir(root.join("data")).unwrap().flatten() {
        for f in fs::read_dir(d.path()).unwrap().flatten() {
            total += f.metadata().unwrap().len();
        }
    }
    total
}

#[test]
fn each_tenant_has_a_repository_of_its_own_that_only_its_keys_open() {
    let ws = Workspace::empty(Store::S3);
    let config = setup(&ws);
    let (server, admin) = back_up_both(&ws, &config);
    let nas = ws.path("nas");
    let cloud = ws
        .server
        .as_ref()
        .unwrap()
        .bucket_dir(BUCKET)
        .join("lifeboat");

    // Two complete repositories on each target, and nothing at the target's root.
    for root in [&nas, &cloud] {
        assert!(
            !root.join("config").exists(),
            "a shared repository at {root:?}"
        );
        for tenant in ["acme", "bakery"] {
            assert!(
                root.join(tenant).join("config").is_dir(),
                "{root:?}/{tenant}"
            );
            assert!(!pack_names(&root.join(tenant)).is_empty());
        }
        // Nothing shared: no pack in common, and the file both tenants have is stored by
        // each (4 MiB of random data cannot compress).
        let acme = pack_names(&root.join("acme"));
        let bakery = pack_names(&root.join("bakery"));
        assert!(acme.iter().all(|p| !bakery.contains(p)));
        for tenant in ["acme", "bakery"] {
            assert!(stored_bytes(&root.join(tenant)) > 5 << 20, "{tenant}");
        }
    }
    // What each tenant's repository holds, for billing: in /metrics, the API and the
    // report, as the store itself counts it.
    let acme_bytes = all_bytes(&nas.join("acme"));
    let metrics = server.get("/metrics", Some(&admin)).text();
    assert!(
        metrics.contains(&format!(
            "lifeboat_tenant_stored_bytes{{tenant=\"acme\",target=\"nas\"}} {acme_bytes}"
        )),
        "{metrics}"
    );
    assert!(metrics.contains("lifeboat_tenant_stored_bytes{tenant=\"bakery\",target=\"cloud\"}"));
    let tenant = server.get("/api/v1/tenants/acme", Some(&admin)).json();
    assert_eq!(tenant["stored_bytes"]["nas"], acme_bytes, "{tenant}");
    assert!(
        tenant["stored_bytes"]["cloud"].as_u64().unwrap() > 5 << 20,
        "{tenant}"
    );
    let report = server
        .get("/api/v1/reports/acme-c?period=2026-11", Some(&admin))
        .json();
    let usage = report["usage"].as_array().unwrap();
    assert_eq!(usage.len(), 2, "{report}");
    assert_eq!(usage[1]["target"], "nas");
    assert_eq!(usage[1]["last_bytes"], acme_bytes);
    drop(server);

    let nas_acme = nas.join("acme").display().to_string();
    let nas_bakery = nas.join("bakery").display().to_string();
    let ids: Vec<String> = [&nas_acme, &nas_bakery]
        .iter()
        .map(|r| {
            ws.lifeboat(&["snapshots", "--json", "--repo", r])
                .ok()
                .json()[0]["tags"]["tenant"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["acme", "bakery"]);

    // Bakery's escrow key opens nothing of acme's, and says whose keys would.
    let wrong = ws
        .lifeboat(&["restore", "--repo", &nas_acme, "--signer"])
        .arg(ws.path("keys/svc.cert"))
        .arg("--key")
        .arg(ws.path("keys/bakery-escrow.key"))
        .args(&["latest", "--target"])
        .arg(ws.path("nope"))
        .run();
    assert_eq!(wrong.code, 4, "{}", wrong.stderr);
    let acme_cert =
        lifeboat::repo::crypto::PublicCert::load(&ws.path("keys/acme-escrow.cert")).unwrap();
    assert!(
        wrong.stderr.contains(&acme_cert.fingerprint().to_hex()),
        "{}",
        wrong.stderr
    );
    let restore_dir = ws.path("nope");
    assert!(!restore_dir.exists() || fs::read_dir(&restore_dir).unwrap().next().is_none());

    // Acme restores alone: its escrow key and the service certificate, from the folder and
    // from its S3 prefix, and in another data directory (nothing pinned there).
    let elsewhere = ws.path("customer-data");
    for repo in [nas_acme.clone(), format!("s3://{BUCKET}/lifeboat/acme")] {
        let out = ws.path(&format!("restored-{}", repo.len()));
        let mut c = ws.lifeboat(&["restore", "--repo", &repo, "--signer"]);
        c.arg(ws.path("keys/svc.cert"))
            .arg("--key")
            .arg(ws.path("keys/acme-escrow.key"))
            .args(&["latest", "--target"])
            .arg(&out)
            .env("LIFEBOAT_DATA_DIR", &elsewhere);
        for (k, v) in ws.server.as_ref().unwrap().client_env() {
            c.env(k, v);
        }
        c.ok();
        let src = ws.path("srv/acme");
        let diff = diff_trees(&src, &out.join(src.strip_prefix("/").unwrap()));
        assert!(diff.is_empty(), "{repo}: {diff:?}");
    }

    // With stock gpg and the shell script of docs/, holding only the escrow key.
    let home = ws.path("gnupg");
    fs::create_dir_all(&home).unwrap();
    fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", &home)
            .args(["--batch", "--quiet", "--yes", "--pinentry-mode", "loopback"])
            .args(["--passphrase", ""])
            .args(args);
        c
    };
    tool(gpg(&["--import"]).arg(ws.path("keys/acme-escrow.key")));
    tool(gpg(&["--import"]).arg(ws.path("keys/svc.cert")));
    let id = ws
        .lifeboat(&["snapshots", "--json", "--repo", &nas_acme])
        .ok()
        .json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let stock = ws.path("stock");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/restore-with-stock-tools.sh");
    tool(
        Command::new("sh")
            .arg(&script)
            .arg(&nas_acme)
            .arg(&id)
            .arg(&stock)
            .env("GNUPGHOME", &home),
    );
    let src = ws.path("srv/acme");
    assert!(diff_trees(&src, &stock.join(src.strip_prefix("/").unwrap())).is_empty());
    // And gpg with acme's key cannot open a pack of bakery's.
    let bakery_pack = fs::read_dir(nas.join("bakery/data"))
        .unwrap()
        .flatten()
        .flat_map(|d| fs::read_dir(d.path()).unwrap().flatten())
        .next()
        .unwrap()
        .path();
    let refused = gpg(&["--decrypt"]).arg(&bakery_pack).output().unwrap();
    assert!(!refused.status.success());

    // Acme's evidence verifies from its repository alone.
    let verified = ws
        .lifeboat(&["evidence", "verify", "--repo", &nas_acme, "--cert"])
        .arg(ws.path("keys/svc.cert"))
        .env("LIFEBOAT_DATA_DIR", &elsewhere)
        .run();
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    assert!(
        verified.stderr.contains("acme: ") && !verified.stderr.contains("bakery"),
        "{}",
        verified.stderr
    );
}

#[test]
fn a_shared_repository_of_earlier_versions_is_named_at_start_up() {
    let ws = Workspace::with(Store::Local);
    // The workspace's repository at the target's root: the layout before tenants had their
    // own.
    fs::create_dir_all(ws.path("srv/acme")).unwrap();
    fs::write(ws.path("srv/acme/a"), "a").unwrap();
    ws.backup(&[&ws.path("srv/acme")]);
    let text = format!(
        "[service]\nsigning_key = \"{keys}/svc.key\"\nrecipients = [\"{keys}/rec.cert\"]\n\
         prune = \"never\"\n\n[targets.nas]\nkind = \"local\"\npath = \"{repo}\"\n\n\
         [tenants.acme]\nname = \"ACME\"\n",
        keys = ws.path("keys").display(),
        repo = ws.repo(),
    );
    let config = ws.path("lifeboat.toml");
    fs::write(&config, text).unwrap();
    // The workspace's environment: its data directory, and its catalog.
    let mut cmd = ws.lifeboat(&["serve", "--config"]).0;
    cmd.arg(&config);
    let server = Server::start(cmd);
    // The daemon looks at its targets beside its work, once it runs, after the API is up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !server.log().contains("holds a shared repository") {
        assert!(std::time::Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = server.log();
    assert!(
        log.contains("target 'nas' holds a shared repository of every tenant")
            && log.contains("lifeboat migrate split-tenants"),
        "{log}"
    );
}

#[test]
fn config_check_reads_the_tenants_recipients() {
    let ws = Workspace::empty(Store::Local);
    fs::write(ws.path("keys/not-a-cert"), "hello").unwrap();
    let text = format!(
        "[service]\nsigning_key = \"{keys}/svc.key\"\n\n[tenants.acme]\nname = \"ACME\"\n\
         recipients = [\"{keys}/not-a-cert\", \"{keys}/missing.cert\"]\n\n\
         [tenants.data]\nname = \"A tenant named like a folder\"\n\n\
         [tenants.\"../up\"]\nname = \"A tenant with a path in its id\"\n",
        keys = ws.path("keys").display(),
    );
    let config = ws.path("lifeboat.toml");
    fs::write(&config, &text).unwrap();
    let run = ws
        .lifeboat(&["config", "check", "--config"])
        .arg(&config)
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    for says in [
        "tenant 'acme': recipient",
        "not-a-cert",
        "missing.cert",
        "tenant id 'data' is the name of a repository folder",
        "tenant id '../up' names a folder",
    ] {
        assert!(run.stderr.contains(says), "'{says}' in {}", run.stderr);
    }
}

/// The objects of every kind a repository folder holds (what an erasure must remove).
fn objects_in(repo: &Path) -> usize {
    if !repo.exists() {
        return 0;
    }
    let mut n = 0;
    let mut dirs = vec![repo.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                n += 1;
            }
        }
    }
    n
}

fn purge(ws: &Workspace, config: &Path, extra: &[&str]) -> Run {
    let mut c = ws.lifeboat(&["tenant", "purge", "acme", "--config"]);
    c.arg(config).args(extra);
    for (k, v) in ws.server.as_ref().unwrap().client_env() {
        c.env(k, v);
    }
    c.run()
}

#[test]
fn a_purge_erases_a_tenant_everywhere_but_what_a_hold_keeps_and_says_so_in_evidence() {
    let ws = Workspace::empty(Store::S3);
    let config = setup(&ws);
    let (server, _) = back_up_both(&ws, &config);
    drop(server);
    let nas_acme = ws.path("nas/acme");
    let cloud_acme = ws
        .server
        .as_ref()
        .unwrap()
        .bucket_dir(BUCKET)
        .join("lifeboat/acme");
    let before = (objects_in(&nas_acme), objects_in(&cloud_acme));
    assert!(before.0 > 5 && before.1 > 5);

    // Refused while the tenant still has sources: the next backup would bring it back.
    let refused = purge(&ws, &config, &[]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("still has sources in") && refused.stderr.contains("(acme-files)"),
        "{}",
        refused.stderr
    );
    let text = fs::read_to_string(&config).unwrap();
    let start = text.find("[sources.acme-files]").unwrap();
    let end = text.find("[sources.bakery-files]").unwrap();
    fs::write(&config, format!("{}{}", &text[..start], &text[end..])).unwrap();

    // A legal hold on the folder's snapshot.
    let nas_repo = nas_acme.display().to_string();
    ws.lifeboat(&[
        "hold", "place", "latest", "--reason", "case 17", "--repo", &nas_repo,
    ])
    .ok();
    let before = (objects_in(&nas_acme), objects_in(&cloud_acme));
    // A dry run erases nothing.
    let dry = purge(&ws, &config, &["--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stderr.contains("would erase"), "{}", dry.stderr);
    assert_eq!((objects_in(&nas_acme), objects_in(&cloud_acme)), before);

    let first = purge(&ws, &config, &["--json"]);
    assert_eq!(first.code, 1, "{}", first.stderr);
    let report = first.json();
    assert_eq!(report["complete"], false);
    assert_eq!(report["targets"]["cloud"]["objects_left"], 0, "{report}");
    assert_eq!(objects_in(&cloud_acme), 0);
    let nas = &report["targets"]["nas"];
    assert_eq!(nas["held"][0]["reason"], "case 17", "{report}");
    assert!(
        first.stderr.contains("kept by a legal hold"),
        "{}",
        first.stderr
    );
    // The held snapshot still restores.
    let out = ws.path("held");
    ws.lifeboat(&["restore", "--repo", &nas_repo, "--key"])
        .arg(ws.path("keys/acme-escrow.key"))
        .args(&["latest", "--target"])
        .arg(&out)
        .ok();

    // Released, the next purge finishes the job.
    ws.lifeboat(&["hold", "release", "latest", "--repo", &nas_repo])
        .ok();
    let second = purge(&ws, &config, &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(objects_in(&nas_acme), 0);
    // The other tenant is untouched.
    let out = ws.path("bakery-out");
    ws.lifeboat(&["restore", "--repo"])
        .arg(ws.path("nas/bakery"))
        .arg("--key")
        .arg(ws.path("keys/bakery-escrow.key"))
        .args(&["latest", "--target"])
        .arg(&out)
        .ok();

    // Both erasures are signed evidence in acme's chain: what went, what was kept and why.
    let evidence = ws
        .lifeboat(&["evidence", "list", "--json", "--tenant", "acme"])
        .ok()
        .json();
    let erasures: Vec<&serde_json::Value> = evidence
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["record"])
        .filter(|r| r["kind"] == "erasure")
        .collect();
    assert_eq!(erasures.len(), 2, "{evidence}");
    assert_eq!(erasures[0]["outcome"], "failure");
    let kept = erasures[0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "target nas")
        .unwrap();
    assert!(
        kept["actual"].as_str().unwrap().contains("held: case 17"),
        "{kept}"
    );
    assert_eq!(erasures[1]["outcome"], "success");
    assert!(erasures[1]["measured"]["objects_deleted"].as_u64().unwrap() > 0);
    let export = ws.path("export");
    ws.lifeboat(&["evidence", "export", "--tenant", "acme", "--out"])
        .arg(&export)
        .ok();
    ws.lifeboat(&["evidence", "verify"])
        .arg(&export)
        .arg("--cert")
        .arg(ws.path("keys/svc.cert"))
        .ok();
}
