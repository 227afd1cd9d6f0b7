//! The web UI's pages at scale: server time of each page (the whole router in
//! process: session, engine reads, rendering) on a SQLite database holding 100,000
//! grants and their requests and a ledger of 1,000,000 events, beside the API call
//! that answers the same question, measured in the same run.
//!
//! cargo bench -p writ --bench ui_pages
//! WRIT_BENCH_GRANTS (default 100000), WRIT_BENCH_EVENTS (default 1000000),
//! WRIT_BENCH_RUNS (default 21) requests per page, median reported.

mod common;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request as HttpRequest, StatusCode};
use common::{env_number, median};
use tower::ServiceExt;
use writ_config::Config;
use writ_connectors::{Connectors, NoopConnector};
use writ_domain::{Grant, IdentityKind, Request};
use writ_engine::keys::TokenKey;
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

[[entitlement]]
id = "t/admin"
target = "t"
role = "admin"
sensitivity = "high"
max_duration = "8h"

[[user]]
name = "alice"
manager = "dave"

[[user]]
name = "dave"
groups = ["auditors"]

[[user]]
name = "erin"
groups = ["admins"]

[[break_glass]]
name = "outage"
entitlements = ["t/admin"]
max_duration = "1h"

[access]
auditors = ["auditors"]
"#;

const POLICY: &str = r#"
permit (principal, action == Action::"request", resource) when { resource.sensitivity == "low" };
@approvals("1")
permit (principal, action == Action::"request", resource) when { resource.sensitivity == "high" };
permit (principal, action == Action::"approve", resource)
when { resource.subject has manager && principal == resource.subject.manager };
permit (principal == User::"alice", action == Action::"break_glass", resource);
"#;

fn caller(name: &str) -> Caller {
    Caller::new(name.parse().expect("name"), IdentityKind::User)
}

/// `grants` copies of a request and grant made through the engine (a tenth active,
/// the rest revoked and verified), each with `events / grants` ledger rows about it
/// (the grant's record, as `grant.*` events carry it), and 100 requests waiting for
/// dave's approval.
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
    for i in 0..100 {
        engine
            .create_request(
                &caller("alice"),
                NewRequest {
                    entitlement: "t/admin".into(),
                    justification: format!("change {i}"),
                    ..NewRequest::default()
                },
            )
            .await
            .expect("pending request");
    }
    let raw = sqlx::SqlitePool::connect(url).await.expect("raw pool");
    let mut tx = raw.begin().await.expect("begin");
    let now = writ_domain::Clock::now(&SystemClock);
    let (mut seq,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM events")
        .fetch_one(&mut *tx)
        .await
        .expect("last");
    let per_grant = (events / grants).max(1);
    for i in 1..grants {
        // Ids that sort as made over the last 30 days, oldest first.
        let made_at = now.plus_seconds(-30 * 86_400 + i64::try_from(i).unwrap_or(0) * 20);
        let id = writ_domain::GrantId::generate_at(made_at);
        let request_id = writ_domain::RequestId::generate_at(made_at);
        let mut request: Request = made.clone();
        request.id = request_id;
        request.grant_id = Some(id);
        request.created_at = made_at;
        let mut copy: Grant = grant.clone();
        copy.id = id;
        copy.request_id = request_id;
        if i % 10 != 0 {
            copy.state = writ_domain::lifecycle::GrantState::Revoked;
            copy.expires_at = made_at.plus_seconds(3600);
            copy.revoked_at = Some(copy.expires_at);
            copy.verified_at = Some(
                copy.expires_at
                    .plus_seconds(i64::try_from(i % 7).unwrap_or(0)),
            );
        }
        sqlx::query("INSERT INTO requests (id, state, requester, subject, entitlement, created_at_us, doc) VALUES ($1, 'approved', 'alice', 'alice', 't/read', $2, $3)")
            .bind(request_id.to_string())
            .bind(made_at.unix_micros())
            .bind(serde_json::to_string(&request).expect("json"))
            .execute(&mut *tx)
            .await
            .expect("request row");
        sqlx::query("INSERT INTO grants (id, request_id, subject, entitlement, account, state, expires_at_us, doc) VALUES ($1, $2, 'alice', 't/read', 'alice', $3, $4, $5)")
            .bind(id.to_string())
            .bind(request_id.to_string())
            .bind(copy.state.as_str())
            .bind(copy.expires_at.unix_micros())
            .bind(serde_json::to_string(&copy).expect("json"))
            .execute(&mut *tx)
            .await
            .expect("grant row");
        let data = format!(
            "{{\"grant\":{}}}",
            serde_json::to_string(&copy).expect("json")
        );
        for _ in 0..per_grant {
            seq += 1;
            sqlx::query("INSERT INTO events (seq, at_us, actor, kind, data, prev_hash, hash, record) VALUES ($1, $2, 'writ:scheduler', 'grant.revoked', $3, $4, $4, $5)")
                .bind(seq)
                .bind(made_at.unix_micros())
                .bind(&data)
                .bind("0".repeat(64))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .expect("event row");
        }
    }
    sqlx::query("UPDATE ledger_head SET seq = $1")
        .bind(seq)
        .execute(&mut *tx)
        .await
        .expect("head");
    tx.commit().await.expect("commit");
    raw.close().await;
}

/// Server time of `GET path` through the whole router, `runs` times: the median, in ms.
async fn serve_ms(router: &axum::Router, path: &str, header: (&str, &str), runs: usize) -> f64 {
    let mut times = Vec::new();
    for _ in 0..runs {
        let request = HttpRequest::get(path)
            .header(header.0, header.1)
            .body(Body::empty())
            .expect("request");
        let started = Instant::now();
        let response = router.clone().oneshot(request).await.expect("answer");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(
            status,
            StatusCode::OK,
            "{path}: {}",
            String::from_utf8_lossy(&body)
        );
        std::hint::black_box(body.len());
    }
    median(times)
}

