//! Bearer tokens: 256 random bits, shown once, stored only as their HMAC-SHA-256 under
//! the token key (`[keys]`, kept outside the database); issued and revoked on the ledger.

use base64::Engine as _;
use serde_json::json;
use subtle::ConstantTimeEq;
use writ_config::{Config, WorkloadBinding};
use writ_domain::ledger::{EventKind, SystemActor};
use writ_domain::{IdentityKind, Timestamp};
use writ_oidc::TokenSubject;
use writ_store::{Store, TOKEN_ID_LEN, TokenListing, TokenRecord};

use crate::keys::TokenKey;
use crate::{Caller, Engine, EngineError, ErrorCode};

pub const DEFAULT_TOKEN_TTL_SECONDS: i64 = 3600;
/// A token found in the store is remembered this long, saving a read per API call.
/// (Its expiry is still checked on every call; a revocation through this server drops
/// it at once.)
pub const TOKEN_CACHE_SECONDS: i64 = 30;
const TOKEN_CACHE_ENTRIES_MAX: usize = 10_000;
/// Tokens live at most 90 days; longer-lived access is a new token, on the record.
pub const TOKEN_TTL_MAX_SECONDS: i64 = 90 * 24 * 3600;
const TOKEN_PREFIX: &str = "writ_";

/// What authenticates bearer tokens: the key their hashes are made with, and the
/// tokens found recently.
#[derive(Default)]
pub(crate) struct TokenAuth {
    /// Keys token hashes; without one no token authenticates.
    pub(crate) key: Option<TokenKey>,
    /// OpenID Connect providers whose tokens are accepted too (`[[oidc]]`).
    pub(crate) oidc: Option<writ_oidc::OidcVerifier>,
    /// Token hash → (record, cached until); see `TOKEN_CACHE_SECONDS`.
    pub(crate) cache: std::sync::Mutex<std::collections::HashMap<String, (TokenRecord, Timestamp)>>,
}

/// Creates a token for a configured identity. Needs only the config, the token key and
/// the store, so it works with the server stopped (and with a policy folder that does
/// not load). On the ledger as issued by `writ:cli`.
pub async fn issue_token(
    config: &Config,
    store: &Store,
    key: &TokenKey,
    now: Timestamp,
    identity: &str,
    ttl_seconds: i64,
) -> Result<String, EngineError> {
    {
        // Configured in writ.toml, or a person an identity provider pushed.
        let (name, kind, disabled) = match config.identity(identity) {
            Some(configured) => (
                configured.name.clone(),
                configured.kind,
                configured.disabled,
            ),
            None => store
                .directory_users()
                .await?
                .into_iter()
                .find(|user| user.user_name.as_str() == identity)
                .map(|user| (user.user_name, IdentityKind::User, !user.active))
                .ok_or_else(|| {
                    EngineError::new(
                        ErrorCode::UnknownIdentity,
                        format!("no identity {identity:?} is configured or in the directory"),
                    )
                })?,
        };
        if disabled {
            return Err(EngineError::new(
                ErrorCode::IdentityDisabled,
                format!("{name} is disabled"),
            ));
        }
        refuse_static_token(config, kind)?;
        if !(1..=TOKEN_TTL_MAX_SECONDS).contains(&ttl_seconds) {
            return Err(EngineError::new(
                ErrorCode::InvalidTtl,
                "a token lives between one second and 90 days",
            ));
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| EngineError::new(ErrorCode::NoRandomness, e.to_string()))?;
        let token = format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        );
        let hash = key.hash(&token);
        let expires_at = now.plus_seconds(ttl_seconds);
        let mut tx = store.begin().await?;
        tx.insert_token(&hash, name.as_str(), now, expires_at)
            .await?;
        // The ledger names the token by a prefix of its hash, never the secret.
        let data = json!({ "identity": name, "token_id": &hash[..TOKEN_ID_LEN], "expires_at": expires_at });
        tx.append(now, &SystemActor::Cli.into(), EventKind::TokenIssued, &data)
            .await?;
        tx.commit().await?;
        Ok(token)
    }
}

