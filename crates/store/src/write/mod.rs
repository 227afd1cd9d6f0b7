//! The write path: one transaction, the ledger head held from the first statement,
//! state changes and their events committed together or not at all.
//!
//! Writes are buffered and sent together — before the next read in the transaction,
//! and at commit. On PostgreSQL that is one round trip, one statement of data-modifying
//! CTEs. On SQLite the writer drives its own connection in place (`sqlite_writer`), so
//! buffered statements cost no round trip at all.

mod batch;
mod combine;
mod statements;

use std::sync::atomic::Ordering;

use sqlx::Row;
use tokio::sync::{OwnedMutexGuard, watch};
use writ_domain::Timestamp;
use writ_domain::ledger::{self, Actor, EventKind, StoredEvent};

use crate::sqlite_writer::TextRow;
use crate::{Backend, Store, StoreError, decode_doc_text};

pub(crate) use batch::Batch;
pub use batch::GROUP_COMMIT_MEMBERS_MAX;
use batch::{OpenBatch, Session, abandon_batch, bind_all, commit_batch, text_column};
pub(crate) use combine::Arg;
use combine::{Pending, combine, runs};

pub struct WriteTx<'s> {
    store: &'s Store,
    /// `None` once committed or handed on.
    guard: Option<OwnedMutexGuard<Batch>>,
    backend: Backend,
    seq: i64,
    hash: String,
    appended: bool,
    pending: Vec<Pending>,
    /// Whether this writer sent statements to the shared transaction (so abandoning it
    /// must abandon the whole batch).
    pub(crate) sent: bool,
}

pub(crate) fn doc(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        what: "record",
        id: String::new(),
        problem: e.to_string(),
    })
}

impl<'s> WriteTx<'s> {
    pub(crate) async fn begin(store: &'s Store) -> Result<Self, StoreError> {
        store.waiting.fetch_add(1, Ordering::SeqCst);
        let mut guard = store.writer.clone().lock_owned().await;
        store.waiting.fetch_sub(1, Ordering::SeqCst);
        if guard.open.is_none() {
            // Take the write lock first (row lock on PostgreSQL, RESERVED on SQLite), so
            // the head read cannot be overtaken by another writer or process.
            let (session, seq, hash) = match guard.sqlite.as_mut() {
                Some(writer) => {
                    let (seq, hash) = writer.begin()?;
                    (Session::Sqlite, seq, hash)
                }
                None => {
                    let mut tx = store.pool.begin().await?;
                    let head = sqlx::query(
                        "UPDATE ledger_head SET seq = seq WHERE id = 1 RETURNING seq, hash",
                    )
                    .fetch_one(&mut *tx)
                    .await?;
                    (
                        Session::Pooled(tx),
                        head.try_get("seq")?,
                        head.try_get("hash")?,
                    )
                }
            };
            guard.open = Some(OpenBatch {
                seq,
                hash,
                session,
                appended: false,
                members: 0,
                done: watch::channel(None).0,
            });
        }
        let (seq, hash) = guard
            .open
            .as_ref()
            .map(|open| (open.seq, open.hash.clone()))
            .unwrap_or_default();
        Ok(Self {
            store,
            guard: Some(guard),
            backend: store.backend,
            seq,
            hash,
            appended: false,
            pending: Vec::new(),
            sent: false,
        })
    }

    fn open(&mut self) -> Result<&mut OpenBatch, StoreError> {
        self.guard
            .as_mut()
            .and_then(|guard| guard.open.as_mut())
            .ok_or(StoreError::Closed)
    }

    fn buffer(&mut self, sql: &'static str, args: Vec<Arg>) {
        self.pending.push(Pending { sql, args });
    }

    /// Buffers a statement from another module of the store.
    pub(crate) fn buffer_statement(&mut self, sql: &'static str, args: Vec<Arg>) {
        self.buffer(sql, args);
    }

