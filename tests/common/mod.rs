//! Shared harness for the integration tests: a scratch workspace with keys, a repository and
//! a data directory, and helpers to run the real `lifeboat` binary.
#![allow(dead_code)]

pub mod agent;
pub mod api;
pub mod bridge;
pub mod garage;
pub mod hook;
pub mod libvirt;
pub mod mariadb;
pub mod postgres;
pub mod proxy;
pub mod s3;
pub mod server;
pub mod vm;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Which storage a workspace's repository lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Local,
    S3,
}

pub const BUCKET: &str = "lifeboat-test";

pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub server: Option<s3::S3Server>,
    /// The tenant whose repository on the target `repo()` is (`TARGET/TENANT`), for tests
    /// that run the service; none for a repository at the target's root.
    pub tenant: Option<&'static str>,
    /// The catalog in PostgreSQL, a database of this workspace's own on the server
    /// `LIFEBOAT_TEST_CATALOG_SERVER` names (`tests/run.sh` runs some tests so); `None` for the
    /// embedded catalog.
    pub catalog: Option<String>,
}

/// A new database for one workspace's catalog on the test's PostgreSQL server, if there is one.
fn test_catalog() -> Option<String> {
    let server = std::env::var("LIFEBOAT_TEST_CATALOG_SERVER").ok()?;
    let name = format!("ws_{}", hex::encode(rand::random::<[u8; 8]>()));
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .arg(format!("{server}/postgres"))
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "creating a catalog database: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(format!("{server}/{name}"))
}

