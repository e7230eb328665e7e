//! The catalog on both engines: the embedded SQLite file and a PostgreSQL server (started on
//! 127.0.0.1 for this test binary). Each scenario runs on both, with several connections at
//! once where instances of the service would race: the schema's set-up, the job queue, the
//! evidence chains and enrollment tokens.

mod common;
use chrono::{DateTime, Duration, Utc};
use common::postgres::{PgServer, SUPERUSER_PASSWORD};
use lifeboat::catalog::evidence::Built;
use lifeboat::catalog::sites::{AgentRow, EnrollTokenRow};
use lifeboat::catalog::{db::Engine, Catalog};
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier, Mutex};

/// Where a scenario's catalog is: a fresh database on the test's PostgreSQL server, or a
/// fresh data directory.
enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Place {
    fn open(&self) -> Catalog {
        match self {
            Place::Sqlite(dir) => Catalog::open(dir.path()).unwrap(),
            Place::Postgres(url) => Catalog::connect(url).unwrap(),
        }
    }
}

/// Both engines, each with a new, empty catalog, and the PostgreSQL server (stopped when
/// dropped, however the test ends).
fn places(name: &str) -> (PgServer, Vec<Place>) {
    let pg = PgServer::start();
    pg.psql("postgres", &format!("CREATE DATABASE {name};"));
    let url = format!(
        "postgres://postgres:{SUPERUSER_PASSWORD}@127.0.0.1:{}/{name}",
        pg.port
    );
    let places = vec![
        Place::Sqlite(tempfile::tempdir().unwrap()),
        Place::Postgres(url),
    ];
    assert_eq!(places[0].open().engine(), Engine::Sqlite);
    assert_eq!(places[1].open().engine(), Engine::Postgres);
    (pg, places)
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Runs `f` on `n` threads at once, each with its own connection; returns their results.
fn at_once<T: Send + 'static>(
    place: &Place,
    n: usize,
    f: impl Fn(usize, &mut Catalog) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let f = Arc::new(f);
    let start = Arc::new(Barrier::new(n));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (f, start) = (f.clone(), start.clone());
                let mut catalog = place.open();
                scope.spawn(move || {
                    start.wait();
                    f(i, &mut catalog)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn instances_setting_up_a_new_catalog_at_once_all_succeed() {
    let (_pg, places) = places("setup_race");
    for (i, place) in places.into_iter().enumerate() {
        let start = Arc::new(Barrier::new(6));
        let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..6)
                .map(|_| {
                    let (start, place) = (start.clone(), &place);
                    scope.spawn(move || {
                        start.wait();
                        match place {
                            Place::Sqlite(dir) => Catalog::open(dir.path()).map(drop),
                            Place::Postgres(url) => Catalog::connect(url).map(drop),
                        }
                        .map_err(|e| e.to_string())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in results {
            r.unwrap_or_else(|e| panic!("engine {i}: {e}"));
        }
        // The schema works: a job goes in and comes out.
        let mut c = place.open();
        let now = at("2026-11-23T10:00:00Z");
        let id = c.enqueue("erp", "90/48", now, 0, now).unwrap().unwrap();
        assert_eq!(c.job(id).unwrap().unwrap().source, "erp");
    }
}

#[test]
fn racing_workers_run_every_job_once_and_a_source_one_at_a_time() {
    let (_pg, places) = places("queue_race");
    for place in places {
        let engine = place.open().engine();
        let now = at("2026-11-23T10:00:00Z");
        {
            let mut c = place.open();
            for slot in 0..8 {
                for source in ["erp", "share", "mail", "web", "nas"] {
                    let t = now + Duration::minutes(30 * slot);
                    c.enqueue(source, "90/48", t, 0, now).unwrap().unwrap();
                }
            }
        }
        // Planning the same slot from two instances queues it once.
        let slot = now + Duration::days(1);
        let queued = at_once(&place, 4, move |_, c| {
            c.enqueue("erp", "90/48", slot, 0, now).unwrap()
        });
        assert_eq!(queued.iter().flatten().count(), 1, "{engine:?}: {queued:?}");

        let running: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let claims = {
            let running = running.clone();
            at_once(&place, 4, move |_, c| {
                let mut mine = Vec::new();
                let mut idle = 0;
                // A worker stops when it found nothing to claim a few times over while no
                // one else held a job.
                while idle < 50 {
                    let Some(job) = c.claim(now + Duration::days(2)).unwrap() else {
                        if running.lock().unwrap().is_empty() {
                            idle += 1;
                        }
                        std::thread::yield_now();
                        continue;
                    };
                    assert!(
                        running.lock().unwrap().insert(job.source.clone()),
                        "two jobs of {} ran at once",
                        job.source
                    );
                    mine.push(job.id);
                    running.lock().unwrap().remove(&job.source);
                    c.finish(job.id, Ok(()), now).unwrap();
                }
                mine
            })
        };
        let mut all: Vec<i64> = claims.iter().flatten().copied().collect();
        let claimed = all.len();
        all.sort();
        all.dedup();
        assert_eq!(claimed, all.len(), "{engine:?}: a job was claimed twice");
        assert_eq!(all.len(), 41, "{engine:?}: every job ran");
        let c = place.open();
        assert!(c.jobs(100).unwrap().iter().all(|j| j.state == "done"));
    }
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn appends_from_many_connections_never_fork_a_chain() {
    let (_pg, places) = places("chain_race");
    for place in places {
        let engine = place.open().engine();
        at_once(&place, 4, |worker, c| {
            for n in 0..15 {
                c.append_evidence("acme", &mut |sequence, previous| {
                    let record = format!(
                        "{sequence} after {} by {worker}/{n}",
                        previous.unwrap_or("nothing")
                    );
                    Ok(Built {
                        sha256: sha(record.as_bytes()),
                        record: record.into_bytes(),
                        signature: String::new(),
                        object: format!("evidence/acme/{sequence:012}"),
                    })
                })
                .unwrap();
            }
            // Another tenant's chain is another chain.
            c.append_evidence("globex", &mut |sequence, _| {
                Ok(Built {
                    sha256: sha(&[worker as u8]),
                    record: vec![worker as u8],
                    signature: String::new(),
                    object: format!("evidence/globex/{sequence:012}"),
                })
            })
            .unwrap();
        });
        let c = place.open();
        let chain = c.evidence(Some("acme")).unwrap();
        assert_eq!(chain.len(), 60, "{engine:?}");
        let mut previous = "nothing".to_string();
        for (i, e) in chain.iter().enumerate() {
            assert_eq!(e.sequence, i as u64 + 1, "{engine:?}");
            let text = String::from_utf8(e.record.clone()).unwrap();
            assert!(
                text.starts_with(&format!("{} after {previous} ", e.sequence)),
                "{engine:?}: record {} does not follow {previous}: {text}",
                e.sequence
            );
            assert_eq!(e.sha256, sha(&e.record));
            previous = e.sha256.clone();
        }
        assert_eq!(c.evidence(Some("globex")).unwrap().len(), 4);
    }
}

#[test]
fn an_enrollment_token_is_redeemed_once_whoever_races_for_it() {
    let (_pg, places) = places("enroll_race");
    for place in places {
        let engine = place.open().engine();
        place
            .open()
            .add_enroll_token(&EnrollTokenRow {
                id: "et-1".into(),
                secret_sha256: "s".into(),
                site: "acme-office".into(),
                created: "2026-11-23T10:00:00Z".into(),
                expires: "2026-11-24T10:00:00Z".into(),
                used: None,
                agent: None,
            })
            .unwrap();
        let verdicts = at_once(&place, 4, |i, c| {
            let agent = AgentRow {
                id: format!("agent-{i}"),
                site: "acme-office".into(),
                tenant: "acme".into(),
                certificate: String::new(),
                statement: String::new(),
                signature: String::new(),
                enrolled: "2026-11-23T11:00:00Z".into(),
                enroll_token: "et-1".into(),
                version: Some("1".into()),
                revoked: None,
                last_contact: None,
                clock_skew_ms: None,
                backlog: None,
            };
            c.redeem_enroll_token(
                "et-1",
                |row| row.secret_sha256 == "s",
                &agent,
                "2026-11-23T11:00:00Z",
            )
            .unwrap()
        });
        assert_eq!(
            verdicts.iter().filter(|v| v.is_ok()).count(),
            1,
            "{engine:?}: {verdicts:?}"
        );
        let c = place.open();
        assert_eq!(c.agents().unwrap().len(), 1, "{engine:?}");
        let token = c.enroll_token("et-1").unwrap().unwrap();
        assert_eq!(
            token.agent.as_deref(),
            Some(c.agents().unwrap()[0].id.as_str())
        );
    }
}

#[test]
fn rows_read_back_as_they_were_written_on_both_engines() {
    let (_pg, places) = places("round_trip");
    let mut seen = BTreeMap::new();
    for place in places {
        let mut c = place.open();
        let engine = c.engine();
        let now = at("2026-11-23T10:00:00Z");
        // A failed job waits before its retry, then fails for good.
        let id = c.enqueue("erp", "90/48", now, 2, now).unwrap().unwrap();
        let j = c.claim(now).unwrap().unwrap();
        c.finish(j.id, Err("unreachable"), now).unwrap();
        assert_eq!(c.claim(now + Duration::minutes(4)).unwrap(), None);
        let j = c.claim(now + Duration::minutes(5)).unwrap().unwrap();
        assert_eq!((j.id, j.attempts, j.missed), (id, 2, 2));
        c.finish_with(j.id, Err("still unreachable"), now, false)
            .unwrap();
        let j = c.job(id).unwrap().unwrap();
        assert_eq!(j.state, "failed");
        assert_eq!(c.first_slot("erp").unwrap(), Some(now));
        assert_eq!(c.planned().unwrap()["erp"], now);
        let site_job = c
            .enqueue_at_site("nas", "now", "acme-office", now, now)
            .unwrap();
        assert_eq!(c.queued_at_site("acme-office").unwrap()[0].id, site_job);
        assert!(c
            .site_job_state(site_job, "acme-office", "done", None, now)
            .unwrap());

        c.record_usage("acme", "offsite", 12_345_678_901, now)
            .unwrap();
        let usage = c.usage(Some("acme")).unwrap();
        assert_eq!(usage[0].bytes, 12_345_678_901);

        let drill = c
            .plan_drill(&lifeboat::catalog::drills::NewDrill {
                spec: "erp-restore",
                tenant: "acme",
                contract: "acme-gold",
                source: "erp",
                reason: "requested",
                planned_for: now,
                requested_by: None,
            })
            .unwrap();
        c.start_drill(drill, "ab12", "newest", now).unwrap();
        c.finish_drill(drill, "passed", Some(7), now).unwrap();
        let d = c.drill(drill).unwrap().unwrap();
        assert_eq!(
            (d.state.as_str(), d.evidence, d.requested_by),
            ("done", Some(7), None)
        );

        c.audit(now, "admin", "token create", "t-1", "ok").unwrap();
        c.acknowledge("acme", 5, "2026-11-23T10:00:00Z").unwrap();
        c.acknowledge("acme", 3, "2026-11-23T10:00:01Z").unwrap();
        assert_eq!(c.acknowledged("acme").unwrap(), 5, "never moves back");
        seen.insert(
            format!("{engine:?}"),
            (
                c.jobs(10).unwrap(),
                c.drills(None).unwrap(),
                c.audit_log(10).unwrap().len(),
            ),
        );
    }
    let engines: Vec<_> = seen.values().collect();
    assert_eq!(engines.len(), 2);
    assert_eq!(engines[0], engines[1], "both engines hold the same rows");
}

#[test]
fn a_job_whose_instance_went_quiet_is_taken_over_once_its_lease_runs_out() {
    use lifeboat::catalog::jobs::{Lease, Recover};
    let (_pg, places) = places("leases");
    for place in places {
        let (mut a, mut b) = (place.open(), place.open());
        let engine = a.engine();
        let now = at("2026-11-23T10:00:00Z");
        let id = a.enqueue("erp", "90/48", now, 0, now).unwrap().unwrap();
        let lease = |owner, minutes| Lease {
            owner,
            until: now + Duration::minutes(minutes),
        };
        let job = a.claim_leased(now, Some(&lease("a", 2))).unwrap().unwrap();
        assert_eq!(job.id, id);
        // B finds nothing to claim and nothing to take back while A's lease holds...
        assert_eq!(b.claim_leased(now, Some(&lease("b", 2))).unwrap(), None);
        let early = now + Duration::seconds(90);
        assert!(b.recover(early, Recover::Expired).unwrap().is_empty());
        // ...and A renews it.
        assert_eq!(a.renew_leases("a", now + Duration::minutes(4)).unwrap(), 1);
        let later = now + Duration::minutes(3);
        assert!(b.recover(later, Recover::Expired).unwrap().is_empty());
        // A goes quiet: once its lease ran out B takes the job back, and runs it.
        let gone = now + Duration::minutes(5);
        let back = b.recover(gone, Recover::Expired).unwrap();
        assert_eq!(back.len(), 1, "{engine:?}");
        assert_eq!(back[0].state, "queued");
        let reason = back[0].error.clone().unwrap();
        assert!(
            reason.contains("a, which ran it, stopped renewing its lease"),
            "{engine:?}: {reason}"
        );
        assert!(
            b.recover(gone, Recover::Expired).unwrap().is_empty(),
            "once"
        );
        let again = b
            .claim_leased(
                gone,
                Some(&Lease {
                    owner: "b",
                    until: gone + Duration::minutes(2),
                }),
            )
            .unwrap()
            .unwrap();
        assert_eq!((again.id, again.attempts), (id, 2));
        // A comes back with its outcome: it is not recorded over B's run.
        assert!(!a.finish_leased(id, "a", Ok(()), gone, true).unwrap());
        assert_eq!(a.job(id).unwrap().unwrap().state, "running");
        assert!(b.finish_leased(id, "b", Ok(()), gone, true).unwrap());
        assert_eq!(a.job(id).unwrap().unwrap().state, "done");
        // A restarted instance takes back its own jobs at once, not another's.
        let id2 = a.enqueue("share", "90/4", gone, 0, gone).unwrap().unwrap();
        let far = gone + Duration::hours(1);
        let id3 = a.enqueue("mail", "90/4", gone, 0, gone).unwrap().unwrap();
        a.claim_leased(
            gone,
            Some(&Lease {
                owner: "a",
                until: far,
            }),
        )
        .unwrap()
        .unwrap();
        b.claim_leased(
            gone,
            Some(&Lease {
                owner: "b",
                until: far,
            }),
        )
        .unwrap()
        .unwrap();
        let mine = a.recover(gone, Recover::StartOf("a")).unwrap();
        assert_eq!(mine.len(), 1, "{engine:?}: {mine:?}");
        assert!([id2, id3].contains(&mine[0].id));
        assert_eq!(
            a.job(mine[0].id).unwrap().unwrap().state,
            "queued",
            "{engine:?}"
        );
    }
}
