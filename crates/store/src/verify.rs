//! `audit verify`: recompute the hash chain, replay every event, and check that the
//! request, grant and finding tables say exactly what the ledger says.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;
use writ_domain::ledger::{ChainVerifier, EventFields, LedgerError, LedgerToken, PreparedEvent};

use crate::read::parse_event_page;
use crate::scan;
use writ_domain::{
    Activation, Campaign, DirectoryGroup, DirectoryUser, Finding, Grant, Request, ReviewItem,
    Timestamp,
};

use crate::{
    Backend, EVENT_PAGE_SIZE, JobKind, Store, StoreError, finding_from_row, grant_from_row,
    request_from_row,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: i64,
    pub head: String,
    pub requests: usize,
    pub grants: usize,
    pub findings: usize,
    pub tokens: usize,
    pub activations: usize,
    pub campaigns: usize,
    pub review_items: usize,
}

impl VerifyReport {
    /// The chain checked, nothing replayed against the tables.
    fn chain_only(verifier: &ChainVerifier) -> Self {
        Self {
            events: verifier.events(),
            head: verifier.head().to_string(),
            requests: 0,
            grants: 0,
            findings: 0,
            tokens: 0,
            activations: 0,
            campaigns: 0,
            review_items: 0,
        }
    }
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
    Events(Vec<PreparedEvent>),
    Stretch(Option<Box<Stretch>>),
}

/// A stretch of the chain checked apart from the rest.
pub(crate) struct Stretch {
    first_seq: i64,
    first_prev_hash: String,
    checked: ChainVerifier,
    /// The first bad event inside the stretch, if any.
    error: Option<LedgerError>,
}

/// Checks consecutive events as a stretch of the chain: each hash, and each link after
/// the first (which only the stretch before can confirm).
#[derive(Default)]
pub(crate) struct StretchCheck(Option<Stretch>);

impl StretchCheck {
    /// Checks the next event; false once an error is found (the rest need not be read).
    pub(crate) fn push(&mut self, event: &EventFields<'_>) -> bool {
        let stretch = self.0.get_or_insert_with(|| Stretch {
            first_seq: event.seq,
            first_prev_hash: event.prev_hash.to_string(),
            checked: ChainVerifier::resume(event.seq - 1, event.prev_hash),
            error: None,
        });
        if stretch.error.is_some() {
            return false;
        }
        let hash_matches = event.hash_matches();
        match stretch
            .checked
            .check_hashed(event.seq, event.prev_hash, event.hash, hash_matches)
        {
            Ok(()) => true,
            Err(bad) => {
                stretch.error = Some(bad);
                false
            }
        }
    }

    pub(crate) fn finish(self) -> Option<Stretch> {
        self.0
    }
}

impl Stretch {
    /// Joins this stretch to the chain checked so far.
    fn join_to(self, verifier: &mut ChainVerifier) -> Result<(), LedgerError> {
        verifier.join(self.first_seq, &self.first_prev_hash, &self.checked)?;
        self.error.map_or(Ok(()), Err)
    }
}

impl Store {
    async fn checked_page(&self, after: i64, replay: bool) -> Result<CheckedPage, StoreError> {
        let page = self.event_page(after, EVENT_PAGE_SIZE).await?;
        let raw = parse_event_page(page.text()?).map_err(|problem| StoreError::Corrupt {
            what: "event page",
            id: format!("after {after}"),
            problem,
        })?;
        if replay {
            // Hashing and parsing here, on the read-ahead task, leaves only the links
            // and the state changes to the in-order replay.
            return Ok(CheckedPage::Events(
                raw.into_iter().map(PreparedEvent::from_fields).collect(),
            ));
        }
        let mut check = StretchCheck::default();
        for event in &raw {
            if !check.push(event) {
                break;
            }
        }
        Ok(CheckedPage::Stretch(check.finish().map(Box::new)))
    }

