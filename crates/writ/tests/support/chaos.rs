//! What the crash tests share: a seeded random source (the seed printed, replayable
//! from an environment variable), the target's memberships as PostgreSQL holds them,
//! and lifecycle events counted per record from the ledger.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{PG_URL, TestRoles, Writ};

/// xorshift64*: small, seedable, good enough to pick users, roles and moments.
pub struct Rng(pub u64);

impl Rng {
    /// Seeded from `env_var` if set (a replay), else from the clock; the seed is
    /// printed with how to replay it.
    pub fn from_env(env_var: &str, what: &str) -> (Self, u64) {
        let seed = std::env::var(env_var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64 | 1)
                    .unwrap_or(1)
            });
        println!("{what} seed: {seed} (replay with {env_var}={seed})");
        (Self(seed), seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A PostgreSQL target `pg` (reconciliation `reconcile`: e.g. "off"), entitlement
/// `pg/r{i}` per role, user `u{i}` per account (all engineers), retries at most a
/// second apart: what the crash tests load.
pub fn pg_target_config(roles: &[String], accounts: &[String], reconcile: &str) -> String {
    let mut config = format!(
        "[revocation]\nretry_backoff_max = \"1s\"\n\n[[target]]\nname = \"pg\"\nkind = \"postgres\"\nurl = \"{PG_URL}\"\nreconcile_every = \"{reconcile}\"\n"
    );
    for (i, role) in roles.iter().enumerate() {
        config.push_str(&format!(
            "\n[[entitlement]]\nid = \"pg/r{i}\"\ntarget = \"pg\"\nrole = \"{role}\"\nsensitivity = \"low\"\nmax_duration = \"1h\"\n"
        ));
    }
    for (i, account) in accounts.iter().enumerate() {
        config.push_str(&format!(
            "\n[[user]]\nname = \"u{i}\"\ngroups = [\"engineers\"]\naccounts = {{ pg = \"{account}\" }}\n"
        ));
    }
    config
}

/// Every engineer may request anything, granted at once.
pub const ENGINEERS_MAY_REQUEST: &str =
    r#"permit (principal in Group::"engineers", action == Action::"request", resource);"#;

/// PostgreSQL roles `r{i}` and accounts `u{i}` of a test's own (`pg_target_config`'s).
pub async fn roles_and_accounts(
    roles: usize,
    accounts: usize,
) -> (TestRoles, Vec<String>, Vec<String>) {
    let mut test_roles = TestRoles::new().await;
    let mut role_names = Vec::new();
    for i in 0..roles {
        role_names.push(test_roles.create(&format!("r{i}")).await);
    }
    let mut account_names = Vec::new();
    for i in 0..accounts {
        account_names.push(test_roles.create(&format!("u{i}")).await);
    }
    (test_roles, role_names, account_names)
}

/// (role, account) pairs PostgreSQL holds among these.
pub async fn held(roles: &[String], accounts: &[String]) -> BTreeSet<(String, String)> {
    let admin = sqlx::PgPool::connect(PG_URL).await.expect("PostgreSQL");
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT r.rolname::text, a.rolname::text FROM pg_auth_members m \
         JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles a ON a.oid = m.member \
         WHERE r.rolname = ANY($1) AND a.rolname = ANY($2)",
    )
    .bind(roles)
    .bind(accounts)
    .fetch_all(&admin)
    .await
    .expect("pg_auth_members");
    admin.close().await;
    rows.into_iter().collect()
}

pub fn parse_time(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// Every event of the ledger, read through the API by an admin.
pub async fn all_events(writ: &Writ, admin: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = writ
            .get(&format!("/v1/audit?after={after}&limit=1000"), admin)
            .await;
        assert_eq!(status, 200, "{page}");
        let events = page["events"].as_array().cloned().unwrap_or_default();
        let Some(last) = events.last() else { break };
        after = last["seq"].as_i64().unwrap_or(i64::MAX);
        all.extend(events);
    }
    all
}

/// How many events of each kind name each grant (`data.grant.id`).
pub fn grant_event_counts(events: &[Value]) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for event in events {
        if let Some(id) = event["data"]["grant"]["id"].as_str() {
            let kind = event["kind"].as_str().unwrap_or_default().to_string();
            *counts.entry((id.to_string(), kind)).or_default() += 1;
        }
    }
    counts
}
