//! Where a database server is and how to log in: `postgres://USER@HOST[:PORT]/DATABASE` or
//! `mysql://USER@HOST[:PORT]/DATABASE`. Passwords never appear in an address: they come from a
//! file (a `.pgpass` file, or a MariaDB/MySQL option file) or from an environment variable the
//! service names, so they show in no process list, log or manifest.

use std::path::PathBuf;

/// Which kind of server an address names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    /// MariaDB or MySQL.
    Mysql,
}

impl Engine {
    pub fn scheme(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Engine::Postgres => 5432,
            Engine::Mysql => 3306,
        }
    }

    fn from_scheme(scheme: &str) -> Option<Engine> {
        match scheme {
            "postgres" | "postgresql" => Some(Engine::Postgres),
            "mysql" | "mariadb" => Some(Engine::Mysql),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub engine: Engine,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    /// A file with the password: a `.pgpass` file for PostgreSQL, an option file with a
    /// `[client]` section for MariaDB/MySQL.
    pub passfile: Option<PathBuf>,
    /// The name of an environment variable of this process holding the password.
    pub password_env: Option<String>,
}

impl Connection {
    /// Parses `SCHEME://USER@HOST[:PORT]/DATABASE`, where SCHEME is `postgres` (or
    /// `postgresql`), or `mysql` (or `mariadb`). A password in the address is refused.
    pub fn parse(address: &str) -> Result<Connection, String> {
        let form = "postgres://USER@HOST[:PORT]/DATABASE or mysql://USER@HOST[:PORT]/DATABASE";
        let (scheme, rest) = address
            .split_once("://")
            .ok_or_else(|| format!("'{address}' is not {form}"))?;
        let engine = Engine::from_scheme(scheme).ok_or_else(|| {
            format!("'{scheme}' is not a database this service dumps; use {form}")
        })?;
        let example = format!("{}://USER@HOST/DATABASE", engine.scheme());
        let (authority, database) = rest
            .split_once('/')
            .filter(|(_, db)| !db.is_empty() && !db.contains(['/', '?', '`', '\0']))
            .ok_or_else(|| format!("'{address}' names no database ({example})"))?;
        let (user, hostport) = authority
            .rsplit_once('@')
            .ok_or_else(|| format!("'{address}' names no user ({example})"))?;
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
            None => (hostport, engine.default_port()),
        };
        if host.is_empty() || user.is_empty() {
            return Err(format!("'{address}' lacks a host or a user"));
        }
        Ok(Connection {
            engine,
            host: host.into(),
            port,
            database: database.into(),
            user: user.into(),
            passfile: None,
            password_env: None,
        })
    }

    /// Parses an address that must be of `engine`.
    pub fn parse_for(engine: Engine, address: &str) -> Result<Connection, String> {
        let c = Connection::parse(address)?;
        if c.engine != engine {
            return Err(format!(
                "'{}' is not a {}:// address",
                c.describe(),
                engine.scheme()
            ));
        }
        Ok(c)
    }

    /// The address without secrets, for manifests and messages.
    pub fn describe(&self) -> String {
        format!(
            "{}://{}@{}:{}/{}",
            self.engine.scheme(),
            self.user,
            self.host,
            self.port,
            self.database
        )
    }

    /// The same server, another database.
    pub fn with_database(&self, database: &str) -> Connection {
        Connection {
            database: database.into(),
            ..self.clone()
        }
    }

    /// The password from the environment variable the service names, if it names one.
    pub fn password_from_env(&self) -> Result<Option<String>, crate::repo::Error> {
        let Some(var) = &self.password_env else {
            return Ok(None);
        };
        std::env::var(var).map(Some).map_err(|_| {
            crate::repo::Error::Source(format!(
                "the password of {} is to come from the environment variable {var}, which is not set",
                self.describe()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_parsed_and_passwords_refused() {
        let c = Connection::parse("postgres://backup@db1.example:5433/erp").unwrap();
        assert_eq!(
            (
                c.engine,
                c.user.as_str(),
                c.host.as_str(),
                c.port,
                c.database.as_str()
            ),
            (Engine::Postgres, "backup", "db1.example", 5433, "erp")
        );
        assert_eq!(c.describe(), "postgres://backup@db1.example:5433/erp");
        assert_eq!(Connection::parse("postgresql://u@h/d").unwrap().port, 5432);
        let m = Connection::parse("mariadb://dump@shop-db/shop").unwrap();
        assert_eq!((m.engine, m.port), (Engine::Mysql, 3306));
        assert_eq!(m.describe(), "mysql://dump@shop-db:3306/shop");
        let e = Connection::parse("postgres://u:secret@h/d").unwrap_err();
        assert!(e.contains("password") && !e.contains("secret"), "{e}");
        assert!(Connection::parse("postgres://u@h").is_err());
        assert!(Connection::parse("mssql://u@h/d").is_err());
        assert!(Connection::parse("mysql://u@h/a`b").is_err());
        assert!(Connection::parse("postgres://u@h:99999/d").is_err());
        assert!(Connection::parse_for(Engine::Postgres, "mysql://u@h/d").is_err());
        assert!(Connection::parse_for(Engine::Mysql, "mysql://u@h/d").is_ok());
    }
}
