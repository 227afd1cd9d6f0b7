//! Property test over random operation sequences: whatever happens, after the
//! scheduler runs no grant is active past its expiry, the target holds exactly what
//! active grants cover, every state change has exactly one ledger event, and the
//! ledger verifies.

mod harness;

use std::collections::HashMap;

use harness::{Harness, Storage, caller};
use proptest::prelude::*;
use writ_domain::lifecycle::GrantState;
use writ_engine::NewRequest;
use writ_store::GrantFilter;

#[derive(Debug, Clone)]
enum Op {
    Request {
        user: usize,
        high: bool,
        seconds: i64,
    },
    Approve {
        pick: usize,
    },
    Revoke {
        pick: usize,
    },
    Advance {
        seconds: i64,
    },
    TargetDown(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize, any::<bool>(), 1..120i64).prop_map(|(user, high, seconds)| Op::Request { user, high, seconds }),
        2 => any::<usize>().prop_map(|pick| Op::Approve { pick }),
        2 => any::<usize>().prop_map(|pick| Op::Revoke { pick }),
        3 => (1..90i64).prop_map(|seconds| Op::Advance { seconds }),
        1 => any::<bool>().prop_map(Op::TargetDown),
    ]
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let h = Harness::new(Storage::Sqlite).await;
    let users = ["alice", "bob"];
    let mut requests = Vec::new();
    for op in ops {
        match op {
            Op::Request {
                user,
                high,
                seconds,
            } => {
                let entitlement = if high { "t/high" } else { "t/low" };
                let new = NewRequest {
                    entitlement: entitlement.into(),
                    duration_seconds: Some(seconds),
                    justification: "p".into(),
                    ..NewRequest::default()
                };
                let request = h
                    .engine
                    .create_request(&caller(users[user]), new)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                requests.push(request.id);
            }
            Op::Approve { pick } if !requests.is_empty() => {
                let _ = h
                    .engine
                    .approve(
                        &caller("dave"),
                        requests[pick % requests.len()],
                        String::new(),
                    )
                    .await;
            }
            Op::Revoke { pick } => {
                let grants = h
                    .engine
                    .grants(GrantFilter::default())
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?
                    .items;
                if !grants.is_empty() {
                    let grant = &grants[pick % grants.len()];
                    let _ = h
                        .engine
                        .revoke_grant(&caller(grant.subject.as_str()), grant.id, String::new())
                        .await;
                }
            }
            Op::Advance { seconds } => h.advance(seconds).await,
            Op::TargetDown(down) => h
                .target
                .down
                .store(down, std::sync::atomic::Ordering::SeqCst),
            Op::Approve { .. } => {}
        }
    }
    // Let the target recover and the scheduler catch up with every retry.
    h.target
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    for _ in 0..4 {
        h.advance(8).await;
    }

    let now = writ_domain::Clock::now(h.clock.as_ref());
    let grants = h
        .engine
        .grants(GrantFilter::default())
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?
        .items;
    let mut covered: HashMap<(String, String), bool> = HashMap::new();
    for grant in &grants {
        prop_assert!(
            !(grant.state.may_hold_access() && grant.expires_at <= now),
            "grant {} is {} past its expiry",
            grant.id,
            grant.state
        );
        prop_assert!(
            matches!(grant.state, GrantState::Active | GrantState::Revoked),
            "grant {} stuck in {}",
            grant.id,
            grant.state
        );
        let role = grant
            .entitlement
            .as_str()
            .trim_start_matches("t/")
            .to_string();
        *covered.entry((role, grant.account.clone())).or_default() |=
            grant.state == GrantState::Active;
    }
    for ((role, account), active) in &covered {
        prop_assert_eq!(
            h.target.holds_now(role, account),
            *active,
            "target holds {} for {} but active={}",
            role,
            account,
            active
        );
    }

    // One event per state change: replay (inside verify) checks each transition; here we
    // count that each grant has exactly one event per state it went through.
    let events = h
        .store
        .events(0, 100_000)
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    for grant in &grants {
        let id = grant.id.to_string();
        let kinds: Vec<&str> = events
            .iter()
            .filter(|e| {
                e.data.contains(&format!("\"id\":\"{id}\""))
                    && e.kind.as_str().starts_with("grant.")
            })
            .map(|e| e.kind.as_str())
            .collect();
        let count = |kind: &str| kinds.iter().filter(|k| **k == kind).count();
        prop_assert_eq!(count("grant.created"), 1);
        prop_assert_eq!(
            count("grant.activated"),
            usize::from(grant.granted_at.is_some())
        );
        if grant.state == GrantState::Revoked {
            prop_assert_eq!(count("grant.revoke_started"), 1);
            prop_assert_eq!(count("grant.revoked"), 1);
        }
    }
    h.store
        .verify()
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    h.finish().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn leases_end_on_time_and_every_change_is_ledgered(ops in prop::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| TestCaseError::fail(e.to_string()))?;
        runtime.block_on(run(ops))?;
    }
}
