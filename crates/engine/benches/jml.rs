//! Joiner-mover-leaver at scale, on SQLite with `noop` connectors (this measures writ,
//! not a target):
//!
//! - re-deciding every live grant after a policy change, 100k of them, against 100k raw
//!   policy decisions of the same requests (in memory, one thread) in the same run;
//! - a leaver holding 1,000 active grants across 4 targets: from the leaver sweep's
//!   start until every grant is verified revoked, against the raw durable SQLite commits
//!   the same number of revocations needs (two each: started, verified), in the same run.
//!
//! cargo bench -p writ-engine --bench jml
//! WRIT_BENCH_GRANTS (default 100000), WRIT_BENCH_LEAVER_GRANTS (default 1000),
//! WRIT_BENCH_RUNS (default 3) runs per measure, median reported.
//!
//! The 100k grants are written straight into SQLite as `active` rows with their
//! requests, copied from one made through the engine (ids changed): making them through
//! the API would measure request throughput instead. The leaver's grants are made
//! through the engine.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use common::{env_number, median, raw_commit_rate};
use writ_config::Config;
use writ_connectors::{Connectors, NoopConnector};
use writ_domain::{Clock, Grant, IdentityKind, Request};
use writ_engine::{Caller, Engine, NewRequest, Occasion, Scheduler, SystemClock};
use writ_policy::{PolicyEngine, RequestFacts};
use writ_store::Store;

const TARGETS: usize = 4;
const ENTITLEMENTS_PER_TARGET: usize = 250;
const LEAVERS: usize = 5;

/// A policy set of the usual shape: automatic low access for engineers (capped), high
/// access with an approval and a ticket-free justification, nothing for others.
const POLICY: &str = r#"
@id("engineers-low")
@max_duration("8h")
permit (principal in Group::"engineers", action == Action::"request", resource)
when { resource.sensitivity == "low" && context.subject in principal };

@id("engineers-high")
@approvals("1")
@max_duration("1h")
permit (principal in Group::"engineers", action == Action::"request", resource)
when { resource.sensitivity == "high" && context.justification != "" };

@id("contractors-never-critical")
forbid (principal in Group::"contractors", action == Action::"request", resource)
when { resource.sensitivity == "critical" };

@id("managers-approve")
permit (principal, action == Action::"approve", resource)
when { resource.subject has manager && principal == resource.subject.manager };
"#;

/// The same decisions with one more rule that changes none of them: a policy change
/// after which every grant is decided again and kept (the common case).
const POLICY_CHANGED: &str = r#"
@id("no-agents-critical")
forbid (principal, action == Action::"request", resource)
when { context.subject_kind == "agent" && resource.sensitivity == "critical" };
"#;

fn config(disabled: &[String]) -> String {
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
    text.push_str("[[user]]\nname = \"bob\"\ngroups = [\"engineers\"]\n\n");
    for l in 0..LEAVERS {
        let name = format!("leaver{l}");
        let off = if disabled.contains(&name) {
            "disabled = true\n"
        } else {
            ""
        };
        let _ = write!(
            text,
            "[[user]]\nname = \"{name}\"\ngroups = [\"engineers\"]\n{off}\n"
        );
    }
    text
}

fn engine(dir: &Path, store: &Store, disabled: &[String]) -> Arc<Engine> {
    let config = Config::from_toml(&dir.join("writ.toml"), &config(disabled)).expect("config");
    let policy = PolicyEngine::load(&dir.join("policies"), &config).expect("policy");
    let mut connectors = Connectors::default();
    for t in 0..TARGETS {
        connectors.insert(&format!("t{t}"), Arc::new(NoopConnector::default()));
    }
    Arc::new(Engine::new(
        Arc::new(config),
        Arc::new(policy),
        store.clone(),
        connectors,
        Arc::new(SystemClock),
    ))
}

fn caller(name: &str) -> Caller {
    Caller::new(name.parse().expect("name"), IdentityKind::User)
}

fn ask(entitlement: String) -> NewRequest {
    NewRequest {
        entitlement,
        duration_seconds: Some(8 * 3600),
        justification: "on-call rotation".into(),
        ..NewRequest::default()
    }
}

