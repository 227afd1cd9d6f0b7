//! Sending notifications (CloudEvents, structured mode) to a configured URL.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use writ_config::Notify;

use crate::ItsmError;

/// Header carrying `sha256=<hex HMAC-SHA256(secret, body)>` when the sink has a secret.
pub const SIGNATURE_HEADER: &str = "x-writ-signature";

pub struct Notifier {
    config: Notify,
    http: reqwest::Client,
}

/// The signature writ puts on a notification body.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Notifier {
    pub fn new(config: &Notify) -> Result<Self, ItsmError> {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(crate::CALL_TIMEOUT)
            .build()
            .map_err(|e| ItsmError::Unreachable {
                system: config.name.clone(),
                problem: e.to_string(),
            })?;
        Ok(Self {
            config: config.clone(),
            http,
        })
    }

    pub fn config(&self) -> &Notify {
        &self.config
    }

    /// POSTs one CloudEvent; any 2xx is success.
    pub async fn send(&self, body: Vec<u8>, content_type: &str) -> Result<(), ItsmError> {
        let mut request = self
            .http
            .post(&self.config.url)
            .header("Content-Type", content_type);
        if let Some(secret) = &self.config.secret {
            request = request.header(SIGNATURE_HEADER, signature(secret, &body));
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| ItsmError::Unreachable {
                system: self.config.name.clone(),
                problem: e.to_string(),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(ItsmError::Refused {
            system: self.config.name.clone(),
            status: status.as_u16(),
            body: body.chars().take(300).collect(),
        })
    }
}
