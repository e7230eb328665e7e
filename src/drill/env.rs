//! Scratch environments: disposable places a drill restores into, kept apart from the network
//! where this machine allows it, and torn down afterwards even when the drill fails.
//!
//! - `dir`: a temporary directory. When Lifeboat runs as root, check commands run in a new
//!   network namespace (`unshare --net`): they see no network but loopback.
//! - `postgres`: a throw-away cluster (`initdb`, `pg_ctl`) in a temporary directory, listening
//!   on a free port on 127.0.0.1 only, password authentication with a random password.
//! - `mariadb`: a throw-away server (`mariadb-install-db`, `mariadbd`), likewise.
//! - `sqlite`: the restored file in a temporary directory, opened read-only.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::source::connection::{Connection, Engine};

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

fn random_password() -> String {
    use rand::Rng;
    let bytes: [u8; 18] = rand::thread_rng().gen();
    hex::encode(bytes)
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// Runs a setup step to its end; fails with what the tool said.
fn run(cmd: Command, what: &str) -> Result<(), String> {
    crate::source::tool::output(cmd)
        .map(|_| ())
        .map_err(|e| format!("{what}: {e}"))
}

/// A temporary directory for a drill.
pub fn scratch_dir(prefix: &str) -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix(&format!(".lifeboat-drill-{prefix}-"))
        .tempdir()
        .map_err(|e| format!("cannot create a scratch directory: {e}"))
}

/// How commands in a `dir` environment are kept from the network.
pub fn dir_isolation() -> &'static str {
    if is_root() && unshare_works() {
        "network namespace (unshare --net): loopback only"
    } else {
        "none: not running as root, so commands share the host's network"
    }
}

