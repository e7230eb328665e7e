//! A centre and three customer sites, each site's agent in a network namespace of its own:
//! a loopback and nothing else, so nothing can connect to it. It reaches the centre and the
//! S3 server through bridges that carry only the connections it opens (`common::bridge`).
//! The agents back up to S3 with credentials only they hold. The centre is stopped for a
//! while; on the shared simulated clock (ten minutes a second) the agents go on backing up,
//! and once the centre is back every record of every agent arrives, once and in order, and
//! each tenant's report bundle verifies.

mod common;
use common::agent::Agent;
use common::bridge::{in_namespace, namespaces, run_in_namespace, Bridge};
use common::s3::S3Server;
use common::server::Server;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const NOW: &str = "2026-11-25T12:00:00Z";
const SITES: [&str; 3] = ["north", "south", "west"];

fn clock(cmd: &mut Command, at: &str) {
    cmd.env("LIFEBOAT_CLOCK_START", NOW)
        .env("LIFEBOAT_CLOCK_SPEED", "600")
        .env("LIFEBOAT_CLOCK_AT", at);
}

/// Three tenants with a site each; each site's files go to the tenant's repository on S3.
fn config(ws: &Workspace, s3: &S3Server) -> std::path::PathBuf {
    let mut text = format!(
        "[service]\nsigning_key = \"{keys}/svc.key\"\nrecipients = [\"{keys}/rec.cert\"]\n\
         prune = \"never\"\n\n[targets.cloud]\nkind = \"s3\"\nurl = \"s3://{BUCKET}/lifeboat\"\n\
         endpoint = \"{endpoint}\"\nregion = \"us-east-1\"\npath_style = true\n",
        keys = ws.path("keys").display(),
        endpoint = s3.endpoint(),
    );
    for site in SITES {
        let share = ws.path(&format!("{site}/share"));
        std::fs::create_dir_all(&share).unwrap();
        random_file(&share.join("ledger.bin"), 50_000, site.len() as u64);
        let upper = site.to_uppercase();
        text.push_str(&format!(
            "\n[targets.cloud.tenants.{site}]\ncredentials_env = \"{upper}_S3\"\n\n\
             [tenants.{site}]\nname = \"{site} Ltd\"\n\n\
             [contracts.{site}-files]\ntenant = \"{site}\"\nrpo = \"1d\"\nrto = \"4h\"\n\n\
             [sites.{site}-office]\ntenant = \"{site}\"\n\n\
             [sources.{site}-share]\ntenant = \"{site}\"\ncontract = \"{site}-files\"\n\
             kind = \"files\"\npaths = [\"{share}\"]\ntier = \"7/48\"\ntargets = [\"cloud\"]\n\
             site = \"{site}-office\"\n",
            share = share.display()
        ));
    }
    let path = ws.path("lifeboat.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn wait_for(what: &str, done: impl FnMut() -> bool, log: impl Fn() -> String) {
    common::agent::wait_for(what, Duration::from_secs(180), done, log)
}

fn records(srv: &Server, admin: &str, tenant: &str) -> Vec<serde_json::Value> {
    let all = srv
        .get(&format!("/api/v1/evidence?tenant={tenant}"), Some(admin))
        .json();
    all.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["agent"].is_string())
        .cloned()
        .collect()
}

