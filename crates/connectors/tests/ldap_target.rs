//! What the LDAP connector does beyond the contract, against a real `slapd`: StartTLS
//! and LDAPS with a pinned CA (and no fallback to clear text), `uniqueMember`
//! groups, groups that must keep a member, and reconciliation of a group larger than
//! the directory's size limit by paged search.

#[path = "contract/ldap.rs"]
#[allow(dead_code)]
mod fixture;
#[path = "contract/proxy.rs"]
#[allow(dead_code)]
mod proxy;
#[path = "contract/suite.rs"]
#[allow(dead_code)]
mod suite;

use writ_connectors::{Access, Connector, ConnectorError, LdapConnector};
use writ_testkit::certs::{Ca, Validity};
use writ_testkit::slapd::{self, Slapd, TlsFiles};

fn person(slapd: &Slapd, uid: &str) {
    slapd.add(&format!(
        "dn: uid={uid},{}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: test\n",
        slapd::PEOPLE
    ));
}

fn group(slapd: &Slapd, cn: &str, class: &str, member_attribute: &str, member: &str) {
    slapd.add(&format!(
        "dn: cn={cn},{}\nobjectClass: {class}\ncn: {cn}\n{member_attribute}: {member}\n",
        slapd::GROUPS
    ));
}

fn access<'a>(role: &'a str, account: &'a str) -> Access<'a> {
    Access { role, account }
}

