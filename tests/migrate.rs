//! `migrate split-tenants` on a shared repository made by the release before each tenant had
//! its own (fixtures/shared-v1, see its make.sh): each tenant's snapshots, holds and evidence
//! end in the tenant's own repository, re-encrypted to its recipients, and restore exactly as
//! they did from the shared one; the shared repository is left byte for byte as it was; a
//! snapshot of a tenant the configuration lacks stays behind, said so; run again (after a
//! kill -9, or cut off between a manifest and its hold) it carries on without copying
//! anything twice.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The fixture copied into the workspace (it is never changed in place), and acme's escrow
/// key made.
fn fixture(ws: &Workspace) -> PathBuf {
    ws.lifeboat(&["keys", "generate", "--name", "acme-escrow", "--out"])
        .arg(ws.path("keys"))
        .ok();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/shared-v1");
    let to = ws.path("v1");
    tool(Command::new("cp").arg("-a").arg(&from).arg(&to));
    to
}

/// A configuration of the fixture's target with `tenants`; acme has an escrow key.
fn write_config(ws: &Workspace, v1: &Path, tenants: &[&str]) -> PathBuf {
    let mut text = format!(
        "[service]\nsigning_key = \"{v1}/keys/service.key\"\nrecipients = [\"{v1}/keys/recovery.cert\"]\n\n\
         [targets.nas]\nkind = \"local\"\npath = \"{v1}/nas\"\n",
        v1 = v1.display()
    );
    for t in tenants {
        text.push_str(&format!("\n[tenants.{t}]\nname = \"{t}\"\n"));
        if *t == "acme" {
            text.push_str(&format!(
                "recipients = [\"{}\"]\n",
                ws.path("keys/acme-escrow.cert").display()
            ));
        }
    }
    let path = ws.path("lifeboat.toml");
    fs::write(&path, text).unwrap();
    path
}

fn split(ws: &Workspace, config: &Path, v1: &Path) -> Run {
    ws.lifeboat(&["migrate", "split-tenants", "--json", "--quiet", "--config"])
        .arg(config)
        .arg("--key")
        .arg(v1.join("keys/recovery.key"))
        .run()
}

/// Restores `id` of `repo` with `key` into a new folder; returns it.
fn restore(ws: &Workspace, v1: &Path, repo: &Path, key: &Path, id: &str, name: &str) -> PathBuf {
    let out = ws.path(name);
    ws.lifeboat(&["restore", "--repo"])
        .arg(repo)
        .arg("--signer")
        .arg(v1.join("keys/service.cert"))
        .arg("--key")
        .arg(key)
        .args(&[id, "--target"])
        .arg(&out)
        .ok();
    out
}

/// Every file of the shared repository (not the tenants' folders) with its bytes.
fn shared_files(nas: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for top in ["config", "data", "index", "snapshots", "holds", "evidence"] {
        let mut stack = vec![nas.join(top)];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    out.insert(e.path(), fs::read(e.path()).unwrap());
                }
            }
        }
    }
    out
}

