//! The configuration file exactly as written. Unknown keys are errors.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::env::EnvString;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub policy: RawPolicy,
    #[serde(default)]
    pub requests: RawRequests,
    #[serde(default)]
    pub revocation: RawRevocation,
    #[serde(default)]
    pub identities: RawIdentities,
    #[serde(default, rename = "target")]
    pub targets: Vec<RawTarget>,
    #[serde(default, rename = "entitlement")]
    pub entitlements: Vec<RawEntitlement>,
    #[serde(default, rename = "user")]
    pub users: Vec<RawIdentity>,
    #[serde(default, rename = "service")]
    pub services: Vec<RawIdentity>,
    #[serde(default, rename = "agent")]
    pub agents: Vec<RawIdentity>,
    #[serde(default, rename = "itsm")]
    pub itsms: Vec<RawItsm>,
    #[serde(default, rename = "notify")]
    pub notify: Vec<RawNotify>,
    #[serde(default)]
    pub keys: RawKeys,
    #[serde(default)]
    pub audit: RawAudit,
    #[serde(default)]
    pub access: RawAccess,
    #[serde(default)]
    pub oidc: Vec<RawOidc>,
    #[serde(default, rename = "workload_issuer")]
    pub workload_issuers: Vec<RawWorkloadIssuer>,
    #[serde(default, rename = "scim")]
    pub scim_clients: Vec<RawScim>,
    #[serde(default, rename = "break_glass")]
    pub break_glass: Vec<RawBreakGlass>,
    #[serde(default)]
    pub authzen: RawAuthzen,
}

/// `[authzen]`: writ as an OpenID AuthZEN policy decision point.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthzen {
    /// Identities (policy enforcement points) that may ask about any subject.
    #[serde(default)]
    pub clients: Vec<EnvString>,
    /// How long a requestable denial may be submitted as an access request.
    pub request_window: Option<EnvString>,
}

/// An entitlement's `authzen` table: the AuthZEN resource and actions it covers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPepResource {
    pub resource_type: EnvString,
    pub resource_id: Option<EnvString>,
    pub actions: Vec<EnvString>,
    pub max_uses: Option<i64>,
}

/// `[[break_glass]]`: an emergency access profile.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreakGlass {
    pub name: EnvString,
    pub entitlements: Vec<EnvString>,
    pub max_duration: EnvString,
    #[serde(default)]
    pub notify: Vec<EnvString>,
    pub review_within: Option<EnvString>,
    pub allow_with_overdue_review: Option<bool>,
    pub incident: Option<RawIncident>,
}

/// Where a break-glass profile opens an incident ticket.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIncident {
    pub system: EnvString,
    pub project: Option<EnvString>,
    pub issue_type: Option<EnvString>,
}

/// `[[scim]]`: an identity provider that pushes people and groups.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScim {
    pub name: EnvString,
    pub token: EnvString,
}

/// `[[workload_issuer]]`: a platform that issues tokens to workloads.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkloadIssuer {
    pub name: EnvString,
    pub issuer: EnvString,
    pub audience: EnvString,
    pub jwks_url: Option<EnvString>,
    pub jwks_file: Option<EnvString>,
    pub max_lifetime: Option<EnvString>,
}

/// One entry of a service's or agent's `workload` list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    pub issuer: Option<EnvString>,
    pub subject: Option<EnvString>,
    #[serde(default)]
    pub claims: BTreeMap<String, EnvString>,
    pub client_certificate: Option<EnvString>,
}

