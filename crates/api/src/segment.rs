//! A path segment extractor whose failures are writ errors (400 `malformed_request`,
//! JSON) rather than axum's plain-text ones: e.g. `%ff` that does not decode to UTF-8.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use crate::error::ApiError;

/// The one `{id}` or `{name}` of a route.
pub struct Segment(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Segment {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(segment)| Self(segment))
            .map_err(|rejection| ApiError::malformed(rejection.body_text()))
    }
}

/// The two segments of a route such as `/v1/entitlements/{target}/{name}`.
pub struct TwoSegments(pub String, pub String);

impl<S: Send + Sync> FromRequestParts<S> for TwoSegments {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map(|Path((first, second))| Self(first, second))
            .map_err(|rejection| ApiError::malformed(rejection.body_text()))
    }
}
