//! A JSON body extractor whose failures are writ errors: 415 for a body that is not
//! declared JSON, 400 for malformed JSON, wrong shapes or control characters in text,
//! 413 for bodies over the limit.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let declared_json = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(is_json_media_type);
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        writ_engine::ErrorCode::BodyTooLarge,
                        format!(
                            "request bodies are limited to {} bytes",
                            crate::BODY_SIZE_MAX_BYTES
                        ),
                    )
                } else {
                    ApiError::malformed(rejection.body_text())
                }
            })?;
        if bytes.is_empty() {
            // A call that sends nothing (`POST .../cancel`) sends no type either.
            return serde_json::from_slice(b"{}")
                .map(JsonBody)
                .map_err(|e| ApiError::malformed(format!("invalid JSON body: {e}")));
        }
        if !declared_json {
            return Err(ApiError::new(
                writ_engine::ErrorCode::UnsupportedMediaType,
                "request bodies are JSON: send Content-Type: application/json",
            ));
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::malformed(format!("invalid JSON body: {e}")))?;
        refuse_control_characters(&value, &mut Vec::new())?;
        serde_json::from_value(value)
            .map(JsonBody)
            .map_err(|e| ApiError::malformed(format!("invalid JSON body: {e}")))
    }
}

/// `application/json`, with or without parameters, or a `+json` type.
fn is_json_media_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Text goes to the ledger, to tickets and to SIEM pipelines, many of which reject or
/// misread control characters (`\u0000`, terminal escapes): only tab and line breaks
/// are text.
fn refuse_control_characters(
    value: &serde_json::Value,
    path: &mut Vec<String>,
) -> Result<(), ApiError> {
    match value {
        serde_json::Value::String(text) => {
            if let Some(c) = text
                .chars()
                .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
            {
                let field = if path.is_empty() {
                    "the body".to_string()
                } else {
                    format!("`{}`", path.join("."))
                };
                return Err(ApiError::malformed(format!(
                    "{field} contains a control character (U+{:04X}); only tab and line breaks are allowed in text",
                    u32::from(c)
                )));
            }
            Ok(())
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                refuse_control_characters(item, path)?;
                path.pop();
            }
            Ok(())
        }
        serde_json::Value::Object(fields) => {
            for (name, field) in fields {
                path.push(name.clone());
                refuse_control_characters(field, path)?;
                path.pop();
            }
            Ok(())
        }
        _ => Ok(()),
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
    #[test]
    fn json_media_types() {
        for json in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert!(super::is_json_media_type(json), "{json}");
        }
        for other in ["text/plain", "application/jsonx", "text/json+xml", ""] {
            assert!(!super::is_json_media_type(other), "{other}");
        }
    }

    #[test]
    fn control_characters_are_found_with_their_path() {
        let body = serde_json::json!({ "a": [{ "b": "ok\tfine\n" }, { "c": "bad\u{1b}[0m" }] });
        let error = super::refuse_control_characters(&body, &mut Vec::new())
            .expect_err("an escape character");
        assert!(
            error.message.contains("`a.1.c`") && error.message.contains("U+001B"),
            "{}",
            error.message
        );
        let fine = serde_json::json!({ "text": "line one\r\nline two\tend", "n": 3 });
        assert!(super::refuse_control_characters(&fine, &mut Vec::new()).is_ok());
    }

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
