//! The catalog's storage engines behind one interface: SQLite embedded in the process (the
//! default), or a PostgreSQL server that several instances of the service share.
//!
//! The catalog's code is written once against [`Db`]. Its SQL is the common ground of both
//! engines: parameters are numbered (`?1`, which PostgreSQL receives as `$1`), inserts that may
//! meet a row use `ON CONFLICT`, new ids come back with `RETURNING`, and sums are cast to
//! `BIGINT`. The schema's definitions are written once too; [`ddl`] adapts their types.

mod ddl;
pub mod postgres;
pub mod sqlite;

pub use ddl::ddl;

use std::fmt;

/// Which engine a catalog runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A value read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A statement's parameter. It carries its type even when null: PostgreSQL types every
/// parameter, and a null text is not a null number.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Postgres(String),
    #[error("column {column}: {reason}")]
    Decode { column: usize, reason: String },
}

pub type DbResult<T> = std::result::Result<T, DbError>;

/// How a transaction begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Reads first; a write later takes the write lock (SQLite's default).
    Deferred,
    /// Takes SQLite's write lock at once: for a read that decides a write. PostgreSQL has no
    /// such lock; there the read holds the lock of what it decides ([`Db::serialise`]), or the
    /// write checks again what was read.
    Immediate,
}

/// One connection to a catalog.
pub trait Db: Send {
    fn engine(&self) -> Engine;
    /// Runs one statement; returns the rows it changed.
    fn execute(&self, sql: &str, args: &[Arg]) -> DbResult<u64>;
    /// Runs one statement; hands each row it returns to `each`, in order.
    fn query_each(
        &self,
        sql: &str,
        args: &[Arg],
        each: &mut dyn FnMut(Row) -> DbResult<()>,
    ) -> DbResult<()>;
    /// Runs statements without parameters (schema changes, transaction control).
    fn batch(&self, sql: &str) -> DbResult<()>;
    /// Begins a transaction.
    fn begin_with(&self, how: Begin) -> DbResult<()>;
    /// Within a transaction: waits until no other transaction holds `key`, and holds it until
    /// this one ends. Appends to one chain go through it, one at a time across every instance
    /// of the service. (SQLite has one writer at a time already.)
    fn serialise(&self, key: &str) -> DbResult<()>;
    /// Tells every instance of the service listening on `channel` (see
    /// [`postgres::listen`]) `message`: at once, or at the commit of the transaction this is
    /// in. (An embedded catalog has one instance, which knows already.)
    fn announce(&self, channel: &str, message: &str) -> DbResult<()>;
    /// The schema version the catalog is at.
    fn schema_version(&self) -> DbResult<usize>;
    fn set_schema_version(&self, version: usize) -> DbResult<()>;
    /// Begins the transaction that brings the schema up to date: one process at a time.
    fn begin_setup(&self) -> DbResult<()>;
    /// Copies what the write-ahead log holds into the database and empties the log.
    fn checkpoint(&self) -> DbResult<()>;
}

impl dyn Db + '_ {
    /// Every row a statement returns.
    pub fn query(&self, sql: &str, args: &[Arg]) -> DbResult<Vec<Row>> {
        let mut rows = Vec::new();
        self.query_each(sql, args, &mut |r| {
            rows.push(r);
            Ok(())
        })?;
        Ok(rows)
    }

    /// Every row a statement returns, each made into a `T`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        args: &[Arg],
        mut f: impl FnMut(&Row) -> DbResult<T>,
    ) -> DbResult<Vec<T>> {
        let mut out = Vec::new();
        self.query_each(sql, args, &mut |r| {
            out.push(f(&r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row a statement returns, if any.
    pub fn query_opt(&self, sql: &str, args: &[Arg]) -> DbResult<Option<Row>> {
        let mut first = None;
        self.query_each(sql, args, &mut |r| {
            if first.is_none() {
                first = Some(r);
            }
            Ok(())
        })?;
        Ok(first)
    }

    /// The first row a statement returns made into a `T`, if there is a row.
    pub fn query_row<T>(
        &self,
        sql: &str,
        args: &[Arg],
        f: impl FnOnce(&Row) -> DbResult<T>,
    ) -> DbResult<Option<T>> {
        self.query_opt(sql, args)?.map(|r| f(&r)).transpose()
    }

    /// The first column of the first row; an error if there is no row.
    pub fn query_value<T: FromValue>(&self, sql: &str, args: &[Arg]) -> DbResult<T> {
        match self.query_opt(sql, args)? {
            Some(row) => row.get(0),
            None => Err(DbError::Decode {
                column: 0,
                reason: "the statement returned no row".into(),
            }),
        }
    }

    /// Begins the transaction that brings the schema up to date ([`Db::begin_setup`]).
    pub fn begin_schema(&self) -> DbResult<Tx<'_>> {
        self.begin_setup()?;
        Ok(Tx {
            db: self,
            open: true,
        })
    }

    /// Begins a transaction that ends with [`Tx::commit`], or rolls back when dropped.
    pub fn begin(&self, how: Begin) -> DbResult<Tx<'_>> {
        self.begin_with(how)?;
        Ok(Tx {
            db: self,
            open: true,
        })
    }
}

/// An open transaction. Dropping it without a commit rolls it back.
pub struct Tx<'a> {
    db: &'a dyn Db,
    open: bool,
}

impl Tx<'_> {
    pub fn commit(mut self) -> DbResult<()> {
        self.open = false;
        self.db.batch("COMMIT")
    }
}

