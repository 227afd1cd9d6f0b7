//! `audit verify`: recompute the hash chain, replay every event, and check that the
//! request and grant tables say exactly what the ledger says.

use std::collections::HashMap;

use sqlx::Row;
use writ_domain::ledger::{ChainVerifier, LedgerError, StoredEvent, digest_matches, event_digest};

use crate::read::{RawEvent, parse_event_page};
use crate::{EVENT_PAGE_SIZE, Store, StoreError, grant_from_row, request_from_row};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: i64,
    pub head: String,
    pub requests: usize,
    pub grants: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("ledger check failed: {0}")]
    Ledger(#[from] LedgerError),
}

impl From<sqlx::Error> for VerifyError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(error))
    }
}

fn mismatch(table: &'static str, id: String, problem: impl Into<String>) -> VerifyError {
    VerifyError::Ledger(LedgerError::StateMismatch {
        table,
        id,
        problem: problem.into(),
    })
}

/// A page made ready for the verifier on a read-ahead task: whole events to replay,
/// or, for the chain-only check, the page already checked as a stretch of the chain
/// (hashes and the links inside it), so only its first link is left to join.
enum CheckedPage {
    Events(Vec<StoredEvent>),
    Stretch(Option<Stretch>),
}

struct Stretch {
    first_seq: i64,
    first_prev_hash: String,
    checked: ChainVerifier,
    /// The first bad event inside the page, if any.
    error: Option<LedgerError>,
}

impl Store {
    async fn checked_page(&self, after: i64, replay: bool) -> Result<CheckedPage, StoreError> {
        let page = self.event_page(after, EVENT_PAGE_SIZE).await?;
        let raw = parse_event_page(&page).map_err(|problem| StoreError::Corrupt {
            what: "event page",
            id: format!("after {after}"),
            problem,
        })?;
        if replay {
            return Ok(CheckedPage::Events(
                raw.into_iter().map(RawEvent::to_owned).collect(),
            ));
        }
        let Some(first) = raw.first() else {
            return Ok(CheckedPage::Stretch(None));
        };
        let mut checked = ChainVerifier::resume(first.seq - 1, first.prev_hash);
        let mut error = None;
        for event in &raw {
            let digest = event_digest(
                event.seq,
                event.at,
                event.actor,
                event.kind,
                event.data,
                event.prev_hash,
            );
            let hash_matches = digest_matches(&digest, event.hash);
            if let Err(bad) =
                checked.check_hashed(event.seq, event.prev_hash, event.hash, hash_matches)
            {
                error = Some(bad);
                break;
            }
        }
        Ok(CheckedPage::Stretch(Some(Stretch {
            first_seq: first.seq,
            first_prev_hash: first.prev_hash.to_string(),
            checked,
            error,
        })))
    }
}

/// Pages read ahead while one is verified (each on its own connection).
const PAGES_IN_FLIGHT: usize = 3;

impl Store {
    /// Recomputes the chain only (no replay): the cheap check, and the one benchmarked
    /// against raw SHA-256.
    pub async fn verify_chain(&self) -> Result<VerifyReport, VerifyError> {
        let verifier = self.walk_chain(false).await?;
        Ok(VerifyReport {
            events: verifier.events(),
            head: verifier.head().to_string(),
            requests: 0,
            grants: 0,
        })
    }

    async fn walk_chain(&self, replay: bool) -> Result<ChainVerifier, VerifyError> {
        let mut verifier = ChainVerifier::default();
        // Pages are read ahead on another task while this one hashes the current page.
        // They are fetched by position (`seq > k × page`), so a missing event makes
        // neighbouring pages overlap; the first error is still the first bad event.
        let last = self.last_event_seq().await?;
        let fetch = |after: i64| {
            let store = self.clone();
            tokio::spawn(async move { store.checked_page(after, replay).await })
        };
        let mut requested = 0;
        let mut in_flight = std::collections::VecDeque::new();
        loop {
            while in_flight.len() < PAGES_IN_FLIGHT && requested < last {
                in_flight.push_back(fetch(requested));
                requested += EVENT_PAGE_SIZE;
            }
            let Some(page) = in_flight.pop_front() else {
                break;
            };
            let page = page.await.map_err(|e| StoreError::Corrupt {
                what: "event page",
                id: "read-ahead".into(),
                problem: e.to_string(),
            })??;
            match page {
                CheckedPage::Events(events) => {
                    events.iter().try_for_each(|event| verifier.push(event))?
                }
                CheckedPage::Stretch(None) => {}
                CheckedPage::Stretch(Some(stretch)) => {
                    verifier.join(
                        stretch.first_seq,
                        &stretch.first_prev_hash,
                        &stretch.checked,
                    )?;
                    if let Some(error) = stretch.error {
                        return Err(error.into());
                    }
                }
            }
        }
        let (head_seq, head_hash) = self.head().await?;
        if verifier.events() < head_seq {
            return Err(LedgerError::Truncated {
                last: verifier.events(),
                head: head_seq,
            }
            .into());
        }
        if verifier.events() > head_seq || verifier.head() != head_hash {
            return Err(LedgerError::BadReplay {
                seq: head_seq.max(1),
                problem: format!("the ledger head records event {head_seq} with hash {head_hash}, which is not the chain's last event"),
            }
            .into());
        }
        Ok(verifier)
    }

