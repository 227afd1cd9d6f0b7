//! The write path: one transaction, the ledger head held from the first statement,
//! state changes and their events committed together or not at all.
//!
//! Writes are buffered and sent together — before the next read in the transaction,
//! and at commit. On PostgreSQL that is one round trip, one statement of data-modifying
//! CTEs. On SQLite the writer drives its own connection in place (`sqlite_writer`), so
//! buffered statements cost no round trip at all.

use std::sync::atomic::Ordering;

use sqlx::{Any, Row, Transaction};
use tokio::sync::{OwnedMutexGuard, watch};
use writ_domain::ledger::{self, Actor, EventKind, StoredEvent};
use writ_domain::{Grant, GrantId, Request, RequestId, Timestamp};

use crate::sqlite_writer::{SqliteWriter, TextRow};
use crate::{Backend, Job, JobKind, Store, StoreError, decode_doc_text};

/// A value bound to a buffered statement.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
    OptionalText(Option<String>),
    OptionalInt(Option<i64>),
}

/// A statement whose placeholders are numbered `$1..$n` for its own arguments.
#[derive(Debug)]
struct Pending {
    sql: &'static str,
    args: Vec<Arg>,
}

/// Writes that share one database transaction: group commit. A writer that finishes
/// while others are queued leaves the transaction open for them; the last one of the
/// group commits it, and every member returns only once that commit is durable (or
/// failed, which fails them all: nobody acts on a change that is not on the record).
#[derive(Default)]
pub struct Batch {
    open: Option<OpenBatch>,
    /// On SQLite, the writer's own connection (its transaction is the open batch's).
    sqlite: Option<SqliteWriter>,
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
enum Session {
    /// A transaction on a pooled sqlx connection (PostgreSQL).
    Pooled(Transaction<'static, Any>),
    /// The transaction open on the batch's SQLite writer connection.
    Sqlite,
}

struct OpenBatch {
    session: Session,
    /// The ledger head after the batch's last member.
    seq: i64,
    hash: String,
    appended: bool,
    members: usize,
    done: watch::Sender<Option<Result<(), String>>>,
}

/// The most writers one database transaction carries before it is committed.
pub const GROUP_COMMIT_MEMBERS_MAX: usize = 64;

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

/// `sql` with every `$N` placeholder shifted by `offset`.
fn renumber(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        match digits.parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&digits),
        }
    }
    out
}

/// The row a buffered statement may change, when it may change one that another
/// statement also changes: `(table, key)`, the key being its first argument (writ's
/// statements are keyed by `$1`) or `*` for one not keyed by it. A plain `INSERT`
/// makes a new row (a duplicate fails loudly), so it has none.
fn row_written(statement: &Pending) -> Option<(&'static str, String)> {
    let sql = statement.sql.trim_start();
    let table_after = |prefix: &str| -> Option<&'static str> {
        let rest = statement.sql.trim_start().strip_prefix(prefix)?;
        rest.split_whitespace().next()
    };
    let table = if sql.starts_with("INSERT INTO ") {
        if !sql.contains("ON CONFLICT") {
            return None;
        }
        table_after("INSERT INTO ")?
    } else if sql.starts_with("UPDATE ") {
        table_after("UPDATE ")?
    } else if sql.starts_with("DELETE FROM ") {
        table_after("DELETE FROM ")?
    } else {
        return Some(("*", "*".into()));
    };
    // Keyed by `$1` when the WHERE clause starts `column = $1` (an upsert's key is
    // its first value).
    let keyed = sql.starts_with("INSERT INTO ")
        || sql.split_once(" WHERE ").is_some_and(|(_, condition)| {
            let mut words = condition.split_whitespace();
            words.next().is_some()
                && words.next() == Some("=")
                && words.next().is_some_and(|value| {
                    value
                        .strip_prefix("$1")
                        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
                })
        });
    let key = match (keyed, statement.args.first()) {
        (true, Some(Arg::Text(text))) => text.clone(),
        (true, Some(Arg::Int(value))) => value.to_string(),
        _ => "*".into(),
    };
    Some((table, key))
}

/// Splits buffered statements into runs that can share one PostgreSQL statement of
/// data-modifying CTEs: those all run on one snapshot, so two that change the same row
/// would silently keep only one change. A statement that may change a row an earlier
/// one in the run changes starts a new run.
fn runs(pending: &[Pending]) -> Vec<&[Pending]> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut written: Vec<(&'static str, String)> = Vec::new();
    for (i, statement) in pending.iter().enumerate() {
        if let Some((table, key)) = row_written(statement) {
            let clashes = written.iter().any(|(t, k)| {
                (*t == table || *t == "*" || table == "*") && (k == &key || k == "*" || key == "*")
            });
            if clashes {
                runs.push(&pending[start..i]);
                start = i;
                written.clear();
            }
            written.push((table, key));
        }
    }
    runs.push(&pending[start..]);
    runs.retain(|run| !run.is_empty());
    runs
}

