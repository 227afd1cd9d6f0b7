//! One issuer's signing keys: where they come from (discovery, a URL, a file), the
//! cache, and the rate-limited refetch when a token names a key not seen yet.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use tokio::sync::RwLock;
use writ_config::JwksSource;

use crate::{FETCH_TIMEOUT, OidcError, REFETCH_INTERVAL};

type Keys = HashMap<String, (Algorithm, DecodingKey)>;

struct KeyCache {
    /// Discovered once, then kept.
    jwks_uri: Option<String>,
    keys: Keys,
    fetched_at: Option<Instant>,
}

enum Location {
    Discovery,
    Url(String),
    File(PathBuf),
}

pub(crate) struct KeySource {
    issuer: String,
    location: Location,
    /// Read on every token; written only when the keys are fetched.
    cache: RwLock<KeyCache>,
}

/// The algorithm a published key may sign with, from its type: asymmetric only. A
/// symmetric key (`kty: oct`) published in a JWKS is never trusted.
fn algorithm_of(parameters: &AlgorithmParameters) -> Option<Algorithm> {
    match parameters {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(_) => Some(Algorithm::ES256),
        AlgorithmParameters::OctetKeyPair(_) => Some(Algorithm::EdDSA),
        _ => None,
    }
}

impl KeySource {
    pub(crate) fn new(issuer: &str, source: &JwksSource) -> Self {
        Self {
            issuer: issuer.to_string(),
            location: match source {
                JwksSource::Discovery => Location::Discovery,
                JwksSource::Url(url) => Location::Url(url.clone()),
                JwksSource::File(path) => Location::File(path.clone()),
            },
            cache: RwLock::new(KeyCache {
                jwks_uri: None,
                keys: HashMap::new(),
                fetched_at: None,
            }),
        }
    }

    pub(crate) async fn key(
        &self,
        http: &reqwest::Client,
        kid: &str,
    ) -> Result<(Algorithm, DecodingKey), OidcError> {
        if let Some(found) = self.cache.read().await.keys.get(kid) {
            return Ok(found.clone());
        }
        let mut cache = self.cache.write().await;
        // Another caller may have fetched them while this one waited.
        if let Some(found) = cache.keys.get(kid) {
            return Ok(found.clone());
        }
        let may_fetch = cache
            .fetched_at
            .is_none_or(|at| at.elapsed() >= REFETCH_INTERVAL);
        if may_fetch {
            let (jwks_uri, keys) = self.fetch(http, cache.jwks_uri.clone()).await?;
            cache.jwks_uri = jwks_uri;
            cache.keys = keys;
            cache.fetched_at = Some(Instant::now());
            tracing::info!(issuer = %self.issuer, keys = cache.keys.len(), "fetched the issuer's signing keys");
        }
        cache.keys.get(kid).cloned().ok_or_else(|| {
            OidcError::Refused(format!(
                "the token is signed with key {kid:?}, which {} does not publish",
                self.issuer
            ))
        })
    }

    fn unavailable(&self, problem: String) -> OidcError {
        OidcError::Unavailable {
            issuer: self.issuer.clone(),
            problem,
        }
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        jwks_uri: Option<String>,
    ) -> Result<(Option<String>, Keys), OidcError> {
        let (jwks_uri, document) = match &self.location {
            Location::File(path) => {
                let text = tokio::fs::read(path)
                    .await
                    .map_err(|e| self.unavailable(format!("{}: {e}", path.display())))?;
                let document = serde_json::from_slice::<Value>(&text)
                    .map_err(|e| self.unavailable(format!("{}: not JSON: {e}", path.display())))?;
                (None, document)
            }
            Location::Url(url) => (
                Some(url.clone()),
                get_json(http, url).await.map_err(|e| self.unavailable(e))?,
            ),
            Location::Discovery => {
                let uri = match jwks_uri {
                    Some(uri) => uri,
                    None => self.discover(http).await?,
                };
                let document = get_json(http, &uri)
                    .await
                    .map_err(|e| self.unavailable(e))?;
                (Some(uri), document)
            }
        };
        let set: JwkSet = serde_json::from_value(document)
            .map_err(|e| self.unavailable(format!("not a JWK set: {e}")))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let Some(algorithm) = algorithm_of(&jwk.algorithm) else {
                continue;
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    keys.insert(kid, (algorithm, key));
                }
                Err(error) => {
                    tracing::warn!(issuer = %self.issuer, %kid, %error, "a published key could not be read; ignored");
                }
            }
        }
        Ok((jwks_uri, keys))
    }

    /// The `jwks_uri` of the issuer's discovery document.
    async fn discover(&self, http: &reqwest::Client) -> Result<String, OidcError> {
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let discovery = get_json(http, &discovery_url)
            .await
            .map_err(|e| self.unavailable(e))?;
        // OpenID Connect Discovery §4.3: the document must be the issuer's own.
        if discovery["issuer"].as_str() != Some(self.issuer.as_str()) {
            return Err(self.unavailable(format!(
                "its discovery document names issuer {}, not {}",
                discovery["issuer"], self.issuer
            )));
        }
        discovery["jwks_uri"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.unavailable("its discovery document has no jwks_uri".into()))
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let response = http
        .get(url)
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    response
        .json::<Value>()
        .await
        .map_err(|e| format!("{url}: {e}"))
}
