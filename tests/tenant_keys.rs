//! Per-tenant S3 credentials, on moto's S3 server with its IAM checks on and the policy of
//! docs/s3-tenant-policy.json given to each tenant's key: the service backs each tenant up
//! through that tenant's key alone; with bakery's key, acme's objects can be neither read
//! nor deleted (nor restored from); with acme's, the customer restores. A variable that is
//! not set is named; a bad per-tenant table is a configuration problem.

mod common;
use common::s3::{find_tool, S3Server};
use common::server::Server;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const BUCKET: &str = "msp-dr";

/// The documented policy for `tenant`, without the `s3:prefix` condition moto cannot
/// evaluate (see docs/s3-tenant-access.md).
fn policy(tenant: &str) -> serde_json::Value {
    let text = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/s3-tenant-policy.json"),
    )
    .unwrap()
    .replace("BUCKET", BUCKET)
    .replace("PREFIX", "lifeboat")
    .replace("TENANT", tenant);
    let mut policy: serde_json::Value = serde_json::from_str(&text).unwrap();
    for s in policy["Statement"].as_array_mut().unwrap() {
        s.as_object_mut().unwrap().remove("Condition");
    }
    policy
}

struct Key {
    id: String,
    secret: String,
}

/// A moto server with the bucket, a user per tenant with its policy, and checks on.
fn server_with_tenant_keys(ws: &Workspace) -> (S3Server, Key, Key) {
    let server = S3Server::moto();
    let spec = ws.path("iam.json");
    fs::write(
        &spec,
        serde_json::json!({
            "bucket": BUCKET,
            "users": {"lifeboat-acme": policy("acme"), "lifeboat-bakery": policy("bakery")},
        })
        .to_string(),
    )
    .unwrap();
    let python = find_tool("moto_server").with_file_name("python3");
    let out = tool(
        Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/moto_iam.py"))
            .arg(server.endpoint())
            .arg(&spec),
    );
    let keys: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let key = |user: &str| Key {
        id: keys[user]["id"].as_str().unwrap().to_string(),
        secret: keys[user]["secret"].as_str().unwrap().to_string(),
    };
    (server, key("lifeboat-acme"), key("lifeboat-bakery"))
}

/// The keys of the objects under acme's prefix, as `client` lists them.
fn acme_objects(rt: &tokio::runtime::Runtime, client: &aws_sdk_s3::Client) -> Vec<String> {
    let list = client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("lifeboat/acme/");
    let listed = rt.block_on(list.send()).unwrap();
    let keys = listed.contents().iter();
    keys.map(|o| o.key().unwrap().to_string()).collect()
}

/// The store refused a request on `key` for want of permission.
fn assert_denied<E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<(), E>,
    key: &str,
) {
    let err = r.expect_err("another tenant's key reached one of acme's objects");
    assert_eq!(err.code(), Some("AccessDenied"), "{key}: {err:?}");
}

fn client(server: &S3Server, key: &Key) -> (tokio::runtime::Runtime, aws_sdk_s3::Client) {
    common::s3::sdk_client(server, &key.id, &key.secret)
}

fn write_config(ws: &Workspace, server: &S3Server) -> PathBuf {
    for tenant in ["acme", "bakery"] {
        let src = ws.path(&format!("srv/{tenant}"));
        fs::create_dir_all(&src).unwrap();
        random_file(&src.join("data.bin"), 1 << 20, tenant.len() as u64);
    }
    let mut text = format!(
        "[service]\nsigning_key = \"{keys}/svc.key\"\nrecipients = [\"{keys}/rec.cert\"]\n\
         jitter = \"0s\"\nprune = \"never\"\n\n[targets.cloud]\nkind = \"s3\"\n\
         url = \"s3://{BUCKET}/lifeboat\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\n\
         path_style = true\n",
        server.endpoint(),
        keys = ws.path("keys").display(),
    );
    for tenant in ["acme", "bakery"] {
        text.push_str(&format!(
            "\n[targets.cloud.tenants.{tenant}]\ncredentials_env = \"{}_S3\"\n\n\
             [tenants.{tenant}]\nname = \"{tenant}\"\n\n[contracts.{tenant}-c]\n\
             tenant = \"{tenant}\"\nrpo = \"1d\"\nrto = \"1d\"\n\n[sources.{tenant}-files]\n\
             tenant = \"{tenant}\"\ncontract = \"{tenant}-c\"\nkind = \"files\"\n\
             paths = [\"{}\"]\ntier = \"7/1\"\ntargets = [\"cloud\"]\n",
            tenant.to_uppercase(),
            ws.path(&format!("srv/{tenant}")).display(),
        ));
    }
    let path = ws.path("lifeboat.toml");
    fs::write(&path, text).unwrap();
    path
}

/// The environment with one key as the standard AWS credentials.
fn as_key(cmd: &mut Cmd, server: &S3Server, key: &Key) {
    for (k, v) in server.client_env() {
        cmd.env(k, v);
    }
    cmd.env("AWS_ACCESS_KEY_ID", &key.id)
        .env("AWS_SECRET_ACCESS_KEY", &key.secret);
}

