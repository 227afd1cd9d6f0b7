//! Reports at scale: a SQLite database holding what a ledger of about 1M events leaves
//! in the state tables (200,000 requests and their grants: 20,000 active, the rest
//! revoked and verified) and the 1M events themselves; each report made by the engine,
//! beside the raw read of the rows it needs (the same SQL through sqlx, no decoding),
//! in the same run.
//!
//! cargo bench -p writ-engine --bench reports
//! WRIT_BENCH_GRANTS (default 200000), WRIT_BENCH_EVENTS (default 1000000),
//! WRIT_BENCH_RUNS (default 3) runs per measure, median reported.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{env_number, median, write_permissive_policies};
use writ_config::Config;
use writ_connectors::{Connectors, NoopConnector};
use writ_domain::{Grant, IdentityKind, Request};
use writ_engine::reports::ReportName;
use writ_engine::{Caller, Engine, NewRequest, SystemClock};
use writ_policy::PolicyEngine;
use writ_store::Store;

const CONFIG: &str = r#"
[[target]]
name = "t"
kind = "noop"
reconcile_every = "off"

[[entitlement]]
id = "t/read"
target = "t"
role = "read"
sensitivity = "low"
max_duration = "8h"

[[user]]
name = "alice"

[[user]]
name = "dave"
groups = ["auditors"]

[access]
auditors = ["auditors"]
"#;

fn caller(name: &str) -> Caller {
    Caller::new(name.parse().expect("name"), IdentityKind::User)
}

