//! writ's storage.
//!
//! Architecture invariant: this is the only crate that contains SQL. It runs the same
//! runtime-checked queries on SQLite and PostgreSQL through sqlx's `Any` driver (see
//! ARCHITECTURE.md for why), and every state change it writes goes through a
//! [`WriteTx`], which appends the matching ledger event in the same transaction.

mod authzen;
mod break_glass;
mod cluster;
mod decisions;
mod directory;
mod findings;
mod insights;
mod live;
mod migrate;
pub use migrate::{Migrated, SCHEMA_VERSION, Schema};
mod orphans;
mod outbox;
mod page;
mod pdp;
mod read;
mod reports;
mod reviews;
mod scan;
mod sqlite_writer;
mod tree;
mod verify;
mod write;

use std::sync::Arc;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use writ_domain::{
    ActivationId, CampaignId, FindingId, Grant, GrantId, Request, RequestId, Timestamp,
};

pub use authzen::AuthzenTask;
pub use break_glass::{ACTIVATION_ORDER, ActivationFilter};
pub use cluster::{ClusterLocks, HeldLock, LockKey, LockSpace};
pub use findings::{FINDING_ORDER, FindingFilter, LiveGrant};
pub use insights::first_id_at;
pub use orphans::Orphan;
pub use outbox::{NewOutboxEntry, NotifyCursor, OutboxAction, OutboxEntry};
pub use page::{ID_CURSOR_PATTERN, Page, PageCursor, SortKey, TIMED_CURSOR_PATTERN};
pub use read::{
    GRANT_ORDER, GrantFilter, ID_MATCHES_MAX, IdTable, LiveLease, REQUEST_ORDER, RequestFilter,
};
pub use reports::{EndedLease, FailingRevocation, KindCount};
pub use reviews::{
    CAMPAIGN_ORDER, CampaignCounts, CampaignFilter, REVIEW_ITEM_ORDER, ReviewItemFilter,
};
pub use tree::STORED_LEVEL as TREE_STORED_LEVEL;
pub use verify::{VerifyError, VerifyReport};
pub use write::WriteTx;

/// How many events `audit verify` and exports read per query.
pub const EVENT_PAGE_SIZE: i64 = 5_000;
/// How long a caller waits for a database connection before the call fails (503).
pub const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a SQLite connection (the sqlx pool's, the writer's, the scan's) waits for
/// another one's lock before its call fails.
pub(crate) const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The most rows a list query returns.
pub const LIST_LIMIT_MAX: i64 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored {what} {id} is unreadable: {problem}")]
    Corrupt {
        what: &'static str,
        id: String,
        problem: String,
    },
    #[error("the write was part of a group commit that failed: {0}")]
    GroupCommit(String),
    #[error("the write transaction was already finished")]
    Closed,
    #[error("cannot open storage {url}: {problem}")]
    Open { url: String, problem: String },
    /// From the connections that bypass sqlx on SQLite (the writer, the chain scan).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the database's schema is version {found}; this writ knows versions up to {known}: \
         a newer writ upgraded it. Run that release (or a newer one); this one changed nothing"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error(
        "the database's schema is version {found}; this writ needs version {needed}. \
         Upgrade it with `writ migrate` (or start with `writ serve --migrate`); nothing was changed"
    )]
    SchemaBehind { found: i64, needed: i64 },
    /// A thread reading SQLite directly stopped before it answered.
    #[error("a database reading thread failed: {0}")]
    ReadThread(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The database a storage URL names: `sqlite:` or (anything else) PostgreSQL.
    pub fn of(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            Self::Sqlite
        } else {
            Self::Postgres
        }
    }
}

