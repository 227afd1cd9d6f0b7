//! `[[workload_issuer]]` and the `workload` bindings of services and agents: which
//! platform-issued tokens (Kubernetes service-account tokens, GitHub Actions OIDC
//! tokens, SPIFFE JWT-SVIDs) and which client certificates (SPIFFE X.509-SVIDs over
//! mutual TLS) prove that a caller is a given service or agent.

use std::collections::BTreeMap;
use std::path::PathBuf;

use writ_domain::IdentityName;

use crate::raw::{RawWorkload, RawWorkloadIssuer};
use crate::validate::Checker;
use crate::{ConfigError, Identity};

/// Tokens living longer than this are refused unless the issuer allows more.
pub const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS: i64 = 3600;

/// An issuer of workload tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadIssuer {
    /// How identities' `workload` bindings refer to it.
    pub name: String,
    /// Exactly as the tokens' `iss` says it.
    pub issuer: String,
    /// What writ is called in the tokens' `aud`.
    pub audience: String,
    pub keys: JwksSource,
    /// A token whose `exp` is further than this from its `iat` (or from now) is refused.
    pub max_lifetime_seconds: i64,
}

/// Where an issuer's public keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// OpenID Connect discovery from the issuer.
    Discovery,
    Url(String),
    /// A JWK set on disk (read again when a token names a key not in it).
    File(PathBuf),
}

/// What proves a caller is a given service or agent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum WorkloadBinding {
    /// A token from `issuer` (a `[[workload_issuer]]` name) whose `sub` is `subject`
    /// and whose claims have exactly these string values.
    Token {
        issuer: String,
        subject: String,
        claims: BTreeMap<String, String>,
    },
    /// A client certificate, verified against `[server] client_ca`, whose one URI SAN
    /// is this (a SPIFFE ID).
    ClientCertificate(String),
}

impl std::fmt::Display for WorkloadBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token {
                issuer,
                subject,
                claims,
            } if claims.is_empty() => {
                write!(f, "a token from {issuer} for {subject:?}")
            }
            Self::Token {
                issuer,
                subject,
                claims,
            } => {
                write!(f, "a token from {issuer} for {subject:?} with {claims:?}")
            }
            Self::ClientCertificate(uri) => write!(f, "a client certificate for {uri:?}"),
        }
    }
}

impl WorkloadBinding {
    /// Whether a verified token from `issuer` with `subject` is this one; `claim` gives
    /// the token's string claims by name.
    pub fn matches_token<'a>(
        &self,
        issuer: &str,
        subject: &str,
        claim: impl Fn(&str) -> Option<&'a str>,
    ) -> bool {
        match self {
            Self::Token {
                issuer: bound_issuer,
                subject: bound_subject,
                claims: conditions,
            } => {
                bound_issuer == issuer
                    && bound_subject == subject
                    && conditions
                        .iter()
                        .all(|(name, value)| claim(name) == Some(value.as_str()))
            }
            Self::ClientCertificate(_) => false,
        }
    }
}