/// Runs each named test, a `fn(Store)`, once per backend: `local::NAME` and `s3::NAME`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),+ $(,)?) => {
        mod local {
            $( #[test] fn $name() { super::$name($crate::common::Store::Local) } )+
        }
        mod s3 {
            $( #[test] fn $name() { super::$name($crate::common::Store::S3) } )+
        }
    };
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "command failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

impl Workspace {
    /// Keys `svc` (service) and `rec` (recipient), and a repository at `repo`.
    pub fn new() -> Workspace {
        Self::with(Store::Local)
    }

    /// A workspace whose repository is on `store`; for S3, an s3s-fs server of its own with the
    /// repository at `s3://lifeboat-test/repo`.
    pub fn with(store: Store) -> Workspace {
        let ws = Self::empty(store);
        ws.init();
        ws
    }

    /// Keys, and for S3 a server with an empty bucket, but no repository yet.
    pub fn empty(store: Store) -> Workspace {
        let server = match store {
            Store::Local => None,
            Store::S3 => {
                let server = s3::S3Server::s3s_fs();
                server.create_bucket(BUCKET);
                Some(server)
            }
        };
        let ws = Workspace {
            dir: tempfile::tempdir().expect("tempdir"),
            store,
            server,
            tenant: None,
            catalog: test_catalog(),
        };
        ws.lifeboat(&["keys", "generate", "--name", "svc", "--out"])
            .arg(ws.path("keys"))
            .ok();
        ws.lifeboat(&["keys", "generate", "--name", "rec", "--out"])
            .arg(ws.path("keys"))
            .ok();
        ws
    }

    pub fn init(&self) {
        self.init_at(self.repo()).ok();
    }

    /// `lifeboat init` of a repository at `repo` with the workspace's keys.
    pub fn init_at(&self, repo: impl AsRef<std::ffi::OsStr>) -> Cmd {
        let mut c = self.lifeboat(&["init", "--repo"]);
        c.arg(repo)
            .arg("--recipient")
            .arg(self.path("keys/rec.cert"))
            .arg("--signing-key")
            .arg(self.path("keys/svc.key"));
        c
    }

    /// The workspace's catalog, as its commands see it (`data/catalog.sqlite`, or its
    /// PostgreSQL database).
    pub fn catalog(&self) -> lifeboat::catalog::Catalog {
        lifeboat::catalog::Place::new(&self.path("data"), self.catalog.as_deref())
            .open()
            .expect("the workspace's catalog")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The repository's address: a folder, or an s3:// URL.
    pub fn repo(&self) -> String {
        let under = self.tenant.map(|t| format!("/{t}")).unwrap_or_default();
        format!("{}{under}", self.target_root())
    }

    /// The target the service's configuration names (`path`, or `url`): the repository
    /// itself, or for a tenant's workspace the folder or prefix of every tenant's.
    pub fn target_root(&self) -> String {
        match &self.server {
            None => self.path("repo").display().to_string(),
            Some(_) => format!("s3://{BUCKET}/repo"),
        }
    }

    /// A workspace whose repository is `tenant`'s on the target `target_root()`, as the
    /// service lays it out, made with the workspace's keys.
    pub fn for_tenant(store: Store, tenant: &'static str) -> Workspace {
        let ws = Self::empty_for_tenant(store, tenant);
        ws.init();
        ws
    }

    /// The same, with no repository yet (the service makes it at its first backup).
    pub fn empty_for_tenant(store: Store, tenant: &'static str) -> Workspace {
        let mut ws = Self::empty(store);
        ws.tenant = Some(tenant);
        ws
    }

    /// The folder where the repository's objects are files: the repository folder, or the
    /// S3 server's folder for the bucket and prefix.
    pub fn objects_root(&self) -> PathBuf {
        let root = match &self.server {
            None => self.path("repo"),
            Some(server) => server.bucket_dir(BUCKET).join("repo"),
        };
        match self.tenant {
            Some(t) => root.join(t),
            None => root,
        }
    }

    /// Another repository place beside the workspace's own: its address and the folder where
    /// its objects are files.
    pub fn sibling(&self, name: &str) -> (String, PathBuf) {
        match &self.server {
            None => (self.path(name).display().to_string(), self.path(name)),
            Some(server) => (
                format!("s3://{BUCKET}/{name}"),
                server.bucket_dir(BUCKET).join(name),
            ),
        }
    }

    /// The workspace's repository store, opened in this process (as another host would).
    pub fn backend(&self) -> std::sync::Arc<dyn lifeboat::backend::Backend> {
        use lifeboat::backend::{LocalBackend, S3Backend, S3Options, S3Url};
        match &self.server {
            None => std::sync::Arc::new(LocalBackend::open(&self.path("repo")).expect("open")),
            Some(server) => {
                for (k, v) in server.client_env() {
                    // Edition 2021; every server of the tests has the same credentials, so
                    // other threads see the same values whenever they read them.
                    std::env::set_var(k, v);
                }
                let url = S3Url::parse(&self.repo()).expect("url");
                let options = S3Options {
                    endpoint: Some(server.endpoint()),
                    path_style: true,
                    region: Some("us-east-1".into()),
                    ..S3Options::default()
                };
                std::sync::Arc::new(S3Backend::open(&url, options).expect("open"))
            }
        }
    }

    pub fn server(&mut self) -> &mut s3::S3Server {
        self.server.as_mut().expect("an S3 workspace")
    }

    pub fn key(&self) -> PathBuf {
        self.path("keys/rec.key")
    }

    pub fn lifeboat(&self, args: &[&str]) -> Cmd {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        c.args(args)
            .env("LIFEBOAT_DATA_DIR", self.path("data"))
            .env_remove("LIFEBOAT_REPO")
            .env_remove("LIFEBOAT_KEY")
            .env_remove("LIFEBOAT_SIGNING_KEY")
            .env_remove("LIFEBOAT_SIGNER");
        if let Some(server) = &self.server {
            for (k, v) in server.client_env() {
                c.env(k, v);
            }
        }
        // An agent's catalog is its own, always embedded.
        match &self.catalog {
            Some(url) if args.first() != Some(&"agent") => c.env("LIFEBOAT_CATALOG", url),
            _ => c.env_remove("LIFEBOAT_CATALOG"),
        };
        Cmd(c)
    }

    /// `lifeboat snapshots --json` of the workspace's repository, oldest first.
    pub fn snapshots_json(&self) -> serde_json::Value {
        let run = self
            .lifeboat(&["snapshots", "--json", "--repo"])
            .arg(self.repo())
            .ok();
        run.json()
    }

    /// `lifeboat token create --role admin --config CONFIG`; returns the token.
    pub fn admin_token(&self, config: &Path) -> String {
        let run = self
            .lifeboat(&["token", "create", "--role", "admin", "--config"])
            .arg(config)
            .ok();
        run.stdout.trim().to_string()
    }

    /// `lifeboat backup --json PATHS`; returns the parsed result.
    pub fn backup(&self, paths: &[&Path]) -> serde_json::Value {
        self.backup_at(&self.repo(), paths)
    }

    /// `lifeboat backup --json PATHS` into the repository at `repo`.
    pub fn backup_at(&self, repo: &str, paths: &[&Path]) -> serde_json::Value {
        let mut c = self.lifeboat(&["backup", "--json", "--repo"]);
        c.arg(repo)
            .arg("--signing-key")
            .arg(self.path("keys/svc.key"));
        for p in paths {
            c.arg(p);
        }
        c.ok().json()
    }

    /// `lifeboat ARGS --repo REPO --signing-key SVC --json`, which must succeed; its JSON.
    pub fn signed_json(&self, args: &[&str]) -> serde_json::Value {
        self.lifeboat(args)
            .arg("--repo")
            .arg(self.repo())
            .arg("--signing-key")
            .arg(self.path("keys/svc.key"))
            .arg("--json")
            .ok()
            .json()
    }

    pub fn restore(&self, snapshot: &str, target: &Path, extra: &[&str]) -> Run {
        let mut c = self.lifeboat(&["restore", "--repo"]);
        c.arg(self.repo())
            .arg("--key")
            .arg(self.key())
            .arg(snapshot)
            .arg("--target")
            .arg(target);
        c.args(extra);
        c.run()
    }

    pub fn check(&self, with_key: bool) -> Run {
        let mut c = self.lifeboat(&["check", "--repo"]);
        c.arg(self.repo());
        if with_key {
            c.arg("--key").arg(self.key()).arg("--read-data");
        }
        c.run()
    }

    /// Names of the objects of one kind (`data`, `index`, `snapshots`, `config`).
    pub fn objects(&self, kind: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let base = self.objects_root().join(kind);
        // An S3 server has no folder for a prefix without objects.
        let mut dirs: Vec<PathBuf> = base.is_dir().then_some(base).into_iter().collect();
        while let Some(d) = dirs.pop() {
            for e in fs::read_dir(&d).expect("read_dir").flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    dirs.push(e.path());
                } else {
                    out.push(e.path());
                }
            }
        }
        out.sort();
        out
    }
}

