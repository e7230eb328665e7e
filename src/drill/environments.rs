//! The drill's environments and their checks: a temporary directory (files, SQLite), a
//! throw-away database server (PostgreSQL, MariaDB), a VM booted from the restored disks.

use super::*;

/// `dir` and `sqlite` drills: the snapshot restored into a temporary directory.
pub(super) fn in_directory(
    services: &Services<'_>,
    drill: &Drill,
    repo: &Repository,
    snapshot: &Snapshot,
    kind: EnvironmentKind,
    deadline: Instant,
    progress: &dyn Progress,
) -> EnvRun {
    let now = services.now;
    let isolation = match kind {
        EnvironmentKind::Sqlite => "temporary directory; the restored file opened read-only",
        _ => env::dir_isolation(),
    };
    let mut run = EnvRun::new(kind, isolation);
    let dir = match env::scratch_dir(kind.name()) {
        Ok(d) => d,
        Err(e) => {
            run.setup_error = Some(e);
            return run;
        }
    };
    run.event("environment ready", now());
    let root = dir.path().join("restore");
    if restore_and_verify(services, repo, snapshot, &root, &mut run, progress) {
        let sqlite_file = if kind == EnvironmentKind::Sqlite {
            snapshot
                .manifest
                .details
                .get("database")
                .and_then(|p| Path::new(p).file_name())
                .map(|n| root.join(n))
        } else {
            None
        };
        for (name, check) in &drill.checks {
            let limit = drill.spec.time_limit.get_ref();
            let Some(left) = time_left(deadline) else {
                run.checks.push(out_of_time(name, limit));
                continue;
            };
            run.checks.push(match check {
                CheckKind::File(path) => {
                    let there = root.join(path).exists();
                    Check {
                        name: name.clone(),
                        method: "file".into(),
                        expected: format!("{path} exists"),
                        actual: if there { "exists" } else { "missing" }.into(),
                        passed: there,
                    }
                }
                CheckKind::Command(argv) => {
                    let (ok, said) = env::run_command(argv, &root, left);
                    Check {
                        name: name.clone(),
                        method: "command".into(),
                        expected: format!("{} exits 0", argv.join(" ")),
                        actual: said,
                        passed: ok,
                    }
                }
                other => match &sqlite_file {
                    Some(file) => sqlite_check(name, other, file, services, &mut run.measured),
                    None => Check {
                        name: name.clone(),
                        method: "sql".into(),
                        expected: "an SQLite database".into(),
                        actual: "the snapshot names no database file".into(),
                        passed: false,
                    },
                },
            });
        }
        run.event("checks done", now());
    }
    run.teardown(
        dir.close()
            .map_err(|e| format!("removing the scratch directory: {e}")),
        now(),
    );
    run
}

/// `qemu` drills: the snapshot restored, made into a disk, and booted in a throw-away VM.
pub(super) fn in_vm(
    services: &Services<'_>,
    drill: &Drill,
    repo: &Repository,
    snapshot: &Snapshot,
    deadline: Instant,
    progress: &dyn Progress,
) -> EnvRun {
    let now = services.now;
    let mut run = EnvRun::new(EnvironmentKind::Qemu, env::Vm::ISOLATION);
    let dir = match env::scratch_dir("qemu") {
        Ok(d) => d,
        Err(e) => {
            run.setup_error = Some(e);
            return run;
        }
    };
    let root = dir.path().join("restore");
    if restore_and_verify(services, repo, snapshot, &root, &mut run, progress) {
        let environment = &drill.spec.environment;
        let disk = match &environment.disk_image {
            // A restored disk image is booted as it is (writes are discarded).
            Some(image) => {
                let path = root.join(image.trim_matches('/'));
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(format!("the restore holds no disk image {image}"))
                }
            }
            None => {
                let disk_root = match &environment.disk_root {
                    Some(sub) => root.join(sub.trim_matches('/')),
                    None => root.clone(),
                };
                let image = dir.path().join("disk.img");
                env::Vm::disk_from(&disk_root, &image).map(|_| image)
            }
        };
        match disk {
            Err(e) => run.setup_error = Some(e),
            Ok(image) => {
                run.event("environment ready", now());
                boot_and_check(services, drill, &image, dir.path(), deadline, &mut run);
            }
        }
    }
    run.teardown(
        dir.close()
            .map_err(|e| format!("removing the scratch directory: {e}")),
        now(),
    );
    run
}

