//! Object Lock, against moto's S3 server (the one here that implements it): a snapshot's
//! objects are locked until its retain-until date, a newer snapshot lengthens the locks of the
//! packs it reuses, and locked objects are never deleted.

mod common;
use aws_sdk_s3::types::ObjectLockMode;
use common::s3::S3Server;
use common::*;
use lifeboat::backend::{Backend, ObjectKind, S3Backend, S3Options, S3Url};
use std::fs;

const BUCKET: &str = "locked-bucket";

fn client(server: &S3Server) -> (tokio::runtime::Runtime, aws_sdk_s3::Client) {
    common::s3::sdk_client(server, common::s3::ACCESS_KEY, common::s3::SECRET_KEY)
}

/// Gives the workspace a moto server with an Object Lock bucket; returns a client of it.
fn locked_bucket(ws: &mut Workspace) -> (tokio::runtime::Runtime, aws_sdk_s3::Client) {
    let server = S3Server::moto();
    let (rt, c) = client(&server);
    rt.block_on(
        c.create_bucket()
            .bucket(BUCKET)
            .object_lock_enabled_for_bucket(true)
            .send(),
    )
    .unwrap();
    ws.server = Some(server);
    (rt, c)
}

/// Retain-until dates (seconds) of every object under `prefix`, by key.
fn retention(
    rt: &tokio::runtime::Runtime,
    c: &aws_sdk_s3::Client,
    prefix: &str,
) -> Vec<(String, Option<i64>)> {
    rt.block_on(async {
        let list = c
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(prefix)
            .send()
            .await
            .unwrap();
        let mut out = Vec::new();
        for o in list.contents() {
            let key = o.key().unwrap().to_string();
            // moto answers GetObjectRetention with the object itself; HeadObject carries the
            // lock as headers, as on AWS.
            let head = c
                .head_object()
                .bucket(BUCKET)
                .key(&key)
                .send()
                .await
                .unwrap();
            let until = head.object_lock_retain_until_date().map(|d| d.secs());
            if until.is_some() {
                assert_eq!(
                    head.object_lock_mode(),
                    Some(&ObjectLockMode::Compliance),
                    "{key}"
                );
            }
            out.push((key, until));
        }
        out
    })
}

