//! `lifeboat serve --demo`: a self-contained service in one folder, to see Lifeboat work.
//!
//! The first start makes keys, a configuration with one tenant ("demo"), a contract, a source
//! backing up `fixtures/files` (or a small sample folder) every 15 minutes into a local
//! repository, and a drill spec; it queues a backup at once and requests a drill two minutes
//! later, so that the dashboard and the reports have something to show within minutes. Every
//! start prints the dashboard's address and a fresh customer and admin token.

use super::{exit, CliError};
use crate::api::auth::{self, Role};
use crate::catalog::Catalog;
use std::path::{Path, PathBuf};

pub const TENANT: &str = "demo";
pub const CONTRACT: &str = "demo-files";
pub const SOURCE: &str = "demo-share";
pub const DRILL: &str = "demo-restore";
/// The demo's second site, whose agent runs in the same process.
pub const SITE: &str = "demo-branch";
pub const SITE_SOURCE: &str = "demo-branch-files";
/// Where the branch's agent keeps its key and its work, in the demo's folder.
const AGENT_DIR: &str = "branch-agent";

/// Makes the demo in `dir` if it is not there yet; returns its configuration file.
pub fn prepare(dir: &Path, listen: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let config = dir.join("lifeboat.toml");
    if config.exists() {
        return Ok(config);
    }
    eprintln!("making a demo in {}", dir.display());
    let keys = dir.join("keys");
    super::keys::write_pair("service", &keys)?;
    super::keys::write_pair("recovery", &keys)?;
    // The customer's own key: their repository opens with it, and nothing else does.
    super::keys::write_pair(&format!("{TENANT}-escrow"), &keys)?;
    let files = match Path::new("fixtures/files").canonicalize() {
        Ok(p) if p.is_dir() => p,
        _ => sample_files(&dir.join("files"))?,
    };
    let branch = sample_files(&dir.join("branch-files"))?;
    let inside = files
        .strip_prefix("/")
        .unwrap_or(&files)
        .display()
        .to_string();
    let toml = |p: &Path| {
        p.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    };
    std::fs::write(
        dir.join(format!("{DRILL}.toml")),
        format!(
            r#"# The demo's restore drill: the newest snapshot restored into a temporary folder and checked.
description = "the demo share restores, and its files are all there"
source = "{SOURCE}"
schedule = "0 0 6 * * MON"

[environment]
kind = "dir"

[[checks]]
name = "the README is there"
file = "{inside}/README.txt"

[[checks]]
name = "every file restored"
command = ["sh", "-c", "test $(find {inside} -type f | wc -l) -ge 1"]
"#
        ),
    )?;
    let text = format!(
        r#"# The Lifeboat demo: one tenant, one contract, one folder backed up every 15 minutes.
[service]
data_dir = "{data}"
listen = "{listen}"
signing_key = "{keys}/service.key"
recipients = ["{keys}/recovery.cert"]
drill_key = "{keys}/recovery.key"
drills = ["{DRILL}.toml"]
jitter = "0s"

[targets.local]
kind = "local"
path = "{repo}"

# The tenant's data is in a repository of its own, {repo}/{TENANT}, encrypted to the
# service's recovery key and to the customer's escrow key.
[tenants.{TENANT}]
name = "Demo Customer Ltd"
recipients = ["{keys}/{TENANT}-escrow.cert"]

[contracts.{CONTRACT}]
tenant = "{TENANT}"
rpo = "30m"
rto = "15m"
test_restores_per_year = 52
cancellation_notice = "1d"

[sources.{SOURCE}]
tenant = "{TENANT}"
contract = "{CONTRACT}"
kind = "files"
paths = ["{files}"]
tier = "7/96"
targets = ["local"]

# A second site of the customer, a branch office: its agent (here in the same process, with
# its own key and catalog in {agent}) fetches this source as its assignment, backs it up to
# the branch's own NAS and pushes the evidence here.
[sites.{SITE}]
tenant = "{TENANT}"
name = "Demo Customer branch office"

[targets.branch-nas]
kind = "local"
path = "{branch_nas}"

[sources.{SITE_SOURCE}]
tenant = "{TENANT}"
contract = "{CONTRACT}"
kind = "files"
paths = ["{branch}"]
tier = "7/96"
targets = ["branch-nas"]
site = "{SITE}"
"#,
        data = toml(&dir.join("data")),
        keys = toml(&keys),
        repo = toml(&dir.join("repo")),
        files = toml(&files),
        agent = toml(&dir.join(AGENT_DIR)),
        branch_nas = toml(&dir.join("branch-nas")),
        branch = toml(&branch),
    );
    let tmp = dir.join("lifeboat.toml.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &config)?;
    Ok(config)
}

/// A few files to back up when the demo does not run from Lifeboat's source tree.
fn sample_files(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir.join("docs"))?;
    std::fs::write(
        dir.join("README.txt"),
        "Sample files of the Lifeboat demo: backed up every 15 minutes.\n",
    )?;
    std::fs::write(
        dir.join("docs/prices.csv"),
        "item,price\nbread,3.20\nrolls,0.45\n",
    )?;
    Ok(dir.canonicalize()?)
}

