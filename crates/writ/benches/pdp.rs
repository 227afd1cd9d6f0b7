//! writ as an AuthZEN policy decision point at scale: a SQLite database of 1,000,000
//! active leases (100,000 people, each holding all 10 PEP-enforced entitlements).
//! In process: the latency of one evaluation (`Engine::evaluate_access`) beside writ's
//! own decision path (a request decided by policy, not recorded) and beside the raw
//! limit — the same indexed lookup through rusqlite with a prepared statement. Over
//! HTTP: evaluations per second through the whole router (token authentication, JSON)
//! beside a minimal axum service answering each call with that raw lookup, in the same
//! process and run.
//!
//! cargo bench -p writ --bench pdp
//! WRIT_BENCH_SUBJECTS (default 100000), WRIT_BENCH_SAMPLES (default 50000),
//! WRIT_BENCH_SECONDS (default 10), WRIT_BENCH_CLIENTS (default 32).

mod common;

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::env_number;
use writ_config::Config;
use writ_connectors::Connectors;
use writ_domain::{Grant, IdentityKind};
use writ_engine::keys::TokenKey;
use writ_engine::pdp::{AccessQuestion, PdpAnswer};
use writ_engine::{Caller, Engine, NewRequest, SystemClock};
use writ_policy::PolicyEngine;
use writ_store::Store;

/// PEP-enforced entitlements, each held by every subject.
const ENTITLEMENTS: usize = 10;

const POLICY: &str = r#"
@id("engineers-ask")
permit (principal in Group::"engineers", action == Action::"request", resource);
"#;

fn config(subjects: usize) -> String {
    let mut text = String::from(
        "[authzen]\nclients = [\"gateway\"]\n\n[[target]]\nname = \"api\"\nkind = \"authzen\"\n",
    );
    for e in 0..ENTITLEMENTS {
        let _ = write!(
            text,
            "\n[[entitlement]]\nid = \"api/r{e}\"\ntarget = \"api\"\nrole = \"r{e}\"\nsensitivity = \"low\"\nmax_duration = \"8h\"\nauthzen = {{ resource_type = \"r{e}\", actions = [\"read\"] }}\n"
        );
    }
    text.push_str("\n[[service]]\nname = \"gateway\"\nowner = \"user0\"\n");
    for s in 0..subjects {
        let _ = write!(
            text,
            "\n[[user]]\nname = \"user{s}\"\ngroups = [\"engineers\"]\n"
        );
    }
    text
}

/// A deterministic spread of (subject, entitlement) pairs.
struct Picks(u64);

impl Picks {
    fn next(&mut self, subjects: usize) -> (usize, usize) {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let n = usize::try_from(self.0 >> 33).unwrap_or(0);
        (n % subjects, (n / subjects) % ENTITLEMENTS)
    }
}

fn caller(name: &str, kind: IdentityKind) -> Caller {
    Caller::new(name.parse().expect("name"), kind)
}

/// One lease made through the engine, then copied for every subject and entitlement.
async fn seed(url: &str, engine: &Engine, subjects: usize) {
    let made = engine
        .create_request(
            &caller("user0", IdentityKind::User),
            NewRequest {
                entitlement: "api/r0".into(),
                justification: "bench".into(),
                ..NewRequest::default()
            },
        )
        .await
        .expect("request");
    let template: Grant = engine
        .grant(made.grant_id.expect("granted"))
        .await
        .expect("grant");
    let raw = sqlx::SqlitePool::connect(url).await.expect("raw pool");
    let mut tx = raw.begin().await.expect("begin");
    let now = writ_domain::Clock::now(&SystemClock);
    for s in 0..subjects {
        for e in 0..ENTITLEMENTS {
            if s == 0 && e == 0 {
                continue;
            }
            let id = writ_domain::GrantId::generate_at(now);
            let mut grant = template.clone();
            grant.id = id;
            grant.subject = format!("user{s}").parse().expect("name");
            grant.entitlement = format!("api/r{e}").parse().expect("id");
            grant.account = grant.subject.to_string();
            grant.expires_at = now.plus_seconds(8 * 3600);
            sqlx::query("INSERT INTO grants (id, request_id, subject, entitlement, account, state, expires_at_us, doc) VALUES ($1, $2, $3, $4, $3, 'active', $5, $6)")
                .bind(id.to_string())
                .bind(grant.request_id.to_string())
                .bind(grant.subject.as_str())
                .bind(grant.entitlement.as_str())
                .bind(grant.expires_at.unix_micros())
                .bind(serde_json::to_string(&grant).expect("json"))
                .execute(&mut *tx)
                .await
                .expect("grant row");
        }
    }
    tx.commit().await.expect("commit");
    raw.close().await;
}

