//! `/openapi.json`, generated from the handlers and types by utoipa.

use axum::Json;
use utoipa::OpenApi;

use crate::handlers;

#[derive(OpenApi)]
#[openapi(
    info(title = "writ", description = "Access control plane: requests, Cedar decisions, time-bound grants, a verifiable ledger."),
    paths(
        handlers::create_request,
        handlers::list_requests,
        handlers::get_request,
        handlers::cancel_request,
        handlers::approve_request,
        handlers::reject_request,
        handlers::list_entitlements,
        handlers::list_grants,
        handlers::get_grant,
        handlers::revoke_grant,
        handlers::collect_credential,
        handlers::audit,
        handlers::audit_verify,
        handlers::itsm_webhook,
        handlers::itsm_outbox,
        handlers::list_identities,
        crate::findings::reconcile,
        crate::findings::list_findings,
        crate::findings::get_finding,
        crate::findings::accept_finding,
        crate::tokens::list_tokens,
        crate::tokens::revoke_token,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

pub async fn serve(_: crate::auth::Authenticated) -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