    /// The chain check of a SQLite ledger file in `stretches` stretches, each read and
    /// hashed on its own thread (see `scan`), joined in order.
    async fn scan_chain(
        &self,
        file: &std::path::Path,
        stretches: i64,
    ) -> Result<ChainVerifier, VerifyError> {
        let last = self.last_event_seq().await?;
        let stretches = stretches.clamp(1, last.max(1));
        let length = (last + stretches - 1) / stretches;
        let tasks: Vec<_> = (0..stretches)
            .map(|k| {
                let file = file.to_path_buf();
                let (after, up_to) = (k * length, ((k + 1) * length).min(last));
                tokio::task::spawn_blocking(move || scan::check_range(&file, after, up_to))
            })
            .collect();
        let mut verifier = ChainVerifier::default();
        for task in tasks {
            let stretch = task.await.map_err(|e| StoreError::Corrupt {
                what: "ledger scan",
                id: String::new(),
                problem: e.to_string(),
            })??;
            if let Some(stretch) = stretch {
                stretch.join_to(&mut verifier)?;
            }
        }
        Ok(verifier)
    }
}

/// Pages read ahead while one is verified (each on its own connection).
const PAGES_IN_FLIGHT: usize = 3;

impl Store {
    /// Recomputes the chain only (no replay): the cheap check, and the one benchmarked
    /// against raw SHA-256.
    pub async fn verify_chain(&self) -> Result<VerifyReport, VerifyError> {
        let head = self.consistent_head().await?;
        let verifier = self.walk_chain(false, &head).await?;

        Ok(VerifyReport::chain_only(&verifier))
    }

    /// Walks the chain (to its end, or for the replay to `head`) and checks `head` is
    /// on it. Events appended after `head` was read are a busy server's, not tampering.
    async fn walk_chain(&self, replay: bool, head: &Head) -> Result<ChainVerifier, VerifyError> {
        let verifier = match &self.sqlite_file {
            Some(file) if !replay => {
                // One stretch per core, none shorter than this.
                const EVENTS_PER_STRETCH_MIN: i64 = 10_000;
                let cores = std::thread::available_parallelism().map_or(1, usize::from) as i64;
                let last = self.last_event_seq().await?;
                let stretches = (last / EVENTS_PER_STRETCH_MIN).clamp(1, cores);
                self.scan_chain(file, stretches).await?
            }
            _ => self.read_chain(replay, replay.then_some(head.seq)).await?,
        };
        self.check_head(&verifier, head).await?;
        Ok(verifier)
    }

