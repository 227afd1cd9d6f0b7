//! `/v1/itsm`: ticketing systems' webhooks and the evidence outbox.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use writ_engine::{WebhookAction, WebhookOutcome};
use writ_store::{NotifyCursor, OutboxEntry};

use crate::AppState;
use crate::auth::{Authenticated, WebhookSender};
use crate::error::ApiError;
use crate::segment::Segment;

/// Webhook bodies may carry a whole ticket; they get a larger limit than API calls.
pub const WEBHOOK_BODY_SIZE_MAX_BYTES: usize = 1024 * 1024;

#[utoipa::path(post, path = "/v1/itsm/{name}/webhook",
    params(("name" = String, Path, description = "the `[[itsm]]` entry's name")),
    request_body(content = Object, description = "the ticketing system's webhook payload, signed (Jira: X-Hub-Signature; ServiceNow: X-Writ-Timestamp and X-Writ-Signature)"),
    security(()),
    responses((status = 201, body = WebhookOutcome, description = "a request was made from the ticket"),
        (status = 200, body = WebhookOutcome, description = "a duplicate delivery, or a ticket not (yet) in a requesting state"),
        (status = 401, description = "unsigned, forged or stale; the rejection is on the ledger"),
        (status = 404), (status = 422), (status = 503, description = "the ticketing system did not answer; nothing was recorded")))]
pub async fn itsm_webhook(
    State(state): State<AppState>,
    // Before any work (even reading the body): checking a signature and reading a
    // ticket cost writ and the ticketing system, and an unsigned sender can ask at will.
    _within_limit: WebhookSender,
    Segment(name): Segment,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<WebhookOutcome>), ApiError> {
    let headers: HashMap<String, String> = headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
        })
        .collect();
    let outcome = state.engine.take_webhook(&name, &headers, &body).await?;
    let status = match outcome.action {
        WebhookAction::Created => StatusCode::CREATED,
        WebhookAction::Duplicate
        | WebhookAction::Ignored
        | WebhookAction::Revoked
        | WebhookAction::Approvals
        | WebhookAction::Cancelled => StatusCode::OK,
    };
    Ok((status, Json(outcome)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutboxView {
    /// Evidence waiting for delivery.
    pub backlog: i64,
    /// The oldest undelivered entries (at most 1,000), with attempts and the last error.
    pub entries: Vec<OutboxEntry>,
    /// Notification sinks: how far each is through the ledger.
    pub sinks: Vec<SinkView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SinkView {
    #[serde(flatten)]
    pub cursor: NotifyCursor,
    /// Ledger events after the cursor (some may be filtered out rather than sent).
    pub behind: i64,
}

#[utoipa::path(get, path = "/v1/itsm/outbox", responses((status = 200, body = OutboxView), (status = 401)))]
pub async fn itsm_outbox(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<OutboxView>, ApiError> {
    let status = state.engine.outbox_status(&caller).await?;
    Ok(Json(OutboxView {
        backlog: status.backlog,
        entries: status.entries,
        sinks: status
            .sinks
            .into_iter()
            .map(|cursor| SinkView {
                behind: (status.head - cursor.last_seq).max(0),
                cursor,
            })
            .collect(),
    }))
}