/// Work the scheduler owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    ApplyGrant,
    RevokeGrant,
    ExpireRequest,
    /// Reopen a finding whose exception ran out.
    ExpireException,
    /// Record a break-glass review overdue if it is still not signed off.
    BreakGlassReviewDue,
    /// A review campaign's next step: remind its reviewers, or at its deadline apply
    /// the default to what nobody decided and close it.
    ReviewCampaignDue,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApplyGrant => "grant.apply",
            Self::RevokeGrant => "grant.revoke",
            Self::ExpireRequest => "request.expire",
            Self::ExpireException => "exception.expire",
            Self::BreakGlassReviewDue => "break_glass.review_due",
            Self::ReviewCampaignDue => "review.campaign_due",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Self::ApplyGrant,
            Self::RevokeGrant,
            Self::ExpireRequest,
            Self::ExpireException,
            Self::BreakGlassReviewDue,
            Self::ReviewCampaignDue,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// What a job does, to which record: its kind and its id, typed together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobTask {
    ApplyGrant(GrantId),
    RevokeGrant(GrantId),
    ExpireRequest(RequestId),
    ExpireException(FindingId),
    BreakGlassReviewDue(ActivationId),
    ReviewCampaignDue(CampaignId),
}

impl JobTask {
    pub fn kind(self) -> JobKind {
        match self {
            Self::ApplyGrant(_) => JobKind::ApplyGrant,
            Self::RevokeGrant(_) => JobKind::RevokeGrant,
            Self::ExpireRequest(_) => JobKind::ExpireRequest,
            Self::ExpireException(_) => JobKind::ExpireException,
            Self::BreakGlassReviewDue(_) => JobKind::BreakGlassReviewDue,
            Self::ReviewCampaignDue(_) => JobKind::ReviewCampaignDue,
        }
    }
}

/// A job row whose id is not an id of the record its kind works on: not written by
/// writ. The scheduler logs it, counts it and puts it off; it never guesses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job {kind} {object_id:?}: {problem}")]
pub struct UnreadableJob {
    pub kind: &'static str,
    pub object_id: String,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub object_id: String,
    pub kind: JobKind,
    pub due_at: Timestamp,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// When a failing revocation was escalated, if it was.
    pub escalated_at: Option<Timestamp>,
}

impl Job {
    /// What the job does, to which record.
    pub fn task(&self) -> Result<JobTask, UnreadableJob> {
        let unreadable = |problem: writ_domain::InvalidId| UnreadableJob {
            kind: self.kind.as_str(),
            object_id: self.object_id.clone(),
            problem: problem.to_string(),
        };
        let id = self.object_id.as_str();
        Ok(match self.kind {
            JobKind::ApplyGrant => JobTask::ApplyGrant(id.parse().map_err(unreadable)?),
            JobKind::RevokeGrant => JobTask::RevokeGrant(id.parse().map_err(unreadable)?),
            JobKind::ExpireRequest => JobTask::ExpireRequest(id.parse().map_err(unreadable)?),
            JobKind::ExpireException => JobTask::ExpireException(id.parse().map_err(unreadable)?),
            JobKind::BreakGlassReviewDue => {
                JobTask::BreakGlassReviewDue(id.parse().map_err(unreadable)?)
            }
            JobKind::ReviewCampaignDue => {
                JobTask::ReviewCampaignDue(id.parse().map_err(unreadable)?)
            }
        })
    }

    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let object_id: String = row.try_get("object_id")?;
        let kind: String = row.try_get("kind")?;
        let kind = JobKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
            what: "job",
            id: object_id.clone(),
            problem: format!("unknown kind {kind:?}"),
        })?;
        Ok(Self {
            object_id,
            kind,
            due_at: Timestamp::from_unix_micros(row.try_get("due_at_us")?),
            attempts: row.try_get("attempts")?,
            last_error: row.try_get("last_error")?,
            escalated_at: row
                .try_get::<Option<i64>, _>("escalated_at_us")?
                .map(Timestamp::from_unix_micros),
        })
    }
}

/// A bearer token's owner, found by the token's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub hash: String,
    pub identity: String,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A token as `writ token list` shows it: by its id (the first 16 hex digits of its
/// hash, as on the ledger), never by anything that could authenticate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenListing {
    pub id: String,
    pub identity: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// False for a token issued before hashes were keyed: it authenticates nobody.
    pub usable_hash: bool,
}

