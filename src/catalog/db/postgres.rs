//! The shared engine: a PostgreSQL server, so that two or more instances of the service keep
//! one catalog, one job queue and one set of evidence chains.
//!
//! The driver (`tokio-postgres`) is asynchronous; the catalog is called from synchronous code
//! and from inside the service's runtime alike. So each connection lives on a thread of its
//! own with a small runtime, and a call hands its statement over and waits for the answer.
//!
//! A connection lost inside a transaction is not quietly replaced: every statement until the
//! transaction's end fails, and its end says it was rolled back. A connection lost between
//! transactions is made again at the next statement.

use super::{Arg, Begin, Db, DbError, DbResult, Engine, Row, Value};
use std::sync::mpsc;
use std::time::Duration;
use tokio_postgres::types::{ToSql, Type};

/// Every statement of PostgreSQL's catalog waits at most this long for a lock.
const LOCK_TIMEOUT: &str = "60s";

/// The advisory lock a schema migration holds: one instance of the service migrates at a time.
const WRITER_LOCK: i64 = 0x6c69_6665_626f_6174; // "lifeboat"

pub struct Postgres {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

enum Work {
    Execute(String, Vec<Arg>),
    Query(String, Vec<Arg>),
    Batch(String),
    Begin,
    End(&'static str),
}

enum Answer {
    Count(u64),
    Rows(Vec<Row>),
}

struct Job {
    work: Work,
    reply: mpsc::SyncSender<DbResult<Answer>>,
}

/// The address without its password, for messages.
pub fn display_url(url: &str) -> String {
    match url
        .split_once("://")
        .map(|(s, rest)| (s, rest.rsplit_once('@')))
    {
        Some((scheme, Some((userinfo, host)))) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        _ => url.to_string(),
    }
}

fn pg_error(e: tokio_postgres::Error) -> DbError {
    match e.as_db_error() {
        Some(db) => DbError::Postgres(match db.detail() {
            Some(d) => format!("{} ({d})", db.message()),
            None => db.message().to_string(),
        }),
        None => DbError::Postgres(e.to_string()),
    }
}

/// Checks a configured catalog address: `postgres://user@host:port/database`, without a
/// password (that comes from `PGPASSWORD`), over a connection this build can make.
pub fn check_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(format!(
            "'{url}' is not a PostgreSQL address; write postgres://user@host:port/database \
             (or leave catalog out for the embedded one)"
        ));
    }
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("'{}' is not a PostgreSQL address: {e}", display_url(url)))?;
    if config.get_password().is_some() {
        return Err(
            "the address holds a password; remove it from the file and set PGPASSWORD in the \
             service's environment"
                .into(),
        );
    }
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        return Err(
            "sslmode=require: this build speaks to PostgreSQL without TLS; reach it over a \
             private network or a local tunnel (an SSH port forward, stunnel)"
                .into(),
        );
    }
    if config.get_dbname().is_none() {
        return Err("the address names no database: add /database at its end".into());
    }
    Ok(())
}

impl Postgres {
    /// Connects to `url` (`postgres://user@host:port/database`); a password the address
    /// does not hold comes from `PGPASSWORD`.
    pub fn connect(url: &str) -> DbResult<Postgres> {
        let config = config(url)?;
        let (jobs, queue) = tokio::sync::mpsc::unbounded_channel();
        let (ready, connected) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("catalog-postgres".into())
            .spawn(move || worker(config, queue, ready))
            .map_err(|e| DbError::Postgres(format!("cannot start a thread: {e}")))?;
        match connected.recv() {
            Ok(Ok(())) => Ok(Postgres { jobs }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(DbError::Postgres("the connection's thread ended".into())),
        }
    }

    fn call(&self, work: Work) -> DbResult<Answer> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.jobs
            .send(Job { work, reply })
            .map_err(|_| DbError::Postgres("the connection's thread ended".into()))?;
        answer
            .recv()
            .map_err(|_| DbError::Postgres("the connection's thread ended".into()))?
    }
}

