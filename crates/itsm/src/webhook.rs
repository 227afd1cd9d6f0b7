//! Webhook authentication: a signature over the exact raw body, checked in constant
//! time, and a freshness window where the sender states when it sent.
//!
//! - Jira admin webhooks with a secret: `X-Hub-Signature: sha256=<lowercase hex
//!   HMAC-SHA256(secret, raw body)>` (developer.atlassian.com/cloud/jira/platform/webhooks,
//!   "Secure admin webhooks"); `X-Atlassian-Webhook-Identifier` is unique per delivery
//!   and stable across retries; the body's `timestamp` (epoch ms) says when the event
//!   happened.
//! - ServiceNow has no signed webhooks of its own; writ ships a Business Rule
//!   (docs/itsm.md) that sends `X-Writ-Timestamp: <epoch ms>` and `X-Writ-Signature:
//!   sha256=<base64 HMAC-SHA256(secret, timestamp + "." + raw body)>`, computed with
//!   `GlideCertificateEncryption.generateMac`, which answers in base64.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use writ_config::ItsmKind;
use writ_domain::Timestamp;

/// Header names, lower-case as HTTP/2 and axum present them.
pub const JIRA_SIGNATURE: &str = "x-hub-signature";
pub const JIRA_DELIVERY: &str = "x-atlassian-webhook-identifier";
pub const SERVICENOW_SIGNATURE: &str = "x-writ-signature";
pub const SERVICENOW_TIMESTAMP: &str = "x-writ-timestamp";

/// Deliveries may arrive this early (clock skew between the ITSM and writ).
const FUTURE_SKEW_MS: i64 = 60_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the delivery is not signed (no {0} header)")]
    Unsigned(&'static str),
    #[error("the signature does not match the body")]
    BadSignature,
    #[error("the signature header is malformed: {0}")]
    MalformedSignature(String),
    #[error(
        "the delivery is stale: sent {age_seconds} s ago, more than the {max_seconds} s allowed"
    )]
    Stale { age_seconds: i64, max_seconds: i64 },
    #[error("the delivery claims to be sent {0} s in the future")]
    FromTheFuture(i64),
    #[error("the body is not a webhook writ understands: {0}")]
    Malformed(String),
}

/// An authenticated delivery: what it is about, and how to recognise it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Stable across retries of the same delivery.
    pub id: String,
    /// The ticket key (Jira `ITSM-42`, ServiceNow `RITM0010001`).
    pub ticket_key: String,
    /// What happened, as the sender names it (`jira:issue_updated`, `update`, ...).
    pub event: String,
}

/// Looks a header up by its lower-case name.
pub trait Headers {
    fn header(&self, name: &str) -> Option<&str>;
}

impl<S: std::hash::BuildHasher> Headers for std::collections::HashMap<String, String, S> {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

fn mac(secret: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
}

/// The signature a sender with `secret` puts on `body` (for tests and docs examples).
pub fn sign(kind: ItsmKind, secret: &str, body: &[u8], timestamp_ms: i64) -> String {
    let mut mac = mac(secret);
    match kind {
        ItsmKind::Jira => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        ItsmKind::ServiceNow => {
            mac.update(format!("{timestamp_ms}.").as_bytes());
            mac.update(body);
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            format!("sha256={encoded}")
        }
    }
}

fn check_age(sent_ms: i64, now: Timestamp, max_seconds: i64) -> Result<(), WebhookError> {
    // Saturating: a signed body may still carry any number (fuzzing found i64::MIN).
    let age_ms = now.unix_micros().div_euclid(1000).saturating_sub(sent_ms);
    if age_ms < -FUTURE_SKEW_MS {
        return Err(WebhookError::FromTheFuture(age_ms.saturating_neg() / 1000));
    }
    if age_ms > max_seconds.saturating_mul(1000) {
        return Err(WebhookError::Stale {
            age_seconds: age_ms / 1000,
            max_seconds,
        });
    }
    Ok(())
}

fn signature_value<'h>(
    headers: &'h impl Headers,
    name: &'static str,
) -> Result<&'h str, WebhookError> {
    let value = headers.header(name).ok_or(WebhookError::Unsigned(name))?;
    value
        .strip_prefix("sha256=")
        .ok_or_else(|| WebhookError::MalformedSignature(format!("{name} must start with sha256=")))
}

