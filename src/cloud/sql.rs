//! The one SQL interface the local cloud's operations are written against,
//! with two engines behind it: SQLite (one machine) and PostgreSQL (many
//! nodes sharing one database). Every operation (accounts, containers,
//! versions, listings, sharing, public links, users, servers, images) is
//! written once, in the SQL both engines speak, and runs inside one
//! transaction handed to it as a [`Tx`]; what differs (placeholders, typing,
//! a few functions) is bridged here, not in the operations.
//!
//! The shapes mirror rusqlite's (`prepare_cached`, `query_map`,
//! `optional`), so the operations read as plain SQL code.

use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use std::cell::RefCell;
use std::collections::HashMap;

/// What a statement failed with.
#[derive(Debug)]
pub enum Error {
    /// `query_row` found no row (see [`OptionalExt`]).
    NoRows,
    Sqlite(rusqlite::Error),
    Postgres(postgres::Error),
    /// A column's value is not of the type asked for.
    Type(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NoRows => write!(f, "no row"),
            Error::Sqlite(e) => write!(f, "{e}"),
            Error::Postgres(e) => match e.as_db_error() {
                Some(d) => write!(
                    f,
                    "{} ({}){}",
                    d.message(),
                    d.code().code(),
                    match d.detail() {
                        Some(detail) => format!(": {detail}"),
                        None => String::new(),
                    }
                ),
                None => match std::error::Error::source(e) {
                    Some(cause) => write!(f, "{e}: {cause}"),
                    None => write!(f, "{e}"),
                },
            },
            Error::Type(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        match e {
            rusqlite::Error::QueryReturnedNoRows => Error::NoRows,
            e => Error::Sqlite(e),
        }
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Error {
        Error::Postgres(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// `query_row(...).optional()`: no row is `None`, not an error.
pub trait OptionalExt<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExt<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A value bound to a statement.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// Anything that can be bound to a statement.
pub trait ToArg {
    fn arg(&self) -> Arg<'_>;
}

/// SQL NULL, as an argument.
pub struct Null;

impl ToArg for Null {
    fn arg(&self) -> Arg<'_> {
        Arg::Null
    }
}

macro_rules! int_args {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn arg(&self) -> Arg<'_> {
                // Counts and sizes past i64 do not occur; saturate rather than wrap.
                Arg::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_args!(i64, i32, u32, u64, usize, u8, u16, i16);

impl ToArg for bool {
    fn arg(&self) -> Arg<'_> {
        Arg::Int(*self as i64)
    }
}
impl ToArg for f64 {
    fn arg(&self) -> Arg<'_> {
        Arg::Real(*self)
    }
}
impl ToArg for str {
    fn arg(&self) -> Arg<'_> {
        Arg::Text(self)
    }
}
impl ToArg for String {
    fn arg(&self) -> Arg<'_> {
        Arg::Text(self)
    }
}
impl ToArg for [u8] {
    fn arg(&self) -> Arg<'_> {
        Arg::Blob(self)
    }
}
impl ToArg for Vec<u8> {
    fn arg(&self) -> Arg<'_> {
        Arg::Blob(self)
    }
}
impl<const N: usize> ToArg for [u8; N] {
    fn arg(&self) -> Arg<'_> {
        Arg::Blob(self)
    }
}
impl<T: ToArg + ?Sized> ToArg for &T {
    fn arg(&self) -> Arg<'_> {
        (**self).arg()
    }
}
impl<T: ToArg> ToArg for Option<T> {
    fn arg(&self) -> Arg<'_> {
        match self {
            Some(v) => v.arg(),
            None => Arg::Null,
        }
    }
}

/// The arguments of one statement.
pub type Args<'a> = &'a [&'a dyn ToArg];

/// `params![a, b]`: the arguments of a statement, by position (`?1`, `?2`).
#[macro_export]
macro_rules! sql_params {
    ($($x:expr),* $(,)?) => {
        &[$(&$x as &dyn $crate::cloud::sql::ToArg),*][..]
    };
}
pub use crate::sql_params as params;

/// A value read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// One row of a result, of either engine.
pub trait Row {
    fn value(&self, i: usize) -> Result<Value>;
}

impl dyn Row + '_ {
    /// Column `i` (from 0) as a `T`.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T> {
        T::from_value(self.value(i)?)
    }
}

