//! The web UI at `/ui`: pages rendered on the server (askama templates, compiled into
//! the binary with their stylesheet and script) over the same engine calls, and so the
//! same authorization, as the API. Every form works without JavaScript; `writ.js`
//! only makes pages livelier (countdowns, the decision preview as you type, copying a
//! one-time password).
//!
//! A page is signed in by the browser session of `/auth/*` (or the token sign-in of
//! `signin`), and every form that changes something carries the session's CSRF token.

mod approvals;
mod break_glass;
mod charts;
mod grant;
mod home;
mod operations;
mod request;
mod reviews;
mod signin;
mod view;

use askama::Template;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;
use writ_engine::{Caller, EngineError};

use crate::AppState;
use crate::error::ApiError;
use crate::signin::{SESSION_COOKIE, cookie_value};

/// What every page's frame shows: who is signed in, the CSRF token its forms carry,
/// and which pages they may open.
pub(crate) struct Chrome {
    pub signed_in: bool,
    pub name: String,
    pub csrf: String,
    /// Auditors and admins see the operations pages (findings, revocations, ledger).
    pub auditor: bool,
    /// The navigation entry of this page.
    pub current: &'static str,
}

impl Chrome {
    fn signed_out() -> Self {
        Self {
            signed_in: false,
            name: String::new(),
            csrf: String::new(),
            auditor: false,
            current: "",
        }
    }
}

/// The person a page is for, from their session cookie.
pub(crate) struct Viewer {
    pub caller: Caller,
    pub secret: String,
    pub csrf: String,
    pub auditor: bool,
}

impl Viewer {
    pub fn chrome(&self, current: &'static str) -> Chrome {
        Chrome {
            signed_in: true,
            name: self.caller.name.to_string(),
            csrf: self.csrf.clone(),
            auditor: self.auditor,
            current,
        }
    }

    /// A form that changes something must carry this session's CSRF token: a page on
    /// another site cannot read it.
    pub fn require_csrf(&self, state: &AppState, given: &str) -> Result<(), UiError> {
        if state.engine.csrf_matches(&self.secret, given) {
            Ok(())
        } else {
            Err(UiError::Page(crate::signin::csrf_refused()))
        }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, UiError> {
        // The URI as the browser sent it (`/ui/…`), not as the nested router sees it.
        let uri = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or(&parts.uri, |original| &original.0);
        let return_to = uri
            .path_and_query()
            .map_or("/ui", |p| p.as_str())
            .to_string();
        let Some(secret) = cookie_value(&parts.headers, SESSION_COOKIE) else {
            return Err(UiError::SignIn { return_to });
        };
        let caller = match state.engine.authenticate_session(&secret).await {
            Ok(caller) => caller,
            Err(error) if error.kind() == writ_engine::ErrorKind::Unauthenticated => {
                return Err(UiError::SignIn { return_to });
            }
            Err(error) => return Err(UiError::Page(error.into())),
        };
        state.limits.check_identity(caller.name.as_str())?;
        let csrf = state.engine.csrf_token(&secret)?;
        let auditor = state.engine.is_auditor(&caller);
        Ok(Self {
            caller,
            secret,
            csrf,
            auditor,
        })
    }
}

/// Why a page could not be shown: the browser is not signed in (it is sent to sign in,
/// and back afterwards), or the same error the API would answer, as a page.
#[derive(Debug)]
pub(crate) enum UiError {
    SignIn { return_to: String },
    Page(ApiError),
}

impl From<ApiError> for UiError {
    fn from(error: ApiError) -> Self {
        Self::Page(error)
    }
}

impl From<EngineError> for UiError {
    fn from(error: EngineError) -> Self {
        Self::Page(error.into())
    }
}

impl From<askama::Error> for UiError {
    fn from(error: askama::Error) -> Self {
        Self::Page(ApiError::from(EngineError::new(
            writ_engine::ErrorCode::PageRendering,
            format!("rendering a page: {error}"),
        )))
    }
}

#[derive(Template)]
#[template(path = "ui/error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    title: String,
    code: String,
    message: String,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn { return_to } => {
                let target = format!("/ui/signin?return_to={}", view::query_escape(&return_to));
                see_other(&target)
            }
            Self::Page(error) => {
                let status = error.status;
                let page = ErrorPage {
                    chrome: Chrome::signed_out(),
                    status: status.as_u16(),
                    title: status.canonical_reason().unwrap_or("Error").to_string(),
                    code: error.code.to_string(),
                    message: error.message,
                };
                match page.render() {
                    Ok(html) => (status, Html(html)).into_response(),
                    Err(_) => (status, page.message).into_response(),
                }
            }
        }
    }
}

/// A rendered page, or the error of rendering it.
pub(crate) fn render(page: &impl Template) -> Result<Response, UiError> {
    Ok(Html(page.render()?).into_response())
}

/// After a form: on to the page that shows its result (so reloading does not post
/// the form again).
pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Forms decoded as the API decodes JSON: a malformed one is a clear error, not a 422
/// from the framework.
pub(crate) fn form<T>(
    form: Result<axum::Form<T>, axum::extract::rejection::FormRejection>,
) -> Result<T, UiError> {
    form.map(|axum::Form(value)| value)
        .map_err(|rejection| UiError::Page(ApiError::malformed(rejection.body_text())))
}

const CSS: &str = include_str!("../../assets/writ.css");
const JS: &str = include_str!("../../assets/writ.js");

async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
}

/// Pages run only writ's own script and style, are never framed, and send no referrer
/// elsewhere (ids in writ's URLs are nobody else's business).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home::my_access))
        .route("/signin", get(signin::page).post(signin::with_token))
        .route("/signout", post(signin::sign_out))
        .route("/request", get(request::page).post(request::submit))
        .route("/request/preview", post(request::preview))
        .route("/requests/{id}", get(request::show))
        .route("/requests/{id}/cancel", post(request::cancel))
        .route("/approvals", get(approvals::inbox))
        .route("/requests/{id}/decide", post(approvals::decide))
        .route("/grants/{id}", get(grant::timeline))
        .route("/grants/{id}/history.json", get(grant::history_json))
        .route("/grants/{id}/evidence.md", get(grant::evidence_markdown))
        .route("/grants/{id}/revoke", post(grant::revoke))
        .route("/grants/{id}/credential", post(grant::collect_credential))
        .route("/findings", get(operations::findings))
        .route("/revocations", get(operations::revocations))
        .route("/ledger", get(operations::ledger))
        .route("/ledger/verify", post(operations::verify))
        .route("/insights", get(operations::insights))
        .route("/reviews", get(reviews::page))
        .route("/review-items/{id}/decide", post(reviews::decide))
        .route("/break-glass", get(break_glass::page))
        .route("/break-glass/{profile}", post(break_glass::activate))
        .route(
            "/break-glass/activations/{id}/sign-off",
            post(break_glass::sign_off),
        )
        .route("/assets/writ.css", get(stylesheet))
        .route("/assets/writ.js", get(script))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
}
