//! Bearer tokens from OpenID Connect providers (`[[oidc]]`): the provider's signing keys
//! are discovered from its issuer (`/.well-known/openid-configuration`, then `jwks_uri`),
//! cached, and fetched again when a token names a key not seen yet — at most once per
//! [`REFETCH_INTERVAL`], so key rotation needs no restart and forged `kid`s cannot make
//! writ hammer the provider. A token is accepted only if it is signed with an asymmetric
//! algorithm (RS256, ES256, EdDSA) by a key its issuer publishes for that algorithm,
//! names writ's audience, and is within its `exp`/`nbf`/`iat` (with [`LEEWAY_SECONDS`]).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::RwLock;
use writ_config::OidcProvider;

/// Clock skew tolerated between writ and a provider.
pub const LEEWAY_SECONDS: u64 = 60;
/// The least time between two fetches of one provider's keys.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// The token is not one writ accepts; the text says why, for the caller.
    #[error("{0}")]
    Refused(String),
    /// The provider could not be asked for its keys: nothing can be accepted from it
    /// until it answers (fail closed).
    #[error("the identity provider {issuer} did not answer: {problem}")]
    Unavailable { issuer: String, problem: String },
    /// No HTTP client could be built (at start-up).
    #[error("cannot build an HTTP client: {0}")]
    Client(String),
}

/// An accepted token: who issued it, and the name it gives the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub issuer: String,
    pub username: String,
}

struct KeyCache {
    jwks_uri: Option<String>,
    keys: HashMap<String, (Algorithm, DecodingKey)>,
    fetched_at: Option<Instant>,
}

struct Provider {
    config: OidcProvider,
    /// Read on every token; written only when the keys are fetched.
    cache: RwLock<KeyCache>,
}

/// Checks bearer tokens against the configured providers. Builds nothing over the
/// network until the first token arrives.
pub struct OidcVerifier {
    providers: Vec<Provider>,
    http: reqwest::Client,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field(
                "issuers",
                &self
                    .providers
                    .iter()
                    .map(|p| &p.config.issuer)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
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

/// The unverified claims, only to find which provider to check the token against.
fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["iss"].as_str().map(str::to_string)
}

fn describe(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => "the token is not for writ (aud)".into(),
        ErrorKind::InvalidIssuer => "the token's issuer does not match (iss)".into(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::InvalidAlgorithm => "the token's algorithm does not match its key".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
        other => format!("the token is malformed ({other:?})"),
    }
}

impl OidcVerifier {
    /// A verifier for these providers, with its own HTTP client (no redirects: keys
    /// come from where the issuer says, or not at all).
    pub fn new(providers: &[OidcProvider]) -> Result<Self, OidcError> {
        // rustls needs one process-wide crypto provider; writ uses ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| OidcError::Client(e.to_string()))?;
        Ok(Self::with_client(providers, http))
    }

