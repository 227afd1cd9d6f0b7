//! The one error type of the API: `{"error": {"code", "message"}}` with the right status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use writ_engine::{EngineError, ErrorCode, ErrorKind};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
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
    /// An error with its code's status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: status_of(code.kind()),
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
        Self::new(ErrorCode::MalformedRequest, message)
    }
}

/// The status of every code of a kind. A failing store is worth retrying (503); a
/// corrupt one is not (500).
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Malformed => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Gone => StatusCode::GONE,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable | ErrorKind::Internal => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Corrupt => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        if matches!(error.kind(), ErrorKind::Internal | ErrorKind::Corrupt) {
            // Details go to the log under an id; the caller gets the id only.
            let operation_id = uuid::Uuid::now_v7();
            tracing::error!(%operation_id, code = %error.code, error = %error.message, "internal error");
            return Self::new(
                error.code,
                format!(
                    "writ could not complete this and changed nothing; see the server log for operation {operation_id}"
                ),
            );
        }
        Self::new(error.code, error.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            serde_json::json!({ "error": { "code": self.code.as_str(), "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 9110 §15.5.2: a 401 names how to authenticate.
            let challenge = self
                .challenge
                .unwrap_or(if self.code == ErrorCode::BadWebhook {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/api.md's error table: each status row's backquoted codes (`*_too_long`
    /// stands for every code that ends so).
    fn documented_codes() -> Vec<(u16, String)> {
        let doc = include_str!("../../../docs/api.md");
        let mut rows = Vec::new();
        for line in doc.lines() {
            let Some(rest) = line.strip_prefix("| ") else {
                continue;
            };
            let Some((status, codes)) = rest.split_once(" | ") else {
                continue;
            };
            let Ok(status) = status.parse::<u16>() else {
                continue;
            };
            // Codes are the backquoted snake_case words outside parentheses (which explain
            // them).
            let (mut depth, mut quoted, mut word) = (0, false, String::new());
            for c in codes.chars() {
                match c {
                    '`' if quoted => {
                        let snake = word
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b"_*".contains(&b));
                        if depth == 0 && snake {
                            rows.push((status, std::mem::take(&mut word)));
                        }
                        word.clear();
                        quoted = false;
                    }
                    '`' => quoted = true,
                    _ if quoted => word.push(c),
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
            }
        }
        rows
    }

    #[test]
    fn the_error_table_in_docs_lists_every_code_under_its_status() {
        let documented = documented_codes();
        assert!(
            documented.len() > 40,
            "the table was not found: {documented:?}"
        );
        let matches = |pattern: &str, code: ErrorCode| match pattern.strip_prefix('*') {
            Some(suffix) => code.as_str().ends_with(suffix),
            None => code.as_str() == pattern,
        };
        for (status, pattern) in &documented {
            let named: Vec<_> = ErrorCode::ALL
                .iter()
                .filter(|code| matches(pattern, **code))
                .collect();
            assert!(
                !named.is_empty(),
                "docs/api.md lists `{pattern}`, which is no code"
            );
            for code in named {
                assert_eq!(
                    status_of(code.kind()).as_u16(),
                    *status,
                    "docs/api.md lists `{code}` under {status}"
                );
            }
        }
        for code in ErrorCode::ALL {
            assert!(
                documented
                    .iter()
                    .any(|(_, pattern)| matches(pattern, *code)),
                "docs/api.md's error table does not list `{code}`"
            );
        }
    }
}
