//! Signing in to the UI: with the identity provider (`/auth/login`, code + PKCE) where
//! one offers browser sign-in, with a writ token otherwise; signing out ends the session.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use base64::Engine as _;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::{Chrome, UiError, Viewer, form, render, see_other, view};
use crate::AppState;
use crate::signin::{SESSION_COOKIE, cookie_value};

/// The sign-in form's own CSRF cookie: without it another site could sign a browser
/// in to writ as someone else (login CSRF).
const SIGNIN_CSRF_COOKIE: &str = "writ-ui-signin";

pub(super) struct ProviderButton {
    pub name: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "ui/signin.html")]
struct SignInPage {
    chrome: Chrome,
    providers: Vec<ProviderButton>,
    signin_csrf: String,
    return_to: String,
    problem: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignInQuery {
    return_to: Option<String>,
}

/// Where to go once signed in: a page of the UI, never elsewhere.
fn return_to(asked: Option<String>) -> String {
    asked
        .filter(|path| path.starts_with("/ui") && writ_engine::sessions::is_local_path(path))
        .unwrap_or_else(|| "/ui".to_string())
}

fn cookie(state: &AppState, name: &str, value: String, max_age: i64) -> String {
    crate::signin::cookie(state, name, value, "/", max_age)
}

fn with_cookies(mut response: Response, cookies: &[String]) -> Response {
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

fn random_token() -> Result<String, UiError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| {
        UiError::from(writ_engine::EngineError::new(
            writ_engine::ErrorCode::NoRandomness,
            e.to_string(),
        ))
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

async fn sign_in_page(
    state: &AppState,
    return_to: String,
    problem: Option<String>,
) -> Result<Response, UiError> {
    let providers: Vec<ProviderButton> = state
        .engine
        .config()
        .oidc
        .iter()
        .filter(|provider| provider.web_client_id.is_some())
        .map(|provider| ProviderButton {
            name: provider.issuer.clone(),
            href: format!(
                "/auth/login?provider={}&return_to={}",
                view::query_escape(&provider.issuer),
                view::query_escape(&return_to)
            ),
        })
        .collect();
    let signin_csrf = random_token()?;
    let page = SignInPage {
        chrome: Chrome::signed_out(),
        providers,
        signin_csrf: signin_csrf.clone(),
        return_to,
        problem,
    };
    let mut response = render(&page)?;
    if page.problem.is_some() {
        *response.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
    }
    Ok(with_cookies(
        response,
        &[cookie(state, SIGNIN_CSRF_COOKIE, signin_csrf, 600)],
    ))
}

pub(super) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Result<Response, UiError> {
    let return_to = return_to(query.return_to);
    // Already signed in: straight on.
    if let Some(secret) = cookie_value(&headers, SESSION_COOKIE)
        && state.engine.authenticate_session(&secret).await.is_ok()
    {
        return Ok(see_other(&return_to));
    }
    sign_in_page(&state, return_to, None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    signin_csrf: String,
    return_to: Option<String>,
}

pub(super) async fn with_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<axum::Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, UiError> {
    let body = form(body)?;
    let return_to = return_to(body.return_to);
    let expected = cookie_value(&headers, SIGNIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(body.signin_csrf.as_bytes())) {
        return sign_in_page(
            &state,
            return_to,
            Some("This sign-in form has expired or did not come from writ; try again.".into()),
        )
        .await;
    }
    match state.engine.sign_in_with_token(body.token.trim()).await {
        Ok(session) => {
            let lifetime = state.engine.config().session_lifetime_seconds;
            Ok(with_cookies(
                see_other(&return_to),
                &[
                    cookie(&state, SESSION_COOKIE, session.secret, lifetime),
                    cookie(&state, SIGNIN_CSRF_COOKIE, String::new(), 0),
                ],
            ))
        }
        Err(error) if error.kind() == writ_engine::ErrorKind::Unauthenticated => {
            sign_in_page(&state, return_to, Some(error.message)).await
        }
        Err(error) => Err(error.into()),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignOutForm {
    #[serde(default)]
    csrf_token: String,
}

pub(super) async fn sign_out(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Result<axum::Form<SignOutForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, UiError> {
    let body = form(body)?;
    viewer.require_csrf(&state, &body.csrf_token)?;
    state.engine.end_session(&viewer.secret).await?;
    Ok(with_cookies(
        see_other("/ui/signin"),
        &[cookie(&state, SESSION_COOKIE, String::new(), 0)],
    ))
}
