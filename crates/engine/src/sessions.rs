//! Browser sign-in: a person signs in at the OpenID provider (authorization code with
//! PKCE, as writ's web client), and writ gives the browser a session — a token of its
//! own (`writs_…`, stored as its keyed hash like every token, issued and revoked on
//! the ledger) carried in an HttpOnly cookie, never accepted as a bearer token. Forms
//! that change something carry the session's CSRF token, derived from the session
//! with the token key. The sign-in under way lives in a cookie sealed with the token
//! key, so any writ node can finish it.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;
use writ_domain::Timestamp;
use writ_domain::ledger::EventKind;
use writ_oidc::signin::SignIn;

use crate::{Caller, Engine, EngineError, ErrorCode};

/// Session secrets start so; bearer tokens (`writ_`) never do.
pub const SESSION_PREFIX: &str = "writs_";
/// How long a browser may take at the provider.
const SIGN_IN_SECONDS: i64 = 600;

/// A session just started: the secret for the cookie, and until when it lasts.
#[derive(Debug)]
pub struct Session {
    pub secret: String,
    pub expires_at: Timestamp,
}

/// A browser sign-in under way: where to send the browser, and the sealed cookie that
/// must come back with it.
#[derive(Debug)]
pub struct SignInStart {
    pub redirect_to: String,
    pub cookie: String,
}

/// What the sign-in cookie holds: only its own browser can finish the sign-in.
#[derive(Serialize, Deserialize)]
struct PendingSignIn {
    issuer: String,
    state: String,
    verifier: String,
    return_to: String,
    /// Unix seconds.
    until: i64,
}

fn sign_in_failed(why: impl Into<String>) -> EngineError {
    EngineError::new(ErrorCode::SignInFailed, why)
}

/// Where a browser may be sent after signing in: a path on writ itself, so a link
/// cannot use writ's sign-in to send people elsewhere.
pub fn is_local_path(return_to: &str) -> bool {
    return_to.starts_with('/')
        && !return_to.starts_with("//")
        && !return_to.contains('\\')
        && !return_to.chars().any(char::is_control)
}

impl Engine {
    fn web_provider(
        &self,
        issuer: Option<&str>,
    ) -> Result<&writ_config::OidcProvider, EngineError> {
        let mut offered = self
            .config
            .oidc
            .iter()
            .filter(|p| p.web_client_id.is_some());
        let chosen = match issuer {
            Some(issuer) => offered.find(|p| p.issuer == issuer),
            None => {
                let first = offered.next();
                if offered.next().is_some() {
                    return Err(EngineError::new(
                        ErrorCode::MalformedRequest,
                        "several providers offer browser sign-in: name one with ?provider=ISSUER",
                    ));
                }
                first
            }
        };
        chosen.ok_or_else(|| {
            EngineError::new(
                ErrorCode::SignInUnavailable,
                "no [[oidc]] provider with a web_client_id offers browser sign-in here",
            )
        })
    }

    async fn web_client(
        &self,
        provider: &writ_config::OidcProvider,
    ) -> Result<SignIn, EngineError> {
        let client_id = provider.web_client_id.as_deref().unwrap_or_default();
        SignIn::discover(
            &provider.issuer,
            client_id,
            provider.web_client_secret.as_ref().map(|s| s.0.as_str()),
            &provider.audience,
            &provider.scopes,
        )
        .await
        .map_err(|e| EngineError::new(ErrorCode::IdentityProviderUnavailable, e.to_string()))
    }

    fn redirect_uri(&self) -> Result<String, EngineError> {
        self.config
            .public_url
            .as_ref()
            .map(|url| format!("{url}/auth/callback"))
            .ok_or_else(|| {
                EngineError::new(ErrorCode::SignInUnavailable, "server.public_url is not set")
            })
    }

