//! A full reconciliation pass over many memberships (`Engine::reconcile`), against a raw
//! read of the same rows in the same run: listing the role's members from the target
//! and reading the entitlement's live grants from the database, nothing else.
//!
//! cargo bench -p writ-engine --bench reconcile
//! WRIT_BENCH_MEMBERSHIPS (default 1000000), median of WRIT_BENCH_RUNS (default 5) runs.
//! The target is the in-memory `noop` connector, so this measures writ, not a target;
//! the grants are written straight into SQLite (as `active` rows) because building a
//! million through the API would take most of an hour and measure something else.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{env_number, median};
use writ_config::Config;
use writ_connectors::{Access, Connector, Connectors, NoopConnector};
use writ_engine::Engine;
use writ_engine::SystemClock;
use writ_policy::PolicyEngine;
use writ_store::Store;

const CONFIG: &str = r#"
[[target]]
name = "t"
kind = "noop"

[[entitlement]]
id = "t/read"
target = "t"
role = "read"
sensitivity = "low"
max_duration = "8h"

[[user]]
name = "alice"
"#;

#[tokio::main]
async fn main() {
    let memberships = env_number("WRIT_BENCH_MEMBERSHIPS", 1_000_000);
    let runs = env_number("WRIT_BENCH_RUNS", 5);
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_permissive_policies(dir.path());
    let config = Config::from_toml(&dir.path().join("writ.toml"), CONFIG).expect("config");
    let policy = PolicyEngine::load(&dir.path().join("policies"), &config).expect("policy");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let store = Store::open(&url).await.expect("store");

    // Seed: every account holds the role on the target and has an active grant.
    let target = Arc::new(NoopConnector::default());
    for i in 0..memberships {
        let account = format!("acct{i:07}");
        target
            .grant(Access {
                role: "read",
                account: &account,
            })
            .await
            .expect("seed target");
    }
    let raw = sqlx::SqlitePool::connect(&url).await.expect("raw pool");
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $1) \
         INSERT INTO grants (id, request_id, subject, entitlement, account, state, expires_at_us, doc) \
         SELECT printf('00000000-0000-7000-8000-%012d', i), printf('00000000-0000-7000-9000-%012d', i), \
                'alice', 't/read', printf('acct%07d', i), 'active', 4000000000000000, '{}' FROM n",
    )
    .bind(i64::try_from(memberships).expect("count"))
    .execute(&raw)
    .await
    .expect("seed grants");

    let mut connectors = Connectors::default();
    connectors.insert("t", target.clone());
    let engine = Engine::new(
        Arc::new(config),
        Arc::new(policy),
        store.clone(),
        connectors,
        Arc::new(SystemClock),
    );

    let mut raw_seconds = Vec::new();
    let mut pass_seconds = Vec::new();
    for _ in 0..runs {
        // The raw read: the same two listings a pass starts from, and nothing else.
        let started = Instant::now();
        let members = target.members("read").await.expect("members");
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT id, account, state FROM grants WHERE entitlement = $1 AND state IN ('pending', 'active', 'revoking', 'failed')",
        )
        .bind("t/read")
        .fetch_all(&raw)
        .await
        .expect("grants");
        raw_seconds.push(started.elapsed().as_secs_f64());
        assert_eq!((members.len(), rows.len()), (memberships, memberships));

        let started = Instant::now();
        let report = engine.reconcile("t").await.expect("pass");
        pass_seconds.push(started.elapsed().as_secs_f64());
        assert_eq!(report.memberships, memberships);
        assert_eq!((report.opened, report.unresolved), (0, 0), "{report:?}");
    }
    let (raw, pass) = (median(raw_seconds), median(pass_seconds));
    println!(
        "reconciliation, {memberships} memberships (all explained by active grants), median of {runs} runs"
    );
    println!("| measure | seconds | memberships/s |");
    println!("|---|---:|---:|");
    let rate = |s: f64| memberships as f64 / s;
    println!(
        "| raw read: target members + live grant rows (sqlx SQLite) | {raw:.2} | {:.0} |",
        rate(raw)
    );
    println!(
        "| writ reconcile (full pass: read, compare, confirm) | {pass:.2} | {:.0} |",
        rate(pass)
    );
    println!("ratio: {:.2}x the raw read", pass / raw);
}
