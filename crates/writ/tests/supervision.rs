//! Revocation never stops quietly: a target whose error text would once have panicked
//! the scheduler (600 bytes of three-byte characters, cut at byte 500) leaves every
//! background task running, other leases still expire on time, and `/healthz` says ok.

mod support;

use writ_domain::lifecycle::GrantState;

use std::time::Duration;

use serde_json::json;
use support::Writ;

const CONFIG: &str = r#"
[storage]
url = "sqlite://writ.db"

[[target]]
name = "files"
kind = "command"
command = "./target.sh"

[[target]]
name = "broken"
kind = "command"
command = "./target.sh"

[[entitlement]]
id = "broken/bad"
target = "broken"
role = "bad"
sensitivity = "low"
max_duration = "1h"

[[entitlement]]
id = "files/good"
target = "files"
role = "good"
sensitivity = "low"
max_duration = "1h"

[[user]]
name = "alice"
"#;

const POLICY: &str = r#"permit (principal, action == Action::"request", resource);"#;

/// Fails every call on role `bad` with 600 bytes of "€" on stderr; keeps the rest in a file.
const SCRIPT: &str = r#"#!/bin/sh
set -eu
state="$(dirname "$0")/memberships.txt"
touch "$state"
line="$WRIT_ROLE $WRIT_ACCOUNT"
if [ "$WRIT_ROLE" = bad ]; then
  i=0; while [ $i -lt 200 ]; do printf '€' >&2; i=$((i+1)); done
  exit 1
fi
case "$WRIT_ACTION" in
  grant) grep -qxF "$line" "$state" || echo "$line" >> "$state" ;;
  revoke) grep -vxF "$line" "$state" > "$state.tmp" || true; mv "$state.tmp" "$state" ;;
  check) if grep -qxF "$line" "$state"; then echo '{"held": true}'; else echo '{"held": false}'; fi ;;
  list) echo '{"accounts": []}' ;;
esac
"#;

#[tokio::test]
async fn a_target_error_that_splits_a_character_stops_nothing() {
    let mut writ = Writ::new(CONFIG, &[("p.cedar", POLICY)]);
    let script = writ.path("target.sh");
    std::fs::write(&script, SCRIPT).expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    writ.start().await;
    let alice = writ.token("alice");

    // The inline attempt fails with the long error, and answers all the same.
    let (status, bad) = writ
        .post(
            "/v1/requests",
            &alice,
            json!({ "entitlement": "broken/bad", "justification": "x" }),
        )
        .await;
    assert_eq!(status, 201, "{bad}");
    let bad_grant = bad["grant_id"].as_str().expect("grant").to_string();

    // A lease that expires after the scheduler has retried the bad one (its apply job
    // is due 10 s after the request) must still be revoked on time.
    let (status, good) = writ
        .post(
            "/v1/requests",
            &alice,
            json!({ "entitlement": "files/good", "justification": "x", "duration_seconds": 14 }),
        )
        .await;
    assert_eq!(status, 201, "{good}");
    let good_grant = good["grant_id"].as_str().expect("grant").to_string();
    let revoked = writ
        .wait_for_grant_state(
            good_grant.parse().expect("grant id"),
            &alice,
            Duration::from_secs(45),
            GrantState::Revoked,
        )
        .await;
    assert_eq!(
        revoked.grant.state,
        GrantState::Revoked,
        "{revoked:?}\n{}",
        writ.log()
    );

    let (_, bad) = writ.get(&format!("/v1/grants/{bad_grant}"), &alice).await;
    // Tried inline and again by the scheduler, each time failing with the long text.
    assert!(bad["attempts"].as_i64() >= Some(2), "{bad}");
    assert!(
        writ.log().contains("exited with status 1: €€€"),
        "{}",
        writ.log()
    );
    assert!(!writ.log().contains("panicked"), "{}", writ.log());

    let health = writ
        .http
        .get(format!("{}/healthz", writ.base()))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
}
