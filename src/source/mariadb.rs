//! MariaDB and MySQL sources: the server's accounts (`mariadb-dump --system=users`) and one
//! database (`mariadb-dump --single-transaction --routines --triggers --events`), streamed
//! into the backup as plain SQL, which deduplicates well from one dump to the next; and the way
//! back through the `mariadb` client.
//!
//! Connection settings are command-line options (host, port, user: nothing secret). The
//! password comes from an option file (`passfile`, read with `--defaults-extra-file`, holding
//! `[client]` and `password=...`) or from an environment variable the service names (passed to
//! the tools as `MYSQL_PWD`); never from the command line. The MariaDB tools are preferred,
//! MySQL's (`mysqldump`, `mysql`) used when they are not installed.

use super::connection::Connection;
use super::tool::{self, ToolError};
use crate::repo::backup::StreamSource;
use crate::repo::Error;
use std::collections::BTreeMap;
use std::io::Read;
use std::process::Command;
use std::time::Instant;

/// The accounts and their grants, restored first.
pub const USERS: &str = "users.sql";

fn dump_tool() -> &'static str {
    tool::first_on_path(&["mariadb-dump", "mysqldump"])
}

pub fn client_tool() -> &'static str {
    tool::first_on_path(&["mariadb", "mysql"])
}

/// A command for a MariaDB/MySQL tool, connected to `c`'s server (no database chosen).
pub fn command(c: &Connection, program: &str) -> Result<Command, Error> {
    let mut cmd = Command::new(program);
    // The option file must be the first option.
    if let Some(f) = &c.passfile {
        cmd.arg(format!("--defaults-extra-file={}", f.display()));
    }
    cmd.arg(format!("--host={}", c.host))
        .arg(format!("--port={}", c.port))
        .arg(format!("--user={}", c.user));
    if let Some(password) = c.password_from_env()? {
        cmd.env("MYSQL_PWD", password);
    }
    Ok(cmd)
}

