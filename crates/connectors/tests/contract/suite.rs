//! The contract: what every connector must do, whatever the target.

use std::time::Duration;

use async_trait::async_trait;
use writ_connectors::{Access, Connector, ConnectorError};

pub use crate::proxy::Reach;

/// How long the suite waits for one call, as the engine's `call_timeout` does:
/// past it the outcome is unknown.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// A target with a connector to test, and an administrator's own way in.
#[async_trait]
pub trait Target: Send + Sync {
    fn kind(&self) -> &'static str;
    fn connector(&self) -> &dyn Connector;
    /// Creates a role (group) as the target's administrator would; `false` when the
    /// target cannot hold such a name at all.
    async fn create_role(&self, name: &str) -> bool;
    /// Creates an account; `false` when the target cannot hold such a name.
    async fn create_account(&self, name: &str) -> bool;
    /// Gives `account` the role behind writ's back.
    async fn grant_out_of_band(&self, role: &str, account: &str);
    /// Takes the target down, makes it stop answering, or brings it back.
    async fn set_reach(&self, reach: Reach);
}

/// Names unique to one run, so runs and targets never see each other's.
struct Names(String);

impl Names {
    fn new() -> Self {
        let id = uuid::Uuid::now_v7().simple().to_string();
        Self(id[24..].to_string())
    }

    fn of(&self, what: &str) -> String {
        format!("{what}_{}", self.0)
    }
}

fn access<'a>(role: &'a str, account: &'a str) -> Access<'a> {
    Access { role, account }
}

async fn within<T>(
    call: impl std::future::Future<Output = Result<T, ConnectorError>>,
) -> Result<T, ConnectorError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result,
        Err(_) => Err(ConnectorError::Unknown("timed out".into())),
    }
}

async fn holds(target: &dyn Target, role: &str, account: &str) -> bool {
    within(target.connector().holds(access(role, account)))
        .await
        .unwrap_or_else(|e| panic!("{}: holds({role}, {account}): {e}", target.kind()))
}

async fn members(target: &dyn Target, role: &str) -> Vec<String> {
    let mut members = within(target.connector().members(role))
        .await
        .unwrap_or_else(|e| panic!("{}: members({role}): {e}", target.kind()));
    members.sort();
    members
}

async fn grant(target: &dyn Target, role: &str, account: &str) {
    within(target.connector().grant(access(role, account)))
        .await
        .unwrap_or_else(|e| panic!("{}: grant({role}, {account}): {e}", target.kind()));
}

async fn revoke(target: &dyn Target, role: &str, account: &str) {
    within(target.connector().revoke(access(role, account)))
        .await
        .unwrap_or_else(|e| panic!("{}: revoke({role}, {account}): {e}", target.kind()));
}

async fn role_and_account(target: &dyn Target, role: &str, account: &str) {
    assert!(
        target.create_role(role).await,
        "{}: create role {role}",
        target.kind()
    );
    assert!(
        target.create_account(account).await,
        "{}: create account {account}",
        target.kind()
    );
}

/// Runs every part of the contract against `target`.
pub async fn run(target: &dyn Target) {
    let names = Names::new();
    idempotent(target, &names).await;
    exact_read_back(target, &names).await;
    hostile_identifiers(target, &names).await;
    finds_out_of_band_members(target, &names).await;
    a_timed_out_call_is_unknown_and_rechecked(target, &names).await;
    down_then_back(target, &names).await;
}

/// Granting what is held and revoking what is not both succeed.
async fn idempotent(target: &dyn Target, names: &Names) {
    let (role, account) = (names.of("idem_role"), names.of("idem_acct"));
    role_and_account(target, &role, &account).await;
    assert!(!holds(target, &role, &account).await);
    revoke(target, &role, &account).await;
    grant(target, &role, &account).await;
    grant(target, &role, &account).await;
    assert!(
        holds(target, &role, &account).await,
        "{}: held after grant",
        target.kind()
    );
    assert_eq!(members(target, &role).await, std::slice::from_ref(&account));
    revoke(target, &role, &account).await;
    revoke(target, &role, &account).await;
    assert!(
        !holds(target, &role, &account).await,
        "{}: gone after revoke",
        target.kind()
    );
    assert!(members(target, &role).await.is_empty());
}

/// Another account's or another role's membership never counts, nor does a name that
/// is a pattern on the target.
async fn exact_read_back(target: &dyn Target, names: &Names) {
    let (role, role_longer) = (names.of("exact_role"), names.of("exact_role") + "2");
    let (account, account_longer) = (names.of("exact_acct"), names.of("exact_acct") + "2");
    role_and_account(target, &role, &account).await;
    role_and_account(target, &role_longer, &account_longer).await;
    grant(target, &role, &account).await;
    grant(target, &role_longer, &account_longer).await;
    let kind = target.kind();
    assert!(holds(target, &role, &account).await, "{kind}");
    assert!(
        !holds(target, &role_longer, &account).await,
        "{kind}: another role"
    );
    assert!(
        !holds(target, &role, &account_longer).await,
        "{kind}: another account"
    );
    for pattern in ["*", "%", "_", ".*", &format!("{}*", names.of("exact"))] {
        assert!(
            !holds(target, &role, pattern).await,
            "{kind}: the account {pattern:?} is a name, not a pattern"
        );
    }
    assert_eq!(
        members(target, &role).await,
        std::slice::from_ref(&account),
        "{kind}"
    );
    revoke(target, &role, &account).await;
    assert!(
        holds(target, &role_longer, &account_longer).await,
        "{kind}: revoking one membership left the other"
    );
    revoke(target, &role_longer, &account_longer).await;
}