/// The buffered statements as one query for `backend`, and their arguments in order.
fn combine(backend: Backend, pending: &[Pending]) -> (String, Vec<Arg>) {
    let mut args = Vec::new();
    let mut parts = Vec::with_capacity(pending.len());
    for statement in pending {
        parts.push(renumber(statement.sql, args.len()));
        args.extend(statement.args.iter().cloned());
    }
    let sql = match (backend, parts.len()) {
        (_, 1) => parts.remove(0),
        (Backend::Sqlite, _) => parts.join(";\n"),
        (Backend::Postgres, _) => {
            let ctes: Vec<String> = parts
                .iter()
                .enumerate()
                .map(|(i, part)| format!("w{i} AS ({part})"))
                .collect();
            format!("WITH {} SELECT 1", ctes.join(", "))
        }
    };
    (sql, args)
}

/// `query` with `args` bound in order.
fn bind_all(
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
fn text_column(row: &sqlx::any::AnyRow, column: usize) -> Result<Option<String>, StoreError> {
    match row.try_get::<Option<String>, _>(column) {
        Ok(text) => Ok(text),
        Err(_) => Ok(row
            .try_get::<Option<i64>, _>(column)?
            .map(|value| value.to_string())),
    }
}

/// Commits a batch: the ledger head (if events were appended), then the transaction.
/// Every member learns the outcome.
async fn commit_batch(
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
fn abandon_batch(open: OpenBatch, sqlite: Option<&mut SqliteWriter>, why: &str) {
    if let (Session::Sqlite, Some(writer)) = (&open.session, sqlite) {
        writer.rollback();
    }
    // A pooled transaction rolls back when dropped.
    let _ = open.done.send(Some(Err(format!(
        "the shared transaction was abandoned: {why}"
    ))));
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
    async fn read_texts(
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
            "INSERT INTO events (seq, at_us, actor, kind, data, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                Arg::Int(event.seq),
                Arg::Int(event.at.unix_micros()),
                Arg::Text(event.actor.to_string()),
                Arg::Text(event.kind.to_string()),
                Arg::Text(event.data.clone()),
                Arg::Text(event.prev_hash.clone()),
                Arg::Text(event.hash.clone()),
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

    pub async fn insert_request(&mut self, request: &Request) -> Result<(), StoreError> {
        self.buffer(
            "INSERT INTO requests (id, state, requester, subject, entitlement, created_at_us, doc) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                Arg::Text(request.id.to_string()),
                Arg::Text(request.state.as_str().to_string()),
                Arg::Text(request.requester.to_string()),
                Arg::Text(request.subject.to_string()),
                Arg::Text(request.entitlement.to_string()),
                Arg::Int(request.created_at.unix_micros()),
                Arg::Text(doc(request)?),
            ],
        );
        Ok(())
    }

    pub async fn update_request(&mut self, request: &Request) -> Result<(), StoreError> {
        self.buffer(
            "UPDATE requests SET state = $2, doc = $3 WHERE id = $1",
            vec![
                Arg::Text(request.id.to_string()),
                Arg::Text(request.state.as_str().to_string()),
                Arg::Text(doc(request)?),
            ],
        );
        Ok(())
    }

    pub async fn insert_grant(&mut self, grant: &Grant) -> Result<(), StoreError> {
        self.buffer(
            "INSERT INTO grants (id, request_id, subject, entitlement, account, state, expires_at_us, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            vec![
                Arg::Text(grant.id.to_string()),
                Arg::Text(grant.request_id.to_string()),
                Arg::Text(grant.subject.to_string()),
                Arg::Text(grant.entitlement.to_string()),
                Arg::Text(grant.account.clone()),
                Arg::Text(grant.state.as_str().to_string()),
                Arg::Int(grant.expires_at.unix_micros()),
                Arg::Text(doc(grant)?),
            ],
        );
        Ok(())
    }

    pub async fn update_grant(&mut self, grant: &Grant) -> Result<(), StoreError> {
        self.buffer(
            "UPDATE grants SET state = $2, doc = $3 WHERE id = $1",
            vec![
                Arg::Text(grant.id.to_string()),
                Arg::Text(grant.state.as_str().to_string()),
                Arg::Text(doc(grant)?),
            ],
        );
        Ok(())
    }

    /// The request as of this transaction (writers are serialised, so this is the latest).
    pub async fn request(&mut self, id: RequestId) -> Result<Option<Request>, StoreError> {
        let sql = "SELECT id, doc FROM requests WHERE id = $1";
        let mut found = self
            .read_docs("request", sql.into(), vec![Arg::Text(id.to_string())])
            .await?;
        Ok(found.pop())
    }

    pub async fn grant(&mut self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        let sql = "SELECT id, doc FROM grants WHERE id = $1";
        let mut found = self
            .read_docs("grant", sql.into(), vec![Arg::Text(id.to_string())])
            .await?;
        Ok(found.pop())
    }

    /// These grants as of this transaction (those that exist), in no particular order.
    pub async fn grants_by_ids(&mut self, ids: &[GrantId]) -> Result<Vec<Grant>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let args = ids.iter().map(|id| Arg::Text(id.to_string())).collect();
        self.read_docs("grant", crate::read::grants_by_ids_sql(ids.len()), args)
            .await
    }

    /// Records that `ticket_key` in `system` (checked there) backs `request`; the
    /// ticket must not back another (see `ticket_request`).
    pub async fn link_ticket(
        &mut self,
        system: &str,
        ticket_key: &str,
        request: RequestId,
    ) -> Result<(), StoreError> {
        self.buffer(
            "INSERT INTO ticket_links (system, ticket_key, request_id) VALUES ($1, $2, $3)",
            vec![
                Arg::Text(system.to_string()),
                Arg::Text(ticket_key.to_string()),
                Arg::Text(request.to_string()),
            ],
        );
        Ok(())
    }

    /// The request this ticket backs, as of this transaction.
    pub async fn ticket_request(
        &mut self,
        system: &str,
        ticket_key: &str,
    ) -> Result<Option<RequestId>, StoreError> {
        let rows = self
            .read_texts(
                "SELECT request_id FROM ticket_links WHERE system = $1 AND ticket_key = $2".into(),
                vec![
                    Arg::Text(system.to_string()),
                    Arg::Text(ticket_key.to_string()),
                ],
                1,
            )
            .await?;
        rows.into_iter()
            .next()
            .map(|row| {
                let id = row.into_iter().next().flatten().unwrap_or_default();
                id.parse()
                    .map_err(|e: writ_domain::InvalidId| StoreError::Corrupt {
                        what: "ticket link",
                        id,
                        problem: e.to_string(),
                    })
            })
            .transpose()
    }

    /// Records a webhook delivery as acted on. Returns false if it already was (then
    /// nothing is written).
    pub async fn record_delivery(
        &mut self,
        system: &str,
        delivery_id: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let seen = self
            .read_texts(
                "SELECT 1 AS seen FROM itsm_deliveries WHERE system = $1 AND delivery_id = $2"
                    .into(),
                vec![
                    Arg::Text(system.to_string()),
                    Arg::Text(delivery_id.to_string()),
                ],
                1,
            )
            .await?
            .pop();
        if seen.is_some() {
            return Ok(false);
        }
        self.buffer(
            "INSERT INTO itsm_deliveries (system, delivery_id, received_at_us) VALUES ($1, $2, $3)",
            vec![
                Arg::Text(system.to_string()),
                Arg::Text(delivery_id.to_string()),
                Arg::Int(at.unix_micros()),
            ],
        );
        Ok(true)
    }

    /// Schedules (or reschedules) the one job an object has.
    pub async fn set_job(
        &mut self,
        object_id: &str,
        kind: JobKind,
        due_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.buffer(
            "INSERT INTO jobs (object_id, kind, due_at_us, attempts, last_error) VALUES ($1, $2, $3, 0, NULL) \
             ON CONFLICT (object_id) DO UPDATE SET kind = excluded.kind, due_at_us = excluded.due_at_us, attempts = 0, last_error = NULL, escalated_at_us = NULL",
            vec![Arg::Text(object_id.to_string()), Arg::Text(kind.as_str().to_string()), Arg::Int(due_at.unix_micros())],
        );
        Ok(())
    }

    /// Records a failed attempt and when to try again; `escalated_at` marks the job as
    /// escalated (kept once set). One statement: PostgreSQL's data-modifying CTEs must
    /// not update the same row twice.
    pub async fn retry_job(
        &mut self,
        job: &Job,
        due_at: Timestamp,
        error: &str,
        escalated_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.buffer(
            "UPDATE jobs SET due_at_us = $2, attempts = attempts + 1, last_error = $3, escalated_at_us = COALESCE(escalated_at_us, $4) WHERE object_id = $1",
            vec![Arg::Text(job.object_id.clone()), Arg::Int(due_at.unix_micros()), Arg::OptionalText(Some(error.to_string())),
                Arg::OptionalInt(escalated_at.map(Timestamp::unix_micros))],
        );
        Ok(())
    }

    pub async fn delete_job(&mut self, object_id: &str) -> Result<(), StoreError> {
        self.buffer(
            "DELETE FROM jobs WHERE object_id = $1",
            vec![Arg::Text(object_id.to_string())],
        );
        Ok(())
    }

    pub async fn insert_token(
        &mut self,
        hash: &str,
        identity: &str,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.buffer(
            "INSERT INTO tokens (hash, identity, created_at_us, expires_at_us, keyed) VALUES ($1, $2, $3, $4, 1)",
            vec![Arg::Text(hash.to_string()), Arg::Text(identity.to_string()), Arg::Int(created_at.unix_micros()), Arg::Int(expires_at.unix_micros())],
        );
        Ok(())
    }
}

