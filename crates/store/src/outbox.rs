//! The outbox: evidence for ticketing systems, written with the ledger event it reports
//! and delivered later, in order per ticket, at least once; and the cursors of
//! notification sinks, for which the ledger itself is the outbox.

use sqlx::Row;
use sqlx::any::AnyRow;
use writ_domain::Timestamp;

use crate::write::Arg;
use crate::{Store, StoreError, WriteTx};

/// What to do on the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OutboxAction {
    /// Add an internal note (Jira internal comment, ServiceNow work note).
    Note,
    /// Add the note and close the ticket (the access it asked for is gone, verified).
    Close,
    /// Open a new incident (a break-glass activation): `body` is the incident as JSON,
    /// `ticket_key` the activation's id.
    OpenIncident,
}

impl OutboxAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Note => "note",
            Self::Close => "close",
            Self::OpenIncident => "open_incident",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Note, Self::Close, Self::OpenIncident]
            .into_iter()
            .find(|action| action.as_str() == text)
    }
}

/// One piece of evidence for one ticket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutboxEntry {
    /// The ledger event it reports.
    pub seq: i64,
    pub system: String,
    pub ticket_key: String,
    /// The id the system's API uses for the ticket (ServiceNow sys_id, Jira issue id).
    pub ticket_id: String,
    pub action: OutboxAction,
    pub body: String,
    pub created_at: Timestamp,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
}

/// New evidence to queue.
#[derive(Debug, Clone)]
pub struct NewOutboxEntry<'a> {
    pub seq: i64,
    pub system: &'a str,
    pub ticket_key: &'a str,
    pub ticket_id: &'a str,
    pub action: OutboxAction,
    pub body: &'a str,
}

const COLUMNS: &str = "seq, system, ticket_key, ticket_id, action, body, created_at_us, attempts, next_attempt_at_us, last_error, delivered_at_us";

fn entry_from_row(row: &AnyRow) -> Result<OutboxEntry, StoreError> {
    let action: String = row.try_get("action")?;
    let seq: i64 = row.try_get("seq")?;
    Ok(OutboxEntry {
        seq,
        system: row.try_get("system")?,
        ticket_key: row.try_get("ticket_key")?,
        ticket_id: row.try_get("ticket_id")?,
        action: OutboxAction::parse(&action).ok_or_else(|| StoreError::Corrupt {
            what: "outbox entry",
            id: seq.to_string(),
            problem: format!("unknown action {action:?}"),
        })?,
        body: row.try_get("body")?,
        created_at: Timestamp::from_unix_micros(row.try_get("created_at_us")?),
        attempts: row.try_get("attempts")?,
        next_attempt_at: Timestamp::from_unix_micros(row.try_get("next_attempt_at_us")?),
        last_error: row.try_get("last_error")?,
        delivered_at: row
            .try_get::<Option<i64>, _>("delivered_at_us")?
            .map(Timestamp::from_unix_micros),
    })
}

impl WriteTx<'_> {
    /// Queues evidence, in the transaction of the event it reports.
    pub async fn queue_outbox(
        &mut self,
        entry: NewOutboxEntry<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.buffer_statement(
            "INSERT INTO outbox (seq, system, ticket_key, ticket_id, action, body, created_at_us, attempts, next_attempt_at_us, last_error, delivered_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $7, NULL, NULL)",
            vec![
                Arg::Int(entry.seq),
                Arg::Text(entry.system.to_string()),
                Arg::Text(entry.ticket_key.to_string()),
                Arg::Text(entry.ticket_id.to_string()),
                Arg::Text(entry.action.as_str().to_string()),
                Arg::Text(entry.body.to_string()),
                Arg::Int(now.unix_micros()),
            ],
        );
        Ok(())
    }

    pub async fn outbox_delivered(&mut self, seq: i64, at: Timestamp) -> Result<(), StoreError> {
        self.buffer_statement(
            "UPDATE outbox SET delivered_at_us = $2, attempts = attempts + 1, last_error = NULL WHERE seq = $1",
            vec![Arg::Int(seq), Arg::Int(at.unix_micros())],
        );
        Ok(())
    }

    pub async fn outbox_failed(
        &mut self,
        seq: i64,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> Result<(), StoreError> {
        self.buffer_statement(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at_us = $2, last_error = $3 WHERE seq = $1",
            vec![Arg::Int(seq), Arg::Int(next_attempt_at.unix_micros()), Arg::OptionalText(Some(error.to_string()))],
        );
        Ok(())
    }
}

impl Store {
    /// Undelivered entries, oldest first.
    pub async fn undelivered_outbox(&self, limit: i64) -> Result<Vec<OutboxEntry>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE delivered_at_us IS NULL ORDER BY seq LIMIT $1"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(limit.clamp(1, crate::LIST_LIMIT_MAX))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Entries about one ticket, oldest first (delivered or not).
    pub async fn outbox_for_ticket(
        &self,
        system: &str,
        ticket_key: &str,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE system = $1 AND ticket_key = $2 ORDER BY seq"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(system)
            .bind(ticket_key)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// How many entries wait for delivery.
    pub async fn outbox_backlog(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE delivered_at_us IS NULL")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }
}

/// Where a notification sink is in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotifyCursor {
    pub sink: String,
    /// The last event sent (or skipped as not wanted).
    pub last_seq: i64,
    /// Failed attempts since the last success.
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
}

impl WriteTx<'_> {
    /// Starts a sink at `seq` unless it has a cursor already.
    pub async fn start_cursor(
        &mut self,
        sink: &str,
        seq: i64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.buffer_statement(
            "INSERT INTO notify_cursors (sink, last_seq, attempts, next_attempt_at_us, last_error) VALUES ($1, $2, 0, $3, NULL) \
             ON CONFLICT (sink) DO NOTHING",
            vec![Arg::Text(sink.to_string()), Arg::Int(seq), Arg::Int(now.unix_micros())],
        );
        Ok(())
    }

    pub async fn advance_cursor(&mut self, sink: &str, seq: i64) -> Result<(), StoreError> {
        self.buffer_statement(
            "UPDATE notify_cursors SET last_seq = $2, attempts = 0, last_error = NULL WHERE sink = $1 AND last_seq < $2",
            vec![Arg::Text(sink.to_string()), Arg::Int(seq)],
        );
        Ok(())
    }

    pub async fn cursor_failed(
        &mut self,
        sink: &str,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> Result<(), StoreError> {
        self.buffer_statement(
            "UPDATE notify_cursors SET attempts = attempts + 1, next_attempt_at_us = $2, last_error = $3 WHERE sink = $1",
            vec![Arg::Text(sink.to_string()), Arg::Int(next_attempt_at.unix_micros()), Arg::OptionalText(Some(error.to_string()))],
        );
        Ok(())
    }
}

impl Store {
    pub async fn notify_cursors(&self) -> Result<Vec<NotifyCursor>, StoreError> {
        let rows = sqlx::query("SELECT sink, last_seq, attempts, next_attempt_at_us, last_error FROM notify_cursors ORDER BY sink")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(NotifyCursor {
                    sink: row.try_get("sink")?,
                    last_seq: row.try_get("last_seq")?,
                    attempts: row.try_get("attempts")?,
                    next_attempt_at: Timestamp::from_unix_micros(
                        row.try_get("next_attempt_at_us")?,
                    ),
                    last_error: row.try_get("last_error")?,
                })
            })
            .collect()
    }
}
