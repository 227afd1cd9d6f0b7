//! Signing people in. For the CLI: the OpenID providers writ accepts tokens from, and
//! the client each offers for `writ login` (public: client ids are not secrets, and a
//! caller must be able to ask before it has a token). For browsers: `/auth/login`
//! sends them to the provider, `/auth/callback` starts a session in an HttpOnly
//! cookie, `/auth/session` gives the page its CSRF token, `/auth/logout` ends it.

use axum::Json;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use serde::{Deserialize, Serialize};
use writ_engine::{EngineError, ErrorCode};

use crate::AppState;
use crate::error::ApiError;

/// A provider the CLI can sign in with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignInProvider {
    /// The provider's issuer (discovery: `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// Ask for tokens for this audience (RFC 8707 `resource`).
    pub audience: String,
    /// The public client `writ login` signs in with.
    pub client_id: String,
    /// The scopes to ask for (empty: `openid profile offline_access`).
    pub scopes: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignInProviders {
    pub providers: Vec<SignInProvider>,
}

#[utoipa::path(get, path = "/v1/auth/providers", security(()),
    responses((status = 200, body = SignInProviders)))]
pub async fn providers(State(state): State<AppState>) -> Json<SignInProviders> {
    let providers = state
        .engine
        .config()
        .oidc
        .iter()
        .filter_map(|provider| {
            Some(SignInProvider {
                issuer: provider.issuer.clone(),
                audience: provider.audience.clone(),
                client_id: provider.cli_client_id.clone()?,
                scopes: provider.scopes.clone(),
            })
        })
        .collect();
    Json(SignInProviders { providers })
}

/// The cookie that carries a browser's session.
pub const SESSION_COOKIE: &str = "writ-session";
/// The cookie that carries a sign-in under way (sealed by writ).
const SIGN_IN_COOKIE: &str = "writ-signin";
/// The header that carries a session's CSRF token on changes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name` in the request, if sent.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| Cookie::split_parse(value.to_string()))
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_string())
}

/// A cookie only writ's own pages get: never readable by scripts, sent on
/// top-level navigation from elsewhere (the provider's redirect back) but not on
/// other sites' requests, and only over TLS when writ is reached over TLS.
pub(crate) fn cookie(
    state: &AppState,
    name: &str,
    value: String,
    path: &str,
    max_age: i64,
) -> String {
    let secure = state
        .engine
        .config()
        .public_url
        .as_deref()
        .is_some_and(|url| url.starts_with("https://"));
    Cookie::build((name.to_string(), value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .path(path.to_string())
        .max_age(cookie::time::Duration::seconds(max_age))
        .build()
        .to_string()
}

fn redirect(location: &str, cookies: &[String]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LoginQuery {
    /// The provider's issuer, when several offer browser sign-in.
    provider: Option<String>,
    /// Where on writ to go once signed in (a path; default `/`).
    #[param(pattern = r"^/([^/\\\x00-\x1f\x7f-\x9f][^\\\x00-\x1f\x7f-\x9f]*)?$")]
    return_to: Option<String>,
}

#[utoipa::path(get, path = "/auth/login", security(()), params(LoginQuery),
    responses((status = 303, description = "to the provider's sign-in page, with the sign-in cookie"),
        (status = 404, description = "sign_in_unavailable: browser sign-in is not configured")))]
pub async fn login(
    State(state): State<AppState>,
    Query(query): Query<LoginQuery>,
) -> Result<Response, ApiError> {
    let start = state
        .engine
        .start_sign_in(
            query.provider.as_deref(),
            query.return_to.as_deref().unwrap_or("/"),
        )
        .await?;
    let sign_in = cookie(&state, SIGN_IN_COOKIE, start.cookie, "/auth", 600);
    Ok(redirect(&start.redirect_to, &[sign_in]))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[utoipa::path(get, path = "/auth/callback", security(()), params(CallbackQuery),
    responses((status = 303, description = "signed in: the session cookie, and on to `return_to`"), (status = 401)))]
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    if let Some(error) = query.error {
        let detail = query
            .error_description
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        return Err(EngineError::new(
            ErrorCode::SignInFailed,
            format!("the provider did not sign you in ({error}{detail})"),
        )
        .into());
    }
    let (Some(code), Some(answer)) = (query.code, query.state) else {
        return Err(EngineError::new(
            ErrorCode::SignInFailed,
            "the provider's answer has no code or state",
        )
        .into());
    };
    let started = cookie_value(&headers, SIGN_IN_COOKIE);
    let (session, return_to) = state
        .engine
        .finish_sign_in(started.as_deref(), &answer, &code)
        .await?;
    let lifetime = state.engine.config().session_lifetime_seconds;
    let cookies = [
        cookie(&state, SESSION_COOKIE, session.secret, "/", lifetime),
        cookie(&state, SIGN_IN_COOKIE, String::new(), "/auth", 0),
    ];
    Ok(redirect(&return_to, &cookies))
}

/// The signed-in person, and the CSRF token their changes must carry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub name: String,
    pub csrf_token: String,
}

#[utoipa::path(get, path = "/auth/session", security(()),
    responses((status = 200, body = SessionView), (status = 401)))]
pub async fn session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SessionView>, ApiError> {
    let secret = cookie_value(&headers, SESSION_COOKIE)
        .ok_or_else(|| EngineError::unauthenticated("not signed in: no session cookie"))?;
    let caller = state.engine.authenticate_session(&secret).await?;
    Ok(Json(SessionView {
        name: caller.name.to_string(),
        csrf_token: state.engine.csrf_token(&secret)?,
    }))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct LogoutForm {
    csrf_token: Option<String>,
}

#[utoipa::path(post, path = "/auth/logout", security(()),
    responses((status = 303, description = "signed out: the session ended, its cookie cleared"), (status = 401), (status = 403)))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let secret = cookie_value(&headers, SESSION_COOKIE)
        .ok_or_else(|| EngineError::unauthenticated("not signed in: no session cookie"))?;
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| form.ok().and_then(|Form(form)| form.csrf_token))
        .unwrap_or_default();
    if !state.engine.csrf_matches(&secret, &given) {
        return Err(csrf_refused());
    }
    state.engine.end_session(&secret).await?;
    Ok(redirect(
        "/",
        &[cookie(&state, SESSION_COOKIE, String::new(), "/", 0)],
    ))
}

pub fn csrf_refused() -> ApiError {
    EngineError::new(
        ErrorCode::CsrfTokenInvalid,
        "a change made with a session cookie must carry the session's CSRF token (X-CSRF-Token, from GET /auth/session)",
    )
    .into()
}
