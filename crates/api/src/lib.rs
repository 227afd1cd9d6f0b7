//! writ's REST API, as docs/api.md describes it and `/openapi.json` specifies it.
//!
//! Architecture invariant: handlers parse and authenticate, call one engine method,
//! and shape the answer. No business rule lives here.

mod audit;
mod auth;
pub mod authzen;
pub mod authzen_requests;
mod break_glass;
mod error;
mod findings;
mod grants;
mod handlers;
mod identities;
mod itsm_routes;
mod json;
pub mod limits;
mod mcp;
mod metrics_route;
pub mod openapi;
mod policy;
mod reports;
mod requests;
mod reviews;
mod scim;
mod segment;
mod signin;
mod tokens;
mod ui;

use std::sync::Arc;

use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::LatencyUnit;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use writ_engine::Engine;

pub use auth::ClientCertificateId;
pub use grants::GrantView;
pub use metrics_route::install_metrics_recorder;

/// Request bodies larger than this are refused with 413.
pub const BODY_SIZE_MAX_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub limits: Arc<limits::RateLimits>,
    /// One `GET /v1/audit/verify` at a time: each reads the whole ledger.
    pub verifying: Arc<tokio::sync::Semaphore>,
}

/// More requests at once than `server.concurrency_limit`: refused at once, not queued.
async fn overloaded(_: tower::BoxError) -> error::ApiError {
    let mut error = error::ApiError::new(
        writ_engine::ErrorCode::Overloaded,
        "writ is handling as many requests as server.concurrency_limit allows; try again shortly",
    );
    error.retry_after_seconds = Some(1);
    error
}

/// `server.metrics_listen`'s surface: `/metrics` without a token, nothing else.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_route::metrics_unauthenticated))
        .fallback(handlers::not_found)
        .layer(SetResponseHeaderLayer::overriding(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        ))
        .with_state(state)
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let limits = state.engine.config().http.clone();
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/metrics", get(metrics_route::metrics))
        .route("/openapi.json", get(openapi::serve))
        .route("/.well-known/authzen-configuration", get(authzen::metadata))
        .route("/access/v1/evaluation", post(authzen::evaluation))
        .route("/access/v1/evaluations", post(authzen::evaluations))
        .route("/access/v1/requests", post(authzen_requests::submit))
        .route("/access/v1/requests/{id}", get(authzen_requests::status))
        .route(
            "/access/v1/requests/{id}/cancel",
            post(authzen_requests::cancel).delete(authzen_requests::cancel),
        )
        .route("/access/v1/jwks", get(authzen_requests::jwks))
        .route("/access/v1/request-schema", get(authzen_requests::request_schema))
        .route("/v1/requests", post(requests::create_request).get(requests::list_requests))
        .route("/v1/requests/preview", post(requests::preview_request))
        .route("/v1/requests/{id}", get(requests::get_request))
        .route("/v1/requests/{id}/cancel", post(requests::cancel_request))
        .route("/v1/requests/{id}/approve", post(requests::approve_request))
        .route("/v1/requests/{id}/reject", post(requests::reject_request))
        .route("/v1/entitlements", get(requests::list_entitlements))
        .route(
            "/v1/entitlements/{target}/{name}",
            get(requests::show_entitlement),
        )
        .route("/v1/reports/{name}", get(reports::report))
        .route("/v1/break-glass/{profile}", post(break_glass::activate))
        .route("/v1/break-glass/activations", get(break_glass::list_activations))
        .route("/v1/break-glass/activations/{id}", get(break_glass::get_activation))
        .route(
            "/v1/break-glass/activations/{id}/sign-off",
            post(break_glass::sign_off),
        )
        .route("/v1/reviews", get(reviews::list).post(reviews::start))
        .route("/v1/reviews/{id}", get(reviews::get))
        .route("/v1/reviews/{id}/items", get(reviews::campaign_items))
        .route("/v1/review-items", get(reviews::list_items))
        .route("/v1/review-items/{id}", get(reviews::get_item))
        .route("/v1/review-items/{id}/decide", post(reviews::decide))
        .route("/v1/grants", get(grants::list_grants))
        .route("/v1/grants/{id}", get(grants::get_grant))
        .route("/v1/grants/{id}/evidence", get(grants::grant_evidence))
        .route("/v1/grants/{id}/revoke", post(grants::revoke_grant))
        .route("/v1/grants/{id}/extend", post(grants::extend_grant))
        .route("/v1/grants/{id}/credential", post(grants::collect_credential))
        .route("/v1/audit", get(audit::audit))
        .route("/v1/audit/verify", get(audit::audit_verify))
        .route("/v1/identities", get(identities::list_identities))
        .route("/v1/whoami", get(identities::whoami))
        .route("/v1/auth/providers", get(signin::providers))
        .route("/auth/login", get(signin::login))
        .route("/auth/callback", get(signin::callback))
        .route("/auth/session", get(signin::session))
        .route("/auth/logout", post(signin::logout))
        .nest_service(
            "/mcp",
            tower::ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    mcp::authenticate,
                ))
                .service(mcp::service(state.clone())),
        )
        .route("/v1/reconcile", post(findings::reconcile))
        .route("/v1/policy/reload", post(policy::reload))
        .route("/v1/findings", get(findings::list_findings))
        .route("/v1/findings/{id}", get(findings::get_finding))
        .route("/v1/findings/{id}/accept", post(findings::accept_finding))
        .route("/v1/itsm/outbox", get(itsm_routes::itsm_outbox))
        .route("/v1/tokens", get(tokens::list_tokens))
        .route("/v1/tokens/{id}/revoke", post(tokens::revoke_token))
        .route(
            "/v1/itsm/{name}/webhook",
            post(itsm_routes::itsm_webhook)
                .layer(DefaultBodyLimit::max(itsm_routes::WEBHOOK_BODY_SIZE_MAX_BYTES)),
        )
        .nest("/scim/v2", scim::router())
        .route("/", get(|| async { ui::see_other("/ui") }))
        .nest("/ui", ui::router())
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_SIZE_MAX_BYTES))
        // Answers carry tokens, credentials and who-has-what: no cache (a browser's or a
        // proxy's) keeps any of them.
        .layer(SetResponseHeaderLayer::overriding(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        ))
        // A request that takes too long, reading its body included, ends with 408; the
        // concurrency limit, added after and so outside it, refuses one more than it
        // allows at once (503) instead of queueing it.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(u64::try_from(limits.request_timeout_seconds).unwrap_or(30)),
        ))
        .layer(
            tower::ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(limits.concurrency_limit)),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        // One log event per answered request (an access log), in the request's span:
        // method, path and request id, with the status and how long it took.
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id = %id)
        }).on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Millis)))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}