    /// Starts a browser sign-in through `issuer` (or the one provider that offers it);
    /// the browser comes back to `return_to` on writ.
    pub async fn start_sign_in(
        &self,
        issuer: Option<&str>,
        return_to: &str,
    ) -> Result<SignInStart, EngineError> {
        if !is_local_path(return_to) {
            return Err(EngineError::new(
                ErrorCode::MalformedRequest,
                "return_to must be a path on writ (starting with a single /)",
            ));
        }
        let provider = self.web_provider(issuer)?;
        let client = self.web_client(provider).await?;
        let authorization = client
            .authorize(&self.redirect_uri()?)
            .map_err(|e| sign_in_failed(e.to_string()))?;
        let pending = PendingSignIn {
            issuer: provider.issuer.clone(),
            state: authorization.state,
            verifier: authorization.verifier,
            return_to: return_to.to_string(),
            until: self.clock.now().unix_micros() / 1_000_000 + SIGN_IN_SECONDS,
        };
        let payload = serde_json::to_string(&pending).map_err(|e| sign_in_failed(e.to_string()))?;
        Ok(SignInStart {
            redirect_to: authorization.url,
            cookie: self.seal(&payload)?,
        })
    }

    /// Finishes a browser sign-in: the provider sent the browser back with `code` and
    /// `state`, and the browser brought `cookie`. Starts a session for the person the
    /// provider's token names; the session and where to send the browser.
    pub async fn finish_sign_in(
        &self,
        cookie: Option<&str>,
        state: &str,
        code: &str,
    ) -> Result<(Session, String), EngineError> {
        let pending: PendingSignIn = cookie
            .and_then(|cookie| self.unseal(cookie))
            .and_then(|payload| serde_json::from_str(&payload).ok())
            .ok_or_else(|| {
                sign_in_failed(
                    "this browser did not start a sign-in here (or it was altered); start again",
                )
            })?;
        if !bool::from(pending.state.as_bytes().ct_eq(state.as_bytes())) {
            return Err(sign_in_failed(
                "the provider's answer belongs to another sign-in; start again",
            ));
        }
        if pending.until < self.clock.now().unix_micros() / 1_000_000 {
            return Err(sign_in_failed("the sign-in took too long; start again"));
        }
        let provider = self.web_provider(Some(&pending.issuer))?;
        let client = self.web_client(provider).await?;
        let tokens = client
            .exchange_code(code, &pending.verifier, &self.redirect_uri()?)
            .await
            .map_err(|e| sign_in_failed(e.to_string()))?;
        // The same checks as any bearer token: signature, audience, lifetime, and a
        // configured person who is not disabled.
        let caller = self.authenticate(&tokens.access_token).await?;
        if caller.kind != writ_domain::IdentityKind::User {
            return Err(sign_in_failed("only people sign in with a browser"));
        }
        let session = self.start_session(&caller, &pending.issuer).await?;
        Ok((session, pending.return_to))
    }

    /// Whether a provider offers browser sign-in (then people sign in there, not with
    /// a token typed into writ's sign-in page).
    pub fn offers_provider_sign_in(&self) -> bool {
        self.config.oidc.iter().any(|p| p.web_client_id.is_some())
    }

    /// Starts a session for the person a writ token names, typed into the sign-in page
    /// of a writ with no browser sign-in provider (the quickstart). The same checks as
    /// the token used as a bearer token; only people, and never with a session's own
    /// secret.
    pub async fn sign_in_with_token(&self, token: &str) -> Result<Session, EngineError> {
        if self.offers_provider_sign_in() {
            return Err(sign_in_failed(
                "this writ signs people in with their identity provider, not with a token",
            ));
        }
        if token.starts_with(SESSION_PREFIX) {
            return Err(EngineError::unauthenticated(
                "that is a browser session, not a token; sign in with a writ token",
            ));
        }
        let caller = self.authenticate(token).await?;
        if caller.kind != writ_domain::IdentityKind::User {
            return Err(sign_in_failed(format!(
                "{} is not a person: only people sign in with a browser",
                caller.name
            )));
        }
        self.start_session(&caller, "writ token").await
    }