/// Names an attacker might choose are refused, or are just names: whatever they
/// hold, a bystander's access is untouched and nothing else is granted.
async fn hostile_identifiers(target: &dyn Target, names: &Names) {
    let kind = target.kind();
    let (bystander_role, bystander) = (names.of("by_role"), names.of("by_acct"));
    role_and_account(target, &bystander_role, &bystander).await;
    grant(target, &bystander_role, &bystander).await;
    let hostile = [
        format!("x\"; DROP ROLE {bystander_role}; --"),
        "a' OR '1'='1".to_string(),
        "a`b".to_string(),
        "a)(uid=*".to_string(),
        "a,ou=evil".to_string(),
        "a\\b".to_string(),
        "a b".to_string(),
        "#a+b<c>;d=\"e\"".to_string(),
        "a\0b".to_string(),
    ];
    for (i, name) in hostile.iter().enumerate() {
        let role = format!("{name}{i}r{}", names.0);
        let account = format!("{name}{i}a{}", names.0);
        let created = target.create_role(&role).await && target.create_account(&account).await;
        let granted = within(target.connector().grant(access(&role, &account))).await;
        if created {
            granted.unwrap_or_else(|e| panic!("{kind}: grant to hostile name {name:?}: {e}"));
            assert!(holds(target, &role, &account).await, "{kind}: {name:?}");
            assert_eq!(
                members(target, &role).await,
                std::slice::from_ref(&account),
                "{kind}: {name:?}"
            );
            revoke(target, &role, &account).await;
            assert!(!holds(target, &role, &account).await, "{kind}: {name:?}");
        } else {
            assert!(
                matches!(granted, Err(ConnectorError::Failed(_))),
                "{kind}: a name the target cannot hold ({name:?}) must be refused: {granted:?}"
            );
        }
        assert!(
            !holds(target, &bystander_role, &account).await,
            "{kind}: {name:?} got the bystander's role"
        );
    }
    assert_eq!(
        members(target, &bystander_role).await,
        std::slice::from_ref(&bystander),
        "{kind}: the bystander's membership changed"
    );
    revoke(target, &bystander_role, &bystander).await;
}

/// Reconciliation sees access given behind writ's back.
async fn finds_out_of_band_members(target: &dyn Target, names: &Names) {
    let (role, account, sneaky) = (
        names.of("oob_role"),
        names.of("oob_acct"),
        names.of("oob_sneak"),
    );
    role_and_account(target, &role, &account).await;
    assert!(target.create_account(&sneaky).await);
    grant(target, &role, &account).await;
    target.grant_out_of_band(&role, &sneaky).await;
    assert_eq!(
        members(target, &role).await,
        [account.clone(), sneaky.clone()],
        "{}",
        target.kind()
    );
    assert!(holds(target, &role, &sneaky).await);
    revoke(target, &role, &sneaky).await;
    revoke(target, &role, &account).await;
    assert!(members(target, &role).await.is_empty());
}

/// A call that does not come back in time may or may not have happened: it is
/// never reported done, and once the target answers the read-back tells, and a
/// repeated call converges.
async fn a_timed_out_call_is_unknown_and_rechecked(target: &dyn Target, names: &Names) {
    let kind = target.kind();
    let (role, account) = (names.of("slow_role"), names.of("slow_acct"));
    role_and_account(target, &role, &account).await;
    for granting in [true, false] {
        target.set_reach(Reach::Stalled).await;
        let call = if granting {
            within(target.connector().grant(access(&role, &account))).await
        } else {
            within(target.connector().revoke(access(&role, &account))).await
        };
        target.set_reach(Reach::Up).await;
        match call {
            Ok(()) => panic!("{kind}: a call to a target that never answered reported success"),
            Err(ConnectorError::Unknown(_)) => {}
            // Refused outright: then it must truly not have happened.
            Err(ConnectorError::Failed(_)) => {
                assert_eq!(holds(target, &role, &account).await, !granting, "{kind}");
            }
        }
        if granting {
            grant(target, &role, &account).await;
        } else {
            revoke(target, &role, &account).await;
        }
        assert_eq!(holds(target, &role, &account).await, granting, "{kind}");
    }
}

/// A target that is down fails the call (never hangs past the timeout); when it is
/// back, the same connector works again.
async fn down_then_back(target: &dyn Target, names: &Names) {
    let kind = target.kind();
    let (role, account) = (names.of("down_role"), names.of("down_acct"));
    role_and_account(target, &role, &account).await;
    target.set_reach(Reach::Down).await;
    let call = within(target.connector().grant(access(&role, &account))).await;
    target.set_reach(Reach::Up).await;
    assert!(
        call.is_err(),
        "{kind}: a grant on a target that is down succeeded"
    );
    grant(target, &role, &account).await;
    assert!(
        holds(target, &role, &account).await,
        "{kind}: works again once back"
    );
    revoke(target, &role, &account).await;
    assert!(!holds(target, &role, &account).await, "{kind}");
}
