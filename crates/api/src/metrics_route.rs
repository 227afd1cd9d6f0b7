//! `/metrics` in Prometheus text. Gauges that describe stored state are read from the
//! store at scrape time, so they are right even after a restart.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
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
    state.engine.publish_gauges().await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    ))
}