/// How the catalog connects to `url`.
fn config(url: &str) -> DbResult<tokio_postgres::Config> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
        DbError::Postgres(format!(
            "'{}' is not a PostgreSQL address: {e}",
            display_url(url)
        ))
    })?;
    if config.get_password().is_none() {
        if let Ok(password) = std::env::var("PGPASSWORD") {
            config.password(password);
        }
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    config.application_name("lifeboat");
    config.options(format!("-c lock_timeout={LOCK_TIMEOUT}"));
    Ok(config)
}

/// What a listener hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A message announced on the channel (at the commit of the transaction that announced
    /// it, if any).
    Message(String),
    /// Listening (again): what was announced while not listening is lost, so whoever waits
    /// for a message should look for itself.
    Listening,
}

/// Listens on `channel` of the PostgreSQL server at `url` for as long as the returned future
/// runs, handing each message to `heard`. A lost connection is made again (a second between
/// attempts, up to a minute), and `heard` hears `Listening` each time it is.
pub async fn listen(url: String, channel: &'static str, mut heard: impl FnMut(Heard) + Send) {
    let config = match config(&url) {
        Ok(mut c) => {
            c.application_name("lifeboat-listener");
            c
        }
        Err(e) => {
            eprintln!("catalog: cannot listen for {channel}: {e}");
            return;
        }
    };
    let mut pause = Duration::from_secs(1);
    loop {
        match listen_once(&config, channel, &mut heard).await {
            // The connection worked before it was lost: try again soon.
            Ok(()) => pause = Duration::from_secs(1),
            Err(e) => {
                eprintln!(
                    "catalog: cannot listen for {channel} at {}: {e}; trying again in {} s",
                    display_url(&url),
                    pause.as_secs()
                );
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(60));
    }
}

/// One connection's listening: returns when it is lost.
async fn listen_once(
    config: &tokio_postgres::Config,
    channel: &str,
    heard: &mut (impl FnMut(Heard) + Send),
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
    let (messages, mut inbox) = tokio::sync::mpsc::unbounded_channel();
    // The connection delivers messages only while it is polled.
    let driver = tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        use futures_util::StreamExt;
        while let Some(message) = stream.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    if messages.send(n.payload().to_string()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("catalog: the listening connection to PostgreSQL ended: {e}");
                    return;
                }
            }
        }
    });
    let listening = client.batch_execute(&format!("LISTEN {channel}")).await;
    if let Err(e) = listening {
        driver.abort();
        return Err(e);
    }
    heard(Heard::Listening);
    while let Some(message) = inbox.recv().await {
        heard(Heard::Message(message));
    }
    drop(client);
    Ok(())
}

