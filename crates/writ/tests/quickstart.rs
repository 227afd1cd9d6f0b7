//! The README's first command works: `writ init` writes the quickstart, it validates,
//! serves, and the CLI walks a request through it.

mod support;

use std::process::Command;

use support::{free_port, stderr, stdout, writ_binary};

fn writ(dir: &std::path::Path, args: &[&str], token: Option<&str>) -> std::process::Output {
    let mut command = Command::new(writ_binary());
    command
        .args(args)
        .arg("--config")
        .arg(dir.join("writ.toml"))
        .env_remove("WRIT_SERVER")
        .env_remove("WRIT_TOKEN");
    if let Some(token) = token {
        command.env("WRIT_TOKEN", token);
    }
    command.output().expect("run writ")
}

#[tokio::test]
async fn init_then_serve_then_request_from_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(writ_binary())
        .arg("init")
        .arg(dir.path())
        .output()
        .expect("init");
    assert!(output.status.success(), "{}", stderr(&output));
    let again = Command::new(writ_binary())
        .arg("init")
        .arg(dir.path())
        .output()
        .expect("init");
    assert!(!again.status.success(), "init must never overwrite");

    // The committed quickstart and `writ init` are the same files.
    let committed = manifest_dir().join("../../examples/quickstart/writ.toml");
    assert_eq!(
        std::fs::read_to_string(committed).expect("quickstart"),
        std::fs::read_to_string(dir.path().join("writ.toml")).expect("init")
    );

    let port = free_port();
    let config = std::fs::read_to_string(dir.path().join("writ.toml"))
        .expect("config")
        .replace("127.0.0.1:7070", &format!("127.0.0.1:{port}"));
    std::fs::write(dir.path().join("writ.toml"), config).expect("write");

    let check = writ(dir.path(), &["policy", "check"], None);
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(stdout(&check).contains("5 policies"), "{}", stdout(&check));

    let mut server = Command::new(writ_binary())
        .args(["serve", "--config"])
        .arg(dir.path().join("writ.toml"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve");
    writ_itsm::install_crypto_provider();
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "quickstart server did not start");

    let token = stdout(&writ(dir.path(), &["token", "issue", "alice"], None))
        .trim()
        .to_string();
    let output = writ(
        dir.path(),
        &[
            "request",
            "files/reports_read",
            "--duration",
            "30m",
            "-j",
            "monthly report",
        ],
        Some(&token),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("approved"), "{}", stdout(&output));
    let memberships =
        std::fs::read_to_string(dir.path().join("state/memberships.txt")).unwrap_or_default();
    assert_eq!(memberships.trim(), "reports_read alice");

    let output = writ(dir.path(), &["grants", "--json"], Some(&token));
    let grants: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(grants["grants"][0]["state"], "active");

    // An agent is never given high-sensitivity access, whoever asks.
    let bob = stdout(&writ(dir.path(), &["token", "issue", "bob"], None))
        .trim()
        .to_string();
    let output = writ(
        dir.path(),
        &[
            "request",
            "files/prod_admin",
            "--for",
            "agent-triage",
            "-j",
            "triage",
            "--ticket",
            "jira:OPS-9",
            "--json",
        ],
        Some(&bob),
    );
    let denied: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(denied["state"], "denied");
    assert_eq!(
        denied["decision"]["reasons"],
        serde_json::json!(["AI agents may not hold high or critical access"])
    );

    // Someone edits the target by hand: reconciliation (the script's `list`) finds it,
    // and an owner of prod_admin (carol, sre-leads) accepts it for a week.
    let mut memberships =
        std::fs::read_to_string(dir.path().join("state/memberships.txt")).unwrap_or_default();
    memberships.push_str("prod_admin mallory\n");
    std::fs::write(dir.path().join("state/memberships.txt"), memberships).expect("edit by hand");
    let erin = stdout(&writ(dir.path(), &["token", "issue", "erin"], None))
        .trim()
        .to_string();
    let output = writ(dir.path(), &["reconcile"], Some(&erin));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("1 findings opened, 0 resolved, 1 unresolved"),
        "{}",
        stdout(&output)
    );
    let output = writ(dir.path(), &["findings", "--json"], Some(&erin));
    let findings: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let finding = &findings["findings"][0];
    assert_eq!(
        (&finding["account"], &finding["kind"]),
        (
            &serde_json::json!("mallory"),
            &serde_json::json!("unmanaged")
        )
    );
    let carol = stdout(&writ(dir.path(), &["token", "issue", "carol"], None))
        .trim()
        .to_string();
    let id = finding["id"].as_str().expect("id");
    let output = writ(
        dir.path(),
        &[
            "findings",
            "accept",
            id,
            "--owner",
            "carol",
            "--reason",
            "vendor access, OPS-50",
            "--expires",
            "7d",
        ],
        Some(&carol),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("accepted"), "{}", stdout(&output));

    let _ = server.kill();
    let _ = server.wait();
    let verify = writ(dir.path(), &["audit", "verify"], None);
    assert!(verify.status.success(), "{}", stderr(&verify));
    assert!(
        stdout(&verify).starts_with("ledger intact"),
        "{}",
        stdout(&verify)
    );
}

/// Read at run time, not baked in at build time: a build shared between two checkouts
/// (one target directory) must read the files of the checkout under test.
fn manifest_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
}