fn percentiles(mut micros: Vec<f64>) -> (f64, f64) {
    micros.sort_by(f64::total_cmp);
    let at = |p: f64| micros[((micros.len() as f64 * p) as usize).min(micros.len() - 1)];
    (at(0.5), at(0.99))
}

fn question(subject: usize, entitlement: usize) -> AccessQuestion {
    AccessQuestion {
        subject_type: "user".into(),
        subject_id: format!("user{subject}"),
        resource_type: format!("r{entitlement}"),
        resource_id: "any".into(),
        action: "read".into(),
    }
}

/// The raw limit of one answer: the lease lookup alone, through rusqlite.
struct RawLookup(rusqlite::Connection);

const RAW_SQL: &str = "SELECT id, doc FROM grants WHERE subject = ?1 AND state = 'active' AND entitlement IN (?2) AND expires_at_us > ?3 ORDER BY expires_at_us DESC LIMIT 1";

impl RawLookup {
    fn open(file: &std::path::Path) -> Self {
        Self(rusqlite::Connection::open(file).expect("sqlite"))
    }

    fn allows(&self, subject: usize, entitlement: usize, now_us: i64) -> bool {
        let mut statement = self.0.prepare_cached(RAW_SQL).expect("prepare");
        let found: Option<(String, String)> = statement
            .query_row(
                rusqlite::params![
                    format!("user{subject}"),
                    format!("api/r{entitlement}"),
                    now_us
                ],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .ok();
        found.is_some_and(|(_, doc)| !doc.is_empty())
    }
}

fn now_us() -> i64 {
    writ_domain::Clock::now(&SystemClock).unix_micros()
}

/// Evaluations per second from `clients` clients for `seconds`, each posting to `url`.
async fn rate(url: &str, token: &str, subjects: usize, clients: usize, seconds: u64) -> f64 {
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (done, url, token) = (done.clone(), url.to_string(), token.to_string());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut picks = Picks(c as u64 + 1);
            while Instant::now() < deadline {
                let (s, e) = picks.next(subjects);
                let body = serde_json::json!({
                    "subject": { "type": "user", "id": format!("user{s}") },
                    "resource": { "type": format!("r{e}"), "id": "any" },
                    "action": { "name": "read" },
                });
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .expect("evaluation");
                assert_eq!(response.status().as_u16(), 200);
                let decision: serde_json::Value = response.json().await.expect("json");
                assert_eq!(decision["decision"], true, "{decision}");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("client");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// A minimal service answering each evaluation with the raw lookup: the raw limit of an
/// HTTP PDP over this database.
async fn minimal_service(file: std::path::PathBuf) -> String {
    thread_local! {
        static LOOKUP: std::cell::RefCell<Option<RawLookup>> = const { std::cell::RefCell::new(None) };
    }
    let app = axum::Router::new().route(
        "/access/v1/evaluation",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let file = file.clone();
            async move {
                let subject = body["subject"]["id"].as_str().unwrap_or_default();
                let resource = body["resource"]["type"].as_str().unwrap_or_default();
                let s: usize = subject.trim_start_matches("user").parse().unwrap_or(0);
                let e: usize = resource.trim_start_matches('r').parse().unwrap_or(0);
                let allowed = LOOKUP.with(|cell| {
                    cell.borrow_mut()
                        .get_or_insert_with(|| RawLookup::open(&file))
                        .allows(s, e, now_us())
                });
                axum::Json(serde_json::json!({ "decision": allowed }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::main]
async fn main() {
    // reqwest is built without a default TLS provider; writ's crates install ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let subjects = usize::try_from(env_number("WRIT_BENCH_SUBJECTS", 100_000)).unwrap_or(100_000);
    let samples = usize::try_from(env_number("WRIT_BENCH_SAMPLES", 50_000)).unwrap_or(50_000);
    let seconds = env_number("WRIT_BENCH_SECONDS", 10);
    let clients = usize::try_from(env_number("WRIT_BENCH_CLIENTS", 32)).unwrap_or(32);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("policies")).expect("policies");
    std::fs::write(dir.path().join("policies/p.cedar"), POLICY).expect("policy");
    let config = Arc::new(
        Config::from_toml(&dir.path().join("writ.toml"), &config(subjects)).expect("config"),
    );
    let file = dir.path().join("bench.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let store = Store::open(&url).await.expect("store");
    let connectors = Connectors::from_config(&config).expect("connectors");
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
    seed(&url, &engine, subjects).await;
    eprintln!(
        "seeded {} active leases in {:.0} s",
        subjects * ENTITLEMENTS,
        started.elapsed().as_secs_f64()
    );

    // In process: one evaluation, writ's decision path, the raw lookup.
    let mut picks = Picks(7);
    let gateway = caller("gateway", IdentityKind::Service);
    let mut evaluation = Vec::with_capacity(samples);
    for _ in 0..samples {
        let (s, e) = picks.next(subjects);
        let asked = question(s, e);
        let began = Instant::now();
        let answer = engine
            .evaluate_access(&gateway, &asked)
            .await
            .expect("evaluation");
        evaluation.push(began.elapsed().as_secs_f64() * 1e6);
        assert!(matches!(answer, PdpAnswer::Allow(..)), "{answer:?}");
    }
    let mut decision = Vec::with_capacity(samples / 10);
    for _ in 0..samples / 10 {
        let (s, e) = picks.next(subjects);
        let new = NewRequest {
            entitlement: format!("api/r{e}"),
            justification: "bench".into(),
            ..NewRequest::default()
        };
        let who = caller(&format!("user{s}"), IdentityKind::User);
        let began = Instant::now();
        let previewed = engine.preview_request(&who, new).await.expect("decision");
        decision.push(began.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(previewed);
    }
    let lookup = RawLookup::open(&file);
    let mut raw = Vec::with_capacity(samples);
    for _ in 0..samples {
        let (s, e) = picks.next(subjects);
        let began = Instant::now();
        let allowed = lookup.allows(s, e, now_us());
        raw.push(began.elapsed().as_secs_f64() * 1e6);
        assert!(allowed);
    }
    let ((e50, e99), (d50, d99), (r50, r99)) = (
        percentiles(evaluation),
        percentiles(decision),
        percentiles(raw),
    );
    println!("| in process | p50 | p99 |");
    println!("|---|---:|---:|");
    println!("| one evaluation (`Engine::evaluate_access`) | {e50:.1} µs | {e99:.1} µs |");
    println!(
        "| writ's decision path (a request decided, not recorded) | {d50:.1} µs | {d99:.1} µs |"
    );
    println!("| raw limit: the lease lookup through rusqlite | {r50:.1} µs | {r99:.1} µs |");
    println!(
        "| evaluation / raw | {:.2}× | {:.2}× |",
        e50 / r50,
        e99 / r99
    );

    // Over HTTP: the whole router, beside a minimal service doing the raw lookup.
    let state = common::app_state(engine.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let router = writ_api::router(state);
    tokio::spawn(async move { axum::serve(listener, router).await });
    let token = engine.issue_token("gateway", 3600).await.expect("token");
    let minimal = minimal_service(file.clone()).await;
    let writ_rate = rate(
        &format!("{base}/access/v1/evaluation"),
        &token,
        subjects,
        clients,
        seconds,
    )
    .await;
    let raw_rate = rate(
        &format!("{minimal}/access/v1/evaluation"),
        &token,
        subjects,
        clients,
        seconds,
    )
    .await;
    println!();
    println!("| over HTTP ({clients} clients, {seconds} s) | evaluations/s |");
    println!("|---|---:|");
    println!("| writ (`POST /access/v1/evaluation`, a PEP's token) | {writ_rate:.0} |");
    println!("| raw limit: minimal axum service, the same lookup | {raw_rate:.0} |");
    println!("| writ / raw | {:.2}× |", writ_rate / raw_rate);
    store.close().await;
}
