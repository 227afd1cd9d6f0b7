//! `Authorization: Bearer <token>` → the calling identity.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use writ_engine::{Caller, EngineError};

use crate::AppState;
use crate::error::ApiError;

/// An authenticated caller. Handlers that take one cannot run without a valid token.
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                EngineError::unauthenticated("missing Authorization: Bearer <token> header")
            })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                EngineError::unauthenticated("the Authorization header must be \"Bearer <token>\"")
            })?;
        Ok(Self(state.engine.authenticate(token).await?))
    }
}
