//! `forget` and `prune`: the data only forgotten snapshots used is deleted, what others need
//! stays, and nothing deleted is deduplicated against afterwards. On every backend.

mod common;
use common::*;
use std::fs;

fn backup_of(ws: &Workspace, dir: &std::path::Path) -> serde_json::Value {
    ws.backup(&[dir])
}

fn forget_then_prune_frees_only_what_forgotten_snapshots_used(store: Store) {
    let ws = Workspace::with(store);
    let (one, two) = (ws.path("one"), ws.path("two"));
    fs::create_dir_all(&one).unwrap();
    fs::create_dir_all(&two).unwrap();
    random_file(&one.join("old.db"), 6 << 20, 1);
    random_file(&two.join("new.db"), 6 << 20, 2);
    let first = backup_of(&ws, &one);
    let second = backup_of(&ws, &two);
    let before: u64 = ws
        .objects("data")
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();

    // Nothing is unused yet: prune deletes nothing.
    let idle = ws.signed_json(&["prune"]);
    assert_eq!(idle["packs_deleted"], 0, "{idle}");

    let id = first["id"].as_str().unwrap();
    let plan = ws.signed_json(&["forget", "--dry-run", &id[..12]]);
    assert_eq!(plan["result"]["forgotten"][0], id);
    assert_eq!(
        ws.objects("snapshots").len(),
        2,
        "a dry run changes nothing"
    );
    ws.signed_json(&["forget", id]);
    assert_eq!(ws.objects("snapshots").len(), 1);

    let plan = ws.signed_json(&["prune", "--dry-run"]);
    assert!(plan["packs_deleted"].as_u64().unwrap() >= 1, "{plan}");
    let packs = ws.objects("data").len();
    assert_eq!(packs, ws.objects("data").len(), "a dry run changes nothing");
    let report = ws.signed_json(&["prune"]);
    assert_eq!(report["packs_deleted"], plan["packs_deleted"], "{report}");
    assert!(
        report["bytes_freed"].as_u64().unwrap() >= 6 << 20,
        "{report}"
    );
    let after: u64 = ws
        .objects("data")
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(before - after, report["bytes_freed"].as_u64().unwrap());
    assert!(report["still_locked"].as_array().unwrap().is_empty());
    // The forgotten backup's index covered only packs that are gone now.
    assert!(report["indexes_deleted"].as_u64().unwrap() >= 1, "{report}");

    // What is left is whole, and the remaining snapshot restores.
    let check = ws.check(true).ok();
    assert!(check.stderr.contains("no problems"), "{}", check.stderr);
    let out = ws.path("out");
    ws.restore(second["id"].as_str().unwrap(), &out, &[]).ok();
    assert!(diff_trees(&two, &out.join(two.strip_prefix("/").unwrap())).is_empty());
    assert_ne!(ws.restore(id, &ws.path("gone"), &[]).code, 0);

    // Backing up the old data again stores it again: nothing deduplicates against deleted
    // packs, not even through the file cache.
    let again = backup_of(&ws, &one);
    assert!(again["bytes_added"].as_u64().unwrap() >= 6 << 20, "{again}");
    ws.check(true).ok();
    let out = ws.path("out-again");
    ws.restore(again["id"].as_str().unwrap(), &out, &[]).ok();
    assert!(diff_trees(&one, &out.join(one.strip_prefix("/").unwrap())).is_empty());

    // And a catalog rebuilt from the repository does not bring the deleted packs back.
    ws.lifeboat(&["catalog", "rebuild", "--repo"])
        .arg(ws.repo())
        .arg("--key")
        .arg(ws.key())
        .ok();
    let after_rebuild = backup_of(&ws, &one);
    assert!(
        after_rebuild["bytes_added"].as_u64().unwrap() < 1 << 20,
        "{after_rebuild}"
    );
    ws.check(true).ok();
}

