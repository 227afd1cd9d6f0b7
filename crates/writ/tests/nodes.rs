//! Several `writ serve` nodes on one PostgreSQL database, changing a real PostgreSQL
//! target: thousands of grants with staggered short expiries, requested through every
//! node, while one node at a time is SIGKILLed at a random moment and restarted, over
//! and over. Afterwards: every grant was revoked and verified within its expiry plus
//! 5 s, no lifecycle event was recorded twice, every API call to a running node
//! succeeded, nothing is left on the target, and the ledger verifies.
//!
//! The run is seeded; the seed is printed, and `WRIT_NODES_SEED=<n>` replays it.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::chaos::{
    ENGINEERS_MAY_REQUEST, Rng, all_events, held, parse_time, pg_target_config, roles_and_accounts,
};
use support::{TestDatabase, Writ};
use tokio::sync::RwLock;

const NODES: usize = 3;
const USERS: usize = 24;
const ROLES: usize = 4;
const GRANTS: usize = 2_000;
/// Requests in flight at once, spread over the nodes.
const CLIENTS: usize = 8;
/// Leases last DURATION_MIN..DURATION_MIN + DURATION_SPREAD seconds.
const DURATION_MIN: u64 = 3;
const DURATION_SPREAD: u64 = 30;
/// A lease's access may outlive it by at most this much (the bound).
const GRACE_SECONDS: i64 = 5;

/// Every node shares the keys (a token issued on one is good on all) and the database.
fn config(storage: &str, roles: &[String], accounts: &[String]) -> String {
    format!(
        "[storage]\nurl = \"{storage}\"\n\n[keys]\ntoken_key = \"{}\"\nledger_key = \"{}\"\n\n{}",
        "1f".repeat(32),
        "2e".repeat(32),
        pg_target_config(roles, accounts, "off")
    )
}

