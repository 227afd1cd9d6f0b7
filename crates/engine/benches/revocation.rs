//! The revocation engine at scale, on SQLite with the `noop` connector (this measures
//! writ, not a target), against the raw SQLite durable commit rate measured in the
//! same run:
//!
//! - dispatch lag (expires_at → revocation recorded and verified) p50/p99 for grants
//!   made and expiring continuously while 100k and 1M other grants are active;
//! - a burst of grants all expiring in the same second, drained per second;
//! - restart to first revocation with 1M active grants;
//! - memory per active grant (RSS delta / grants).
//!
//! cargo bench -p writ-engine --bench revocation
//! WRIT_BENCH_ACTIVE (default 1000000), WRIT_BENCH_BURST (default 100000),
//! WRIT_BENCH_RUNS (default 3) runs per measure, median reported.
//!
//! The background grants (and the burst) are written straight into SQLite as `active`
//! rows with their revocation jobs, as writ would have left them: making a million
//! through the API would take most of an hour and measure request throughput instead.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{env_number, median, raw_commit_rate};
use tokio::sync::watch;
use writ_config::Config;
use writ_connectors::{Connectors, NoopConnector};
use writ_domain::{Clock, Grant, IdentityKind, Timestamp};
use writ_engine::SystemClock;
use writ_engine::{Caller, Engine, NewRequest, Scheduler};
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
"#;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

struct Bench {
    dir: tempfile::TempDir,
    url: String,
    raw: sqlx::SqlitePool,
    seeded: usize,
}

struct Running {
    engine: Arc<Engine>,
    store: Store,
    stop: watch::Sender<bool>,
    scheduler: tokio::task::JoinHandle<()>,
}

impl Bench {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        common::write_permissive_policies(dir.path());
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        );
        Store::open(&url).await.expect("store").close().await;
        let raw = sqlx::SqlitePool::connect(&url).await.expect("raw pool");
        Self {
            dir,
            url,
            raw,
            seeded: 0,
        }
    }

    /// `count` active grants (one account each) and their revocation jobs, expiring at `expires`.
    async fn seed(&mut self, count: usize, expires: Timestamp) {
        if count == 0 {
            return;
        }
        let first = self.seeded;
        self.seeded += count;
        let mut tx = self.raw.begin().await.expect("begin");
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $2) \
             INSERT INTO grants (id, request_id, subject, entitlement, account, state, expires_at_us, doc) \
             SELECT printf('00000000-0000-7000-8000-%012d', i), printf('00000000-0000-7000-9000-%012d', i), \
                    'alice', 't/read', printf('acct%08d', i), 'active', $3, \
                    printf('{\"id\":\"00000000-0000-7000-8000-%012d\",\"request_id\":\"00000000-0000-7000-9000-%012d\",\"subject\":\"alice\",\"entitlement\":\"t/read\",\"account\":\"acct%08d\",\"state\":\"active\",\"granted_at\":null,\"expires_at\":\"%s\",\"revoke_reason\":null,\"revoked_by\":null,\"revoked_at\":null,\"verified_at\":null,\"retained_by\":null}', i, i, i, $4) \
             FROM n",
        )
        .bind(i64::try_from(first).expect("count"))
        .bind(i64::try_from(self.seeded).expect("count"))
        .bind(expires.unix_micros())
        .bind(expires.to_rfc3339())
        .execute(&mut *tx)
        .await
        .expect("seed grants");
        sqlx::query(
            "INSERT INTO jobs (object_id, kind, due_at_us, attempts, last_error) \
             SELECT id, 'grant.revoke', expires_at_us, 0, NULL FROM grants \
             WHERE id BETWEEN printf('00000000-0000-7000-8000-%012d', $1) AND printf('00000000-0000-7000-8000-%012d', $2)",
        )
        .bind(i64::try_from(first).expect("first"))
        .bind(i64::try_from(self.seeded - 1).expect("last"))
        .execute(&mut *tx)
        .await
        .expect("seed jobs");
        tx.commit().await.expect("commit");
    }

    async fn start(&self) -> Running {
        let path = self.dir.path();
        let config = Config::from_toml(&path.join("writ.toml"), CONFIG).expect("config");
        let policy = PolicyEngine::load(&path.join("policies"), &config).expect("policy");
        let store = Store::open(&self.url).await.expect("store");
        let mut connectors = Connectors::default();
        connectors.insert("t", Arc::new(NoopConnector::default()));
        let engine = Arc::new(Engine::new(
            Arc::new(config),
            Arc::new(policy),
            store.clone(),
            connectors,
            Arc::new(SystemClock),
        ));
        let (stop, stopped) = watch::channel(false);
        let scheduler = tokio::spawn(Scheduler::new(engine.clone()).run(stopped));
        Running {
            engine,
            store,
            stop,
            scheduler,
        }
    }

    async fn revoked(&self) -> Vec<Grant> {
        let docs: Vec<(String,)> = sqlx::query_as("SELECT doc FROM grants WHERE state = 'revoked'")
            .fetch_all(&self.raw)
            .await
            .expect("revoked grants");
        docs.iter()
            .map(|(doc,)| serde_json::from_str(doc).expect("grant doc"))
            .collect()
    }

    async fn clear_revoked(&self) {
        sqlx::query("DELETE FROM grants WHERE state = 'revoked'")
            .execute(&self.raw)
            .await
            .expect("clear");
    }

    async fn count_revoked(&self) -> usize {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM grants WHERE state = 'revoked'")
            .fetch_one(&self.raw)
            .await
            .expect("count");
        usize::try_from(n).unwrap_or(0)
    }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.scheduler.await;
        self.store.close().await;
    }
}