fn unshare_works() -> bool {
    Command::new("unshare")
        .args(["--net", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs `argv` in `dir`, isolated as `dir_isolation` says, for at most `limit`. Returns
/// whether it exited 0, and what to record (exit status and the end of its output).
pub fn run_command(argv: &[String], dir: &Path, limit: Duration) -> (bool, String) {
    let mut cmd = if is_root() && unshare_works() {
        let mut c = Command::new("unshare");
        c.args(["--net", "--"]).args(argv);
        c
    } else {
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    };
    let out_path = dir.join(".lifeboat-check-output");
    let out = match std::fs::File::create(&out_path) {
        Ok(f) => f,
        Err(e) => return (false, format!("cannot capture the output: {e}")),
    };
    let err = match out.try_clone() {
        Ok(f) => f,
        Err(e) => return (false, format!("cannot capture the output: {e}")),
    };
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (false, format!("cannot run {}: {e}", argv[0])),
    };
    let status = wait_until(&mut child, Instant::now() + limit);
    let output = std::fs::read(&out_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    let tail = String::from_utf8_lossy(&output[output.len().saturating_sub(400)..])
        .trim()
        .to_string();
    let said = if tail.is_empty() {
        String::new()
    } else {
        format!(": {tail}")
    };
    match status {
        Some(s) if s.success() => (true, format!("exit status 0{said}")),
        Some(s) => (false, format!("{s}{said}")),
        None => (
            false,
            format!("still running after {}s: killed{said}", limit.as_secs()),
        ),
    }
}

/// Waits for `child` until `deadline`; kills it then. `None` when it had to be killed.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// The owner a server's files need when Lifeboat runs as root (the servers refuse root).
fn postgres_user() -> Result<Option<(u32, u32)>, String> {
    if !is_root() {
        return Ok(None);
    }
    let name = c"postgres";
    // SAFETY: getpwnam reads a NUL-terminated name and returns a pointer into static storage
    // (or null), which is read at once, before any other call could overwrite it.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return Err(
            "running as root, and there is no 'postgres' user to run the throw-away \
                    server as (install PostgreSQL's server package)"
                .into(),
        );
    }
    // SAFETY: entry is non-null and points to a valid passwd record (see above).
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok(Some((uid, gid)))
}

/// Where PostgreSQL's server programs are: on PATH, or Debian's newest version folder.
fn postgres_bin(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    if on_path {
        return PathBuf::from(name);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions
        .pop()
        .map(|b| b.join(name))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// A throw-away PostgreSQL server.
pub struct PostgresScratch {
    dir: Option<tempfile::TempDir>,
    data: PathBuf,
    pub port: u16,
    passfile: PathBuf,
    owner: Option<(u32, u32)>,
}

impl PostgresScratch {
    pub const ISOLATION: &'static str =
        "throw-away server in a temporary directory, listening on 127.0.0.1 only, random password";

    pub fn start() -> Result<PostgresScratch, String> {
        let owner = postgres_user()?;
        let dir = scratch_dir("postgres")?;
        let data = dir.path().join("data");
        let password = random_password();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, &password).map_err(|e| format!("writing {pwfile:?}: {e}"))?;
        if let Some((uid, gid)) = owner {
            for p in [dir.path(), pwfile.as_path()] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))
                    .map_err(|e| format!("cannot hand {} to postgres: {e}", p.display()))?;
            }
        }
        let as_owner = |program: &str| {
            let bin = postgres_bin(program);
            if owner.is_some() {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin);
                c
            } else {
                Command::new(bin)
            }
        };
        let mut init = as_owner("initdb");
        init.arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()));
        run(init, "initdb of the scratch server")?;
        let _ = std::fs::remove_file(&pwfile);
        let mut last = String::new();
        // A port found free can be taken before the server binds it: try a few.
        for _ in 0..3 {
            let port = free_port()?;
            let mut start = as_owner("pg_ctl");
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
                .args(["-w", "-t", "120", "start"]);
            match run(start, "starting the scratch server") {
                Ok(()) => {
                    let passfile = dir.path().join("pgpass");
                    std::fs::write(
                        &passfile,
                        format!("127.0.0.1:{port}:*:postgres:{password}\n"),
                    )
                    .map_err(|e| format!("writing the passfile: {e}"))?;
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| format!("protecting the passfile: {e}"))?;
                    return Ok(PostgresScratch {
                        dir: Some(dir),
                        data,
                        port,
                        passfile,
                        owner,
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A connection to `database` on the scratch server, as its superuser.
    pub fn connection(&self, database: &str) -> Connection {
        Connection {
            engine: Engine::Postgres,
            host: "127.0.0.1".into(),
            port: self.port,
            database: database.into(),
            user: "postgres".into(),
            passfile: Some(self.passfile.clone()),
            password_env: None,
        }
    }

    /// Stops the server and deletes everything; says what went wrong, if anything.
    pub fn teardown(mut self) -> Result<(), String> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), String> {
        let Some(dir) = self.dir.take() else {
            return Ok(());
        };
        let bin = postgres_bin("pg_ctl");
        let mut stop = if self.owner.is_some() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(bin);
            c
        } else {
            Command::new(bin)
        };
        stop.arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"]);
        let stopped = run(stop, "stopping the scratch server");
        let removed = dir
            .close()
            .map_err(|e| format!("removing the scratch directory: {e}"));
        stopped.and(removed)
    }
}

impl Drop for PostgresScratch {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn mariadb_server_bin() -> PathBuf {
    ["/usr/sbin/mariadbd", "/usr/local/sbin/mariadbd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("mariadbd"))
}

/// A throw-away MariaDB server.
pub struct MariadbScratch {
    dir: Option<tempfile::TempDir>,
    server: Option<Child>,
    pub port: u16,
    options: PathBuf,
}

impl MariadbScratch {
    pub const ISOLATION: &'static str =
        "throw-away server in a temporary directory, listening on 127.0.0.1 only, random password";

    pub fn start() -> Result<MariadbScratch, String> {
        let dir = scratch_dir("mariadb")?;
        let data = dir.path().join("data");
        let socket = dir.path().join("sock");
        let as_root: &[&str] = if is_root() { &["--user=root"] } else { &[] };
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .args(as_root)
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        run(install, "mariadb-install-db for the scratch server")?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("log"))
            .map_err(|e| format!("creating the server log: {e}"))?;
        let server = Command::new(mariadb_server_bin())
            .arg("--no-defaults")
            .args(as_root)
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--innodb-flush-log-at-trx-commit=0",
            ])
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start mariadbd: {e} (is mariadb-server installed?)"))?;
        let options = dir.path().join("client.cnf");
        let mut scratch = MariadbScratch {
            dir: Some(dir),
            server: Some(server),
            port,
            options,
        };
        scratch.wait_until_up(&socket)?;
        let password = random_password();
        let mut set = Command::new(crate::source::mariadb::client_tool());
        set.arg("--no-defaults")
            .arg(format!("--socket={}", socket.display()))
            .args(["--user=root", "--execute"])
            .arg(format!(
                "ALTER USER root@localhost IDENTIFIED BY '{password}'; \
                 ALTER USER root@'127.0.0.1' IDENTIFIED BY '{password}';"
            ))
            .env_remove("MYSQL_PWD");
        run(set, "setting the scratch server's password")?;
        std::fs::write(&scratch.options, format!("[client]\npassword={password}\n"))
            .map_err(|e| format!("writing the client options: {e}"))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&scratch.options, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("protecting the client options: {e}"))?;
        Ok(scratch)
    }

    fn wait_until_up(&mut self, socket: &Path) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(server) = self.server.as_mut() {
                if let Ok(Some(status)) = server.try_wait() {
                    let log = self
                        .dir
                        .as_ref()
                        .and_then(|d| std::fs::read_to_string(d.path().join("log")).ok())
                        .unwrap_or_default();
                    let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" / ");
                    return Err(format!("mariadbd exited ({status}): {tail}"));
                }
            }
            let ping = Command::new("mariadb-admin")
                .arg("--no-defaults")
                .arg(format!("--socket={}", socket.display()))
                .args(["--user=root", "--connect-timeout=2", "ping"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| format!("cannot run mariadb-admin: {e}"))?;
            if ping.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("the scratch MariaDB server did not come up within 120s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn connection(&self, database: &str) -> Connection {
        Connection {
            engine: Engine::Mysql,
            host: "127.0.0.1".into(),
            port: self.port,
            database: database.into(),
            user: "root".into(),
            passfile: Some(self.options.clone()),
            password_env: None,
        }
    }

    pub fn teardown(mut self) -> Result<(), String> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), String> {
        let killed = match self.server.take() {
            Some(mut server) => server
                .kill()
                .and_then(|_| server.wait().map(|_| ()))
                .map_err(|e| format!("stopping the scratch server: {e}")),
            None => Ok(()),
        };
        let removed = match self.dir.take() {
            Some(dir) => dir
                .close()
                .map_err(|e| format!("removing the scratch directory: {e}")),
            None => Ok(()),
        };
        killed.and(removed)
    }
}