    async fn start_session(&self, caller: &Caller, issuer: &str) -> Result<Session, EngineError> {
        let key = self.tokens.key.as_ref().ok_or_else(|| {
            EngineError::unauthenticated("this writ has no token key, so it starts no sessions")
        })?;
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| EngineError::new(ErrorCode::NoRandomness, e.to_string()))?;
        let secret = format!(
            "{SESSION_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        );
        let hash = key.hash(&secret);
        let now = self.clock.now();
        let expires_at = now.plus_seconds(self.config.session_lifetime_seconds);
        let mut tx = self.store.begin().await?;
        tx.insert_token(&hash, caller.name.as_str(), now, expires_at)
            .await?;
        let data = json!({
            "identity": caller.name, "token_id": &hash[..writ_store::TOKEN_ID_LEN],
            "expires_at": expires_at, "session": true, "signed_in_with": issuer,
        });
        tx.append(now, &caller.actor(), EventKind::TokenIssued, &data)
            .await?;
        tx.commit().await?;
        tracing::info!(identity = %caller.name, %issuer, "browser sign-in");
        Ok(Session { secret, expires_at })
    }

    /// The person a session cookie belongs to.
    pub async fn authenticate_session(&self, secret: &str) -> Result<Caller, EngineError> {
        if !secret.starts_with(SESSION_PREFIX) || secret.len() > 100 {
            return Err(EngineError::unauthenticated(
                "the session cookie is unknown, expired or malformed; sign in again",
            ));
        }
        let record = self.live_token(secret, "the session").await?;
        self.caller_named(&record.identity)
    }

    /// The CSRF token of a session: forms and calls that change something send it back
    /// (`X-CSRF-Token`); a page on another site cannot know it.
    pub fn csrf_token(&self, secret: &str) -> Result<String, EngineError> {
        let key = self.tokens.key.as_ref().ok_or_else(|| {
            EngineError::unauthenticated("this writ has no token key, so it has no sessions")
        })?;
        Ok(key.hash(&format!("csrf\0{secret}"))[..32].to_string())
    }

    pub fn csrf_matches(&self, secret: &str, given: &str) -> bool {
        self.csrf_token(secret)
            .is_ok_and(|expected| bool::from(expected.as_bytes().ct_eq(given.as_bytes())))
    }

    /// Ends a session (sign-out): on the ledger as `token.revoked`.
    pub async fn end_session(&self, secret: &str) -> Result<(), EngineError> {
        let caller = self.authenticate_session(secret).await?;
        let key = self.tokens.key.as_ref().ok_or_else(|| {
            EngineError::unauthenticated("this writ has no token key, so it has no sessions")
        })?;
        let hash = key.hash(secret);
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        tx.revoke_token(&hash, now).await?;
        let data = json!({
            "identity": caller.name, "token_id": &hash[..writ_store::TOKEN_ID_LEN],
            "revoked_by": caller.name, "session": true,
        });
        tx.append(now, &caller.actor(), EventKind::TokenRevoked, &data)
            .await?;
        tx.commit().await?;
        self.forget_token(&hash);
        Ok(())
    }

    /// `payload` with a tag made with the token key: `base64(payload).tag`.
    fn seal(&self, payload: &str) -> Result<String, EngineError> {
        let key = self.tokens.key.as_ref().ok_or_else(|| {
            EngineError::new(ErrorCode::SignInUnavailable, "this writ has no token key")
        })?;
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload);
        let tag = key.hash(&format!("sign-in\0{encoded}"));
        Ok(format!("{encoded}.{tag}"))
    }

    /// The payload of a sealed value, if writ sealed it.
    fn unseal(&self, sealed: &str) -> Option<String> {
        let key = self.tokens.key.as_ref()?;
        let (encoded, tag) = sealed.split_once('.')?;
        let expected = key.hash(&format!("sign-in\0{encoded}"));
        if !bool::from(expected.as_bytes().ct_eq(tag.as_bytes())) {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .ok()?;
        String::from_utf8(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::is_local_path;

    #[test]
    fn only_paths_on_writ_are_places_to_return_to() {
        for ok in ["/", "/ui/grants", "/v1/whoami?x=1"] {
            assert!(is_local_path(ok), "{ok}");
        }
        for bad in [
            "https://evil.example",
            "//evil.example/x",
            "/\\evil.example",
            "evil",
            "",
            "/ui\r\nSet-Cookie: x=y",
        ] {
            assert!(!is_local_path(bad), "{bad:?}");
        }
    }
}