/// A request through a running node (not one being killed); every call must succeed.
/// Returns the grant's id.
async fn request_on_some_node(
    nodes: &[Arc<RwLock<Writ>>],
    token: &str,
    body: &Value,
    pick: usize,
) -> String {
    loop {
        for offset in 0..nodes.len() {
            let Ok(node) = nodes[(pick + offset) % nodes.len()].try_read() else {
                continue;
            };
            let (status, request) = node.post("/v1/requests", token, body.clone()).await;
            assert_eq!(
                status,
                201,
                "a call to a running node failed: {request}\n{}",
                node.log()
            );
            return request["grant_id"].as_str().expect("granted").to_string();
        }
        // Every node is being restarted at this instant: wait for one.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_killed_at_random_moments_lose_no_revocation_and_record_each_change_once() {
    let (mut rng, seed) = Rng::from_env("WRIT_NODES_SEED", "nodes test");
    let database = TestDatabase::create().await;
    let (test_roles, roles, accounts) = roles_and_accounts(ROLES, USERS).await;
    let policy = ENGINEERS_MAY_REQUEST;
    let body = config(&database.url, &roles, &accounts);
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        let node = Writ::new(&body, &[("request.cedar", policy)]);
        node.set_server("rate_limit = \"off\"");
        nodes.push(node);
    }
    let tokens: Vec<String> = (0..USERS)
        .map(|i| nodes[0].token(&format!("u{i}")))
        .collect();
    let admin = nodes[0].admin_token();
    for node in &mut nodes {
        node.start().await;
    }
    let nodes: Vec<Arc<RwLock<Writ>>> = nodes
        .into_iter()
        .map(|n| Arc::new(RwLock::new(n)))
        .collect();

    // One node at a time: SIGKILL at a random moment, down for a while, restarted.
    let stop_chaos = Arc::new(AtomicBool::new(false));
    let chaos = {
        let (nodes, stop, mut rng) = (nodes.clone(), stop_chaos.clone(), Rng(rng.next()));
        tokio::spawn(async move {
            let mut kills = 0;
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(500 + rng.below(2_500))).await;
                let victim = usize::try_from(rng.below(NODES as u64)).unwrap_or(0);
                let mut node = nodes[victim].write().await;
                node.kill9();
                kills += 1;
                let down = Duration::from_millis(200 + rng.below(2_800));
                println!("node {victim} SIGKILLed; restarting in {down:?}");
                tokio::time::sleep(down).await;
                node.start().await;
            }
            kills
        })
    };

    // The load: grants with staggered expiries, each requested through some node.
    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (nodes, tokens, mut rng) = (nodes.clone(), tokens.clone(), Rng(rng.next()));
        clients.push(tokio::spawn(async move {
            let mut made = Vec::new();
            for _ in 0..GRANTS / CLIENTS {
                let user = usize::try_from(rng.below(USERS as u64)).unwrap_or(0);
                let body = json!({
                    "entitlement": format!("pg/r{}", rng.below(ROLES as u64)),
                    "justification": "nodes test",
                    "duration_seconds": DURATION_MIN + rng.below(DURATION_SPREAD),
                });
                let pick = usize::try_from(rng.below(NODES as u64)).unwrap_or(client);
                made.push(request_on_some_node(&nodes, &tokens[user], &body, pick).await);
            }
            made
        }));
    }
    let mut made = Vec::new();
    for client in clients {
        made.extend(client.await.expect("client"));
    }
    println!(
        "seed {seed}: {} grants requested through {NODES} nodes in {:?}",
        made.len(),
        started.elapsed()
    );
    // Keep killing while the leases run out.
    tokio::time::sleep(Duration::from_secs(DURATION_MIN + DURATION_SPREAD)).await;
    stop_chaos.store(true, Ordering::SeqCst);
    let kills = chaos.await.expect("chaos");

    // Every grant ends: revoked, verified, within its expiry plus the grace.
    let reader = nodes[0].read().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let events = loop {
        let events = all_events(&reader, &admin).await;
        let revoked = events
            .iter()
            .filter(|e| e["kind"] == "grant.revoked")
            .count();
        if revoked >= made.len() || Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut counts: std::collections::BTreeMap<(String, &str), usize> = Default::default();
    let mut revoked_events = std::collections::BTreeMap::new();
    for event in &events {
        let kind = event["kind"].as_str().unwrap_or_default();
        let record = if kind.starts_with("grant.") {
            &event["data"]["grant"]
        } else if kind.starts_with("request.") {
            &event["data"]["request"]
        } else {
            continue;
        };
        let id = record["id"].as_str().unwrap_or_default().to_string();
        *counts.entry((id.clone(), kind_name(kind))).or_default() += 1;
        if kind == "grant.revoked" {
            revoked_events.insert(id, record.clone());
        }
    }
    let mut late = Vec::new();
    let mut worst_lag = time::Duration::ZERO;
    for grant in &made {
        for kind in [
            "grant.created",
            "grant.activated",
            "grant.revoke_started",
            "grant.revoked",
        ] {
            assert_eq!(
                counts.get(&(grant.clone(), kind)).copied(),
                Some(1),
                "seed {seed}: grant {grant} has {kind} {:?} times",
                counts.get(&(grant.clone(), kind))
            );
        }
        let record = &revoked_events[grant];
        let expires = record["expires_at"]
            .as_str()
            .and_then(parse_time)
            .expect("expires_at");
        let verified = record["verified_at"]
            .as_str()
            .and_then(parse_time)
            .expect("verified_at");
        let lag = verified - expires;
        worst_lag = worst_lag.max(lag);
        if lag > time::Duration::seconds(GRACE_SECONDS) {
            late.push((grant.clone(), lag));
        }
    }
    let requests_created = counts
        .iter()
        .filter(|((_, kind), _)| *kind == "request.created")
        .collect::<Vec<_>>();
    assert_eq!(requests_created.len(), made.len(), "seed {seed}");
    assert!(
        requests_created.iter().all(|(_, n)| **n == 1),
        "seed {seed}: a request recorded twice"
    );
    assert!(
        late.is_empty(),
        "seed {seed}: {} grants verified revoked later than expiry + {GRACE_SECONDS}s: {:?}",
        late.len(),
        &late[..late.len().min(10)]
    );
    assert!(
        held(&roles, &accounts).await.is_empty(),
        "seed {seed}: roles still held on the target"
    );
    println!(
        "seed {seed}: {} grants, {kills} SIGKILLs, all revoked once; worst lag after expiry {worst_lag}",
        made.len()
    );
    let verify = reader.run(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "seed {seed}: {}",
        support::stderr(&verify)
    );
    drop(reader);
    for node in &nodes {
        node.write().await.stop();
    }
    test_roles.cleanup().await;
    database.drop_now().await;
}

