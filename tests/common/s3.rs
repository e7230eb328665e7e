//! Real S3 servers for the tests: s3s-fs (checks request signatures) and moto (Object Lock),
//! each on 127.0.0.1 on a free port, in a temporary folder, stopped when dropped, also when the
//! test fails (and killed by the kernel if the test process dies first).

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "lifeboat-test";
pub const SECRET_KEY: &str = "lifeboat-test-secret-0123456789";

pub enum Flavour {
    S3sFs,
    Moto,
}

pub struct S3Server {
    child: Option<Child>,
    pub port: u16,
    pub root: tempfile::TempDir,
    flavour: Flavour,
}

/// A free TCP port on 127.0.0.1 (the kernel picks it; the listener is closed at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// Finds a test tool installed by `tests/run.sh`: on PATH, in cargo's bin folder, or in the
/// test venv.
pub fn find_tool(name: &str) -> PathBuf {
    if name == "moto_server" {
        if let Some(p) = std::env::var_os("LIFEBOAT_TEST_MOTO") {
            return PathBuf::from(p);
        }
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        candidates.push(Path::new(&home).join("bin").join(name));
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(Path::new(&home).join(".cargo/bin").join(name));
    }
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/test-tools/venv/bin")
            .join(name),
    );
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed; run tests/run.sh, which installs what the tests need")
        })
}

impl S3Server {
    /// s3s-fs, serving the folders of `root` as buckets.
    pub fn s3s_fs() -> S3Server {
        Self::start(
            Flavour::S3sFs,
            tempfile::tempdir().expect("tempdir"),
            free_port(),
        )
    }

    /// moto's server, for Object Lock and versioning.
    pub fn moto() -> S3Server {
        Self::start(
            Flavour::Moto,
            tempfile::tempdir().expect("tempdir"),
            free_port(),
        )
    }

    fn start(flavour: Flavour, root: tempfile::TempDir, port: u16) -> S3Server {
        let mut server = S3Server {
            child: None,
            port,
            root,
            flavour,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let mut cmd = match self.flavour {
            Flavour::S3sFs => {
                let mut c = Command::new(find_tool("s3s-fs"));
                c.args(["--host", "127.0.0.1", "--port", &port])
                    .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                    .arg(self.root.path());
                c
            }
            Flavour::Moto => {
                let mut c = Command::new(find_tool("moto_server"));
                c.args(["-H", "127.0.0.1", "-p", &port]);
                c.current_dir(self.root.path());
                c
            }
        };
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(
            std::fs::File::create(self.root.path().join("server.log"))
                .map_or(Stdio::null(), Stdio::from),
        );
        // The server dies with the thread that started it, even if the test process is killed.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("start the S3 server");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the S3 server exited at start ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the S3 server did not listen within 30 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("server.log")).unwrap_or_default()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The parts of the multipart uploads under way on an s3s-fs server
    /// (`.upload_id-ID.part-N` of a registered `.upload-ID.json`): what they keep stored.
    /// Not listed: a part whose upload is gone (a part still arriving when its upload was
    /// aborted is written by s3s-fs all the same, and no request can reach it), and an
    /// upload with no part (a kill while it was being created; s3s-fs cannot list uploads,
    /// so no client can find it).
    pub fn uploads(&self) -> Vec<PathBuf> {
        let files: Vec<PathBuf> = std::fs::read_dir(self.root.path())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        let name = |p: &PathBuf| p.file_name().unwrap().to_string_lossy().into_owned();
        let live: Vec<String> = files
            .iter()
            .filter_map(|p| {
                let n = name(p);
                Some(
                    n.strip_prefix(".upload-")?
                        .strip_suffix(".json")?
                        .to_string(),
                )
            })
            .collect();
        files
            .into_iter()
            .filter(|p| {
                let n = name(p);
                live.iter()
                    .any(|id| n.starts_with(&format!(".upload_id-{id}.part-")))
            })
            .collect()
    }

    /// Where s3s-fs keeps a bucket's objects (one file per key).
    pub fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.root.path().join(bucket)
    }

    pub fn create_bucket(&self, bucket: &str) {
        match self.flavour {
            Flavour::S3sFs => std::fs::create_dir(self.bucket_dir(bucket)).expect("bucket"),
            Flavour::Moto => panic!("create moto buckets through the S3 API"),
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and folder.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Environment for a client of this server: endpoint, path-style, test credentials, and no
    /// AWS configuration of the machine's own.
    pub fn client_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LIFEBOAT_S3_ENDPOINT", self.endpoint()),
            ("LIFEBOAT_S3_PATH_STYLE", "true".into()),
            ("LIFEBOAT_S3_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/nonexistent".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An AWS SDK client of `server` with the key `id`/`secret`, on a runtime of its own (path
/// style, plain HTTP), for tests that look at or tamper with what a store holds.
pub fn sdk_client(
    server: &S3Server,
    id: &str,
    secret: &str,
) -> (tokio::runtime::Runtime, aws_sdk_s3::Client) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let creds = aws_sdk_s3::config::Credentials::new(id, secret, None, None, "test");
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(server.endpoint())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    (rt, aws_sdk_s3::Client::from_conf(config))
}
