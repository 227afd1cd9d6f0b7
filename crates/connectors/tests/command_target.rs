//! The command connector, driving real programs.

use std::path::PathBuf;

use writ_connectors::{Access, CommandConnector, Connector, ConnectorError};

fn script(dir: &tempfile::TempDir, body: &str) -> PathBuf {
    let path = dir.path().join("connector.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    let mut permissions = std::fs::metadata(&path).expect("metadata").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&path, permissions).expect("chmod");
    path
}

const MEMBERSHIP_SCRIPT: &str = r#"
state="$(dirname "$0")/held"
touch "$state"
line="$WRIT_ROLE $WRIT_ACCOUNT"
case "$WRIT_ACTION" in
  grant) grep -qxF "$line" "$state" || echo "$line" >> "$state" ;;
  revoke) grep -vxF "$line" "$state" > "$state.new"; mv "$state.new" "$state" ;;
  check) if grep -qxF "$line" "$state"; then echo '{"held": true}'; else echo '{"held": false}'; fi ;;
  list) awk -v role="$WRIT_ROLE" 'BEGIN { printf "{\"accounts\": [" } $1 == role { printf "%s\"%s\"", (n++ ? ", " : ""), $2 } END { print "]}" }' "$state" ;;
  *) echo "unknown action $WRIT_ACTION" >&2; exit 2 ;;
esac
"#;

#[tokio::test]
async fn runs_the_documented_protocol() {
    let dir = tempfile::tempdir().expect("tempdir");
    let connector = CommandConnector::new("files", script(&dir, MEMBERSHIP_SCRIPT), vec![], 5);
    let access = Access {
        role: "readers",
        account: "alice",
    };
    assert!(!connector.holds(access).await.expect("check"));
    connector.grant(access).await.expect("grant");
    assert!(connector.holds(access).await.expect("check"));
    let other = Access {
        role: "readers",
        account: "bob",
    };
    connector.grant(other).await.expect("grant");
    let mut members = connector.members("readers").await.expect("list");
    members.sort();
    assert_eq!(members, ["alice", "bob"]);
    assert!(connector.members("writers").await.expect("list").is_empty());
    connector.revoke(access).await.expect("revoke");
    assert!(!connector.holds(access).await.expect("check"));
    assert_eq!(connector.members("readers").await.expect("list"), ["bob"]);
}

#[tokio::test]
async fn the_document_on_stdin_names_the_action_and_access() {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("stdin.json");
    let connector = CommandConnector::new(
        "files",
        script(&dir, &format!("cat > '{}'", copy.display())),
        vec![],
        5,
    );
    connector
        .grant(Access {
            role: "r\"1",
            account: "a b",
        })
        .await
        .expect("grant");
    let seen: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(copy).expect("copy")).expect("JSON");
    assert_eq!(
        seen,
        serde_json::json!({"action": "grant", "target": "files", "role": "r\"1", "account": "a b"})
    );
}

#[tokio::test]
async fn failures_carry_stderr_and_timeouts_are_unknown_outcomes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let failing = CommandConnector::new(
        "files",
        script(&dir, "echo 'directory unavailable' >&2; exit 3"),
        vec![],
        5,
    );
    let result = failing
        .grant(Access {
            role: "r",
            account: "a",
        })
        .await;
    assert!(
        matches!(&result, Err(ConnectorError::Failed(m)) if m.contains("status 3") && m.contains("directory unavailable")),
        "{result:?}"
    );

    let slow_dir = tempfile::tempdir().expect("tempdir");
    let slow = CommandConnector::new("files", script(&slow_dir, "sleep 30"), vec![], 1);
    let started = std::time::Instant::now();
    let result = slow
        .revoke(Access {
            role: "r",
            account: "a",
        })
        .await;
    assert!(
        matches!(result, Err(ConnectorError::Unknown(_))),
        "{result:?}"
    );
    assert!(started.elapsed().as_secs() < 10);

    let garbled = CommandConnector::new("files", script(&dir, "echo yes"), vec![], 5);
    assert!(matches!(
        garbled
            .holds(Access {
                role: "r",
                account: "a"
            })
            .await,
        Err(ConnectorError::Failed(_))
    ));
}

/// The program sees none of writ's environment unless the configuration names it.
/// (cargo sets CARGO_PKG_NAME for this test process, so writ has it to leak.)
#[tokio::test]
async fn the_program_gets_a_cleared_environment_plus_what_is_allowed() {
    assert!(
        std::env::var_os("CARGO_PKG_NAME").is_some(),
        "cargo sets it"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let body = r#"if [ -n "${CARGO_PKG_NAME:-}" ]; then echo '{"held": true}'; else echo '{"held": false}'; fi"#;
    let access = Access {
        role: "r",
        account: "a",
    };
    let cleared = CommandConnector::new("files", script(&dir, body), vec![], 5);
    assert!(
        !cleared.holds(access).await.expect("check"),
        "not passed through"
    );
    let allowed = CommandConnector::new("files", script(&dir, body), vec![], 5)
        .with_env(vec!["CARGO_PKG_NAME".into()]);
    assert!(
        allowed.holds(access).await.expect("check"),
        "passed when allowed"
    );
    // PATH is set, so ordinary tools are found.
    let tools = CommandConnector::new(
        "files",
        script(&dir, r#"printf '{"held": %s}' "$(echo true | tr -d '\n')""#),
        vec![],
        5,
    );
    assert!(tools.holds(access).await.expect("check"));
}

/// A program that prints without end is not read into memory without end.
#[tokio::test]
async fn output_beyond_the_bound_is_refused_not_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let noisy = CommandConnector::new(
        "files",
        script(&dir, "head -c 3000000 /dev/zero | tr '\\0' 'x'"),
        vec![],
        10,
    );
    let error = noisy
        .holds(Access {
            role: "r",
            account: "a",
        })
        .await
        .expect_err("too much");
    assert!(
        matches!(&error, ConnectorError::Failed(m) if m.contains("printed more than 1048576 bytes")),
        "{error}"
    );
}

/// A timeout ends what the program started too, not just the program.
#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("grandchild.pid");
    let slow = CommandConnector::new(
        "files",
        script(
            &dir,
            &format!("sleep 60 & echo $! > '{}'; wait", pid_file.display()),
        ),
        vec![],
        1,
    );
    let error = slow
        .grant(Access {
            role: "r",
            account: "a",
        })
        .await
        .expect_err("timed out");
    assert!(matches!(error, ConnectorError::Unknown(_)), "{error}");
    let pid = std::fs::read_to_string(&pid_file)
        .expect("pid")
        .trim()
        .to_string();
    let gone = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        // A killed child not yet reaped is a zombie: as good as gone.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |stat| stat.split_whitespace().nth(2) == Some("Z"))
    });
    assert!(gone, "the grandchild {pid} outlived the timeout");
}
