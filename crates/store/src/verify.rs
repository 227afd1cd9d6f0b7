//! `audit verify`: recompute the hash chain, replay every event, and check that the
//! request and grant tables say exactly what the ledger says.

use std::collections::HashMap;

use sqlx::Row;
use writ_domain::ledger::{ChainVerifier, LedgerError};

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
            tokio::spawn(async move { store.events(after, EVENT_PAGE_SIZE).await })
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
            for event in &page {
                if replay {
                    verifier.push(event)?
                } else {
                    verifier.check_link(event)?
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
