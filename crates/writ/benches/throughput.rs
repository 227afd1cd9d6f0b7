//! Audited, automatically approved requests per second through the HTTP API (real
//! `writ serve`, SQLite with synchronous=FULL, a no-op connector) against the raw
//! durable single-row commit rate of SQLite on the same disk, in the same run.
//!
//! cargo bench -p writ --bench throughput
//! WRIT_BENCH_SECONDS (default 5) per measurement, WRIT_BENCH_CLIENTS (default 16)
//! concurrent clients, median of WRIT_BENCH_RUNS (default 5) runs; WRIT_BENCH_BINARY
//! runs another build of `writ` (to compare two builds in the same conditions);
//! WRIT_BENCH_KEEP keeps the run's folder (configuration and ledger) and prints where.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

const CONFIG: &str = r#"
[storage]
url = "sqlite://writ.db"

[[target]]
name = "noop"
kind = "noop"

[[entitlement]]
id = "noop/read"
target = "noop"
role = "read"
sensitivity = "low"
max_duration = "8h"

"#;

/// One user per client: each client's grants are leases on its own account, as with
/// real requesters (writ serialises changes to one account's access on purpose).
fn users(clients: u64) -> String {
    (0..clients)
        .map(|n| format!("\n[[user]]\nname = \"user{n}\"\ngroups = [\"engineers\"]\n"))
        .collect()
}

const POLICY: &str = r#"@id("auto") permit (principal in Group::"engineers", action == Action::"request", resource);"#;

async fn raw_commit_rate(dir: &std::path::Path, seconds: u64) -> f64 {
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
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut commits = 0u64;
    while Instant::now() < deadline {
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

/// The same durable single-row commits straight through SQLite's C API (rusqlite), on
/// this thread: no driver in between, the strictest limit.
fn raw_commit_rate_direct(dir: &std::path::Path, seconds: u64) -> f64 {
    let connection = rusqlite::Connection::open(dir.join("raw-direct.db")).expect("raw sqlite");
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
             CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)",
        )
        .expect("table");
    let mut insert = connection
        .prepare("INSERT INTO t (v) VALUES (?1)")
        .expect("prepare");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut commits = 0u64;
    while Instant::now() < deadline {
        insert
            .execute(["a row about the size of an event id"])
            .expect("insert");
        commits += 1;
    }
    commits as f64 / started.elapsed().as_secs_f64()
}

async fn writ_rate(base: &str, tokens: &[String], seconds: u64) -> f64 {
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for token in tokens {
        let (done, base, token) = (done.clone(), base.to_string(), token.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let body = serde_json::json!({"entitlement": "noop/read", "duration_seconds": 3600, "justification": "bench"});
            while Instant::now() < deadline {
                let response = http.post(format!("{base}/v1/requests")).bearer_auth(&token).json(&body).send().await.expect("request");
                assert_eq!(response.status().as_u16(), 201);
                let request: serde_json::Value = response.json().await.expect("json");
                assert_eq!(request["state"], "approved");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("client");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    writ_itsm::install_crypto_provider();
    let seconds = env_number("WRIT_BENCH_SECONDS", 5);
    let clients = env_number("WRIT_BENCH_CLIENTS", 16);
    let runs = env_number("WRIT_BENCH_RUNS", 5);
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    std::fs::write(
        dir.path().join("writ.toml"),
        format!(
            // Raw throughput: no per-identity rate limit, no concurrency cap.
            "[server]\nlisten = \"127.0.0.1:{port}\"\nrate_limit = \"off\"\nconcurrency_limit = 100000\n{CONFIG}{}",
            users(clients)
        ),
    )
    .expect("config");
    std::fs::create_dir_all(dir.path().join("policies")).expect("mkdir");
    std::fs::write(dir.path().join("policies/p.cedar"), POLICY).expect("policy");
    let config = dir.path().join("writ.toml");
    // Another build of writ can be compared against this one in the same conditions.
    let writ = std::env::var("WRIT_BENCH_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_writ").to_string());
    let tokens: Vec<String> = (0..clients)
        .map(|n| {
            let output = Command::new(&writ)
                .args([
                    "token",
                    "issue",
                    &format!("user{n}"),
                    "--ttl",
                    "1h",
                    "--config",
                ])
                .arg(&config)
                .output()
                .expect("token");
            assert!(
                output.status.success(),
                "token issue: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).trim().to_string()
        })
        .collect();
    let token = tokens[0].clone();
    let mut server = Command::new(&writ)
        .args(["serve", "--config"])
        .arg(&config)
        .env("WRIT_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut raw = Vec::new();
    let mut direct = Vec::new();
    let mut served = Vec::new();
    for _ in 0..runs {
        raw.push(raw_commit_rate(dir.path(), seconds).await);
        direct.push(raw_commit_rate_direct(dir.path(), seconds));
        served.push(writ_rate(&base, &tokens, seconds).await);
    }
    let metrics = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap_or_default();
    let sample = |name: &str| {
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
            .unwrap_or(0.0)
    };
    let (writes, commits) = (
        sample("writ_write_transactions_total "),
        sample("writ_database_commits_total "),
    );
    let _ = server.kill();
    let _ = server.wait();
    let (raw, direct, served) = (median(raw), median(direct), median(served));
    println!(
        "audited auto-approved requests through HTTP, {clients} clients, {seconds}s per measurement, median of {runs} runs"
    );
    println!("| measure | per second |");
    println!("|---|---:|");
    println!(
        "| raw SQLite durable single-row commits (WAL, synchronous=FULL, one connection) | {raw:.0} |"
    );
    println!(
        "| raw SQLite durable single-row commits, C API directly (rusqlite, no driver) | {direct:.0} |"
    );
    println!(
        "| writ requests (decision + request, grant, 3 ledger events, target applied and activated) | {served:.0} |"
    );
    println!(
        "ratio: {:.2}× the raw rate through sqlx, {:.2}× the direct one",
        served / raw,
        served / direct
    );
    println!(
        "group commit: {writes:.0} write transactions in {commits:.0} database commits ({:.1} per commit)",
        writes / commits.max(1.0)
    );
    if std::env::var_os("WRIT_BENCH_KEEP").is_some() {
        // The ledger the run wrote, e.g. to time `writ audit verify` on it.
        println!("kept {}", dir.keep().display());
    }
}
