//! What the engine's benchmarks share: their knobs, medians, and a policy folder.

use std::path::Path;
use std::time::{Duration, Instant};

/// A numeric setting from the environment, or its default.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `dir/policies` with one policy that permits every request (the benchmarks measure
/// revocation and reconciliation, not decisions).
#[allow(dead_code)]
pub fn write_permissive_policies(dir: &Path) {
    std::fs::create_dir_all(dir.join("policies")).expect("policies");
    std::fs::write(
        dir.join("policies/p.cedar"),
        "permit (principal, action == Action::\"request\", resource);\n",
    )
    .expect("policy");
}

/// Durable single-row commits per second on a fresh SQLite file in `dir` (WAL,
/// `synchronous=FULL`, as writ runs it), one after another for `seconds`.
#[allow(dead_code)]
pub async fn raw_commit_rate(dir: &std::path::Path, seconds: u64) -> f64 {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    let options = SqliteConnectOptions::new()
        .filename(dir.join("raw.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("raw sqlite");
    sqlx::query("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .execute(&pool)
        .await
        .expect("table");
    let started = Instant::now();
    let mut commits = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        sqlx::query("INSERT INTO t (v) VALUES ($1)")
            .bind("a row about the size of an event id")
            .execute(&pool)
            .await
            .expect("insert");
        commits += 1;
    }
    let rate = commits as f64 / started.elapsed().as_secs_f64();
    pool.close().await;
    rate
}
