//! SQLite writes, driven in place.
//!
//! sqlx runs every SQLite connection on a worker thread of its own, so each statement
//! is a round trip between threads; in the writer — the one serialised section of
//! writ — those round trips cost tens of microseconds each wherever waking an idle core
//! is slow, which is most of a write transaction's time. So on SQLite the writer has a plain `rusqlite` connection of its
//! own, used by whichever task holds the writer lock, on that task's thread: every
//! statement is prepared once and then only bound and stepped. Readers keep using the
//! sqlx pool.
//!
//! Two calls can wait. `BEGIN IMMEDIATE` waits only while another process (a `writ`
//! CLI command) holds SQLite's write lock: it is tried at once, and only if the lock is
//! taken does the wait leave the async worker (`block_in_place`). `COMMIT` waits for
//! fsync, on the worker: every writer queued behind it waits for that commit anyway,
//! the runtime's other workers take over the rest of its tasks meanwhile, and handing
//! the commit off (`block_in_place`) measured slower in the throughput benchmark.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Statement};

use crate::write::Arg;
use crate::{SQLITE_BUSY_TIMEOUT, StoreError};

/// Prepared statements kept: the writer's fixed statements, plus some batch-sized reads.
const STATEMENT_CACHE: usize = 256;

pub(crate) struct SqliteWriter {
    connection: Connection,
}

impl std::fmt::Debug for SqliteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteWriter").finish_non_exhaustive()
    }
}

/// Runs `work`, which may block, without stalling the other tasks of a multi-threaded
/// runtime (a current-thread runtime, as in unit tests, just runs it).
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// A row of a read: each column as text (integers written out), or `None` for NULL.
pub(crate) type TextRow = Vec<Option<String>>;

impl SqliteWriter {
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path)?;
        // FULL: a commit is durable when it returns. The rest as the sqlx pool has it.
        connection.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
        connection.busy_timeout(SQLITE_BUSY_TIMEOUT)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self { connection })
    }

    /// Opens a write transaction holding SQLite's write lock, and reads the ledger head.
    pub(crate) fn begin(&mut self) -> Result<(i64, String), StoreError> {
        self.connection.busy_timeout(Duration::ZERO)?;
        let at_once = self.connection.execute_batch("BEGIN IMMEDIATE");
        self.connection.busy_timeout(SQLITE_BUSY_TIMEOUT)?;
        match at_once {
            Ok(()) => {}
            Err(error) if error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                blocking(|| self.connection.execute_batch("BEGIN IMMEDIATE"))?;
            }
            Err(error) => return Err(error.into()),
        }
        let head = self
            .connection
            .prepare_cached("SELECT seq, hash FROM ledger_head WHERE id = 1")?
            .query_row([], |row| Ok((row.get(0)?, row.get(1)?)));
        if head.is_err() {
            self.rollback();
        }
        Ok(head?)
    }

    pub(crate) fn execute(&mut self, sql: &str, args: &[Arg]) -> Result<(), StoreError> {
        let mut statement = self.connection.prepare_cached(sql)?;
        bind(&mut statement, args)?;
        statement.raw_execute()?;
        Ok(())
    }

    /// The rows of a read inside the transaction, `columns` columns each.
    pub(crate) fn query(
        &mut self,
        sql: &str,
        args: &[Arg],
        columns: usize,
    ) -> Result<Vec<TextRow>, StoreError> {
        let mut statement = self.connection.prepare_cached(sql)?;
        bind(&mut statement, args)?;
        let mut rows = statement.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut texts = Vec::with_capacity(columns);
            for column in 0..columns {
                texts.push(match row.get_ref(column)? {
                    ValueRef::Null => None,
                    ValueRef::Integer(value) => Some(value.to_string()),
                    ValueRef::Real(value) => Some(value.to_string()),
                    ValueRef::Text(text) | ValueRef::Blob(text) => Some(
                        std::str::from_utf8(text)
                            .map_err(|e| StoreError::Corrupt {
                                what: "row",
                                id: String::new(),
                                problem: format!("column {column} is not UTF-8: {e}"),
                            })?
                            .to_string(),
                    ),
                });
            }
            out.push(texts);
        }
        Ok(out)
    }

    /// Writes the ledger head (when events were appended) and commits durably.
    pub(crate) fn commit(&mut self, head: Option<(i64, &str)>) -> Result<(), StoreError> {
        let result = (|| {
            if let Some((seq, hash)) = head {
                self.execute(
                    "UPDATE ledger_head SET seq = $1, hash = $2 WHERE id = 1",
                    &[Arg::Int(seq), Arg::Text(hash.to_string())],
                )?;
            }
            self.connection.execute_batch("COMMIT")?;
            Ok(())
        })();
        if result.is_err() {
            self.rollback();
        }
        result
    }

    /// Ends an open transaction without keeping anything; nothing to do if none is open.
    pub(crate) fn rollback(&mut self) {
        if !self.connection.is_autocommit()
            && let Err(error) = self.connection.execute_batch("ROLLBACK")
        {
            tracing::error!(%error, "rolling back the SQLite write transaction failed");
        }
    }
}

