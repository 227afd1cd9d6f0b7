//! Audited, automatically approved requests per second through the HTTP API with 1, 2
//! and 3 `writ serve` nodes on one PostgreSQL database (a no-op connector), beside
//! pgbench running, at the same concurrency and in the same run, a transaction pair
//! that writes the same rows into writ's own schema: the request, the grant, three
//! ledger events with their sequence numbers taken from the head row (as writ takes
//! them), the job, and the head row updated twice per transaction.
//!
//! Then the revocation drain: a burst of WRIT_BENCH_BURST (default 100,000) active
//! grants, all expiring at once, revoked and verified by 1 node and by 3, beside the
//! server's raw durable commit rate (one connection, one row per commit) in the same run.
//!
//! cargo bench -p writ --bench nodes
//! WRIT_BENCH_SECONDS (default 5) per measurement, WRIT_BENCH_CLIENTS (default 16)
//! concurrent clients, median of WRIT_BENCH_RUNS (default 3) runs; WRIT_BENCH_PG the
//! server (default postgres://postgres@127.0.0.1:5432; scratch databases are made and
//! dropped); WRIT_BENCH_BINARY runs another build of `writ`.

mod common;

use std::process::{Child, Command};

use common::{env_number, median};

const NODES_MAX: usize = 3;

/// Two transactions, as writ's request path makes them: the request, its grant, two
/// events and the apply job; then the grant active, its event, the job turned into the
/// revocation. Rows about writ's sizes (JSON documents of 600–850 bytes).
const PGBENCH_SCRIPT: &str = r"\set n random(1, 9000000000000000)
BEGIN;
UPDATE ledger_head SET seq = seq + 2 WHERE id = 1 RETURNING seq AS head \gset
INSERT INTO requests (id, state, requester, subject, entitlement, created_at_us, doc) VALUES ('r' || :n, 'approved', 'user1', 'user1', 'noop/read', :n, repeat('r', 700));
INSERT INTO grants (id, request_id, subject, entitlement, account, state, expires_at_us, doc) VALUES ('g' || :n, 'r' || :n, 'user1', 'noop/read', 'user1', 'pending', :n, repeat('g', 600));
INSERT INTO events (seq, at_us, actor, kind, data, prev_hash, hash) VALUES (:head - 1, :n, 'user1', 'request.created', repeat('e', 850), repeat('0', 64), repeat('1', 64));
INSERT INTO events (seq, at_us, actor, kind, data, prev_hash, hash) VALUES (:head, :n, 'user1', 'grant.created', repeat('e', 850), repeat('1', 64), repeat('2', 64));
INSERT INTO jobs (object_id, kind, due_at_us, attempts) VALUES ('g' || :n, 'grant.apply', :n, 0);
UPDATE ledger_head SET hash = repeat('2', 64) WHERE id = 1;
COMMIT;
BEGIN;
UPDATE ledger_head SET seq = seq + 1 WHERE id = 1 RETURNING seq AS head \gset
UPDATE grants SET state = 'active', doc = repeat('h', 600) WHERE id = 'g' || :n;
INSERT INTO events (seq, at_us, actor, kind, data, prev_hash, hash) VALUES (:head, :n, 'system.scheduler', 'grant.activated', repeat('e', 850), repeat('2', 64), repeat('3', 64));
UPDATE jobs SET kind = 'grant.revoke', due_at_us = :n WHERE object_id = 'g' || :n;
UPDATE ledger_head SET hash = repeat('3', 64) WHERE id = 1;
COMMIT;
";

/// Every node shares the keys (a token issued through one checks on all).
const KEYS: &str = r#"
[keys]
token_key = "1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f"
ledger_key = "2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e"
"#;

/// The burst: `count` active grants on `noop/read`, one account each, expiring at
/// `expires` (already due), and their revocation jobs, in one transaction.
const SEED_BURST: &str = r"
WITH n AS (SELECT i, lpad(i::text, 12, '0') AS p FROM generate_series(1, $1) AS i),
g AS (
  INSERT INTO grants (id, request_id, subject, entitlement, account, state, expires_at_us, doc)
  SELECT '00000000-0000-7000-8000-' || p, '00000000-0000-7000-9000-' || p, 'user1',
         'noop/read', 'acct' || p, 'active', $2,
         json_build_object('id', '00000000-0000-7000-8000-' || p,
           'request_id', '00000000-0000-7000-9000-' || p, 'subject', 'user1',
           'entitlement', 'noop/read', 'account', 'acct' || p, 'state', 'active',
           'granted_at', NULL, 'expires_at', $3::text, 'revoke_reason', NULL,
           'revoked_by', NULL, 'revoked_at', NULL, 'verified_at', NULL,
           'retained_by', NULL)::text
  FROM n RETURNING id, expires_at_us)