impl<'a> std::ops::Deref for Tx<'a> {
    type Target = dyn Db + 'a;
    fn deref(&self) -> &Self::Target {
        self.db
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            if let Err(e) = self.db.batch("ROLLBACK") {
                eprintln!("catalog: rolling back a transaction failed: {e}");
            }
        }
    }
}

/// One row of a result.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    pub fn get<T: FromValue>(&self, column: usize) -> DbResult<T> {
        let value = self.0.get(column).ok_or_else(|| DbError::Decode {
            column,
            reason: format!("the row has {} columns", self.0.len()),
        })?;
        T::from_value(value).map_err(|reason| DbError::Decode { column, reason })
    }
}

/// A type a column's value can be read as.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Result<Self, String>;
}

fn expected(what: &str, v: &Value) -> String {
    format!("expected {what}, found {v}")
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Int(i) => write!(f, "the integer {i}"),
            Value::Real(r) => write!(f, "the number {r}"),
            Value::Text(_) => f.write_str("text"),
            Value::Blob(b) => write!(f, "{} bytes", b.len()),
        }
    }
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Int(i) => Ok(*i),
            _ => Err(expected("an integer", v)),
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: &Value) -> Result<Self, String> {
                let i = i64::from_value(v)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range"))
            }
        }
    )*};
}
from_int!(i32, u32, u64, usize);

impl FromValue for bool {
    fn from_value(v: &Value) -> Result<Self, String> {
        Ok(i64::from_value(v)? != 0)
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Real(r) => Ok(*r),
            Value::Int(i) => Ok(*i as f64),
            _ => Err(expected("a number", v)),
        }
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            _ => Err(expected("text", v)),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Blob(b) => Ok(b.clone()),
            _ => Err(expected("bytes", v)),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// A type whose null parameter is known: `Option<T>` binds as a null of `T`'s kind.
pub trait Typed {
    const NULL: Arg;
}

macro_rules! arg_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Arg {
            fn from(v: $t) -> Arg {
                Arg::Int(Some(v as i64))
            }
        }
        impl Typed for $t {
            const NULL: Arg = Arg::Int(None);
        }
    )*};
}
arg_int!(i64, i32, u32, u64, usize, u8);

impl From<bool> for Arg {
    fn from(v: bool) -> Arg {
        Arg::Int(Some(v as i64))
    }
}
impl Typed for bool {
    const NULL: Arg = Arg::Int(None);
}
impl From<f64> for Arg {
    fn from(v: f64) -> Arg {
        Arg::Real(Some(v))
    }
}
impl Typed for f64 {
    const NULL: Arg = Arg::Real(None);
}
impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(Some(v.to_string()))
    }
}
impl Typed for &str {
    const NULL: Arg = Arg::Text(None);
}
impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(Some(v))
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Arg {
        Arg::Text(Some(v.clone()))
    }
}
impl Typed for String {
    const NULL: Arg = Arg::Text(None);
}
impl Typed for &String {
    const NULL: Arg = Arg::Text(None);
}
impl From<&[u8]> for Arg {
    fn from(v: &[u8]) -> Arg {
        Arg::Blob(Some(v.to_vec()))
    }
}
impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Arg {
        Arg::Blob(Some(v))
    }
}
impl Typed for Vec<u8> {
    const NULL: Arg = Arg::Blob(None);
}
impl Typed for &[u8] {
    const NULL: Arg = Arg::Blob(None);
}
impl<T: Into<Arg> + Typed> From<Option<T>> for Arg {
    fn from(v: Option<T>) -> Arg {
        match v {
            Some(v) => v.into(),
            None => T::NULL,
        }
    }
}
impl<T: Into<Arg> + Typed + Clone> From<&Option<T>> for Arg {
    fn from(v: &Option<T>) -> Arg {
        v.clone().into()
    }
}

/// The parameters of a statement: `args![a, b]`.
#[macro_export]
macro_rules! args {
    ($($v:expr),* $(,)?) => {
        &[$($crate::catalog::db::Arg::from($v)),*]
    };
}

/// A statement's SQL for PostgreSQL: `?1` becomes `$1`. (No statement of the catalog has a
/// question mark in a literal.)
pub(crate) fn numbered_for_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            numbered_for_postgres("SELECT a FROM t WHERE b = ?1 AND (?2 IS NULL OR c = ?12)"),
            "SELECT a FROM t WHERE b = $1 AND ($2 IS NULL OR c = $12)"
        );
    }

    #[test]
    fn a_null_keeps_its_type() {
        assert_eq!(Arg::from(None::<i64>), Arg::Int(None));
        assert_eq!(Arg::from(None::<&str>), Arg::Text(None));
        assert_eq!(Arg::from(Some("a")), Arg::Text(Some("a".into())));
    }

    #[test]
    fn values_are_read_as_their_types_or_refused() {
        let row = Row(vec![Value::Int(3), Value::Null, Value::Text("x".into())]);
        assert_eq!(row.get::<u32>(0).unwrap(), 3);
        assert_eq!(row.get::<Option<String>>(1).unwrap(), None);
        assert!(row.get::<i64>(2).is_err());
        assert!(row.get::<i64>(3).is_err());
        let negative = Row(vec![Value::Int(-1)]);
        assert!(negative.get::<u64>(0).is_err());
    }
}