/// `name` quoted as an identifier.
fn quoted(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn tool_error(e: ToolError) -> Error {
    Error::Source(e.to_string())
}

/// A MariaDB/MySQL database as a backup source: `users.sql` and `DATABASE.sql`.
pub struct MariadbSource {
    pub connection: Connection,
    details: BTreeMap<String, String>,
}

impl MariadbSource {
    pub fn new(connection: Connection) -> MariadbSource {
        MariadbSource {
            connection,
            details: BTreeMap::new(),
        }
    }

    /// The file name of the database dump in the snapshot.
    pub fn dump_name(database: &str) -> String {
        format!("{database}.sql")
    }
}

impl StreamSource for MariadbSource {
    fn describe(&self) -> Vec<String> {
        vec![self.connection.describe()]
    }

    fn produce(
        &mut self,
        each: &mut dyn FnMut(&str, &mut dyn Read) -> crate::repo::Result<()>,
    ) -> crate::repo::Result<()> {
        let c = &self.connection;
        // What the server is, before the dump: a wrong password or an unreachable server
        // fails here, with the client's words.
        let mut query = command(c, client_tool())?;
        query.args([
            "--connect-timeout=10",
            "--batch",
            "--skip-column-names",
            "--execute",
            "SELECT VERSION(), \
                (SELECT COALESCE(SUM(data_length + index_length), 0) \
                 FROM information_schema.tables WHERE table_schema = DATABASE()), \
                default_character_set_name, default_collation_name \
             FROM information_schema.schemata WHERE schema_name = DATABASE()",
        ]);
        query.arg(format!("--database={}", c.database));
        let answer = tool::output(query).map_err(tool_error)?;
        let answer = String::from_utf8_lossy(&answer);
        let fields: Vec<&str> = answer.trim().split('\t').collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or_default().to_string();
        self.details.insert("kind".into(), "mysql".into());
        self.details.insert("database".into(), c.database.clone());
        self.details.insert("server_version".into(), field(0));
        self.details.insert("database_size_bytes".into(), field(1));
        // The database's defaults, which a dump of its tables does not carry.
        self.details.insert("character_set".into(), field(2));
        self.details.insert("collation".into(), field(3));

        let started = Instant::now();
        let mut users = command(c, dump_tool())?;
        // CREATE USER IF NOT EXISTS: accounts the target has already are left as they are.
        users.args(["--system=users", "--insert-ignore", "--skip-dump-date"]);
        tool::stream(users, &mut |out| each(USERS, out)).map_err(tool_error)??;
        let mut dump = command(c, dump_tool())?;
        dump.args([
            // One consistent read view (InnoDB) without locking the tables.
            "--single-transaction",
            "--routines",
            "--triggers",
            "--events",
            "--hex-blob",
            "--default-character-set=utf8mb4",
            // No date in the dump: identical data dumps identically.
            "--skip-dump-date",
            "--",
            &c.database,
        ]);
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

/// Restores the accounts, then the database, into `target` (its database must not exist yet:
/// it is created, with the character set and collation in the snapshot's `details`). `read`
/// writes a file of the snapshot to a writer.
pub fn restore(
    target: &Connection,
    details: &BTreeMap<String, String>,
    read: &mut dyn FnMut(&str, &mut dyn std::io::Write) -> crate::repo::Result<u64>,
) -> crate::repo::Result<()> {
    let failed = |what: &str, e: ToolError| {
        Error::Target(format!(
            "restoring {what} into {} failed: {e}",
            target.describe()
        ))
    };
    // Accounts the target has already are left as they are: their passwords above all (the
    // dump's GRANT ... IDENTIFIED BY PASSWORD would set them).
    let mut list = command(target, client_tool())?;
    list.args([
        "--connect-timeout=10",
        "--batch",
        "--skip-column-names",
        "--execute",
        "SELECT user, host FROM mysql.user",
    ]);
    let existing = tool::output(list).map_err(|e| failed("the accounts", e))?;
    let existing: Vec<(String, String)> = String::from_utf8_lossy(&existing)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(u, h)| (u.to_string(), h.to_string()))
        .collect();
    let mut accounts = Vec::new();
    read(USERS, &mut accounts)?;
    let accounts = without_existing_accounts(&String::from_utf8_lossy(&accounts), &existing);
    let mut users = command(target, client_tool())?;
    users.args(["--connect-timeout=10", "--batch"]);
    tool::feed(users, &mut |stdin| stdin.write_all(accounts.as_bytes()))
        .map_err(|e| failed("the accounts", e))?;

    let mut statement = format!("CREATE DATABASE {}", quoted(&target.database));
    let name = |key: &str| {
        details
            .get(key)
            .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    };
    if let Some(charset) = name("character_set") {
        statement.push_str(&format!(" CHARACTER SET {charset}"));
    }
    if let Some(collation) = name("collation") {
        statement.push_str(&format!(" COLLATE {collation}"));
    }
    let mut create = command(target, client_tool())?;
    create.args(["--batch", "--execute", &statement]);
    tool::output(create).map_err(|e| {
        Error::Target(format!(
            "cannot create database '{}' on {}: {e} (restore into a new database name)",
            target.database,
            target.describe()
        ))
    })?;

    let dump = MariadbSource::dump_name(details.get("database").map_or("", String::as_str));
    let mut client = command(target, client_tool())?;
    client.args(["--batch", "--default-character-set=utf8mb4"]);
    client.arg(format!("--database={}", target.database));
    tool::feed_snapshot(client, &mut |stdin| read(&dump, stdin))?
        .map_err(|e| failed("the database", e))?;
    Ok(())
}

/// The statements of a `mariadb-dump --system=users` dump, less those that name an account
/// in `existing` (as `user`@`host` or 'user'@'host'; one statement per line, as the dump
/// writes them).
fn without_existing_accounts(users: &str, existing: &[(String, String)]) -> String {
    let names: Vec<String> = existing
        .iter()
        .flat_map(|(u, h)| {
            [
                format!("`{}`@`{}`", u.replace('`', "``"), h.replace('`', "``")),
                format!("'{}'@'{}'", u.replace('\'', "\\'"), h.replace('\'', "\\'")),
            ]
        })
        .collect();
    users
        .lines()
        .filter(|l| !names.iter().any(|n| l.contains(n.as_str())))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_the_target_has_are_left_alone() {
        let users = "CREATE USER IF NOT EXISTS `root`@`localhost` IDENTIFIED BY PASSWORD '*D8';\n\
            CREATE USER IF NOT EXISTS `shop`@`%` IDENTIFIED BY PASSWORD '*2B';\n\
            GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED BY PASSWORD '*D8';\n\
            /*M!100005 SET DEFAULT ROLE NONE FOR 'root'@'localhost' */;\n\
            GRANT SELECT ON `shop`.* TO `shop`@`%`;\n";
        let existing = vec![("root".to_string(), "localhost".to_string())];
        assert_eq!(
            without_existing_accounts(users, &existing),
            "CREATE USER IF NOT EXISTS `shop`@`%` IDENTIFIED BY PASSWORD '*2B';\n\
             GRANT SELECT ON `shop`.* TO `shop`@`%`;\n"
        );
    }

    #[test]
    fn names_are_quoted_and_passwords_stay_off_the_command_line() {
        assert_eq!(quoted("shop"), "`shop`");
        assert_eq!(quoted("a`b"), "`a``b`");
        let mut c = Connection::parse("mysql://dump@127.0.0.1:3307/shop").unwrap();
        c.passfile = Some("/etc/lifeboat/shop.cnf".into());
        let cmd = command(&c, "mariadb-dump").unwrap();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--defaults-extra-file=/etc/lifeboat/shop.cnf",
                "--host=127.0.0.1",
                "--port=3307",
                "--user=dump"
            ]
        );
    }
}
