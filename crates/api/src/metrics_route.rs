//! `/metrics` in Prometheus text. Gauges that describe stored state are read from the
//! store at scrape time, so they are right even after a restart.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use writ_domain::lifecycle::GrantState;
use writ_domain::{FindingKind, FindingState};
use writ_engine::metrics_names;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;

const LAG_BUCKETS_SECONDS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
];

/// Installs the process-wide metrics recorder once and returns its handle; every
/// metric is described, and its counters are at zero, from then on.
pub fn install_metrics_recorder(config: &writ_config::Config) -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = builder
                .set_buckets_for_metric(
                    Matcher::Full(metrics_names::REVOCATION_LAG.to_string()),
                    LAG_BUCKETS_SECONDS,
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; then ours still renders its own.
            let _ = metrics::set_global_recorder(recorder);
            metrics_names::describe_all(config);
            handle
        })
        .clone()
}

/// `GET /metrics` on the API's listener: any identity's token.
#[utoipa::path(get, path = "/metrics",
    responses((status = 200, description = "Prometheus text format 0.0.4 (docs/api.md lists the metrics)",
        content_type = "text/plain", body = String)))]
pub async fn metrics(
    State(state): State<AppState>,
    Authenticated(_caller): Authenticated,
) -> Result<impl IntoResponse, ApiError> {
    render(&state).await
}

/// `GET /metrics` on `server.metrics_listen`: no token (the address is for a scraper on
/// a private network; nothing else is served there).
pub async fn metrics_unauthenticated(
    State(state): State<AppState>,
) -> Result<impl IntoResponse, ApiError> {
    render(&state).await
}

async fn render(state: &AppState) -> Result<impl IntoResponse + use<>, ApiError> {
    let store = state.engine.store();
    let counts = store
        .grant_counts()
        .await
        .map_err(writ_engine::EngineError::from)?;
    for grant_state in [
        GrantState::Pending,
        GrantState::Active,
        GrantState::Revoking,
        GrantState::Revoked,
        GrantState::Failed,
    ] {
        let count = counts
            .iter()
            .find(|(s, _)| s == grant_state.as_str())
            .map_or(0, |(_, n)| *n);
        metrics::gauge!(metrics_names::GRANTS, "state" => grant_state.as_str()).set(count as f64);
    }
    let failed = counts
        .iter()
        .find(|(s, _)| s == GrantState::Failed.as_str())
        .map_or(0, |(_, n)| *n);
    metrics::gauge!(metrics_names::FAILED_REVOCATIONS).set(failed as f64);
    let backlog = store
        .outbox_backlog()
        .await
        .map_err(writ_engine::EngineError::from)?;
    metrics::gauge!(metrics_names::OUTBOX_BACKLOG).set(backlog as f64);
    let findings = store
        .finding_counts()
        .await
        .map_err(writ_engine::EngineError::from)?;
    for kind in FindingKind::ALL {
        for finding_state in FindingState::ALL {
            let count = findings
                .iter()
                .find(|(k, s, _)| k == kind.as_str() && s == finding_state.as_str())
                .map_or(0, |(_, _, n)| *n);
            metrics::gauge!(metrics_names::FINDINGS, "kind" => kind.as_str(), "state" => finding_state.as_str())
                .set(count as f64);
        }
    }
    let escalated = store
        .escalated_jobs()
        .await
        .map_err(writ_engine::EngineError::from)?;
    metrics::gauge!(metrics_names::ESCALATED_REVOCATIONS).set(escalated as f64);
    let (writes, commits) = store.commit_counts();
    metrics::counter!(metrics_names::WRITE_TRANSACTIONS).absolute(writes);
    metrics::counter!(metrics_names::DATABASE_COMMITS).absolute(commits);
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    ))
}
