//! LDAP (OpenLDAP, Active Directory): an entitlement is a group; granting adds the
//! account's DN to the group entry's `member` (or `uniqueMember`).
//!
//! The group is `<group_attribute>=<role>,<group_base>` with the role escaped as an
//! RFC 4514 DN value; the account is the one entry under `account_base` whose
//! `account_attribute` equals the account, found with an RFC 4515-escaped filter. Each
//! call opens its own connection (StartTLS or LDAPS, then a simple bind), so a
//! directory that was down is used again as soon as it is back.
//!
//! "Revoked" means: the group entry, read back, no longer lists the account's DN. LDAP
//! has no sessions to end; what a bound application caches is its own.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry, dn_escape, ldap_escape};

use crate::{Access, Connector, ConnectorError};

/// How long writ waits for the directory to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Entries per page when listing accounts for reconciliation.
const PAGE_SIZE: i32 = 500;

/// LDAP result codes writ tells apart (RFC 4511 §4.1.9).
mod rc {
    pub const NO_SUCH_ATTRIBUTE: u32 = 16;
    pub const ATTRIBUTE_OR_VALUE_EXISTS: u32 = 20;
    pub const NO_SUCH_OBJECT: u32 = 32;
    pub const OBJECT_CLASS_VIOLATION: u32 = 65;
}

/// Where the directory is and how writ finds groups and accounts in it.
#[derive(Clone)]
pub struct LdapSettings {
    /// `ldap://host:389` or `ldaps://host:636`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    pub starttls: bool,
    /// PEM file of the CAs trusted for the directory's certificate; `None`: the
    /// system's roots.
    pub ca_file: Option<std::path::PathBuf>,
    pub bind_dn: String,
    pub bind_password: String,
    pub group_base: String,
    /// The naming attribute of groups (`cn`).
    pub group_attribute: String,
    /// `member` (groupOfNames, Active Directory) or `uniqueMember` (groupOfUniqueNames).
    pub member_attribute: String,
    pub account_base: String,
    /// The attribute an account is named by (`uid`, `sAMAccountName`).
    pub account_attribute: String,
    /// More conditions on account entries, such as `(objectClass=inetOrgPerson)`.
    pub account_filter: Option<String>,
    /// A DN kept in a group that would otherwise be left empty (`groupOfNames` must
    /// have a member); never reported as a member.
    pub placeholder_member: Option<String>,
    /// How long one operation may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for LdapSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapSettings")
            .field("url", &self.url)
            .field("bind_dn", &self.bind_dn)
            .field("bind_password", &"<redacted>")
            .field("group_base", &self.group_base)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct LdapConnector {
    settings: LdapSettings,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// A bound connection for one call.
struct Session {
    ldap: ldap3::Ldap,
    timeout: Duration,
}

fn unreachable(error: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Failed(format!("cannot reach the directory: {error}"))
}

/// After the request was sent, a lost answer may hide a change that was made.
fn lost(error: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Unknown(format!("directory call lost: {error}"))
}

fn refused(what: &str, result: &ldap3::LdapResult) -> ConnectorError {
    ConnectorError::Failed(format!(
        "{what}: {} (LDAP result {}){}",
        result.text,
        result.rc,
        if result.matched.is_empty() {
            String::new()
        } else {
            format!(", matched {}", result.matched)
        }
    ))
}

/// A DN in the form reconciliation compares: attribute names and values lower-cased
/// and the spaces around separators dropped. Escapes are kept as they are, so two
/// spellings of one DN may still differ; a member that does not match is reported as
/// its DN (an unmanaged finding), never dropped.
fn normalise_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut escaped = false;
    // At the start or just after a separator: spaces here are not part of a value.
    let mut after_separator = true;
    // Unescaped spaces at the end of `out`, dropped if a separator follows.
    let mut trailing_spaces = 0;
    for c in dn.chars() {
        if escaped {
            out.push(c);
            escaped = false;
            trailing_spaces = 0;
            continue;
        }
        match c {
            '\\' => {
                out.push(c);
                escaped = true;
                after_separator = false;
                trailing_spaces = 0;
            }
            ',' | '=' | '+' => {
                out.truncate(out.len() - trailing_spaces);
                out.push(c);
                after_separator = true;
                trailing_spaces = 0;
            }
            ' ' if after_separator => {}
            ' ' => {
                out.push(' ');
                trailing_spaces += 1;
            }
            other => {
                out.extend(other.to_lowercase());
                after_separator = false;
                trailing_spaces = 0;
            }
        }
    }
    out.truncate(out.len() - trailing_spaces);
    out
}

impl LdapConnector {
    pub fn new(settings: LdapSettings) -> Result<Self, ConnectorError> {
        let tls = match &settings.ca_file {
            None => None,
            Some(path) => Some(Arc::new(tls_config(path)?)),
        };
        // ldap3's own TLS set-up uses the process's default provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(Self { settings, tls })
    }