    /// The chain read through sqlx in pages, for PostgreSQL and for the replay.
    /// `until`: the last event to take (later ones are ignored); `None`: to the end.
    async fn read_chain(
        &self,
        replay: bool,
        until: Option<i64>,
    ) -> Result<ChainVerifier, VerifyError> {
        let mut verifier = ChainVerifier::default();
        // Pages are read ahead on another task while this one hashes the current page.
        // They are fetched by position (`seq > k × page`), so a missing event makes
        // neighbouring pages overlap; the first error is still the first bad event.
        let last = match until {
            Some(until) => until,
            None => self.last_event_seq().await?,
        };
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
                CheckedPage::Events(events) => events
                    .into_iter()
                    .filter(|event| event.seq() <= last)
                    .try_for_each(|event| verifier.push_prepared(event))?,
                CheckedPage::Stretch(None) => {}
                CheckedPage::Stretch(Some(stretch)) => stretch.join_to(&mut verifier)?,
            }
        }
        Ok(verifier)
    }

    /// Whether the chain reaches `head` and `head` names the event there.
    async fn check_head(&self, verifier: &ChainVerifier, head: &Head) -> Result<(), VerifyError> {
        if verifier.events() < head.seq {
            return Err(LedgerError::Truncated {
                last: verifier.events(),
                head: head.seq,
            }
            .into());
        }
        // The walk checked every event it read; the one at the head must be the head's.
        let hash_at_head = if verifier.events() == head.seq {
            verifier.head().to_string()
        } else {
            sqlx::query_scalar::<_, String>("SELECT hash FROM events WHERE seq = $1")
                .bind(head.seq)
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or_default()
        };
        if hash_at_head != head.hash {
            return Err(LedgerError::BadReplay {
                seq: head.seq.max(1),
                problem: format!(
                    "the ledger head records event {} with hash {}, which is not the chain's event there",
                    head.seq, head.hash
                ),
            }
            .into());
        }
        Ok(())
    }

    /// The head as of one moment, and whether any event lies beyond it then (on an
    /// honest ledger none does: an event and the head move in one transaction).
    async fn consistent_head(&self) -> Result<Head, VerifyError> {
        let mut tx = self.pool.begin().await?;
        let head = self.head_in(&mut tx).await?;
        tx.rollback().await?;
        Ok(head)
    }

    async fn head_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    ) -> Result<Head, VerifyError> {
        if self.backend == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut **tx)
                .await?;
        }
        let row = sqlx::query(
            "SELECT h.seq, h.hash, (SELECT COALESCE(MAX(seq), 0) FROM events) AS last \
             FROM ledger_head h WHERE h.id = 1",
        )
        .fetch_one(&mut **tx)
        .await?;
        let head = Head {
            seq: row.try_get("seq")?,
            hash: row.try_get("hash")?,
        };
        let last: i64 = row.try_get("last")?;
        if last > head.seq {
            return Err(LedgerError::BadReplay {
                seq: head.seq + 1,
                problem: format!(
                    "event {last} is on the ledger after its head (event {})",
                    head.seq
                ),
            }
            .into());
        }
        Ok(head)
    }

    /// Full verification: chain, replay, and the state tables against the replay.
    ///
    /// The head and the state tables are read in one transaction (REPEATABLE READ on
    /// PostgreSQL; one read transaction on SQLite), and the chain is replayed up to that
    /// head: a server writing meanwhile cannot make an honest ledger look tampered.
    pub async fn verify(&self) -> Result<VerifyReport, VerifyError> {
        let snapshot = self.snapshot().await?;
        let mut verifier = self.walk_chain(true, &snapshot.head).await?;

        let rows = snapshot.requests;
        let requests = compare_table(
            "requests",
            &rows,
            std::mem::take(&mut verifier.requests),
            request_from_row,
            |row, request: &Request| {
                Ok(row.try_get::<String, _>("state")? == request.state.as_str()
                    && row.try_get::<String, _>("requester")? == request.requester.as_str()
                    && row.try_get::<String, _>("subject")? == request.subject.as_str()
                    && row.try_get::<String, _>("entitlement")? == request.entitlement.as_str()
                    && row.try_get::<i64, _>("created_at_us")? == request.created_at.unix_micros())
            },
            |request| (request.id, request.state.as_str()),
        )?;

        let rows = snapshot.grants;
        let grants = compare_table(
            "grants",
            &rows,
            std::mem::take(&mut verifier.grants),
            grant_from_row,
            |row, grant: &Grant| {
                Ok(
                    row.try_get::<String, _>("request_id")? == grant.request_id.to_string()
                        && row.try_get::<String, _>("state")? == grant.state.as_str()
                        && row.try_get::<String, _>("subject")? == grant.subject.as_str()
                        && row.try_get::<String, _>("entitlement")? == grant.entitlement.as_str()
                        && row.try_get::<String, _>("account")? == grant.account
                        && row.try_get::<i64, _>("expires_at_us")?
                            == grant.expires_at.unix_micros(),
                )
            },
            |grant| (grant.id, grant.state.as_str()),
        )?;

        let rows = snapshot.findings;
        let findings = compare_table(
            "findings",
            &rows,
            std::mem::take(&mut verifier.findings),
            finding_from_row,
            |row, finding: &Finding| {
                Ok(row.try_get::<String, _>("target")? == finding.target
                    && row.try_get::<String, _>("entitlement")? == finding.entitlement.as_str()
                    && row.try_get::<String, _>("account")? == finding.account
                    && row.try_get::<String, _>("kind")? == finding.kind.as_str()
                    && row.try_get::<String, _>("state")? == finding.state.as_str()
                    && row.try_get::<i64, _>("first_seen_at_us")?
                        == finding.first_seen_at.unix_micros())
            },
            |finding| (finding.id, finding.state.as_str()),
        )?;

        let rows = snapshot.directory_users;
        compare_table(
            "directory_users",
            &rows,
            std::mem::take(&mut verifier.directory_users),
            |row| crate::decode_doc("directory user", row),
            |row, user: &DirectoryUser| {
                Ok(
                    row.try_get::<String, _>("user_name")? == user.user_name.as_str()
                        && row.try_get::<String, _>("user_name_key")?
                            == user.user_name.as_str().to_lowercase(),
                )
            },
            |user| (user.id, user.user_name.as_str()),
        )?;
        let rows = snapshot.directory_groups;
        compare_table(
            "directory_groups",
            &rows,
            std::mem::take(&mut verifier.directory_groups),
            |row| crate::decode_doc("directory group", row),
            |row, group: &DirectoryGroup| {
                Ok(
                    row.try_get::<Option<String>, _>("display_name")? == group.display_name
                        && row.try_get::<Option<String>, _>("display_name_key")?
                            == group.display_name.as_ref().map(|n| n.to_lowercase()),
                )
            },
            |group| (group.id, group.display_name.as_deref().unwrap_or("-")),
        )?;

        let rows = snapshot.activations;
        let activations = compare_table(
            "break_glass_activations",
            &rows,
            std::mem::take(&mut verifier.activations),
            |row| crate::decode_doc("break-glass activation", row),
            |row, activation: &Activation| {
                Ok(row.try_get::<String, _>("profile")? == activation.profile
                    && row.try_get::<String, _>("activator")? == activation.activator.as_str()
                    && row.try_get::<String, _>("review_state")?
                        == activation.review_state.as_str()
                    && row.try_get::<i64, _>("activated_at_us")?
                        == activation.activated_at.unix_micros()
                    && row.try_get::<i64, _>("review_due_at_us")?
                        == activation.review_due_at.unix_micros())
            },
            |activation| (activation.id, activation.review_state.as_str()),
        )?;

        let rows = snapshot.campaigns;
        let campaigns = compare_table(
            "review_campaigns",
            &rows,
            std::mem::take(&mut verifier.campaigns),
            |row| crate::decode_doc("review campaign", row),
            |row, campaign: &Campaign| {
                Ok(row.try_get::<String, _>("name")? == campaign.name
                    && row.try_get::<String, _>("state")? == campaign.state.as_str()
                    && row.try_get::<i64, _>("created_at_us")? == campaign.created_at.unix_micros()
                    && row.try_get::<i64, _>("due_at_us")? == campaign.due_at.unix_micros())
            },
            |campaign| (campaign.id, campaign.state.as_str()),
        )?;
        let rows = snapshot.review_items;
        let ledger_items = std::mem::take(&mut verifier.review_items);
        check_assignments(&snapshot.review_assignments, &ledger_items)?;
        let review_items = compare_table(
            "review_items",
            &rows,
            ledger_items,
            |row| crate::decode_doc("review item", row),
            |row, item: &ReviewItem| {
                Ok(
                    row.try_get::<String, _>("campaign")? == item.campaign.to_string()
                        && row.try_get::<String, _>("state")? == item.state.as_str()
                        && row.try_get::<Option<String>, _>("subject")?
                            == item.subject.as_ref().map(|s| s.to_string())
                        && row.try_get::<Option<String>, _>("decided_by")?
                            == item.decided_by.as_ref().map(|r| r.to_string()),
                )
            },
            |item| (item.id, item.state.as_str()),
        )?;

        check_live_grants_have_jobs(&snapshot.live_grants)?;
        check_open_reviews_have_jobs(&snapshot.open_reviews)?;
        check_open_campaigns_have_jobs(&snapshot.open_campaigns)?;
        let tokens = check_tokens(&snapshot.tokens, std::mem::take(&mut verifier.tokens))?;

        Ok(VerifyReport {
            events: verifier.events(),
            head: verifier.head().to_string(),
            requests,
            grants,
            findings,
            tokens,
            activations,
            campaigns,
            review_items,
        })
    }
}

