//! PostgreSQL sources: `pg_dumpall --globals-only` (roles, tablespaces) and `pg_dump -Fc -Z0`
//! (custom format, uncompressed, so consecutive dumps deduplicate), streamed into the backup;
//! and the way back: globals through `psql`, the database through `pg_restore`.
//!
//! Connection settings reach the tools through `PG*` environment variables, never the command
//! line; the password comes from a passfile (`PGPASSFILE`) or from an environment variable the
//! service names, and appears in no log or message.

use super::tool::{self, ToolError};
use crate::repo::backup::StreamSource;
use crate::repo::Error;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// Where a database is and how to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    /// A `.pgpass` file with the password.
    pub passfile: Option<PathBuf>,
    /// The name of an environment variable of this process holding the password.
    pub password_env: Option<String>,
}

impl Connection {
    /// Parses `postgres://USER@HOST[:PORT]/DATABASE` (`postgresql://` too). A password in the
    /// address is refused: it would show in process lists and shell histories.
    pub fn parse(address: &str) -> Result<Connection, String> {
        let rest = address
            .strip_prefix("postgres://")
            .or_else(|| address.strip_prefix("postgresql://"))
            .ok_or_else(|| format!("'{address}' is not postgres://USER@HOST[:PORT]/DATABASE"))?;
        let (authority, database) = rest
            .split_once('/')
            .filter(|(_, db)| !db.is_empty() && !db.contains(['/', '?']))
            .ok_or_else(|| {
                format!("'{address}' names no database (postgres://USER@HOST/DATABASE)")
            })?;
        let (user, hostport) = authority
            .rsplit_once('@')
            .ok_or_else(|| format!("'{address}' names no user (postgres://USER@HOST/DATABASE)"))?;
        if user.contains(':') {
            return Err(
                "the address holds a password; give it in a passfile or an environment variable instead"
                    .into(),
            );
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("'{p}' is not a port number"))?,
            ),
            None => (hostport, 5432),
        };
        if host.is_empty() || user.is_empty() {
            return Err(format!("'{address}' lacks a host or a user"));
        }
        Ok(Connection {
            host: host.into(),
            port,
            database: database.into(),
            user: user.into(),
            passfile: None,
            password_env: None,
        })
    }

    /// The address without secrets, for manifests and messages.
    pub fn describe(&self) -> String {
        format!(
            "postgres://{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }

    /// The same server, another database.
    pub fn with_database(&self, database: &str) -> Connection {
        Connection {
            database: database.into(),
            ..self.clone()
        }
    }

    /// A command for one of the PostgreSQL tools, connected through its environment.
    pub fn command(&self, program: &str) -> Result<Command, Error> {
        let mut cmd = Command::new(program);
        cmd.env("PGHOST", &self.host)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", &self.user)
            .env("PGDATABASE", &self.database)
            .env("PGAPPNAME", "lifeboat")
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGSERVICE");
        if let Some(f) = &self.passfile {
            cmd.env("PGPASSFILE", f);
        }
        if let Some(var) = &self.password_env {
            let password = std::env::var(var).map_err(|_| {
                Error::Source(format!(
                    "the password of {} is to come from the environment variable {var}, which is not set",
                    self.describe()
                ))
            })?;
            cmd.env("PGPASSWORD", password);
        }
        Ok(cmd)
    }
}

fn tool_error(e: ToolError) -> Error {
    Error::Source(e.to_string())
}

/// A PostgreSQL database as a backup source: `globals.sql` and `DATABASE.dump`.
pub struct PostgresSource {
    pub connection: Connection,
    details: BTreeMap<String, String>,
}

impl PostgresSource {
    pub fn new(connection: Connection) -> PostgresSource {
        PostgresSource {
            connection,
            details: BTreeMap::new(),
        }
    }

    /// The file name of the database dump in the snapshot.
    pub fn dump_name(database: &str) -> String {
        format!("{database}.dump")
    }
}

pub const GLOBALS: &str = "globals.sql";

impl StreamSource for PostgresSource {
    fn describe(&self) -> Vec<String> {
        vec![self.connection.describe()]
    }

    fn produce(
        &mut self,
        each: &mut dyn FnMut(&str, &mut dyn Read) -> crate::repo::Result<()>,
    ) -> crate::repo::Result<()> {
        let c = &self.connection;
        // What the server is, before the dump: a dump of an unreachable server fails here.
        let mut query = c.command("psql")?;
        query.args([
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "SELECT current_setting('server_version') || '|' || pg_database_size(current_database())",
        ]);
        let answer = tool::output(query).map_err(tool_error)?;
        let answer = String::from_utf8_lossy(&answer);
        let (version, size) = answer.trim().split_once('|').unwrap_or((answer.trim(), ""));
        self.details.insert("kind".into(), "postgres".into());
        self.details.insert("database".into(), c.database.clone());
        self.details
            .insert("server_version".into(), version.to_string());
        self.details
            .insert("database_size_bytes".into(), size.to_string());

        let started = Instant::now();
        let mut globals = c.command("pg_dumpall")?;
        globals.arg("--globals-only");
        tool::stream(globals, &mut |out| each(GLOBALS, out)).map_err(tool_error)??;
        let mut dump = c.command("pg_dump")?;
        dump.args(["--format=custom", "--compress=0"]);
        let name = Self::dump_name(&c.database);
        tool::stream(dump, &mut |out| each(&name, out)).map_err(tool_error)??;
        self.details.insert(
            "dump_duration_ms".into(),
            started.elapsed().as_millis().to_string(),
        );
        Ok(())
    }

    fn details(&self) -> BTreeMap<String, String> {
        self.details.clone()
    }
}

/// Restores roles and other globals, then the database, into `target` (its database must not
/// exist yet: it is created). `read` writes a file of the snapshot to a writer.
pub fn restore(
    target: &Connection,
    dump: &str,
    read: &mut dyn FnMut(&str, &mut dyn std::io::Write) -> crate::repo::Result<u64>,
) -> crate::repo::Result<()> {
    let admin = target.with_database("postgres");
    // Globals: roles that exist already (the cluster's own superuser) are fine; anything else
    // that fails stops the restore.
    let mut psql = admin.command("psql")?;
    psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=0", "-f", "-"]);
    let mut failure = None;
    let stderr = tool::feed_collect(psql, &mut |stdin| {
        read(GLOBALS, stdin).map(|_| ()).map_err(|e| {
            failure = Some(e);
            std::io::Error::other("reading the snapshot failed")
        })
    })
    .map_err(tool_error);
    if let Some(e) = failure {
        return Err(e);
    }
    let stderr = stderr?;
    let real: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ERROR:") && !l.contains("already exists"))
        .collect();
    if !real.is_empty() {
        return Err(Error::Target(format!(
            "restoring the roles into {} failed: {}",
            admin.describe(),
            real.join("; ")
        )));
    }

    // psql quotes the name (:"db"), in a statement read from standard input.
    let mut create = admin.command("psql")?;
    create.args([
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-v",
        &format!("db={}", target.database),
        "-f",
        "-",
    ]);
    tool::feed(create, &mut |stdin| {
        stdin.write_all(b"CREATE DATABASE :\"db\";\n")
    })
    .map_err(|e| {
        Error::Target(format!(
            "cannot create database '{}' on {}: {e} (restore into a new database name)",
            target.database,
            admin.describe()
        ))
    })?;

    let mut pg_restore = target.command("pg_restore")?;
    pg_restore.args(["--exit-on-error", "--dbname", &target.database]);
    let mut failure = None;
    let restored = tool::feed(pg_restore, &mut |stdin| {
        read(dump, stdin).map(|_| ()).map_err(|e| {
            failure = Some(e);
            std::io::Error::other("reading the snapshot failed")
        })
    });
    if let Some(e) = failure {
        return Err(e);
    }
    restored.map_err(|e| Error::Target(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_parsed_and_passwords_refused() {
        let c = Connection::parse("postgres://backup@db1.example:5433/erp").unwrap();
        assert_eq!(
            (
                c.user.as_str(),
                c.host.as_str(),
                c.port,
                c.database.as_str()
            ),
            ("backup", "db1.example", 5433, "erp")
        );
        assert_eq!(c.describe(), "postgres://backup@db1.example:5433/erp");
        assert_eq!(Connection::parse("postgresql://u@h/d").unwrap().port, 5432);
        let e = Connection::parse("postgres://u:secret@h/d").unwrap_err();
        assert!(e.contains("password") && !e.contains("secret"), "{e}");
        assert!(Connection::parse("postgres://u@h").is_err());
        assert!(Connection::parse("mysql://u@h/d").is_err());
        assert!(Connection::parse("postgres://u@h:99999/d").is_err());
    }
}
