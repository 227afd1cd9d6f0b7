//! `[keys]`: the keys writ keeps outside its database, and `[access]`: the groups whose
//! members see everything, and who writ's own tokens are for.

use std::fmt;
use std::path::PathBuf;

use writ_domain::IdentityKind;

use crate::ConfigError;
use crate::raw::{RawAccess, RawKeys};
use crate::validate::Checker;

pub const DEFAULT_TOKEN_KEY_FILE: &str = "keys/token.key";
pub const DEFAULT_LEDGER_KEY_FILE: &str = "keys/ledger.key";
pub const DEFAULT_AUTHZEN_KEY_FILE: &str = "keys/authzen.key";
pub const DEFAULT_AUDITOR_GROUPS: &[&str] = &["auditors"];
pub const DEFAULT_ADMIN_GROUPS: &[&str] = &["admins"];

/// 32 secret bytes. Never shown: its `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(pub [u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl SecretKey {
    /// 64 hexadecimal digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text.trim()).ok()?;
        bytes.try_into().ok().map(Self)
    }
}

/// Where a key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Given in the configuration (normally as `${ENV}`).
    Inline(SecretKey),
    /// A file holding the key as 64 hexadecimal digits, created (mode 0600) on first
    /// use when missing.
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// Keys the hashes of bearer tokens (HMAC-SHA-256).
    pub token: KeySource,
    /// Signs ledger checkpoints (an Ed25519 seed).
    pub ledger: KeySource,
    /// Signs the AuthZEN binding tokens of requestable denials (an Ed25519 seed).
    pub authzen: KeySource,
}

/// Who sees everything. Group names, matched against identities' `groups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// May read every request, grant, finding and the audit log, and verify it.
    pub auditor_groups: Vec<String>,
    /// As auditors, and may reconcile and list or revoke anyone's tokens.
    pub admin_groups: Vec<String>,
    /// The identity kinds writ's own tokens are issued to and accepted for; the others
    /// prove who they are with an OIDC provider's or a workload issuer's tokens, or a
    /// client certificate.
    pub static_token_kinds: Vec<IdentityKind>,
}

pub(crate) fn validate_keys(check: &Checker<'_>, raw: RawKeys) -> Result<Keys, ConfigError> {
    let source = |name: &str,
                  inline: Option<crate::env::EnvString>,
                  file: Option<crate::env::EnvString>,
                  default: &str|
     -> Result<KeySource, ConfigError> {
        match (inline, file) {
            (Some(_), Some(_)) => Err(check.invalid(
                format!("keys.{name}"),
                format!("give keys.{name} or keys.{name}_file, not both"),
            )),
            (Some(text), None) => SecretKey::from_hex(&text.0)
                .map(KeySource::Inline)
                .ok_or_else(|| {
                    // The value is secret: say what is wrong without echoing it.
                    check.invalid(
                        format!("keys.{name}"),
                        format!(
                            "must be 64 hexadecimal digits (32 bytes; e.g. `openssl rand -hex 32`), got {} characters",
                            text.0.trim().len()
                        ),
                    )
                }),
            (None, file) => Ok(KeySource::File(
                check.relative(file.as_ref().map_or(default, |f| f.0.as_str())),
            )),
        }
    };
    Ok(Keys {
        token: source(
            "token_key",
            raw.token_key,
            raw.token_key_file,
            DEFAULT_TOKEN_KEY_FILE,
        )?,
        ledger: source(
            "ledger_key",
            raw.ledger_key,
            raw.ledger_key_file,
            DEFAULT_LEDGER_KEY_FILE,
        )?,
        authzen: source(
            "authzen_key",
            raw.authzen_key,
            raw.authzen_key_file,
            DEFAULT_AUTHZEN_KEY_FILE,
        )?,
    })
}

pub(crate) fn validate_access(check: &Checker<'_>, raw: RawAccess) -> Result<Access, ConfigError> {
    let groups = |given: Option<Vec<crate::env::EnvString>>, default: &[&str]| {
        given.map_or_else(
            || default.iter().map(|g| g.to_string()).collect(),
            |given| given.into_iter().map(|g| g.0).collect(),
        )
    };
    let static_token_kinds = match raw.static_tokens {
        None => vec![
            IdentityKind::User,
            IdentityKind::Service,
            IdentityKind::Agent,
        ],
        Some(kinds) => {
            let mut parsed = Vec::new();
            for (i, kind) in kinds.iter().enumerate() {
                parsed.push(check.identity_kind(&format!("access.static_tokens[{i}]"), &kind.0)?);
            }
            parsed
        }
    };
    Ok(Access {
        auditor_groups: groups(raw.auditors, DEFAULT_AUDITOR_GROUPS),
        admin_groups: groups(raw.admins, DEFAULT_ADMIN_GROUPS),
        static_token_kinds,
    })
}
