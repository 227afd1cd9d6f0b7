//! The Access Request and Approval Profile of OpenID AuthZEN (docs/authzen.md): a
//! denial the subject may ask to have lifted carries `context.access_request` with a
//! binding token writ signs; submitting it makes an ordinary writ request (policy,
//! approvals, segregation of duties, the ledger) whose task the enforcement point
//! polls. Approval never allows anything by itself: the lease it makes does, on the
//! PEP's next evaluation.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use writ_domain::lifecycle::RequestState;
use writ_domain::{AuthzenOrigin, EntitlementId, Grant, IdentityName, Request, Timestamp};
use writ_store::AuthzenTask;

use crate::intake::{Created, Intake};
use crate::keys::{KeyError, load_or_create};
use crate::lifecycle::NewRequest;
use crate::pdp::AccessQuestion;
use crate::{Caller, Engine, EngineError, ErrorCode};

/// The clock skew a submission is allowed past its denial's deadline.
const SKEW_SECONDS: u64 = 1;
/// The justification a requestability check is decided with (never recorded).
const PROBE_JUSTIFICATION: &str = "AuthZEN requestability check";

/// An Ed25519 private key in PKCS #8 (RFC 8410): this prefix, then the 32-byte seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The key writ signs binding tokens with (`keys.authzen_key_file`); its public half is
/// published at `jwks_uri`.
pub struct BindingKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    public: [u8; 32],
    kid: String,
}

impl std::fmt::Debug for BindingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BindingKey(kid {})", self.kid)
    }
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl BindingKey {
    pub fn load(source: &writ_config::KeySource) -> Result<Self, KeyError> {
        load_or_create(source).map(|seed| Self::from_seed(&seed))
    }

    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let public = SigningKey::from_bytes(seed).verifying_key().to_bytes();
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(seed);
        let kid = format!("writ-{}", &hex::encode(Sha256::digest(public))[..16]);
        Self {
            encoding: EncodingKey::from_ed_der(&der),
            decoding: DecodingKey::from_ed_der(&public),
            public,
            kid,
        }
    }

    /// The JWK Set of `jwks_uri`.
    pub fn jwks(&self) -> Value {
        serde_json::json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64url(&self.public),
                "kid": self.kid,
                "use": "sig",
                "alg": "EdDSA",
            }]
        })
    }
}

/// What a binding token says: the denied evaluation, inline (the profile's recommended
/// form, compared member by member), and the entitlement writ would request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BindingClaims {
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
    jti: String,
    evaluation_id: String,
    denial_expires_at: String,
    subject: Value,
    resource: Value,
    action: Value,
    /// writ decides on leases, not on context: no context member is bound.
    binding_context_members: Vec<String>,
    writ_entitlement: String,
}

/// The AuthZEN objects of one evaluation as the PEP sent them.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    pub subject: Value,
    pub resource: Value,
    pub action: Value,
}

/// `subject` without `properties.act`, which a PEP may move to `client.actor`.
fn without_actor(subject: &Value) -> Value {
    let mut subject = subject.clone();
    if let Some(properties) = subject.get_mut("properties").and_then(Value::as_object_mut) {
        properties.remove("act");
    }
    subject
}

/// A denial the subject may ask to have lifted, as `context.access_request` carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestableDenial {
    pub evaluation_id: String,
    pub expires_at: String,
    pub binding_token: String,
    /// The entitlement a submission requests (`template`).
    pub entitlement: EntitlementId,
    /// What policy would decide: granted at once, or the approvals it needs.
    pub approvals_required: Option<u32>,
}

/// Where the profile's endpoints are, as this server is reached.
#[derive(Debug, Clone)]
pub struct ArapUrls {
    /// The PDP's identifier (`policy_decision_point`): binding tokens' issuer.
    pub issuer: String,
}

impl ArapUrls {
    pub fn access_request_endpoint(&self) -> String {
        format!("{}/access/v1/requests", self.issuer)
    }
}

/// An access request as submitted, after its JSON was read.
#[derive(Debug, Clone)]
pub struct AccessSubmission {
    pub evaluated: Evaluated,
    pub binding_token: Option<String>,
    pub evaluation_id: Option<String>,
    pub expires_at: Option<String>,
    pub justification: String,
    pub requested_until: Option<Timestamp>,
    pub idempotency_key: Option<String>,
    /// A digest of the whole body (members in a fixed order), for Idempotency-Key.
    pub body_digest: String,
}

/// A task and where its request stands.
#[derive(Debug, Clone)]
pub struct AccessTask {
    pub id: String,
    pub request: Request,
    /// The lease it made, once approved.
    pub grant: Option<Grant>,
}

