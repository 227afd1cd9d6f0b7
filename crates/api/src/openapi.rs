//! `/openapi.json`, generated from the handlers and types by utoipa.

use axum::Json;
use utoipa::OpenApi;

use crate::{audit, grants, handlers, identities, itsm_routes, requests};

#[derive(OpenApi)]
#[openapi(
    info(title = "writ", description = "Access control plane: requests, Cedar decisions, time-bound grants, a verifiable ledger."),
    paths(
        handlers::healthz,
        crate::metrics_route::metrics,
        serve,
        requests::create_request,
        requests::preview_request,
        requests::list_requests,
        requests::get_request,
        requests::cancel_request,
        requests::approve_request,
        requests::reject_request,
        requests::list_entitlements,
        requests::show_entitlement,
        grants::list_grants,
        grants::get_grant,
        grants::grant_evidence,
        grants::revoke_grant,
        grants::extend_grant,
        grants::collect_credential,
        audit::audit,
        audit::audit_verify,
        itsm_routes::itsm_webhook,
        itsm_routes::itsm_outbox,
        identities::list_identities,
        identities::whoami,
        crate::signin::providers,
        crate::signin::login,
        crate::signin::callback,
        crate::signin::session,
        crate::signin::logout,
        crate::findings::reconcile,
        crate::policy::reload,
        crate::findings::list_findings,
        crate::findings::get_finding,
        crate::findings::accept_finding,
        crate::tokens::list_tokens,
        crate::tokens::revoke_token,
        crate::reports::report,
        crate::break_glass::activate,
        crate::break_glass::list_activations,
        crate::break_glass::get_activation,
        crate::break_glass::sign_off,
        crate::reviews::start,
        crate::reviews::list,
        crate::reviews::get,
        crate::reviews::campaign_items,
        crate::reviews::list_items,
        crate::reviews::get_item,
        crate::reviews::decide,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth, &ErrorResponses, &TextWithoutControls),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// Every error writ answers: a stable `code` to branch on and a message for people.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: `ApiError` writes this shape
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// Stable across releases; docs/api.md says when each is answered.
    #[schema(schema_with = error_code_schema)]
    code: String,
    message: String,
}

/// Every code writ answers with, as an enum, so a client can match on them all.
fn error_code_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(
            writ_engine::ErrorCode::ALL.iter().map(|code| code.as_str()),
        ))
        .build()
}

/// What each status means wherever writ answers it.
fn status_description(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "400" => {
            "malformed_request: bad JSON, wrong types, unknown fields, control characters in text, a bad query (limit outside 1..1000) or id; or ambiguous_id"
        }
        "401" => {
            "unauthenticated: a missing, unknown, revoked or expired token (webhooks: unsigned, forged or stale)"
        }
        "403" => "the caller may not do this (the code says why)",
        "404" => "not_found: no such record, or not one the caller may read",
        "408" => "the request was not received and answered within server.request_timeout",
        "409" => "the record is not in a state that allows this (the code says which)",
        "413" => "body_too_large: over 64 KiB (webhooks: 1 MiB)",
        "415" => "unsupported_media_type: a body that is not sent as application/json",
        "422" => "the request is well-formed but cannot be honoured (the code says why)",
        "429" => "rate_limited: too many requests from this identity or address; see Retry-After",
        "500" => {
            "data_corrupt: what writ stored is not what it wrote; nothing was changed, and retrying will not help"
        }
        "503" => {
            "overloaded, storage_unavailable, itsm_unavailable or target_unavailable: nothing was changed; try again"
        }
        _ => "see docs/api.md",
    }
}

/// Routes that take no token and no input.
const PUBLIC: &[&str] = &["/healthz"];

/// Routes whose body may be left out (every field optional).
const OPTIONAL_BODIES: &[&str] = &["/v1/reconcile"];

fn segment_description(path: &str, name: &str) -> String {
    if path.starts_with("/v1/tokens/") {
        "the token's id: 16 hexadecimal digits, as `writ token list` shows".to_string()
    } else if name == "id" {
        "the full id, or any part of it that names one record (its start or end)".to_string()
    } else {
        format!("the {name}")
    }
}

fn segment_schema(path: &str) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let schema = ObjectBuilder::new().schema_type(Type::String);
    if path.starts_with("/v1/tokens/") {
        schema.pattern(Some("^[0-9a-fA-F]{16}$")).build()
    } else {
        schema.min_length(Some(1)).build()
    }
}

/// Documents the statuses every route may answer, each with the error body, and gives
/// every response a description (OpenAPI requires one).
struct ErrorResponses;

