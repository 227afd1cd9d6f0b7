//! OpenLDAP: a throwaway `slapd`, reached through the suite's proxy, with writ bound
//! as a service account that may write only group membership.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use writ_connectors::{Connector, LdapConnector, LdapSettings};
use writ_testkit::slapd::{self, Slapd};

use crate::proxy::{Proxy, Reach};
use crate::suite::Target;

/// Kept in every group so `groupOfNames` never has to be empty.
pub const PLACEHOLDER: &str = "cn=placeholder,dc=example,dc=org";

pub struct Ldap {
    slapd: Slapd,
    proxy: Proxy,
    connector: LdapConnector,
}

/// The administrator's own RFC 4514 escaping of one attribute value, independent of
/// the connector's.
pub fn escape_value(value: &str) -> String {
    let mut out = String::new();
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            other => out.push(other),
        }
    }
    out
}

/// An LDIF line with its value in base64, which carries any bytes.
fn line(attribute: &str, value: &str) -> String {
    format!(
        "{attribute}:: {}\n",
        base64::engine::general_purpose::STANDARD.encode(value)
    )
}

pub fn settings(url: &str) -> LdapSettings {
    LdapSettings {
        url: url.to_string(),
        starttls: false,
        ca_file: None,
        bind_dn: slapd::WRIT_DN.into(),
        bind_password: slapd::WRIT_PASSWORD.into(),
        group_base: slapd::GROUPS.into(),
        group_attribute: "cn".into(),
        member_attribute: "member".into(),
        account_base: slapd::PEOPLE.into(),
        account_attribute: "uid".into(),
        account_filter: Some("(objectClass=inetOrgPerson)".into()),
        placeholder_member: Some(PLACEHOLDER.into()),
        timeout: Duration::from_secs(30),
    }
}

impl Ldap {
    pub async fn start() -> Self {
        let slapd = Slapd::start(None);
        let proxy = Proxy::start(
            format!("127.0.0.1:{}", slapd.port())
                .parse()
                .expect("address"),
        )
        .await;
        let connector = LdapConnector::new(settings(&format!("ldap://127.0.0.1:{}", proxy.port())))
            .expect("connector");
        Self {
            slapd,
            proxy,
            connector,
        }
    }

    pub fn group_dn(name: &str) -> String {
        format!("cn={},{}", escape_value(name), slapd::GROUPS)
    }

    pub fn account_dn(name: &str) -> String {
        format!("uid={},{}", escape_value(name), slapd::PEOPLE)
    }
}

#[async_trait]
impl Target for Ldap {
    fn kind(&self) -> &'static str {
        "ldap"
    }

    fn connector(&self) -> &dyn Connector {
        &self.connector
    }

    async fn create_role(&self, name: &str) -> bool {
        let ldif = line("dn", &Self::group_dn(name))
            + "objectClass: groupOfNames\n"
            + &line("cn", name)
            + &format!("member: {PLACEHOLDER}\n");
        self.slapd.try_add(&ldif).is_ok()
    }

    async fn create_account(&self, name: &str) -> bool {
        let ldif = line("dn", &Self::account_dn(name))
            + "objectClass: inetOrgPerson\n"
            + &line("uid", name)
            + &line("cn", name)
            + "sn: test\n";
        self.slapd.try_add(&ldif).is_ok()
    }

    async fn grant_out_of_band(&self, role: &str, account: &str) {
        self.slapd.modify(
            &(line("dn", &Self::group_dn(role))
                + "changetype: modify\nadd: member\n"
                + &line("member", &Self::account_dn(account))),
        );
    }

    async fn set_reach(&self, reach: Reach) {
        self.proxy.set(reach);
    }
}