/// Characters of a token hash that name the token (ledger `token_id`, `writ token list`).
pub const TOKEN_ID_LEN: usize = 16;

/// The storage handle: a connection pool plus the writer lock.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The SQLite database file, when there is one: the writer (`sqlite_writer`) and the
    /// chain scan (`scan`) open it directly.
    sqlite_file: Option<Arc<std::path::Path>>,
    /// One writer at a time per process (the ledger is a single chain, so writers
    /// serialise anyway; queueing here avoids spinning on SQLite's busy lock), and the
    /// database transaction that queued writers share (group commit, see `write`).
    writer: Arc<tokio::sync::Mutex<write::Batch>>,
    /// Writers queued for `writer`: while there are some, a commit is left to the last.
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    /// Write transactions committed, and database commits that carried them.
    commits: Arc<[std::sync::atomic::AtomicU64; 2]>,
    /// Locks every node on this database respects (`cluster`).
    locks: Arc<ClusterLocks>,
    /// Read-only SQLite connections the PDP's lease lookups reuse (`pdp`).
    pdp_readers: Arc<std::sync::Mutex<Vec<rusqlite::Connection>>>,
}

pub(crate) fn decode_doc<T: serde::de::DeserializeOwned>(
    what: &'static str,
    row: &AnyRow,
) -> Result<T, StoreError> {
    let id: &str = row.try_get("id")?;
    let doc: &str = row.try_get("doc")?;
    decode_doc_text(what, id, doc)
}

/// A stored record from its JSON document; `id` names it if the document is unreadable.
pub(crate) fn decode_doc_text<T: serde::de::DeserializeOwned>(
    what: &'static str,
    id: &str,
    doc: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt {
        what,
        id: id.to_string(),
        problem: e.to_string(),
    })
}

pub(crate) fn request_from_row(row: &AnyRow) -> Result<Request, StoreError> {
    decode_doc("request", row)
}

pub(crate) fn grant_from_row(row: &AnyRow) -> Result<Grant, StoreError> {
    decode_doc("grant", row)
}

/// A grant id read from a row; an unparsable one is a corrupt row.
pub(crate) fn parse_grant_id(id: String) -> Result<writ_domain::GrantId, StoreError> {
    id.parse()
        .map_err(|e: writ_domain::InvalidId| StoreError::Corrupt {
            what: "grant",
            id,
            problem: e.to_string(),
        })
}

pub(crate) fn finding_from_row(row: &AnyRow) -> Result<writ_domain::Finding, StoreError> {
    decode_doc("finding", row)
}