fn worker(
    config: tokio_postgres::Config,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<Job>,
    ready: mpsc::SyncSender<DbResult<()>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(DbError::Postgres(format!(
                "cannot start a runtime: {e}"
            ))));
            return;
        }
    };
    runtime.block_on(async move {
        let mut conn = match Connection::open(&config).await {
            Ok(c) => {
                let _ = ready.send(Ok(()));
                Some(c)
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        // Inside a transaction; `lost` once its connection went away.
        let mut in_tx = false;
        let mut lost = false;
        while let Some(job) = queue.recv().await {
            if conn.as_ref().is_none_or(|c| c.client.is_closed()) {
                if in_tx {
                    lost = true;
                }
                conn = None;
            }
            let answer = match job.work {
                Work::End(end) if lost => {
                    (in_tx, lost) = (false, false);
                    if end == "COMMIT" {
                        Err(DbError::Postgres(
                            "the connection to PostgreSQL was lost: the transaction was rolled back"
                                .into(),
                        ))
                    } else {
                        Ok(Answer::Count(0))
                    }
                }
                _ if lost => Err(DbError::Postgres(
                    "the connection to PostgreSQL was lost in this transaction".into(),
                )),
                work => {
                    if conn.is_none() {
                        match Connection::open(&config).await {
                            Ok(c) => conn = Some(c),
                            Err(e) => {
                                let _ = job.reply.send(Err(e));
                                continue;
                            }
                        }
                    }
                    let Some(c) = conn.as_ref() else { continue };
                    match &work {
                        Work::Begin => in_tx = true,
                        Work::End(_) => in_tx = false,
                        _ => {}
                    }
                    c.run(work).await
                }
            };
            let _ = job.reply.send(answer);
        }
    });
}

struct Connection {
    client: tokio_postgres::Client,
}

impl Connection {
    async fn open(config: &tokio_postgres::Config) -> DbResult<Connection> {
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| DbError::Postgres(format!("cannot connect to PostgreSQL: {e}")))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("catalog: the connection to PostgreSQL ended: {e}");
            }
        });
        Ok(Connection { client })
    }

    async fn run(&self, work: Work) -> DbResult<Answer> {
        match work {
            Work::Execute(sql, args) => self.statement(&sql, &args, false).await,
            Work::Query(sql, args) => self.statement(&sql, &args, true).await,
            Work::Batch(sql) => {
                self.client.batch_execute(&sql).await.map_err(pg_error)?;
                Ok(Answer::Count(0))
            }
            // Writers are not serialised as a whole (SQLite's immediate transaction): a read that
            // decides a write holds the lock of what it decides (`Db::serialise`), or the write
            // checks again what it read.
            Work::Begin => {
                self.client.batch_execute("BEGIN").await.map_err(pg_error)?;
                Ok(Answer::Count(0))
            }
            Work::End(end) => {
                self.client.batch_execute(end).await.map_err(pg_error)?;
                Ok(Answer::Count(0))
            }
        }
    }

    async fn statement(&self, sql: &str, args: &[Arg], rows: bool) -> DbResult<Answer> {
        use futures_util::StreamExt;
        let sql = super::numbered_for_postgres(sql);
        let params: Vec<(&(dyn ToSql + Sync), Type)> = args
            .iter()
            .map(|a| match a {
                Arg::Int(v) => (v as &(dyn ToSql + Sync), Type::INT8),
                Arg::Real(v) => (v as &(dyn ToSql + Sync), Type::FLOAT8),
                Arg::Text(v) => (v as &(dyn ToSql + Sync), Type::TEXT),
                Arg::Blob(v) => (v as &(dyn ToSql + Sync), Type::BYTEA),
            })
            .collect();
        let stream = self
            .client
            .query_typed_raw(&sql, params)
            .await
            .map_err(pg_error)?;
        let mut stream = std::pin::pin!(stream);
        let mut out = Vec::new();
        while let Some(row) = stream.next().await {
            let row = row.map_err(pg_error)?;
            if rows {
                out.push(decode(&row)?);
            }
        }
        if rows {
            Ok(Answer::Rows(out))
        } else {
            Ok(Answer::Count(stream.rows_affected().unwrap_or(0)))
        }
    }
}

fn decode(row: &tokio_postgres::Row) -> DbResult<Row> {
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let wrap = |e: tokio_postgres::Error| DbError::Decode {
            column: i,
            reason: e.to_string(),
        };
        let t = column.type_();
        let v = if *t == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)
                .map_err(wrap)?
                .map(Value::Int)
        } else if *t == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)
                .map_err(wrap)?
                .map(|v| Value::Int(v.into()))
        } else if *t == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)
                .map_err(wrap)?
                .map(|v| Value::Int(v.into()))
        } else if *t == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)
                .map_err(wrap)?
                .map(|v| Value::Int(v.into()))
        } else if *t == Type::FLOAT8 {
            row.try_get::<_, Option<f64>>(i)
                .map_err(wrap)?
                .map(Value::Real)
        } else if *t == Type::FLOAT4 {
            row.try_get::<_, Option<f32>>(i)
                .map_err(wrap)?
                .map(|v| Value::Real(v.into()))
        } else if *t == Type::BYTEA {
            row.try_get::<_, Option<Vec<u8>>>(i)
                .map_err(wrap)?
                .map(Value::Blob)
        } else if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(t) {
            row.try_get::<_, Option<String>>(i)
                .map_err(wrap)?
                .map(Value::Text)
        } else {
            return Err(DbError::Decode {
                column: i,
                reason: format!(
                    "PostgreSQL type {t} is not one the catalog reads (cast it to BIGINT or TEXT)"
                ),
            });
        };
        values.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}

