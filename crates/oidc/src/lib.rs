//! Bearer tokens signed by someone writ trusts: OpenID Connect providers (`[[oidc]]`),
//! whose tokens name a person, and workload issuers (`[[workload_issuer]]`:
//! Kubernetes, GitHub Actions, SPIFFE), whose tokens name a workload by `sub`. The
//! signing keys are discovered from the issuer (`/.well-known/openid-configuration`,
//! then `jwks_uri`) or read from a configured URL or file, cached, and fetched again
//! when a token names a key not seen yet — at most once per [`REFETCH_INTERVAL`], so key
//! rotation needs no restart and forged `kid`s cannot make writ hammer the issuer. A
//! token is accepted only if it is signed with an asymmetric algorithm (RS256, ES256,
//! EdDSA) by a key its issuer publishes for that algorithm, names writ's audience, and
//! is within its `exp`/`nbf`/`iat` (with [`LEEWAY_SECONDS`]); a workload token must also
//! not live longer than its issuer's `max_lifetime`.

mod keys;
pub mod signin;

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use writ_config::{OidcProvider, WorkloadIssuer};

use crate::keys::KeySource;

/// Clock skew tolerated between writ and an issuer.
pub const LEEWAY_SECONDS: u64 = 60;
/// The least time between two fetches of one issuer's keys.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// The token is not one writ accepts; the text says why, for the caller.
    #[error("{0}")]
    Refused(String),
    /// The issuer could not be asked for its keys: nothing can be accepted from it
    /// until it answers (fail closed).
    #[error("the identity provider {issuer} did not answer: {problem}")]
    Unavailable { issuer: String, problem: String },
    /// No HTTP client could be built (at start-up).
    #[error("cannot build an HTTP client: {0}")]
    Client(String),
}

/// The most actors one token may name (RFC 8693 `act`, nested): the current actor and
/// the prior ones. A longer chain is refused rather than partly read.
pub const ACTORS_MAX: usize = 8;

/// An accepted token: who issued it, whom it names, and who acts for them.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    pub issuer: String,
    pub subject: TokenSubject,
    /// RFC 8693 §4.1: the `act` claim's chain, the current actor first, then each prior
    /// actor nested inside it. Empty when the token has no `act`. Each is named as its
    /// issuer names callers: the `act` object's own `iss` if it has one, else the
    /// token's.
    pub actors: Vec<TokenSubject>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TokenSubject {
    /// A person, by the provider's username claim.
    Person(String),
    /// A workload: the `[[workload_issuer]]`'s name, the token's `sub`, and all its
    /// claims (for the bindings' claim conditions).
    Workload {
        issuer_name: String,
        subject: String,
        claims: Map<String, Value>,
    },
}

/// What an issuer's tokens say about the caller.
enum Names {
    Person {
        username_claim: String,
    },
    Workload {
        name: String,
        max_lifetime_seconds: i64,
    },
}

struct Issuer {
    issuer: String,
    audience: String,
    names: Names,
    keys: KeySource,
}

