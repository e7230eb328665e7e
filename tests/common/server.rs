//! `lifeboat serve` as a child process on a free 127.0.0.1 port, killed when dropped, and a
//! small HTTP client for its API.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

pub struct Server {
    pub base: String,
    child: Child,
    pub log: Arc<Mutex<String>>,
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: status {} body {}", self.status, self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Server {
    /// Starts `cmd` (a `lifeboat serve` command line) with `--listen 127.0.0.1:0` and waits
    /// until it says where it listens.
    pub fn start(cmd: Command) -> Server {
        Server::start_at(cmd, "127.0.0.1:0")
    }

    /// `start`, listening on `listen` (a centre started again where its agents know it).
    pub fn start_at(mut cmd: Command, listen: &str) -> Server {
        cmd.args(["--listen", listen])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start lifeboat serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if let Some(rest) = line.split("on http://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap_or("").to_string());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let address = match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("lifeboat serve did not start: {}", log.lock().unwrap());
            }
        };
        Server {
            base: format!("http://{address}"),
            child,
            log,
        }
    }

    fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(std::time::Duration::from_secs(60)))
            .build()
            .into()
    }

    fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        let mut r = r.expect("HTTP request");
        let status = r.status().as_u16();
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = r
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .unwrap_or_default();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut req = self.agent().get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        Self::reply(req.call())
    }

    /// A GET with the dashboard's cookie instead of a bearer token.
    pub fn get_with_cookie(&self, path: &str, cookie: &str) -> Reply {
        let req = self
            .agent()
            .get(format!("{}{path}", self.base))
            .header("Cookie", cookie);
        Self::reply(req.call())
    }

    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Reply {
        let uri = format!("{}{path}", self.base);
        let mut req = ureq::http::Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(c) = content_type {
            req = req.header("Content-Type", c);
        }
        let req = req.body(body.to_vec()).expect("request");
        Self::reply(self.agent().run(req))
    }

    pub fn post_json(&self, path: &str, token: Option<&str>, body: &serde_json::Value) -> Reply {
        self.send(
            "POST",
            path,
            token,
            Some("application/json"),
            body.to_string().as_bytes(),
        )
    }

    /// Polls a job (`/api/v1/jobs/ID`) until it is done or failed; panics after `within`.
    pub fn finished_job(
        &self,
        path: &str,
        token: &str,
        within: std::time::Duration,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            let job = self.get(path, Some(token)).json();
            if job["state"] == "done" || job["state"] == "failed" {
                return job;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "job never finished: {job}\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Asks the service to back `source` up now, as an admin would, and waits for the job to
    /// be done (panics when it is refused, fails or takes longer than two minutes).
    pub fn back_up_now(&self, source: &str, admin: &str) -> serde_json::Value {
        let path = format!("/api/v1/sources/{source}/backup");
        let job = self.send("POST", &path, Some(admin), None, b"");
        assert_eq!(job.status, 202, "{}", job.text());
        let status = job.json()["status"].as_str().unwrap().to_string();
        let done = self.finished_job(&status, admin, std::time::Duration::from_secs(120));
        assert_eq!(done["state"], "done", "{done} {}", self.log());
        done
    }

    /// Logs in to the dashboard with `token` as a browser on its own page would; returns the
    /// session cookie (`lifeboat_session=…`) and the whole Set-Cookie line.
    pub fn login(&self, token: &str) -> (String, String) {
        let body = format!("token={token}");
        let req = ureq::http::Request::builder()
            .method("POST")
            .uri(format!("{}/login", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Origin", self.base.clone())
            .body(body.into_bytes())
            .expect("request");
        let reply = Self::reply(self.agent().run(req));
        assert_eq!(reply.status, 303, "login: {}", reply.text());
        let set = reply
            .header("set-cookie")
            .expect("a session cookie")
            .to_string();
        let cookie = set.split(';').next().unwrap_or("").to_string();
        (cookie, set)
    }

    /// A request with the dashboard's cookie and the given extra headers (such as `Origin`).
    pub fn send_with_cookie(
        &self,
        method: &str,
        path: &str,
        cookie: &str,
        headers: &[(&str, &str)],
        content_type: Option<&str>,
        body: &[u8],
    ) -> Reply {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Cookie", cookie);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(c) = content_type {
            req = req.header("Content-Type", c);
        }
        let req = req.body(body.to_vec()).expect("request");
        Self::reply(self.agent().run(req))
    }

    /// A request with arbitrary headers (a bearer token among them, or not).
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.agent().get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::reply(req.call())
    }

    /// Kills the server and waits for it to be gone (its data directory is free again).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal to the server.
    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    /// Waits for the server to exit; its exit code, or `None` if it did not within `within`.
    pub fn exited_within(&mut self, within: std::time::Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status.code().unwrap_or(-1));
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