/// On each start: a customer and an admin token; on the first, a backup at once and a drill
/// two minutes later. Returns the two tokens.
pub fn start(
    loaded: &crate::config::Loaded,
    drills: &[crate::drill::spec::Drill],
    data_dir: &Path,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(String, String)> {
    let mut catalog = Catalog::open(data_dir)?;
    let year = chrono::Duration::days(365);
    let (customer_row, customer) = auth::new_token(
        Role::Customer,
        Some(TENANT),
        Some("demo customer"),
        now,
        Some(now + year),
    );
    let (admin_row, admin) =
        auth::new_token(Role::Admin, None, Some("demo admin"), now, Some(now + year));
    catalog.add_token(&customer_row)?;
    catalog.add_token(&admin_row)?;
    let first = catalog.jobs(1)?.is_empty();
    if first {
        catalog.enqueue_now(SOURCE, crate::daemon::IMMEDIATE, now)?;
        let drill = drills.iter().find(|d| d.name == DRILL).ok_or_else(|| {
            CliError::new(exit::FAILED, format!("the demo's drill {DRILL} is missing"))
        })?;
        crate::drill::requests::request(
            &mut catalog,
            loaded,
            drill,
            now + chrono::Duration::minutes(2),
            now,
            Some("demo"),
        )
        .map_err(|e| CliError::new(exit::FAILED, e.to_string()))?;
    }
    Ok((customer, admin))
}

/// The demo's branch agent, once the centre listens at `address`: enrolled on its first
/// start (with a token made for it in `data_dir`'s catalog), then at work until `stop`.
pub async fn run_branch(
    demo_dir: &Path,
    data_dir: &Path,
    address: std::net::SocketAddr,
    clock: crate::daemon::Clock,
    stop: impl std::future::Future<Output = ()>,
) {
    let say = |line: &str| {
        eprintln!(
            "{} branch agent: {line}",
            clock.now().format("%Y-%m-%dT%H:%M:%SZ")
        )
    };
    let dir = demo_dir.join(AGENT_DIR);
    // The agent dials the centre on this machine, whichever address it listens on.
    let mut local = address;
    if local.ip().is_unspecified() {
        local.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let server = format!("http://{local}");
    let (catalog_dir, agent_dir, now) = (data_dir.to_path_buf(), dir.clone(), clock.now());
    let enrolled = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        if crate::agent::enroll::enrolled(&agent_dir)?.is_some() {
            return Ok(());
        }
        let (row, token) =
            crate::agent::token::new_enroll_token(SITE, now, now + chrono::Duration::hours(1));
        Catalog::open(&catalog_dir)?.add_enroll_token(&row)?;
        crate::agent::enroll::enroll(&server, &token, &agent_dir, None)?;
        Ok(())
    })
    .await;
    match enrolled {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return say(&format!("cannot enroll: {e:#}")),
        Err(e) => return say(&format!("cannot enroll: {e}")),
    }
    let options = crate::agent::run::Options {
        every: std::time::Duration::from_secs(15),
        clock: clock.clone(),
    };
    if let Err(e) = crate::agent::run::run(&dir, options, stop, say).await {
        say(&format!("stopped: {e}"));
    }
}

/// Whether the demo in `config`'s folder has the branch site (demos made before it had not).
pub fn has_branch(loaded: &crate::config::Loaded) -> bool {
    loaded.config.sites.contains_key(SITE)
}

/// What the demo prints once the server listens.
pub fn banner(address: std::net::SocketAddr, dir: &Path, customer: &str, admin: &str) -> String {
    format!(
        "\n  Lifeboat demo in {dir}\n\n  \
         Dashboard:       http://{address}/\n  \
         Customer token:  {customer}\n  \
         Admin token:     {admin}\n\n  \
         Log in with the customer token. A backup of the demo share runs now and every 15\n  \
         minutes; a restore drill runs in two minutes. A second site, the branch office, has\n  \
         an enrolled agent running in this process: it backs up its own folder to the\n  \
         branch's NAS every 15 minutes and sends the evidence here (see Tenants as admin). Download a report bundle from the\n  \
         dashboard and check it offline with:\n\n    \
         {exe} report verify BUNDLE.tar --cert {cert}\n\n  \
         The customer restores without the service, with their own key:\n\n    \
         {exe} restore --repo {repo} --key {escrow} --signer {cert} latest --target DIR\n\n  \
         Stop with Ctrl-C; start again with the same command (the demo is kept).\n",
        dir = dir.display(),
        cert = dir.join("keys/service.cert").display(),
        repo = dir.join("repo").join(TENANT).display(),
        escrow = dir.join(format!("keys/{TENANT}-escrow.key")).display(),
        // Run through `cargo run`, `lifeboat` may not be on the PATH: name this program.
        exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "lifeboat".into()),
    )
}
