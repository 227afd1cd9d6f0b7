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

pub(crate) fn validate_oidc(
    check: &Checker<'_>,
    raw: Vec<RawOidc>,
) -> Result<Vec<OidcProvider>, ConfigError> {
    let mut providers: Vec<OidcProvider> = Vec::new();
    for (index, raw) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("oidc[{index}].{field}");
        let issuer = raw.issuer.0;
        if !is_acceptable_url(&issuer) {
            return Err(check.invalid(
                key("issuer"),
                format!(
                    "{issuer:?} must be an https:// URL (http:// only to 127.0.0.1 or localhost)"
                ),
            ));
        }
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
        providers.push(OidcProvider {
            issuer,
            audience,
            username_claim,
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