/// The packs a snapshot's manifest (stored at `key`) lists.
fn manifest_packs(rt: &tokio::runtime::Runtime, c: &aws_sdk_s3::Client, key: &str) -> Vec<String> {
    let object = rt
        .block_on(c.get_object().bucket(BUCKET).key(key).send())
        .unwrap();
    let signed = rt.block_on(object.body.collect()).unwrap().into_bytes();
    let manifest: serde_json::Value =
        serde_json::from_slice(&lifeboat::repo::crypto::unverified_content(&signed).unwrap())
            .unwrap();
    manifest["packs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

fn backup(ws: &Workspace, repo: &str, src: &std::path::Path, days: u32) -> serde_json::Value {
    ws.lifeboat(&[
        "backup",
        "--json",
        "--repo",
        repo,
        "--retain-days",
        &days.to_string(),
    ])
    .arg("--signing-key")
    .arg(ws.path("keys/svc.key"))
    .arg(src)
    .ok()
    .json()
}

#[test]
fn snapshots_lock_their_objects_and_reuse_lengthens_locks() {
    let mut ws = Workspace::empty(Store::Local);
    let (rt, c) = locked_bucket(&mut ws);
    let repo = format!("s3://{BUCKET}/repo");
    ws.init_at(&repo).ok();

    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("a"), 20 << 20, 1);
    let day = 86_400;
    let now = chrono::Utc::now().timestamp();
    let first = backup(&ws, &repo, &src, 30);
    assert!(first["objects_locked"].as_u64().unwrap() >= 1, "{first}");

    // Every object, config included, is locked at least 30 days.
    let locks = retention(&rt, &c, "repo/");
    assert!(locks.len() >= 5, "{locks:?}");
    for (key, until) in &locks {
        let until = until.unwrap_or_else(|| panic!("{key} is not locked"));
        assert!(until >= now + 30 * day, "{key} locked only until {until}");
    }

    // The same data kept for 60 days: the reused packs' locks are lengthened before the
    // new snapshot is committed.
    let second = backup(&ws, &repo, &src, 60);
    assert!(
        second["bytes_added"].as_u64().unwrap() < 1 << 20,
        "{second}"
    );
    assert!(second["objects_locked"].as_u64().unwrap() >= 2, "{second}");
    let needed = manifest_packs(
        &rt,
        &c,
        &format!("repo/snapshots/{}", second["id"].as_str().unwrap()),
    );
    assert!(needed.len() >= 2, "{needed:?}");
    let locks = retention(&rt, &c, "repo/data/");
    let reused: Vec<_> = locks
        .iter()
        .filter(|(k, _)| needed.iter().any(|p| k.ends_with(p)))
        .collect();
    assert_eq!(reused.len(), needed.len(), "{locks:?}");
    for (key, until) in reused {
        assert!(
            until.unwrap() >= now + 60 * day,
            "{key}, reused by the 60-day snapshot, is locked only until {until:?}"
        );
    }
    // A third run with a shorter retention changes nothing.
    let third = backup(&ws, &repo, &src, 10);
    assert_eq!(third["objects_locked"], 0, "{third}");

    // Locked objects are not deleted: the backend refuses and says until when.
    for (k, v) in ws.server.as_ref().unwrap().client_env() {
        // SAFETY-free in edition 2021; this test's threads read no environment meanwhile.
        std::env::set_var(k, v);
    }
    let backend = S3Backend::open(
        &S3Url::parse(&repo).unwrap(),
        S3Options {
            endpoint: Some(ws.server.as_ref().unwrap().endpoint()),
            path_style: true,
            region: Some("us-east-1".into()),
            ..S3Options::default()
        },
    )
    .unwrap();
    assert!(backend.object_lock());
    let (pack, _) = backend.list(ObjectKind::Data).unwrap().remove(0);
    let err = backend.delete(ObjectKind::Data, &pack).unwrap_err();
    assert!(err.to_string().contains("is locked until"), "{err}");
    assert!(backend.exists(ObjectKind::Data, &pack).unwrap());

    // And the repository restores.
    let out = ws.path("out");
    ws.lifeboat(&["restore", "--repo", &repo, "latest", "--target"])
        .arg(&out)
        .arg("--key")
        .arg(ws.key())
        .ok();
    assert_eq!(
        fs::read(out.join(src.strip_prefix("/").unwrap()).join("a")).unwrap(),
        fs::read(src.join("a")).unwrap()
    );
}

#[test]
fn without_object_lock_retention_is_recorded_but_nothing_is_locked() {
    let ws = Workspace::with(Store::S3);
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), "x").unwrap();
    let out = backup(&ws, &ws.repo(), &src, 7);
    assert_eq!(out["objects_locked"], 0);
    assert!(out["retain_until"].is_string(), "{out}");
}

