//! Reads. None of these take the writer lock.

use std::collections::BTreeSet;

use sqlx::Row;
use writ_domain::ledger::{EventFields, StoredEvent};
use writ_domain::lifecycle::{GrantState, RequestState};
use writ_domain::{Grant, GrantId, Request, RequestId, Timestamp};

use crate::page::{Bind, Page, PageCursor, SortKey};
use crate::{
    Backend, Job, LIST_LIMIT_MAX, Store, StoreError, TokenListing, TokenRecord, grant_from_row,
    parse_grant_id, request_from_row,
};

/// How the request list is ordered (and so how its cursors read).
pub const REQUEST_ORDER: SortKey = SortKey::TimeThenId("created_at_us");
/// How the grant list is ordered.
pub const GRANT_ORDER: SortKey = SortKey::Id;

/// Rows asked for by a list: `limit`, by default and at most `LIST_LIMIT_MAX`.
pub(crate) fn page_size(limit: Option<i64>) -> i64 {
    limit.unwrap_or(LIST_LIMIT_MAX).clamp(1, LIST_LIMIT_MAX)
}

/// The page in `rows` (fetched one beyond it) and, if a row lay beyond, the cursor of
/// the page's last row.
pub(crate) fn page_of<T>(
    mut rows: Vec<sqlx::any::AnyRow>,
    limit: Option<i64>,
    key: SortKey,
    read: impl Fn(&sqlx::any::AnyRow) -> Result<T, StoreError>,
) -> Result<Page<T>, StoreError> {
    let size = usize::try_from(page_size(limit)).unwrap_or(usize::MAX);
    let more = rows.len() > size;
    rows.truncate(size);
    let next = match rows.last() {
        Some(last) if more => {
            let at_us = match key {
                SortKey::TimeThenId(column) => Some(last.try_get::<i64, _>(column)?),
                SortKey::Id => None,
            };
            Some(PageCursor::new(at_us, last.try_get::<String, _>("id")?))
        }
        _ => None,
    };
    Ok(Page {
        items: rows.iter().map(read).collect::<Result<_, _>>()?,
        next,
    })
}

/// `SELECT id, doc FROM grants WHERE id IN ($1, ..., $count)`.
pub(crate) fn grants_by_ids_sql(count: usize) -> String {
    let placeholders: Vec<String> = (1..=count).map(|n| format!("${n}")).collect();
    format!(
        "SELECT id, doc FROM grants WHERE id IN ({})",
        placeholders.join(", ")
    )
}

/// `SELECT id, doc FROM grants WHERE id IN (...)` for these ids (at least one).
pub(crate) fn grants_by_ids_query(
    ids: &[GrantId],
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    // Only numbered placeholders are interpolated.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(grants_by_ids_sql(ids.len())));
    for id in ids {
        query = query.bind(id.to_string());
    }
    query
}

/// The tables whose ids a person may abbreviate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTable {
    Requests,
    Grants,
    Findings,
    Activations,
    Campaigns,
    ReviewItems,
}

/// How many matches of an abbreviated id are read: enough to show an ambiguity.
pub const ID_MATCHES_MAX: i64 = 5;

/// A lease that may give its account access now (pending or active).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveLease {
    pub id: GrantId,
    pub entitlement: String,
    pub account: String,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub state: Option<RequestState>,
    pub requester: Option<String>,
    pub subject: Option<String>,
    /// Only requests whose requester or subject is one of these.
    pub involving: Option<Vec<String>>,
    pub limit: Option<i64>,
    /// Continue after this cursor (a previous page's `next`).
    pub after: Option<PageCursor>,
}

#[derive(Debug, Clone, Default)]
pub struct GrantFilter {
    pub state: Option<GrantState>,
    pub subject: Option<String>,
    pub entitlement: Option<String>,
    /// Only grants whose subject is one of these.
    pub involving: Option<Vec<String>>,
    pub limit: Option<i64>,
    /// Continue after this cursor (a previous page's `next`).
    pub after: Option<PageCursor>,
}

