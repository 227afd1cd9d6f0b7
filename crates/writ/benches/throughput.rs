//! Audited, automatically approved requests per second through the HTTP API (real
//! `writ serve`, SQLite with synchronous=FULL, a no-op connector) beside, in the same
//! run: the least any audited HTTP service must do — a minimal axum service that
//! answers each request once one durable row is committed, with writ's group commit and
//! connection settings — and the raw durable single-row commit rate of SQLite on the
//! same disk. And writ again, a second server with `audit.checkpoint_every = "1s"`:
//! the ledger's Merkle tree extended and a tree head signed every second while the
//! requests flow, against the first with checkpoints off.
//!
//! cargo bench -p writ --bench throughput
//! WRIT_BENCH_SECONDS (default 5) per measurement, WRIT_BENCH_CLIENTS (default 16)
//! concurrent clients, median of WRIT_BENCH_RUNS (default 5) runs; WRIT_BENCH_BINARY
//! runs another build of `writ` (to compare two builds in the same conditions);
//! WRIT_BENCH_KEEP keeps the run's folder (configuration and ledger) and prints where.

mod common;

use std::time::{Duration, Instant};

use common::{env_number, median};

const STORAGE: &str = "[storage]\nurl = \"sqlite://writ.db\"\n";

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

/// The minimal audited HTTP service: `POST /v1/requests` answers 201 once one row (the
/// body) is durable. One writer thread owns the connection (WAL, synchronous=FULL, as
/// writ's); requests that arrive while it commits share the next transaction (group
/// commit, as writ's). Returns its base URL; it serves until the process ends.
async fn minimal_service(dir: &std::path::Path) -> String {
    type Queued = (String, tokio::sync::oneshot::Sender<()>);
    let (queue, queued) = std::sync::mpsc::channel::<Queued>();
    let file = dir.join("minimal.db");
    std::thread::spawn(move || {
        let mut connection = rusqlite::Connection::open(file).expect("sqlite");
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                 CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)",
            )
            .expect("table");
        while let Ok(first) = queued.recv() {
            let mut batch = vec![first];
            batch.extend(queued.try_iter());
            let transaction = connection.transaction().expect("begin");
            {
                let mut insert = transaction
                    .prepare_cached("INSERT INTO t (v) VALUES (?1)")
                    .expect("prepare");
                for (row, _) in &batch {
                    insert.execute([row]).expect("insert");
                }
            }
            transaction.commit().expect("commit");
            for (_, done) in batch {
                let _ = done.send(());
            }
        }
    });
    let app = axum::Router::new().route(
        "/v1/requests",
        axum::routing::post(move |body: String| {
            let queue = queue.clone();
            async move {
                let (done, committed) = tokio::sync::oneshot::channel();
                queue.send((body, done)).expect("writer");
                committed.await.expect("committed");
                (
                    axum::http::StatusCode::CREATED,
                    axum::Json(serde_json::json!({"state": "approved"})),
                )
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
    writ_itsm::install_crypto_provider();
    let seconds = env_number("WRIT_BENCH_SECONDS", 5);
    let clients = env_number("WRIT_BENCH_CLIENTS", 16);
    let runs = env_number("WRIT_BENCH_RUNS", 5);
    let dir = tempfile::tempdir().expect("tempdir");
    let port = common::free_port();
    let body = format!(
        "{STORAGE}{}{}\n[audit]\ncheckpoint_every = \"off\"\n",
        common::NOOP_TARGET,
        common::users(clients)
    );
    let config = common::write_config(dir.path(), port, &body);
    let tree_dir = tempfile::tempdir().expect("tempdir");
    let tree_port = common::free_port();
    let tree_config = common::write_config(
        tree_dir.path(),
        tree_port,
        &body.replace("checkpoint_every = \"off\"", "checkpoint_every = \"1s\""),
    );
    let tree_tokens = common::tokens(&tree_config, clients);
    let mut tree_server = common::serve(&tree_config, tree_port).await;
    let tree_base = format!("http://127.0.0.1:{tree_port}");
    let tokens = common::tokens(&config, clients);
    let token = tokens[0].clone();
    let mut server = common::serve(&config, port).await;
    let base = format!("http://127.0.0.1:{port}");
    let minimal = minimal_service(dir.path()).await;

    let mut raw = Vec::new();
    let mut direct = Vec::new();
    let mut least = Vec::new();
    let mut served = Vec::new();
    let mut treed = Vec::new();
    for _ in 0..runs {
        raw.push(raw_commit_rate(dir.path(), seconds).await);
        direct.push(raw_commit_rate_direct(dir.path(), seconds));
        least.push(common::writ_rate(std::slice::from_ref(&minimal), &tokens, seconds).await);
        served.push(common::writ_rate(std::slice::from_ref(&base), &tokens, seconds).await);
        treed
            .push(common::writ_rate(std::slice::from_ref(&tree_base), &tree_tokens, seconds).await);
    }
    let _ = tree_server.kill();
    let _ = tree_server.wait();
    let heads = std::fs::read_to_string(tree_dir.path().join("ledger-checkpoints.jsonl"))
        .map(|text| text.lines().count())
        .unwrap_or(0);
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
    let (raw, direct, least, served, treed) = (
        median(raw),
        median(direct),
        median(least),
        median(served),
        median(treed),
    );
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
        "| minimal axum service: one durable row per request, group commit (rusqlite) | {least:.0} |"
    );
    println!(
        "| writ requests (decision + request, grant, 3 ledger events, target applied and activated) | {served:.0} |"
    );
    println!(
        "| writ requests, the Merkle tree extended and a tree head signed every second ({heads} heads) | {treed:.0} |"
    );
    println!(
        "with the tree kept and heads signed every second: {:.2}× the requests per second without",
        treed / served
    );
    println!(
        "ratio: {:.2}× the minimal audited service, {:.2}× the raw rate through sqlx, {:.2}× the direct one",
        served / least,
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