/// The SHA-256 of `value` with object members sorted, whatever order they came in.
pub fn body_digest(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for key in keys {
                    if let Some(member) = map.get(key) {
                        out.insert(key.clone(), sorted(member));
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    hex::encode(Sha256::digest(sorted(value).to_string().as_bytes()))
}

fn random_id(prefix: &str) -> Result<String, EngineError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| EngineError::new(ErrorCode::NoRandomness, format!("no randomness: {e}")))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

fn binding(message: impl Into<String>) -> EngineError {
    EngineError::new(ErrorCode::InvalidDenialBinding, message)
}

impl Engine {
    pub fn with_binding_key(mut self, key: BindingKey) -> Self {
        self.binding_key = Some(Arc::new(key));
        self
    }

    /// The JWK Set of `jwks_uri`; none when writ signs no binding tokens (no entitlement
    /// is enforced by PEPs).
    pub fn authzen_jwks(&self) -> Option<Value> {
        self.binding_key.as_ref().map(|key| key.jwks())
    }

    /// Whether a denial for lack of a lease is one the subject may ask to lift: the
    /// first of `entitlements` (in id order) that policy would grant the subject,
    /// at once or after approval, were it to ask itself now. Decided as a preview:
    /// nothing is recorded. A subject asking about itself is previewed as it asked —
    /// an agent under its token's act chain, acting for its user.
    pub async fn requestable_denial(
        &self,
        asker: &Caller,
        question: &AccessQuestion,
        evaluated: &Evaluated,
        entitlements: &[EntitlementId],
        urls: &ArapUrls,
    ) -> Result<Option<RequestableDenial>, EngineError> {
        let Some(key) = &self.binding_key else {
            return Ok(None);
        };
        let Some(identity) = question
            .subject_id
            .parse::<IdentityName>()
            .ok()
            .and_then(|name| self.identity(name.as_str()))
        else {
            return Ok(None);
        };
        let subject = if asker.name == identity.name {
            asker.clone()
        } else {
            Caller::new(identity.name.clone(), identity.kind)
        };
        let mut sorted: Vec<&EntitlementId> = entitlements.iter().collect();
        sorted.sort();
        for entitlement in sorted {
            let probe = NewRequest {
                entitlement: entitlement.to_string(),
                subject: None,
                duration_seconds: None,
                justification: PROBE_JUSTIFICATION.to_string(),
                ticket: None,
                on_behalf_of: None,
                extends: None,
            };
            let decided = match self.preview_request(&subject, probe).await {
                Ok(request) => request,
                // Storage failing is a failure; anything else means it cannot be asked.
                Err(error) if error.kind() == crate::ErrorKind::Internal => return Err(error),
                Err(_) => continue,
            };
            let approvals_required = match decided.state {
                RequestState::Approved => None,
                RequestState::PendingApproval => Some(decided.decision.approvals_required),
                _ => continue,
            };
            let now = self.clock.now();
            let window = self.config.authzen.request_window_seconds;
            // Whole seconds: `exp` and the echoed text say the same instant.
            let expires =
                Timestamp::from_unix_micros((now.unix_micros() / 1_000_000 + window) * 1_000_000);
            let evaluation_id = random_id("eval_")?;
            let claims = BindingClaims {
                iss: urls.issuer.clone(),
                aud: urls.access_request_endpoint(),
                iat: now.unix_micros() / 1_000_000,
                exp: expires.unix_micros() / 1_000_000,
                jti: evaluation_id.clone(),
                evaluation_id: evaluation_id.clone(),
                denial_expires_at: expires.to_rfc3339(),
                subject: without_actor(&evaluated.subject),
                resource: evaluated.resource.clone(),
                action: evaluated.action.clone(),
                binding_context_members: Vec::new(),
                writ_entitlement: entitlement.to_string(),
            };
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(key.kid.clone());
            header.typ = Some("JWT".into());
            let binding_token =
                jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(|e| {
                    EngineError::new(
                        ErrorCode::SigningFailed,
                        format!("signing a binding token: {e}"),
                    )
                })?;
            return Ok(Some(RequestableDenial {
                evaluation_id,
                expires_at: claims.denial_expires_at,
                binding_token,
                entitlement: entitlement.clone(),
                approvals_required,
            }));
        }
        Ok(None)
    }

    /// Checks a submission's binding token: signed by this writ's key, for this access
    /// request endpoint, not past its deadline, and for exactly the subject, resource
    /// and action submitted.
    fn verified_binding(
        &self,
        submission: &AccessSubmission,
        urls: &ArapUrls,
    ) -> Result<BindingClaims, EngineError> {
        let Some(key) = &self.binding_key else {
            return Err(EngineError::new(
                ErrorCode::NotRequestable,
                "writ issues no requestable denials here: no entitlement is enforced by PEPs",
            ));
        };
        let token = submission.binding_token.as_deref().ok_or_else(|| {
            binding(
                "denial.binding_token is required: writ binds every requestable denial with one",
            )
        })?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| binding(format!("denial.binding_token is not a JWS: {e}")))?;
        if header.kid.as_deref() != Some(key.kid.as_str()) {
            return Err(binding(
                "denial.binding_token was not signed with this writ's key (kid)",
            ));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[urls.issuer.as_str()]);
        validation.set_audience(&[urls.access_request_endpoint()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = SKEW_SECONDS;
        let claims = match jsonwebtoken::decode::<BindingClaims>(token, &key.decoding, &validation)
        {
            Ok(data) => data.claims,
            Err(error) => {
                return Err(match error.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => EngineError::new(
                        ErrorCode::ExpiredDenial,
                        "the denial's request window has passed: evaluate again for a new one",
                    ),
                    _ => binding(format!("denial.binding_token does not verify: {error}")),
                });
            }
        };
        if submission.expires_at.as_deref() != Some(claims.denial_expires_at.as_str()) {
            return Err(binding(
                "denial.expires_at must be the denial's access_request.expires_at, unchanged",
            ));
        }
        if let Some(id) = &submission.evaluation_id
            && *id != claims.evaluation_id
        {
            return Err(binding(
                "denial.evaluation_id is not the evaluation the binding token was issued for",
            ));
        }
        let evaluated = &submission.evaluated;
        for (name, submitted, bound) in [
            (
                "subject",
                without_actor(&evaluated.subject),
                claims.subject.clone(),
            ),
            (
                "resource",
                evaluated.resource.clone(),
                claims.resource.clone(),
            ),
            ("action", evaluated.action.clone(), claims.action.clone()),
        ] {
            if submitted != bound {
                return Err(binding(format!(
                    "the submitted {name} is not the {name} of the denied evaluation"
                )));
            }
        }
        Ok(claims)
    }

    /// Makes the writ request an access request asks for, as `caller` — who must be
    /// allowed to ask for the subject, as for any request — bound to its denial.
    pub async fn submit_access_request(
        &self,
        caller: &Caller,
        submission: AccessSubmission,
        urls: &ArapUrls,
    ) -> Result<AccessTask, EngineError> {
        // A retry under its key is answered with the task made the first time, even
        // after the denial's window (the PEP may have restarted meanwhile).
        if let Some(key) = &submission.idempotency_key
            && let Some(task) = self
                .store
                .authzen_task_by_key(caller.name.as_str(), key)
                .await?
        {
            return self.repeated(task, &submission).await;
        }
        let claims = self.verified_binding(&submission, urls)?;
        let entitlement: EntitlementId = claims
            .writ_entitlement
            .parse()
            .map_err(|_| binding("the binding token names no entitlement"))?;
        let now = self.clock.now();
        let duration_seconds = submission
            .requested_until
            .map(|until| {
                // Whole seconds, rounded up: at least what was asked for.
                let micros = until.unix_micros() - now.unix_micros();
                let seconds = micros / 1_000_000 + i64::from(micros % 1_000_000 > 0);
                if seconds <= 0 {
                    Err(EngineError::new(
                        ErrorCode::InvalidDuration,
                        "requested_access.requested_until must be in the future",
                    ))
                } else {
                    Ok(seconds)
                }
            })
            .transpose()?;
        let subject_id = claims
            .subject
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| binding("the binding token names no subject id"))?
            .to_string();
        let task_id = random_id("arq_")?;
        let origin = AuthzenOrigin {
            task: task_id.clone(),
            evaluation_id: claims.evaluation_id.clone(),
            resource_type: text_of(&claims.resource, "type"),
            resource_id: text_of(&claims.resource, "id"),
            action: text_of(&claims.action, "name"),
        };
        // `request` is set to the request's id where it is recorded.
        let task = AuthzenTask {
            id: task_id,
            request: writ_domain::RequestId::generate_at(now),
            jti: claims.jti.clone(),
            requester: caller.name.to_string(),
            idempotency_key: submission.idempotency_key.clone(),
            body_digest: submission.body_digest.clone(),
            created_at: now,
        };
        let new = NewRequest {
            entitlement: entitlement.to_string(),
            subject: Some(subject_id),
            duration_seconds,
            justification: submission.justification.clone(),
            ticket: None,
            on_behalf_of: None,
            extends: None,
        };
        let intake = Intake {
            authzen: Some((origin, task)),
            ..Intake::default()
        };
        match self.create_request_with(caller, new, intake).await? {
            Created::Request(request, _) => {
                let id = request
                    .authzen
                    .as_ref()
                    .map(|origin| origin.task.clone())
                    .unwrap_or_default();
                Ok(AccessTask {
                    id,
                    grant: self.grant_of(&request).await?,
                    request: *request,
                })
            }
            Created::TaskSeen(task) => self.repeated(task, &submission).await,
            Created::TicketTaken(_) | Created::DeliverySeen => Err(EngineError::new(
                ErrorCode::IntakeOutcome,
                "an access request came back as a webhook outcome",
            )),
        }
    }

    /// The answer to a submission whose denial or key made a task before.
    async fn repeated(
        &self,
        task: AuthzenTask,
        submission: &AccessSubmission,
    ) -> Result<AccessTask, EngineError> {
        let same_key =
            task.idempotency_key.is_some() && task.idempotency_key == submission.idempotency_key;
        if !same_key {
            return Err(binding(format!(
                "this denial was submitted already (task {}): evaluate again for a new one",
                task.id
            )));
        }
        if task.body_digest != submission.body_digest {
            return Err(EngineError::new(
                ErrorCode::DuplicateRequest,
                "this Idempotency-Key was used with another body: use a new key for a new request",
            ));
        }
        let request = self.request(task.request).await?;
        Ok(AccessTask {
            id: task.id,
            grant: self.grant_of(&request).await?,
            request,
        })
    }

    async fn grant_of(&self, request: &Request) -> Result<Option<Grant>, EngineError> {
        match request.grant_id {
            Some(id) => Ok(self.store.grant(id).await?),
            None => Ok(None),
        }
    }

    /// A task as `caller` may see it: who may read its request (the requester, the
    /// subject, approvers, auditors) may read its task; for anyone else it is unknown.
    pub async fn access_task(&self, caller: &Caller, id: &str) -> Result<AccessTask, EngineError> {
        let unknown = || EngineError::new(ErrorCode::UnknownTask, format!("no task {id}"));
        let task = self.store.authzen_task(id).await?.ok_or_else(unknown)?;
        let request = match self.visible_request(caller, task.request).await {
            Ok(request) => request,
            Err(error) if error.code == ErrorCode::NotFound => return Err(unknown()),
            Err(error) => return Err(error),
        };
        Ok(AccessTask {
            id: task.id,
            grant: self.grant_of(&request).await?,
            request,
        })
    }

    /// Cancels a pending task's request, as its requester may.
    pub async fn cancel_access_task(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<AccessTask, EngineError> {
        let task = self.access_task(caller, id).await?;
        if task.request.state != RequestState::PendingApproval {
            return Err(EngineError::new(
                ErrorCode::InvalidTaskState,
                format!(
                    "task {id} has finished ({}): it cannot be cancelled",
                    task.request.state
                ),
            ));
        }
        let request = self.cancel(caller, task.request.id).await?;
        Ok(AccessTask { request, ..task })
    }
}

fn text_of(entity: &Value, key: &str) -> String {
    entity
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_key_verifies_what_the_private_key_signs() {
        let key = BindingKey::from_seed(&[7u8; 32]);
        let jwks = key.jwks();
        let x = jwks["keys"][0]["x"].as_str().expect("x");
        let published = DecodingKey::from_ed_components(x).expect("a key from the JWK");
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(
            &header,
            &serde_json::json!({"sub": "alice", "exp": 4_000_000_000_i64}),
            &key.encoding,
        )
        .expect("signed");
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        let data = jsonwebtoken::decode::<Value>(&token, &published, &validation)
            .expect("verifies with the published key");
        assert_eq!(data.claims["sub"], "alice");
        // Another key's signature does not.
        let other = BindingKey::from_seed(&[8u8; 32]);
        assert!(jsonwebtoken::decode::<Value>(&token, &other.decoding, &validation).is_err());
    }

    #[test]
    fn body_digests_ignore_member_order_but_not_values() {
        let a = serde_json::json!({"a": 1, "b": {"c": [1, 2], "d": "x"}});
        let b = serde_json::json!({"b": {"d": "x", "c": [1, 2]}, "a": 1});
        let c = serde_json::json!({"b": {"d": "x", "c": [2, 1]}, "a": 1});
        assert_eq!(body_digest(&a), body_digest(&b));
        assert_ne!(body_digest(&a), body_digest(&c));
    }

    #[test]
    fn the_actor_is_not_part_of_the_bound_subject() {
        let with = serde_json::json!({"type": "user", "id": "alice", "properties": {"act": {"sub": "bot"}, "dept": "x"}});
        let without =
            serde_json::json!({"type": "user", "id": "alice", "properties": {"dept": "x"}});
        assert_eq!(without_actor(&with), without);
    }
}
