//! An HTTP proxy between a client and an S3 server that injects faults into a share of the
//! requests: 503 SlowDown answers, connection resets, responses cut off half-way, and delays.
//! It counts what it did, so a test can assert that the faults really happened.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub slow_downs: AtomicU64,
    pub resets: AtomicU64,
    pub cut_responses: AtomicU64,
    pub delays: AtomicU64,
    /// Requests passed on with one byte of their body flipped.
    pub corrupted: AtomicU64,
    /// Requests the proxy could not pass on because the server was unreachable.
    pub upstream_failures: AtomicU64,
    /// Answers the server gave that the proxy holds back, never to pass on.
    pub held: AtomicU64,
}

pub struct Proxy {
    pub port: u16,
    pub counts: Arc<Counts>,
    /// Request lines seen ("PUT /bucket/key?partNumber=1&uploadId=…").
    pub log: Arc<Mutex<Vec<String>>>,
    faults: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// Requests whose line starts with the first and contains the second of one of these
    /// get their answer cut off, once each.
    cut_once: Arc<Mutex<Vec<(String, String)>>>,
    corrupt_once: Arc<Mutex<Vec<(String, String)>>>,
    hold_once: Arc<Mutex<Vec<(String, String)>>>,
}

/// Takes the first rule `(prefix, part)` that `line` starts with and contains, if any.
fn take_match(rules: &Mutex<Vec<(String, String)>>, line: &str) -> bool {
    rules
        .lock()
        .map(|mut r| {
            match r
                .iter()
                .position(|(p, q)| line.starts_with(p.as_str()) && line.contains(q.as_str()))
            {
                Some(i) => {
                    r.remove(i);
                    true
                }
                None => false,
            }
        })
        .unwrap_or(false)
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and passes requests on to `upstream_port`; with
    /// `every` > 0, every `every`-th request meets a fault, the four kinds taking turns (so a
    /// test knows each kind happened). `delay_seed` varies the delays.
    pub fn start(upstream_port: u16, every: u64, delay_seed: u64) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let proxy = Proxy {
            port,
            counts: Arc::new(Counts::default()),
            log: Arc::new(Mutex::new(Vec::new())),
            faults: Arc::new(AtomicBool::new(every > 0)),
            stop: Arc::new(AtomicBool::new(false)),
            cut_once: Arc::new(Mutex::new(Vec::new())),
            corrupt_once: Arc::new(Mutex::new(Vec::new())),
            hold_once: Arc::new(Mutex::new(Vec::new())),
        };
        let rng = Arc::new(Mutex::new(delay_seed | 1));
        let (counts, log, faults, stop, cut_once, corrupt_once) = (
            proxy.counts.clone(),
            proxy.log.clone(),
            proxy.faults.clone(),
            proxy.stop.clone(),
            proxy.cut_once.clone(),
            proxy.corrupt_once.clone(),
        );
        let hold_once = proxy.hold_once.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let shared = Shared {
                    counts: counts.clone(),
                    log: log.clone(),
                    faults: faults.clone(),
                    rng: rng.clone(),
                    cut_once: cut_once.clone(),
                    corrupt_once: corrupt_once.clone(),
                    hold_once: hold_once.clone(),
                };
                std::thread::spawn(move || {
                    let _ = serve(conn, upstream_port, every, &shared);
                });
            }
        });
        proxy
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The first request whose line starts with `prefix` and contains `part` reaches the
    /// server, but its answer is cut off half-way (the client cannot know it took effect).
    pub fn cut_answer_once(&self, prefix: &str, part: &str) {
        if let Ok(mut c) = self.cut_once.lock() {
            c.push((prefix.to_string(), part.to_string()));
        }
    }

    /// The first request whose line starts with `prefix` and contains `part` is passed on
    /// with one byte of its body flipped, as a bad network card or cable would.
    pub fn corrupt_body_once(&self, prefix: &str, part: &str) {
        if let Ok(mut c) = self.corrupt_once.lock() {
            c.push((prefix.to_string(), part.to_string()));
        }
    }

    /// The first request whose line starts with `prefix` and contains `part` reaches the
    /// server, whose whole answer the proxy then holds back for as long as the client
    /// waits (counted in `held` once the server has answered).
    pub fn hold_answer_once(&self, prefix: &str, part: &str) {
        if let Ok(mut c) = self.hold_once.lock() {
            c.push((prefix.to_string(), part.to_string()));
        }
    }

    pub fn set_faults(&self, on: bool) {
        self.faults.store(on, Ordering::Relaxed);
    }

    pub fn count(&self, which: impl Fn(&Counts) -> &AtomicU64) -> u64 {
        which(&self.counts).load(Ordering::Relaxed)
    }

    pub fn requests_matching(&self, needle: &str) -> usize {
        self.log
            .lock()
            .map(|l| l.iter().filter(|r| r.contains(needle)).count())
            .unwrap_or(0)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake the accept loop
    }
}

