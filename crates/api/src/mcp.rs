//! `/mcp`: writ as tools for AI agents, over the Model Context Protocol (streamable
//! HTTP, stateless: every call stands alone, so any node answers it). A call is
//! authenticated exactly as a REST call — a bearer token (typically the agent's
//! workload token) or a mutual-TLS certificate, never a browser's session cookie — and
//! each tool is one engine call, bound by the same policy, delegation and
//! segregation-of-duties rules as the REST API.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use writ_domain::Ticket;
use writ_engine::{Caller, EngineError, NewRequest};

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;

/// The MCP server: the app's state, and the tools.
#[derive(Clone)]
pub struct WritTools {
    state: AppState,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RequestAccess {
    /// The entitlement, as `<target>/<name>`.
    entitlement: String,
    /// Why the access is needed.
    justification: String,
    /// How long, in seconds (default and most: the entitlement's maximum, capped by policy).
    duration_seconds: Option<i64>,
    /// The ticket the request is for, as `SYSTEM:KEY` (e.g. `jira:OPS-42`).
    ticket: Option<String>,
    /// The user the agent acts for (required for agents).
    on_behalf_of: Option<String>,
    /// Who receives the access, when not the caller (a service or agent it owns).
    subject: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ListGrants {
    /// Only grants in this state: active, pending, revoking, revoked, failed.
    state: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CheckRequest {
    /// The request's id (or a unique part of it).
    id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ReleaseGrant {
    /// The grant's id (or a unique part of it).
    id: String,
    /// Why it is given back early.
    reason: Option<String>,
}

/// A refusal the agent can read and act on: writ's error code and message as the
/// tool's result (an error result, not a protocol error).
fn refused(error: EngineError) -> CallToolResult {
    let error = ApiError::from(error);
    CallToolResult::error(vec![ContentBlock::text(
        serde_json::json!({ "error": { "code": error.code.as_str(), "message": error.message } })
            .to_string(),
    )])
}

fn answer(value: impl serde::Serialize) -> Result<CallToolResult, ErrorData> {
    let json =
        serde_json::to_value(value).map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    Ok(CallToolResult::structured(json))
}

/// The caller the middleware authenticated for this HTTP request.
fn caller(context: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
        .ok_or_else(|| ErrorData::invalid_request("not authenticated", None))
}

#[tool_router]
impl WritTools {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    #[tool(
        description = "Ask for access to an entitlement. writ's policy decides now: the answer is the request, granted, pending approval (someone must approve it) or denied, with the reasons and hints."
    )]
    async fn request_access(
        &self,
        Parameters(ask): Parameters<RequestAccess>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = caller(&context)?;
        let ticket = match ask.ticket.as_deref().map(|t| t.split_once(':')) {
            None => None,
            Some(Some((system, key))) => Some(Ticket {
                system: system.to_string(),
                key: key.to_string(),
                verified: None,
            }),
            Some(None) => {
                return Ok(refused(EngineError::new(
                    writ_engine::ErrorCode::InvalidTicket,
                    "a ticket is SYSTEM:KEY, e.g. jira:OPS-42",
                )));
            }
        };
        let new = NewRequest {
            entitlement: ask.entitlement,
            subject: ask.subject,
            duration_seconds: ask.duration_seconds,
            justification: ask.justification,
            ticket,
            on_behalf_of: ask.on_behalf_of,
            extends: None,
        };
        match self.state.engine.create_request_issuing(&caller, new).await {
            Ok((request, credential)) => answer(crate::requests::CreatedRequest {
                request: crate::requests::request_view(&self.state, request),
                credential,
            }),
            Err(error) => Ok(refused(error)),
        }
    }

    #[tool(
        description = "The grants I can see (mine, and those of the services and agents I own), newest first."
    )]
    async fn list_my_grants(
        &self,
        Parameters(query): Parameters<ListGrants>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = caller(&context)?;
        let state = match query
            .state
            .as_deref()
            .map(writ_domain::lifecycle::GrantState::parse)
        {
            None => None,
            Some(Some(state)) => Some(state),
            Some(None) => {
                return Ok(refused(EngineError::new(
                    writ_engine::ErrorCode::MalformedRequest,
                    "state is one of active, pending, revoking, revoked, failed",
                )));
            }
        };
        let filter = writ_store::GrantFilter {
            state,
            subject: None,
            entitlement: None,
            involving: None,
            limit: Some(100),
            after: None,
        };
        let page = match self.state.engine.visible_grants(&caller, filter).await {
            Ok(page) => page,
            Err(error) => return Ok(refused(error)),
        };
        let mut grants = Vec::new();
        for grant in page.items {
            match crate::grants::grant_view(&self.state, grant).await {
                Ok(view) => grants.push(view),
                Err(error) => return Err(ErrorData::internal_error(error.message, None)),
            }
        }
        answer(serde_json::json!({ "grants": grants }))
    }

    #[tool(
        description = "One of my requests: its state, the decision and its reasons, approvals, and the grant it led to."
    )]
    async fn check_request(
        &self,
        Parameters(query): Parameters<CheckRequest>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = caller(&context)?;
        let engine = &self.state.engine;
        let found = match engine.resolve_request(&query.id).await {
            Ok(id) => engine.visible_request(&caller, id).await,
            Err(error) => Err(error),
        };
        match found {
            Ok(request) => answer(crate::requests::request_view(&self.state, request)),
            Err(error) => Ok(refused(error)),
        }
    }

    #[tool(
        description = "Give a grant back before it expires: it is revoked on its target now and verified gone."
    )]
    async fn release_grant(
        &self,
        Parameters(release): Parameters<ReleaseGrant>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = caller(&context)?;
        let engine = &self.state.engine;
        let reason = release
            .reason
            .unwrap_or_else(|| "released early by the agent".to_string());
        let revoked = match engine.resolve_grant(&release.id).await {
            Ok(id) => engine.revoke_grant(&caller, id, reason).await,
            Err(error) => Err(error),
        };
        match revoked {
            Ok(grant) => match crate::grants::grant_view(&self.state, grant).await {
                Ok(view) => answer(view),
                Err(error) => Err(ErrorData::internal_error(error.message, None)),
            },
            Err(error) => Ok(refused(error)),
        }
    }
}

#[tool_handler]
impl rmcp::ServerHandler for WritTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "writ grants time-bound access under policy. Ask with request_access (say why, and for agents on whose behalf); check a pending request with check_request; give access back early with release_grant.",
        )
    }
}

/// Authenticates the HTTP request before the MCP service sees it: a bearer token or a
/// client certificate, as for the REST API, but never a session cookie (an agent has
/// none, and a page another site shows a signed-in person must not call tools).
pub async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    parts.headers.remove(axum::http::header::COOKIE);
    let caller =
        match <Authenticated as axum::extract::FromRequestParts<AppState>>::from_request_parts(
            &mut parts, &state,
        )
        .await
        {
            Ok(Authenticated(caller)) => caller,
            Err(error) => return error.into_response(),
        };
    parts.extensions.insert(caller);
    next.run(Request::from_parts(parts, body)).await
}

/// The MCP service, stateless (no MCP sessions to share between nodes). Host checks
/// are off: every call needs a bearer token or a client certificate, which a DNS
/// rebinding page does not have.
pub fn service(state: AppState) -> StreamableHttpService<WritTools, NeverSessionManager> {
    StreamableHttpService::new(
        move || Ok(WritTools::new(state.clone())),
        NeverSessionManager::default().into(),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .disable_allowed_hosts(),
    )
}