    /// Sends the buffered writes. Reads in this transaction call it first.
    pub(crate) async fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.sent = true;
        let pending = std::mem::take(&mut self.pending);
        let guard = self.guard.as_mut().ok_or(StoreError::Closed)?;
        let batch = &mut **guard;
        match (
            batch.open.as_mut().map(|open| &mut open.session),
            batch.sqlite.as_mut(),
        ) {
            (Some(Session::Sqlite), Some(writer)) => {
                for statement in &pending {
                    writer.execute(statement.sql, &statement.args)?;
                }
                Ok(())
            }
            (Some(Session::Pooled(tx)), _) => {
                for run in runs(&pending) {
                    let (sql, args) = combine(self.backend, run);
                    // The text is writ's own statements with renumbered placeholders;
                    // values are bound.
                    bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), args)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }
            _ => Err(StoreError::Closed),
        }
    }

    /// Rows of a read in this transaction (after the buffered writes), each column as
    /// text. A failed read can leave the shared transaction unusable (PostgreSQL aborts
    /// it, and would then turn a COMMIT into a silent ROLLBACK), so it abandons the batch.
    pub(crate) async fn read_texts(
        &mut self,
        sql: String,
        args: Vec<Arg>,
        columns: usize,
    ) -> Result<Vec<TextRow>, StoreError> {
        self.flush().await?;
        let sent = std::mem::replace(&mut self.sent, true);
        let guard = self.guard.as_mut().ok_or(StoreError::Closed)?;
        let batch = &mut **guard;
        let rows = match (
            batch.open.as_mut().map(|open| &mut open.session),
            batch.sqlite.as_mut(),
        ) {
            (Some(Session::Sqlite), Some(writer)) => writer.query(&sql, &args, columns)?,
            (Some(Session::Pooled(tx)), _) => {
                // writ's own statement text; values are bound.
                let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), args)
                    .fetch_all(&mut **tx)
                    .await?;
                rows.iter()
                    .map(|row| {
                        (0..columns)
                            .map(|column| text_column(row, column))
                            .collect::<Result<TextRow, StoreError>>()
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
            _ => return Err(StoreError::Closed),
        };
        self.sent = sent;
        Ok(rows)
    }

    /// The `(id, doc)` rows of a read, decoded as `what` records.
    pub(crate) async fn read_docs<T: serde::de::DeserializeOwned>(
        &mut self,
        what: &'static str,
        sql: String,
        args: Vec<Arg>,
    ) -> Result<Vec<T>, StoreError> {
        self.read_texts(sql, args, 2)
            .await?
            .into_iter()
            .map(|row| match row.as_slice() {
                [Some(id), Some(doc)] => decode_doc_text(what, id, doc),
                _ => Err(StoreError::Corrupt {
                    what,
                    id: String::new(),
                    problem: "a row without id or doc".into(),
                }),
            })
            .collect()
    }

    /// Appends an event to the chain, in this transaction.
    pub async fn append(
        &mut self,
        at: Timestamp,
        actor: &Actor,
        kind: EventKind,
        data: &serde_json::Value,
    ) -> Result<StoredEvent, StoreError> {
        let event = ledger::seal(self.seq, &self.hash, at, actor, kind, data);
        // The chain's one rule, which the ledger head row makes hold across processes.
        debug_assert_eq!(event.seq, self.seq + 1, "an event follows the head");
        debug_assert_eq!(event.prev_hash, self.hash, "an event links to the head");
        self.buffer(
            "INSERT INTO events (seq, at_us, actor, kind, data, prev_hash, hash, record) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            vec![
                Arg::Int(event.seq),
                Arg::Int(event.at.unix_micros()),
                Arg::Text(event.actor.to_string()),
                Arg::Text(event.kind.to_string()),
                Arg::Text(event.data.clone()),
                Arg::Text(event.prev_hash.clone()),
                Arg::Text(event.hash.clone()),
                Arg::OptionalText(ledger::record_of(kind, data)),
            ],
        );
        self.seq = event.seq;
        self.hash.clone_from(&event.hash);
        self.appended = true;
        Ok(event)
    }

    /// The ledger head as this transaction sees it: the last event's number and hash
    /// (0 and the genesis hash before the first).
    pub fn head(&self) -> (i64, &str) {
        (self.seq, &self.hash)
    }

    /// The kind of event `seq`, as of this transaction.
    pub async fn event_kind(&mut self, seq: i64) -> Result<Option<String>, StoreError> {
        let rows = self
            .read_texts(
                "SELECT kind FROM events WHERE seq = $1".into(),
                vec![Arg::Int(seq)],
                1,
            )
            .await?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next().flatten()))
    }

    /// Returns once the change is durably committed, alone or with its group.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        self.flush().await?;
        let (seq, hash, appended) = (self.seq, self.hash.clone(), self.appended);
        let open = self.open()?;
        open.seq = seq;
        open.hash = hash;
        open.appended |= appended;
        open.members += 1;
        let mut done = open.done.subscribe();
        let members = open.members;
        let mut guard = self.guard.take().ok_or(StoreError::Closed)?;
        self.store.commits[0].fetch_add(1, Ordering::Relaxed);
        if self.store.waiting.load(Ordering::SeqCst) == 0 || members >= GROUP_COMMIT_MEMBERS_MAX {
            let open = guard.open.take().ok_or(StoreError::Closed)?;
            self.store.commits[1].fetch_add(1, Ordering::Relaxed);
            // Commit while still holding the writer lock: the next writer would
            // otherwise meet SQLite's busy lock, whose retry sleeps (1 ms and up) are far
            // longer than a commit. Writers arriving meanwhile queue and form the next group.
            let result = commit_batch(open, guard.sqlite.as_mut()).await;
            drop(guard);
            return result;
        }
        // Others are queued: the last of them commits for all of us.
        drop(guard);
        let outcome = done
            .wait_for(Option::is_some)
            .await
            .map(|outcome| outcome.clone());
        match outcome {
            Ok(Some(Ok(()))) => Ok(()),
            Ok(Some(Err(problem))) => Err(StoreError::GroupCommit(problem)),
            _ => Err(StoreError::GroupCommit(
                "the shared transaction ended without an outcome".into(),
            )),
        }
    }
}