#[test]
fn three_sites_in_namespaces_of_their_own_keep_working_while_the_centre_is_away() {
    if let Err(why) = namespaces() {
        eprintln!("skipped: {why}");
        return;
    }
    let ws = Workspace::empty(Store::Local);
    let s3 = S3Server::s3s_fs();
    s3.create_bucket(BUCKET);
    config(&ws, &s3);
    let at = chrono::Utc::now().to_rfc3339();
    let start_centre = |listen: &str| {
        let mut cmd = ws.lifeboat(&["serve", "--config"]).0;
        cmd.arg(ws.path("lifeboat.toml"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
        clock(&mut cmd, &at);
        Server::start_at(cmd, listen)
    };
    let mut srv = start_centre("127.0.0.1:0");
    let listen = srv.base.trim_start_matches("http://").to_string();
    let centre_port: u16 = listen.rsplit(':').next().unwrap().parse().unwrap();
    let admin = common::api::token(&ws, &["--role", "admin"]);
    let to_centre = Bridge::open(&ws.path("centre.sock"), centre_port);
    let to_s3 = Bridge::open(&ws.path("s3.sock"), s3.port);
    let exe = Path::new(env!("CARGO_BIN_EXE_lifeboat"));

    let mut agents = Vec::new();
    for site in SITES {
        let token = ws
            .lifeboat(&[
                "site",
                "enroll-token",
                &format!("{site}-office"),
                "--config",
            ])
            .arg(ws.path("lifeboat.toml"))
            .env("LIFEBOAT_NOW", NOW)
            .ok()
            .stdout
            .trim()
            .to_string();
        let dir = ws.path(&format!("{site}/agent")).display().to_string();
        let server = format!("http://127.0.0.1:{centre_port}");
        let enrolled = run_in_namespace(&mut in_namespace(
            &[&to_centre],
            exe,
            &[
                "agent",
                "enroll",
                "--server",
                &server,
                "--token",
                &token,
                "--data-dir",
                &dir,
            ]
            .map(String::from),
        ));
        assert!(
            enrolled.status.success(),
            "{}",
            String::from_utf8_lossy(&enrolled.stderr)
        );
        let mut cmd = in_namespace(
            &[&to_centre, &to_s3],
            exe,
            &["agent", "run", "--every", "1s", "--data-dir", &dir].map(String::from),
        );
        // The site's own S3 credentials, which the centre never has.
        let upper = site.to_uppercase();
        cmd.env(format!("{upper}_S3_ACCESS_KEY_ID"), common::s3::ACCESS_KEY)
            .env(
                format!("{upper}_S3_SECRET_ACCESS_KEY"),
                common::s3::SECRET_KEY,
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
        clock(&mut cmd, &at);
        agents.push(Agent::start(&mut cmd));
    }
    let logs = |agents: &[Agent]| {
        agents
            .iter()
            .map(|a| a.log())
            .collect::<Vec<_>>()
            .join("\n----\n")
    };

    // Every site backs up to S3 and its records reach the centre.
    for (site, _) in SITES.iter().zip(&agents) {
        wait_for(
            &format!("a record of {site} at the centre"),
            || !records(&srv, &admin, site).is_empty(),
            || logs(&agents),
        );
    }
    // Each agent's namespace has no interface but its loopback, and listens on nothing but
    // its bridges' ends.
    for a in &agents {
        let agent_pid = a.child.id();
        let dev = std::fs::read_to_string(format!("/proc/{agent_pid}/net/dev")).unwrap();
        let interfaces: Vec<&str> = dev
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(str::trim)
            .collect();
        assert_eq!(interfaces, ["lo"], "{dev}");
        let tcp = std::fs::read_to_string(format!("/proc/{agent_pid}/net/tcp")).unwrap();
        let listening: Vec<u16> = tcp
            .lines()
            .skip(1)
            .filter(|l| l.split_whitespace().nth(3) == Some("0A"))
            .filter_map(|l| {
                l.split_whitespace()
                    .nth(1)?
                    .rsplit(':')
                    .next()
                    .map(str::to_string)
            })
            .filter_map(|p| u16::from_str_radix(&p, 16).ok())
            .collect();
        let mut listening = listening;
        listening.sort_unstable();
        let mut bridges = vec![centre_port, s3.port];
        bridges.sort_unstable();
        assert_eq!(listening, bridges, "{tcp}");
    }

    // The centre stops; every site goes on backing up.
    srv.stop();
    let before: Vec<usize> = agents.iter().map(|a| a.backups("cloud")).collect();
    for (a, b) in agents.iter().zip(&before) {
        wait_for(
            "two backups while the centre is away",
            || a.backups("cloud") >= b + 2,
            || logs(&agents),
        );
    }
    let srv = start_centre(&listen);
    for site in SITES {
        let at_site = lifeboat::catalog::Catalog::open(&ws.path(&format!("{site}/agent")))
            .unwrap()
            .evidence(Some(site))
            .unwrap()
            .len();
        wait_for(
            &format!("every record of {site} at the centre"),
            || records(&srv, &admin, site).len() >= at_site,
            || logs(&agents),
        );
        let got: Vec<u64> = records(&srv, &admin, site)
            .iter()
            .map(|r| r["sequence"].as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = (1..=got.len() as u64).collect();
        assert_eq!(got, expected, "{site}: each record once, in order");

        // The tenant's report rests on its agent's chain, and verifies offline.
        let bundle = srv.get(
            &format!("/api/v1/reports/{site}-files?period=2026-11&format=bundle"),
            Some(&admin),
        );
        assert_eq!(bundle.status, 200, "{}", bundle.text());
        let tar = ws.path(&format!("{site}.tar"));
        std::fs::write(&tar, &bundle.body).unwrap();
        let verified = ws
            .lifeboat(&["report", "verify"])
            .arg(&tar)
            .arg("--cert")
            .arg(ws.path("keys/svc.cert"))
            .run();
        assert_eq!(verified.code, 0, "{}", verified.stderr);
    }
    // The data is on S3, in each tenant's own repository.
    for site in SITES {
        assert!(s3.bucket_dir(BUCKET).join("lifeboat").join(site).is_dir());
    }
    drop(agents);
}