/// Boots the VM once and judges the console checks on what it printed.
fn boot_and_check(
    services: &Services<'_>,
    drill: &Drill,
    image: &Path,
    dir: &Path,
    deadline: Instant,
    run: &mut EnvRun,
) {
    let now = services.now;
    let Some((kernel, initrd)) = &drill.vm_boot else {
        run.setup_error = Some("no kernel and initramfs to boot".into());
        return;
    };
    let qemu = services
        .loaded
        .config
        .service
        .qemu
        .clone()
        .unwrap_or_else(|| "qemu-system-x86_64".into());
    let longest = drill
        .checks
        .iter()
        .filter_map(|(_, c)| match c {
            CheckKind::Console { within, .. } => within.to_std().ok(),
            _ => None,
        })
        .max()
        .unwrap_or(Duration::from_secs(120));
    let limit = time_left(deadline).map_or(Duration::ZERO, |left| left.min(longest));
    let booted = Instant::now();
    let memory = drill.spec.environment.memory_mib.unwrap_or(256);
    let console = dir.join("console.log");
    match env::Vm::boot(&qemu, kernel, initrd, image, memory, limit, &console) {
        Err(e) => run.setup_error = Some(e),
        Ok((output, ended)) => {
            run.event(
                if ended {
                    "VM powered off"
                } else {
                    "VM stopped at its time limit"
                },
                now(),
            );
            let took = booted.elapsed();
            let tail: String = output
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(" / ");
            for (name, check) in &drill.checks {
                if let CheckKind::Console { marker, within } = check {
                    let seen = output.contains(marker.as_str());
                    let in_time = took <= within.to_std().unwrap_or(Duration::MAX) || ended;
                    run.checks.push(Check {
                        name: name.clone(),
                        method: "console".into(),
                        expected: format!(
                            "'{marker}' on the serial console within {}",
                            human(*within)
                        ),
                        actual: if seen {
                            format!("seen; the VM ran {:.1}s", took.as_secs_f64())
                        } else {
                            format!(
                                "not seen in {:.1}s; the console ended with: {tail}",
                                took.as_secs_f64()
                            )
                        },
                        passed: seen && in_time,
                    });
                }
            }
            run.event("checks done", now());
        }
    }
}

fn sql_value(row: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(0)? {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Blob(b) => hex::encode(b),
    })
}

fn sqlite_check(
    name: &str,
    check: &CheckKind,
    file: &Path,
    services: &Services<'_>,
    measured: &mut Vec<(String, u64)>,
) -> Check {
    let db = rusqlite::Connection::open_with_flags(
        file,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    );
    let query = |sql: &str| -> Result<String, String> {
        let db = db.as_ref().map_err(|e| e.to_string())?;
        db.query_row(sql, [], sql_value).map_err(|e| e.to_string())
    };
    match check {
        CheckKind::IntegrityCheck => {
            let actual = db
                .as_ref()
                .map_err(|e| e.to_string())
                .and_then(|db| {
                    let mut stmt = db
                        .prepare("PRAGMA integrity_check")
                        .map_err(|e| e.to_string())?;
                    let rows = stmt
                        .query_map([], |r| r.get::<_, String>(0))
                        .map_err(|e| e.to_string())?;
                    rows.collect::<Result<Vec<_>, _>>()
                        .map(|v| v.join("; "))
                        .map_err(|e| e.to_string())
                })
                .unwrap_or_else(|e| format!("error: {e}"));
            Check {
                name: name.into(),
                method: "integrity_check".into(),
                expected: "ok".into(),
                passed: actual == "ok",
                actual,
            }
        }
        other => sql_check(
            name,
            other,
            query(match other {
                CheckKind::Sql { query, .. } | CheckKind::Newest { query, .. } => query,
                _ => "",
            }),
            services,
            measured,
        ),
    }
}

/// Judges the answer to an `sql` check; a `newest_within` check also measures the data age.
fn sql_check(
    name: &str,
    check: &CheckKind,
    answer: Result<String, String>,
    services: &Services<'_>,
    measured: &mut Vec<(String, u64)>,
) -> Check {
    let now = (services.now)();
    let expected = match check {
        CheckKind::Sql { expect, .. } => describe_expect(expect),
        CheckKind::Newest { within, .. } => format!("newest no older than {}", human(*within)),
        _ => String::new(),
    };
    let (passed, actual) = match answer {
        Err(e) => (false, format!("error: {e}")),
        Ok(a) => {
            let a = a.trim();
            match check {
                CheckKind::Sql { expect, .. } => (expect.holds(a), a.to_string()),
                CheckKind::Newest { within, .. } => match parse_time(a) {
                    Some(t) => {
                        let age = now - t;
                        match measured.iter_mut().find(|(k, _)| k == "data_age_ms") {
                            Some((_, v)) => *v = (*v).max(ms(age)),
                            None => measured.push(("data_age_ms".into(), ms(age))),
                        }
                        (age <= *within, format!("{a} (data age {})", human(age)))
                    }
                    None => (false, format!("'{a}' is not a time")),
                },
                _ => (false, a.to_string()),
            }
        }
    };
    Check {
        name: name.into(),
        method: "sql".into(),
        expected,
        actual,
        passed,
    }
}

fn describe_expect(e: &spec::Expect) -> String {
    use spec::Expect::*;
    match e {
        Eq(v) => format!("= {v}"),
        Ge(v) => format!(">= {v}"),
        Le(v) => format!("<= {v}"),
        Gt(v) => format!("> {v}"),
        Lt(v) => format!("< {v}"),
        Between(a, b) => format!("between {a} and {b}"),
        Text(t) => t.clone(),
    }
}