impl WriteTx<'_> {
    /// The hashes and identities of the tokens whose id (hash prefix) is `id`, not yet
    /// revoked, as of this transaction.
    pub async fn live_tokens_by_id(
        &mut self,
        id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self
            .read_texts(
                "SELECT hash, identity FROM tokens WHERE substr(hash, 1, 16) = $1 AND revoked_at_us IS NULL".into(),
                vec![Arg::Text(id.to_string())],
                2,
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let mut columns = row.into_iter().map(Option::unwrap_or_default);
                (
                    columns.next().unwrap_or_default(),
                    columns.next().unwrap_or_default(),
                )
            })
            .collect())
    }

    pub async fn revoke_token(&mut self, hash: &str, at: Timestamp) -> Result<(), StoreError> {
        self.buffer(
            "UPDATE tokens SET revoked_at_us = $2 WHERE hash = $1",
            vec![Arg::Text(hash.to_string()), Arg::Int(at.unix_micros())],
        );
        Ok(())
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

    #[test]
    fn placeholders_are_shifted_past_earlier_statements() {
        assert_eq!(
            renumber("UPDATE t SET a = $2 WHERE id = $1 AND b = $10", 7),
            "UPDATE t SET a = $9 WHERE id = $8 AND b = $17"
        );
        assert_eq!(renumber("SELECT 1", 3), "SELECT 1");
    }

    fn statement(sql: &'static str, key: &str) -> Pending {
        Pending {
            sql,
            args: vec![Arg::Text(key.into()), Arg::Int(1)],
        }
    }

    /// Writes to different rows share a run; a second write to a row starts a new one
    /// (PostgreSQL's CTEs would keep only one of the two).
    #[test]
    fn a_second_change_of_one_row_starts_a_new_statement() {
        let cursor_failed = "UPDATE notify_cursors SET attempts = attempts + 1, next_attempt_at_us = $2, last_error = $3 WHERE sink = $1";
        let grant = "UPDATE grants SET state = $2, doc = $3 WHERE id = $1";
        let event = "INSERT INTO events (seq, at_us, actor, kind, data, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let head = "UPDATE ledger_head SET seq = $1, hash = $2 WHERE id = 1";
        let pending = [
            statement(grant, "g1"),
            statement(event, "1"),
            statement(grant, "g2"),
            statement(event, "2"),
            statement(cursor_failed, "pager"),
            statement(cursor_failed, "siem"),
            statement(cursor_failed, "pager"),
            statement(head, "3"),
            statement(head, "4"),
        ];
        let sizes: Vec<usize> = runs(&pending).iter().map(|run| run.len()).collect();
        assert_eq!(sizes, [6, 2, 1]);
        let upsert = "INSERT INTO jobs (object_id, kind, due_at_us, attempts, last_error) VALUES ($1, $2, $3, 0, NULL) ON CONFLICT (object_id) DO UPDATE SET kind = $2";
        let delete = "DELETE FROM jobs WHERE object_id = $1";
        let pending = [
            statement(delete, "a"),
            statement(upsert, "a"),
            statement(upsert, "b"),
        ];
        let sizes: Vec<usize> = runs(&pending).iter().map(|run| run.len()).collect();
        assert_eq!(sizes, [1, 2]);
    }

    #[test]
    fn statements_combine_per_backend() {
        let pending = [
            Pending {
                sql: "DELETE FROM jobs WHERE object_id = $1",
                args: vec![Arg::Text("a".into())],
            },
            Pending {
                sql: "UPDATE jobs SET due_at_us = $2 WHERE object_id = $1",
                args: vec![Arg::Text("b".into()), Arg::Int(5)],
            },
        ];
        let (sqlite, args) = combine(Backend::Sqlite, &pending);
        assert_eq!(
            sqlite,
            "DELETE FROM jobs WHERE object_id = $1;\nUPDATE jobs SET due_at_us = $3 WHERE object_id = $2"
        );
        assert_eq!(args.len(), 3);
        let (postgres, _) = combine(Backend::Postgres, &pending);
        assert_eq!(
            postgres,
            "WITH w0 AS (DELETE FROM jobs WHERE object_id = $1), w1 AS (UPDATE jobs SET due_at_us = $3 WHERE object_id = $2) SELECT 1"
        );
    }

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