impl Store {
    /// Connects to `url` (`sqlite://...` or `postgres://...`) and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, Schema::Upgrade)
            .await
            .map(|(store, _)| store)
    }

    /// Connects to `url`; upgrades its schema or requires it current, as `schema` says.
    pub async fn open_with(url: &str, schema: Schema) -> Result<(Self, Migrated), StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url);
        let options =
            AnyPoolOptions::new().max_connections(if backend == Backend::Sqlite { 4 } else { 10 });
        let options = if backend == Backend::Sqlite {
            // A connection to a local file does not go stale: no ping (a round trip to
            // the connection's worker thread) before every use.
            options.test_before_acquire(false).after_connect(|connection, _| {
                Box::pin(async move {
                    // WAL for concurrent readers; FULL so a commit is durable when it returns.
                    let pragmas = format!(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = {};",
                        SQLITE_BUSY_TIMEOUT.as_millis()
                    );
                    // writ's own constant text.
                    sqlx::raw_sql(sqlx::AssertSqlSafe(pragmas))
                        .execute(connection)
                        .await?;
                    Ok(())
                })
            })
        } else {
            options
        };
        let open_error = |e: sqlx::Error| StoreError::Open {
            url: redact(url),
            problem: e.to_string(),
        };
        if backend == Backend::Sqlite {
            create_sqlite_folder(url).map_err(|e| StoreError::Open {
                url: redact(url),
                problem: e.to_string(),
            })?;
        }
        // One plain connection first: a pool only says "timed out" after its acquire
        // timeout, while this fails at once with the reason (refused, no such database, ...).
        let mut first = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
            .await
            .map_err(open_error)?;
        // The schema is checked (and upgraded) on that connection, closed at the end: on
        // PostgreSQL the migration lock is a session lock, so it is released however
        // this ends.
        let migrated = migrate::run(&mut first, backend, schema).await;
        let _ = sqlx::Connection::close(first).await;
        let migrated = migrated?;
        let pool = options
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .map_err(open_error)?;
        let sqlite_file = (backend == Backend::Sqlite)
            .then(|| sqlite_file(url))
            .flatten();
        let batch = match &sqlite_file {
            Some(file) => write::Batch::with_sqlite_writer(
                sqlite_writer::SqliteWriter::open(file).map_err(|e| StoreError::Open {
                    url: redact(url),
                    problem: e.to_string(),
                })?,
            ),
            None => write::Batch::default(),
        };
        let store = Self {
            pool,
            backend,
            sqlite_file,
            writer: Arc::new(tokio::sync::Mutex::new(batch)),
            waiting: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            commits: Arc::new([
                std::sync::atomic::AtomicU64::new(0),
                std::sync::atomic::AtomicU64::new(0),
            ]),
            locks: Arc::new(ClusterLocks::new(url, backend)),
            pdp_readers: Arc::default(),
        };
        Ok((store, migrated))
    }

    /// Starts a write transaction holding the ledger head.
    pub async fn begin(&self) -> Result<WriteTx<'_>, StoreError> {
        WriteTx::begin(self).await
    }

    /// (write transactions committed, database commits that carried them) since start:
    /// their ratio is what group commit saves.
    pub fn commit_counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.commits[0].load(Relaxed), self.commits[1].load(Relaxed))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The locks every node on this database respects.
    pub fn locks(&self) -> &Arc<ClusterLocks> {
        &self.locks
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite database file, when the database is one.
    pub fn sqlite_file(&self) -> Option<&std::path::Path> {
        self.sqlite_file.as_deref()
    }
}

/// A SQLite file in a folder that does not exist yet (`sqlite://state/writ.db`): the
/// folder is made, as the file itself would be with `mode=rwc`.
fn create_sqlite_folder(url: &str) -> std::io::Result<()> {
    use std::str::FromStr;
    let Ok(options) = sqlx::sqlite::SqliteConnectOptions::from_str(url) else {
        return Ok(());
    };
    match options.get_filename().parent() {
        Some(folder) if !folder.as_os_str().is_empty() && url.contains("mode=rwc") => {
            std::fs::create_dir_all(folder)
        }
        _ => Ok(()),
    }
}

/// The file behind a SQLite URL, if it is one (not an in-memory database).
fn sqlite_file(url: &str) -> Option<Arc<std::path::Path>> {
    use std::str::FromStr;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    path.is_file().then(|| Arc::from(path))
}

/// Hides a password in a database URL before it is shown.
pub fn redact(url: &str) -> String {
    writ_domain::redact_credentials(url)
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://writ:s3cret@db:5432/writ"),
            "postgres://writ:***@db:5432/writ"
        );
        assert_eq!(
            super::redact("postgres://writ@db/writ"),
            "postgres://writ@db/writ"
        );
        assert_eq!(super::redact("sqlite://writ.db"), "sqlite://writ.db");
    }

    /// The pool's connections wait for another's lock as long as the writer and the scan do.
    #[tokio::test]
    async fn pooled_sqlite_connections_share_the_busy_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = super::Store::open(&url).await.expect("store");
        let row = sqlx::query("PRAGMA busy_timeout")
            .fetch_one(&store.pool)
            .await
            .expect("pragma");
        let millis: i64 = sqlx::Row::try_get(&row, 0).expect("value");
        assert_eq!(
            u128::try_from(millis).ok(),
            Some(super::SQLITE_BUSY_TIMEOUT.as_millis())
        );
    }
}