/// writ's own tokens are refused for the kinds `[access] static_tokens` leaves out.
fn refuse_static_token(config: &Config, kind: IdentityKind) -> Result<(), EngineError> {
    if config.access.static_token_kinds.contains(&kind) {
        return Ok(());
    }
    Err(EngineError::new(
        ErrorCode::StaticTokensDisabled,
        format!(
            "writ's own tokens are not accepted for {}s ([access] static_tokens); sign in with the identity provider, or use a workload token or client certificate",
            kind.as_str()
        ),
    ))
}

fn no_token_key() -> EngineError {
    EngineError::unauthenticated("this writ has no token key, so it accepts no tokens")
}

impl Engine {
    pub async fn issue_token(
        &self,
        identity: &str,
        ttl_seconds: i64,
    ) -> Result<String, EngineError> {
        let key = self.tokens.key.as_ref().ok_or_else(no_token_key)?;
        issue_token(
            &self.config,
            &self.store,
            key,
            self.clock.now(),
            identity,
            ttl_seconds,
        )
        .await
    }

    /// Resolves `Authorization: Bearer <token>` to a caller.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, EngineError> {
        let rejected =
            || EngineError::unauthenticated("the bearer token is unknown, expired or malformed");
        if let Some(oidc) = &self.tokens.oidc
            && writ_oidc::OidcVerifier::looks_like_jwt(token)
        {
            return self.authenticate_oidc(oidc, token).await;
        }
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 100 {
            return Err(rejected());
        }
        let record = self.live_token(token, "the bearer token").await?;
        let caller = self.caller_named(&record.identity)?;
        refuse_static_token(&self.config, caller.kind)?;
        Ok(caller)
    }

    /// The stored record of `secret` (a writ token or a session), if it is live:
    /// known, not revoked, not expired. `what` names it in the refusal.
    pub(crate) async fn live_token(
        &self,
        secret: &str,
        what: &str,
    ) -> Result<TokenRecord, EngineError> {
        let rejected =
            || EngineError::unauthenticated(format!("{what} is unknown, expired or malformed"));
        let hash = self
            .tokens
            .key
            .as_ref()
            .ok_or_else(no_token_key)?
            .hash(secret);
        let now = self.clock.now();
        let record = match self.cached_token(&hash, now) {
            Some(record) => record,
            None => {
                let record = self.store.token(&hash).await?.ok_or_else(rejected)?;
                self.cache_token(record.clone(), now);
                record
            }
        };
        if !bool::from(record.hash.as_bytes().ct_eq(hash.as_bytes())) {
            return Err(rejected());
        }
        if record.revoked_at.is_some() {
            return Err(EngineError::unauthenticated(format!("{what} was revoked")));
        }
        if record.expires_at <= now {
            return Err(EngineError::unauthenticated(format!(
                "{what} has expired; issue a new one with `writ token issue`, or sign in again"
            )));
        }
        Ok(record)
    }

    /// A client certificate verified against `[server] client_ca`: the service or agent
    /// whose `workload` names its URI SAN (a SPIFFE ID).
    pub fn authenticate_certificate(&self, uri: &str) -> Result<Caller, EngineError> {
        let mut proven = self.config.identities.values().filter(|identity| {
            identity
                .workloads
                .iter()
                .any(|binding| matches!(binding, WorkloadBinding::ClientCertificate(bound) if bound == uri))
        });
        match (proven.next(), proven.next()) {
            (Some(identity), None) => self.caller_named(identity.name.as_str()),
            _ => Err(EngineError::new(
                ErrorCode::TokenIdentityUnknown,
                format!(
                    "the client certificate names {uri:?}, which proves no configured service or agent"
                ),
            )),
        }
    }

    /// A token from an OpenID Connect provider or workload issuer: checked there, then
    /// mapped to the configured identity it names, and to the agent acting for that
    /// identity when it carries an `act` chain.
    async fn authenticate_oidc(
        &self,
        oidc: &writ_oidc::OidcVerifier,
        token: &str,
    ) -> Result<Caller, EngineError> {
        let verified = oidc.verify(token).await.map_err(|error| match error {
            writ_oidc::OidcError::Refused(why) => EngineError::unauthenticated(why),
            other => EngineError::new(ErrorCode::IdentityProviderUnavailable, other.to_string()),
        })?;
        let caller = self.caller_named(&self.named_by(&verified.subject)?)?;
        if verified.actors.is_empty() {
            return Ok(caller);
        }
        self.delegated(caller, &verified.actors)
    }

    /// The name of the configured identity a verified token (or one actor of its
    /// chain) names: a person by name, a workload by the one binding it matches.
    fn named_by(&self, subject: &TokenSubject) -> Result<String, EngineError> {
        let (issuer_name, subject, claims) = match subject {
            TokenSubject::Person(username) => return Ok(username.clone()),
            TokenSubject::Workload {
                issuer_name,
                subject,
                claims,
            } => (issuer_name, subject, claims),
        };
        let mut proven = self.config.identities.values().filter(|identity| {
            identity.workloads.iter().any(|binding| {
                binding.matches_token(issuer_name, subject, |name| {
                    claims.get(name).and_then(serde_json::Value::as_str)
                })
            })
        });
        match (proven.next(), proven.next()) {
            (Some(identity), None) => Ok(identity.name.to_string()),
            (Some(first), Some(second)) => Err(EngineError::new(
                ErrorCode::TokenIdentityUnknown,
                format!(
                    "the {issuer_name} token for {subject:?} proves both {} and {}; a token must prove one identity (tighten their claim conditions)",
                    first.name, second.name
                ),
            )),
            (None, _) => Err(EngineError::new(
                ErrorCode::TokenIdentityUnknown,
                format!(
                    "the {issuer_name} token for {subject:?} proves no configured service or agent (no workload binding matches its sub and claims)"
                ),
            )),
        }
    }

    /// The current actor of a token's `act` chain, acting for `principal` (the token's
    /// `sub`). Every actor must be a configured agent, not disabled, that may act for
    /// that user: its owner or one of its `delegates`. RFC 8693 §4.1 makes prior actors
    /// informational; writ still refuses a chain with any party it cannot hold to
    /// account, and never lets a prior actor widen what the current one may do.
    fn delegated(&self, principal: Caller, actors: &[TokenSubject]) -> Result<Caller, EngineError> {
        let refused = |why: String| EngineError::new(ErrorCode::DelegationRefused, why);
        if principal.kind != IdentityKind::User {
            return Err(refused(format!(
                "the token names {} (a {}) with an act chain; agents act only for users",
                principal.name,
                principal.kind.as_str()
            )));
        }
        let mut chain = Vec::with_capacity(actors.len());
        for actor in actors {
            let name = self.named_by(actor).map_err(|e| {
                refused(format!(
                    "the token's act chain names an unknown actor: {}",
                    e.message
                ))
            })?;
            let agent = self.caller_named(&name).map_err(|e| {
                refused(format!(
                    "the token's act chain names {name:?}: {}",
                    e.message
                ))
            })?;
            if agent.kind != IdentityKind::Agent {
                return Err(refused(format!(
                    "the token's act chain names {name}, a {}; only agents act for users",
                    agent.kind.as_str()
                )));
            }
            let may = self.identity(&name).is_some_and(|identity| {
                identity.owner.as_ref() == Some(&principal.name)
                    || identity.delegates.contains(&principal.name)
            });
            if !may {
                return Err(EngineError::new(
                    ErrorCode::NotADelegate,
                    format!(
                        "{name} may act only for its owner or its delegates, not for {}",
                        principal.name
                    ),
                ));
            }
            chain.push(agent.name);
        }
        let current = chain
            .first()
            .cloned()
            .ok_or_else(|| refused("the token's act chain is empty".into()))?;
        Ok(Caller {
            name: current,
            kind: IdentityKind::Agent,
            delegation: Some(crate::Delegation {
                principal: principal.name,
                actors: chain,
            }),
        })
    }

    /// The caller a valid token names: a configured identity that is not disabled.
    pub(crate) fn caller_named(&self, name: &str) -> Result<Caller, EngineError> {
        let identity = self.identity(name).ok_or_else(|| {
            EngineError::new(
                ErrorCode::TokenIdentityUnknown,
                format!("the token names {name:?}, who is not a configured identity"),
            )
        })?;
        let now = self.clock.now();
        if self.has_left(&identity, now) {
            return Err(EngineError::new(
                ErrorCode::TokenIdentityDisabled,
                match identity.valid_until {
                    _ if identity.disabled => format!("identity {name} is disabled"),
                    Some(end) if end <= now => format!("identity {name} ended at {end}"),
                    _ => format!(
                        "identity {name} is disabled: its owner left and nobody took it on within identities.orphan_grace"
                    ),
                },
            ));
        }
        Ok(Caller::new(identity.name.clone(), identity.kind))
    }

    /// Tokens the caller may see: an admin's list has everyone's, anyone else's their own.
    pub async fn tokens(
        &self,
        caller: &Caller,
        identity: Option<&str>,
    ) -> Result<Vec<TokenListing>, EngineError> {
        let admin = self.is_admin(caller);
        let identity = match identity {
            Some(other) if !admin && other != caller.name.as_str() => {
                return Err(EngineError::new(
                    ErrorCode::NotAnAdmin,
                    "only admins ([access].admins) see other identities' tokens",
                ));
            }
            Some(named) => Some(named),
            None if admin => None,
            None => Some(caller.name.as_str()),
        };
        Ok(self.store.tokens(identity).await?)
    }

    /// Revokes the token whose id is `id`, at once: the caller's own, or anyone's for an
    /// admin. On the ledger as `token.revoked`.
    pub async fn revoke_token(&self, caller: &Caller, id: &str) -> Result<(), EngineError> {
        let id = id.trim();
        if id.len() != TOKEN_ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(EngineError::new(
                ErrorCode::BadTokenId,
                format!(
                    "a token id is {TOKEN_ID_LEN} hexadecimal digits, as `writ token list` shows"
                ),
            ));
        }
        let id = id.to_ascii_lowercase();
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let found = tx.live_tokens_by_id(&id).await?;
        let [(hash, identity)] = found.as_slice() else {
            return Err(EngineError::not_found("live token", &id));
        };
        if identity != caller.name.as_str() && !self.is_admin(caller) {
            // Someone else's token: as good as unknown to this caller.
            return Err(EngineError::not_found("live token", &id));
        }
        tx.revoke_token(hash, now).await?;
        let data = json!({ "identity": identity, "token_id": id, "revoked_by": caller.name });
        tx.append(now, &caller.actor(), EventKind::TokenRevoked, &data)
            .await?;
        tx.commit().await?;
        self.forget_token(hash);
        tracing::info!(token = %id, identity = %identity, by = %caller.name, "token revoked");
        Ok(())
    }

    /// Drops a revoked token from the cache, so this server refuses it at once.
    pub(crate) fn forget_token(&self, hash: &str) {
        self.tokens
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(hash);
    }

    fn cached_token(&self, hash: &str, now: Timestamp) -> Option<TokenRecord> {
        let cache = self
            .tokens
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(hash)
            .filter(|(_, until)| *until > now)
            .map(|(record, _)| record.clone())
    }

    fn cache_token(&self, record: TokenRecord, now: Timestamp) {
        let mut cache = self
            .tokens
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= TOKEN_CACHE_ENTRIES_MAX {
            cache.clear();
        }
        cache.insert(
            record.hash.clone(),
            (record, now.plus_seconds(TOKEN_CACHE_SECONDS)),
        );
    }
}
