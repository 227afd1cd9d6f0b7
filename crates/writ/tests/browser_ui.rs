//! The web UI in a real browser: Debian's Chromium driven by playwright-core
//! (`tests/browser/ui_flow.mjs`) through the core flow with two people, a denial,
//! self-approval refused and JavaScript switched off, with axe-core on every page and
//! screenshots at desktop and phone widths in `target/ui-screenshots` (or
//! `WRIT_SCREENSHOTS`). Required when `WRIT_CHROMIUM` is set (`.ci/run` sets it);
//! skipped, and said so, without Chromium or the npm packages.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::Writ;
use support::ui::{CONFIG, POLICIES};

fn browser_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let installed = dir.join("node_modules/playwright-core").exists()
        && dir.join("node_modules/axe-core").exists();
    let required = std::env::var_os("WRIT_CHROMIUM").is_some();
    assert!(
        installed || !required,
        "WRIT_CHROMIUM is set but {} has no node_modules: run npm ci there",
        dir.display()
    );
    if !installed {
        eprintln!(
            "browser: {} has no node_modules (npm ci there): skipped",
            dir.display()
        );
    }
    installed.then_some(dir)
}

fn chromium() -> Option<String> {
    let path = std::env::var("WRIT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if std::path::Path::new(&path).exists() {
        Some(path)
    } else {
        eprintln!("browser: no Chromium at {path} (apt-get install chromium): skipped");
        None
    }
}

fn screenshots() -> PathBuf {
    std::env::var_os("WRIT_SCREENSHOTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots"),
        PathBuf::from,
    )
}

#[tokio::test]
async fn the_core_flow_in_chromium_is_accessible_with_and_without_javascript() {
    let (Some(dir), Some(chromium)) = (browser_dir(), chromium()) else {
        return;
    };
    let mut writ = Writ::new(CONFIG, POLICIES);
    writ.set_server("rate_limit = \"off\"");
    writ.start().await;
    // The script's output goes to a file (Chromium's helpers may keep a pipe open
    // after it exits), and it gets five minutes.
    let log_path = writ.path("browser.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut node = Command::new("node")
        .arg(dir.join("ui_flow.mjs"))
        .current_dir(&dir)
        .env("WRIT_URL", writ.base())
        .env("WRIT_TOKEN_ALICE", writ.token("alice"))
        .env("WRIT_TOKEN_DAVE", writ.token("dave"))
        .env("WRIT_TOKEN_BOB", writ.token("bob"))
        .env("WRIT_TOKEN_ADMIN", writ.admin_token())
        .env("WRIT_CHROMIUM", chromium)
        .env("WRIT_SCREENSHOTS", screenshots())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("node runs");
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = node.try_wait().expect("node") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = node.kill();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let said = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "the browser flow failed ({status:?}):\n{said}\n\nwrit's log:\n{}",
        writ.log()
    );
    println!("{said}");
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", support::stderr(&verify));
}