/// xorshift: a small seeded generator, so a failing run can be repeated.
fn roll(rng: &Mutex<u64>) -> u32 {
    let mut s = rng.lock().expect("rng");
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    (*s % 100) as u32
}

/// Closes with a TCP reset instead of an orderly close.
fn reset(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// What the connection threads share with the proxy.
struct Shared {
    counts: Arc<Counts>,
    log: Arc<Mutex<Vec<String>>>,
    faults: Arc<AtomicBool>,
    rng: Arc<Mutex<u64>>,
    cut_once: Arc<Mutex<Vec<(String, String)>>>,
    corrupt_once: Arc<Mutex<Vec<(String, String)>>>,
    hold_once: Arc<Mutex<Vec<(String, String)>>>,
}

fn serve(
    client: TcpStream,
    upstream_port: u16,
    every: u64,
    shared: &Shared,
) -> std::io::Result<()> {
    let (counts, log, faults, rng) = (&shared.counts, &shared.log, &shared.faults, &shared.rng);
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client_w = client.try_clone()?;
    loop {
        // Request head.
        let mut head = Vec::new();
        let mut content_length = 0usize;
        let mut request_line = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(()); // client closed
            }
            if request_line.is_empty() {
                request_line = line.trim_end().to_string();
            }
            if line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                content_length = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("connection:") {
                continue;
            }
            if lower.starts_with("expect:") {
                client_w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
                continue;
            }
            head.extend_from_slice(line.as_bytes());
        }
        let mut body = vec![0u8; content_length];
        reader.read_exact(&mut body)?;
        let n = counts.requests.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut l) = log.lock() {
            // Which integrity checksum the request carries, for tests to see.
            let head_text = String::from_utf8_lossy(&head).to_ascii_lowercase();
            let sums: Vec<&str> = ["x-amz-checksum-sha256", "content-md5"]
                .into_iter()
                .filter(|h| head_text.contains(&format!("{h}:")))
                .collect();
            l.push(format!("{request_line} [{}]", sums.join(" ")));
        }

        let cut_this = take_match(&shared.cut_once, &request_line);
        let hold_this = take_match(&shared.hold_once, &request_line);
        if !body.is_empty() && take_match(&shared.corrupt_once, &request_line) {
            let mid = body.len() / 2;
            body[mid] ^= 0x20;
            counts.corrupted.fetch_add(1, Ordering::Relaxed);
        }
        let fault = if cut_this {
            Some(2)
        } else if faults.load(Ordering::Relaxed) && every > 0 && n % every == every - 1 {
            Some((n / every) % 4)
        } else {
            None
        };
        match fault {
            Some(0) => {
                counts.slow_downs.fetch_add(1, Ordering::Relaxed);
                let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>\
                           <Message>Please reduce your request rate.</Message></Error>";
                write!(
                    client_w,
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n\
                     Content-Length: {}\r\n\r\n{xml}",
                    xml.len()
                )?;
                continue;
            }
            Some(1) => {
                counts.resets.fetch_add(1, Ordering::Relaxed);
                reset(&client);
                return Ok(());
            }
            Some(3) => {
                counts.delays.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(200 + u64::from(roll(rng)) * 5));
            }
            _ => {}
        }

        // Pass the request on, one upstream connection per request.
        let mut upstream = match TcpStream::connect(("127.0.0.1", upstream_port)) {
            Ok(s) => s,
            Err(_) => {
                counts.upstream_failures.fetch_add(1, Ordering::Relaxed);
                reset(&client);
                return Ok(());
            }
        };
        upstream.write_all(head.as_slice())?;
        upstream.write_all(b"Connection: close\r\n\r\n")?;
        upstream.write_all(&body)?;
        let mut response = Vec::new();
        if upstream.read_to_end(&mut response).is_err() || response.is_empty() {
            counts.upstream_failures.fetch_add(1, Ordering::Relaxed);
            reset(&client);
            return Ok(());
        }
        if hold_this {
            // Held until the client goes away (or gives up and closes).
            counts.held.fetch_add(1, Ordering::Relaxed);
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
            return Ok(());
        }
        if fault == Some(2) && response.len() > 200 {
            // Half of the response, then a reset: a body cut off in flight.
            counts.cut_responses.fetch_add(1, Ordering::Relaxed);
            client_w.write_all(&response[..response.len() / 2])?;
            reset(&client);
            return Ok(());
        }
        client_w.write_all(&response)?;
    }
}