    /// The group's DN for an entitlement's role.
    pub fn group_dn(&self, role: &str) -> String {
        format!(
            "{}={},{}",
            self.settings.group_attribute,
            dn_escape(role),
            self.settings.group_base
        )
    }

    fn account_filter(&self, account: &str) -> String {
        let exact = format!(
            "({}={})",
            self.settings.account_attribute,
            ldap_escape(account)
        );
        match &self.settings.account_filter {
            Some(extra) => format!("(&{extra}{exact})"),
            None => exact,
        }
    }

    async fn connect(&self) -> Result<Session, ConnectorError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(CONNECT_TIMEOUT)
            .set_starttls(self.settings.starttls);
        if let Some(config) = &self.tls {
            settings = settings.set_config(config.clone());
        }
        let (connection, mut ldap) = LdapConnAsync::with_settings(settings, &self.settings.url)
            .await
            .map_err(unreachable)?;
        ldap3::drive!(connection);
        let timeout = self.settings.timeout;
        let bound = ldap
            .with_timeout(timeout)
            .simple_bind(&self.settings.bind_dn, &self.settings.bind_password)
            .await
            .map_err(unreachable)?;
        if bound.rc != 0 {
            return Err(refused(
                &format!("cannot bind as {}", self.settings.bind_dn),
                &bound,
            ));
        }
        Ok(Session { ldap, timeout })
    }

    /// The DN of the one account entry named `account`; `None` when there is none.
    async fn find_account(
        &self,
        session: &mut Session,
        account: &str,
    ) -> Result<Option<String>, ConnectorError> {
        let (entries, _) = session
            .ldap
            .with_timeout(session.timeout)
            .search(
                &self.settings.account_base,
                Scope::Subtree,
                &self.account_filter(account),
                vec!["1.1"],
            )
            .await
            .map_err(lost)?
            .success()
            .map_err(|e| ConnectorError::Failed(format!("searching for account {account}: {e}")))?;
        match entries.as_slice() {
            [] => Ok(None),
            [entry] => Ok(Some(SearchEntry::construct(entry.clone()).dn)),
            more => Err(ConnectorError::Failed(format!(
                "{} entries under {} are named {account}: an account must be one entry",
                more.len(),
                self.settings.account_base
            ))),
        }
    }

    async fn account_dn(
        &self,
        session: &mut Session,
        account: &str,
    ) -> Result<String, ConnectorError> {
        self.find_account(session, account).await?.ok_or_else(|| {
            ConnectorError::Failed(format!(
                "account {account} does not exist under {}",
                self.settings.account_base
            ))
        })
    }

    async fn modify_group(
        &self,
        session: &mut Session,
        group: &str,
        changes: Vec<Mod<String>>,
    ) -> Result<ldap3::LdapResult, ConnectorError> {
        session
            .ldap
            .with_timeout(session.timeout)
            .modify(group, changes)
            .await
            .map_err(lost)
    }

    /// The group's member DNs, as stored; `None` when the group does not exist.
    async fn group_members(
        &self,
        session: &mut Session,
        group: &str,
    ) -> Result<Option<Vec<String>>, ConnectorError> {
        let member = self.settings.member_attribute.as_str();
        let search = session
            .ldap
            .with_timeout(session.timeout)
            .search(group, Scope::Base, "(objectClass=*)", vec![member])
            .await
            .map_err(lost)?;
        if search.1.rc == rc::NO_SUCH_OBJECT {
            return Ok(None);
        }
        let (entries, _) = search
            .success()
            .map_err(|e| ConnectorError::Failed(format!("reading group {group}: {e}")))?;
        let Some(entry) = entries.into_iter().next() else {
            return Ok(None);
        };
        let entry = SearchEntry::construct(entry);
        let values = entry
            .attrs
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(member))
            .map(|(_, values)| values)
            .unwrap_or_default();
        Ok(Some(values))
    }

    /// Every account under `account_base`, by normalised DN (paged).
    async fn accounts_by_dn(
        &self,
        session: &mut Session,
    ) -> Result<HashMap<String, String>, ConnectorError> {
        let attribute = self.settings.account_attribute.as_str();
        let filter = match &self.settings.account_filter {
            Some(extra) => format!("(&{extra}({attribute}=*))"),
            None => format!("({attribute}=*)"),
        };
        let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(PAGE_SIZE)),
        ];
        let mut stream = session
            .ldap
            .with_timeout(session.timeout)
            .streaming_search_with(
                adapters,
                &self.settings.account_base,
                Scope::Subtree,
                &filter,
                vec![attribute],
            )
            .await
            .map_err(lost)?;
        let mut accounts = HashMap::new();
        while let Some(entry) = stream.next().await.map_err(lost)? {
            let entry = SearchEntry::construct(entry);
            let name = entry
                .attrs
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(attribute))
                .and_then(|(_, values)| values.first().cloned());
            if let Some(name) = name {
                accounts.insert(normalise_dn(&entry.dn), name);
            }
        }
        stream
            .finish()
            .await
            .success()
            .map_err(|e| ConnectorError::Failed(format!("listing accounts: {e}")))?;
        Ok(accounts)
    }

    async fn unbind(mut session: Session) {
        let _ = session.ldap.unbind().await;
    }
}