impl Row for rusqlite::Row<'_> {
    fn value(&self, i: usize) -> Result<Value> {
        use rusqlite::types::ValueRef;
        Ok(match self.get_ref(i)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(n) => Value::Int(n),
            ValueRef::Real(x) => Value::Real(x),
            ValueRef::Text(t) => {
                Value::Text(String::from_utf8(t.to_vec()).map_err(|_| Error::Type(format!("column {i} is not UTF-8")))?)
            }
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        })
    }
}

impl Row for postgres::Row {
    fn value(&self, i: usize) -> Result<Value> {
        let Some(column) = self.columns().get(i) else {
            return Err(Error::Type(format!("no column {i}")));
        };
        let ty = column.type_().clone();
        let v = if ty == Type::INT8 {
            self.try_get::<_, Option<i64>>(i)?.map(Value::Int)
        } else if ty == Type::INT4 {
            self.try_get::<_, Option<i32>>(i)?.map(|n| Value::Int(n.into()))
        } else if ty == Type::INT2 {
            self.try_get::<_, Option<i16>>(i)?.map(|n| Value::Int(n.into()))
        } else if ty == Type::BOOL {
            self.try_get::<_, Option<bool>>(i)?.map(|b| Value::Int(b.into()))
        } else if ty == Type::FLOAT8 {
            self.try_get::<_, Option<f64>>(i)?.map(Value::Real)
        } else if ty == Type::FLOAT4 {
            self.try_get::<_, Option<f32>>(i)?.map(|x| Value::Real(x.into()))
        } else if ty == Type::BYTEA {
            self.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob)
        } else if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME, Type::UNKNOWN].contains(&ty) {
            self.try_get::<_, Option<String>>(i)?.map(Value::Text)
        } else {
            return Err(Error::Type(format!("column {i} has the unexpected type {ty}")));
        };
        Ok(v.unwrap_or(Value::Null))
    }
}

/// A Rust value read from a column, as SQLite's loose typing allows.
pub trait FromValue: Sized {
    fn from_value(v: Value) -> Result<Self>;
}

fn mismatch<T>(v: &Value, want: &str) -> Result<T> {
    Err(Error::Type(format!("expected {want}, found {v:?}")))
}

impl FromValue for Value {
    fn from_value(v: Value) -> Result<Self> {
        Ok(v)
    }
}
impl FromValue for i64 {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Int(n) => Ok(n),
            v => mismatch(&v, "an integer"),
        }
    }
}
macro_rules! int_values {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: Value) -> Result<Self> {
                let n = i64::from_value(v)?;
                <$t>::try_from(n).map_err(|_| Error::Type(format!("{n} is out of range")))
            }
        }
    )*};
}
int_values!(i32, u32, u64, usize, u8, u16);

impl FromValue for bool {
    fn from_value(v: Value) -> Result<Self> {
        Ok(i64::from_value(v)? != 0)
    }
}
impl FromValue for f64 {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Real(x) => Ok(x),
            Value::Int(n) => Ok(n as f64),
            v => mismatch(&v, "a number"),
        }
    }
}
impl FromValue for String {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Text(s) => Ok(s),
            v => mismatch(&v, "text"),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Blob(b) => Ok(b),
            Value::Text(s) => Ok(s.into_bytes()),
            v => mismatch(&v, "a blob"),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// The engine of a [`Tx`], for the few statements that must differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One PostgreSQL connection with its prepared statements.
pub struct PgSession {
    pub(crate) client: RefCell<postgres::Client>,
    statements: RefCell<HashMap<String, postgres::Statement>>,
}

impl PgSession {
    pub fn new(client: postgres::Client) -> PgSession {
        PgSession { client: RefCell::new(client), statements: RefCell::new(HashMap::new()) }
    }

    fn statement(&self, sql: &str) -> Result<postgres::Statement> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let translated = to_postgres(sql);
        let s = self.client.borrow_mut().prepare(&translated)?;
        let mut cache = self.statements.borrow_mut();
        // A bounded cache: statements built with format! vary little, but never without limit.
        if cache.len() > 512 {
            cache.clear();
        }
        cache.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    pub fn batch(&self, sql: &str) -> Result<()> {
        Ok(self.client.borrow_mut().batch_execute(sql)?)
    }

