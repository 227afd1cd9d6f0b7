//! `/metrics` as Prometheus and its alerting rules expect it: every documented metric
//! there from start-up (counters at zero for every known label value), help text on
//! every family, counters typed as counters and named `_total`, `promtool check
//! metrics` clean, and a token-free listener for scrapers.
//!
//! `.ci/run` installs Prometheus's `promtool` (Debian, pinned) and sets `WRIT_PROMTOOL`;
//! elsewhere the promtool check runs if `promtool` is on the PATH and says it skipped
//! otherwise.

mod support;

use std::collections::BTreeSet;
use std::process::Command;

use support::{NOOP_CONFIG, Writ, free_port};

/// The test kit's configuration plus a ticketing system, a notify sink and a
/// break-glass profile, so their labelled series exist.
const ITSM_AND_SINK: &str = r#"
[[itsm]]
name = "jira"
kind = "jira"
url = "http://127.0.0.1:9"
user = "writ@acme.example"
password = "api-token"
webhook_secret = "a-webhook-secret-of-some-length"
request_states = ["Approved"]
poll_every = "off"
fields = { entitlement = "customfield_10050" }

[[notify]]
name = "siem"
url = "http://127.0.0.1:9/events"

[[break_glass]]
name = "outage"
entitlements = ["t/read"]
max_duration = "30m"
"#;

async fn started(server: &str) -> Writ {
    let mut writ = Writ::new(&format!("{NOOP_CONFIG}{ITSM_AND_SINK}"), &[("p.cedar", "")]);
    if !server.is_empty() {
        writ.set_server(server);
    }
    writ.start().await;
    writ
}

async fn scrape(writ: &Writ) -> String {
    let (status, metrics) = writ.get("/metrics", &writ.token("alice")).await;
    assert_eq!(status, 200, "{metrics}");
    metrics.as_str().unwrap_or_default().to_string()
}

/// Every `writ_…` name docs/api.md mentions.
fn documented_metrics() -> BTreeSet<String> {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"))
        .expect("docs/api.md");
    docs.split('`')
        .filter_map(|span| {
            let name: String = span
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            name.starts_with("writ_").then_some(name)
        })
        .collect()
}

#[tokio::test]
async fn every_documented_metric_is_there_from_start_up_with_help_and_its_type() {
    let mut writ = started("").await;
    let text = scrape(&writ).await;
    let documented = documented_metrics();
    assert!(documented.len() >= 20, "{documented:?}");
    for name in &documented {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} is documented but not exported at start-up:\n{text}"
        );
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no help text"
        );
    }
    // Alerts see 0, not "no data", for each known label value.
    for sample in [
        "writ_revocation_failures_total 0",
        "writ_jobless_grants_total 0",
        "writ_webhooks_rejected_total{itsm=\"jira\"} 0",
        "writ_evidence_delivery_failures_total{itsm=\"jira\",reason=\"write_ignored\"} 0",
        "writ_notification_failures_total{sink=\"siem\"} 0",
        "writ_task_panics_total{task=\"scheduler\"} 0",
        "writ_findings_opened_total{kind=\"lingering\"} 0",
        "writ_requests_total{outcome=\"denied\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == sample),
            "{sample} missing:\n{text}"
        );
    }
    // A counter is typed counter and named _total; nothing else is.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = line.split_whitespace().skip(2);
        let (name, kind) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
    }
    writ.stop();
}

#[tokio::test]
async fn promtool_finds_nothing_to_say() {
    let Some(promtool) = support::external_tool("WRIT_PROMTOOL", "promtool", &["--version"]) else {
        eprintln!("promtool_finds_nothing_to_say: skipped, promtool is not installed");
        return;
    };
    let mut writ = started("").await;
    let text = scrape(&writ).await;
    writ.stop();
    let mut check = Command::new(promtool);
    check.args(["check", "metrics"]);
    let (ok, said) = support::run_with_input(check, text.as_bytes());
    assert!(
        ok && said.trim().is_empty(),
        "promtool check metrics:\n{said}"
    );
}

#[tokio::test]
async fn a_scraper_needs_no_token_on_the_metrics_listener_and_gets_nothing_else() {
    let port = free_port();
    let mut writ = started(&format!("metrics_listen = \"127.0.0.1:{port}\"")).await;
    let base = format!("http://127.0.0.1:{port}");
    let answer = writ
        .http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(answer.status(), 200);
    let text = answer.text().await.unwrap_or_default();
    assert!(text.contains("# TYPE writ_grants gauge"), "{text}");
    for path in ["/v1/grants", "/v1/audit", "/healthz"] {
        let answer = writ
            .http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("call");
        assert_eq!(answer.status(), 404, "{path}");
    }
    // The API's own /metrics still wants a token.
    let answer = writ
        .http
        .get(format!("{}/metrics", writ.base()))
        .send()
        .await
        .expect("call");
    assert_eq!(answer.status(), 401);
    writ.stop();
}
