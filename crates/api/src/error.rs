//! The one error type of the API: `{"error": {"code", "message"}}` with the right status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use writ_engine::{EngineError, ErrorKind};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Sent as `Retry-After` (429 and 503 answers that know when to come back).
    pub retry_after_seconds: Option<u64>,
    /// Sent as `WWW-Authenticate` on a 401; `None`: the default challenge for the code.
    pub challenge: Option<&'static str>,
}

/// The challenge of a 401 to a call without a token (RFC 6750 §3).
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"writ\"";
/// The challenge of a 401 to a call whose token was refused.
pub const INVALID_TOKEN_CHALLENGE: &str = "Bearer realm=\"writ\", error=\"invalid_token\"";
/// The challenge of a 401 to a webhook delivery: it authenticates by its signature.
pub const SIGNATURE_CHALLENGE: &str = "Signature realm=\"writ-webhooks\"";

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_seconds: None,
            challenge: None,
        }
    }

    /// The `WWW-Authenticate` challenge this 401 carries.
    pub fn with_challenge(mut self, challenge: &'static str) -> Self {
        self.challenge = Some(challenge);
        self
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_request", message)
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        let status = match error.kind {
            ErrorKind::Malformed => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal | ErrorKind::Corrupt => {
                // Details go to the log under an id; the caller gets the id only. A
                // failing store is worth retrying (503); a corrupt one is not (500).
                let operation_id = uuid::Uuid::now_v7();
                tracing::error!(%operation_id, code = error.code, error = %error.message, "internal error");
                let status = if error.kind == ErrorKind::Corrupt {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                return Self::new(
                    status,
                    error.code,
                    format!(
                        "writ could not complete this and changed nothing; see the server log for operation {operation_id}"
                    ),
                );
            }
        };
        Self::new(status, error.code, error.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 9110 §15.5.2: a 401 names how to authenticate.
            let challenge = self.challenge.unwrap_or(if self.code == "bad_webhook" {
                SIGNATURE_CHALLENGE
            } else {
                BEARER_CHALLENGE
            });
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(challenge),
            );
        }
        if let Some(seconds) = self.retry_after_seconds {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}