    pub fn is_closed(&self) -> bool {
        self.client.borrow().is_closed()
    }
}

/// SQLite's `?N` placeholders as PostgreSQL's `$N` (outside quoted text).
fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    let mut next_bare = 1;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                out.push(c);
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' => {
                out.push('$');
                if chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        out.push(d);
                        chars.next();
                    }
                } else {
                    out.push_str(&next_bare.to_string());
                    next_bare += 1;
                }
            }
            None => out.push(c),
        }
    }
    out
}

/// An argument as PostgreSQL wants it: the statement says each
/// parameter's type, and the value is converted to it.
#[derive(Debug)]
struct PgArg<'a>(Arg<'a>);

impl ToSql for PgArg<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let is_text = |t: &Type| [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME, Type::UNKNOWN].contains(t);
        match self.0 {
            Arg::Null => Ok(IsNull::Yes),
            Arg::Int(n) if *ty == Type::INT8 => n.to_sql(ty, out),
            Arg::Int(n) if *ty == Type::INT4 => i32::try_from(n)?.to_sql(ty, out),
            Arg::Int(n) if *ty == Type::INT2 => i16::try_from(n)?.to_sql(ty, out),
            Arg::Int(n) if *ty == Type::FLOAT8 => (n as f64).to_sql(ty, out),
            Arg::Int(n) if *ty == Type::BOOL => (n != 0).to_sql(ty, out),
            Arg::Int(n) if is_text(ty) => n.to_string().to_sql(&Type::TEXT, out),
            Arg::Real(x) if *ty == Type::FLOAT8 => x.to_sql(ty, out),
            Arg::Real(x) if *ty == Type::FLOAT4 => (x as f32).to_sql(ty, out),
            Arg::Real(x) if *ty == Type::INT8 && x.fract() == 0.0 => (x as i64).to_sql(ty, out),
            Arg::Text(s) if is_text(ty) => s.to_sql(&Type::TEXT, out),
            Arg::Text(s) if *ty == Type::BYTEA => s.as_bytes().to_sql(ty, out),
            Arg::Blob(b) if *ty == Type::BYTEA => b.to_sql(ty, out),
            a => Err(format!("cannot bind {a:?} to a parameter of type {ty}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn pg_args<'a>(args: Args<'a>) -> Vec<PgArg<'a>> {
    args.iter().map(|a| PgArg(a.arg())).collect()
}

fn pg_refs<'a>(args: &'a [PgArg<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

/// An argument as SQLite wants it.
struct LiteArg<'a>(Arg<'a>);

impl rusqlite::ToSql for LiteArg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Arg::Null => ValueRef::Null,
            Arg::Int(n) => ValueRef::Integer(n),
            Arg::Real(x) => ValueRef::Real(x),
            Arg::Text(s) => ValueRef::Text(s.as_bytes()),
            Arg::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn lite_args<'a>(args: Args<'a>) -> rusqlite::ParamsFromIter<impl Iterator<Item = LiteArg<'a>>> {
    rusqlite::params_from_iter(args.iter().map(|a| LiteArg(a.arg())))
}

/// A connection inside one transaction (or, for reads, in autocommit), of
/// either engine: what every operation of the local cloud is given.
pub enum Tx<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a PgSession),
}

impl<'a> Tx<'a> {
    pub fn dialect(&self) -> Dialect {
        match self {
            Tx::Sqlite(_) => Dialect::Sqlite,
            Tx::Postgres(_) => Dialect::Postgres,
        }
    }

    /// A statement, prepared once per connection.
    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'a>> {
        Ok(match self {
            Tx::Sqlite(c) => Stmt::Sqlite(c.prepare_cached(sql)?),
            Tx::Postgres(s) => Stmt::Postgres(s, s.statement(sql)?),
        })
    }

    /// Same as [`Tx::prepare_cached`] (statements are always cached).
    pub fn prepare(&self, sql: &str) -> Result<Stmt<'a>> {
        self.prepare_cached(sql)
    }

    pub fn execute(&self, sql: &str, args: Args) -> Result<usize> {
        self.prepare_cached(sql)?.execute(args)
    }

    pub fn query_row<T>(&self, sql: &str, args: Args, f: impl FnOnce(&dyn Row) -> Result<T>) -> Result<T> {
        self.prepare_cached(sql)?.query_row(args, f)
    }

    /// Statements without arguments or results, separated by `;`.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Tx::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Tx::Postgres(s) => s.batch(sql),
        }
    }
}