/// The ledger's kinds this test counts, as static names.
fn kind_name(kind: &str) -> &'static str {
    match kind {
        "grant.created" => "grant.created",
        "grant.activated" => "grant.activated",
        "grant.revoke_started" => "grant.revoke_started",
        "grant.revoked" => "grant.revoked",
        "request.created" => "request.created",
        _ => "other",
    }
}

const SCIM_SECRET: &str = "scim-secret-0123456789abcdef0123456789";

/// `/scim/v2` on `node`, as the identity provider.
async fn scim(node: &Writ, method: reqwest::Method, path: &str, body: Value) -> Value {
    let (status, answer) = node
        .call(
            method,
            &format!("/scim/v2{path}"),
            Some(SCIM_SECRET),
            Some(body),
        )
        .await;
    assert!((200..300).contains(&status), "{status}: {answer}");
    answer
}

/// Polls `node` until a request by `token` answers `wanted`; the last answer.
async fn request_until(node: &Writ, token: &str, wanted: u16) -> (u16, Value) {
    let body = json!({"entitlement": "t/read", "justification": "j", "duration_seconds": 600});
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, answer) = node.post("/v1/requests", token, body.clone()).await;
        if status == wanted || Instant::now() > deadline {
            return (status, answer);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The identity provider talks to one node; every node decides with what it said:
/// a joiner pushed through one node may ask through another within seconds, and a
/// leaver pushed through one is refused by the other.
#[tokio::test]
async fn a_directory_change_made_through_one_node_is_in_force_on_the_others() {
    let database = TestDatabase::create().await;
    let config = format!(
        "[storage]\nurl = \"{}\"\n\n[keys]\ntoken_key = \"{}\"\nledger_key = \"{}\"\n\n\
         [[target]]\nname = \"t\"\nkind = \"noop\"\n\n\
         [[entitlement]]\nid = \"t/read\"\ntarget = \"t\"\nrole = \"read\"\nsensitivity = \"low\"\nmax_duration = \"1h\"\n\n\
         [[scim]]\nname = \"okta\"\ntoken = \"{SCIM_SECRET}\"\n",
        database.url,
        "1f".repeat(32),
        "2e".repeat(32),
    );
    let policy = ENGINEERS_MAY_REQUEST;
    let mut a = Writ::new(&config, &[("request.cedar", policy)]);
    let mut b = Writ::new(&config, &[("request.cedar", policy)]);
    a.start().await;
    b.start().await;

    // A joiner, pushed through node a, asks through node b.
    let user = scim(
        &a,
        reqwest::Method::POST,
        "/Users",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "dana", "active": true}),
    )
    .await;
    let id = user["id"].as_str().expect("id").to_string();
    scim(
        &a,
        reqwest::Method::POST,
        "/Groups",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "engineers", "members": [{"value": id}]}),
    )
    .await;
    let dana = b.token("dana");
    let (status, request) = request_until(&b, &dana, 201).await;
    assert_eq!(status, 201, "{request}\n{}", b.log());
    assert_eq!(request["state"], "approved", "{request}");

    // A leaver, pushed through node a, is refused by node b.
    scim(
        &a,
        reqwest::Method::PATCH,
        &format!("/Users/{id}"),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "replace", "path": "active", "value": false}]}),
    )
    .await;
    let (status, refused) = request_until(&b, &dana, 401).await;
    assert_eq!(status, 401, "{refused}\n{}", b.log());
    a.stop();
    b.stop();
    let verify = a.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", support::stderr(&verify));
    database.drop_now().await;
}
