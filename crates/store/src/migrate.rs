//! Schema migrations, embedded in the binary and applied in order: by `writ migrate`,
//! by `writ serve --migrate`, and whenever a SQLite database is opened.

use sqlx::Row;

use crate::{Backend, StoreError};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_initial.sql")),
    (2, include_str!("../migrations/0002_tickets.sql")),
    (3, include_str!("../migrations/0003_findings.sql")),
    (4, include_str!("../migrations/0004_escalation.sql")),
    (
        5,
        include_str!("../migrations/0005_one_ticket_one_request.sql"),
    ),
    (6, include_str!("../migrations/0006_token_revocation.sql")),
    (7, include_str!("../migrations/0007_grants_by_state.sql")),
    (8, include_str!("../migrations/0008_orphans.sql")),
    (9, include_str!("../migrations/0009_directory.sql")),
    (10, include_str!("../migrations/0010_decision_basis.sql")),
    (11, include_str!("../migrations/0011_break_glass.sql")),
    (12, include_str!("../migrations/0012_reviews.sql")),
    (13, include_str!("../migrations/0013_events_by_record.sql")),
    (14, include_str!("../migrations/0014_reads_by_person.sql")),
    (15, include_str!("../migrations/0015_holds_by_subject.sql")),
    (16, include_str!("../migrations/0016_authzen_tasks.sql")),
    (17, include_str!("../migrations/0017_lease_uses.sql")),
    (18, include_str!("../migrations/0018_ledger_tree.sql")),
];

/// The migration that added `events.record`; applying it fills the column in for the
/// events already written.
const EVENTS_BY_RECORD: i64 = 13;

/// `writ_domain::ledger::record_of` as SQL over an event's stored JSON text.
fn record_sql(backend: Backend) -> String {
    let paths: Vec<String> = writ_domain::ledger::RECORD_FIELDS
        .iter()
        .map(|field| match backend {
            Backend::Sqlite => format!(
                "CASE WHEN json_type(data, '$.{field}.id') = 'text' THEN json_extract(data, '$.{field}.id') END"
            ),
            Backend::Postgres => format!(
                "CASE WHEN jsonb_typeof(data::jsonb #> '{{{field},id}}') = 'string' THEN data::jsonb #>> '{{{field},id}}' END"
            ),
        })
        .collect();
    format!(
        "UPDATE events SET record = CASE WHEN kind = '{}' THEN '{}' ELSE COALESCE({}) END",
        writ_domain::ledger::EventKind::LedgerCheckpoint.as_str(),
        writ_domain::ledger::LEDGER_RECORD,
        paths.join(", ")
    )
}

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// What opening a database may do to its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Apply the migrations it lacks (`writ migrate`, `writ serve --migrate`, SQLite).
    Upgrade,
    /// Change nothing; refuse a schema older than this build's (a shared PostgreSQL
    /// database is upgraded only when an operator says so).
    RequireCurrent,
}

/// The schema version a database had when opened, and has now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    pub from: i64,
    pub to: i64,
}

/// Two writ processes upgrading one PostgreSQL database at once (several nodes started
/// with `--migrate`) take turns on this session lock, so each migration runs once.
const MIGRATION_LOCK_KEY: i64 = 0x7772_6974_0000_0001;

