//! A webhook receiver on 127.0.0.1 for one test: answers every POST with 200 and hands the
//! bodies to the test.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::mpsc::{channel, Receiver};

pub struct Hook {
    pub url: String,
    bodies: Receiver<String>,
}

impl Hook {
    pub fn start() -> Hook {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hooks/lifeboat", listener.local_addr().unwrap());
        let (tx, bodies) = channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                if tx
                    .send(String::from_utf8_lossy(&body).into_owned())
                    .is_err()
                {
                    return;
                }
            }
        });
        Hook { url, bodies }
    }

    /// The next body received, parsed as JSON (waits up to 30 s).
    pub fn next(&self) -> serde_json::Value {
        let body = self
            .bodies
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a webhook call");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    /// Whether nothing more was received.
    pub fn is_quiet(&self) -> bool {
        self.bodies.try_recv().is_err()
    }
}