/// `grants` requests with their grants (a tenth active, the rest revoked and verified),
/// copies of one made through the engine, and `events` rows in the ledger table.
async fn seed(url: &str, engine: &Engine, grants: usize, events: usize) {
    let made = engine
        .create_request(
            &caller("alice"),
            NewRequest {
                entitlement: "t/read".into(),
                justification: "quarter close".into(),
                ..NewRequest::default()
            },
        )
        .await
        .expect("request");
    let grant = engine
        .grant(made.grant_id.expect("granted"))
        .await
        .expect("grant");
    let raw = sqlx::SqlitePool::connect(url).await.expect("raw pool");
    let mut tx = raw.begin().await.expect("begin");
    let now = writ_domain::Clock::now(&SystemClock);
    for i in 1..grants {
        let request_id = format!("00000000-0000-7000-9000-{i:012}");
        let id = format!("00000000-0000-7000-8000-{i:012}");
        let mut request: Request = made.clone();
        request.id = request_id.parse().expect("id");
        request.grant_id = Some(id.parse().expect("id"));
        let mut copy: Grant = grant.clone();
        copy.id = id.parse().expect("id");
        copy.request_id = request.id;
        let active = i % 10 == 0;
        if !active {
            copy.state = writ_domain::lifecycle::GrantState::Revoked;
            copy.expires_at = now.plus_seconds(-3600 - i64::try_from(i % 1000).unwrap_or(0));
            copy.revoked_at = Some(copy.expires_at);
            copy.verified_at = Some(
                copy.expires_at
                    .plus_seconds(i64::try_from(i % 7).unwrap_or(0)),
            );
        }
        sqlx::query("INSERT INTO requests (id, state, requester, subject, entitlement, created_at_us, doc) VALUES ($1, 'approved', 'alice', 'alice', 't/read', $2, $3)")
            .bind(&request_id)
            .bind(request.created_at.unix_micros())
            .bind(serde_json::to_string(&request).expect("json"))
            .execute(&mut *tx)
            .await
            .expect("request row");
        sqlx::query("INSERT INTO grants (id, request_id, subject, entitlement, account, state, expires_at_us, doc) VALUES ($1, $2, 'alice', 't/read', 'alice', $3, $4, $5)")
            .bind(&id)
            .bind(&request_id)
            .bind(copy.state.as_str())
            .bind(copy.expires_at.unix_micros())
            .bind(serde_json::to_string(&copy).expect("json"))
            .execute(&mut *tx)
            .await
            .expect("grant row");
    }
    // The ledger's size: rows of a typical event's size (reports do not read them).
    let (last,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM events")
        .fetch_one(&mut *tx)
        .await
        .expect("last");
    let data = format!(
        "{{\"grant\":{}}}",
        serde_json::to_string(&grant).expect("json")
    );
    for seq in last + 1..=i64::try_from(events).unwrap_or(0) {
        sqlx::query("INSERT INTO events (seq, at_us, actor, kind, data, prev_hash, hash) VALUES ($1, $2, 'writ:scheduler', 'grant.revoked', $3, $4, $4)")
            .bind(seq)
            .bind(now.unix_micros())
            .bind(&data)
            .bind("0".repeat(64))
            .execute(&mut *tx)
            .await
            .expect("event row");
    }
    tx.commit().await.expect("commit");
    raw.close().await;
}

/// The rows a report reads, read raw: the SQL alone, rows fetched and not decoded.
async fn raw_read(url: &str, name: ReportName) -> f64 {
    let sql = match name {
        ReportName::StandingAccess | ReportName::AgentAccess | ReportName::PermanentAccess => {
            "SELECT id, doc FROM grants WHERE state = 'active'"
        }
        ReportName::TimeToRevoke => "SELECT id, doc FROM grants WHERE state = 'revoked'",
        ReportName::RequestsByOutcome => {
            "SELECT entitlement, state, COUNT(*) FROM requests GROUP BY entitlement, state"
        }
        ReportName::Exceptions => "SELECT id, doc FROM findings WHERE state = 'accepted'",
        ReportName::FailedRevocations => {
            "SELECT g.id, g.doc FROM grants g JOIN jobs j ON j.object_id = g.id WHERE g.state IN ('revoking', 'failed') AND j.attempts > 0"
        }
        ReportName::BreakGlass => "SELECT id, doc FROM break_glass_activations",
        ReportName::Orphans => "SELECT identity FROM orphans",
        // Its largest read: the period's events counted by kind (all of them here).
        ReportName::Controls => {
            "SELECT kind, COUNT(*), MIN(seq), MAX(seq) FROM events GROUP BY kind"
        }
    };
    let raw = sqlx::SqlitePool::connect(url).await.expect("raw pool");
    let started = Instant::now();
    let rows = sqlx::query(sql).fetch_all(&raw).await.expect("raw read");
    let seconds = started.elapsed().as_secs_f64();
    std::hint::black_box(rows.len());
    raw.close().await;
    seconds
}

#[tokio::main]
async fn main() {
    let grants = env_number("WRIT_BENCH_GRANTS", 200_000);
    let events = env_number("WRIT_BENCH_EVENTS", 1_000_000);
    let runs = env_number("WRIT_BENCH_RUNS", 3);
    let dir = tempfile::tempdir().expect("tempdir");
    write_permissive_policies(dir.path());
    let config =
        Arc::new(Config::from_toml(&dir.path().join("writ.toml"), CONFIG).expect("config"));
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let store = Store::open(&url).await.expect("store");
    let mut connectors = Connectors::default();
    connectors.insert("t", Arc::new(NoopConnector::default()));
    let engine = Engine::new(
        config.clone(),
        Arc::new(PolicyEngine::load(&dir.path().join("policies"), &config).expect("policy")),
        store.clone(),
        connectors,
        Arc::new(SystemClock),
    );
    seed(&url, &engine, grants, events).await;
    let auditor = caller("dave");
    println!("| report | rows | writ | raw read, same run | ratio |");
    println!("|---|---:|---:|---:|---:|");
    for name in ReportName::ALL {
        let mut writ_seconds = Vec::new();
        let mut raw_seconds = Vec::new();
        let mut rows = 0;
        for _ in 0..runs {
            raw_seconds.push(raw_read(&url, name).await);
            let started = Instant::now();
            let report = engine
                .report(&auditor, name, Some(3650))
                .await
                .expect("report");
            writ_seconds.push(started.elapsed().as_secs_f64());
            rows = report.rows.len();
        }
        let (writ, raw) = (median(writ_seconds), median(raw_seconds));
        println!(
            "| {} | {rows} | {:.0} ms | {:.0} ms | {:.2}x |",
            name.as_str(),
            writ * 1000.0,
            raw * 1000.0,
            raw / writ
        );
    }
    store.close().await;
}
