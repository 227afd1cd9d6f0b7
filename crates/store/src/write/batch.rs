//! Group commit: writers queued behind one another share a database transaction, and
//! each returns only once the shared commit is durable (or fails with it).

use sqlx::{Any, Row, Transaction};
use tokio::sync::watch;

use super::combine::Arg;
use crate::StoreError;
use crate::sqlite_writer::SqliteWriter;

/// Writes that share one database transaction: group commit. A writer that finishes
/// while others are queued leaves the transaction open for them; the last one of the
/// group commits it, and every member returns only once that commit is durable (or
/// failed, which fails them all: nobody acts on a change that is not on the record).
#[derive(Default)]
pub struct Batch {
    pub(crate) open: Option<OpenBatch>,
    /// On SQLite, the writer's own connection (its transaction is the open batch's).
    pub(crate) sqlite: Option<SqliteWriter>,
}

impl Batch {
    pub(crate) fn with_sqlite_writer(writer: SqliteWriter) -> Self {
        Self {
            open: None,
            sqlite: Some(writer),
        }
    }
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("members", &self.open.as_ref().map(|open| open.members))
            .finish()
    }
}

/// Where an open batch's database transaction lives.
pub(crate) enum Session {
    /// A transaction on a pooled sqlx connection (PostgreSQL).
    Pooled(Transaction<'static, Any>),
    /// The transaction open on the batch's SQLite writer connection.
    Sqlite,
}

pub(crate) struct OpenBatch {
    pub(crate) session: Session,
    /// The ledger head after the batch's last member.
    pub(crate) seq: i64,
    pub(crate) hash: String,
    pub(crate) appended: bool,
    pub(crate) members: usize,
    pub(crate) done: watch::Sender<Option<Result<(), String>>>,
}

/// The most writers one database transaction carries before it is committed.
pub const GROUP_COMMIT_MEMBERS_MAX: usize = 64;

/// `query` with `args` bound in order.
pub(crate) fn bind_all(
    mut query: sqlx::query::Query<'_, Any, sqlx::any::AnyArguments>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'_, Any, sqlx::any::AnyArguments> {
    for arg in args {
        query = match arg {
            Arg::Int(value) => query.bind(value),
            Arg::Text(value) => query.bind(value),
            Arg::OptionalText(value) => query.bind(value),
            Arg::OptionalInt(value) => query.bind(value),
        };
    }
    query
}

/// A column of a pooled read as text (integers written out).
pub(crate) fn text_column(
    row: &sqlx::any::AnyRow,
    column: usize,
) -> Result<Option<String>, StoreError> {
    match row.try_get::<Option<String>, _>(column) {
        Ok(text) => Ok(text),
        Err(_) => Ok(row
            .try_get::<Option<i64>, _>(column)?
            .map(|value| value.to_string())),
    }
}

/// Commits a batch: the ledger head (if events were appended), then the transaction.
/// Every member learns the outcome.
pub(crate) async fn commit_batch(
    open: OpenBatch,
    sqlite: Option<&mut SqliteWriter>,
) -> Result<(), StoreError> {
    let OpenBatch {
        session,
        seq,
        hash,
        appended,
        done,
        ..
    } = open;
    let result = match (session, sqlite) {
        (Session::Sqlite, Some(writer)) => writer.commit(appended.then_some((seq, hash.as_str()))),
        (Session::Sqlite, None) => Err(StoreError::Closed),
        (Session::Pooled(mut tx), _) => async {
            if appended {
                sqlx::query("UPDATE ledger_head SET seq = $1, hash = $2 WHERE id = 1")
                    .bind(seq)
                    .bind(&hash)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }
        .await
        .map_err(StoreError::from),
    };
    let _ = done.send(Some(
        result.as_ref().map(|_| ()).map_err(ToString::to_string),
    ));
    result
}

/// Rolls a batch back; every member learns its change is not on the record.
pub(crate) fn abandon_batch(open: OpenBatch, sqlite: Option<&mut SqliteWriter>, why: &str) {
    if let (Session::Sqlite, Some(writer)) = (&open.session, sqlite) {
        writer.rollback();
    }
    // A pooled transaction rolls back when dropped.
    let _ = open.done.send(Some(Err(format!(
        "the shared transaction was abandoned: {why}"
    ))));
}