pub(crate) fn validate_workload_issuers(
    check: &Checker<'_>,
    raw: Vec<RawWorkloadIssuer>,
    oidc_issuers: &[&str],
) -> Result<Vec<WorkloadIssuer>, ConfigError> {
    let mut issuers: Vec<WorkloadIssuer> = Vec::new();
    for (index, raw) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("workload_issuer[{index}].{field}");
        let name = check.system_name(&key("name"), raw.name.0)?;
        if issuers.iter().any(|i| i.name == name) {
            return Err(check.invalid(key("name"), format!("{name:?} is defined twice")));
        }
        let issuer = crate::oidc::checked_url(check, &key("issuer"), raw.issuer.0)?;
        if issuers.iter().any(|i| i.issuer == issuer) || oidc_issuers.contains(&issuer.as_str()) {
            return Err(check.invalid(
                key("issuer"),
                format!(
                    "{issuer:?} is configured twice (as an [[oidc]] provider or another workload issuer); a token's issuer must say which it is"
                ),
            ));
        }
        if raw.audience.0.trim().is_empty() {
            return Err(check.invalid(
                key("audience"),
                "must name what writ is called in the tokens (their `aud`)",
            ));
        }
        let keys = match (raw.jwks_url, raw.jwks_file) {
            (None, None) => JwksSource::Discovery,
            (Some(url), None) => {
                JwksSource::Url(crate::oidc::checked_url(check, &key("jwks_url"), url.0)?)
            }
            (None, Some(file)) => JwksSource::File(check.relative(&file.0)),
            (Some(_), Some(_)) => {
                return Err(check.invalid(key("jwks_file"), "give jwks_url or jwks_file, not both"));
            }
        };
        let max_lifetime_seconds = match raw.max_lifetime {
            None => DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
            Some(text) => check.duration(&key("max_lifetime"), &text.0)?,
        };
        issuers.push(WorkloadIssuer {
            name,
            issuer,
            audience: raw.audience.0,
            keys,
            max_lifetime_seconds,
        });
    }
    Ok(issuers)
}

/// One identity's `workload` list.
pub(crate) fn validate_bindings(
    check: &Checker<'_>,
    key: &dyn Fn(&str) -> String,
    raw: Vec<RawWorkload>,
) -> Result<Vec<WorkloadBinding>, ConfigError> {
    let mut bindings = Vec::new();
    for (index, raw) in raw.into_iter().enumerate() {
        let key = |field: &str| key(&format!("workload[{index}].{field}"));
        let binding = match (raw.issuer, raw.subject, raw.client_certificate) {
            (Some(issuer), Some(subject), None) => {
                if subject.0.is_empty() {
                    return Err(check.invalid(key("subject"), "must not be empty"));
                }
                WorkloadBinding::Token {
                    issuer: issuer.0,
                    subject: subject.0,
                    claims: raw.claims.into_iter().map(|(k, v)| (k, v.0)).collect(),
                }
            }
            (None, None, Some(uri)) if raw.claims.is_empty() => {
                if !uri.0.starts_with("spiffe://") || uri.0.len() <= "spiffe://".len() {
                    return Err(check.invalid(
                        key("client_certificate"),
                        format!(
                            "{:?} is not a SPIFFE ID (spiffe://trust-domain/path)",
                            uri.0
                        ),
                    ));
                }
                WorkloadBinding::ClientCertificate(uri.0)
            }
            _ => {
                return Err(check.invalid(
                    key("issuer"),
                    "a workload is either { issuer, subject, claims } (a token) or { client_certificate } (mutual TLS)",
                ));
            }
        };
        bindings.push(binding);
    }
    Ok(bindings)
}

/// Every binding names a known issuer, and no two identities share one: a token or a
/// certificate proves exactly one identity.
pub(crate) fn check_bindings(
    check: &Checker<'_>,
    identities: &BTreeMap<IdentityName, Identity>,
    issuers: &[WorkloadIssuer],
    client_ca: bool,
) -> Result<(), ConfigError> {
    let mut seen: BTreeMap<&WorkloadBinding, &IdentityName> = BTreeMap::new();
    for identity in identities.values() {
        let key = format!(
            "{} {:?}.workload",
            identity.kind.as_str(),
            identity.name.as_str()
        );
        for binding in &identity.workloads {
            match binding {
                WorkloadBinding::Token { issuer, .. }
                    if !issuers.iter().any(|i| &i.name == issuer) =>
                {
                    return Err(check.invalid(
                        &key,
                        format!("{issuer:?} is not a configured [[workload_issuer]]"),
                    ));
                }
                WorkloadBinding::ClientCertificate(_) if !client_ca => {
                    return Err(check.invalid(
                        &key,
                        "a client certificate needs [server] client_ca to verify it against",
                    ));
                }
                _ => {}
            }
            if let Some(first) = seen.insert(binding, &identity.name) {
                return Err(check.invalid(
                    &key,
                    format!("{binding} also proves {first}; each workload proves one identity"),
                ));
            }
        }
    }
    Ok(())
}