/// `count` active grants of bob, copies of one made through the engine.
async fn seed(url: &str, engine: &Engine, count: usize) {
    let made = engine
        .create_request(&caller("bob"), ask("t0/e0".into()))
        .await
        .expect("request");
    let grant_id = made.grant_id.expect("granted");
    let grant = engine.grant(grant_id).await.expect("grant");
    let raw = sqlx::SqlitePool::connect(url).await.expect("raw pool");
    let mut tx = raw.begin().await.expect("begin");
    for i in 0..count {
        let entitlement = format!(
            "t{}/e{}",
            i % TARGETS,
            (i / TARGETS) % ENTITLEMENTS_PER_TARGET
        );
        let request_id = format!("00000000-0000-7000-9000-{i:012}");
        let id = format!("00000000-0000-7000-8000-{i:012}");
        let mut request: Request = made.clone();
        request.id = request_id.parse().expect("id");
        request.entitlement = entitlement.parse().expect("entitlement");
        request.grant_id = Some(id.parse().expect("id"));
        let mut copy: Grant = grant.clone();
        copy.id = id.parse().expect("id");
        copy.request_id = request.id;
        copy.entitlement = request.entitlement.clone();
        sqlx::query("INSERT INTO requests (id, state, requester, subject, entitlement, created_at_us, doc) VALUES ($1, 'approved', 'bob', 'bob', $2, $3, $4)")
            .bind(&request_id)
            .bind(&entitlement)
            .bind(request.created_at.unix_micros())
            .bind(serde_json::to_string(&request).expect("json"))
            .execute(&mut *tx)
            .await
            .expect("request row");
        sqlx::query("INSERT INTO grants (id, request_id, subject, entitlement, account, state, expires_at_us, doc) VALUES ($1, $2, 'bob', $3, 'bob', 'active', $4, $5)")
            .bind(&id)
            .bind(&request_id)
            .bind(&entitlement)
            .bind(copy.expires_at.unix_micros())
            .bind(serde_json::to_string(&copy).expect("json"))
            .execute(&mut *tx)
            .await
            .expect("grant row");
    }
    tx.commit().await.expect("commit");
    raw.close().await;
}

/// 100k raw decisions of the live grants' requests, as re-deciding makes them.
fn raw_decisions(policy: &PolicyEngine, live: &[(Grant, Request)]) -> f64 {
    let now = SystemClock.now();
    let started = Instant::now();
    let mut permitted = 0usize;
    for (grant, request) in live {
        let evaluation = policy.decide_request(&RequestFacts {
            requester: request.requester.as_str(),
            subject: grant.subject.as_str(),
            entitlement: grant.entitlement.as_str(),
            duration_seconds: grant.expires_at.millis_since(now) / 1000,
            justification: &request.justification,
            ticket: request.ticket.as_ref(),
            on_behalf_of: request.on_behalf_of.as_ref().map(|u| u.as_str()),
            actors: request.acting_agents(),
            holds: &request.holds,
            on_behalf_of_holds: &request.on_behalf_of_holds,
            effective: None,
            now,
        });
        permitted += usize::from(evaluation.value.outcome != writ_domain::DecisionOutcome::Deny);
    }
    assert_eq!(permitted, live.len(), "every grant stays permitted");
    started.elapsed().as_secs_f64()
}

async fn live_grants(store: &Store) -> Vec<(Grant, Request)> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .live_grants_with_requests(None, after, 1000)
            .await
            .expect("live grants");
        let Some((last, _)) = page.last() else {
            return all;
        };
        after = Some(last.id);
        all.extend(page);
    }
}