/// An event from a row of its columns (actor and kind parsed; the hash is what the
/// row says, checked by `audit verify`).
pub(crate) fn stored_event_of(row: &sqlx::any::AnyRow) -> Result<StoredEvent, StoreError> {
    let raw = writ_domain::ledger::RawEvent {
        seq: row.try_get("seq")?,
        at: Timestamp::from_unix_micros(row.try_get("at_us")?),
        actor: row.try_get("actor")?,
        kind: row.try_get("kind")?,
        data: row.try_get("data")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    };
    raw.fields()
        .to_stored()
        .map_err(|error| StoreError::Corrupt {
            what: "event",
            id: raw.seq.to_string(),
            problem: error.to_string(),
        })
}

/// `WHERE a = $1 AND b = $2 ...` for the conditions that are set.
pub(crate) fn where_clause(conditions: &[(&str, Option<String>)]) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut values = Vec::new();
    for (column, value) in conditions {
        if let Some(value) = value {
            values.push(value.clone());
            clauses.push(format!("{column} = ${}", values.len()));
        }
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (sql, values)
}

/// Adds ` AND (a IN ($n, ...) OR b IN ($m, ...))` (`WHERE` when `clause` is empty):
/// rows where any of `columns` is one of `names`. Each column gets placeholders of its
/// own, numbered after `values`. No names: no rows.
pub(crate) fn involving_clause(
    clause: &mut String,
    values: &mut Vec<String>,
    columns: &[&str],
    names: &[String],
) {
    let joiner = if clause.is_empty() { "WHERE" } else { " AND" };
    if names.is_empty() {
        clause.push_str(&format!("{joiner} 1 = 0"));
        return;
    }
    let mut any = Vec::new();
    for column in columns {
        let first = values.len() + 1;
        values.extend(names.iter().cloned());
        let placeholders: Vec<String> = (first..first + names.len())
            .map(|n| format!("${n}"))
            .collect();
        any.push(format!("{column} IN ({})", placeholders.join(", ")));
    }
    clause.push_str(&format!("{joiner} ({})", any.join(" OR ")));
}