#[test]
fn a_copy_to_a_locked_bucket_locks_what_the_copied_snapshots_need() {
    let mut ws = Workspace::with(Store::Local);
    let (rt, c) = locked_bucket(&mut ws);
    let second_site = format!("s3://{BUCKET}/dr");
    let local = ws.path("repo").display().to_string();
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("a"), 6 << 20, 9);
    let now = chrono::Utc::now().timestamp();
    let day = 86_400;

    backup(&ws, &local, &src, 14);
    ws.lifeboat(&["copy", "--from", &local, "--to", &second_site])
        .ok();
    for (key, until) in retention(&rt, &c, "dr/") {
        let until = until.unwrap_or_else(|| panic!("{key} is not locked"));
        assert!(until >= now + 14 * day, "{key} locked only until {until}");
    }

    // A later snapshot kept longer reuses the packs already there: the copy lengthens them.
    let later = backup(&ws, &local, &src, 45);
    let report = ws
        .lifeboat(&["copy", "--json", "--from", &local, "--to", &second_site])
        .ok()
        .json();
    assert_eq!(
        report["snapshots_copied"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    assert!(report["locks"]["locked"].as_u64().unwrap() >= 3, "{report}");
    let needed = manifest_packs(
        &rt,
        &c,
        &format!("dr/snapshots/{}", later["id"].as_str().unwrap()),
    );
    let locks = retention(&rt, &c, "dr/data/");
    let long: Vec<_> = locks
        .iter()
        .filter(|(k, _)| needed.iter().any(|p| k.ends_with(p)))
        .collect();
    assert_eq!(long.len(), needed.len(), "{locks:?}");
    for (key, until) in long {
        assert!(
            until.is_some_and(|u| u >= now + 45 * day),
            "{key}, needed by the 45-day snapshot, is locked only until {until:?}"
        );
    }
}

#[test]
fn forget_and_prune_keep_locked_objects_and_say_until_when() {
    let mut ws = Workspace::empty(Store::Local);
    let (rt, c) = locked_bucket(&mut ws);
    let repo = format!("s3://{BUCKET}/repo");
    ws.init_at(&repo).ok();
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("a"), 2 << 20, 5);
    let snap = backup(&ws, &repo, &src, 30);
    let id = snap["id"].as_str().unwrap();
    let writing = |args: &[&str]| {
        ws.lifeboat(args)
            .args(&["--json", "--repo", &repo])
            .arg("--signing-key")
            .arg(ws.path("keys/svc.key"))
            .ok()
            .json()
    };

    // The snapshot is locked for 30 days: forget keeps it and says until when.
    let forget = writing(&["forget", id]);
    let report = &forget["result"];
    assert!(
        report["forgotten"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert_eq!(
        report["still_locked"][0]["object"],
        format!("snapshots/{id}"),
        "{report}"
    );
    assert!(report["still_locked"][0]["until"].is_string());
    assert_eq!(retention(&rt, &c, "repo/snapshots/").len(), 1);

    // Two packs no snapshot needs (as a crashed backup leaves them): one locked, one not.
    let plant = |data: &[u8], lock_days: Option<i64>| -> String {
        let name = lifeboat::repo::ids::Hash::of(data).to_hex();
        let mut put = c
            .put_object()
            .bucket(BUCKET)
            .key(format!("repo/data/{}/{name}", &name[..2]))
            .body(data.to_vec().into());
        if let Some(days) = lock_days {
            put = put
                .object_lock_mode(ObjectLockMode::Compliance)
                .object_lock_retain_until_date(aws_smithy_types::DateTime::from_secs(
                    chrono::Utc::now().timestamp() + days * 86_400,
                ));
        }
        rt.block_on(put.send()).unwrap();
        name
    };
    let locked = plant(b"left over by a crashed backup, locked", Some(10));
    let loose = plant(b"left over by a crashed backup, not locked", None);

    let report = writing(&["prune"]);
    assert_eq!(report["packs_deleted"], 1, "{report}");
    let kept: Vec<&str> = report["still_locked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["object"].as_str().unwrap())
        .collect();
    assert_eq!(
        kept,
        vec![format!("data/{}/{locked}", &locked[..2])],
        "{report}"
    );
    let left: Vec<String> = retention(&rt, &c, "repo/data/")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(left.iter().any(|k| k.ends_with(&locked)));
    assert!(!left.iter().any(|k| k.ends_with(&loose)));
    // The locked snapshot still restores.
    let out = ws.path("out");
    ws.lifeboat(&["restore", "--repo", &repo, id, "--target"])
        .arg(&out)
        .arg("--key")
        .arg(ws.key())
        .ok();
}

#[test]
fn a_purge_keeps_what_object_lock_keeps_and_says_until_when() {
    let mut ws = Workspace::empty(Store::Local);
    let (_rt, _c) = locked_bucket(&mut ws);
    let repo = format!("s3://{BUCKET}/lb/acme");
    ws.init_at(&repo).ok();
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("a"), 2 << 20, 4);
    backup(&ws, &repo, &src, 1);
    let config = ws.path("lifeboat.toml");
    fs::write(
        &config,
        format!(
            "[service]\nsigning_key = \"{}\"\n\n[targets.vault]\nkind = \"s3\"\n\
             url = \"s3://{BUCKET}/lb\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\n\
             path_style = true\n\n[tenants.acme]\nname = \"ACME\"\n",
            ws.path("keys/svc.key").display(),
            ws.server.as_ref().unwrap().endpoint()
        ),
    )
    .unwrap();
    let run = ws
        .lifeboat(&["tenant", "purge", "acme", "--json", "--config"])
        .arg(&config)
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    let vault = &report["targets"]["vault"];
    let locked = vault["still_locked"].as_array().unwrap();
    assert!(locked.len() >= 3, "{report}");
    let tomorrow = chrono::Utc::now() + chrono::Duration::hours(23);
    for l in locked {
        let until: chrono::DateTime<chrono::Utc> = l["until"].as_str().unwrap().parse().unwrap();
        assert!(until > tomorrow, "{l}");
    }
    assert!(
        run.stderr.contains("kept by Object Lock until"),
        "{}",
        run.stderr
    );
    // The record of it says what is kept and until when.
    let evidence = ws.lifeboat(&["evidence", "list", "--json"]).ok().json();
    let record = &evidence.as_array().unwrap().last().unwrap()["record"];
    assert_eq!(record["kind"], "erasure");
    assert_eq!(record["outcome"], "failure");
    assert!(
        record["checks"][0]["actual"]
            .as_str()
            .unwrap()
            .contains("locked until"),
        "{record}"
    );
}

#[test]
fn a_rekey_locks_what_it_writes_and_leaves_old_manifests_to_their_locks() {
    let mut ws = Workspace::empty(Store::Local);
    let (rt, c) = locked_bucket(&mut ws);
    let repo = format!("s3://{BUCKET}/lb/acme");
    ws.init_at(&repo).ok();
    let src = ws.path("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("a"), 2 << 20, 5);
    let old = backup(&ws, &repo, &src, 1)["id"]
        .as_str()
        .unwrap()
        .to_string();
    ws.lifeboat(&["keys", "generate", "--name", "acme-escrow", "--out"])
        .arg(ws.path("keys"))
        .ok();
    let config = ws.path("lifeboat.toml");
    fs::write(
        &config,
        format!(
            "[service]\nsigning_key = \"{keys}/svc.key\"\nrecipients = [\"{keys}/rec.cert\"]\n\n\
             [targets.vault]\nkind = \"s3\"\nurl = \"s3://{BUCKET}/lb\"\nendpoint = \"{}\"\n\
             region = \"us-east-1\"\npath_style = true\n\n[tenants.acme]\nname = \"ACME\"\n\
             recipients = [\"{keys}/acme-escrow.cert\"]\n",
            ws.server.as_ref().unwrap().endpoint(),
            keys = ws.path("keys").display(),
        ),
    )
    .unwrap();
    let rekey = || {
        ws.lifeboat(&["tenant", "rekey", "acme", "--json", "--config"])
            .arg(&config)
            .arg("--key")
            .arg(ws.key())
            .run()
    };
    let run = rekey();
    // The old manifest cannot go before its lock ends: said, with the date, and exit 1.
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("kept by Object Lock"), "{}", run.stderr);
    let report = run.json();
    let vault = &report["vault"]["rekey"];
    assert_eq!(vault["rekeyed"], 1, "{report}");
    assert_eq!(vault["renamed"][0][0], old.as_str());
    let new = vault["renamed"][0][1].as_str().unwrap().to_string();
    let locked = vault["still_locked"].as_array().unwrap();
    assert_eq!(locked.len(), 1, "{report}");
    assert_eq!(locked[0]["object"], format!("snapshots/{old}"));
    assert_eq!(
        report["vault"]["check"]["problems"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // What the new snapshot needs is locked at least as long as the old one was.
    let locks: std::collections::HashMap<String, Option<i64>> =
        retention(&rt, &c, "lb/acme/").into_iter().collect();
    let old_until = locks[&format!("lb/acme/snapshots/{old}")].unwrap();
    let new_manifest = format!("lb/acme/snapshots/{new}");
    assert!(locks[&new_manifest].unwrap() >= old_until, "{locks:?}");
    let packs = manifest_packs(&rt, &c, &new_manifest);
    assert!(!packs.is_empty());
    for p in packs {
        let key = format!("lb/acme/data/{}/{p}", &p[..2]);
        assert!(locks[&key].unwrap() >= old_until, "{key}: {locks:?}");
    }
    let configs: Vec<&String> = locks
        .keys()
        .filter(|k| k.starts_with("lb/acme/config/"))
        .collect();
    assert_eq!(
        configs.len(),
        2,
        "the old config is locked too: {configs:?}"
    );
    assert!(configs.iter().all(|k| locks[*k].unwrap() >= old_until));

    // The escrow key opens the new snapshot; the repository reads as one despite two configs.
    let out = ws.path("out");
    ws.lifeboat(&["restore", "--repo", &repo, "--key"])
        .arg(ws.path("keys/acme-escrow.key"))
        .args(&[&new, "--target"])
        .arg(&out)
        .ok();
    let diff = diff_trees(&src, &out.join(src.strip_prefix("/").unwrap()));
    assert!(diff.is_empty(), "{diff:?}");
    // Run again: nothing more to move; the old manifest is still kept, and said so.
    let again = rekey();
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert_eq!(again.json()["vault"]["rekey"]["rekeyed"], 0);
}