    fn with_client(providers: &[OidcProvider], http: reqwest::Client) -> Self {
        Self {
            providers: providers
                .iter()
                .map(|config| Provider {
                    config: config.clone(),
                    cache: RwLock::new(KeyCache {
                        jwks_uri: None,
                        keys: HashMap::new(),
                        fetched_at: None,
                    }),
                })
                .collect(),
            http,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Whether `token` looks like a JWT (three base64url parts), so is one to check here.
    pub fn looks_like_jwt(token: &str) -> bool {
        let parts: Vec<&str> = token.split('.').collect();
        parts.len() == 3
            && parts.iter().take(2).all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    }

    /// Checks `token` and says who it names.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, OidcError> {
        let refused = |text: &str| OidcError::Refused(text.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            refused("the token's header is not a JWS header with a supported algorithm")
        })?;
        if !matches!(
            header.alg,
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
        ) {
            return Err(OidcError::Refused(format!(
                "tokens signed with {:?} are not accepted (only RS256, ES256, EdDSA)",
                header.alg
            )));
        }
        let issuer =
            unverified_issuer(token).ok_or_else(|| refused("the token has no issuer (iss)"))?;
        let provider = self
            .providers
            .iter()
            .find(|p| p.config.issuer == issuer)
            .ok_or_else(|| {
                OidcError::Refused(format!("{issuer:?} is not a configured identity provider"))
            })?;
        let kid = header
            .kid
            .ok_or_else(|| refused("the token does not name its signing key (kid)"))?;
        let (algorithm, key) = provider.key(&self.http, &kid).await?;
        if algorithm != header.alg {
            return Err(OidcError::Refused(format!(
                "the token says {:?} but key {kid} signs with {algorithm:?}",
                header.alg
            )));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&provider.config.issuer]);
        validation.set_audience(&[&provider.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key,
            &validation,
        )
        .map_err(|e| OidcError::Refused(describe(&e)))?;
        let claims = data.claims;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if claims
            .get("iat")
            .and_then(serde_json::Value::as_u64)
            .is_some_and(|iat| iat > now + LEEWAY_SECONDS)
        {
            return Err(refused("the token was issued in the future (iat)"));
        }
        let claim = &provider.config.username_claim;
        let username = claims
            .get(claim)
            .and_then(serde_json::Value::as_str)
            .filter(|name| !name.is_empty())
            .ok_or_else(|| OidcError::Refused(format!("the token has no {claim} claim")))?;
        Ok(VerifiedToken {
            issuer: provider.config.issuer.clone(),
            username: username.to_string(),
        })
    }
}

impl Provider {
    async fn key(
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
            cache.jwks_uri = Some(jwks_uri);
            cache.keys = keys;
            cache.fetched_at = Some(Instant::now());
            tracing::info!(issuer = %self.config.issuer, keys = cache.keys.len(), "fetched the identity provider's signing keys");
        }
        cache.keys.get(kid).cloned().ok_or_else(|| {
            OidcError::Refused(format!(
                "the token is signed with key {kid:?}, which {} does not publish",
                self.config.issuer
            ))
        })
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        jwks_uri: Option<String>,
    ) -> Result<(String, HashMap<String, (Algorithm, DecodingKey)>), OidcError> {
        let unavailable = |problem: String| OidcError::Unavailable {
            issuer: self.config.issuer.clone(),
            problem,
        };
        let get_json = |url: String| async move {
            let response = http
                .get(&url)
                .timeout(FETCH_TIMEOUT)
                .send()
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("{url} answered {}", response.status()));
            }
            response
                .json::<serde_json::Value>()
                .await
                .map_err(|e| format!("{url}: {e}"))
        };
        let jwks_uri = match jwks_uri {
            Some(uri) => uri,
            None => {
                let discovery_url = format!(
                    "{}/.well-known/openid-configuration",
                    self.config.issuer.trim_end_matches('/')
                );
                let discovery = get_json(discovery_url).await.map_err(unavailable)?;
                // OpenID Connect Discovery §4.3: the document must be the issuer's own.
                if discovery["issuer"].as_str() != Some(self.config.issuer.as_str()) {
                    return Err(unavailable(format!(
                        "its discovery document names issuer {}, not {}",
                        discovery["issuer"], self.config.issuer
                    )));
                }
                discovery["jwks_uri"]
                    .as_str()
                    .ok_or_else(|| unavailable("its discovery document has no jwks_uri".into()))?
                    .to_string()
            }
        };
        let document = get_json(jwks_uri.clone()).await.map_err(unavailable)?;
        let set: JwkSet = serde_json::from_value(document)
            .map_err(|e| unavailable(format!("{jwks_uri} is not a JWK set: {e}")))?;
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
                    tracing::warn!(issuer = %self.config.issuer, %kid, %error, "a published key could not be read; ignored");
                }
            }
        }
        Ok((jwks_uri, keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_three_base64url_parts_look_like_a_jwt() {
        assert!(OidcVerifier::looks_like_jwt("eyJh.eyJi.c2ln"));
        assert!(
            OidcVerifier::looks_like_jwt("eyJh.eyJi."),
            "alg none has an empty signature"
        );
        assert!(!OidcVerifier::looks_like_jwt("writ_abc"));
        assert!(!OidcVerifier::looks_like_jwt("a.b"));
        assert!(!OidcVerifier::looks_like_jwt("a.b.c.d"));
        assert!(!OidcVerifier::looks_like_jwt("a b.c.d"));
    }

    #[tokio::test]
    async fn symmetric_and_unsigned_tokens_are_refused_before_any_key_is_fetched() {
        // No provider answers on this issuer: a refusal proves nothing was fetched.
        let verifier = OidcVerifier::new(&[OidcProvider {
            issuer: "http://127.0.0.1:9".into(),
            audience: "writ".into(),
            username_claim: "preferred_username".into(),
        }])
        .expect("a verifier");
        let b64 = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        let payload = b64(
            r#"{"iss":"http://127.0.0.1:9","aud":"writ","exp":9999999999,"preferred_username":"alice"}"#,
        );
        for header in [
            r#"{"alg":"none","kid":"k1"}"#,
            r#"{"alg":"HS256","kid":"k1"}"#,
            r#"{"alg":"RS384","kid":"k1"}"#,
        ] {
            let token = format!("{}.{payload}.c2ln", b64(header));
            let refused = verifier.verify(&token).await.expect_err(header);
            assert!(
                matches!(refused, OidcError::Refused(_)),
                "{header}: {refused}"
            );
        }
    }
}
