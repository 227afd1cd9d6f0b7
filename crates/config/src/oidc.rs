//! `[[oidc]]`: OpenID Connect providers whose tokens writ accepts as bearer tokens.

use crate::ConfigError;
use crate::raw::RawOidc;
use crate::validate::Checker;

pub const DEFAULT_USERNAME_CLAIM: &str = "preferred_username";

/// A provider: its tokens are checked against its published keys (discovered from
/// `issuer`), must name `audience`, and name a configured identity in `username_claim`.
/// Groups always come from writ's identity store, never from the token: a claim in a
/// token cannot give anyone approval rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcProvider {
    /// Exactly as the tokens' `iss` says it (no trailing-slash games).
    pub issuer: String,
    pub audience: String,
    pub username_claim: String,
    /// The public client `writ login` signs people in with (device flow, or code +
    /// PKCE on a loopback redirect); `None`: no CLI sign-in through this provider.
    pub cli_client_id: Option<String>,
    /// The client `writ serve`'s browser sign-in uses; `None`: no browser sign-in.
    pub web_client_id: Option<String>,
    /// Its secret, if the provider registered it as a confidential client.
    pub web_client_secret: Option<SecretString>,
    /// Scopes asked for at sign-in; empty: `openid profile offline_access`.
    pub scopes: Vec<String>,
}

/// A secret from the configuration: its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(pub String);

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// `https://`, or `http://` only to this machine (a provider started beside writ):
/// keys fetched in plaintext over a network could be anyone's.
pub(crate) fn is_acceptable_url(issuer: &str) -> bool {
    if issuer.starts_with("https://") {
        return true;
    }
    let Some(rest) = issuer.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(host, _port)| host);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

/// `url` if it is [acceptable](is_acceptable_url); otherwise the error for `key`.
pub(crate) fn checked_url(
    check: &Checker<'_>,
    key: &str,
    url: String,
) -> Result<String, ConfigError> {
    if is_acceptable_url(&url) {
        return Ok(url);
    }
    Err(check.invalid(
        key,
        format!("{url:?} must be an https:// URL (http:// only to 127.0.0.1 or localhost)"),
    ))
}

pub(crate) fn validate_oidc(
    check: &Checker<'_>,
    raw: Vec<RawOidc>,
) -> Result<Vec<OidcProvider>, ConfigError> {
    let mut providers: Vec<OidcProvider> = Vec::new();
    for (index, raw) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("oidc[{index}].{field}");
        let issuer = checked_url(check, &key("issuer"), raw.issuer.0)?;
        if providers.iter().any(|p| p.issuer == issuer) {
            return Err(check.invalid(key("issuer"), format!("{issuer:?} is configured twice")));
        }
        let audience = raw.audience.0;
        if audience.trim().is_empty() {
            return Err(check.invalid(
                key("audience"),
                "must name what writ is called in the provider's tokens (their `aud`)",
            ));
        }
        let username_claim = raw
            .username_claim
            .map_or_else(|| DEFAULT_USERNAME_CLAIM.to_string(), |c| c.0);
        if username_claim.trim().is_empty() {
            return Err(check.invalid(key("username_claim"), "must not be empty"));
        }
        let client = |field: &str, value: Option<crate::env::EnvString>| {
            value
                .map(|v| v.0)
                .map(|id| {
                    if id.trim().is_empty() {
                        Err(check.invalid(key(field), "must not be empty"))
                    } else {
                        Ok(id)
                    }
                })
                .transpose()
        };
        let cli_client_id = client("cli_client_id", raw.cli_client_id)?;
        let web_client_id = client("web_client_id", raw.web_client_id)?;
        let web_client_secret =
            client("web_client_secret", raw.web_client_secret)?.map(SecretString);
        if web_client_secret.is_some() && web_client_id.is_none() {
            return Err(check.invalid(key("web_client_secret"), "needs web_client_id"));
        }
        let scopes = raw
            .scopes
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.0)
            .collect::<Vec<_>>();
        if scopes.iter().any(|s| s.is_empty() || s.contains(' ')) {
            return Err(check.invalid(key("scopes"), "each scope is one word"));
        }
        providers.push(OidcProvider {
            issuer,
            audience,
            username_claim,
            cli_client_id,
            web_client_id,
            web_client_secret,
            scopes,
        });
    }
    Ok(providers)
}

#[cfg(test)]
mod tests {
    use super::is_acceptable_url;

    #[test]
    fn plaintext_issuers_are_accepted_only_on_this_machine() {
        for ok in [
            "https://login.example.com/realms/x",
            "http://127.0.0.1:8080",
            "http://localhost/x",
            "http://[::1]:9000",
        ] {
            assert!(is_acceptable_url(ok), "{ok}");
        }
        for bad in [
            "http://idp.example.com",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example:80",
            "ftp://127.0.0.1",
            "127.0.0.1",
        ] {
            assert!(!is_acceptable_url(bad), "{bad}");
        }
    }
}
