//! The ledger's Merkle tree and evidence documents at 1M events, on SQLite: building
//! the stored tree over the whole ledger, and keeping it up to date at a checkpoint, beside
//! the least any tree must do (read every event's hash and hash the tree in memory); then
//! one grant's document made (events read, proofs from the stored tree, a signed tree
//! head) beside the raw index read of its events, and verified beside recomputing its
//! events' hashes alone.
//!
//! cargo bench -p writ-engine --bench evidence
//! WRIT_BENCH_EVENTS (default 1000000), WRIT_BENCH_DOCUMENTS (default 50),
//! WRIT_BENCH_RUNS (default 3) runs per measure, median reported.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{env_number, median, write_permissive_policies};
use writ_config::Config;
use writ_connectors::{Connectors, NoopConnector};
use writ_domain::ledger::merkle;
use writ_domain::{Clock as _, GrantId, IdentityKind};
use writ_engine::checkpoint::{LedgerKey, parse_public_key};
use writ_engine::evidence_doc;
use writ_engine::{Caller, Engine, NewRequest, Scheduler, SystemClock};
use writ_policy::PolicyEngine;
use writ_store::Store;

const CONFIG: &str = r#"
[audit]
checkpoint_every = "off"

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
"#;

/// Events 1 to `events` straight into the table (typical size, distinct hashes; the
/// tree reads only `hash`), and the head moved to the last.
async fn seed(raw: &sqlx::SqlitePool, from: usize, to: usize) {
    let data = format!(
        "{{\"grant\":{{\"id\":\"00000000-0000-7000-8000-000000000001\",\"state\":\"revoked\",\"subject\":\"alice\",\"entitlement\":\"t/read\",\"account\":\"alice\",\"note\":\"{}\"}}}}",
        "x".repeat(400)
    );
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i < $2) \
         INSERT INTO events (seq, at_us, actor, kind, data, prev_hash, hash) \
         SELECT i, 1800000000000000 + i, 'writ:scheduler', 'grant.revoked', $3, printf('%064x', i - 1), printf('%064x', i) FROM n",
    )
    .bind(i64::try_from(from).unwrap_or(1))
    .bind(i64::try_from(to).unwrap_or(1))
    .bind(&data)
    .execute(raw)
    .await
    .expect("events");
    sqlx::query("UPDATE ledger_head SET seq = $1, hash = printf('%064x', $1)")
        .bind(i64::try_from(to).unwrap_or(1))
        .execute(raw)
        .await
        .expect("head");
}

/// The least any tree over the first `size` events costs: every hash read, the tree
/// hashed in memory.
async fn raw_tree(raw: &sqlx::SqlitePool, size: usize) -> f64 {
    let started = Instant::now();
    let hashes: Vec<(String,)> =
        sqlx::query_as("SELECT hash FROM events WHERE seq <= $1 ORDER BY seq")
            .bind(i64::try_from(size).unwrap_or(0))
            .fetch_all(raw)
            .await
            .expect("hashes");
    let leaves: Vec<merkle::Hash> = hashes
        .iter()
        .map(|(h,)| merkle::event_leaf(h).expect("hash"))
        .collect();
    std::hint::black_box(merkle::root_of(&leaves));
    started.elapsed().as_secs_f64()
}

fn caller() -> Caller {
    Caller::new("alice".parse().expect("name"), IdentityKind::User)
}

/// `count` grants through the engine: requested, applied, ended early, verified gone.
async fn grants(engine: &Arc<Engine>, count: usize) -> Vec<GrantId> {
    let scheduler = Scheduler::new(engine.clone());
    let mut made = Vec::new();
    for _ in 0..count {
        let request = engine
            .create_request(
                &caller(),
                NewRequest {
                    entitlement: "t/read".into(),
                    justification: "quarter close".into(),
                    ..NewRequest::default()
                },
            )
            .await
            .expect("request");
        made.push(request.grant_id.expect("granted"));
    }
    scheduler.run_due().await.expect("apply");
    for id in &made {
        engine
            .revoke_grant(&caller(), *id, "done".into())
            .await
            .expect("revoke");
    }
    scheduler.run_due().await.expect("revoke");
    made
}

fn p50(values: Vec<f64>) -> f64 {
    median(values) * 1000.0
}