#[tokio::test]
async fn starttls_and_ldaps_trust_only_the_configured_ca() {
    let ca = Ca::new("directory CA");
    let (certificate_pem, key_pem) = ca.server(Validity::Current);
    let slapd = Slapd::start(Some(TlsFiles {
        certificate_pem,
        key_pem,
    }));
    person(&slapd, "alice");
    group(
        &slapd,
        "ops",
        "groupOfNames",
        "member",
        fixture::PLACEHOLDER,
    );
    let ca_file = slapd.path("trusted-ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("CA file");

    let mut starttls = fixture::settings(&slapd.url());
    starttls.starttls = true;
    starttls.ca_file = Some(ca_file.clone());
    let connector = LdapConnector::new(starttls.clone()).expect("connector");
    connector
        .grant(access("ops", "alice"))
        .await
        .expect("grant over StartTLS");
    assert!(
        connector
            .holds(access("ops", "alice"))
            .await
            .expect("check")
    );

    let mut ldaps = fixture::settings(&slapd.ldaps_url().expect("ldaps"));
    ldaps.ca_file = Some(ca_file);
    let connector = LdapConnector::new(ldaps).expect("connector");
    connector
        .revoke(access("ops", "alice"))
        .await
        .expect("revoke over LDAPS");
    assert!(
        !connector
            .holds(access("ops", "alice"))
            .await
            .expect("check")
    );

    // Another CA's directory is not this one: refused before the password is sent.
    let impostor = Ca::new("someone else");
    let other_ca = slapd.path("other-ca.pem");
    std::fs::write(&other_ca, impostor.pem()).expect("CA file");
    let mut wrong = starttls;
    wrong.ca_file = Some(other_ca);
    let connector = LdapConnector::new(wrong).expect("connector");
    let refused = connector
        .grant(access("ops", "alice"))
        .await
        .expect_err("an untrusted certificate");
    assert!(
        matches!(&refused, ConnectorError::Failed(message) if message.contains("cannot reach the directory")),
        "{refused:?}"
    );
    assert!(!slapd.log().contains("writ-secret"));
}

#[tokio::test]
async fn unique_member_groups_and_groups_that_must_keep_a_member() {
    let slapd = Slapd::start(None);
    person(&slapd, "alice");
    person(&slapd, "bob");
    group(
        &slapd,
        "auditors",
        "groupOfUniqueNames",
        "uniqueMember",
        fixture::PLACEHOLDER,
    );
    let mut settings = fixture::settings(&slapd.url());
    settings.member_attribute = "uniqueMember".into();
    let connector = LdapConnector::new(settings).expect("connector");
    connector
        .grant(access("auditors", "alice"))
        .await
        .expect("grant");
    assert!(
        connector
            .holds(access("auditors", "alice"))
            .await
            .expect("check")
    );
    assert_eq!(
        connector.members("auditors").await.expect("members"),
        ["alice"]
    );
    connector
        .revoke(access("auditors", "alice"))
        .await
        .expect("revoke");
    assert!(
        connector
            .members("auditors")
            .await
            .expect("members")
            .is_empty()
    );

    // A groupOfNames whose only member is the one revoked: the placeholder stays.
    group(
        &slapd,
        "solo",
        "groupOfNames",
        "member",
        &format!("uid=bob,{}", slapd::PEOPLE),
    );
    let connector = LdapConnector::new(fixture::settings(&slapd.url())).expect("connector");
    connector
        .revoke(access("solo", "bob"))
        .await
        .expect("revoke the last member");
    assert!(!connector.holds(access("solo", "bob")).await.expect("check"));
    assert!(connector.members("solo").await.expect("members").is_empty());

    // Without a placeholder the directory's refusal is explained.
    group(
        &slapd,
        "lonely",
        "groupOfNames",
        "member",
        &format!("uid=bob,{}", slapd::PEOPLE),
    );
    let mut settings = fixture::settings(&slapd.url());
    settings.placeholder_member = None;
    let connector = LdapConnector::new(settings).expect("connector");
    let refused = connector
        .revoke(access("lonely", "bob"))
        .await
        .expect_err("a groupOfNames cannot be empty");
    assert!(
        refused.to_string().contains("placeholder_member"),
        "{refused}"
    );
    assert!(
        connector
            .holds(access("lonely", "bob"))
            .await
            .expect("check")
    );
}

#[tokio::test]
async fn reconciliation_pages_through_a_group_larger_than_the_size_limit() {
    let slapd = Slapd::start(None);
    let people: Vec<String> = (0..1200).map(|i| format!("user{i:04}")).collect();
    let mut ldif = String::new();
    for uid in &people {
        ldif.push_str(&format!(
            "dn: uid={uid},{}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: test\n\n",
            slapd::PEOPLE
        ));
    }
    slapd.add(&ldif);
    let mut group_ldif = format!(
        "dn: cn=everyone,{}\nobjectClass: groupOfNames\ncn: everyone\nmember: {}\n",
        slapd::GROUPS,
        fixture::PLACEHOLDER
    );
    for uid in &people {
        group_ldif.push_str(&format!("member: uid={uid},{}\n", slapd::PEOPLE));
    }
    // A member that is not an account (a nested group, an entry elsewhere) is
    // reported by its DN, never dropped.
    group_ldif.push_str(&format!("member: cn=contractors,{}\n", slapd::GROUPS));
    slapd.add(&group_ldif);

    let connector = LdapConnector::new(fixture::settings(&slapd.url())).expect("connector");
    let mut members = connector.members("everyone").await.expect("members");
    members.sort();
    let mut expected = people.clone();
    expected.push(format!("cn=contractors,{}", slapd::GROUPS));
    expected.sort();
    assert_eq!(members.len(), 1201);
    assert_eq!(members, expected);
}

#[tokio::test]
async fn effective_access_follows_nested_groups() {
    let slapd = Slapd::start(None);
    group(
        &slapd,
        "readers",
        "groupOfNames",
        "member",
        fixture::PLACEHOLDER,
    );
    group(
        &slapd,
        "staff",
        "groupOfNames",
        "member",
        &format!("cn=readers,{}", slapd::GROUPS),
    );
    group(
        &slapd,
        "vpn",
        "groupOfNames",
        "member",
        &format!("cn=staff,{}", slapd::GROUPS),
    );
    group(
        &slapd,
        "unrelated",
        "groupOfNames",
        "member",
        fixture::PLACEHOLDER,
    );
    let connector = LdapConnector::new(fixture::settings(&slapd.url())).expect("connector");
    let access = connector
        .effective_access("readers")
        .await
        .expect("read")
        .expect("a directory tells");
    assert_eq!(access.roles.iter().collect::<Vec<_>>(), ["staff", "vpn"]);
    assert!(!access.superuser);
    // A loop in the nesting ends.
    slapd.modify(&format!(
        "dn: cn=readers,{}\nchangetype: modify\nadd: member\nmember: cn=vpn,{}\n",
        slapd::GROUPS,
        slapd::GROUPS
    ));
    let looped = connector
        .effective_access("staff")
        .await
        .expect("read")
        .expect("a directory tells");
    assert_eq!(looped.roles.iter().collect::<Vec<_>>(), ["readers", "vpn"]);
}