#[test]
fn each_tenant_is_written_with_its_own_key_and_no_other_key_reaches_it() {
    let ws = Workspace::empty(Store::Local);
    let (server, acme, bakery) = server_with_tenant_keys(&ws);
    let config = write_config(&ws, &server);

    // The service's own credentials reach nothing here: each backup goes through its tenant's
    // key, or fails.
    // The workspace's environment: its data directory, and its catalog.
    let mut cmd = ws.lifeboat(&["serve", "--config"]).0;
    cmd.arg(&config)
        .env("LIFEBOAT_CLOCK_START", "2026-11-10T10:00:00Z")
        .env("AWS_ACCESS_KEY_ID", "nobody")
        .env("AWS_SECRET_ACCESS_KEY", "nobody-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("ACME_S3_ACCESS_KEY_ID", &acme.id)
        .env("ACME_S3_SECRET_ACCESS_KEY", &acme.secret)
        .env("BAKERY_S3_ACCESS_KEY_ID", &bakery.id)
        .env("BAKERY_S3_SECRET_ACCESS_KEY", &bakery.secret);
    let daemon = Server::start(cmd);
    let admin = ws.admin_token(&config);
    for source in ["acme-files", "bakery-files"] {
        daemon.back_up_now(source, &admin);
    }
    drop(daemon);

    // Acme's objects, seen with acme's key.
    let (rt, as_acme) = client(&server, &acme);
    let keys = acme_objects(&rt, &as_acme);
    assert!(keys.iter().any(|k| k.contains("/data/")), "{keys:?}");
    assert!(keys.iter().any(|k| k.contains("/snapshots/")), "{keys:?}");

    // With bakery's key, none of them can be read or deleted.
    let (_rt2, as_bakery) = client(&server, &bakery);
    for key in &keys {
        let read = rt.block_on(as_bakery.get_object().bucket(BUCKET).key(key).send());
        assert_denied(read.map(|_| ()), key);
        let delete = rt.block_on(as_bakery.delete_object().bucket(BUCKET).key(key).send());
        assert_denied(delete.map(|_| ()), key);
    }
    // Still all there.
    assert_eq!(acme_objects(&rt, &as_acme), keys);

    // Lifeboat with bakery's key cannot restore acme's; it says the store refused.
    let repo = format!("s3://{BUCKET}/lifeboat/acme");
    let mut c = ws.lifeboat(&["restore", "--repo", &repo, "--signer"]);
    c.arg(ws.path("keys/svc.cert"))
        .arg("--key")
        .arg(ws.key())
        .args(&["latest", "--target"])
        .arg(ws.path("nope"));
    as_key(&mut c, &server, &bakery);
    let refused = c.run();
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("AccessDenied") || refused.stderr.contains("refused"),
        "{}",
        refused.stderr
    );
    // With acme's key, the customer restores.
    let out = ws.path("restored");
    let mut c = ws.lifeboat(&["restore", "--repo", &repo, "--signer"]);
    c.arg(ws.path("keys/svc.cert"))
        .arg("--key")
        .arg(ws.key())
        .args(&["latest", "--target"])
        .arg(&out);
    as_key(&mut c, &server, &acme);
    c.ok();
    let src = ws.path("srv/acme");
    assert!(diff_trees(&src, &out.join(src.strip_prefix("/").unwrap())).is_empty());
}

#[test]
fn a_missing_variable_is_named_and_bad_tenant_tables_are_problems() {
    let ws = Workspace::empty(Store::Local);
    let config = ws.path("lifeboat.toml");
    fs::write(
        &config,
        format!(
            "[service]\nsigning_key = \"{keys}/svc.key\"\n\n[targets.cloud]\nkind = \"s3\"\n\
             url = \"s3://{BUCKET}/lifeboat\"\nendpoint = \"http://127.0.0.1:9\"\n\n\
             [targets.cloud.tenants.acme]\ncredentials_env = \"ACME_S3\"\n\n\
             [tenants.acme]\nname = \"ACME\"\n",
            keys = ws.path("keys").display()
        ),
    )
    .unwrap();
    let run = ws
        .lifeboat(&["tenant", "purge", "acme", "--dry-run", "--config"])
        .arg(&config)
        .run();
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("ACME_S3_ACCESS_KEY_ID is not set"),
        "{}",
        run.stderr
    );

    fs::write(
        &config,
        format!(
            "[service]\nsigning_key = \"{keys}/svc.key\"\n\n[targets.nas]\nkind = \"local\"\n\
             path = \"/tmp/nas\"\n\n[targets.nas.tenants.acme]\nprofile = \"acme\"\n\n\
             [targets.cloud]\nkind = \"s3\"\nurl = \"s3://{BUCKET}/lifeboat\"\n\n\
             [targets.cloud.tenants.acme]\ncredentials_env = \"acme-s3\"\nprofile = \"acme\"\n\n\
             [targets.cloud.tenants.ghost]\nurl = \"http://not-s3\"\n\n\
             [tenants.acme]\nname = \"ACME\"\n",
            keys = ws.path("keys").display()
        ),
    )
    .unwrap();
    let check = ws
        .lifeboat(&["config", "check", "--config"])
        .arg(&config)
        .run();
    assert_eq!(check.code, 1, "{}", check.stderr);
    for expected in [
        "target 'nas': tenant 'acme': per-tenant settings are for s3 targets",
        "target 'cloud': tenant 'acme': give credentials_env or profile, not both",
        "credentials_env 'acme-s3' is a prefix of environment variables",
        "target 'cloud': tenants.ghost: there is no [tenants.ghost]",
        "target 'cloud': tenant 'ghost': url:",
    ] {
        assert!(
            check.stderr.contains(expected),
            "{expected}: {}",
            check.stderr
        );
    }
}