/// Grants made through the engine for `seconds`, `per_second` of them, each lasting 2 s,
/// so expiries run continuously alongside new requests. Returns the lags in ms.
async fn stream_lags(bench: &Bench, running: &Running, seconds: u64, per_second: u64) -> Vec<f64> {
    let alice = Caller::new("alice".parse().expect("name"), IdentityKind::User);
    let total = seconds * per_second;
    let started = Instant::now();
    for i in 0..total {
        let due = Duration::from_micros(i * 1_000_000 / per_second);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        running
            .engine
            .create_request(
                &alice,
                NewRequest {
                    entitlement: "t/read".into(),
                    duration_seconds: Some(2),
                    justification: "bench".into(),
                    ..NewRequest::default()
                },
            )
            .await
            .expect("request");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while bench.count_revoked().await < usize::try_from(total).unwrap_or(0)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let revoked = bench.revoked().await;
    if std::env::var("WRIT_BENCH_DEBUG").is_ok() {
        for g in revoked.iter().take(20) {
            eprintln!(
                "started {} ms after expiry, recorded {} ms after start, retained_by {:?}",
                g.revoked_at.map_or(-1, |r| r.millis_since(g.expires_at)),
                g.verified_at
                    .zip(g.revoked_at)
                    .map_or(-1, |(v, r)| v.millis_since(r)),
                g.retained_by
            );
        }
    }
    let mut lags: Vec<f64> = revoked
        .iter()
        .filter_map(|g| g.verified_at.map(|v| v.millis_since(g.expires_at) as f64))
        .collect();
    lags.sort_by(f64::total_cmp);
    bench.clear_revoked().await;
    lags
}

#[tokio::main]
async fn main() {
    let active = env_number("WRIT_BENCH_ACTIVE", 1_000_000);
    let burst = env_number("WRIT_BENCH_BURST", 100_000);
    let runs = env_number("WRIT_BENCH_RUNS", 3);
    let far = Timestamp::parse_rfc3339("2100-01-01T00:00:00Z").expect("time");
    let mut bench = Bench::new().await;
    let raw_rate = raw_commit_rate(bench.dir.path(), 5).await;
    println!("raw SQLite durable single-row commits (WAL, synchronous=FULL): {raw_rate:.0}/s");

    // Dispatch lag with 100k, then `active`, other grants live.
    for background in [100_000.min(active), active] {
        bench
            .seed(background - bench.seeded.min(background), far)
            .await;
        let running = bench.start().await;
        let mut p50s = Vec::new();
        let mut p99s = Vec::new();
        for _ in 0..runs {
            let lags = stream_lags(&bench, &running, 10, 100).await;
            p50s.push(percentile(&lags, 0.5));
            p99s.push(percentile(&lags, 0.99));
        }
        running.stop().await;
        println!(
            "dispatch lag with {background} active grants (1,000 grants made and expiring over 10 s): p50 {:.1} ms, p99 {:.1} ms",
            median(p50s),
            median(p99s)
        );
    }

    // Restart to first revocation, with `active` grants live and one overdue.
    let mut restarts = Vec::new();
    let mut rss_per_grant = Vec::new();
    for _ in 0..runs {
        let before = rss_bytes();
        bench.seed(1, SystemClock.now().plus_seconds(-1)).await;
        let started = Instant::now();
        let running = bench.start().await;
        while bench.count_revoked().await == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        restarts.push(started.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss_per_grant.push((rss_bytes().saturating_sub(before)) as f64 / active as f64);
        running.stop().await;
        bench.clear_revoked().await;
    }
    println!(
        "restart to first revocation with {active} active grants: {:.2} s; memory per active grant: {:.1} bytes (RSS delta across the restart / grants); whole process RSS {:.0} MiB",
        median(restarts),
        median(rss_per_grant),
        rss_bytes() as f64 / 1_048_576.0
    );

    // A burst: `burst` grants expiring in the same second.
    let mut rates = Vec::new();
    for _ in 0..runs {
        let expires = SystemClock.now().plus_seconds(3);
        bench.seed(burst, expires).await;
        let running = bench.start().await;
        let deadline = Instant::now() + Duration::from_secs(600);
        while bench.count_revoked().await < burst && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let last = bench
            .revoked()
            .await
            .iter()
            .filter_map(|g| g.verified_at)
            .max()
            .expect("revoked");
        let seconds = last.millis_since(expires) as f64 / 1000.0;
        rates.push(burst as f64 / seconds.max(0.001));
        running.stop().await;
        bench.clear_revoked().await;
    }
    let rate = median(rates);
    println!(
        "burst: {burst} grants expiring in the same second drained at {rate:.0}/s ({:.2}x the raw SQLite commit rate)",
        rate / raw_rate
    );
}
