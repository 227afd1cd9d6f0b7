//! A JSON body extractor whose failures are writ errors: 400 for malformed JSON or
//! wrong shapes, 413 for bodies over the limit.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        format!(
                            "request bodies are limited to {} bytes",
                            crate::BODY_SIZE_MAX_BYTES
                        ),
                    )
                } else {
                    ApiError::malformed(rejection.body_text())
                }
            })?;
        let bytes = if bytes.is_empty() {
            Bytes::from_static(b"{}")
        } else {
            bytes
        };
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::malformed(format!("invalid JSON body: {e}")))
    }
}

/// An optional whole number, also when a client writes it as `600.0` (JSON has one
/// number type, and JSON Schema counts `600.0` as an integer).
pub fn whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    use serde::Deserialize as _;
    use serde::de::Error as _;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(whole) = number.as_i64() {
        return Ok(Some(whole));
    }
    number
        .as_f64()
        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
        // Checked just above: whole and well inside i64.
        .map(|f| Some(f as i64))
        .ok_or_else(|| D::Error::custom(format!("{number} is not a whole number")))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Body {
        #[serde(default, deserialize_with = "super::whole_number")]
        n: Option<i64>,
    }

    #[test]
    fn whole_numbers_in_either_spelling() {
        let parse = |text: &str| serde_json::from_str::<Body>(text).map(|b| b.n);
        assert_eq!(parse(r#"{"n": 600}"#).ok(), Some(Some(600)));
        assert_eq!(parse(r#"{"n": 600.0}"#).ok(), Some(Some(600)));
        assert_eq!(parse(r#"{"n": null}"#).ok(), Some(None));
        assert_eq!(parse(r#"{}"#).ok(), Some(None));
        for bad in [r#"{"n": 600.5}"#, r#"{"n": 1e300}"#, r#"{"n": "600"}"#] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