impl Store {
    /// Ids that start or end with `fragment` (lower-case hex digits and dashes, checked
    /// by the domain's `IdRef`), at most `ID_MATCHES_MAX`. An ending is a scan of the
    /// table; it serves a person typing, not a hot path.
    pub async fn ids_matching(
        &self,
        table: IdTable,
        fragment: &str,
    ) -> Result<Vec<String>, StoreError> {
        if !fragment.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Ok(Vec::new());
        }
        let sql = match table {
            IdTable::Requests => {
                "SELECT id FROM requests WHERE id LIKE $1 OR id LIKE $2 ORDER BY id LIMIT $3"
            }
            IdTable::Grants => {
                "SELECT id FROM grants WHERE id LIKE $1 OR id LIKE $2 ORDER BY id LIMIT $3"
            }
            IdTable::Findings => {
                "SELECT id FROM findings WHERE id LIKE $1 OR id LIKE $2 ORDER BY id LIMIT $3"
            }
            IdTable::Activations => {
                "SELECT id FROM break_glass_activations WHERE id LIKE $1 OR id LIKE $2 ORDER BY id LIMIT $3"
            }
            IdTable::Campaigns => {
                "SELECT id FROM review_campaigns WHERE id LIKE $1 OR id LIKE $2 ORDER BY id LIMIT $3"
            }
            IdTable::ReviewItems => {
                "SELECT id FROM review_items WHERE id LIKE $1 OR id LIKE $2 ORDER BY id LIMIT $3"
            }
        };
        let rows = sqlx::query(sql)
            .bind(format!("{fragment}%"))
            .bind(format!("%{fragment}"))
            .bind(ID_MATCHES_MAX)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| row.try_get::<String, _>(0).map_err(StoreError::from))
            .collect()
    }

    /// Grants past their expiry that may still hold access but have no job: nothing
    /// would ever revoke them (a deleted job row, an accident). At most `limit`.
    pub async fn expired_grants_without_job(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<GrantId>, StoreError> {
        let rows = sqlx::query(
            "SELECT g.id FROM grants g WHERE g.state <> 'revoked' AND g.expires_at_us <= $1 \
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.object_id = g.id) ORDER BY g.expires_at_us LIMIT $2",
        )
        .bind(now.unix_micros())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| parse_grant_id(row.try_get::<String, _>(0)?))
            .collect()
    }

    pub async fn request(&self, id: RequestId) -> Result<Option<Request>, StoreError> {
        let row = sqlx::query("SELECT id, doc FROM requests WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// Requests, newest first, a page at a time.
    pub async fn requests(&self, filter: &RequestFilter) -> Result<Page<Request>, StoreError> {
        let conditions = [
            ("state", filter.state.map(|s| s.as_str().to_string())),
            ("requester", filter.requester.clone()),
            ("subject", filter.subject.clone()),
        ];
        let involving = filter
            .involving
            .as_deref()
            .map(|names| (&["requester", "subject"][..], names));
        let rows = self
            .list(
                "requests",
                &conditions,
                involving,
                REQUEST_ORDER,
                filter.limit,
                filter.after.as_ref(),
            )
            .await?;
        page_of(rows, filter.limit, REQUEST_ORDER, request_from_row)
    }

    /// `SELECT id, doc[, time] FROM <table> WHERE <conditions> [AND after the cursor]
    /// ORDER BY <key> LIMIT <limit + 1>`: one row more than a page, to know whether
    /// another page follows.
    pub(crate) async fn list(
        &self,
        table: &str,
        conditions: &[(&str, Option<String>)],
        involving: Option<(&[&str], &[String])>,
        key: SortKey,
        limit: Option<i64>,
        after: Option<&PageCursor>,
    ) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        let (mut clause, mut values) = where_clause(conditions);
        if let Some((columns, names)) = involving {
            involving_clause(&mut clause, &mut values, columns, names);
        }
        let binds = after.map_or_else(Vec::new, |cursor| {
            cursor.after_clause(&mut clause, values.len() + 1, key)
        });
        let fetch = page_size(limit) + 1;
        let time = match key {
            SortKey::TimeThenId(column) => format!(", {column}"),
            SortKey::Id => String::new(),
        };
        let order = key.order();
        let sql =
            format!("SELECT id, doc{time} FROM {table} {clause} ORDER BY {order} LIMIT {fetch}");
        // Only table and column names writ chose and numbered placeholders are interpolated.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in values {
            query = query.bind(value);
        }
        for bind in binds {
            query = match bind {
                Bind::Int(n) => query.bind(n),
                Bind::Text(text) => query.bind(text),
            };
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    pub async fn grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        let row = sqlx::query("SELECT id, doc FROM grants WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// These grants (those that exist), in no particular order.
    pub async fn grants_by_ids(&self, ids: &[GrantId]) -> Result<Vec<Grant>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = grants_by_ids_query(ids).fetch_all(&self.pool).await?;
        rows.iter().map(grant_from_row).collect()
    }

    /// The grants whose revocation is due by `until` (nearest first, at most `limit`):
    /// what writ keeps at hand to revoke while its ledger cannot be written.
    pub async fn upcoming_revocations(
        &self,
        until: Timestamp,
        limit: i64,
    ) -> Result<Vec<Grant>, StoreError> {
        let rows = sqlx::query(
            "SELECT g.id, g.doc FROM jobs j JOIN grants g ON g.id = j.object_id \
             WHERE j.kind = $1 AND j.due_at_us <= $2 ORDER BY j.due_at_us LIMIT $3",
        )
        .bind(crate::JobKind::RevokeGrant.as_str())
        .bind(until.unix_micros())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(grant_from_row).collect()
    }

    /// The leases that may give these (entitlement, account) holders access now
    /// (pending or active); may include other pairs of the same entitlements and
    /// accounts. One query for a whole batch.
    pub async fn live_leases_of(
        &self,
        holders: &[(&str, &str)],
    ) -> Result<Vec<LiveLease>, StoreError> {
        if holders.is_empty() {
            return Ok(Vec::new());
        }
        let entitlements: BTreeSet<&str> = holders.iter().map(|(e, _)| *e).collect();
        let accounts: BTreeSet<&str> = holders.iter().map(|(_, a)| *a).collect();
        let numbered = |from: usize, count: usize| -> String {
            (from..from + count)
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // Only numbered placeholders are interpolated. Entitlement and account both
        // constrained, so the (entitlement, account, state) index answers it.
        let sql = format!(
            "SELECT id, entitlement, account, expires_at_us FROM grants WHERE entitlement IN ({}) AND account IN ({}) AND state IN (${}, ${})",
            numbered(1, entitlements.len()),
            numbered(entitlements.len() + 1, accounts.len()),
            entitlements.len() + accounts.len() + 1,
            entitlements.len() + accounts.len() + 2,
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in entitlements.iter().chain(accounts.iter()) {
            query = query.bind(value.to_string());
        }
        query = query
            .bind(GrantState::Pending.as_str())
            .bind(GrantState::Active.as_str());
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(LiveLease {
                    id: parse_grant_id(row.try_get("id")?)?,
                    entitlement: row.try_get("entitlement")?,
                    account: row.try_get("account")?,
                    expires_at: Timestamp::from_unix_micros(row.try_get("expires_at_us")?),
                })
            })
            .collect()
    }

    /// Another lease that may still give the grant's account its entitlement. Read
    /// outside any write transaction: callers hold the account's lock, under which
    /// grants for that account are applied and committed.
    pub async fn other_live_grant(&self, grant: &Grant) -> Result<Option<GrantId>, StoreError> {
        let row = sqlx::query(
            "SELECT id FROM grants WHERE entitlement = $1 AND account = $2 AND id <> $3 AND state IN ($4, $5) ORDER BY expires_at_us DESC LIMIT 1",
        )
        .bind(grant.entitlement.as_str())
        .bind(&grant.account)
        .bind(grant.id.to_string())
        .bind(GrantState::Pending.as_str())
        .bind(GrantState::Active.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| parse_grant_id(row.try_get("id")?))
            .transpose()
    }

    /// Grants, newest first, a page at a time.
    pub async fn grants(&self, filter: &GrantFilter) -> Result<Page<Grant>, StoreError> {
        let conditions = [
            ("state", filter.state.map(|s| s.as_str().to_string())),
            ("subject", filter.subject.clone()),
            ("entitlement", filter.entitlement.clone()),
        ];
        let involving = filter
            .involving
            .as_deref()
            .map(|names| (&["subject"][..], names));
        let rows = self
            .list(
                "grants",
                &conditions,
                involving,
                GRANT_ORDER,
                filter.limit,
                filter.after.as_ref(),
            )
            .await?;
        page_of(rows, filter.limit, GRANT_ORDER, grant_from_row)
    }

    /// Whoever holds a grant that may hold access (pending, active).
    pub async fn live_grant_subjects(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT subject FROM grants WHERE state IN ($1, $2)")
            .bind(GrantState::Pending.as_str())
            .bind(GrantState::Active.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| Ok(row.try_get("subject")?)).collect()
    }

    /// Number of grants in each state, for metrics.
    pub async fn grant_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM grants GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("state")?, row.try_get("n")?)))
            .collect()
    }

    pub async fn job(&self, object_id: &str) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query("SELECT object_id, kind, due_at_us, attempts, last_error, escalated_at_us FROM jobs WHERE object_id = $1")
            .bind(object_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Job::from_row).transpose()
    }

    /// Jobs due at `now`, oldest deadline first.
    pub async fn due_jobs(&self, now: Timestamp, limit: i64) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query("SELECT object_id, kind, due_at_us, attempts, last_error, escalated_at_us FROM jobs WHERE due_at_us <= $1 ORDER BY due_at_us LIMIT $2")
            .bind(now.unix_micros())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Job::from_row).collect()
    }

    /// The basis the live grants were last decided on as a whole, if any.
    pub async fn decision_basis(&self) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT basis FROM decision_basis WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get("basis")).transpose()?)
    }

    /// The earliest deadline of any job.
    pub async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let row = sqlx::query("SELECT MIN(due_at_us) AS due FROM jobs")
            .fetch_one(&self.pool)
            .await?;
        Ok(row
            .try_get::<Option<i64>, _>("due")?
            .map(Timestamp::from_unix_micros))
    }

    /// Failing revocations that were escalated and still fail, for metrics.
    pub async fn escalated_jobs(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE escalated_at_us IS NOT NULL")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Jobs that have failed at least once, for metrics and the API.
    pub async fn failing_jobs(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE attempts > 0")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    pub async fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT hash, identity, expires_at_us, revoked_at_us FROM tokens WHERE hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(TokenRecord {
                hash: row.try_get("hash")?,
                identity: row.try_get("identity")?,
                expires_at: Timestamp::from_unix_micros(row.try_get("expires_at_us")?),
                revoked_at: row
                    .try_get::<Option<i64>, _>("revoked_at_us")?
                    .map(Timestamp::from_unix_micros),
            })
        })
        .transpose()
    }

    /// Tokens, newest first: all, or those of one identity.
    pub async fn tokens(&self, identity: Option<&str>) -> Result<Vec<TokenListing>, StoreError> {
        let rows = sqlx::query(
            "SELECT hash, identity, created_at_us, expires_at_us, revoked_at_us, keyed FROM tokens \
             WHERE $1 = '' OR identity = $1 ORDER BY created_at_us DESC, hash",
        )
        .bind(identity.unwrap_or_default())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let hash: String = row.try_get("hash")?;
                Ok(TokenListing {
                    id: hash.get(..crate::TOKEN_ID_LEN).unwrap_or(&hash).to_string(),
                    identity: row.try_get("identity")?,
                    created_at: Timestamp::from_unix_micros(row.try_get("created_at_us")?),
                    expires_at: Timestamp::from_unix_micros(row.try_get("expires_at_us")?),
                    revoked_at: row
                        .try_get::<Option<i64>, _>("revoked_at_us")?
                        .map(Timestamp::from_unix_micros),
                    usable_hash: row.try_get::<i64, _>("keyed")? != 0,
                })
            })
            .collect()
    }

    /// Whether a webhook delivery was acted on before.
    pub async fn delivery_seen(&self, system: &str, delivery_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 AS seen FROM itsm_deliveries WHERE system = $1 AND delivery_id = $2",
        )
        .bind(system)
        .bind(delivery_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// The request a ticket backs (a ticket backs at most one).
    pub async fn ticket_request(
        &self,
        system: &str,
        ticket_key: &str,
    ) -> Result<Option<RequestId>, StoreError> {
        let row = sqlx::query(
            "SELECT request_id FROM ticket_links WHERE system = $1 AND ticket_key = $2",
        )
        .bind(system)
        .bind(ticket_key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let id: String = row.try_get("request_id")?;
            id.parse()
                .map_err(|e: writ_domain::InvalidId| StoreError::Corrupt {
                    what: "ticket link",
                    id,
                    problem: e.to_string(),
                })
        })
        .transpose()
    }

    /// The text of a page of events with `seq > after` (see `parse_event_page`).
    ///
    /// A page comes back as one text built by the database, not one row per event:
    /// each row is a hand-off between sqlx's worker thread and the caller, and for
    /// `audit verify` those hand-offs, not hashing, were the cost. Each event is a
    /// header of byte lengths followed by the raw texts (see `parse_event_page`), so
    /// the bytes the hashes cover come back exactly, with no escaping to undo.
    pub(crate) async fn event_page(&self, after: i64, limit: i64) -> Result<EventPage, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT group_concat(printf('%d,%d,%d,%d,%d,%d,%d;%s%s%s%s%s', seq, at_us, octet_length(actor), \
                 octet_length(kind), octet_length(data), octet_length(prev_hash), octet_length(hash), \
                 actor, kind, data, prev_hash, hash), '') AS page \
                 FROM (SELECT seq, at_us, actor, kind, data, prev_hash, hash FROM events WHERE seq > $1 ORDER BY seq LIMIT $2)"
            }
            Backend::Postgres => {
                "SELECT string_agg(seq || ',' || at_us || ',' || octet_length(actor) || ',' || octet_length(kind) \
                 || ',' || octet_length(data) || ',' || octet_length(prev_hash) || ',' || octet_length(hash) \
                 || ';' || actor || kind || data || prev_hash || hash, '' ORDER BY seq) AS page \
                 FROM (SELECT seq, at_us, actor, kind, data, prev_hash, hash FROM events WHERE seq > $1 ORDER BY seq LIMIT $2) AS page_events"
            }
        };
        let row = sqlx::query(sql)
            .bind(after)
            .bind(limit)
            .fetch_one(&self.pool)
            .await?;
        Ok(EventPage(row))
    }

    /// Events with `seq > after`, oldest first.
    pub async fn events(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        let page = self.event_page(after, limit).await?;
        let raw = parse_event_page(page.text()?).map_err(|problem| StoreError::Corrupt {
            what: "event page",
            id: format!("after {after}"),
            problem,
        })?;
        raw.into_iter()
            .map(|fields| {
                fields.to_stored().map_err(|error| StoreError::Corrupt {
                    what: "event",
                    id: fields.seq.to_string(),
                    problem: error.to_string(),
                })
            })
            .collect()
    }

    /// The events about any of `records` (`events.record`), oldest first, at most
    /// `limit`: one grant's or request's history, read by index.
    pub async fn events_about(
        &self,
        records: &[String],
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=records.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT seq, at_us, actor, kind, data, prev_hash, hash FROM events WHERE record IN ({}) ORDER BY seq LIMIT ${}",
            placeholders.join(", "),
            records.len() + 1
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for record in records {
            query = query.bind(record.as_str());
        }
        let rows = query.bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(stored_event_of).collect()
    }

    /// The grants an auditor selects for evidence, oldest first: those of requests
    /// made since `since` (when given), to `subject`, of `entitlement`, citing `ticket`
    /// (SYSTEM, KEY) in a configured ticketing system — each only when given.
    pub async fn grants_selected(
        &self,
        subject: Option<&str>,
        entitlement: Option<&str>,
        ticket: Option<(&str, &str)>,
        since: Option<Timestamp>,
    ) -> Result<Vec<GrantId>, StoreError> {
        let rows = sqlx::query(
            "SELECT g.id FROM grants g JOIN requests r ON r.id = g.request_id \
             WHERE (CAST($1 AS TEXT) IS NULL OR g.subject = $1) AND (CAST($2 AS TEXT) IS NULL OR g.entitlement = $2) \
             AND (CAST($3 AS TEXT) IS NULL OR g.request_id IN (SELECT request_id FROM ticket_links WHERE system = $3 AND ticket_key = $4)) \
             AND r.created_at_us >= $5 ORDER BY g.id",
        )
        .bind(subject)
        .bind(entitlement)
        .bind(ticket.map(|(system, _)| system))
        .bind(ticket.map(|(_, key)| key))
        .bind(since.map_or(i64::MIN, Timestamp::unix_micros))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                id.parse()
                    .map_err(|e: writ_domain::InvalidId| StoreError::Corrupt {
                        what: "grant",
                        id: id.clone(),
                        problem: e.to_string(),
                    })
            })
            .collect()
    }

    /// The newest `ledger.checkpoint` event, if any (by the `events.record` index).
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredEvent>, StoreError> {
        let row = sqlx::query(
            "SELECT seq, at_us, actor, kind, data, prev_hash, hash FROM events WHERE record = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(writ_domain::ledger::LEDGER_RECORD)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(stored_event_of).transpose()
    }

    /// The highest sequence number in the events table (0 when empty).
    pub async fn last_event_seq(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS last FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("last")?)
    }

    /// The hash of event `seq`, if there is one.
    pub async fn event_hash(&self, seq: i64) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT hash FROM events WHERE seq = $1")
            .bind(seq)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get("hash")).transpose()?)
    }

    /// The sequence number and hash of the last event, as the head row records them.
    pub async fn head(&self) -> Result<(i64, String), StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM ledger_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get("seq")?, row.try_get("hash")?))
    }
}

