//! A throw-away MariaDB server on 127.0.0.1 for one test: a data directory made with
//! `mariadb-install-db`, `mariadbd` listening on a free port, killed when dropped, even when
//! the test fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub const ROOT_PASSWORD: &str = "lifeboat-test-root";

pub struct MariaServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    server: Child,
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

impl MariaServer {
    pub fn start() -> MariaServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        // The server refuses to run as root unless told to.
        let user: &[&str] = if is_root() { &["--user=root"] } else { &[] };
        // A temporary folder of its own: servers bootstrapping at once in the shared /tmp
        // removed each other's temporary tables ("Unknown table 'mysql.tmp_user_sys'").
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmp");
        let out = Command::new("mariadb-install-db")
            .env("TMPDIR", &tmp)
            .arg("--no-defaults")
            .args(user)
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .output()
            .expect("mariadb-install-db (is mariadb-server installed?)");
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = super::s3::free_port();
        let log = std::fs::File::create(dir.path().join("log")).expect("log");
        // /usr/sbin is not on every PATH.
        let mariadbd = ["/usr/sbin/mariadbd", "/usr/local/sbin/mariadbd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("mariadbd");
        let server = Command::new(mariadbd)
            .arg("--no-defaults")
            .args(user)
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--innodb-flush-log-at-trx-commit=0",
            ])
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mariadbd");
        let mut s = MariaServer { dir, port, server };
        s.wait_until_up();
        // Root gets a password for TCP logins; the socket stays open for the harness.
        s.run_sql(
            None,
            None,
            &format!(
                "ALTER USER root@localhost IDENTIFIED BY '{ROOT_PASSWORD}';
                 ALTER USER root@'127.0.0.1' IDENTIFIED BY '{ROOT_PASSWORD}';"
            ),
        );
        s
    }

    /// Waits for the server to answer on its socket (or for it to die, which fails the test).
    fn wait_until_up(&mut self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.server.try_wait() {
                panic!(
                    "mariadbd exited ({status}): {}",
                    std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
                );
            }
            let ping = Command::new("mariadb-admin")
                .arg("--no-defaults")
                .arg(format!("--socket={}", self.socket().display()))
                .args(["--user=root", "--connect-timeout=2", "ping"])
                .output()
                .expect("mariadb-admin");
            if ping.status.success() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "mariadbd did not come up"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// `mysql://root@127.0.0.1:PORT/DATABASE`.
    pub fn address(&self, database: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{database}", self.port)
    }

    /// An option file with root's password (or another), readable only by its owner.
    pub fn option_file(&self, password: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self
            .dir
            .path()
            .join(format!("client-{}.cnf", password.len()));
        std::fs::write(&path, format!("[client]\npassword={password}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// Runs `sql` as root over the socket and returns the output, tab-separated without
    /// column names.
    fn run_sql(&self, password: Option<&str>, database: Option<&str>, sql: &str) -> String {
        let mut c = Command::new("mariadb");
        c.arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["--user=root", "--batch", "--skip-column-names"]);
        if let Some(db) = database {
            c.arg(format!("--database={db}"));
        }
        match password {
            Some(p) => c.env("MYSQL_PWD", p),
            None => c.env_remove("MYSQL_PWD"),
        };
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("mariadb");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), sql.as_bytes())
            .expect("feed mariadb");
        let out = child.wait_with_output().expect("mariadb");
        assert!(
            out.status.success(),
            "mariadb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `sql` as root in `database` (or none) and returns the rows, tab-separated.
    pub fn sql(&self, database: Option<&str>, sql: &str) -> String {
        self.run_sql(Some(ROOT_PASSWORD), database, sql)
    }

    /// A `mariadb-dump` of a database with its routines, triggers and events, for comparing
    /// two databases.
    pub fn dump_sql(&self, database: &str) -> String {
        let out = Command::new("mariadb-dump")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args([
                "--user=root",
                "--single-transaction",
                "--routines",
                "--triggers",
                "--events",
                "--hex-blob",
                "--skip-dump-date",
                database,
            ])
            .env("MYSQL_PWD", ROOT_PASSWORD)
            .output()
            .expect("mariadb-dump");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            // The host the dump came from.
            .filter(|l| !l.starts_with("-- Host:"))
            .map(|l| format!("{l}\n"))
            .collect()
    }
}

impl Drop for MariaServer {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