    /// Full verification: chain, replay, and the state tables against the replay.
    pub async fn verify(&self) -> Result<VerifyReport, VerifyError> {
        let mut verifier = self.walk_chain(true).await?;

        let rows = sqlx::query(
            "SELECT id, state, requester, subject, entitlement, created_at_us, doc FROM requests",
        )
        .fetch_all(&self.pool)
        .await?;
        let request_count = rows.len();
        let mut replayed = std::mem::take(&mut verifier.requests);
        for row in &rows {
            let id: String = row.try_get("id")?;
            let request = request_from_row(row).map_err(VerifyError::Store)?;
            let columns_agree = request.id.to_string() == id
                && row.try_get::<String, _>("state")? == request.state.as_str()
                && row.try_get::<String, _>("requester")? == request.requester.as_str()
                && row.try_get::<String, _>("subject")? == request.subject.as_str()
                && row.try_get::<String, _>("entitlement")? == request.entitlement.as_str()
                && row.try_get::<i64, _>("created_at_us")? == request.created_at.unix_micros();
            if !columns_agree {
                return Err(mismatch(
                    "requests",
                    id,
                    "its columns disagree with its record",
                ));
            }
            match replayed.remove(&request.id) {
                None => return Err(mismatch("requests", id, "is not on the ledger")),
                Some(expected) if expected != request => {
                    return Err(mismatch(
                        "requests",
                        id,
                        format!(
                            "differs from the ledger (ledger: {}, table: {})",
                            expected.state, request.state
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(id) = replayed.keys().next() {
            return Err(mismatch(
                "requests",
                id.to_string(),
                "is on the ledger but missing from the table",
            ));
        }

        let rows = sqlx::query("SELECT id, request_id, subject, entitlement, account, state, expires_at_us, doc FROM grants").fetch_all(&self.pool).await?;
        let grant_count = rows.len();
        let mut replayed: HashMap<_, _> = std::mem::take(&mut verifier.grants);
        for row in &rows {
            let id: String = row.try_get("id")?;
            let grant = grant_from_row(row).map_err(VerifyError::Store)?;
            let columns_agree = grant.id.to_string() == id
                && row.try_get::<String, _>("request_id")? == grant.request_id.to_string()
                && row.try_get::<String, _>("state")? == grant.state.as_str()
                && row.try_get::<String, _>("subject")? == grant.subject.as_str()
                && row.try_get::<String, _>("entitlement")? == grant.entitlement.as_str()
                && row.try_get::<String, _>("account")? == grant.account
                && row.try_get::<i64, _>("expires_at_us")? == grant.expires_at.unix_micros();
            if !columns_agree {
                return Err(mismatch(
                    "grants",
                    id,
                    "its columns disagree with its record",
                ));
            }
            match replayed.remove(&grant.id) {
                None => return Err(mismatch("grants", id, "is not on the ledger")),
                Some(expected) if expected != grant => {
                    return Err(mismatch(
                        "grants",
                        id,
                        format!(
                            "differs from the ledger (ledger: {}, table: {})",
                            expected.state, grant.state
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(id) = replayed.keys().next() {
            return Err(mismatch(
                "grants",
                id.to_string(),
                "is on the ledger but missing from the table",
            ));
        }

        Ok(VerifyReport {
            events: verifier.events(),
            head: verifier.head().to_string(),
            requests: request_count,
            grants: grant_count,
        })
    }
}

#[cfg(test)]
mod tests {
    use writ_domain::Timestamp;
    use writ_domain::ledger::EventKind;

    use super::*;

    async fn store_with_events(dir: &tempfile::TempDir, events: i64) -> Store {
        let store = Store::open(&format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("v.db").display()
        ))
        .await
        .expect("store");
        for n in 0..events {
            let mut tx = store.begin().await.expect("begin");
            let at = Timestamp::from_unix_micros(1_800_000_000_000_000 + n);
            tx.append(
                at,
                "alice",
                EventKind::TokenIssued,
                &serde_json::json!({ "n": n, "text": "é;,|" }),
            )
            .await
            .expect("append");
            tx.commit().await.expect("commit");
        }
        store
    }

    async fn tamper(store: &Store, sql: &'static str) {
        sqlx::raw_sql(sql)
            .execute(&store.pool)
            .await
            .expect("tamper");
    }

    #[tokio::test]
    async fn the_chain_check_and_the_full_check_locate_the_same_first_bad_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with_events(&dir, 12).await;
        assert_eq!(store.verify_chain().await.expect("intact").events, 12);
        assert_eq!(store.verify().await.expect("intact").events, 12);
        let first_bad = |result: Result<VerifyReport, VerifyError>| match result {
            Err(VerifyError::Ledger(error)) => error.seq(),
            other => panic!("expected a ledger error, got {other:?}"),
        };
        tamper(&store, "UPDATE events SET actor = 'mallory' WHERE seq = 4").await;
        assert_eq!(first_bad(store.verify_chain().await), Some(4));
        assert_eq!(first_bad(store.verify().await), Some(4));
        tamper(
            &store,
            "UPDATE events SET actor = 'alice' WHERE seq = 4; DELETE FROM events WHERE seq = 7",
        )
        .await;
        assert_eq!(first_bad(store.verify_chain().await), Some(8));
        assert_eq!(first_bad(store.verify().await), Some(8));
    }

    #[tokio::test]
    async fn stretches_checked_apart_join_at_page_boundaries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("p.db").display()
        ))
        .await
        .expect("store");
        let total = 2 * EVENT_PAGE_SIZE + 50;
        let mut written = 0;
        while written < total {
            let mut tx = store.begin().await.expect("begin");
            for _ in 0..1_000.min(total - written) {
                written += 1;
                tx.append(
                    Timestamp::from_unix_micros(written),
                    "a",
                    EventKind::TokenIssued,
                    &serde_json::json!({ "n": written }),
                )
                .await
                .expect("append");
            }
            tx.commit().await.expect("commit");
        }
        assert_eq!(store.verify_chain().await.expect("intact").events, total);
        let boundary = EVENT_PAGE_SIZE + 1;
        let first_bad = |result: Result<VerifyReport, VerifyError>| match result {
            Err(VerifyError::Ledger(error)) => error.seq(),
            other => panic!("expected a ledger error, got {other:?}"),
        };
        let run = |statement: String| {
            let pool = store.pool.clone();
            async move {
                sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                    .execute(&pool)
                    .await
                    .expect("tamper")
            }
        };
        let original_prev: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT prev_hash FROM events WHERE seq = {boundary}"
        )))
        .fetch_one(&store.pool)
        .await
        .expect("prev_hash");
        // Each tampering touches the first event of the second page (or the last of the
        // first), and each is located there; each is undone before the next.
        run(format!(
            "UPDATE events SET actor = 'b' WHERE seq = {boundary}"
        ))
        .await;
        assert_eq!(
            first_bad(store.verify_chain().await),
            Some(boundary),
            "altered event"
        );
        run(format!(
            "UPDATE events SET actor = 'a' WHERE seq = {boundary}"
        ))
        .await;
        run(format!(
            "UPDATE events SET prev_hash = hash WHERE seq = {boundary}"
        ))
        .await;
        assert_eq!(
            first_bad(store.verify_chain().await),
            Some(boundary),
            "broken link across pages"
        );
        run(format!(
            "UPDATE events SET prev_hash = '{original_prev}' WHERE seq = {boundary}"
        ))
        .await;
        assert_eq!(store.verify_chain().await.expect("restored").events, total);
        run(format!("DELETE FROM events WHERE seq = {}", boundary - 1)).await;
        assert_eq!(
            first_bad(store.verify_chain().await),
            Some(boundary),
            "removed event"
        );
    }
}