impl utoipa::Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, ResponseBuilder};
        for (path, item) in &mut openapi.paths.paths {
            let has_id = path.contains('{');
            let segments: Vec<String> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(String::from)
                .collect();
            for (is_post, operation) in [(false, item.get.as_mut()), (true, item.post.as_mut())]
                .into_iter()
                .filter_map(|(post, op)| op.map(|op| (post, op)))
            {
                // Without a token, a health check can only time out; its own 503 is
                // declared with it.
                let mut statuses = if PUBLIC.contains(&path.as_str()) {
                    vec!["408"]
                } else {
                    vec!["400", "401", "403", "408", "429", "500", "503"]
                };
                if has_id {
                    statuses.push("404");
                }
                if is_post {
                    statuses.extend(["409", "413", "415", "422"]);
                }
                // Each `{segment}` of the path is a required path parameter.
                let parameters = operation.parameters.get_or_insert_with(Vec::new);
                for name in &segments {
                    let declared = parameters.iter().any(|p| {
                        matches!(p, RefOr::T(p) if &p.name == name && p.parameter_in == ParameterIn::Path)
                    });
                    if !declared {
                        parameters.push(RefOr::T(
                            ParameterBuilder::new()
                                .name(name)
                                .parameter_in(ParameterIn::Path)
                                .required(Required::True)
                                .description(Some(segment_description(path, name)))
                                .schema(Some(segment_schema(path)))
                                .build(),
                        ));
                    }
                }
                // A body whose every field is optional may be left out.
                if OPTIONAL_BODIES.contains(&path.as_str())
                    && let Some(RefOr::T(body)) = operation.request_body.as_mut()
                {
                    body.required = Some(Required::False);
                }
                let responses = &mut operation.responses.responses;
                for status in statuses {
                    responses.entry(status.to_string()).or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(status_description(status))
                                .build(),
                        )
                    });
                }
                for (status, response) in responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    if response.description.is_empty() {
                        response.description = status_description(status).to_string();
                    }
                    if !status.starts_with('2') && response.content.is_empty() {
                        response.content.insert(
                            "application/json".to_string(),
                            RefOr::T(
                                ContentBuilder::new()
                                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                                    .build(),
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// Text in request bodies holds no control characters but tab and line breaks
/// (`JsonBody` refuses them with 400): every string property of a request body's
/// schema, and of the schemas it refers to, says so with a pattern.
struct TextWithoutControls;

/// Any characters but the C0 and C1 controls other than tab, line feed and carriage return.
pub const TEXT_PATTERN: &str = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$";

impl utoipa::Modify for TextWithoutControls {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::{Schema, SchemaType, Type};
        let schema_name = |reference: &str| {
            reference
                .strip_prefix("#/components/schemas/")
                .map(str::to_string)
        };
        let mut pending: Vec<String> = openapi
            .paths
            .paths
            .values()
            .flat_map(|item| [item.post.as_ref(), item.get.as_ref()])
            .flatten()
            .filter_map(|operation| match operation.request_body.as_ref() {
                Some(RefOr::T(body)) => Some(body),
                _ => None,
            })
            .flat_map(|body| body.content.values())
            .filter_map(|content| match content {
                RefOr::T(content) => match &content.schema {
                    Some(RefOr::Ref(reference)) => schema_name(&reference.ref_location),
                    _ => None,
                },
                RefOr::Ref(_) => None,
            })
            .collect();
        let mut done = std::collections::BTreeSet::new();
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        while let Some(name) = pending.pop() {
            if !done.insert(name.clone()) {
                continue;
            }
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(&name) else {
                continue;
            };
            for property in object.properties.values_mut() {
                match property {
                    RefOr::Ref(reference) => pending.extend(schema_name(&reference.ref_location)),
                    RefOr::T(Schema::OneOf(one_of)) => {
                        for item in &one_of.items {
                            if let RefOr::Ref(reference) = item {
                                pending.extend(schema_name(&reference.ref_location));
                            }
                        }
                    }
                    RefOr::T(Schema::Object(field)) => {
                        let text = match &field.schema_type {
                            SchemaType::Type(kind) => *kind == Type::String,
                            SchemaType::Array(kinds) => kinds.contains(&Type::String),
                            SchemaType::AnyValue => false,
                        };
                        if text && field.pattern.is_none() {
                            field.pattern = Some(TEXT_PATTERN.to_string());
                        }
                    }
                    RefOr::T(_) => {}
                }
            }
        }
    }
}

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

/// This document.
#[utoipa::path(get, path = "/openapi.json",
    responses((status = 200, description = "the OpenAPI 3.1 document of this API", body = Object)))]
pub async fn serve(_: crate::auth::Authenticated) -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi as _;

    /// The document's cursor patterns are the ones the store parses by.
    #[test]
    fn cursor_patterns_are_the_stores() {
        let document = serde_json::to_value(super::ApiDoc::openapi()).expect("document");
        for (path, order) in [
            ("/v1/requests", writ_store::REQUEST_ORDER),
            ("/v1/grants", writ_store::GRANT_ORDER),
            ("/v1/findings", writ_store::FINDING_ORDER),
        ] {
            let parameters = document["paths"][path]["get"]["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let cursor = parameters
                .iter()
                .find(|p| p["name"] == "cursor")
                .unwrap_or_else(|| panic!("{path} has no cursor"));
            assert_eq!(
                cursor["schema"]["pattern"].as_str(),
                Some(order.cursor_pattern()),
                "{path}"
            );
        }
    }
}