fn tls_config(path: &std::path::Path) -> Result<rustls::ClientConfig, ConnectorError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(path).map_err(|e| {
        ConnectorError::Failed(format!("cannot read ca_file {}: {e}", path.display()))
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        let certificate = certificate
            .map_err(|e| ConnectorError::Failed(format!("ca_file {}: {e}", path.display())))?;
        roots
            .add(certificate)
            .map_err(|e| ConnectorError::Failed(format!("ca_file {}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(ConnectorError::Failed(format!(
            "ca_file {} holds no certificate",
            path.display()
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectorError::Failed(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[async_trait]
impl Connector for LdapConnector {
    async fn grant(&self, access: Access<'_>) -> Result<(), ConnectorError> {
        let mut session = self.connect().await?;
        let result = async {
            let account = self.account_dn(&mut session, access.account).await?;
            let group = self.group_dn(access.role);
            let member = self.settings.member_attribute.clone();
            let added = self
                .modify_group(
                    &mut session,
                    &group,
                    vec![Mod::Add(member, HashSet::from([account]))],
                )
                .await?;
            match added.rc {
                0 | rc::ATTRIBUTE_OR_VALUE_EXISTS => Ok(()),
                rc::NO_SUCH_OBJECT => Err(ConnectorError::Failed(format!(
                    "group {group} does not exist"
                ))),
                _ => Err(refused(&format!("adding to {group}"), &added)),
            }
        }
        .await;
        Self::unbind(session).await;
        result
    }

    async fn revoke(&self, access: Access<'_>) -> Result<(), ConnectorError> {
        let mut session = self.connect().await?;
        let result = async {
            // No such account: it is a member of nothing, and the read-back decides.
            let Some(account) = self.find_account(&mut session, access.account).await? else {
                return Ok(());
            };
            let group = self.group_dn(access.role);
            let member = self.settings.member_attribute.clone();
            let removal = Mod::Delete(member.clone(), HashSet::from([account.clone()]));
            let removed = self
                .modify_group(&mut session, &group, vec![removal])
                .await?;
            match (removed.rc, &self.settings.placeholder_member) {
                (0 | rc::NO_SUCH_ATTRIBUTE | rc::NO_SUCH_OBJECT, _) => Ok(()),
                // The last member of a group that must have one: the placeholder takes
                // its place in the same modification.
                (rc::OBJECT_CLASS_VIOLATION, Some(placeholder)) => {
                    let swapped = self
                        .modify_group(
                            &mut session,
                            &group,
                            vec![
                                Mod::Add(member.clone(), HashSet::from([placeholder.clone()])),
                                Mod::Delete(member, HashSet::from([account])),
                            ],
                        )
                        .await?;
                    match swapped.rc {
                        0 | rc::NO_SUCH_ATTRIBUTE => Ok(()),
                        _ => Err(refused(&format!("removing from {group}"), &swapped)),
                    }
                }
                (rc::OBJECT_CLASS_VIOLATION, None) => Err(ConnectorError::Failed(format!(
                    "{group} cannot be left without members ({}); set the target's placeholder_member",
                    removed.text
                ))),
                _ => Err(refused(&format!("removing from {group}"), &removed)),
            }
        }
        .await;
        Self::unbind(session).await;
        result
    }

    /// Whether the group entry lists the account's DN, compared by the directory's
    /// own DN matching.
    async fn holds(&self, access: Access<'_>) -> Result<bool, ConnectorError> {
        let mut session = self.connect().await?;
        let result = async {
            let Some(account) = self.find_account(&mut session, access.account).await? else {
                return Ok(false);
            };
            let group = self.group_dn(access.role);
            let filter = format!(
                "({}={})",
                self.settings.member_attribute,
                ldap_escape(account.as_str())
            );
            let search = session
                .ldap
                .with_timeout(session.timeout)
                .search(&group, Scope::Base, &filter, vec!["1.1"])
                .await
                .map_err(lost)?;
            if search.1.rc == rc::NO_SUCH_OBJECT {
                return Ok(false);
            }
            let (entries, _) = search
                .success()
                .map_err(|e| ConnectorError::Failed(format!("reading group {group}: {e}")))?;
            Ok(!entries.is_empty())
        }
        .await;
        Self::unbind(session).await;
        result
    }

    /// The groups the role's group is nested in, directly or through others: their
    /// members are members of those too. A directory has no superuser to reach here.
    async fn effective_access(
        &self,
        role: &str,
    ) -> Result<Option<writ_domain::EffectiveAccess>, ConnectorError> {
        let mut session = self.connect().await?;
        let result = async {
            let group = self.group_dn(role);
            if self.group_members(&mut session, &group).await?.is_none() {
                return Err(ConnectorError::Failed(format!(
                    "group {group} does not exist"
                )));
            }
            let mut access = writ_domain::EffectiveAccess::default();
            let mut seen = HashSet::from([normalise_dn(&group)]);
            let mut frontier = vec![group];
            while let Some(dn) = frontier.pop() {
                for (parent, name) in self.parents(&mut session, &dn).await? {
                    if seen.insert(normalise_dn(&parent)) {
                        access.roles.insert(name);
                        frontier.push(parent);
                    }
                }
            }
            Ok(Some(access))
        }
        .await;
        Self::unbind(session).await;
        result
    }

    /// The accounts the group lists, by name; a member that is not an account under
    /// `account_base` (another group, an entry elsewhere) is listed by its DN, so
    /// reconciliation reports it rather than missing it.
    async fn members(&self, role: &str) -> Result<Vec<String>, ConnectorError> {
        let mut session = self.connect().await?;
        let result = async {
            let group = self.group_dn(role);
            let Some(dns) = self.group_members(&mut session, &group).await? else {
                return Err(ConnectorError::Failed(format!(
                    "group {group} does not exist"
                )));
            };
            let placeholder = self
                .settings
                .placeholder_member
                .as_deref()
                .map(normalise_dn);
            let dns: Vec<String> = dns
                .into_iter()
                .filter(|dn| placeholder.as_deref() != Some(normalise_dn(dn).as_str()))
                .collect();
            if dns.is_empty() {
                return Ok(Vec::new());
            }
            let accounts = self.accounts_by_dn(&mut session).await?;
            Ok(dns
                .into_iter()
                .map(|dn| accounts.get(&normalise_dn(&dn)).cloned().unwrap_or(dn))
                .collect())
        }
        .await;
        Self::unbind(session).await;
        result
    }
}

impl LdapConnector {
    /// The groups under `group_base` that list `dn` as a member: (their DN, name).
    async fn parents(
        &self,
        session: &mut Session,
        dn: &str,
    ) -> Result<Vec<(String, String)>, ConnectorError> {
        let filter = format!("({}={})", self.settings.member_attribute, ldap_escape(dn));
        let attribute = self.settings.group_attribute.as_str();
        let (entries, _) = session
            .ldap
            .with_timeout(session.timeout)
            .search(
                &self.settings.group_base,
                Scope::Subtree,
                &filter,
                vec![attribute],
            )
            .await
            .map_err(lost)?
            .success()
            .map_err(|e| {
                ConnectorError::Failed(format!("searching for groups holding {dn}: {e}"))
            })?;
        Ok(entries
            .into_iter()
            .map(SearchEntry::construct)
            .map(|entry| {
                let name = entry
                    .attrs
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(attribute))
                    .and_then(|(_, values)| values.first().cloned())
                    .unwrap_or_else(|| entry.dn.clone());
                (entry.dn, name)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_normalise_case_and_spaces_but_keep_escapes() {
        assert_eq!(
            normalise_dn("UID=Alice , OU=People,DC=Example,DC=Org"),
            "uid=alice,ou=people,dc=example,dc=org"
        );
        assert_eq!(normalise_dn("cn=a\\, b,dc=x"), "cn=a\\, b,dc=x");
        assert_eq!(normalise_dn("cn=a\\ ,dc=x "), "cn=a\\ ,dc=x");
        assert_eq!(normalise_dn("cn = two  words , dc=x"), "cn=two  words,dc=x");
        assert_ne!(normalise_dn("cn=a\\,b,dc=x"), normalise_dn("cn=a,b,dc=x"));
    }
}