pub struct Cmd(pub Command);

impl Cmd {
    pub fn arg(&mut self, a: impl AsRef<std::ffi::OsStr>) -> &mut Cmd {
        self.0.arg(a);
        self
    }
    pub fn args(&mut self, a: &[&str]) -> &mut Cmd {
        self.0.args(a);
        self
    }
    pub fn env(&mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> &mut Cmd {
        self.0.env(k, v);
        self
    }
    pub fn run(&mut self) -> Run {
        Run::from(self.0.output().expect("run lifeboat"))
    }
    pub fn ok(&mut self) -> Run {
        self.run().ok()
    }
}

/// Writes `len` pseudo-random (incompressible) bytes.
pub fn random_file(path: &Path, len: usize, seed: u64) {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut f = fs::File::create(path).expect("create");
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len());
        rng.fill_bytes(&mut buf[..n]);
        std::io::Write::write_all(&mut f, &buf[..n]).expect("write");
        left -= n;
    }
}

/// The events of an evidence record's timeline, in order.
pub fn timeline(record: &serde_json::Value) -> Vec<String> {
    record["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .map(|e| e["event"].as_str().expect("an event name").to_string())
        .collect()
}

/// Runs a stock tool; panics with its output when it fails.
pub fn tool(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Compares two trees: kinds, contents, permissions, owners, mtimes, symlink targets and
/// which names are hard links of each other. Returns the differences.
pub fn diff_trees(a: &Path, b: &Path) -> Vec<String> {
    let mut diffs = Vec::new();
    let list = |root: &Path| -> Vec<PathBuf> {
        let mut v = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).expect("read_dir").flatten() {
                let p = e.path();
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push(p.clone());
                }
                v.push(p.strip_prefix(root).expect("prefix").to_path_buf());
            }
        }
        v.sort();
        v
    };
    let (la, lb) = (list(a), list(b));
    if la != lb {
        diffs.push(format!("entries differ:\n{la:?}\n{lb:?}"));
        return diffs;
    }
    let mut links_a = std::collections::HashMap::new();
    let mut links_b = std::collections::HashMap::new();
    for rel in la {
        let (pa, pb) = (a.join(&rel), b.join(&rel));
        let (ma, mb) = (
            fs::symlink_metadata(&pa).expect("meta"),
            fs::symlink_metadata(&pb).expect("meta"),
        );
        let r = rel.display();
        if ma.file_type() != mb.file_type() {
            diffs.push(format!("{r}: type"));
            continue;
        }
        if ma.uid() != mb.uid() || ma.gid() != mb.gid() {
            diffs.push(format!(
                "{r}: owner {}:{} vs {}:{}",
                ma.uid(),
                ma.gid(),
                mb.uid(),
                mb.gid()
            ));
        }
        if ma.file_type().is_symlink() {
            if fs::read_link(&pa).ok() != fs::read_link(&pb).ok() {
                diffs.push(format!("{r}: symlink target"));
            }
        } else if ma.permissions().mode() != mb.permissions().mode() {
            diffs.push(format!(
                "{r}: mode {:o} vs {:o}",
                ma.permissions().mode(),
                mb.permissions().mode()
            ));
        }
        if (ma.mtime(), ma.mtime_nsec()) != (mb.mtime(), mb.mtime_nsec()) {
            diffs.push(format!(
                "{r}: mtime {}.{} vs {}.{}",
                ma.mtime(),
                ma.mtime_nsec(),
                mb.mtime(),
                mb.mtime_nsec()
            ));
        }
        if ma.is_file() {
            if fs::read(&pa).ok() != fs::read(&pb).ok() {
                diffs.push(format!("{r}: content"));
            }
            if ma.nlink() > 1 {
                links_a
                    .entry(ma.ino())
                    .or_insert_with(Vec::new)
                    .push(rel.clone());
                links_b
                    .entry(mb.ino())
                    .or_insert_with(Vec::new)
                    .push(rel.clone());
            }
        }
    }
    let mut ga: Vec<_> = links_a.into_values().collect();
    let mut gb: Vec<_> = links_b.into_values().collect();
    ga.sort();
    gb.sort();
    if ga != gb {
        diffs.push(format!("hard links differ: {ga:?} vs {gb:?}"));
    }
    diffs
}