fn forget_by_policy_decides_per_source_with_reasons(store: Store) {
    let ws = Workspace::with(store);
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    let mut ids = std::collections::HashMap::<&str, Vec<String>>::new();
    for (source, n) in [("erp", 3), ("share", 2)] {
        for i in 0..n {
            fs::write(src.join("f"), format!("{source} {i}")).unwrap();
            let out = ws
                .lifeboat(&[
                    "backup",
                    "--json",
                    "--tag",
                    &format!("source={source}"),
                    "--repo",
                ])
                .arg(ws.repo())
                .arg("--signing-key")
                .arg(ws.path("keys/svc.key"))
                .arg(&src)
                .ok()
                .json();
            ids.entry(source)
                .or_default()
                .push(out["id"].as_str().unwrap().into());
        }
    }

    let plan = ws.signed_json(&["forget", "--keep-last", "2", "--dry-run"]);
    assert_eq!(
        ws.objects("snapshots").len(),
        5,
        "a dry run changes nothing"
    );
    let sources = plan["plan"].as_array().unwrap();
    assert_eq!(sources.len(), 2, "{plan}");
    let erp = sources.iter().find(|s| s["source"] == "erp").unwrap();
    let decisions = erp["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 3);
    let oldest = &decisions[2];
    assert_eq!(oldest["id"], ids["erp"][0].as_str());
    assert_eq!(oldest["keep"], false);
    assert_eq!(oldest["reasons"][0], "not among last 2");
    assert_eq!(decisions[0]["reasons"][0], "newest snapshot of its source");
    let share = sources.iter().find(|s| s["source"] == "share").unwrap();
    assert!(share["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["keep"] == true));

    let done = ws.signed_json(&["forget", "--keep-last", "2"]);
    assert_eq!(
        done["result"]["forgotten"],
        serde_json::json!([ids["erp"][0]])
    );
    assert_eq!(ws.objects("snapshots").len(), 4);

    // Either snapshots or a policy, not both, not neither.
    for args in [
        vec!["forget", "--keep-last", "1", &ids["share"][0]],
        vec!["forget"],
    ] {
        let run = ws
            .lifeboat(&args)
            .arg("--repo")
            .arg(ws.repo())
            .arg("--signing-key")
            .arg(ws.path("keys/svc.key"))
            .run();
        assert_eq!(run.code, 2, "{}", run.stderr);
    }
}

/// `lifeboat hold SUBCOMMAND … --repo REPO`.
fn hold(ws: &Workspace, args: &[&str]) -> Run {
    let mut c = ws.lifeboat(&["hold"]);
    c.args(args).arg("--repo").arg(ws.repo());
    c.run()
}

fn a_held_snapshot_survives_retention_and_forget_until_released(store: Store) {
    let ws = Workspace::with(store);
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        fs::write(src.join("ledger"), format!("version {i}")).unwrap();
        ids.push(ws.backup(&[&src])["id"].as_str().unwrap().to_string());
    }
    let first = ids[0].as_str();
    hold(
        &ws,
        &["place", &first[..12], "--reason", "legal hold case 17"],
    )
    .ok();
    let listed = hold(&ws, &["list", "--json"]).ok().json();
    assert_eq!(listed[0]["snapshot"], first, "{listed}");
    assert_eq!(listed[0]["reason"], "legal hold case 17");

    // Retention keeps it, and says why; the unheld middle one goes.
    let done = ws.signed_json(&["forget", "--keep-last", "1"]);
    let decisions = done["plan"][0]["decisions"].as_array().unwrap();
    let held = decisions.iter().find(|d| d["id"] == first).unwrap();
    assert_eq!(held["keep"], true, "{done}");
    assert_eq!(held["reasons"][0], "pinned: held: legal hold case 17");
    assert_eq!(done["result"]["forgotten"], serde_json::json!([ids[1]]));

    // Forgetting it by name is refused while it is held.
    let refused = ws.signed_json(&["forget", first]);
    assert_eq!(refused["result"]["forgotten"], serde_json::json!([]));
    assert_eq!(refused["result"]["held"][0]["reason"], "legal hold case 17");
    assert_eq!(ws.objects("snapshots").len(), 2);

    // Released, it goes like any other; a second release finds nothing to release.
    hold(&ws, &["release", first]).ok();
    assert_eq!(
        hold(&ws, &["list", "--json"]).ok().json(),
        serde_json::json!([])
    );
    let gone = ws.signed_json(&["forget", first]);
    assert_eq!(gone["result"]["forgotten"], serde_json::json!([first]));
    let again = hold(&ws, &["release", first]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(again.stderr.contains("no such hold"), "{}", again.stderr);
    // A hold needs a reason.
    let bare = hold(&ws, &["place", &ids[2], "--reason", " "]);
    assert_eq!(bare.code, 2, "{}", bare.stderr);
    ws.check(true).ok();
}

on_every_backend!(
    forget_then_prune_frees_only_what_forgotten_snapshots_used,
    forget_by_policy_decides_per_source_with_reasons,
    a_held_snapshot_survives_retention_and_forget_until_released,
);