/// A time as a database prints it: Unix seconds, RFC 3339, or `YYYY-MM-DD HH:MM:SS[.f][+TZ]`
/// (taken as UTC without a zone).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return DateTime::from_timestamp_millis((secs * 1000.0) as i64);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%#z"] {
        if let Ok(d) = DateTime::parse_from_str(t, f) {
            return Some(d.with_timezone(&Utc));
        }
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(d) = chrono::NaiveDateTime::parse_from_str(t, f) {
            return Some(d.and_utc());
        }
    }
    None
}

/// `postgres` and `mariadb` drills: a throw-away server, the dump restored into it.
pub(super) fn in_server(
    services: &Services<'_>,
    drill: &Drill,
    repo: &Repository,
    snapshot: &Snapshot,
    kind: EnvironmentKind,
    deadline: Instant,
    progress: &dyn Progress,
) -> EnvRun {
    let now = services.now;
    let isolation = match kind {
        EnvironmentKind::Postgres => env::PostgresScratch::ISOLATION,
        _ => env::MariadbScratch::ISOLATION,
    };
    let mut run = EnvRun::new(kind, isolation);
    let details = &snapshot.manifest.details;
    let database = details.get("database").cloned().unwrap_or_default();
    enum Server {
        Pg(env::PostgresScratch),
        Maria(env::MariadbScratch),
    }
    let server = match kind {
        EnvironmentKind::Postgres => env::PostgresScratch::start().map(Server::Pg),
        _ => env::MariadbScratch::start().map(Server::Maria),
    };
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            run.setup_error = Some(e);
            run.environment.teardown = "nothing to tear down".into();
            return run;
        }
    };
    run.event("environment ready", now());
    let conn = match &server {
        Server::Pg(s) => s.connection(&database),
        Server::Maria(s) => s.connection(&database),
    };
    let restored = SnapshotFiles::open(repo, services.key, snapshot).and_then(|files| {
        let mut read = |name: &str, out: &mut dyn std::io::Write| files.write(name, out, progress);
        let total = files.total();
        match kind {
            EnvironmentKind::Postgres => crate::source::postgres::restore(
                &conn,
                &crate::source::postgres::PostgresSource::dump_name(&database),
                1,
                &mut read,
            ),
            _ => crate::source::mariadb::restore(&conn, details, &mut read),
        }
        .map(|_| total)
    });
    match restored {
        Ok(bytes) => {
            run.event("restored", now());
            run.measured.push(("restored_bytes".into(), bytes));
            run.checks.push(Check {
                name: "restored dump matches the snapshot".into(),
                method: "sha256".into(),
                expected: "every chunk's SHA-256 as the snapshot records it".into(),
                actual: format!("{bytes} bytes streamed into the server, every chunk verified"),
                passed: true,
            });
            for (name, check) in &drill.checks {
                if time_left(deadline).is_none() {
                    run.checks
                        .push(out_of_time(name, drill.spec.time_limit.get_ref()));
                    continue;
                }
                let query = match check {
                    CheckKind::Sql { query, .. } | CheckKind::Newest { query, .. } => query,
                    _ => continue,
                };
                let answer = server_query(&conn, kind, query);
                run.checks
                    .push(sql_check(name, check, answer, services, &mut run.measured));
            }
            run.event("checks done", now());
        }
        Err(e) => {
            run.restore_error = Some(e.to_string());
            run.event("restore failed", now());
        }
    }
    let teardown = match server {
        Server::Pg(s) => s.teardown(),
        Server::Maria(s) => s.teardown(),
    };
    run.teardown(teardown, now());
    run
}

/// The first column of the first row `query` returns on the scratch server.
fn server_query(
    conn: &crate::source::connection::Connection,
    kind: EnvironmentKind,
    query: &str,
) -> Result<String, String> {
    use crate::source::tool;
    let cmd = match kind {
        EnvironmentKind::Postgres => {
            let mut c =
                crate::source::postgres::command(conn, "psql").map_err(|e| e.to_string())?;
            c.args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", query]);
            c
        }
        _ => {
            let mut c =
                crate::source::mariadb::command(conn, crate::source::mariadb::client_tool())
                    .map_err(|e| e.to_string())?;
            c.args(["--batch", "--skip-column-names", "--execute", query]);
            c.arg(format!("--database={}", conn.database));
            c
        }
    };
    let out = tool::output(cmd).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out);
    Ok(text
        .lines()
        .next()
        .map(|l| l.split('\t').next().unwrap_or_default().to_string())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_databases_print_them() {
        let t = |s| parse_time(s).map(|t| t.to_rfc3339());
        assert_eq!(t("1795420800"), Some("2026-11-23T08:00:00+00:00".into()));
        assert_eq!(
            t("2026-11-23 09:00:00+01"),
            Some("2026-11-23T08:00:00+00:00".into())
        );
        assert_eq!(
            t("2026-11-23 08:00:00.25"),
            Some("2026-11-23T08:00:00.250+00:00".into())
        );
        assert_eq!(
            t("2026-11-23T08:00:00Z"),
            Some("2026-11-23T08:00:00+00:00".into())
        );
        assert_eq!(t("yesterday"), None);
    }
}