/// `[[oidc]]`: an OpenID Connect provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidc {
    pub issuer: EnvString,
    pub audience: EnvString,
    pub username_claim: Option<EnvString>,
    /// The public client `writ login` signs in with.
    pub cli_client_id: Option<EnvString>,
    /// The client browser sign-in uses, and its secret if it is confidential.
    pub web_client_id: Option<EnvString>,
    pub web_client_secret: Option<EnvString>,
    pub scopes: Option<Vec<EnvString>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    pub checkpoint_file: Option<EnvString>,
    /// A duration, or "off".
    pub checkpoint_every: Option<EnvString>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeys {
    pub token_key: Option<EnvString>,
    pub token_key_file: Option<EnvString>,
    pub ledger_key: Option<EnvString>,
    pub ledger_key_file: Option<EnvString>,
    pub authzen_key: Option<EnvString>,
    pub authzen_key_file: Option<EnvString>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccess {
    pub auditors: Option<Vec<EnvString>>,
    pub admins: Option<Vec<EnvString>>,
    /// The identity kinds writ's own tokens (`writ token issue`) are accepted for.
    pub static_tokens: Option<Vec<EnvString>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<EnvString>,
    /// A second address serving only `/metrics`, without a token.
    pub metrics_listen: Option<EnvString>,
    pub header_read_timeout: Option<EnvString>,
    pub request_timeout: Option<EnvString>,
    pub concurrency_limit: Option<u32>,
    /// Requests per second per identity, or "off".
    pub rate_limit: Option<toml::Value>,
    /// Webhook deliveries per second per source address, or "off".
    pub webhook_rate_limit: Option<toml::Value>,
    /// PEM certificate chain and private key: the API is served over TLS.
    pub tls_cert: Option<EnvString>,
    pub tls_key: Option<EnvString>,
    /// PEM CA certificates that client certificates must chain to (mutual TLS).
    pub client_ca: Option<EnvString>,
    /// "required" (default) or "optional".
    pub client_cert: Option<EnvString>,
    /// Serve plaintext HTTP on a non-loopback address (behind a TLS-terminating proxy).
    pub allow_plaintext: Option<bool>,
    /// The address browsers reach writ at (browser sign-in redirects there).
    pub public_url: Option<EnvString>,
    /// How long a browser sign-in lasts.
    pub session_lifetime: Option<EnvString>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub url: Option<EnvString>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub dir: Option<EnvString>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequests {
    pub pending_ttl: Option<EnvString>,
    pub approver_kinds: Option<Vec<EnvString>>,
    /// A duration, or "off": the longest one checked ticket backs, extensions included.
    pub ticket_max_total: Option<EnvString>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentities {
    pub orphan_grace: Option<EnvString>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRevocation {
    pub retry_backoff_max: Option<EnvString>,
    pub escalate_after: Option<EnvString>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub name: EnvString,
    pub kind: EnvString,
    pub url: Option<EnvString>,
    pub command: Option<EnvString>,
    #[serde(default)]
    pub args: Vec<EnvString>,
    pub timeout: Option<EnvString>,
    pub reconcile_every: Option<EnvString>,
    pub max_concurrency: Option<u32>,
    pub max_rate: Option<u32>,
    pub circuit_failures: Option<u32>,
    pub circuit_cooldown: Option<EnvString>,
    pub orphan_owner: Option<EnvString>,
    pub account_host: Option<EnvString>,
    pub default_role: Option<bool>,
    pub starttls: Option<bool>,
    pub ca_file: Option<EnvString>,
    pub bind_dn: Option<EnvString>,
    pub bind_password: Option<EnvString>,
    pub group_base: Option<EnvString>,
    pub group_attribute: Option<EnvString>,
    pub member_attribute: Option<EnvString>,
    pub account_base: Option<EnvString>,
    pub account_attribute: Option<EnvString>,
    pub account_filter: Option<EnvString>,
    pub placeholder_member: Option<EnvString>,
    pub bearer_token: Option<EnvString>,
    pub call_timeout: Option<EnvString>,
    #[serde(default)]
    pub env: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEntitlement {
    pub id: EnvString,
    pub target: EnvString,
    pub role: EnvString,
    pub sensitivity: EnvString,
    pub max_duration: EnvString,
    pub owners: Option<EnvString>,
    pub ticket_required: Option<bool>,
    pub on_unmanaged: Option<EnvString>,
    pub on_lingering: Option<EnvString>,
    pub on_missing: Option<EnvString>,
    pub credential: Option<bool>,
    pub shared_role: Option<bool>,
    pub on_policy_change: Option<EnvString>,
    /// For a target of kind `authzen`: what enforcement points ask about.
    pub authzen: Option<RawPepResource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    pub name: EnvString,
    #[serde(default)]
    pub groups: Vec<EnvString>,
    pub manager: Option<EnvString>,
    pub owner: Option<EnvString>,
    #[serde(default)]
    pub accounts: BTreeMap<String, EnvString>,
    pub disabled: Option<bool>,
    #[serde(default)]
    pub delegates: Vec<EnvString>,
    #[serde(default)]
    pub workload: Vec<RawWorkload>,
    /// RFC 3339: when the identity ends (a contractor's last day).
    pub valid_until: Option<EnvString>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawItsm {
    pub name: EnvString,
    pub kind: EnvString,
    pub url: EnvString,
    pub user: Option<EnvString>,
    pub password: Option<EnvString>,
    pub bearer: Option<EnvString>,
    pub oauth: Option<RawOAuth>,
    pub webhook_secret: EnvString,
    pub webhook_max_age: Option<EnvString>,
    #[serde(default)]
    pub request_states: Vec<EnvString>,
    pub approval_required: Option<bool>,
    /// A duration, or "off".
    pub poll_every: Option<EnvString>,
    pub close_state: Option<EnvString>,
    /// Fields the close transition sets (Jira: what its "Done" screen requires).
    pub close_fields: Option<toml::Table>,
    /// "ticket", "tasks" (ServiceNow catalog tasks) or "flow" (only the note).
    pub closure: Option<EnvString>,
    pub fields: RawTicketFields,
}

/// OAuth 2.0 client credentials.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth {
    pub token_url: EnvString,
    pub client_id: EnvString,
    pub client_secret: EnvString,
    pub scope: Option<EnvString>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTicketFields {
    pub entitlement: EnvString,
    pub subject: Option<EnvString>,
    pub beneficiary: Option<EnvString>,
    pub duration: Option<EnvString>,
    pub justification: Option<EnvString>,
    pub window_end: Option<EnvString>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub name: EnvString,
    pub url: EnvString,
    pub secret: Option<EnvString>,
    #[serde(default)]
    pub events: Vec<EnvString>,
    pub from_start: Option<bool>,
}

impl RawTarget {
    /// The first key only LDAP targets take, if this target has one.
    pub fn ldap_key(&self) -> Option<&'static str> {
        [
            ("starttls", self.starttls.is_some()),
            ("bind_dn", self.bind_dn.is_some()),
            ("bind_password", self.bind_password.is_some()),
            ("group_base", self.group_base.is_some()),
            ("group_attribute", self.group_attribute.is_some()),
            ("member_attribute", self.member_attribute.is_some()),
            ("account_base", self.account_base.is_some()),
            ("account_attribute", self.account_attribute.is_some()),
            ("account_filter", self.account_filter.is_some()),
            ("placeholder_member", self.placeholder_member.is_some()),
        ]
        .into_iter()
        .find_map(|(key, present)| present.then_some(key))
    }
}