impl Drop for WriteTx<'_> {
    /// A writer that ends without committing: if it sent nothing, the batch goes on
    /// without it; if it did, the whole batch is abandoned (rolled back, members told).
    /// Either way a batch nobody is queued for is finished, so no member waits forever.
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        if self.sent {
            if let Some(open) = guard.open.take() {
                abandon_batch(open, guard.sqlite.as_mut(), "a writer stopped half-way");
            }
            return;
        }
        let unfinished = guard.open.as_ref().is_some_and(|open| open.members > 0);
        if unfinished && self.store.waiting.load(Ordering::SeqCst) == 0 {
            if let Some(open) = guard.open.take() {
                self.store.commits[1].fetch_add(1, Ordering::Relaxed);
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => {
                        runtime.spawn(async move {
                            if let Err(error) = commit_batch(open, guard.sqlite.as_mut()).await {
                                tracing::error!(%error, "group commit failed");
                            }
                            drop(guard);
                        });
                    }
                    Err(_) => abandon_batch(open, guard.sqlite.as_mut(), "no runtime to commit it"),
                }
            }
        } else if !unfinished {
            // Nothing of anyone's is in it: roll it back now rather than hold the lock.
            if let Some(open) = guard.open.take() {
                abandon_batch(open, guard.sqlite.as_mut(), "nothing was written");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite_store(dir: &tempfile::TempDir) -> Store {
        Store::open(&format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("w.db").display()
        ))
        .await
        .expect("store")
    }

    fn at() -> Timestamp {
        Timestamp::from_unix_micros(1_800_000_000_000_000)
    }

    /// Waits until `n` writers are queued behind the current one.
    async fn queued(store: &Store, n: usize) {
        while store.waiting.load(Ordering::SeqCst) < n {
            tokio::task::yield_now().await;
        }
    }

    /// Buffers a token and an event in `tx`.
    async fn write_token(tx: &mut WriteTx<'_>, hash: &str, n: i64) {
        tx.insert_token(hash, "alice", at(), at())
            .await
            .expect("buffer");
        tx.append(
            at(),
            &"t".parse().expect("an actor"),
            EventKind::TokenIssued,
            &serde_json::json!({ "n": n }),
        )
        .await
        .expect("append");
    }

    /// A first writer holding the writer lock with `first_hash` written, and a second
    /// one, writing `second_hash`, queued behind it: returns the first's commit result
    /// and the second's.
    async fn two_queued_writers(
        store: &Store,
        first_hash: &str,
        second_hash: &'static str,
    ) -> (Result<(), StoreError>, Result<(), StoreError>) {
        let mut first = store.begin().await.expect("begin");
        write_token(&mut first, first_hash, 1).await;
        let second = {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin().await.expect("begin");
                write_token(&mut tx, second_hash, 2).await;
                tx.commit().await
            })
        };
        queued(store, 1).await;
        let first_result = first.commit().await;
        (first_result, second.await.expect("task"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_writers_share_one_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite_store(&dir).await;
        let (first, second) = two_queued_writers(&store, "h1", "h2").await;
        first.expect("committed together with the second writer");
        second.expect("second commit");
        assert_eq!(
            store.commit_counts(),
            (2, 1),
            "two writes, one database commit"
        );
        assert!(
            store.token("h1").await.expect("read").is_some()
                && store.token("h2").await.expect("read").is_some()
        );
        assert_eq!(store.verify_chain().await.expect("chain").events, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_failing_writer_fails_its_whole_group_and_records_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite_store(&dir).await;
        // The same primary key twice: the second writer's statements fail in the shared transaction.
        let (first, second) = two_queued_writers(&store, "same", "same").await;
        assert!(second.is_err(), "the failing writer fails");
        assert!(
            matches!(first, Err(StoreError::GroupCommit(_))),
            "and so does its group: {first:?}"
        );
        assert!(
            store.token("same").await.expect("read").is_none(),
            "nothing of the group was recorded"
        );
        assert_eq!(store.verify_chain().await.expect("chain").events, 0);

        let mut after = store.begin().await.expect("begin");
        write_token(&mut after, "later", 3).await;
        after.commit().await.expect("the store works on");
    }
}