/// A prepared statement.
pub enum Stmt<'a> {
    Sqlite(rusqlite::CachedStatement<'a>),
    Postgres(&'a PgSession, postgres::Statement),
}

impl<'a> Stmt<'a> {
    /// Runs it; how many rows it changed.
    pub fn execute(&mut self, args: Args) -> Result<usize> {
        match self {
            Stmt::Sqlite(s) => Ok(s.execute(lite_args(args))?),
            Stmt::Postgres(session, s) => {
                let a = pg_args(args);
                let n = session.client.borrow_mut().execute(s, &pg_refs(&a))?;
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            }
        }
    }

    /// The rows it returns, one at a time.
    pub fn query(&mut self, args: Args) -> Result<Rows<'_>> {
        match self {
            Stmt::Sqlite(s) => Ok(Rows::Sqlite(s.query(lite_args(args))?)),
            Stmt::Postgres(session, s) => {
                let a = pg_args(args);
                let rows = session.client.borrow_mut().query(&*s, &pg_refs(&a))?;
                Ok(Rows::Postgres { rows: rows.into_iter(), current: None })
            }
        }
    }

    /// Every row, each through `f`.
    pub fn query_map<T>(
        &mut self,
        args: Args,
        mut f: impl FnMut(&dyn Row) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let mut rows = self.query(args)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(f(row));
        }
        Ok(out.into_iter())
    }

    /// The first row through `f`; [`Error::NoRows`] if there is none.
    pub fn query_row<T>(&mut self, args: Args, f: impl FnOnce(&dyn Row) -> Result<T>) -> Result<T> {
        let mut rows = self.query(args)?;
        match rows.next()? {
            Some(row) => f(row),
            None => Err(Error::NoRows),
        }
    }

    /// Whether it returns any row.
    pub fn exists(&mut self, args: Args) -> Result<bool> {
        Ok(self.query(args)?.next()?.is_some())
    }
}

/// The rows of a query.
pub enum Rows<'s> {
    Sqlite(rusqlite::Rows<'s>),
    Postgres { rows: std::vec::IntoIter<postgres::Row>, current: Option<postgres::Row> },
}

impl Rows<'_> {
    #[allow(clippy::should_implement_trait)] // rows borrow from the cursor: not an Iterator
    pub fn next(&mut self) -> Result<Option<&dyn Row>> {
        match self {
            Rows::Sqlite(r) => Ok(r.next()?.map(|r| r as &dyn Row)),
            Rows::Postgres { rows, current } => {
                *current = rows.next();
                Ok(current.as_ref().map(|r| r as &dyn Row))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered_dollars_outside_quotes() {
        assert_eq!(to_postgres("SELECT a FROM t WHERE b = ?1 AND c < ?12"), "SELECT a FROM t WHERE b = $1 AND c < $12");
        assert_eq!(to_postgres("SELECT '?1', \"x?\" FROM t WHERE a = ?"), "SELECT '?1', \"x?\" FROM t WHERE a = $1");
    }

    #[test]
    fn sqlite_rows_read_loosely_typed() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let tx = Tx::Sqlite(&c);
        tx.execute_batch("CREATE TABLE t (a INTEGER, b REAL, c TEXT, d BLOB)").unwrap();
        let n = tx.execute("INSERT INTO t VALUES (?1, ?2, ?3, ?4)", params![7i64, 1.5, "x", vec![1u8, 2]]).unwrap();
        assert_eq!(n, 1);
        let (a, b, c, d): (i64, f64, String, Vec<u8>) = tx
            .query_row("SELECT a, b, c, d FROM t", params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap();
        assert_eq!((a, b, c.as_str(), d), (7, 1.5, "x", vec![1, 2]));
        let none = tx.query_row("SELECT a FROM t WHERE a = ?1", params![8], |r| r.get::<i64>(0)).optional().unwrap();
        assert_eq!(none, None);
        let as_float: f64 = tx.query_row("SELECT a FROM t", params![], |r| r.get(0)).unwrap();
        assert_eq!(as_float, 7.0);
        assert!(tx.query_row("SELECT c FROM t", params![], |r| r.get::<i64>(0)).is_err());
    }
}