/// A page of events as the database built it (see `parse_event_page`). The row is kept
/// and its text borrowed: a page is megabytes, and copying it out was measurable.
pub(crate) struct EventPage(sqlx::any::AnyRow);

impl EventPage {
    pub(crate) fn text(&self) -> Result<&str, StoreError> {
        Ok(self
            .0
            .try_get::<Option<&str>, _>("page")?
            .unwrap_or_default())
    }
}

/// Splits a page of events, oldest first: per event `seq,at_us,len,len,len,len,len;`
/// then actor, kind, data, prev_hash and hash, each exactly `len` bytes.
pub(crate) fn parse_event_page(page: &str) -> Result<Vec<EventFields<'_>>, String> {
    let mut events = Vec::new();
    let mut rest = page;
    while !rest.is_empty() {
        let (header, body) = rest.split_once(';').ok_or("an event header has no end")?;
        let mut numbers = [0i64; 7];
        let mut fields = header.split(',');
        for number in &mut numbers {
            let field = fields
                .next()
                .ok_or_else(|| format!("bad header {header:?}"))?;
            *number = field
                .parse()
                .map_err(|e| format!("bad header {header:?}: {e}"))?;
        }
        if fields.next().is_some() {
            return Err(format!("bad header {header:?}"));
        }
        let [seq, at_us, actor, kind, data, prev_hash, hash] = &numbers;
        let mut body = body;
        let mut take = |length: i64| -> Result<&str, String> {
            let length = usize::try_from(length).map_err(|_| "negative length".to_string())?;
            let text = body
                .get(..length)
                .ok_or_else(|| format!("event {seq} is cut short"))?;
            body = &body[length..];
            Ok(text)
        };
        events.push(EventFields {
            seq: *seq,
            at: Timestamp::from_unix_micros(*at_us),
            actor: take(*actor)?,
            kind: take(*kind)?,
            data: take(*data)?,
            prev_hash: take(*prev_hash)?,
            hash: take(*hash)?,
        });
        rest = body;
    }
    // SQLite keeps the subquery's order in practice; the contract is ours to keep.
    if !events.is_sorted_by_key(|event| event.seq) {
        events.sort_by_key(|event| event.seq);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_pages_split_on_byte_lengths_not_separators() {
        let page = "1,5,1,3,12,2,2;a;,k{\"x\":\"é;,\"}p1h12,6,0,1,2,2,2;k{}h1h2";
        let events = parse_event_page(page).expect("parses");
        assert_eq!(events.len(), 2);
        assert_eq!(
            (events[0].seq, events[0].actor, events[0].kind),
            (1, "a", ";,k")
        );
        assert_eq!(events[0].data, "{\"x\":\"é;,\"}");
        assert_eq!((events[0].prev_hash, events[0].hash), ("p1", "h1"));
        assert_eq!(
            (events[1].actor, events[1].data, events[1].hash),
            ("", "{}", "h2")
        );
        assert!(
            parse_event_page("1,5,1,3,12,2,2;a").is_err(),
            "a cut-short page is refused"
        );
        assert!(parse_event_page("1,5,1;abc").is_err());
    }
}

#[cfg(test)]
mod fuzz {
    //! The event page decoder reads text the database built; fed anything, it answers
    //! with events or an error, never a panic, and never reads past the page.

    use proptest::prelude::*;

    use super::parse_event_page;

    fn cases() -> u32 {
        std::env::var("WRIT_FUZZ_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(2_000)
    }

    /// A header with lengths around the fields that follow it.
    fn near_page() -> impl Strategy<Value = String> {
        (
            any::<i64>(),
            prop::collection::vec(-3i64..80, 5),
            "\\PC{0,80}",
            0..3usize,
        )
            .prop_map(|(seq, lengths, body, extra)| {
                let lengths: Vec<String> = lengths.iter().map(i64::to_string).collect();
                format!("{seq},0,{};{body}{}", lengths.join(","), ",".repeat(extra))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        #[test]
        fn any_page_parses_or_is_refused(page in prop_oneof!["\\PC{0,200}", near_page()]) {
            if let Ok(events) = parse_event_page(&page) {
                let taken: usize = events
                    .iter()
                    .map(|e| e.actor.len() + e.kind.len() + e.data.len() + e.prev_hash.len() + e.hash.len())
                    .sum();
                prop_assert!(taken <= page.len());
            }
        }
    }
}
