//! `Authorization: Bearer <token>` → the calling identity.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use writ_engine::{Caller, EngineError};

use crate::AppState;
use crate::error::{ApiError, INVALID_TOKEN_CHALLENGE};

/// An authenticated caller. Handlers that take one cannot run without a valid token
/// (or, over mutual TLS, a client certificate that proves a service or agent).
pub struct Authenticated(pub Caller);

/// The SPIFFE ID in the client certificate of a mutual-TLS connection, verified against
/// `[server] client_ca` in the handshake; `writ serve` adds it to each request on such
/// a connection.
#[derive(Debug, Clone)]
pub struct ClientCertificateId(pub String);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = authenticate(parts, state).await?;
        state.limits.check_identity(caller.name.as_str())?;
        Ok(Self(caller))
    }
}

/// Who is calling, from a bearer token, a browser session (with its CSRF token on a
/// change) or a client certificate; not yet held to any rate limit.
pub(crate) async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
        // No token: a browser's session, then a client certificate.
        if let Some(secret) =
            crate::signin::cookie_value(&parts.headers, crate::signin::SESSION_COOKIE)
        {
            let caller = state.engine.authenticate_session(&secret).await?;
            // A change made with the cookie must prove it comes from writ's own
            // page: the session's CSRF token, which another site cannot read.
            if !parts.method.is_safe() {
                let given = parts
                    .headers
                    .get(crate::signin::CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !state.engine.csrf_matches(&secret, given) {
                    return Err(crate::signin::csrf_refused());
                }
            }
            return Ok(caller);
        }
        let Some(ClientCertificateId(uri)) = parts.extensions.get::<ClientCertificateId>() else {
            return Err(EngineError::unauthenticated(
                "missing Authorization: Bearer <token> header",
            )
            .into());
        };
        return Ok(state.engine.authenticate_certificate(uri)?);
    };
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let token = header
        .to_str()
        .ok()
        .and_then(|value| value.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| {
            EngineError::unauthenticated("the Authorization header must be \"Bearer <token>\"")
        })?;
    state
        .engine
        .authenticate(token)
        .await
        .map_err(|e| ApiError::from(e).with_challenge(INVALID_TOKEN_CHALLENGE))
}

/// A webhook sender within its rate limit, checked from the connection's address
/// before the body is read (`writ serve` records the address of every connection; a
/// router built by hand may not, and then there is no per-source limit).
pub struct WebhookSender;

impl FromRequestParts<AppState> for WebhookSender {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(info) = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        {
            state.limits.check_source(info.0.ip())?;
        }
        Ok(Self)
    }
}
