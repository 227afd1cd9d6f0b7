//! Ledger verification throughput (`Store::verify_chain`: read every event from SQLite,
//! recompute its SHA-256, check the links) against raw SHA-256 over exactly the bytes
//! each event hashes, already in memory, in the same run.
//!
//! cargo bench -p writ-store --bench verify
//! WRIT_BENCH_EVENTS (default 200000) events, median of WRIT_BENCH_RUNS (default 5) runs.

use std::time::Instant;

use sha2::{Digest, Sha256};
use writ_domain::Timestamp;
use writ_domain::ledger::{Actor, EventKind};
use writ_store::{EVENT_PAGE_SIZE, Store};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An event body the size of a real `request.created` snapshot (~1 KiB).
fn event_data(i: usize) -> serde_json::Value {
    serde_json::json!({ "request": {
        "id": format!("01a22634-7402-70a7-8637-{i:012}"), "state": "approved", "requester": "alice", "subject": "alice",
        "entitlement": "pg/analytics_read", "justification": "quarterly revenue numbers for the board pack, see ticket",
        "ticket": {"system": "jira", "key": format!("OPS-{i}")}, "requested_duration_seconds": 3600, "duration_seconds": 3600,
        "decision": {"outcome": "auto", "approvals_required": 0, "policies": ["low-sensitivity-auto"], "reasons": [],
            "max_duration_seconds": 28800, "policy_hash": "da8cc8bb8bd02429983706c456c0a41bcace684c7eec7dc245d4739494cc6abe"},
        "approvals": [], "grant_id": "01a22634-7402-70a7-8637-6c50a82308f3", "created_at": "2026-11-29T07:28:21.505023Z",
        "pending_expires_at": null, "closed_by": null, "close_comment": null }})
}

/// The byte string `event_hash` feeds SHA-256 (see writ_domain::ledger).
fn hashed_bytes(
    seq: i64,
    at: Timestamp,
    actor: &str,
    kind: &str,
    data: &str,
    prev_hash: &str,
) -> Vec<u8> {
    let mut bytes = b"writ-ledger-v1\0".to_vec();
    bytes.extend(seq.to_be_bytes());
    bytes.extend(at.unix_micros().to_be_bytes());
    for part in [
        actor.as_bytes(),
        kind.as_bytes(),
        data.as_bytes(),
        prev_hash.as_bytes(),
    ] {
        bytes.extend((part.len() as u64).to_be_bytes());
        bytes.extend(part);
    }
    bytes
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let events = env_number("WRIT_BENCH_EVENTS", 200_000);
    let runs = env_number("WRIT_BENCH_RUNS", 5);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    ))
    .await
    .expect("store");
    let start = Timestamp::from_unix_micros(1_795_000_000_000_000);
    let alice: Actor = "alice".parse().expect("an identity name");
    let mut written = 0;
    while written < events {
        let mut tx = store.begin().await.expect("begin");
        for _ in 0..1_000.min(events - written) {
            tx.append(
                start.plus_millis(written as i64),
                &alice,
                EventKind::RequestCreated,
                &event_data(written),
            )
            .await
            .expect("append");
            written += 1;
        }
        tx.commit().await.expect("commit");
    }

    // The raw limit: SHA-256 over the same bytes, in memory.
    let mut stored = Vec::with_capacity(events);
    let mut after = 0;
    loop {
        let page = store.events(after, EVENT_PAGE_SIZE).await.expect("events");
        let Some(last) = page.last() else { break };
        after = last.seq;
        stored.extend(page);
    }
    let inputs: Vec<Vec<u8>> = stored
        .iter()
        .map(|e| {
            hashed_bytes(
                e.seq,
                e.at,
                e.actor.as_str(),
                e.kind.as_str(),
                &e.data,
                &e.prev_hash,
            )
        })
        .collect();
    let total_bytes: usize = inputs.iter().map(Vec::len).sum();
    drop(stored);

    let mut raw_rates = Vec::new();
    let mut verify_rates = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        for input in &inputs {
            std::hint::black_box(Sha256::digest(input));
        }
        raw_rates.push(events as f64 / started.elapsed().as_secs_f64());

        let started = Instant::now();
        let report = store.verify_chain().await.expect("the ledger verifies");
        verify_rates.push(report.events as f64 / started.elapsed().as_secs_f64());
        assert_eq!(report.events as usize, events);
    }
    let (raw, verify) = (median(raw_rates), median(verify_rates));
    println!(
        "ledger verification, {events} events of {} bytes on average, median of {runs} runs",
        total_bytes / events
    );
    println!("| measure | events/s | MB/s |");
    println!("|---|---:|---:|");
    let mb = |rate: f64| rate * (total_bytes as f64 / events as f64) / 1e6;
    println!(
        "| raw SHA-256 over the same bytes (in memory) | {raw:.0} | {:.0} |",
        mb(raw)
    );
    println!(
        "| writ audit verify (chain: read from SQLite + hash + links) | {verify:.0} | {:.0} |",
        mb(verify)
    );
    println!("ratio: {:.0}%", 100.0 * verify / raw);
}