#[tokio::main]
async fn main() {
    let events = env_number("WRIT_BENCH_EVENTS", 1_000_000);
    let documents = env_number("WRIT_BENCH_DOCUMENTS", 50);
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
    let raw = sqlx::SqlitePool::connect(&url).await.expect("raw pool");
    seed(&raw, 1, events).await;

    // The whole tree, built from nothing, beside the least a tree costs.
    let mut built = Vec::new();
    let mut least = Vec::new();
    let mut rows = 0;
    for _ in 0..runs {
        sqlx::query("DELETE FROM ledger_tree")
            .execute(&raw)
            .await
            .expect("reset");
        least.push(raw_tree(&raw, events).await);
        let started = Instant::now();
        rows = store.extend_tree(events as u64).await.expect("tree");
        std::hint::black_box(store.tree_root(events as u64).await.expect("root"));
        built.push(started.elapsed().as_secs_f64());
    }
    println!("Merkle tree over {events} events, median of {runs} runs");
    println!("| measure | writ | least a tree costs, same run | ratio |");
    println!("|---|---:|---:|---:|");
    let (built, least) = (p50(built), p50(least));
    println!(
        "| the stored tree built from nothing ({rows} rows) and its root | {built:.0} ms | {least:.0} ms | {:.2}× |",
        least / built
    );

    // A checkpoint's share: 1,000 events more, the tree extended and its root taken.
    let mut step = Vec::new();
    let mut step_least = Vec::new();
    let mut size = events;
    for _ in 0..runs {
        seed(&raw, size + 1, size + 1000).await;
        size += 1000;
        let started = Instant::now();
        store.extend_tree(size as u64).await.expect("tree");
        std::hint::black_box(store.tree_root(size as u64).await.expect("root"));
        step.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        let hashes: Vec<(String,)> =
            sqlx::query_as("SELECT hash FROM events WHERE seq > $1 ORDER BY seq")
                .bind(i64::try_from(size - 1000).unwrap_or(0))
                .fetch_all(&raw)
                .await
                .expect("hashes");
        std::hint::black_box(hashes.len());
        step_least.push(started.elapsed().as_secs_f64());
    }
    let (step, step_least) = (p50(step), p50(step_least));
    println!(
        "| 1,000 events more: the tree extended and its new root | {step:.1} ms | {step_least:.1} ms (their hashes read) | {:.2}× |",
        step_least / step
    );

    // Documents: made, and verified with the public key alone.
    let mut connectors = Connectors::default();
    connectors.insert("t", Arc::new(NoopConnector::default()));
    let engine = Arc::new(Engine::new(
        config.clone(),
        Arc::new(PolicyEngine::load(&dir.path().join("policies"), &config).expect("policy")),
        store.clone(),
        connectors,
        Arc::new(SystemClock),
    ));
    let ids = grants(&engine, documents).await;
    let key = LedgerKey::load(&config.keys.ledger).expect("ledger key");
    let public = parse_public_key(&key.public_hex()).expect("public key");
    let file = dir.path().join("checkpoints.jsonl");
    let (mut made, mut read, mut verified, mut hashed) = (vec![], vec![], vec![], vec![]);
    let (mut cited, mut proof_hashes, mut bytes) = (0, 0, 0);
    for _ in 0..runs {
        for id in &ids {
            let records = [id.to_string()];
            let started = Instant::now();
            std::hint::black_box(store.events_about(&records, 1000).await.expect("events"));
            read.push(started.elapsed().as_secs_f64());
            let started = Instant::now();
            let document = evidence_doc::build(&store, &key, &file, SystemClock.now(), *id)
                .await
                .expect("document");
            made.push(started.elapsed().as_secs_f64());
            let text = document.to_json();
            let started = Instant::now();
            evidence_doc::verify(&text, &public).expect("verifies");
            verified.push(started.elapsed().as_secs_f64());
            let started = Instant::now();
            for event in &document.events {
                std::hint::black_box(writ_domain::ledger::event_hash(
                    event.seq,
                    event.at,
                    &event.actor,
                    &event.kind,
                    &event.data.to_string(),
                    &event.prev_hash,
                ));
            }
            hashed.push(started.elapsed().as_secs_f64());
            cited = document.events.len();
            proof_hashes = document.events.iter().map(|e| e.proof.len()).sum();
            bytes = text.len();
        }
    }
    println!();
    println!(
        "one grant's document at {size} events ({cited} events, {proof_hashes} proof hashes, {bytes} bytes of JSON), p50 of {} documents",
        ids.len() * runs
    );
    println!("| measure | writ | raw, same run | ratio |");
    println!("|---|---:|---:|---:|");
    let (made, read) = (p50(made), p50(read));
    println!(
        "| made (events read, proofs, tree head) | {made:.2} ms | {read:.2} ms (its events read by index) | {:.2}× |",
        read / made
    );
    let (verified, hashed) = (p50(verified), p50(hashed));
    println!(
        "| verified with the public key alone | {verified:.2} ms | {hashed:.2} ms (its events' hashes recomputed) | {:.2}× |",
        hashed / verified
    );
    raw.close().await;
    store.close().await;
}
