//! `[service]`: the service itself (its keys, clock, schedule of upkeep, where it listens,
//! how it stops), with `[service.http]` in `http`.

use super::http;
use crate::schedule::retention::parse_span;
use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

#[derive(Debug, Deserialize)]
pub struct Service {
    pub data_dir: Option<PathBuf>,
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_time_zone")]
    pub time_zone: Spanned<String>,
    /// The service's secret key, which signs everything it writes.
    pub signing_key: PathBuf,
    /// Recipients every repository this service creates is encrypted to.
    #[serde(default)]
    pub recipients: Vec<PathBuf>,
    /// A recipient's secret key, which drills use to decrypt what they restore. Backups need
    /// no secret key; without this, drills need `--key`.
    pub drill_key: Option<PathBuf>,
    /// The QEMU program drills boot VMs with (default `qemu-system-x86_64` on PATH).
    pub qemu: Option<PathBuf>,
    /// The kernel and initramfs `qemu` drills boot, unless their spec names others.
    pub vm_kernel: Option<PathBuf>,
    pub vm_initrd: Option<PathBuf>,
    /// Where incidents (failed backups and drills) are POSTed as JSON, `https://…`.
    pub webhook: Option<Spanned<String>>,
    /// Drill specs the daemon runs on their schedules (and when requested), relative to this
    /// file's folder: `["restore-tests/postgres-erp.toml"]`.
    #[serde(default)]
    pub drills: Vec<PathBuf>,
    /// Jobs run at once.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Each job starts after a random delay of up to this much (`30s`), so that sources on
    /// the same tier do not all hit a target at the same second.
    #[serde(default = "default_jitter")]
    pub jitter: Spanned<String>,
    /// When every target is pruned (a cron expression in the service's time zone), or
    /// `never` to leave it to `lifeboat prune`.
    #[serde(default = "default_prune")]
    pub prune: Spanned<String>,
    /// Reverse proxies in front of the API (`["127.0.0.1", "10.0.0.0/8"]`): only from these
    /// is `X-Forwarded-For` believed to name the client, and `X-Forwarded-Proto` whether it
    /// came over TLS.
    #[serde(default)]
    pub trusted_proxies: Vec<Spanned<String>>,
    /// How long running jobs and open requests get after SIGTERM before the process exits
    /// anyway (`30s`); a job cut off runs again at the next start.
    pub stop_timeout: Option<Spanned<String>>,
    /// How long a site's agents may stay silent before that is an incident (`1h`).
    pub site_silence: Option<Spanned<String>>,
    /// The API server's limits.
    #[serde(default)]
    pub http: http::Http,
    /// Where the catalog is (its job queue, tokens, audit log and evidence chains): unset for
    /// `catalog.sqlite` in the data directory, or a PostgreSQL database that two or more
    /// instances of the service share: `postgres://lifeboat@db.example:5432/lifeboat`. The
    /// password comes from `PGPASSWORD`, not from this file.
    pub catalog: Option<Spanned<String>>,
}

/// How long a site's agents may be silent, unless `site_silence` says.
pub const SITE_SILENCE: chrono::Duration = chrono::Duration::hours(1);

/// How long running jobs and requests get after SIGTERM, unless `stop_timeout` says.
pub const STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn default_prune() -> Spanned<String> {
    Spanned::new(0..0, "0 30 3 * * *".into())
}

fn default_workers() -> usize {
    2
}

fn default_jitter() -> Spanned<String> {
    Spanned::new(0..0, "30s".into())
}

impl Service {
    /// The incident webhook's address, if one is configured.
    pub fn webhook(&self) -> Option<&str> {
        self.webhook.as_ref().map(|w| w.get_ref().as_str())
    }

    /// The jitter as a duration (validated at load).
    pub fn jitter(&self) -> chrono::Duration {
        parse_span(self.jitter.get_ref()).unwrap_or_else(|_| chrono::Duration::zero())
    }

    /// The API server's limits (validated at load).
    pub fn limits(&self) -> http::Limits {
        self.http.limits().unwrap_or_default()
    }

    /// The trusted proxies' networks (validated at load).
    pub fn trusted_proxies(&self) -> Vec<ipnet::IpNet> {
        http::trusted_proxies(&self.trusted_proxies).unwrap_or_default()
    }

    /// How long running work gets after SIGTERM (validated at load).
    pub fn stop_timeout(&self) -> std::time::Duration {
        self.stop_timeout
            .as_ref()
            .and_then(|s| parse_span(s.get_ref()).ok())
            .and_then(|d| d.to_std().ok())
            .unwrap_or(STOP_TIMEOUT)
    }

    /// How long a site's agents may be silent (validated at load).
    pub fn site_silence(&self) -> chrono::Duration {
        self.site_silence
            .as_ref()
            .and_then(|s| parse_span(s.get_ref()).ok())
            .unwrap_or(SITE_SILENCE)
    }

    /// The PostgreSQL catalog's address, if one is configured.
    pub fn catalog_url(&self) -> Option<&str> {
        self.catalog.as_ref().map(|c| c.get_ref().as_str())
    }

    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.time_zone.get_ref().parse().unwrap_or(chrono_tz::UTC)
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

fn default_time_zone() -> Spanned<String> {
    Spanned::new(0..0, "UTC".into())
}
