//! `tenant rekey`: a tenant's repository re-encrypted to its current recipients (its escrow
//! key added, then removed), snapshots and holds carried over, old packs and indexes gone,
//! `check --read-data` clean; killed with -9 at ten points and run again, it always ends
//! clean and every snapshot restores identically. New data follows a change of recipients
//! at once.

mod common;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Tenant acme on target `nas` (the workspace's target root), and the escrow key made; the
/// escrow key among acme's recipients when `escrow`.
fn write_config(ws: &Workspace, escrow: bool) -> PathBuf {
    let recipients = if escrow {
        format!(
            "recipients = [\"{}\"]\n",
            ws.path("keys/acme-escrow.cert").display()
        )
    } else {
        String::new()
    };
    let text = format!(
        "[service]\nsigning_key = \"{keys}/svc.key\"\nrecipients = [\"{keys}/rec.cert\"]\n\n\
         [targets.nas]\nkind = \"local\"\npath = \"{root}\"\n\n[tenants.acme]\nname = \"ACME\"\n{recipients}",
        keys = ws.path("keys").display(),
        root = ws.target_root(),
    );
    let path = ws.path("lifeboat.toml");
    fs::write(&path, text).unwrap();
    path
}

/// Three snapshots of a changing folder; returns each with a copy of what it holds.
fn history(ws: &Workspace) -> Vec<(String, PathBuf)> {
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    let mut out = Vec::new();
    for i in 0..3u64 {
        random_file(&src.join(format!("part{i}")), 6 << 20, i);
        fs::write(src.join("changing"), format!("version {i}")).unwrap();
        let id = ws.backup(&[&src])["id"].as_str().unwrap().to_string();
        let copy = ws.path(&format!("as-of-{i}"));
        tool(
            std::process::Command::new("cp")
                .arg("-a")
                .arg(&src)
                .arg(&copy),
        );
        out.push((id, copy));
    }
    out
}

fn rekey_cmd(ws: &Workspace, config: &Path) -> Cmd {
    let mut c = ws.lifeboat(&["tenant", "rekey", "acme", "--quiet", "--config"]);
    c.arg(config).arg("--key").arg(ws.key());
    c
}

/// Every snapshot (found by its `rekeyed-from` chain back to the original id) restores what
/// it held, with `key`.
fn all_restore(ws: &Workspace, history: &[(String, PathBuf)], key: &Path, round: &str) {
    let list = ws.snapshots_json();
    let snaps = list.as_array().unwrap();
    assert_eq!(snaps.len(), history.len(), "{round}: {list}");
    let src = ws.path("src");
    for (i, (_, copy)) in history.iter().enumerate() {
        // Snapshots keep their time; the i-th oldest is the i-th of the history.
        let mut times: Vec<(&str, &str)> = snaps
            .iter()
            .map(|s| (s["time"].as_str().unwrap(), s["id"].as_str().unwrap()))
            .collect();
        times.sort();
        let id = times[i].1;
        let out = ws.path(&format!("restore-{round}-{i}"));
        ws.lifeboat(&["restore", "--repo"])
            .arg(ws.repo())
            .arg("--key")
            .arg(key)
            .args(&[id, "--target"])
            .arg(&out)
            .ok();
        let diff = diff_trees(copy, &out.join(src.strip_prefix("/").unwrap()));
        assert!(diff.is_empty(), "{round}: snapshot {i}: {diff:?}");
        fs::remove_dir_all(&out).unwrap();
    }
}

fn escrow_opens(ws: &Workspace) -> bool {
    ws.lifeboat(&["restore", "--repo"])
        .arg(ws.repo())
        .arg("--key")
        .arg(ws.path("keys/acme-escrow.key"))
        .args(&["latest", "--target"])
        .arg(ws.path(&format!("probe-{}", rand_suffix())))
        .run()
        .code
        == 0
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn packs(ws: &Workspace) -> Vec<PathBuf> {
    ws.objects("data")
}

#[test]
fn rekey_adds_the_escrow_key_to_what_is_stored_and_carries_holds_over() {
    let ws = Workspace::for_tenant(Store::Local, "acme");
    ws.lifeboat(&["keys", "generate", "--name", "acme-escrow", "--out"])
        .arg(ws.path("keys"))
        .ok();
    let history = history(&ws);
    ws.lifeboat(&[
        "hold",
        "place",
        &history[0].0,
        "--reason",
        "case 17",
        "--repo",
    ])
    .arg(ws.repo())
    .ok();
    let old_packs = packs(&ws);
    assert!(
        !escrow_opens(&ws),
        "the escrow key opens the repository before the rekey"
    );

    let config = write_config(&ws, true);
    let run = rekey_cmd(&ws, &config).arg("--json").run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    let nas = &report["nas"];
    assert_eq!(nas["rekey"]["rekeyed"], 3, "{report}");
    assert_eq!(nas["rekey"]["recipients_changed"], true);
    assert_eq!(nas["rekey"]["holds_moved"], 1);
    let indexes = nas["rekey"]["indexes_deleted"].as_u64().unwrap()
        + nas["rekey"]["prune"]["indexes_deleted"].as_u64().unwrap();
    assert!(indexes >= 3, "the old indexes are left: {report}");
    assert_eq!(nas["check"]["problems"].as_array().unwrap().len(), 0);
    // Every old pack is gone; the escrow key opens everything now, the recovery key too.
    let now = packs(&ws);
    assert!(old_packs.iter().all(|p| !now.contains(p)));
    assert!(escrow_opens(&ws));
    all_restore(&ws, &history, &ws.path("keys/acme-escrow.key"), "escrow");
    all_restore(&ws, &history, &ws.key(), "recovery");
    // The hold moved with its snapshot.
    let holds = ws
        .lifeboat(&["hold", "list", "--json", "--repo"])
        .arg(ws.repo())
        .ok()
        .json();
    assert_eq!(holds.as_array().unwrap().len(), 1, "{holds}");
    assert_eq!(holds[0]["reason"], "case 17");
    // The renaming is signed evidence, in the catalog's chain and in the repository.
    let evidence = ws
        .lifeboat(&["evidence", "list", "--json", "--tenant", "acme"])
        .ok()
        .json();
    let record = evidence
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["record"])
        .find(|r| r["kind"] == "rekey")
        .unwrap_or_else(|| panic!("no rekey record: {evidence}"));
    assert_eq!(record["outcome"], "success", "{record}");
    for pair in nas["rekey"]["renamed"].as_array().unwrap() {
        let check = record["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == format!("snapshot {}", pair[0].as_str().unwrap()))
            .unwrap_or_else(|| panic!("{pair} not recorded: {record}"));
        assert_eq!(check["actual"], pair[1]);
    }
    let verified = ws
        .lifeboat(&["evidence", "verify", "--repo"])
        .arg(ws.repo())
        .arg("--cert")
        .arg(ws.path("keys/svc.cert"))
        .env("LIFEBOAT_DATA_DIR", ws.path("elsewhere"))
        .run();
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    assert!(verified.stderr.contains("acme: "), "{}", verified.stderr);
    // Run again: nothing to do.
    let again = rekey_cmd(&ws, &config).arg("--json").run();
    assert_eq!(again.json()["nas"]["rekey"]["rekeyed"], 0);

    // The escrow key removed again: after the rekey it opens nothing.
    let config = write_config(&ws, false);
    rekey_cmd(&ws, &config).ok();
    assert!(!escrow_opens(&ws));
    all_restore(&ws, &history, &ws.key(), "removed");
}

/// Starts a rekey and kills it once `ready` holds (or it has ended).
fn kill_rekey_when(ws: &Workspace, config: &Path, ready: &dyn Fn() -> bool) {
    let mut child: Child = {
        let mut c = rekey_cmd(ws, config).0;
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c.spawn().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() && !ready() {
        assert!(Instant::now() < deadline, "the rekey never got there");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().ok();
    child.wait().unwrap();
}

#[test]
fn a_rekey_killed_at_ten_points_ends_clean_when_run_again() {
    let ws = Workspace::for_tenant(Store::Local, "acme");
    ws.lifeboat(&["keys", "generate", "--name", "acme-escrow", "--out"])
        .arg(ws.path("keys"))
        .ok();
    let history = history(&ws);
    for round in 0..10 {
        // Each round changes the recipients, so each rekey has all of it to do again.
        let escrow = round % 2 == 0;
        let config = write_config(&ws, escrow);
        let before: Vec<PathBuf> = packs(&ws);
        let wanted = 1 + round % 4;
        // Killed once it has written a few new packs, at a different point each round.
        kill_rekey_when(&ws, &config, &|| {
            packs(&ws).iter().filter(|p| !before.contains(p)).count() >= wanted
        });
        let run = rekey_cmd(&ws, &config).run();
        assert_eq!(run.code, 0, "round {round}: {}", run.stderr);
        assert!(
            run.stderr.contains("check --read-data: no problems"),
            "{}",
            run.stderr
        );
        assert_eq!(escrow_opens(&ws), escrow, "round {round}");
        all_restore(&ws, &history, &ws.key(), &format!("round{round}"));
        assert!(
            fs::read_dir(ws.objects_root().join("tmp"))
                .unwrap()
                .next()
                .is_none(),
            "round {round}: tmp/ not empty"
        );
    }
}

#[test]
fn new_data_follows_a_change_of_recipients_at_once() {
    let ws = Workspace::for_tenant(Store::Local, "acme");
    ws.lifeboat(&["keys", "generate", "--name", "acme-escrow", "--out"])
        .arg(ws.path("keys"))
        .ok();
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), "before").unwrap();
    // A source on the daemon with the escrow key added: its next backup is readable with it.
    let config = write_config(&ws, true);
    let mut text = fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[contracts.c]\ntenant = \"acme\"\nrpo = \"1d\"\nrto = \"1d\"\n\n[sources.files]\n\
         tenant = \"acme\"\ncontract = \"c\"\nkind = \"files\"\npaths = [\"{}\"]\ntier = \"7/1\"\n\
         targets = [\"nas\"]\n",
        src.display()
    ));
    text = text.replace(
        "[service]\n",
        "[service]\njitter = \"0s\"\nprune = \"never\"\n",
    );
    fs::write(&config, text).unwrap();
    ws.backup(&[&src]);
    assert!(!escrow_opens(&ws));
    // The workspace's environment: its data directory, and its catalog.
    let mut cmd = ws.lifeboat(&["serve", "--config"]).0;
    cmd.arg(&config);
    let server = common::server::Server::start(cmd);
    let admin = ws.admin_token(&config);
    fs::write(src.join("a"), "after").unwrap();
    server.back_up_now("files", &admin);
    drop(server);
    // The newest snapshot opens with the escrow key; the older one still needs a rekey.
    assert!(escrow_opens(&ws));
    let list = ws.snapshots_json();
    let oldest = list.as_array().unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let old = ws
        .lifeboat(&["restore", "--repo"])
        .arg(ws.repo())
        .arg("--key")
        .arg(ws.path("keys/acme-escrow.key"))
        .args(&[&oldest, "--target"])
        .arg(ws.path("old"))
        .run();
    assert_ne!(old.code, 0);
}
