//! writ's `/openapi.json` against a running writ, checked by schemathesis (PyPI): every
//! answer has a documented status, content type and schema, no request gets a 5xx, and
//! the document itself is valid OpenAPI. `.ci/run` installs schemathesis (pinned) and
//! sets `WRIT_SCHEMATHESIS`; elsewhere the test runs if `schemathesis` is on the PATH
//! and says it skipped otherwise.

mod support;

use std::process::Command;

use support::Writ;

const CONFIG: &str = r#"
[[target]]
name = "t"
kind = "noop"

[[entitlement]]
id = "t/read"
target = "t"
role = "read"
sensitivity = "low"
max_duration = "1h"

[[entitlement]]
id = "t/admin"
target = "t"
role = "admin"
sensitivity = "high"
max_duration = "1h"

[[break_glass]]
name = "outage"
entitlements = ["t/read"]
max_duration = "30m"

[[user]]
name = "alice"
groups = ["engineers"]

[[service]]
name = "svc"
owner = "alice"
"#;

const POLICY: &str = r#"
@id("read") permit (principal, action == Action::"request", resource) when { resource.sensitivity == "low" };
@id("admin") @approvals("1") permit (principal in Group::"engineers", action == Action::"request", resource);
@id("break-glass") permit (principal, action == Action::"break_glass", resource);
"#;

/// Examples per operation; `WRIT_SCHEMATHESIS_EXAMPLES` for a longer run.
const EXAMPLES: &str = "10";

fn schemathesis() -> Option<String> {
    support::external_tool("WRIT_SCHEMATHESIS", "schemathesis", &["--version"])
}

#[tokio::test]
async fn the_api_answers_as_its_openapi_document_says() {
    let Some(schemathesis) = schemathesis() else {
        eprintln!(
            "schemathesis: not installed, skipped (`pip install schemathesis==4.32.5`, or run .ci/run)"
        );
        return;
    };
    let mut writ = Writ::new(CONFIG, &[("policy.cedar", POLICY)]);
    writ.set_server("rate_limit = \"off\"");
    writ.start().await;
    let admin = writ.admin_token();
    let alice = writ.token("alice");
    // Something to read and act on.
    for entitlement in ["t/read", "t/admin"] {
        let (status, body) = writ
            .post(
                "/v1/requests",
                &alice,
                serde_json::json!({ "entitlement": entitlement, "justification": "schemathesis" }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = writ
        .post(
            "/v1/break-glass/outage",
            &alice,
            serde_json::json!({ "justification": "schemathesis" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let examples =
        std::env::var("WRIT_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| EXAMPLES.to_string());
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml");
    let output = Command::new(&schemathesis)
        .args(["--config-file", config, "run"])
        .arg(format!("{}/openapi.json", writ.base()))
        .args(["--header", &format!("Authorization: Bearer {admin}")])
        .args(["--max-examples", &examples, "--workers", "1", "--seed", "1"])
        .args(["--max-time", "60"])
        // Revoking the token it runs with ends the run's authentication (tested in access.rs).
        .args(["--exclude-path", "/v1/tokens/{id}/revoke"])
        .env("NO_COLOR", "1")
        // Its caches (.hypothesis, .schemathesis) go with the test's folder.
        .current_dir(writ.dir.path())
        .output()
        .expect("run schemathesis");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let log = writ.log();
    writ.stop();
    assert!(output.status.success(), "{report}\n\nserver log:\n{log}");
    assert!(!log.contains("panicked"), "{log}");
}

/// `openapi-spec-validator` (PyPI), next to schemathesis in `.ci/run`'s venv
/// (`WRIT_OPENAPI_SPEC_VALIDATOR`); elsewhere if it is on the PATH.
fn spec_validator() -> Option<String> {
    support::external_tool(
        "WRIT_OPENAPI_SPEC_VALIDATOR",
        "openapi-spec-validator",
        &["--version"],
    )
}

#[tokio::test]
async fn the_openapi_document_passes_openapi_spec_validator() {
    let Some(validator) = spec_validator() else {
        eprintln!(
            "openapi-spec-validator: not installed, skipped (`pip install openapi-spec-validator==0.9.0`, or run .ci/run)"
        );
        return;
    };
    let mut writ = Writ::new(CONFIG, &[("policy.cedar", POLICY)]);
    writ.start().await;
    let (status, document) = writ.get("/openapi.json", &writ.token("alice")).await;
    writ.stop();
    assert_eq!(status, 200, "{document}");
    let file = writ.path("openapi.json");
    std::fs::write(&file, document.to_string()).expect("write the document");
    let output = Command::new(validator)
        .args(["--validation-errors", "all"])
        .arg(&file)
        .output()
        .expect("run openapi-spec-validator");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && report.contains(": OK"),
        "{report}"
    );
}
