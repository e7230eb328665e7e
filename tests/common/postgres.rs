//! A throw-away PostgreSQL cluster on 127.0.0.1 for one test: created with `initdb`, password
//! authentication over TCP, stopped (immediately) when dropped, even when the test fails.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const SUPERUSER_PASSWORD: &str = "lifeboat-test-superuser";

pub struct PgServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

/// A command run as the `postgres` user when this process is root (initdb refuses root).
fn as_postgres(program: &str) -> Command {
    // SAFETY: geteuid cannot fail and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    }
}

fn pg_bin(name: &str) -> String {
    for dir in ["/usr/local/bin", "/usr/lib/postgresql/15/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p.display().to_string();
        }
    }
    name.to_string()
}

fn run(mut c: Command) {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PgServer {
    pub fn start() -> PgServer {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, SUPERUSER_PASSWORD).unwrap();
        std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o644)).unwrap();
        let data = dir.path().join("data");
        let mut init = as_postgres(&pg_bin("initdb"));
        init.arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()));
        run(init);
        let port = super::s3::free_port();
        let mut start = as_postgres(&pg_bin("pg_ctl"));
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("log"))
            .arg("-o")
            .arg(format!(
                "-k {} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off",
                dir.path().display()
            ))
            .args(["-w", "start"]);
        run(start);
        PgServer { dir, port }
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE`.
    pub fn address(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A .pgpass file with the superuser's password, readable only by its owner.
    pub fn passfile(&self, password: &str) -> PathBuf {
        let path = self.dir.path().join(format!("pgpass-{}", password.len()));
        std::fs::write(
            &path,
            format!("127.0.0.1:{}:*:postgres:{password}\n", self.port),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// psql as the superuser over TCP, with `sql` as input (statement by statement, so
    /// CREATE DATABASE works); returns standard output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let mut c = Command::new("psql");
        c.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
        ])
        .arg("-p")
        .arg(self.port.to_string())
        .args(["-U", "postgres", "-d", database, "-f", "-"])
        .env("PGPASSWORD", SUPERUSER_PASSWORD)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().expect("psql");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), sql.as_bytes())
            .expect("feed psql");
        let out = child.wait_with_output().expect("psql");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A plain-text `pg_dump` of a database, for comparing two databases.
    pub fn dump_sql(&self, database: &str) -> String {
        let mut c = Command::new("pg_dump");
        c.args(["-h", "127.0.0.1"])
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", "postgres", "--no-sync", database])
            .env("PGPASSWORD", SUPERUSER_PASSWORD);
        let out = c.output().expect("pg_dump");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // pg_dump 15.14 and later fence a dump with a random key (`\restrict KEY`): the one
        // part of two dumps of the same database that always differs.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
            .map(|l| format!("{l}\n"))
            .collect()
    }
}

/// The first line where two texts differ, for a readable failure.
pub fn first_difference(a: &str, b: &str) -> Option<(usize, String, String)> {
    let (mut la, mut lb) = (a.lines(), b.lines());
    for n in 1.. {
        match (la.next(), lb.next()) {
            (None, None) => return None,
            (x, y) if x == y => continue,
            (x, y) => {
                let cut = |s: Option<&str>| s.unwrap_or("<end>").chars().take(200).collect();
                return Some((n, cut(x), cut(y)));
            }
        }
    }
    None
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut stop = as_postgres(&pg_bin("pg_ctl"));
        stop.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = stop.output();
    }
}
