//! Targets reached over the network with their own settings: `kind = "ldap"` (a
//! directory, where its groups and accounts are, how writ binds) and `kind = "scim"`
//! (an application's SCIM base URL and writ's token).

use crate::raw::RawTarget;
use crate::validate::Checker;
use crate::{ConfigError, LdapTarget, ScimTarget};

/// What an LDAP target's keys become; `key` names a field for errors.
pub(crate) fn ldap(
    check: &Checker<'_>,
    key: &dyn Fn(&str) -> String,
    raw: &mut RawTarget,
) -> Result<LdapTarget, ConfigError> {
    let required = |field: &str, value: Option<crate::env::EnvString>| {
        value
            .map(|v| v.0)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| check.invalid(key(field), "an ldap target needs it"))
    };
    let url = required("url", raw.url.take())?;
    let ldaps = url.starts_with("ldaps://");
    if !(ldaps || url.starts_with("ldap://")) {
        return Err(check.invalid(
            key("url"),
            format!("{url:?} is not an ldap:// or ldaps:// URL"),
        ));
    }
    // A bind password never crosses the network in clear unless asked for in so many words.
    let starttls = match (ldaps, raw.starttls.take()) {
        (true, Some(true)) => {
            return Err(check.invalid(key("starttls"), "an ldaps:// URL is already TLS"));
        }
        (true, _) => false,
        (false, setting) => setting.unwrap_or(true),
    };
    let member_attribute = raw
        .member_attribute
        .take()
        .map_or_else(|| "member".to_string(), |v| v.0);
    if !(member_attribute.eq_ignore_ascii_case("member")
        || member_attribute.eq_ignore_ascii_case("uniqueMember"))
    {
        return Err(check.invalid(
            key("member_attribute"),
            format!("{member_attribute:?}: expected member or uniqueMember"),
        ));
    }
    let attribute = |field: &str, value: Option<crate::env::EnvString>, default: &str| {
        let name = value.map_or_else(|| default.to_string(), |v| v.0);
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if valid {
            Ok(name)
        } else {
            Err(check.invalid(key(field), format!("{name:?} is not an attribute name")))
        }
    };
    let account_filter = match raw.account_filter.take().map(|v| v.0) {
        Some(filter) if !(filter.starts_with('(') && filter.ends_with(')')) => {
            return Err(check.invalid(
                key("account_filter"),
                format!("{filter:?} is not an LDAP filter such as (objectClass=person)"),
            ));
        }
        other => other,
    };
    Ok(LdapTarget {
        starttls,
        ca_file: raw.ca_file.take().map(|path| check.relative(&path.0)),
        bind_dn: required("bind_dn", raw.bind_dn.take())?,
        bind_password: required("bind_password", raw.bind_password.take())?,
        group_base: required("group_base", raw.group_base.take())?,
        group_attribute: attribute("group_attribute", raw.group_attribute.take(), "cn")?,
        member_attribute,
        account_base: required("account_base", raw.account_base.take())?,
        account_attribute: attribute("account_attribute", raw.account_attribute.take(), "uid")?,
        account_filter,
        placeholder_member: raw.placeholder_member.take().map(|v| v.0),
        url,
    })
}

/// Whether `url`'s host is this machine, where clear text never crosses a network.
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host_port = rest.split(['/', '?']).next().unwrap_or_default();
    let host = host_port
        .rsplit_once('@')
        .map_or(host_port, |(_, host)| host);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(crate) fn scim(
    check: &Checker<'_>,
    key: &dyn Fn(&str) -> String,
    raw: &mut RawTarget,
) -> Result<ScimTarget, ConfigError> {
    let url = raw
        .url
        .take()
        .map(|v| v.0)
        .ok_or_else(|| check.invalid(key("url"), "a scim target needs its SCIM base URL"))?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(check.invalid(key("url"), format!("{url:?} is not an https:// URL")));
    }
    // The bearer token would cross the network in clear.
    if url.starts_with("http://") && !is_loopback(&url) {
        return Err(check.invalid(
            key("url"),
            format!("{url:?} would send writ's token in clear; use https://"),
        ));
    }
    let bearer_token = raw
        .bearer_token
        .take()
        .map(|v| v.0)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| check.invalid(key("bearer_token"), "a scim target needs a bearer token"))?;
    Ok(ScimTarget {
        url,
        bearer_token,
        ca_file: raw.ca_file.take().map(|path| check.relative(&path.0)),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_hosts() {
        for url in [
            "http://127.0.0.1:8080/scim/v2",
            "http://localhost/scim",
            "http://[::1]:80/v2",
            "http://user@127.0.0.2/",
        ] {
            assert!(super::is_loopback(url), "{url}");
        }
        for url in [
            "http://app.example.com/scim",
            "http://127.0.0.1.evil.example/",
            "http://10.0.0.1/",
            "http://localhost.example/",
        ] {
            assert!(!super::is_loopback(url), "{url}");
        }
    }
}