/// Checks the schema of the database behind `connection` and, if `schema` allows,
/// upgrades it. The caller closes the connection afterwards (which ends the session and
/// so releases the migration lock).
pub async fn run(
    connection: &mut sqlx::AnyConnection,
    backend: Backend,
    schema: Schema,
) -> Result<Migrated, StoreError> {
    if backend == Backend::Postgres && schema == Schema::Upgrade {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *connection)
            .await?;
    }
    let from = current_version(connection, backend).await?;
    // A database a newer writ has upgraded may hold what this one would misread or
    // overwrite: refuse it rather than guess.
    if from > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: from,
            known: SCHEMA_VERSION,
        });
    }
    if schema == Schema::RequireCurrent {
        if from < SCHEMA_VERSION {
            return Err(StoreError::SchemaBehind {
                found: from,
                needed: SCHEMA_VERSION,
            });
        }
        return Ok(Migrated { from, to: from });
    }
    sqlx::query("CREATE TABLE IF NOT EXISTS writ_schema (version BIGINT PRIMARY KEY)")
        .execute(&mut *connection)
        .await?;
    for &(version, sql) in MIGRATIONS {
        let mut tx = sqlx::Connection::begin(&mut *connection).await?;
        let applied = sqlx::query("SELECT COUNT(*) AS n FROM writ_schema WHERE version = $1")
            .bind(version)
            .fetch_one(&mut *tx)
            .await?;
        if applied.try_get::<i64, _>("n")? > 0 {
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        if version == EVENTS_BY_RECORD {
            sqlx::raw_sql(sqlx::AssertSqlSafe(record_sql(backend)))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO writ_schema (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(Migrated {
        from,
        to: SCHEMA_VERSION,
    })
}

/// The newest migration applied; 0 for a database writ has never opened.
async fn current_version(
    connection: &mut sqlx::AnyConnection,
    backend: Backend,
) -> Result<i64, StoreError> {
    let exists = match backend {
        Backend::Postgres => {
            "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'writ_schema'"
        }
        Backend::Sqlite => {
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'writ_schema'"
        }
    };
    let found = sqlx::query(exists).fetch_one(&mut *connection).await?;
    if found.try_get::<i64, _>("n")? == 0 {
        return Ok(0);
    }
    Ok(
        sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM writ_schema")
            .fetch_one(&mut *connection)
            .await?
            .try_get::<i64, _>("v")?,
    )
}

#[cfg(test)]
mod tests {
    use super::{Migrated, SCHEMA_VERSION, Schema};
    use crate::{Store, StoreError};

    /// Without leave to upgrade, an empty database is refused, named, and left empty;
    /// upgraded, it opens, and opens again without leave.
    #[tokio::test]
    async fn a_schema_behind_is_refused_unless_upgrading_is_allowed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let refused = Store::open_with(&url, Schema::RequireCurrent)
            .await
            .expect_err("refused");
        assert!(
            matches!(refused, StoreError::SchemaBehind { found: 0, needed } if needed == SCHEMA_VERSION),
            "{refused}"
        );
        assert!(refused.to_string().contains("writ migrate"), "{refused}");
        let (store, migrated) = Store::open_with(&url, Schema::Upgrade)
            .await
            .expect("upgraded");
        assert_eq!(
            migrated,
            Migrated {
                from: 0,
                to: SCHEMA_VERSION
            }
        );
        let tables: i64 = sqlx::Row::get(
            &sqlx::query("SELECT COUNT(*) AS n FROM writ_schema")
                .fetch_one(&store.pool)
                .await
                .expect("count"),
            "n",
        );
        assert_eq!(tables, SCHEMA_VERSION, "each migration recorded once");
        store.close().await;
        let (store, again) = Store::open_with(&url, Schema::RequireCurrent)
            .await
            .expect("current");
        assert_eq!(
            again,
            Migrated {
                from: SCHEMA_VERSION,
                to: SCHEMA_VERSION
            }
        );
        store.close().await;
    }

    /// Several nodes started with `--migrate` at once on one new PostgreSQL database:
    /// each migration runs once, and every node opens.
    #[tokio::test]
    async fn nodes_upgrading_one_postgres_database_at_once_take_turns() {
        let database = writ_testkit::pg::TestDatabase::create().await;
        let opens = (0..4).map(|_| Store::open_with(&database.url, Schema::Upgrade));
        let results = futures_util::future::join_all(opens).await;
        let mut upgraded_from_zero = 0;
        for result in results {
            let (store, migrated) = result.expect("every node opens");
            assert_eq!(migrated.to, SCHEMA_VERSION);
            upgraded_from_zero += usize::from(migrated.from == 0);
            store.close().await;
        }
        assert_eq!(
            upgraded_from_zero, 1,
            "one node upgraded; the others found it done"
        );
        database.drop_now().await;
    }

    /// A database upgraded by a newer writ is refused, naming both versions, and left
    /// as it was.
    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::open(&url).await.expect("store");
        let newer = SCHEMA_VERSION + 1;
        sqlx::query("INSERT INTO writ_schema (version) VALUES ($1)")
            .bind(newer)
            .execute(&store.pool)
            .await
            .expect("newer version");
        store.close().await;
        let refused = Store::open(&url).await.expect_err("refused");
        assert!(
            matches!(refused, StoreError::SchemaTooNew { found, known } if found == newer && known == SCHEMA_VERSION),
            "{refused}"
        );
        let message = refused.to_string();
        assert!(message.contains(&format!("version {newer}")), "{message}");
        assert!(
            message.contains(&format!("up to {SCHEMA_VERSION}")),
            "{message}"
        );
        // An older writ reopening it does not write to it either.
        let _ = Store::open(&url).await.expect_err("still refused");
    }

    /// The backfill of `events.record` (for events written before the column) says of
    /// every event what the write path says: `writ_domain::ledger::record_of`.
    async fn backfill_matches_the_write_path(store: Store) {
        use writ_domain::Timestamp;
        use writ_domain::ledger::{Actor, EventKind};
        let actor: Actor = "alice".parse().expect("actor");
        let documents = [
            (
                EventKind::RequestCreated,
                serde_json::json!({"request": {"id": "r1"}}),
            ),
            (
                EventKind::RequestApproved,
                serde_json::json!({"request": {"id": "r1"}, "grant": {"id": "g1"}}),
            ),
            (
                EventKind::FindingOpened,
                serde_json::json!({"finding": {"id": "f1"}, "change": {"added": ["x"]}}),
            ),
            (
                EventKind::TokenIssued,
                serde_json::json!({"token_id": "t", "identity": "alice"}),
            ),
            (
                EventKind::GrantCreated,
                serde_json::json!({"grant": 7, "request": {"id": "r2"}}),
            ),
            (
                EventKind::GrantCreated,
                serde_json::json!({"grant": {"id": 7}}),
            ),
            (
                EventKind::ReviewItemOpened,
                serde_json::json!({"review_item": {"id": "i1"}, "campaign": {"id": "c1"}}),
            ),
            (
                EventKind::LedgerCheckpoint,
                serde_json::json!({"seq": 7, "head": "h"}),
            ),
        ];
        let mut tx = store.begin().await.expect("tx");
        for (i, (kind, data)) in documents.iter().enumerate() {
            let at = Timestamp::from_unix_micros(1_000_000 + i64::try_from(i).expect("i"));
            tx.append(at, &actor, *kind, data).await.expect("append");
        }
        tx.commit().await.expect("commit");
        let records = || async {
            sqlx::query_scalar::<_, Option<String>>("SELECT record FROM events ORDER BY seq")
                .fetch_all(&store.pool)
                .await
                .expect("records")
        };
        let written = records().await;
        let expected: Vec<Option<String>> = documents
            .iter()
            .map(|(kind, data)| writ_domain::ledger::record_of(*kind, data))
            .collect();
        assert_eq!(written, expected);
        assert_eq!(
            expected.last().cloned().flatten().as_deref(),
            Some("ledger")
        );
        sqlx::query("UPDATE events SET record = NULL")
            .execute(&store.pool)
            .await
            .expect("forget");
        sqlx::raw_sql(sqlx::AssertSqlSafe(super::record_sql(store.backend)))
            .execute(&store.pool)
            .await
            .expect("backfill");
        assert_eq!(records().await, expected);
        let about = store
            .events_about(&["g1".to_string(), "r1".to_string()], 10)
            .await
            .expect("events about");
        assert_eq!(about.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
        store.close().await;
    }

    #[tokio::test]
    async fn event_records_backfill_on_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        backfill_matches_the_write_path(Store::open(&url).await.expect("store")).await;
    }

    #[tokio::test]
    async fn event_records_backfill_on_postgres() {
        let database = writ_testkit::pg::TestDatabase::create().await;
        backfill_matches_the_write_path(Store::open(&database.url).await.expect("store")).await;
    }
}
