//! Crashes end to end: many grants with short random expiries and early revocations
//! against a real PostgreSQL target, while the server is killed with SIGKILL at random
//! moments over several rounds. After the last restart: nothing is held past expiry,
//! every held role is explained by a live grant, each grant was revoked exactly once on
//! the ledger, and the ledger verifies.
//!
//! The run is seeded; the seed is printed, and `WRIT_CRASH_SEED=<n>` replays it.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Writ;
use support::chaos::{
    ENGINEERS_MAY_REQUEST, Rng, all_events, grant_event_counts, held, parse_time, pg_target_config,
    roles_and_accounts,
};

const USERS: usize = 6;
const ROLES: usize = 3;
const ROUNDS: usize = 6;
/// Leases last 1..=MAX_DURATION seconds.
const MAX_DURATION: u64 = 3;
/// Requests per client per round (each user's grants must fit one page of the list).
const REQUESTS_PER_CLIENT: usize = 150;
/// Access may outlive its lease by at most this much (the bound).
const GRACE_SECONDS: i64 = 5;

/// One round of load: requests with random durations and some early revocations, for
/// `for_how_long`, from a few concurrent clients. Errors (the server dying) are expected.
async fn load(writ: &Writ, tokens: &[String], seed: u64, for_how_long: Duration) {
    let deadline = Instant::now() + for_how_long;
    let mut clients = Vec::new();
    for client in 0..4u64 {
        let (http, base, tokens) = (writ.http.clone(), writ.base(), tokens.to_vec());
        let mut rng = Rng(seed ^ (client + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        clients.push(tokio::spawn(async move {
            let mut granted: Vec<(usize, String)> = Vec::new();
            let mut requested = 0;
            while Instant::now() < deadline && requested < REQUESTS_PER_CLIENT {
                let user = usize::try_from(rng.below(USERS as u64)).unwrap_or(0);
                if rng.below(4) == 0 && !granted.is_empty() {
                    let index = usize::try_from(rng.below(granted.len() as u64)).unwrap_or(0);
                    let (owner, grant) = granted.swap_remove(index);
                    let _ = http
                        .post(format!("{base}/v1/grants/{grant}/revoke"))
                        .bearer_auth(&tokens[owner])
                        .json(&json!({ "reason": "done early" }))
                        .send()
                        .await;
                    continue;
                }
                let body = json!({
                    "entitlement": format!("pg/r{}", rng.below(ROLES as u64)),
                    "justification": "crash test",
                    "duration_seconds": 1 + rng.below(MAX_DURATION),
                });
                requested += 1;
                let Ok(response) = http
                    .post(format!("{base}/v1/requests"))
                    .bearer_auth(&tokens[user])
                    .json(&body)
                    .send()
                    .await
                else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                if let Ok(request) = response.json::<Value>().await
                    && let Some(grant) = request["grant_id"].as_str()
                {
                    granted.push((user, grant.to_string()));
                }
            }
        }));
    }
    for client in clients {
        let _ = client.await;
    }
}

#[tokio::test]
async fn sigkill_at_random_moments_loses_no_revocation() {
    let (mut rng, seed) = Rng::from_env("WRIT_CRASH_SEED", "crash test");

    let (test_roles, roles, accounts) = roles_and_accounts(ROLES, USERS).await;
    let policy = ENGINEERS_MAY_REQUEST;
    let mut writ = Writ::new(
        &pg_target_config(&roles, &accounts, "1h"),
        &[("request.cedar", policy)],
    );
    let tokens: Vec<String> = (0..USERS).map(|i| writ.token(&format!("u{i}"))).collect();

    for round in 0..ROUNDS {
        writ.start().await;
        let kill_after = Duration::from_millis(300 + rng.below(1700));
        println!("round {round}: SIGKILL after {kill_after:?}");
        load(&writ, &tokens, rng.next(), kill_after).await;
        writ.kill9();
    }

    // The last restart: writ catches up; wait until every grant has ended.
    writ.start().await;
    let admin = &writ.admin_token();
    let deadline = Instant::now() + Duration::from_secs(60);
    let grants = loop {
        // One page per user keeps each listing under the API's 1,000-row cap.
        let mut grants = Vec::new();
        for user in 0..USERS {
            let (status, list) = writ
                .get(&format!("/v1/grants?subject=u{user}&limit=1000"), admin)
                .await;
            assert_eq!(status, 200, "{list}");
            let page = list["grants"].as_array().cloned().unwrap_or_default();
            assert!(
                page.len() < 1000,
                "seed {seed}: u{user} has a full page of grants; page further"
            );
            grants.extend(page);
        }
        // Meanwhile: nothing is held past its lease (plus the grace), and every held
        // role is explained by a grant that may still hold it.
        let now = time::OffsetDateTime::now_utc();
        let held_now = held(&roles, &accounts).await;
        for (role, account) in &held_now {
            let explained = grants.iter().any(|g| {
                let role_index = roles.iter().position(|r| r == role).unwrap_or(usize::MAX);
                g["account"] == account.as_str()
                    && g["entitlement"] == format!("pg/r{role_index}")
                    && g["state"] != "revoked"
                    && g["expires_at"]
                        .as_str()
                        .and_then(parse_time)
                        .is_some_and(|end| end + time::Duration::seconds(GRACE_SECONDS) > now)
            });
            assert!(
                explained,
                "seed {seed}: {account} holds {role} with no live lease: {grants:?}"
            );
        }
        if grants.iter().all(|g| g["state"] == "revoked") || Instant::now() > deadline {
            break grants;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(!grants.is_empty(), "seed {seed}: the load made grants");
    let unfinished: Vec<&Value> = grants.iter().filter(|g| g["state"] != "revoked").collect();
    assert!(
        unfinished.is_empty(),
        "seed {seed}: grants not revoked: {unfinished:?}"
    );
    assert!(
        held(&roles, &accounts).await.is_empty(),
        "seed {seed}: roles still held"
    );

    // Exactly one `grant.revoked` per grant, and the ledger verifies.
    let counts = grant_event_counts(&all_events(&writ, admin).await);
    for grant in &grants {
        let id = grant["id"].as_str().unwrap_or_default();
        let revoked = counts.get(&(id.to_string(), "grant.revoked".to_string()));
        assert_eq!(
            revoked,
            Some(&1),
            "seed {seed}: grant {id} revoked {revoked:?} times"
        );
    }
    println!(
        "seed {seed}: {} grants over {ROUNDS} crashes, all revoked once",
        grants.len()
    );
    let verify = writ.run(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "seed {seed}: {}",
        support::stderr(&verify)
    );
    writ.stop();
    test_roles.cleanup().await;
}
