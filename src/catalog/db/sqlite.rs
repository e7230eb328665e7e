//! The embedded engine: one SQLite file in the data directory, in WAL mode.

use super::{Arg, Begin, Db, DbResult, Engine, Row, Value};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};
use std::path::Path;

pub struct Sqlite {
    conn: Connection,
}

impl Sqlite {
    pub fn open(path: &Path) -> DbResult<Sqlite> {
        let conn = Connection::open(path)?;
        // The busy timeout comes first: switching to WAL needs a lock another process may hold.
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
        )?;
        Ok(Sqlite { conn })
    }
}

impl ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Arg::Int(Some(i)) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Arg::Real(Some(r)) => ToSqlOutput::Borrowed(ValueRef::Real(*r)),
            Arg::Text(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Arg::Blob(Some(b)) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Arg::Int(None) | Arg::Real(None) | Arg::Text(None) | Arg::Blob(None) => {
                ToSqlOutput::Borrowed(ValueRef::Null)
            }
        })
    }
}

fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

impl Db for Sqlite {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    fn execute(&self, sql: &str, args: &[Arg]) -> DbResult<u64> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let params: Vec<&dyn ToSql> = args.iter().map(|a| a as &dyn ToSql).collect();
        Ok(stmt.execute(params.as_slice())? as u64)
    }

    fn query_each(
        &self,
        sql: &str,
        args: &[Arg],
        each: &mut dyn FnMut(Row) -> DbResult<()>,
    ) -> DbResult<()> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let width = stmt.column_count();
        let params: Vec<&dyn ToSql> = args.iter().map(|a| a as &dyn ToSql).collect();
        let mut rows = stmt.query(params.as_slice())?;
        while let Some(r) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(value(r.get_ref(i)?));
            }
            each(Row(values))?;
        }
        Ok(())
    }

    fn batch(&self, sql: &str) -> DbResult<()> {
        Ok(self.conn.execute_batch(sql)?)
    }

    fn begin_with(&self, how: Begin) -> DbResult<()> {
        self.batch(match how {
            Begin::Deferred => "BEGIN DEFERRED",
            Begin::Immediate => "BEGIN IMMEDIATE",
        })
    }

    fn serialise(&self, _key: &str) -> DbResult<()> {
        Ok(())
    }

    fn announce(&self, _channel: &str, _message: &str) -> DbResult<()> {
        // One instance of the service per embedded catalog: it rings its own bells.
        Ok(())
    }

    fn schema_version(&self) -> DbResult<usize> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |row| row.get::<_, usize>(0))?)
    }

    fn set_schema_version(&self, version: usize) -> DbResult<()> {
        Ok(self.conn.pragma_update(None, "user_version", version)?)
    }

    fn begin_setup(&self) -> DbResult<()> {
        self.begin_with(Begin::Immediate)
    }

    fn checkpoint(&self) -> DbResult<()> {
        // Answers (busy, pages in the log, pages copied); one that readers kept from
        // finishing is tried again at the next call.
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}
