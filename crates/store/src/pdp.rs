//! What the AuthZEN policy decision point reads: the lease that allows an evaluation.
//!
//! On SQLite the lookup runs in place on a read-only connection kept for it: it takes
//! microseconds from the page cache, and a hand-off to sqlx's worker thread and back
//! cost several times that.

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use writ_domain::{Grant, Timestamp};

use crate::{SQLITE_BUSY_TIMEOUT, Store, StoreError, decode_doc_text, grant_from_row};

/// The most idle read connections kept for lookups.
const READERS_KEPT: usize = 8;

/// The lookup for `n` entitlements, its parameters spelled by `placeholder`: the
/// subject, the time, then the entitlements.
fn covering_sql(n: usize, placeholder: fn(usize) -> String) -> String {
    let listed: Vec<String> = (0..n).map(|i| placeholder(i + 3)).collect();
    format!(
        "SELECT id, doc FROM grants WHERE subject = {} AND state = 'active' AND entitlement IN ({}) AND expires_at_us > {} ORDER BY expires_at_us DESC LIMIT 1",
        placeholder(1),
        listed.join(", "),
        placeholder(2)
    )
}

impl Store {
    /// `subject`'s active lease on one of `entitlements` that has not reached its end at
    /// `now` — the one ending last, when several do. A lease past its end allows
    /// nothing, revoked yet or not. One index range per entitlement
    /// (`grants_held_by_subject`), whatever else the subject holds.
    pub async fn active_lease_covering(
        &self,
        subject: &str,
        entitlements: &[&str],
        now: Timestamp,
    ) -> Result<Option<Grant>, StoreError> {
        if entitlements.is_empty() {
            return Ok(None);
        }
        if let Some(file) = &self.sqlite_file {
            return self.sqlite_lease_covering(file, subject, entitlements, now);
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(covering_sql(entitlements.len(), |n| {
            format!("${n}")
        })))
        .bind(subject)
        .bind(now.unix_micros());
        for entitlement in entitlements {
            query = query.bind(*entitlement);
        }
        query
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(grant_from_row)
            .transpose()
    }

    fn sqlite_lease_covering(
        &self,
        file: &std::path::Path,
        subject: &str,
        entitlements: &[&str],
        now: Timestamp,
    ) -> Result<Option<Grant>, StoreError> {
        let readers = || {
            self.pdp_readers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let reused = readers().pop();
        let connection = match reused {
            Some(connection) => connection,
            None => {
                let connection = Connection::open_with_flags(
                    file,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                connection.busy_timeout(SQLITE_BUSY_TIMEOUT)?;
                connection
            }
        };
        let found = {
            let mut statement = connection
                .prepare_cached(&covering_sql(entitlements.len(), |n| format!("?{n}")))?;
            let mut parameters: Vec<rusqlite::types::Value> =
                vec![subject.to_string().into(), now.unix_micros().into()];
            parameters.extend(entitlements.iter().map(|e| e.to_string().into()));
            statement
                .query_row(rusqlite::params_from_iter(parameters), |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })
                .optional()
        };
        // A connection that failed is dropped, not kept; so are more than a few.
        if found.is_ok() {
            let mut kept = readers();
            if kept.len() < READERS_KEPT {
                kept.push(connection);
            }
        }
        found?
            .map(|(id, doc)| decode_doc_text("grant", &id, &doc))
            .transpose()
    }
}