/// The head and the state tables as of one moment (see `Store::verify`).
struct Snapshot {
    head: Head,
    requests: Vec<AnyRow>,
    grants: Vec<AnyRow>,
    findings: Vec<AnyRow>,
    live_grants: Vec<AnyRow>,
    tokens: Vec<AnyRow>,
    directory_users: Vec<AnyRow>,
    directory_groups: Vec<AnyRow>,
    activations: Vec<AnyRow>,
    open_reviews: Vec<AnyRow>,
    campaigns: Vec<AnyRow>,
    review_items: Vec<AnyRow>,
    review_assignments: Vec<AnyRow>,
    open_campaigns: Vec<AnyRow>,
}

/// The ledger head row.
struct Head {
    seq: i64,
    hash: String,
}

impl Store {
    async fn snapshot(&self) -> Result<Snapshot, VerifyError> {
        let mut tx = self.pool.begin().await?;
        let head = self.head_in(&mut tx).await?;
        let read = |sql: &'static str| sqlx::query(sql);
        let requests = read(
            "SELECT id, state, requester, subject, entitlement, created_at_us, doc FROM requests",
        )
        .fetch_all(&mut *tx)
        .await?;
        let grants = read(
            "SELECT id, request_id, subject, entitlement, account, state, expires_at_us, doc FROM grants",
        )
        .fetch_all(&mut *tx)
        .await?;
        let findings = read(
            "SELECT id, target, entitlement, account, kind, state, first_seen_at_us, doc FROM findings",
        )
        .fetch_all(&mut *tx)
        .await?;
        let live_grants = read(
            "SELECT g.id, g.state, g.expires_at_us, j.kind, j.due_at_us, j.attempts \
             FROM grants g LEFT JOIN jobs j ON j.object_id = g.id WHERE g.state <> 'revoked'",
        )
        .fetch_all(&mut *tx)
        .await?;
        let tokens = read("SELECT hash, identity, expires_at_us, revoked_at_us FROM tokens")
            .fetch_all(&mut *tx)
            .await?;
        let directory_users = read("SELECT id, user_name, user_name_key, doc FROM directory_users")
            .fetch_all(&mut *tx)
            .await?;
        let directory_groups =
            read("SELECT id, display_name, display_name_key, doc FROM directory_groups")
                .fetch_all(&mut *tx)
                .await?;
        let activations = read(
            "SELECT id, profile, activator, review_state, activated_at_us, review_due_at_us, doc FROM break_glass_activations",
        )
        .fetch_all(&mut *tx)
        .await?;
        let open_reviews = read(
            "SELECT a.id, j.kind FROM break_glass_activations a LEFT JOIN jobs j ON j.object_id = a.id WHERE a.review_state = 'open'",
        )
        .fetch_all(&mut *tx)
        .await?;
        let campaigns =
            read("SELECT id, name, state, created_at_us, due_at_us, doc FROM review_campaigns")
                .fetch_all(&mut *tx)
                .await?;
        let review_items =
            read("SELECT id, campaign, state, subject, decided_by, doc FROM review_items")
                .fetch_all(&mut *tx)
                .await?;
        let review_assignments = read("SELECT reviewer, item, campaign FROM review_assignments")
            .fetch_all(&mut *tx)
            .await?;
        let open_campaigns = read(
            "SELECT c.id, j.kind FROM review_campaigns c LEFT JOIN jobs j ON j.object_id = c.id WHERE c.state = 'open'",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.rollback().await?;
        Ok(Snapshot {
            campaigns,
            review_items,
            review_assignments,
            open_campaigns,
            activations,
            open_reviews,
            directory_users,
            directory_groups,
            head,
            requests,
            grants,
            findings,
            live_grants,
            tokens,
        })
    }
}

/// What marks a break-glass review overdue is its job: every open review must have one.
fn check_open_reviews_have_jobs(rows: &[AnyRow]) -> Result<(), VerifyError> {
    for row in rows {
        let kind: Option<String> = row.try_get("kind")?;
        if kind.as_deref() != Some(JobKind::BreakGlassReviewDue.as_str()) {
            return Err(mismatch(
                "break_glass_activations",
                row.try_get("id")?,
                "is open for review but has no review job: nothing would ever mark it overdue",
            ));
        }
    }
    Ok(())
}

/// What closes a campaign at its deadline is its job: every open campaign must have one.
fn check_open_campaigns_have_jobs(rows: &[AnyRow]) -> Result<(), VerifyError> {
    for row in rows {
        let kind: Option<String> = row.try_get("kind")?;
        if kind.as_deref() != Some(JobKind::ReviewCampaignDue.as_str()) {
            return Err(mismatch(
                "review_campaigns",
                row.try_get("id")?,
                "is open but has no job: its deadline would never apply the default",
            ));
        }
    }
    Ok(())
}

/// Who may decide an item is read from `review_assignments`: each row must be one of
/// the reviewers the ledger named for that item, and each named reviewer must have one
/// (a row added there by someone with database access would let them decide).
fn check_assignments(
    rows: &[AnyRow],
    ledger: &HashMap<writ_domain::ReviewItemId, ReviewItem>,
) -> Result<(), VerifyError> {
    let mut named: usize = ledger.values().map(|item| item.reviewers.len()).sum();
    for row in rows {
        let item: String = row.try_get("item")?;
        let reviewer: String = row.try_get("reviewer")?;
        let campaign: String = row.try_get("campaign")?;
        let on_ledger = item
            .parse()
            .ok()
            .and_then(|id| ledger.get(&id))
            .is_some_and(|i| {
                i.campaign.to_string() == campaign
                    && i.reviewers.iter().any(|r| r.as_str() == reviewer)
            });
        if !on_ledger {
            return Err(mismatch(
                "review_assignments",
                format!("{item}/{reviewer}"),
                "names a reviewer the ledger did not assign to that item",
            ));
        }
        named = named.saturating_sub(1);
    }
    if named > 0 {
        return Err(mismatch(
            "review_assignments",
            String::from("-"),
            format!("{named} reviewer assignment(s) on the ledger have no row"),
        ));
    }
    Ok(())
}

/// What keeps a lease from being permanent is its job, which is bookkeeping and so not
/// on the ledger: every grant that may still hold access must have one. An active
/// grant's revocation must be due by its expiry (unless it is being retried).
fn check_live_grants_have_jobs(rows: &[AnyRow]) -> Result<(), VerifyError> {
    {
        for row in rows {
            let id: String = row.try_get("id")?;
            let state: String = row.try_get("state")?;
            let kind: Option<String> = row.try_get("kind")?;
            let kind = kind.map(|text| JobKind::parse(&text).ok_or(text));
            let problem = match (state.as_str(), kind) {
                (_, None) => Some(format!(
                    "is {state} but has no job: nothing would ever revoke it"
                )),
                (_, Some(Err(unknown))) => Some(format!("has a job of unknown kind {unknown:?}")),
                ("active", Some(Ok(JobKind::RevokeGrant))) => {
                    let due: i64 = row.try_get("due_at_us")?;
                    let expires: i64 = row.try_get("expires_at_us")?;
                    let attempts: i64 = row.try_get("attempts")?;
                    (due > expires && attempts == 0).then(|| {
                        format!(
                            "is active but its revocation is due at {}, after its expiry at {}",
                            Timestamp::from_unix_micros(due),
                            Timestamp::from_unix_micros(expires)
                        )
                    })
                }
                ("pending", Some(Ok(JobKind::ApplyGrant | JobKind::RevokeGrant)))
                | ("revoking" | "failed", Some(Ok(JobKind::RevokeGrant))) => None,
                (_, Some(Ok(other))) => Some(format!(
                    "is {state} but its job is {}, not its revocation",
                    other.as_str()
                )),
            };
            if let Some(problem) = problem {
                return Err(mismatch("grants", id, problem));
            }
        }
        Ok(())
    }
}

/// Every token row was issued on the ledger, to the same identity until the same time,
/// and is revoked exactly when the ledger says so: a row written into the table by
/// someone with database access, or a revocation undone there, is caught.
fn check_tokens(
    rows: &[AnyRow],
    mut ledger: HashMap<String, LedgerToken>,
) -> Result<usize, VerifyError> {
    for row in rows {
        let hash: String = row.try_get("hash")?;
        let id = hash.get(..crate::TOKEN_ID_LEN).unwrap_or(&hash).to_string();
        let Some(issued) = ledger.remove(&id) else {
            return Err(mismatch("tokens", id, "was never issued on the ledger"));
        };
        let identity: String = row.try_get("identity")?;
        let expires_at: i64 = row.try_get("expires_at_us")?;
        let revoked = row.try_get::<Option<i64>, _>("revoked_at_us")?.is_some();
        if identity != issued.identity || expires_at != issued.expires_at.unix_micros() {
            return Err(mismatch(
                "tokens",
                id,
                "differs from its issue on the ledger (identity or expiry)",
            ));
        }
        if revoked != issued.revoked {
            return Err(mismatch(
                "tokens",
                id,
                if issued.revoked {
                    "was revoked on the ledger but is not revoked in the table"
                } else {
                    "is revoked in the table but not on the ledger"
                },
            ));
        }
    }
    if let Some(id) = ledger.keys().next() {
        return Err(mismatch(
            "tokens",
            id.clone(),
            "is on the ledger but missing from the table",
        ));
    }
    Ok(rows.len())
}

/// Checks that a state table holds exactly the records the ledger replay produced:
/// each row's columns agree with its record, each record equals the replayed one, and
/// no replayed record is missing. Returns the number of rows.
fn compare_table<Id, T>(
    table: &'static str,
    rows: &[AnyRow],
    mut replayed: HashMap<Id, T>,
    decode: impl Fn(&AnyRow) -> Result<T, StoreError>,
    columns_agree: impl Fn(&AnyRow, &T) -> Result<bool, sqlx::Error>,
    id_and_state: impl Fn(&T) -> (Id, &str),
) -> Result<usize, VerifyError>
where
    Id: std::hash::Hash + Eq + std::fmt::Display,
    T: PartialEq,
{
    for row in rows {
        let id: String = row.try_get("id")?;
        let record = decode(row).map_err(VerifyError::Store)?;
        let (record_id, state) = id_and_state(&record);
        if record_id.to_string() != id || !columns_agree(row, &record)? {
            return Err(mismatch(table, id, "its columns disagree with its record"));
        }
        match replayed.remove(&record_id) {
            None => return Err(mismatch(table, id, "is not on the ledger")),
            Some(expected) if expected != record => {
                let (_, ledger_state) = id_and_state(&expected);
                return Err(mismatch(
                    table,
                    id,
                    format!("differs from the ledger (ledger: {ledger_state}, table: {state})"),
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(id) = replayed.keys().next() {
        return Err(mismatch(
            table,
            id.to_string(),
            "is on the ledger but missing from the table",
        ));
    }
    Ok(rows.len())
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
                &"alice".parse().expect("an actor"),
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

    /// The chain check as `read` reads it: pages through sqlx, or the file scanned in
    /// `n` stretches.
    #[derive(Debug, Clone, Copy)]
    enum Read {
        Pages,
        Scan(i64),
    }

    async fn chain_by(store: &Store, read: Read) -> Result<VerifyReport, VerifyError> {
        let head = store.consistent_head().await?;
        let verifier = match read {
            Read::Pages => store.read_chain(false, None).await?,
            Read::Scan(stretches) => {
                let file = store.sqlite_file.clone().expect("a SQLite file");
                store.scan_chain(&file, stretches).await?
            }
        };
        store.check_head(&verifier, &head).await?;

        Ok(VerifyReport::chain_only(&verifier))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stretches_checked_apart_join_at_their_boundaries() {
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
                    &"a".parse().expect("an actor"),
                    EventKind::TokenIssued,
                    &serde_json::json!({ "n": written }),
                )
                .await
                .expect("append");
            }
            tx.commit().await.expect("commit");
        }
        // Each read path with its first boundary: the first event of a page, or of the
        // second of three stretches.
        for (read, boundary) in [
            (Read::Pages, EVENT_PAGE_SIZE + 1),
            (Read::Scan(3), (total + 2) / 3 + 1),
        ] {
            tampering_is_located_at(&store, read, boundary, total).await;
        }
    }

    /// Tampers with the events around `boundary` one way after another, checks that
    /// `read` locates each at the boundary, and undoes each.
    async fn tampering_is_located_at(store: &Store, read: Read, boundary: i64, total: i64) {
        let first_bad = |result: Result<VerifyReport, VerifyError>| match result {
            Err(VerifyError::Ledger(error)) => error.seq(),
            other => panic!("{read:?}: expected a ledger error, got {other:?}"),
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
        assert_eq!(chain_by(store, read).await.expect("intact").events, total);
        run(format!(
            "UPDATE events SET actor = 'b' WHERE seq = {boundary}"
        ))
        .await;
        assert_eq!(
            first_bad(chain_by(store, read).await),
            Some(boundary),
            "{read:?}: altered event"
        );
        run(format!(
            "UPDATE events SET actor = 'a' WHERE seq = {boundary}"
        ))
        .await;
        run(format!(
            "CREATE TABLE saved AS SELECT * FROM events WHERE seq IN ({boundary}, {}); \
             UPDATE events SET prev_hash = hash WHERE seq = {boundary}",
            boundary - 1
        ))
        .await;
        assert_eq!(
            first_bad(chain_by(store, read).await),
            Some(boundary),
            "{read:?}: broken link across the boundary"
        );
        run(format!(
            "UPDATE events SET prev_hash = (SELECT prev_hash FROM saved WHERE seq = {boundary}) WHERE seq = {boundary}"
        ))
        .await;
        assert_eq!(chain_by(store, read).await.expect("restored").events, total);
        run(format!("DELETE FROM events WHERE seq = {}", boundary - 1)).await;
        assert_eq!(
            first_bad(chain_by(store, read).await),
            Some(boundary),
            "{read:?}: removed event"
        );
        run(format!(
            "INSERT INTO events SELECT * FROM saved WHERE seq = {}; DROP TABLE saved",
            boundary - 1
        ))
        .await;
        assert_eq!(chain_by(store, read).await.expect("restored").events, total);
    }
}