/// The shared repository's snapshots: id → tenant tag.
fn shared_snapshots(ws: &Workspace, v1: &Path) -> BTreeMap<String, String> {
    ws.lifeboat(&["snapshots", "--json", "--repo"])
        .arg(v1.join("nas"))
        .arg("--signer")
        .arg(v1.join("keys/service.cert"))
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["tags"]["tenant"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_shared_repository_splits_into_the_tenants_own_and_restores_the_same() {
    let ws = Workspace::empty(Store::Local);
    let v1 = fixture(&ws);
    let nas = v1.join("nas");
    let recovery = v1.join("keys/recovery.key");
    let before = shared_files(&nas);
    let shared = shared_snapshots(&ws, &v1);
    assert_eq!(shared.len(), 4, "{shared:?}");

    // Bakery is not in the configuration yet: its snapshots stay behind, and it says so.
    let config = write_config(&ws, &v1, &["acme"]);
    let first = split(&ws, &config, &v1);
    assert_eq!(first.code, 1, "{}", first.stderr);
    let report = first.json();
    let target = &report["nas"];
    assert_eq!(
        target["unassigned"].as_array().unwrap().len(),
        2,
        "{report}"
    );
    assert!(
        first.stderr.contains("belongs to no tenant of") && first.stderr.contains("rm -r"),
        "{}",
        first.stderr
    );
    let acme = &target["tenants"]["acme"];
    assert_eq!(acme["migrated"], 2, "{report}");
    assert_eq!(acme["holds_placed"], 1);
    assert_eq!(acme["evidence_copied"], 1);
    assert_eq!(acme["check"]["problems"].as_array().unwrap().len(), 0);

    // With bakery added, the rest follows; acme's are not copied again.
    let config = write_config(&ws, &v1, &["acme", "bakery"]);
    let second = split(&ws, &config, &v1);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let report = second.json();
    let target = &report["nas"];
    assert!(target["unassigned"].as_array().unwrap().is_empty());
    assert_eq!(target["tenants"]["acme"]["migrated"], 0, "{report}");
    assert_eq!(target["tenants"]["acme"]["already"], 2);
    assert_eq!(target["tenants"]["acme"]["evidence_copied"], 0);
    assert_eq!(target["tenants"]["bakery"]["migrated"], 2);
    assert_eq!(target["tenants"]["bakery"]["evidence_copied"], 0);

    // Each snapshot restores from its tenant's repository exactly as from the shared one.
    let mut renamed: Vec<(String, String, String)> = Vec::new();
    for (tenant, runs) in [("acme", &first), ("bakery", &second)] {
        for pair in runs.json()["nas"]["tenants"][tenant]["renamed"]
            .as_array()
            .unwrap()
        {
            let (old, new) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
            assert_eq!(shared[old], tenant);
            renamed.push((tenant.to_string(), old.to_string(), new.to_string()));
        }
    }
    assert_eq!(renamed.len(), 4);
    for (i, (tenant, old, new)) in renamed.iter().enumerate() {
        let a = restore(&ws, &v1, &nas, &recovery, old, &format!("old{i}"));
        let b = restore(
            &ws,
            &v1,
            &nas.join(tenant),
            &recovery,
            new,
            &format!("new{i}"),
        );
        let diff = diff_trees(&a, &b);
        assert!(diff.is_empty(), "{tenant} {old}: {diff:?}");
        if tenant == "acme" {
            // Re-encrypted to acme's recipients: its escrow key opens it.
            let escrow = ws.path("keys/acme-escrow.key");
            let c = restore(
                &ws,
                &v1,
                &nas.join(tenant),
                &escrow,
                new,
                &format!("esc{i}"),
            );
            assert!(diff_trees(&a, &c).is_empty());
        }
    }
    // Nothing of acme's is in bakery's repository and the other way round.
    let listed = |tenant: &str| -> Vec<String> {
        ws.lifeboat(&["snapshots", "--json", "--repo"])
            .arg(nas.join(tenant))
            .ok()
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                assert_eq!(s["tags"]["tenant"], tenant, "{s}");
                s["tags"]["migrated-from"].as_str().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(listed("acme").len(), 2);
    assert_eq!(listed("bakery").len(), 2);

    // The hold came along, with its reason and time; the evidence verifies from acme's
    // repository alone.
    let holds = ws
        .lifeboat(&["hold", "list", "--json", "--repo"])
        .arg(nas.join("acme"))
        .ok()
        .json();
    let old_holds = ws
        .lifeboat(&["hold", "list", "--json", "--repo"])
        .arg(&nas)
        .ok()
        .json();
    assert_eq!(holds.as_array().unwrap().len(), 1, "{holds}");
    assert_eq!(holds[0]["reason"], "case 2026-17");
    assert_eq!(holds[0]["placed"], old_holds[0]["placed"]);
    let held_new = &renamed
        .iter()
        .find(|(_, old, _)| *old == old_holds[0]["snapshot"].as_str().unwrap())
        .unwrap()
        .2;
    assert_eq!(holds[0]["snapshot"], held_new.as_str());
    let verified = ws
        .lifeboat(&["evidence", "verify", "--repo"])
        .arg(nas.join("acme"))
        .arg("--cert")
        .arg(v1.join("keys/service.cert"))
        .env("LIFEBOAT_DATA_DIR", ws.path("elsewhere"))
        .run();
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    assert!(
        verified.stderr.contains("acme: 1 record(s)"),
        "{}",
        verified.stderr
    );

    // The shared repository is as it was, byte for byte.
    assert!(
        before == shared_files(&nas),
        "the shared repository changed"
    );
    // Run once more: nothing to do.
    let third = split(&ws, &config, &v1);
    assert_eq!(third.code, 0, "{}", third.stderr);
    for t in ["acme", "bakery"] {
        assert_eq!(third.json()["nas"]["tenants"][t]["migrated"], 0);
    }
}

#[test]
fn a_split_killed_midway_ends_with_each_snapshot_once() {
    let ws = Workspace::empty(Store::Local);
    let v1 = fixture(&ws);
    let nas = v1.join("nas");
    let config = write_config(&ws, &v1, &["acme", "bakery"]);
    // Killed once the first tenant's first snapshot is committed.
    let mut child: Child = {
        let mut c = ws
            .lifeboat(&["migrate", "split-tenants", "--quiet", "--config"])
            .0;
        c.arg(&config)
            .arg("--key")
            .arg(v1.join("keys/recovery.key"));
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c.spawn().unwrap()
    };
    let committed = || {
        fs::read_dir(nas.join("acme/snapshots"))
            .map(|d| d.count() > 0)
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() && !committed() {
        assert!(Instant::now() < deadline, "the split never got there");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().ok();
    child.wait().unwrap();
    let run = split(&ws, &config, &v1);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    for t in ["acme", "bakery"] {
        let r = &report["nas"]["tenants"][t];
        assert_eq!(
            r["migrated"].as_u64().unwrap() + r["already"].as_u64().unwrap(),
            2,
            "{report}"
        );
        let snaps = ws
            .lifeboat(&["snapshots", "--json", "--repo"])
            .arg(nas.join(t))
            .ok()
            .json();
        assert_eq!(snaps.as_array().unwrap().len(), 2, "{t}: {snaps}");
    }
    assert_eq!(
        report["nas"]["tenants"]["acme"]["check"]["problems"],
        serde_json::json!([])
    );
    let holds = ws
        .lifeboat(&["hold", "list", "--json", "--repo"])
        .arg(nas.join("acme"))
        .ok()
        .json();
    assert_eq!(holds.as_array().unwrap().len(), 1, "{holds}");

    // Cut off after a manifest, before its hold; and before another's manifest: the next run
    // places the hold and moves the snapshot, nothing else.
    for d in [nas.join("acme/holds"), nas.join("bakery/snapshots")] {
        let first = fs::read_dir(&d).unwrap().next().unwrap().unwrap().path();
        fs::remove_file(first).unwrap();
    }
    let run = split(&ws, &config, &v1);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    let tenants = &report["nas"]["tenants"];
    assert_eq!(tenants["acme"]["holds_placed"], 1, "{report}");
    assert_eq!(tenants["acme"]["migrated"], 0);
    assert_eq!(tenants["bakery"]["migrated"], 1);
    assert_eq!(tenants["bakery"]["already"], 1);
    assert_eq!(
        tenants["bakery"]["check"]["problems"],
        serde_json::json!([])
    );
}