impl Db for Postgres {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    fn execute(&self, sql: &str, args: &[Arg]) -> DbResult<u64> {
        match self.call(Work::Execute(sql.to_string(), args.to_vec()))? {
            Answer::Count(n) => Ok(n),
            Answer::Rows(r) => Ok(r.len() as u64),
        }
    }

    fn query_each(
        &self,
        sql: &str,
        args: &[Arg],
        each: &mut dyn FnMut(Row) -> DbResult<()>,
    ) -> DbResult<()> {
        match self.call(Work::Query(sql.to_string(), args.to_vec()))? {
            Answer::Rows(rows) => rows.into_iter().try_for_each(each),
            Answer::Count(_) => Ok(()),
        }
    }

    fn batch(&self, sql: &str) -> DbResult<()> {
        let work = match sql {
            "COMMIT" => Work::End("COMMIT"),
            "ROLLBACK" => Work::End("ROLLBACK"),
            _ => Work::Batch(sql.to_string()),
        };
        self.call(work).map(drop)
    }

    fn begin_with(&self, _how: Begin) -> DbResult<()> {
        self.call(Work::Begin).map(drop)
    }

    fn announce(&self, channel: &str, message: &str) -> DbResult<()> {
        self.execute(
            "SELECT pg_notify(?1, ?2)",
            &[
                Arg::Text(Some(channel.to_string())),
                Arg::Text(Some(message.to_string())),
            ],
        )
        .map(drop)
    }

    fn serialise(&self, key: &str) -> DbResult<()> {
        self.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(?1, 0))",
            &[Arg::Text(Some(key.to_string()))],
        )
        .map(drop)
    }

    fn schema_version(&self) -> DbResult<usize> {
        (self as &dyn Db).query_value("SELECT version FROM lifeboat_schema", &[])
    }

    fn set_schema_version(&self, version: usize) -> DbResult<()> {
        self.execute(
            "UPDATE lifeboat_schema SET version = ?1",
            &[Arg::Int(Some(version as i64))],
        )
        .map(drop)
    }

    fn checkpoint(&self) -> DbResult<()> {
        // The server's own checkpoints and autovacuum keep it.
        Ok(())
    }

    fn begin_setup(&self) -> DbResult<()> {
        self.begin_with(Begin::Deferred)?;
        self.execute(
            "SELECT pg_advisory_xact_lock(?1)",
            &[Arg::Int(Some(WRITER_LOCK))],
        )?;
        self.batch(
            "CREATE TABLE IF NOT EXISTS lifeboat_schema (version BIGINT NOT NULL);
             INSERT INTO lifeboat_schema (version)
               SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM lifeboat_schema);",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_address_is_checked_before_use() {
        assert!(check_url("postgres://lifeboat@db.example:5432/lifeboat").is_ok());
        for (url, says) in [
            ("mysql://lifeboat@db/lifeboat", "not a PostgreSQL address"),
            ("postgres://lifeboat:hunter2@db/lifeboat", "set PGPASSWORD"),
            (
                "postgres://lifeboat@db/lifeboat?sslmode=require",
                "without TLS",
            ),
            ("postgres://lifeboat@db", "names no database"),
        ] {
            let e = check_url(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            display_url("postgres://lifeboat:s3cret@db.example:5432/catalog"),
            "postgres://lifeboat@db.example:5432/catalog"
        );
        assert_eq!(
            display_url("postgres://db.example/catalog"),
            "postgres://db.example/catalog"
        );
    }
}
