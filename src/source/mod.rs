//! Sources: things to back up. File trees are walked; databases are dumped by their own tools
//! (or copied through SQLite's backup API) and streamed.

pub mod connection;
pub mod fs;
pub mod mariadb;
pub mod postgres;
pub mod sqlite;
pub mod tool;
pub mod vm;

use crate::repo::backup::StreamSource;
use connection::Connection;
use std::path::PathBuf;

/// A database to back up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Postgres(Connection),
    /// MariaDB or MySQL.
    Mysql(Connection),
    /// An SQLite database file.
    Sqlite(PathBuf),
}

impl Database {
    /// A server database from its address (`postgres://…` or `mysql://…`), with the password's
    /// file or environment variable.
    pub fn server(
        address: &str,
        passfile: Option<PathBuf>,
        password_env: Option<String>,
    ) -> Result<Database, String> {
        let mut c = Connection::parse(address)?;
        c.passfile = passfile;
        c.password_env = password_env;
        Ok(match c.engine {
            connection::Engine::Postgres => Database::Postgres(c),
            connection::Engine::Mysql => Database::Mysql(c),
        })
    }

    /// The source that dumps it.
    pub fn source(self) -> Box<dyn StreamSource> {
        match self {
            Database::Postgres(c) => Box::new(postgres::PostgresSource::new(c)),
            Database::Mysql(c) => Box::new(mariadb::MariadbSource::new(c)),
            Database::Sqlite(path) => Box::new(sqlite::SqliteSource::new(path)),
        }
    }
}