INSERT INTO jobs (object_id, kind, due_at_us, attempts) SELECT id, 'grant.revoke', expires_at_us, 0 FROM g";

async fn admin(server: &str) -> sqlx::PgPool {
    sqlx::PgPool::connect(&format!("{server}/postgres"))
        .await
        .expect("PostgreSQL")
}

async fn sql(pool: &sqlx::PgPool, statement: String) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
        .execute(pool)
        .await
        .expect("admin SQL");
}

/// pgbench's transactions (script runs) per second: `clients` connections, the
/// script above, for `seconds`.
fn pgbench_rate(url: &str, script: &std::path::Path, clients: u64, seconds: u64) -> f64 {
    let output = Command::new("pgbench")
        .args([
            "-n",
            "-M",
            "prepared",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(script)
        .arg(url)
        .output()
        .expect("pgbench (Debian's postgresql-contrib or postgresql-client)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pgbench: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix("tps = ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no tps in pgbench's output: {text}"))
}

/// Durable commits per second on one connection, one row each: the raw limit.
async fn raw_commit_rate(url: &str, seconds: u64) -> f64 {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("raw pool");
    sql(
        &pool,
        "CREATE TABLE IF NOT EXISTS raw_commits (id BIGSERIAL PRIMARY KEY, at BIGINT)".into(),
    )
    .await;
    let started = std::time::Instant::now();
    let mut commits = 0u64;
    while started.elapsed().as_secs() < seconds {
        sqlx::query("INSERT INTO raw_commits (at) VALUES ($1)")
            .bind(i64::try_from(commits).unwrap_or(0))
            .execute(&pool)
            .await
            .expect("raw commit");
        commits += 1;
    }
    pool.close().await;
    commits as f64 / started.elapsed().as_secs_f64()
}

/// Revoked and verified per second: `burst` grants due at once, drained by the nodes
/// already serving on `url`, from the burst's commit until the last is recorded.
async fn drain_rate(url: &str, burst: u64) -> f64 {
    let pool = sqlx::PgPool::connect(url).await.expect("drain pool");
    sql(
        &pool,
        "DELETE FROM grants WHERE state = 'revoked'; DELETE FROM jobs".into(),
    )
    .await;
    let now = writ_domain::Timestamp::from_unix_micros(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_micros(),
        )
        .expect("micros"),
    );
    sqlx::query(SEED_BURST)
        .bind(i64::try_from(burst).expect("burst"))
        .bind(now.unix_micros())
        .bind(now.to_rfc3339())
        .execute(&pool)
        .await
        .expect("seed the burst");
    let started = std::time::Instant::now();
    let deadline = started + std::time::Duration::from_secs(600);
    loop {
        let (revoked,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM grants WHERE state = 'revoked'")
                .fetch_one(&pool)
                .await
                .expect("count");
        if u64::try_from(revoked).unwrap_or(0) >= burst {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{revoked} of {burst} revoked after 10 minutes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let rate = burst as f64 / started.elapsed().as_secs_f64();
    pool.close().await;
    rate
}

#[tokio::main]
async fn main() {
    writ_itsm::install_crypto_provider();
    let seconds = env_number("WRIT_BENCH_SECONDS", 5);
    let clients = env_number("WRIT_BENCH_CLIENTS", 16);
    let runs = env_number("WRIT_BENCH_RUNS", 3);
    let server = std::env::var("WRIT_BENCH_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string());
    let pid = std::process::id();
    let (writ_db, raw_db) = (format!("writ_bench_{pid}"), format!("writ_bench_raw_{pid}"));
    let admin = admin(&server).await;
    for db in [&writ_db, &raw_db] {
        sql(&admin, format!("CREATE DATABASE \"{db}\"")).await;
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let body = |db: &str| {
        format!(
            "[storage]\nurl = \"{server}/{db}\"\n{KEYS}{}{}",
            common::NOOP_TARGET,
            common::users(clients)
        )
    };
    // Writ's schema in both: writ writes one, pgbench the other.
    let raw_folder = dir.path().join("raw");
    std::fs::create_dir_all(&raw_folder).expect("mkdir");
    let raw_config = common::write_config(&raw_folder, common::free_port(), &body(&raw_db));
    common::run_writ(&raw_config, &["migrate"]);
    let script = dir.path().join("writ-request.sql");
    std::fs::write(&script, PGBENCH_SCRIPT).expect("script");

    // Each node's configuration (in `<prefix>N/`) and port, all on database `db`.
    let node_configs = |prefix: &str, db: &str| -> Vec<(std::path::PathBuf, u16)> {
        (0..NODES_MAX)
            .map(|n| {
                let folder = dir.path().join(format!("{prefix}{n}"));
                std::fs::create_dir_all(&folder).expect("mkdir");
                let port = common::free_port();
                (common::write_config(&folder, port, &body(db)), port)
            })
            .collect()
    };
    let nodes = node_configs("node", &writ_db);
    common::run_writ(&nodes[0].0, &["migrate"]);
    let tokens = common::tokens(&nodes[0].0, clients);

    let raw_url = format!("{server}/{raw_db}");
    let mut raw = Vec::new();
    let mut served: Vec<Vec<f64>> = vec![Vec::new(); NODES_MAX];
    for _ in 0..runs {
        raw.push(pgbench_rate(&raw_url, &script, clients, seconds));
        for count in 1..=NODES_MAX {
            let mut running: Vec<Child> = Vec::new();
            for (config, port) in &nodes[..count] {
                running.push(common::serve(config, *port).await);
            }
            let bases: Vec<String> = nodes[..count]
                .iter()
                .map(|(_, port)| format!("http://127.0.0.1:{port}"))
                .collect();
            // Connections opened, caches warm, start-up work done: then measure.
            common::writ_rate(&bases, &tokens, 1).await;
            served[count - 1].push(common::writ_rate(&bases, &tokens, seconds).await);
            for mut node in running {
                let _ = node.kill();
                let _ = node.wait();
            }
        }
    }

    // The revocation drain, on a database of its own.
    let burst = env_number("WRIT_BENCH_BURST", 100_000);
    let drain_db = format!("writ_bench_drain_{pid}");
    sql(&admin, format!("CREATE DATABASE \"{drain_db}\"")).await;
    let drain_url = format!("{server}/{drain_db}");
    let drain_nodes = node_configs("drain", &drain_db);
    common::run_writ(&drain_nodes[0].0, &["migrate"]);
    let mut commits = Vec::new();
    let mut drained: Vec<Vec<f64>> = vec![Vec::new(); 2];
    for _ in 0..runs {
        commits.push(raw_commit_rate(&drain_url, seconds).await);
        for (slot, count) in [1, NODES_MAX].into_iter().enumerate() {
            let mut running: Vec<Child> = Vec::new();
            for (config, port) in &drain_nodes[..count] {
                running.push(common::serve(config, *port).await);
            }
            drained[slot].push(drain_rate(&drain_url, burst).await);
            for mut node in running {
                let _ = node.kill();
                let _ = node.wait();
            }
        }
    }

    admin.close().await;
    if std::env::var_os("WRIT_BENCH_KEEP").is_some() {
        // The nodes' configurations (and logs, with WRIT_BENCH_LOGS).
        println!("kept {}", dir.keep().display());
    }
    let admin = self::admin(&server).await;
    for db in [&writ_db, &raw_db, &drain_db] {
        sql(
            &admin,
            format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
        )
        .await;
    }
    admin.close().await;

    println!(
        "audited auto-approved requests through HTTP on PostgreSQL, {clients} clients, {seconds}s per measurement, median of {runs} runs"
    );
    print_table(
        (
            "pgbench",
            &format!("pgbench: the same rows, {clients} connections"),
        ),
        raw,
        (1..=NODES_MAX).zip(served).collect(),
        "",
    );
    println!(
        "revocation drain: {burst} grants expiring at once, revoked and verified, median of {runs} runs"
    );
    print_table(
        ("raw commits", "raw durable commits, one connection"),
        commits,
        [1, NODES_MAX].into_iter().zip(drained).collect(),
        ": drained",
    );
}

/// One table: the raw limit's median, then writ's with `n` nodes beside it.
fn print_table(
    (short, raw_label): (&str, &str),
    raw: Vec<f64>,
    writ: Vec<(usize, Vec<f64>)>,
    what: &str,
) {
    let raw = median(raw);
    println!("| measure | per second | × {short} |");
    println!("|---|---:|---:|");
    println!("| {raw_label} | {raw:.0} | 1.00 |");
    for (count, rates) in writ {
        let rate = median(rates);
        println!(
            "| writ, {count} node{}{what} | {rate:.0} | {:.2} |",
            if count == 1 { "" } else { "s" },
            rate / raw
        );
    }
}
