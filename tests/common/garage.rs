//! A real Garage cluster for the tests: three `garage server` nodes on 127.0.0.1, each with
//! its own ports and folders, one zone each and every object on all three
//! (`replication_factor = 3`: reads and writes need two of them). A bucket and a key are made
//! for the tests. Nodes can be stopped and started again; all are killed when the cluster is
//! dropped, also when the test fails (and by the kernel if the test process dies first).

use super::s3::{find_tool, free_port};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The tests' key, imported into the cluster (Garage key ids are `GK` and 24 hex digits).
pub const KEY_ID: &str = "GK0123456789abcdef01234567";
pub const KEY_SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const REGION: &str = "garage";

pub struct Node {
    pub rpc_port: u16,
    pub s3_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

pub struct GarageCluster {
    pub root: tempfile::TempDir,
    pub nodes: Vec<Node>,
}

impl GarageCluster {
    /// Three nodes, connected, with a layout applied and `buckets` made, each readable and
    /// writable with the tests' key.
    pub fn start(buckets: &[&str]) -> GarageCluster {
        let root = tempfile::tempdir().expect("tempdir");
        let secret = "5c8a1b2e7d4f60913a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0d2e4f";
        let nodes = (0..3)
            .map(|i| {
                let (rpc_port, s3_port) = (free_port(), free_port());
                let dir = root.path().join(format!("node{i}"));
                std::fs::create_dir_all(&dir).expect("node folder");
                let config = dir.join("garage.toml");
                std::fs::write(
                    &config,
                    format!(
                        "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\n\
                         db_engine = \"sqlite\"\nreplication_factor = 3\n\
                         rpc_bind_addr = \"127.0.0.1:{rpc_port}\"\n\
                         rpc_public_addr = \"127.0.0.1:{rpc_port}\"\n\
                         rpc_secret = \"{secret}\"\n\n\
                         [s3_api]\ns3_region = \"{REGION}\"\n\
                         api_bind_addr = \"127.0.0.1:{s3_port}\"\n",
                        d = dir.display()
                    ),
                )
                .expect("garage.toml");
                Node {
                    rpc_port,
                    s3_port,
                    config,
                    child: None,
                }
            })
            .collect();
        let mut cluster = GarageCluster { root, nodes };
        for i in 0..3 {
            cluster.start_node(i);
        }
        // Each node by its id, then every other node connected to the first.
        let ids: Vec<String> = (0..3)
            .map(|i| {
                let full = cluster.garage(i, &["node", "id", "-q"]);
                full.trim()
                    .split('@')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        for (i, id) in ids.iter().enumerate().skip(1) {
            let peer = format!("{id}@127.0.0.1:{}", cluster.nodes[i].rpc_port);
            cluster.garage(0, &["node", "connect", &peer]);
        }
        for (i, id) in ids.iter().enumerate() {
            let zone = format!("dc{i}");
            cluster.garage(0, &["layout", "assign", "-z", &zone, "-c", "1G", id]);
        }
        cluster.garage(0, &["layout", "apply", "--version", "1"]);
        cluster.garage(
            0,
            &[
                "key",
                "import",
                "--yes",
                KEY_ID,
                KEY_SECRET,
                "-n",
                "lifeboat-test",
            ],
        );
        for bucket in buckets {
            cluster.garage(0, &["bucket", "create", bucket]);
            cluster.garage(
                0,
                &[
                    "bucket", "allow", "--read", "--write", "--owner", bucket, "--key", KEY_ID,
                ],
            );
        }
        cluster
    }

    /// Runs the `garage` command line against node `i`; panics with its output on failure.
    /// Commands the cluster cannot answer yet (nodes still meeting) are tried again for 60 s.
    pub fn garage(&self, i: usize, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = Command::new(find_tool("garage"))
                .arg("-c")
                .arg(&self.nodes[i].config)
                .args(args)
                .env("RUST_LOG", "warn")
                .output()
                .expect("run garage");
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(
                Instant::now() < deadline,
                "garage {args:?} failed: {err}\n{}",
                self.log(i)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Starts node `i` (again) on its ports and folders, and waits until it listens.
    pub fn start_node(&mut self, i: usize) {
        let node = &self.nodes[i];
        let log = self.root.path().join(format!("node{i}/server.log"));
        let mut cmd = Command::new(find_tool("garage"));
        cmd.arg("-c")
            .arg(&node.config)
            .arg("server")
            .env("RUST_LOG", "garage=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map_or(Stdio::null(), Stdio::from));
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("start garage");
        let deadline = Instant::now() + Duration::from_secs(60);
        for port in [node.rpc_port, node.s3_port] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "garage node {i} exited at start ({status}): {}",
                        self.log(i)
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "garage node {i} did not listen within 60 s: {}",
                    self.log(i)
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.nodes[i].child = Some(child);
    }

    /// Kills node `i` (as a power cut would) and waits until it is gone.
    pub fn stop_node(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.root.path().join(format!("node{i}/server.log")))
            .unwrap_or_default()
    }

    /// Environment for a Lifeboat client of node `i`'s S3 API with the tests' key.
    pub fn client_env(&self, i: usize) -> Vec<(&'static str, String)> {
        vec![
            (
                "LIFEBOAT_S3_ENDPOINT",
                format!("http://127.0.0.1:{}", self.nodes[i].s3_port),
            ),
            ("LIFEBOAT_S3_PATH_STYLE", "true".into()),
            ("LIFEBOAT_S3_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY", KEY_SECRET.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/nonexistent".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".into()),
        ]
    }
}

impl Drop for GarageCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop_node(i);
        }
    }
}
