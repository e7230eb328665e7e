//! Garage as the MSP's own distributed storage: a three-node cluster on 127.0.0.1 holding every
//! object on all three nodes. Backups, restores, copies and prunes work on it, and go on
//! working while one node is down; the node that comes back catches up.

mod common;
use common::garage::GarageCluster;
use common::*;
use std::fs;
use std::path::Path;

/// A Lifeboat command against node `node` of the cluster.
fn lifeboat(ws: &Workspace, cluster: &GarageCluster, node: usize, args: &[&str]) -> Cmd {
    let mut c = ws.lifeboat(args);
    for (k, v) in cluster.client_env(node) {
        c.env(k, v);
    }
    // Parts of 5 MiB: the packs go up as multipart uploads.
    c.env("LIFEBOAT_S3_PART_SIZE", "5");
    c
}

fn backup(ws: &Workspace, cluster: &GarageCluster, node: usize, repo: &str, src: &Path) -> String {
    let mut c = lifeboat(ws, cluster, node, &["backup", "--json", "--repo", repo]);
    c.arg("--signing-key").arg(ws.path("keys/svc.key")).arg(src);
    let out = c.ok().json();
    out["id"].as_str().expect("a snapshot id").to_string()
}

fn restores_the_same(
    ws: &Workspace,
    cluster: &GarageCluster,
    node: usize,
    repo: &str,
    id: &str,
    src: &Path,
) {
    let out = ws.path(&format!("restored-{}-{node}", &id[..8]));
    let mut c = lifeboat(
        ws,
        cluster,
        node,
        &["restore", "--repo", repo, id, "--target"],
    );
    c.arg(&out).arg("--key").arg(ws.key()).ok();
    let diff = diff_trees(src, &out.join(src.strip_prefix("/").unwrap()));
    assert!(diff.is_empty(), "{repo} {id}: {diff:?}");
}

fn check(ws: &Workspace, cluster: &GarageCluster, node: usize, repo: &str) {
    let mut c = lifeboat(
        ws,
        cluster,
        node,
        &["check", "--read-data", "--repo", repo, "--key"],
    );
    let run = c.arg(ws.key()).ok();
    assert!(run.stderr.contains("no problems"), "{}", run.stderr);
}

#[test]
fn backups_restores_copies_and_prunes_work_on_three_nodes_and_with_one_down() {
    let mut cluster = GarageCluster::start(&["lifeboat", "second-site"]);
    let ws = Workspace::empty(Store::Local);
    let repo = "s3://lifeboat/acme";
    let copy = "s3://second-site/acme";
    let src = ws.path("src");
    fs::create_dir_all(src.join("docs")).unwrap();
    random_file(&src.join("erp.dump"), 20 << 20, 1);
    for i in 0..50 {
        fs::write(
            src.join(format!("docs/{i}.txt")),
            format!("document {i}\n").repeat(100),
        )
        .unwrap();
    }

    // All three nodes up.
    lifeboat(&ws, &cluster, 0, &["init", "--repo", repo, "--recipient"])
        .arg(ws.path("keys/rec.cert"))
        .arg("--signing-key")
        .arg(ws.path("keys/svc.key"))
        .ok();
    let first = backup(&ws, &cluster, 0, repo, &src);
    restores_the_same(&ws, &cluster, 1, repo, &first, &src);
    lifeboat(
        &ws,
        &cluster,
        0,
        &["copy", "--json", "--from", repo, "--to", copy],
    )
    .ok();
    check(&ws, &cluster, 2, copy);

    // The third node is cut off: everything goes on through the other two.
    cluster.stop_node(2);
    random_file(&src.join("erp.dump"), 20 << 20, 2);
    fs::remove_file(src.join("docs/7.txt")).unwrap();
    let second = backup(&ws, &cluster, 0, repo, &src);
    restores_the_same(&ws, &cluster, 1, repo, &second, &src);
    let copied = lifeboat(
        &ws,
        &cluster,
        1,
        &["copy", "--json", "--from", repo, "--to", copy],
    )
    .ok()
    .json();
    assert_eq!(
        copied["snapshots_copied"].as_array().unwrap().len(),
        1,
        "{copied}"
    );
    lifeboat(
        &ws,
        &cluster,
        0,
        &["forget", "--repo", repo, "--signing-key"],
    )
    .arg(ws.path("keys/svc.key"))
    .arg(&first)
    .ok();
    let pruned = lifeboat(
        &ws,
        &cluster,
        0,
        &["prune", "--json", "--repo", repo, "--signing-key"],
    )
    .arg(ws.path("keys/svc.key"))
    .ok()
    .json();
    assert!(pruned["packs_deleted"].as_u64().unwrap() > 0, "{pruned}");
    check(&ws, &cluster, 0, repo);
    check(&ws, &cluster, 1, copy);

    // Back again: it serves what was written while it was away. Its listings may still name
    // what was deleted meanwhile until Garage's table sync catches up; Lifeboat reads such an
    // object as deleted, not as damage.
    cluster.start_node(2);
    restores_the_same(&ws, &cluster, 2, repo, &second, &src);
    check(&ws, &cluster, 2, repo);
    // A table sync (what the README advises after an outage) brings node 2's listings up to
    // date: nothing listed is gone any more.
    cluster.garage(2, &["repair", "--all-nodes", "--yes", "tables"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let mut c = lifeboat(&ws, &cluster, 2, &["check", "--json", "--repo", repo]);
        let report = c.ok().json();
        if report["vanished"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never in sync: {report}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let listed = lifeboat(&ws, &cluster, 2, &["snapshots", "--json", "--repo", repo])
        .ok()
        .json();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second.as_str()]);
}