/// Checks bearer tokens against the configured issuers. Fetches nothing until the
/// first token arrives.
pub struct OidcVerifier {
    issuers: Vec<Issuer>,
    http: reqwest::Client,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field(
                "issuers",
                &self.issuers.iter().map(|i| &i.issuer).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// One actor of a token's `act` chain, `depth` actors in: an object with a `sub`.
fn actor_claims(act: &Value, depth: usize) -> Result<&Map<String, Value>, OidcError> {
    let refused = |why: &str| OidcError::Refused(format!("the token's act claim {why}"));
    if depth >= ACTORS_MAX {
        return Err(refused(&format!(
            "nests more than {ACTORS_MAX} actors; writ reads no longer chains"
        )));
    }
    let act = act
        .as_object()
        .ok_or_else(|| refused("is not a JSON object (RFC 8693 §4.1)"))?;
    match act.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => {}
        _ => return Err(refused("has an actor without a sub")),
    }
    if act.get("iss").is_some_and(|iss| !iss.is_string()) {
        return Err(refused("has an actor whose iss is not a string"));
    }
    Ok(act)
}

/// The unverified claims, only to find which issuer to check the token against.
fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
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

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl OidcVerifier {
    /// A verifier for these issuers, with its own HTTP client (no redirects: keys come
    /// from where the issuer says, or not at all).
    pub fn new(
        providers: &[OidcProvider],
        workloads: &[WorkloadIssuer],
    ) -> Result<Self, OidcError> {
        // rustls needs one process-wide crypto provider; writ uses ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| OidcError::Client(e.to_string()))?;
        let people = providers.iter().map(|p| Issuer {
            issuer: p.issuer.clone(),
            audience: p.audience.clone(),
            names: Names::Person {
                username_claim: p.username_claim.clone(),
            },
            keys: KeySource::new(&p.issuer, &writ_config::JwksSource::Discovery),
        });
        let workloads = workloads.iter().map(|w| Issuer {
            issuer: w.issuer.clone(),
            audience: w.audience.clone(),
            names: Names::Workload {
                name: w.name.clone(),
                max_lifetime_seconds: w.max_lifetime_seconds,
            },
            keys: KeySource::new(&w.issuer, &w.keys),
        });
        Ok(Self {
            issuers: people.chain(workloads).collect(),
            http,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
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

    /// Checks `token` and says whom it names.
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
        let issuer_text =
            unverified_issuer(token).ok_or_else(|| refused("the token has no issuer (iss)"))?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.issuer == issuer_text)
            .ok_or_else(|| {
                OidcError::Refused(format!(
                    "{issuer_text:?} is not a configured identity provider or workload issuer"
                ))
            })?;
        let kid = header
            .kid
            .ok_or_else(|| refused("the token does not name its signing key (kid)"))?;
        let (algorithm, key) = issuer.keys.key(&self.http, &kid).await?;
        if algorithm != header.alg {
            return Err(OidcError::Refused(format!(
                "the token says {:?} but key {kid} signs with {algorithm:?}",
                header.alg
            )));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&issuer.issuer]);
        validation.set_audience(&[&issuer.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| OidcError::Refused(describe(&e)))?
            .claims;
        let now = now_seconds();
        let iat = claims.get("iat").and_then(Value::as_u64);
        if iat.is_some_and(|iat| iat > now + LEEWAY_SECONDS) {
            return Err(refused("the token was issued in the future (iat)"));
        }
        if let Names::Workload {
            name,
            max_lifetime_seconds,
        } = &issuer.names
        {
            // A token without `iat` is measured from now: what is left of it.
            let exp = claims
                .get("exp")
                .and_then(Value::as_u64)
                .unwrap_or(u64::MAX);
            let lifetime = exp.saturating_sub(iat.unwrap_or(now));
            let allowed = u64::try_from(*max_lifetime_seconds).unwrap_or(0);
            if lifetime > allowed + LEEWAY_SECONDS {
                return Err(OidcError::Refused(format!(
                    "the token lives {lifetime} s; {name} tokens may live at most {allowed} s (max_lifetime)"
                )));
            }
        }
        let actors = self.actors(issuer, &claims)?;
        let subject = issuer.names.subject(claims, false)?;
        Ok(VerifiedToken {
            issuer: issuer.issuer.clone(),
            subject,
            actors,
        })
    }

    /// The token's actor chain (RFC 8693 `act`), each actor named as its issuer (the
    /// actor's `iss`, else the token's) names callers. An actor from an issuer writ
    /// does not trust is refused: nobody could say who it is.
    fn actors(
        &self,
        token_issuer: &Issuer,
        claims: &Map<String, Value>,
    ) -> Result<Vec<TokenSubject>, OidcError> {
        let mut actors = Vec::new();
        let mut next = claims.get("act");
        while let Some(act) = next {
            let act = actor_claims(act, actors.len())?;
            let issuer = match act.get("iss").and_then(Value::as_str) {
                None => token_issuer,
                Some(iss) => self.issuers.iter().find(|i| i.issuer == iss).ok_or_else(|| {
                    OidcError::Refused(format!(
                        "the token's act claim names an actor from {iss:?}, which is not a configured identity provider or workload issuer"
                    ))
                })?,
            };
            actors.push(issuer.names.subject(act.clone(), true)?);
            next = act.get("act");
        }
        Ok(actors)
    }
}

impl Names {
    /// Whom `claims` (a token's, or with `actor` one actor's in its `act`) name, as this
    /// issuer names callers.
    fn subject(&self, claims: Map<String, Value>, actor: bool) -> Result<TokenSubject, OidcError> {
        let what = if actor {
            "the token's act claim"
        } else {
            "the token"
        };
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|value| !value.is_empty())
                .map(str::to_string)
        };
        match self {
            Self::Person { username_claim } => {
                // An actor object carries `sub` and often nothing else (RFC 8693 §4.1).
                let username = text(username_claim)
                    .or_else(|| actor.then(|| text("sub")).flatten())
                    .ok_or_else(|| {
                        OidcError::Refused(format!("{what} has no {username_claim} claim"))
                    })?;
                Ok(TokenSubject::Person(username))
            }
            Self::Workload { name, .. } => {
                let subject = text("sub")
                    .ok_or_else(|| OidcError::Refused(format!("{what} has no sub claim")))?;
                Ok(TokenSubject::Workload {
                    issuer_name: name.clone(),
                    subject,
                    claims,
                })
            }
        }
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

    fn provider(issuer: &str) -> OidcProvider {
        OidcProvider {
            issuer: issuer.into(),
            audience: "writ".into(),
            username_claim: "preferred_username".into(),
            cli_client_id: None,
            web_client_id: None,
            web_client_secret: None,
            scopes: Vec::new(),
        }
    }

    /// A verifier trusting one provider (people by preferred_username) and one workload
    /// issuer, `github`; nothing is fetched to read an `act` chain.
    fn chain_reader() -> OidcVerifier {
        OidcVerifier::new(
            &[provider("https://idp.test")],
            &[WorkloadIssuer {
                name: "github".into(),
                issuer: "https://gh.test".into(),
                audience: "writ".into(),
                keys: writ_config::JwksSource::Url("https://gh.test/jwks".into()),
                max_lifetime_seconds: 600,
            }],
        )
        .expect("a verifier")
    }

    fn chain_of(claims: Value) -> Result<Vec<TokenSubject>, OidcError> {
        let verifier = chain_reader();
        let claims = claims.as_object().cloned().unwrap_or_default();
        verifier.actors(&verifier.issuers[0], &claims)
    }

    fn person(name: &str) -> TokenSubject {
        TokenSubject::Person(name.into())
    }

    #[test]
    fn an_act_chain_is_read_current_actor_first_each_named_by_its_issuer() {
        assert_eq!(chain_of(serde_json::json!({"sub": "alice"})), Ok(vec![]));
        assert_eq!(
            chain_of(serde_json::json!({
                "act": {"sub": "helper", "act": {"sub": "p-123", "preferred_username": "planner"}}
            })),
            Ok(vec![person("helper"), person("planner")])
        );
        let act =
            serde_json::json!({"sub": "repo:acme/infra", "iss": "https://gh.test", "job": "x"});
        assert_eq!(
            chain_of(serde_json::json!({ "act": act })),
            Ok(vec![TokenSubject::Workload {
                issuer_name: "github".into(),
                subject: "repo:acme/infra".into(),
                claims: act.as_object().cloned().unwrap_or_default(),
            }])
        );
        for (act, says) in [
            (serde_json::json!("helper"), "not a JSON object"),
            (serde_json::json!({"sub": ""}), "without a sub"),
            (serde_json::json!({"sub": 7}), "without a sub"),
            (
                serde_json::json!({"sub": "h", "iss": 7}),
                "iss is not a string",
            ),
            (
                serde_json::json!({"sub": "h", "iss": "https://other.test"}),
                "not a configured identity provider",
            ),
            (
                serde_json::json!({"sub": "h", "act": {"sub": "h2", "act": []}}),
                "not a JSON object",
            ),
        ] {
            match chain_of(serde_json::json!({ "act": act })) {
                Err(OidcError::Refused(why)) => assert!(why.contains(says), "{act}: {why}"),
                other => panic!("{act}: {other:?}"),
            }
        }
    }

    proptest::proptest! {
        /// Any nesting of actors is read whole, in order, up to ACTORS_MAX, and refused
        /// (never cut short) beyond.
        #[test]
        fn act_chains_are_read_whole_or_refused(names in proptest::collection::vec("[a-z]{1,8}", 1..14)) {
            let mut act = Value::Null;
            for name in names.iter().rev() {
                act = if act.is_null() {
                    serde_json::json!({ "sub": name })
                } else {
                    serde_json::json!({ "sub": name, "act": act })
                };
            }
            let read = chain_of(serde_json::json!({ "act": act }));
            if names.len() <= ACTORS_MAX {
                let expected: Vec<TokenSubject> = names.iter().map(|n| person(n)).collect();
                proptest::prop_assert_eq!(read, Ok(expected));
            } else {
                proptest::prop_assert!(matches!(read, Err(OidcError::Refused(_))));
            }
        }
    }

    #[tokio::test]
    async fn symmetric_and_unsigned_tokens_are_refused_before_any_key_is_fetched() {
        // No provider answers on this issuer: a refusal proves nothing was fetched.
        let verifier =
            OidcVerifier::new(&[provider("http://127.0.0.1:9")], &[]).expect("a verifier");
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
