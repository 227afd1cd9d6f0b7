//! `writ policy replay` at scale: 100k recorded requests on a SQLite ledger decided
//! again under a proposed policy set — read from the ledger, parsed and decided — beside
//! 100k raw policy decisions of the same requests held in memory (one thread), in the
//! same run.
//!
//! cargo bench -p writ-engine --bench replay
//! WRIT_BENCH_REQUESTS (default 100000), WRIT_BENCH_RUNS (default 3) runs per measure,
//! median reported.
//!
//! The requests are `request.created` events appended through writ's own write path
//! (hash-chained), copies of one request made through the engine with the requester,
//! entitlement and id changed.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use common::{env_number, median};
use writ_config::Config;
use writ_connectors::{Connectors, NoopConnector};
use writ_domain::ledger::EventKind;
use writ_domain::{IdentityKind, Request, Timestamp};
use writ_engine::{Caller, Engine, NewRequest, SystemClock};
use writ_policy::{PolicyEngine, RequestFacts};
use writ_store::Store;

const TARGETS: usize = 4;
const ENTITLEMENTS_PER_TARGET: usize = 250;
const USERS: usize = 100;
/// Events appended per write transaction while seeding.
const SEED_BATCH: usize = 1_000;

/// The policy set in force when the requests were made.
const POLICY: &str = r#"
@id("engineers-low")
@max_duration("8h")
permit (principal in Group::"engineers", action == Action::"request", resource)
when { resource.sensitivity == "low" && context.subject in principal };

@id("contractors-never-critical")
forbid (principal in Group::"contractors", action == Action::"request", resource)
when { resource.sensitivity == "critical" };
"#;

/// The proposal: a shorter cap for one target, which changes a quarter of the decisions.
const PROPOSED: &str = r#"
@id("t0-short")
@max_duration("1h")
permit (principal in Group::"engineers", action == Action::"request", resource in Target::"t0")
when { resource.sensitivity == "low" && context.subject in principal };
"#;

fn config() -> String {
    let mut text = String::new();
    for t in 0..TARGETS {
        let _ = write!(
            text,
            "[[target]]\nname = \"t{t}\"\nkind = \"noop\"\nreconcile_every = \"off\"\n\n"
        );
        for e in 0..ENTITLEMENTS_PER_TARGET {
            let _ = write!(
                text,
                "[[entitlement]]\nid = \"t{t}/e{e}\"\ntarget = \"t{t}\"\nrole = \"e{e}\"\nsensitivity = \"low\"\nmax_duration = \"8h\"\n\n"
            );
        }
    }
    for u in 0..USERS {
        let _ = write!(
            text,
            "[[user]]\nname = \"user{u}\"\ngroups = [\"engineers\"]\n\n"
        );
    }
    text
}

fn policy_dir(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(&path).expect("policy dir");
    std::fs::write(path.join("p.cedar"), text).expect("policy");
    path
}

/// `count` recorded requests on the ledger, and the same requests in memory.
async fn seed(store: &Store, engine: &Engine, count: usize) -> Vec<Request> {
    let made = engine
        .create_request(
            &Caller::new("user0".parse().expect("name"), IdentityKind::User),
            NewRequest {
                entitlement: "t0/e0".into(),
                duration_seconds: Some(8 * 3600),
                justification: "quarter close".into(),
                ..NewRequest::default()
            },
        )
        .await
        .expect("request");
    let mut requests = vec![made.clone()];
    let actor = writ_domain::ledger::Actor::System(writ_domain::ledger::SystemActor::Cli);
    let mut i = 1;
    while i < count {
        let mut tx = store.begin().await.expect("begin");
        for _ in 0..SEED_BATCH.min(count - i) {
            let mut request = made.clone();
            request.id = format!("00000000-0000-7000-9000-{i:012}")
                .parse()
                .expect("id");
            let user = format!("user{}", i % USERS);
            request.requester = user.parse().expect("name");
            request.subject = request.requester.clone();
            request.entitlement = format!(
                "t{}/e{}",
                i % TARGETS,
                (i / TARGETS) % ENTITLEMENTS_PER_TARGET
            )
            .parse()
            .expect("entitlement");
            tx.append(
                request.created_at,
                &actor,
                EventKind::RequestCreated,
                &serde_json::json!({ "request": request }),
            )
            .await
            .expect("append");
            requests.push(request);
            i += 1;
        }
        tx.commit().await.expect("commit");
    }
    requests
}

/// The raw limit: every request decided again in memory, one thread.
fn raw_decisions(policy: &PolicyEngine, requests: &[Request]) -> (f64, usize) {
    let started = Instant::now();
    let mut changed = 0;
    for request in requests {
        let decision = policy
            .decide_request(&RequestFacts::of_request(
                request,
                request.requested_duration_seconds,
                request.created_at,
            ))
            .value;
        changed +=
            usize::from(decision.max_duration_seconds != request.decision.max_duration_seconds);
    }
    (started.elapsed().as_secs_f64(), changed)
}

#[tokio::main]
async fn main() {
    let count = env_number("WRIT_BENCH_REQUESTS", 100_000);
    let runs = env_number("WRIT_BENCH_RUNS", 3);
    let dir = tempfile::tempdir().expect("tempdir");
    let config =
        Arc::new(Config::from_toml(&dir.path().join("writ.toml"), &config()).expect("config"));
    let in_force = policy_dir(dir.path(), "policies", POLICY);
    let proposed = policy_dir(dir.path(), "proposed", &format!("{POLICY}{PROPOSED}"));
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let store = Store::open(&url).await.expect("store");
    let mut connectors = Connectors::default();
    for t in 0..TARGETS {
        connectors.insert(&format!("t{t}"), Arc::new(NoopConnector::default()));
    }
    let engine = Engine::new(
        config.clone(),
        Arc::new(PolicyEngine::load(&in_force, &config).expect("policy")),
        store.clone(),
        connectors,
        Arc::new(SystemClock),
    );
    let requests = seed(&store, &engine, count).await;
    let proposed = PolicyEngine::load(&proposed, &config).expect("proposed policy");

    let mut raw_seconds = Vec::new();
    let mut replay_seconds = Vec::new();
    for _ in 0..runs {
        let (seconds, changed) = raw_decisions(&proposed, &requests);
        raw_seconds.push(seconds);
        let started = Instant::now();
        let report = writ_engine::replay::replay(&store, &proposed, Timestamp::from_unix_micros(0))
            .await
            .expect("replay");
        replay_seconds.push(started.elapsed().as_secs_f64());
        assert_eq!(report.replayed, count);
        assert_eq!(report.changes.len(), changed, "replay finds what raw finds");
        assert!(changed > 0, "the proposal changes some decisions");
    }
    let (raw, replay) = (median(raw_seconds), median(replay_seconds));
    println!(
        "{count} recorded requests replayed from the ledger: {replay:.2} s ({:.0}/s); {count} raw decisions in memory: {raw:.2} s ({:.0}/s); ratio {:.2}x",
        count as f64 / replay,
        count as f64 / raw,
        raw / replay
    );
    store.close().await;
}