async fn count_revoked(url: &str, subject: &str) -> usize {
    let raw = sqlx::SqlitePool::connect(url).await.expect("raw pool");
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM grants WHERE subject = $1 AND state = 'revoked' AND doc LIKE '%\"verified_at\":\"%'",
    )
    .bind(subject)
    .fetch_one(&raw)
    .await
    .expect("count");
    raw.close().await;
    usize::try_from(n).unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let grants = env_number("WRIT_BENCH_GRANTS", 100_000);
    let leaver_grants = env_number("WRIT_BENCH_LEAVER_GRANTS", 1_000);
    let runs = env_number("WRIT_BENCH_RUNS", 3).min(LEAVERS);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("policies")).expect("policies");
    std::fs::write(dir.path().join("policies/p.cedar"), POLICY).expect("policy");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let store = Store::open(&url).await.expect("store");

    // Re-deciding every live grant after a policy change.
    let engine = engine(dir.path(), &store, &[]);
    seed(&url, &engine, grants - 1).await;
    let live = live_grants(&store).await;
    assert_eq!(live.len(), grants);
    std::fs::write(
        dir.path().join("policies/p.cedar"),
        format!("{POLICY}{POLICY_CHANGED}"),
    )
    .expect("policy");
    let admin = writ_domain::ledger::Actor::System(writ_domain::ledger::SystemActor::Signal);
    let reloaded = engine.reload_policy(&admin).await.expect("reload");
    assert_eq!(
        reloaded.redecided.map(|r| r.kept),
        Some(grants),
        "every grant kept"
    );
    let mut raw_seconds = Vec::new();
    let mut writ_seconds = Vec::new();
    for _ in 0..runs {
        raw_seconds.push(raw_decisions(&engine.policy(), &live));
        let started = Instant::now();
        let redecided = engine
            .redecide_grants(Occasion::PolicyReloaded, None)
            .await
            .expect("redecide");
        writ_seconds.push(started.elapsed().as_secs_f64());
        assert_eq!(redecided.kept, grants);
    }
    let (raw, writ) = (median(raw_seconds), median(writ_seconds));
    println!(
        "{grants} live grants decided again after a policy change: {writ:.2} s ({:.0}/s); {grants} raw decisions: {raw:.2} s ({:.0}/s); ratio {:.2}x",
        grants as f64 / writ,
        grants as f64 / raw,
        raw / writ
    );

    // A leaver holding `leaver_grants` active grants across the targets.
    let raw_rate = raw_commit_rate(dir.path(), 5).await;
    let mut leaver_seconds = Vec::new();
    for run in 0..runs {
        let name = format!("leaver{run}");
        let before = engine_with_leaver_grants(dir.path(), &store, &name, leaver_grants).await;
        drop(before);
        // writ starts with the leaver disabled in its configuration.
        let engine = self::engine(dir.path(), &store, std::slice::from_ref(&name));
        let started = Instant::now();
        engine.sweep_leavers().await.expect("sweep");
        while count_revoked(&url, &name).await < leaver_grants {
            // Revocations the sweep could not finish are the scheduler's to retry.
            Scheduler::new(engine.clone())
                .run_due()
                .await
                .expect("due jobs");
        }
        leaver_seconds.push(started.elapsed().as_secs_f64());
    }
    let leaver = median(leaver_seconds);
    let raw_leaver = 2.0 * leaver_grants as f64 / raw_rate;
    println!(
        "a leaver's {leaver_grants} active grants across {TARGETS} targets verified revoked in {leaver:.2} s ({:.0} grants/s); the {} raw durable commits they need: {raw_leaver:.2} s at {raw_rate:.0}/s; ratio {:.2}x",
        leaver_grants as f64 / leaver,
        2 * leaver_grants,
        raw_leaver / leaver
    );
    store.close().await;
}

/// The leaver's grants, made through the engine (and applied on the targets).
async fn engine_with_leaver_grants(
    dir: &Path,
    store: &Store,
    name: &str,
    count: usize,
) -> Arc<Engine> {
    let engine = engine(dir, store, &[]);
    for i in 0..count {
        let entitlement = format!(
            "t{}/e{}",
            i % TARGETS,
            (i / TARGETS) % ENTITLEMENTS_PER_TARGET
        );
        let request = engine
            .create_request(&caller(name), ask(entitlement))
            .await
            .expect("request");
        assert!(request.grant_id.is_some(), "granted");
    }
    engine
}