fn text_at<'v>(body: &'v Value, pointer: &str) -> Result<&'v str, WebhookError> {
    body.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| WebhookError::Malformed(format!("no {pointer}")))
}

/// Authenticates a delivery and says what it is about. Nothing in the body is trusted
/// beyond naming the ticket: writ re-reads the ticket from the ITSM's API.
/// The delivery id a sender claims, for the record of a rejected delivery: Jira's
/// delivery header; ServiceNow's `sys_id:sys_mod_count` from the (unauthenticated)
/// body. Only ever stored as a claim, cut short by the caller.
pub fn claimed_delivery(kind: ItsmKind, headers: &impl Headers, body: &[u8]) -> String {
    match kind {
        ItsmKind::Jira => headers
            .header(JIRA_DELIVERY)
            .unwrap_or_default()
            .to_string(),
        ItsmKind::ServiceNow => serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|json| {
                let sys_id = json["sys_id"].as_str()?.to_string();
                let count = json["sys_mod_count"].as_str().unwrap_or("0").to_string();
                Some(format!("{sys_id}:{count}"))
            })
            .unwrap_or_default(),
    }
}

pub fn verify(
    kind: ItsmKind,
    secret: &str,
    max_age_seconds: i64,
    headers: &impl Headers,
    body: &[u8],
    now: Timestamp,
) -> Result<Delivery, WebhookError> {
    let mut mac = mac(secret);
    let timestamp_ms = match kind {
        ItsmKind::Jira => {
            let given = signature_value(headers, JIRA_SIGNATURE)?;
            let given = hex::decode(given)
                .map_err(|e| WebhookError::MalformedSignature(format!("not hex: {e}")))?;
            mac.update(body);
            mac.verify_slice(&given)
                .map_err(|_| WebhookError::BadSignature)?;
            None
        }
        ItsmKind::ServiceNow => {
            let given = signature_value(headers, SERVICENOW_SIGNATURE)?;
            let given = base64::engine::general_purpose::STANDARD
                .decode(given)
                .map_err(|e| WebhookError::MalformedSignature(format!("not base64: {e}")))?;
            let timestamp = headers
                .header(SERVICENOW_TIMESTAMP)
                .ok_or(WebhookError::Unsigned(SERVICENOW_TIMESTAMP))?;
            let timestamp_ms: i64 = timestamp.parse().map_err(|_| {
                WebhookError::MalformedSignature(format!(
                    "{SERVICENOW_TIMESTAMP} {timestamp:?} is not epoch milliseconds"
                ))
            })?;
            mac.update(format!("{timestamp_ms}.").as_bytes());
            mac.update(body);
            mac.verify_slice(&given)
                .map_err(|_| WebhookError::BadSignature)?;
            Some(timestamp_ms)
        }
    };
    // Only an authentic body is parsed.
    let json: Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    match kind {
        ItsmKind::Jira => {
            let sent_ms = json["timestamp"]
                .as_i64()
                .ok_or_else(|| WebhookError::Malformed("no timestamp".into()))?;
            check_age(sent_ms, now, max_age_seconds)?;
            let ticket_key = text_at(&json, "/issue/key")?.to_string();
            let event = text_at(&json, "/webhookEvent")?.to_string();
            // The delivery id is outside the signed body, so it only names a delivery for
            // de-duplication; a forged one cannot make writ act on anything unsigned.
            let id = headers
                .header(JIRA_DELIVERY)
                .map_or_else(|| format!("{ticket_key}@{sent_ms}:{event}"), str::to_string);
            Ok(Delivery {
                id,
                ticket_key,
                event,
            })
        }
        ItsmKind::ServiceNow => {
            let sent_ms = timestamp_ms.unwrap_or_default();
            check_age(sent_ms, now, max_age_seconds)?;
            let ticket_key = text_at(&json, "/number")?.to_string();
            let sys_id = text_at(&json, "/sys_id")?;
            let modified = json["sys_mod_count"].as_str().unwrap_or("0");
            let event = json["operation"].as_str().unwrap_or("update").to_string();
            Ok(Delivery {
                id: format!("{sys_id}:{modified}"),
                ticket_key,
                event,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SECRET: &str = "0123456789abcdef0123";

    /// Found by fuzzing (`fuzz_webhooks`): a signed delivery dated at the ends of time
    /// overflowed the age check.
    #[test]
    fn deliveries_dated_at_the_ends_of_time_are_refused_not_a_panic() {
        let now = Timestamp::from_unix_micros(1_800_000_000_000_000);
        for sent in [i64::MIN, i64::MIN + 1, i64::MAX] {
            assert!(check_age(sent, now, 2400).is_err(), "{sent}");
        }
    }
    const NOW_MS: i64 = 1_795_000_000_000;

    fn now() -> Timestamp {
        Timestamp::from_unix_micros(NOW_MS * 1000)
    }

    fn jira_body(sent_ms: i64) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "timestamp": sent_ms, "webhookEvent": "jira:issue_updated",
            "issue": { "id": "10001", "key": "ITSM-42", "fields": {} }
        }))
        .unwrap_or_default()
    }

    fn headers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn jira_deliveries_are_checked_over_the_raw_body() {
        let body = jira_body(NOW_MS - 5_000);
        let signature = sign(ItsmKind::Jira, SECRET, &body, 0);
        let signed = headers(&[(JIRA_SIGNATURE, &signature), (JIRA_DELIVERY, "d-1")]);
        let delivery =
            verify(ItsmKind::Jira, SECRET, 900, &signed, &body, now()).expect("authentic");
        assert_eq!(
            delivery,
            Delivery {
                id: "d-1".into(),
                ticket_key: "ITSM-42".into(),
                event: "jira:issue_updated".into()
            }
        );

        let mut tampered = body.clone();
        tampered.extend(b" ");
        assert_eq!(
            verify(ItsmKind::Jira, SECRET, 900, &signed, &tampered, now()),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(
                ItsmKind::Jira,
                "another-secret-entirely",
                900,
                &signed,
                &body,
                now()
            ),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(ItsmKind::Jira, SECRET, 900, &headers(&[]), &body, now()),
            Err(WebhookError::Unsigned(JIRA_SIGNATURE))
        );
        let sha1 = headers(&[(JIRA_SIGNATURE, "sha1=abcd")]);
        assert!(matches!(
            verify(ItsmKind::Jira, SECRET, 900, &sha1, &body, now()),
            Err(WebhookError::MalformedSignature(_))
        ));

        let old = jira_body(NOW_MS - 901_000);
        let signed_old = headers(&[(JIRA_SIGNATURE, &sign(ItsmKind::Jira, SECRET, &old, 0))]);
        assert_eq!(
            verify(ItsmKind::Jira, SECRET, 900, &signed_old, &old, now()),
            Err(WebhookError::Stale {
                age_seconds: 901,
                max_seconds: 900
            })
        );
    }

    #[test]
    fn servicenow_deliveries_sign_timestamp_and_body_in_base64() {
        let body = br#"{"number":"RITM0010001","sys_id":"aeed2290","sys_mod_count":"3","operation":"update"}"#;
        let sent = NOW_MS - 2_000;
        let signature = sign(ItsmKind::ServiceNow, SECRET, body, sent);
        assert!(
            !signature[7..].chars().all(|c| c.is_ascii_hexdigit()),
            "base64, not hex"
        );
        let sent_text = sent.to_string();
        let signed = headers(&[
            (SERVICENOW_SIGNATURE, &signature),
            (SERVICENOW_TIMESTAMP, &sent_text),
        ]);
        let delivery =
            verify(ItsmKind::ServiceNow, SECRET, 900, &signed, body, now()).expect("authentic");
        assert_eq!(
            (delivery.id.as_str(), delivery.ticket_key.as_str()),
            ("aeed2290:3", "RITM0010001")
        );

        // The timestamp is signed: moving it forward to dodge the window breaks the signature.
        let later = (sent + 1).to_string();
        let moved = headers(&[
            (SERVICENOW_SIGNATURE, &signature),
            (SERVICENOW_TIMESTAMP, &later),
        ]);
        assert_eq!(
            verify(ItsmKind::ServiceNow, SECRET, 900, &moved, body, now()),
            Err(WebhookError::BadSignature)
        );

        let future = NOW_MS + 120_000;
        let future_text = future.to_string();
        let early = headers(&[
            (
                SERVICENOW_SIGNATURE,
                &sign(ItsmKind::ServiceNow, SECRET, body, future),
            ),
            (SERVICENOW_TIMESTAMP, &future_text),
        ]);
        assert_eq!(
            verify(ItsmKind::ServiceNow, SECRET, 900, &early, body, now()),
            Err(WebhookError::FromTheFuture(120))
        );
    }
}