#[tokio::main]
async fn main() {
    let grants = usize::try_from(env_number("WRIT_BENCH_GRANTS", 100_000)).unwrap_or(100_000);
    let events = usize::try_from(env_number("WRIT_BENCH_EVENTS", 1_000_000)).unwrap_or(1_000_000);
    let runs = usize::try_from(env_number("WRIT_BENCH_RUNS", 21)).unwrap_or(21);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("policies")).expect("policies");
    std::fs::write(dir.path().join("policies/p.cedar"), POLICY).expect("policy");
    let config =
        Arc::new(Config::from_toml(&dir.path().join("writ.toml"), CONFIG).expect("config"));
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let store = Store::open(&url).await.expect("store");
    let mut connectors = Connectors::default();
    connectors.insert("t", Arc::new(NoopConnector::default()));
    let engine = Arc::new(
        Engine::new(
            config.clone(),
            Arc::new(PolicyEngine::load(&dir.path().join("policies"), &config).expect("policy")),
            store.clone(),
            connectors,
            Arc::new(SystemClock),
        )
        .with_token_key(TokenKey::ephemeral().expect("key")),
    );
    let started = Instant::now();
    seed(&url, &engine, grants, events).await;
    // A review of every active grant, all assigned to dave (alice's manager), and a
    // break-glass activation of alice's waiting for his sign-off.
    let campaign = engine
        .start_campaign(
            &caller("erin"),
            writ_engine::reviews::NewCampaign {
                name: "every active lease".into(),
                scope: writ_domain::CampaignScope {
                    grants: true,
                    ..Default::default()
                },
                assignment: writ_domain::Assignment::Manager,
                default_decision: writ_domain::ReviewDecision::Revoke,
                due_in_seconds: 14 * 86_400,
                remind_every_seconds: None,
            },
        )
        .await
        .expect("campaign");
    engine
        .break_glass(
            &caller("alice"),
            "outage",
            writ_engine::BreakGlass {
                justification: "the database is down".into(),
                duration_seconds: None,
                on_behalf_of: None,
            },
        )
        .await
        .expect("break-glass");
    eprintln!(
        "seeded in {:.0} s ({} review items)",
        started.elapsed().as_secs_f64(),
        campaign.campaign.items
    );
    let state = common::app_state(engine.clone());
    let router = writ_api::router(state);
    let mut cookies = Vec::new();
    let mut bearers = Vec::new();
    for who in ["alice", "dave"] {
        let token = engine.issue_token(who, 3600).await.expect("token");
        let session = engine.sign_in_with_token(&token).await.expect("session");
        cookies.push(format!("writ-session={}", session.secret));
        bearers.push(format!("Bearer {token}"));
    }
    // A seeded grant, with its events.
    let grant: Grant = engine
        .grants(writ_store::GrantFilter {
            state: Some(writ_domain::lifecycle::GrantState::Revoked),
            limit: Some(1),
            ..Default::default()
        })
        .await
        .expect("grants")
        .items
        .pop()
        .expect("a revoked grant");
    let (request, grant) = (grant.request_id, grant.id);
    let (alice, dave) = (0, 1);
    let pages: Vec<(&str, String, String, usize)> = vec![
        (
            "my access",
            "/ui".into(),
            "/v1/grants?subject=alice&state=active&limit=50".into(),
            alice,
        ),
        (
            "request access (entitlements with policy's answer)",
            "/ui/request".into(),
            "/v1/entitlements".into(),
            alice,
        ),
        (
            "approvals inbox (100 waiting)",
            "/ui/approvals".into(),
            "/v1/requests?state=pending_approval&approvable_by_me=true&limit=1000".into(),
            dave,
        ),
        (
            "a request",
            format!("/ui/requests/{request}"),
            format!("/v1/requests/{request}"),
            alice,
        ),
        (
            "a grant's timeline",
            format!("/ui/grants/{grant}"),
            format!("/v1/grants/{grant}"),
            alice,
        ),
        (
            "a grant's history (JSON)",
            format!("/ui/grants/{grant}/history.json"),
            format!("/v1/grants/{grant}"),
            alice,
        ),
        (
            "findings",
            "/ui/findings".into(),
            "/v1/findings?limit=200".into(),
            dave,
        ),
        (
            "revocations",
            "/ui/revocations".into(),
            "/v1/reports/failed-revocations".into(),
            dave,
        ),
        (
            "ledger",
            "/ui/ledger".into(),
            "/v1/audit?limit=100".into(),
            dave,
        ),
        (
            "reviews (every active lease waiting for one reviewer)",
            "/ui/reviews".into(),
            "/v1/review-items?reviewable_by_me=true&limit=50".into(),
            dave,
        ),
        (
            "break-glass",
            "/ui/break-glass".into(),
            "/v1/break-glass/activations?reviewable_by_me=true".into(),
            dave,
        ),
        (
            "insights (30 days)",
            "/ui/insights".into(),
            "/v1/reports/requests-by-outcome?days=30".into(),
            dave,
        ),
    ];
    println!("| page | UI | API, same run | UI / API |");
    println!("|---|---:|---:|---:|");
    for (name, page, api, who) in pages {
        let ui = serve_ms(&router, &page, ("cookie", &cookies[who]), runs).await;
        let answer = serve_ms(&router, &api, ("authorization", &bearers[who]), runs).await;
        println!(
            "| {name} | {ui:.1} ms | {answer:.1} ms | {:.2}× |",
            ui / answer
        );
    }
    store.close().await;
}
