//! PostgreSQL sources: `pg_dumpall --globals-only` (roles, tablespaces) and `pg_dump -Fc -Z0`
//! (custom format, uncompressed, so consecutive dumps deduplicate), streamed into the backup;
//! and the way back: globals through `psql`, the database through `pg_restore`.
//!
//! Connection settings reach the tools through `PG*` environment variables, never the command
//! line; the password comes from a passfile (`PGPASSFILE`) or from an environment variable the
//! service names, and appears in no log or message.

use super::connection::Connection;
use super::tool::{self, ToolError};
use crate::repo::backup::StreamSource;
use crate::repo::Error;
use std::collections::BTreeMap;
use std::io::Read;
use std::process::Command;
use std::time::Instant;

/// A command for one of the PostgreSQL tools, connected through its environment.
pub fn command(c: &Connection, program: &str) -> Result<Command, Error> {
    let mut cmd = Command::new(program);
    cmd.env("PGHOST", &c.host)
        .env("PGPORT", c.port.to_string())
        .env("PGUSER", &c.user)
        .env("PGDATABASE", &c.database)
        .env("PGAPPNAME", "lifeboat")
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGSERVICE");
    if let Some(f) = &c.passfile {
        cmd.env("PGPASSFILE", f);
    }
    if let Some(password) = c.password_from_env()? {
        cmd.env("PGPASSWORD", password);
    }
    Ok(cmd)
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
        let mut query = command(c, "psql")?;
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
        let mut globals = command(c, "pg_dumpall")?;
        globals.arg("--globals-only");
        tool::stream(globals, &mut |out| each(GLOBALS, out)).map_err(tool_error)??;
        let mut dump = command(c, "pg_dump")?;
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

    fn chunker(&self) -> Option<crate::repo::chunker::ChunkerParams> {
        Some(crate::repo::chunker::ChunkerParams::for_dumps())
    }
}

/// Restores roles and other globals, then the database, into `target` (its database must not
/// exist yet: it is created). `read` writes a file of the snapshot to a writer.
///
/// With one job the dump streams from the repository straight into `pg_restore`. With more,
/// it is first written to a temporary file (`TMPDIR` needs room for it), because `pg_restore
/// --jobs` cannot read standard input; a dump streamed out of `pg_dump` has no data offsets in
/// its table of contents, so each job scans the file for its tables, which still pays off when
/// indexes and big tables can be rebuilt side by side.
pub fn restore(
    target: &Connection,
    dump: &str,
    jobs: usize,
    read: &mut dyn FnMut(&str, &mut dyn std::io::Write) -> crate::repo::Result<u64>,
) -> crate::repo::Result<()> {
    let admin = target.with_database("postgres");
    // Globals: roles the target has already (its own superuser, for one) are left as they
    // are, their passwords above all; anything else that fails stops the restore.
    let mut list = command(&admin, "psql")?;
    list.args(["-X", "-A", "-t", "-c", "SELECT rolname FROM pg_roles"]);
    let existing = tool::output(list).map_err(|e| {
        Error::Target(format!(
            "cannot list the roles of {}: {e}",
            admin.describe()
        ))
    })?;
    let existing: std::collections::HashSet<String> = String::from_utf8_lossy(&existing)
        .lines()
        .map(str::to_string)
        .collect();
    let mut globals = Vec::new();
    read(GLOBALS, &mut globals)?;
    let globals = without_existing_roles(&String::from_utf8_lossy(&globals), &existing);
    let mut psql = command(&admin, "psql")?;
    psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=0", "-f", "-"]);
    let stderr = tool::feed_collect(psql, &mut |stdin| stdin.write_all(globals.as_bytes()))
        .map_err(tool_error)?;
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
    let mut create = command(&admin, "psql")?;
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

    let mut pg_restore = command(target, "pg_restore")?;
    pg_restore.args(["--exit-on-error", "--dbname", &target.database]);
    if jobs <= 1 {
        return tool::feed_snapshot(pg_restore, &mut |stdin| read(dump, stdin))?
            .map(|_| ())
            .map_err(|e| Error::Target(e.to_string()));
    }
    // pg_restore runs jobs in parallel only from a file it can open once per job.
    let scratch = tempfile::Builder::new()
        .prefix(".lifeboat-pg-restore-")
        .tempdir()
        .map_err(|e| Error::Target(format!("no temporary folder for the dump: {e}")))?;
    let file = scratch.path().join(dump);
    {
        let mut out = std::fs::File::create(&file).map_err(|e| {
            Error::Target(format!("cannot write the dump to {}: {e}", file.display()))
        })?;
        read(dump, &mut out)?;
    }
    pg_restore.arg(format!("--jobs={jobs}")).arg(&file);
    tool::output(pg_restore)
        .map(|_| ())
        .map_err(|e| Error::Target(e.to_string()))
}

/// The statements of a `pg_dumpall --globals-only` dump, less those that create or change a
/// role in `existing` (one statement per line, as pg_dumpall writes them).
fn without_existing_roles(globals: &str, existing: &std::collections::HashSet<String>) -> String {
    let touches_existing = |line: &str| {
        let rest = ["CREATE ROLE ", "ALTER ROLE ", "COMMENT ON ROLE "]
            .iter()
            .find_map(|p| line.strip_prefix(p));
        let Some(rest) = rest else {
            return false;
        };
        let name = match rest.strip_prefix('"') {
            // A quoted name: up to the closing quote, "" standing for one quote.
            Some(quoted) => {
                let mut name = String::new();
                let mut chars = quoted.chars().peekable();
                while let Some(c) = chars.next() {
                    if c == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            name.push('"');
                        } else {
                            break;
                        }
                    } else {
                        name.push(c);
                    }
                }
                name
            }
            None => rest
                .split([' ', ';'])
                .next()
                .unwrap_or_default()
                .to_string(),
        };
        existing.contains(&name)
    };
    globals
        .lines()
        .filter(|l| !touches_existing(l))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_the_target_has_are_left_alone() {
        let globals = "CREATE ROLE postgres;\n\
            ALTER ROLE postgres WITH SUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$4096:x';\n\
            CREATE ROLE \"Odd \"\"Name\";\n\
            ALTER ROLE \"Odd \"\"Name\" WITH NOLOGIN;\n\
            CREATE ROLE erp_owner;\n\
            ALTER ROLE erp_owner WITH LOGIN PASSWORD 'x';\n\
            GRANT erp_owner TO postgres;\n";
        let existing = ["postgres".to_string(), "Odd \"Name".to_string()]
            .into_iter()
            .collect();
        assert_eq!(
            without_existing_roles(globals, &existing),
            "CREATE ROLE erp_owner;\nALTER ROLE erp_owner WITH LOGIN PASSWORD 'x';\n\
             GRANT erp_owner TO postgres;\n"
        );
    }
}
