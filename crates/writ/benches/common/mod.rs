//! What the HTTP benchmarks share: settings from the environment, medians, users and
//! their tokens, `writ serve` processes, and audited requests per second through them.

#![allow(dead_code)] // each benchmark uses some of it

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The `writ` binary measured: this build, or `WRIT_BENCH_BINARY` (to compare two
/// builds in the same conditions).
pub fn writ_binary() -> String {
    std::env::var("WRIT_BENCH_BINARY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_writ").to_string())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// One user per client: each client's grants are leases on its own account, as with
/// real requesters (writ serialises changes to one account's access on purpose).
pub fn users(clients: u64) -> String {
    (0..clients)
        .map(|n| format!("\n[[user]]\nname = \"user{n}\"\ngroups = [\"engineers\"]\n"))
        .collect()
}

/// A `noop` target and the entitlement the clients request on it.
pub const NOOP_TARGET: &str = r#"
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

pub const POLICY: &str = r#"@id("auto") permit (principal in Group::"engineers", action == Action::"request", resource);"#;

/// A folder with `writ.toml` (listening on `port`, no rate limit or concurrency cap:
/// raw throughput) and the policy.
pub fn write_config(dir: &Path, port: u16, body: &str) -> PathBuf {
    std::fs::write(
        dir.join("writ.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nrate_limit = \"off\"\nconcurrency_limit = 100000\n{body}"
        ),
    )
    .expect("config");
    std::fs::create_dir_all(dir.join("policies")).expect("mkdir");
    std::fs::write(dir.join("policies/p.cedar"), POLICY).expect("policy");
    dir.join("writ.toml")
}

/// `writ ARGS --config CONFIG`, which must succeed; its stdout.
pub fn run_writ(config: &Path, args: &[&str]) -> String {
    let output = Command::new(writ_binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("writ");
    assert!(
        output.status.success(),
        "writ {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

pub fn tokens(config: &Path, clients: u64) -> Vec<String> {
    (0..clients)
        .map(|n| {
            run_writ(
                config,
                &["token", "issue", &format!("user{n}"), "--ttl", "1h"],
            )
        })
        .collect()
}

/// `writ serve`, ready when this returns: quiet, or with `WRIT_BENCH_LOGS` set, logging
/// at that level into `serve.log` beside its configuration.
pub async fn serve(config: &Path, port: u16) -> Child {
    let (level, log) = match std::env::var("WRIT_BENCH_LOGS") {
        Ok(level) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(config.with_file_name("serve.log"))
                .expect("log file");
            (level, Stdio::from(file))
        }
        Err(_) => ("warn".to_string(), Stdio::null()),
    };
    let server = Command::new(writ_binary())
        .args(["serve", "--config"])
        .arg(config)
        .env("WRIT_LOG", level)
        .stderr(log)
        .spawn()
        .expect("serve");
    for _ in 0..400 {
        if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

/// Audited, automatically approved requests per second: one client per token, client
/// `i` talking to `bases[i % bases.len()]`.
pub async fn writ_rate(bases: &[String], tokens: &[String], seconds: u64) -> f64 {
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let (done, base, token) = (done.clone(), bases[i % bases.len()].clone(), token.clone());
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

/// The API's state over `engine`, as `writ serve` builds it, without the per-identity
/// rate limit (benchmarks measure what writ can do, not what it lets one caller do).
pub fn app_state(engine: Arc<writ_engine::Engine>) -> writ_api::AppState {
    writ_api::AppState {
        metrics: writ_api::install_metrics_recorder(engine.config()),
        limits: Arc::new(writ_api::limits::RateLimits::new(
            &writ_config::HttpLimits {
                rate_limit_per_identity: None,
                ..engine.config().http.clone()
            },
        )),
        verifying: Arc::new(tokio::sync::Semaphore::new(1)),
        engine,
    }
}