/// Binds writ's `$1..$n` placeholders. SQLite numbers named parameters by first
/// appearance, not by name, so each is looked up; every parameter must get a value
/// (a cached statement would otherwise keep the previous one).
fn bind(statement: &mut Statement<'_>, args: &[Arg]) -> Result<(), StoreError> {
    let mut bound = 0;
    for (n, arg) in args.iter().enumerate() {
        let name = format!("${}", n + 1);
        let Some(index) = statement.parameter_index(&name)? else {
            continue;
        };
        bound += 1;
        match arg {
            Arg::Int(value) => statement.raw_bind_parameter(index, value)?,
            Arg::Text(value) => statement.raw_bind_parameter(index, value.as_str())?,
            Arg::OptionalText(value) => statement.raw_bind_parameter(index, value.as_deref())?,
            Arg::OptionalInt(value) => statement.raw_bind_parameter(index, value)?,
        }
    }
    if bound != statement.parameter_count() {
        return Err(
            rusqlite::Error::InvalidParameterCount(bound, statement.parameter_count()).into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use writ_domain::Timestamp;
    use writ_domain::ledger::EventKind;

    use crate::Store;

    use super::{SqliteWriter, bind};
    use crate::write::Arg;

    #[test]
    fn the_writer_commits_durably_to_a_wal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let writer = SqliteWriter::open(&dir.path().join("d.db")).expect("open");
        let pragma = |name: &str| -> String {
            writer
                .connection
                .query_row(&format!("PRAGMA {name}"), [], |row| {
                    row.get_ref(0).map(|value| match value {
                        rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                        other => String::from_utf8_lossy(other.as_bytes().unwrap_or_default())
                            .into_owned(),
                    })
                })
                .expect("pragma")
        };
        assert_eq!(pragma("journal_mode"), "wal");
        assert_eq!(pragma("synchronous"), "2", "FULL: fsync at every commit");
    }

    #[test]
    fn placeholders_bind_by_number_whatever_their_order_or_repetition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut writer = SqliteWriter::open(&dir.path().join("b.db")).expect("open");
        writer
            .connection
            .execute_batch("CREATE TABLE t (a TEXT, b INTEGER, c TEXT)")
            .expect("table");
        writer
            .execute(
                "INSERT INTO t (c, a, b) VALUES ($3, $1, $2 + $2)",
                &[
                    Arg::Text("one".into()),
                    Arg::Int(2),
                    Arg::OptionalText(None),
                ],
            )
            .expect("insert");
        let rows = writer
            .query(
                "SELECT a, b, c FROM t WHERE a = $1",
                &[Arg::Text("one".into())],
                3,
            )
            .expect("read");
        assert_eq!(rows, vec![vec![Some("one".into()), Some("4".into()), None]]);
        let mut statement = writer.connection.prepare("SELECT $1, $2").expect("prepare");
        assert!(
            bind(&mut statement, &[Arg::Int(1)]).is_err(),
            "a placeholder left without a value is refused"
        );
    }

    /// Another process holding SQLite's write lock: a writer waits for it (off the async
    /// worker) instead of failing, and writes once it is free.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_waits_for_another_process_holding_the_write_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("w.db");
        let store = Store::open(&format!("sqlite://{}?mode=rwc", file.display()))
            .await
            .expect("store");
        let other = rusqlite::Connection::open(&file).expect("other connection");
        other.execute_batch("BEGIN IMMEDIATE").expect("lock");
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            other.execute_batch("COMMIT").expect("release");
        });
        let started = Instant::now();
        let mut tx = store.begin().await.expect("begins once the lock is free");
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(250),
            "it waited for the other holder"
        );
        tx.append(
            Timestamp::from_unix_micros(1),
            &"a".parse().expect("an actor"),
            EventKind::TokenIssued,
            &serde_json::json!({}),
        )
        .await
        .expect("append");
        tx.commit().await.expect("commit");
        release.join().expect("thread");
        assert_eq!(store.verify_chain().await.expect("chain").events, 1);
    }
}