impl Drop for MariadbScratch {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A throw-away VM under software emulation: no network device, its disk attached with
/// writes discarded, stopped at its time limit.
pub struct Vm;

impl Vm {
    pub const ISOLATION: &'static str =
        "software-emulated VM (TCG) with no network device; its disk attached with writes discarded";

    /// Builds an ext4 disk image at `image` from the folder `root`.
    pub fn disk_from(root: &Path, image: &Path) -> Result<(), String> {
        let size = folder_size(root).map_err(|e| format!("measuring {}: {e}", root.display()))?;
        // Room for the file system's own structures.
        let bytes = (size + size / 2 + (32 << 20)).div_ceil(1 << 20) << 20;
        let file = std::fs::File::create(image)
            .and_then(|f| f.set_len(bytes).map(|_| f))
            .map_err(|e| format!("creating the disk image: {e}"))?;
        drop(file);
        let mut mkfs = Command::new("mkfs.ext4");
        mkfs.args(["-q", "-F", "-d"]).arg(root).arg(image);
        run(mkfs, "building the VM's disk (mkfs.ext4 -d)")
    }

    /// The image format QEMU is told (never guessed from the contents, which a damaged or
    /// hostile image could steer): `qcow2` by extension, raw otherwise.
    fn format_of(disk: &Path) -> &'static str {
        match disk.extension().and_then(|e| e.to_str()) {
            Some("qcow2") => "qcow2",
            _ => "raw",
        }
    }

    /// Boots `kernel` and `initrd` with `disk` attached and collects the serial console until
    /// the VM powers off or `limit` passes (then it is killed). Returns the console output and
    /// whether the VM ended by itself.
    pub fn boot(
        qemu: &Path,
        kernel: &Path,
        initrd: &Path,
        disk: &Path,
        memory_mib: u32,
        limit: Duration,
        console: &Path,
    ) -> Result<(String, bool), String> {
        let out =
            std::fs::File::create(console).map_err(|e| format!("creating the console log: {e}"))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("creating the console log: {e}"))?;
        let mut cmd = Command::new(qemu);
        cmd.args(["-accel", "tcg", "-M", "q35", "-m"])
            .arg(memory_mib.to_string())
            .args(["-nic", "none", "-nographic", "-no-reboot", "-kernel"])
            .arg(kernel)
            .arg("-initrd")
            .arg(initrd)
            .args(["-append", "console=ttyS0 quiet panic=-1", "-drive"])
            .arg(format!(
                "file={},if=virtio,format={},snapshot=on",
                disk.display(),
                Self::format_of(disk)
            ))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", qemu.display()))?;
        let ended = wait_until(&mut child, Instant::now() + limit).is_some();
        let text = std::fs::read(console).unwrap_or_default();
        Ok((String::from_utf8_lossy(&text).into_owned(), ended))
    }
}

fn folder_size(root: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            folder_size(&entry.path())? + 4096
        } else {
            meta.len() + 4096
        };
    }
    Ok(total)
}
