//! HTTP as clients and proxies expect it (RFC 9110, RFC 6750): challenges on 401, the
//! auth scheme case-insensitive, nothing authenticated cached, 415 for bodies that are
//! not JSON, 405 with `Allow`, control characters and out-of-range limits refused.

mod support;

use reqwest::Method;
use serde_json::json;
use support::Writ;

const POLICY: &str = r#"permit (principal, action == Action::"request", resource);"#;

async fn started() -> Writ {
    let mut writ = Writ::new(support::NOOP_CONFIG, &[("p.cedar", POLICY)]);
    writ.start().await;
    writ
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_401_says_how_to_authenticate_and_the_scheme_is_case_insensitive() {
    let mut writ = started().await;
    let url = format!("{}/v1/grants", writ.base());
    let missing = writ.http.get(&url).send().await.expect("call");
    assert_eq!(missing.status(), 401);
    assert_eq!(
        header(&missing, "www-authenticate"),
        "Bearer realm=\"writ\""
    );

    let forged = writ
        .http
        .get(&url)
        .header("authorization", "Bearer writ_not-a-real-token")
        .send()
        .await
        .expect("call");
    assert_eq!(forged.status(), 401);
    assert_eq!(
        header(&forged, "www-authenticate"),
        "Bearer realm=\"writ\", error=\"invalid_token\""
    );

    let token = writ.token("alice");
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let answer = writ
            .http
            .get(&url)
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .expect("call");
        assert_eq!(answer.status(), 200, "{scheme}");
    }
    let basic = writ
        .http
        .get(&url)
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .expect("call");
    assert_eq!(basic.status(), 401);
    writ.stop();
}

#[tokio::test]
async fn authenticated_answers_and_errors_are_never_cached() {
    let mut writ = started().await;
    let token = writ.token("alice");
    for path in ["/v1/grants", "/v1/entitlements", "/v1/nowhere"] {
        let answer = writ
            .http
            .get(format!("{}{path}", writ.base()))
            .bearer_auth(&token)
            .send()
            .await
            .expect("call");
        assert_eq!(header(&answer, "cache-control"), "no-store", "{path}");
    }
    writ.stop();
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_with_415_and_changes_nothing() {
    let mut writ = started().await;
    let token = writ.token("alice");
    let body = json!({ "entitlement": "t/read", "justification": "reading the logs" }).to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut call = writ
            .http
            .post(format!("{}/v1/requests", writ.base()))
            .bearer_auth(&token)
            .body(body.clone());
        if let Some(content_type) = content_type {
            call = call.header("content-type", content_type);
        }
        let answer = call.send().await.expect("call");
        assert_eq!(answer.status(), 415, "{content_type:?}");
        let error: serde_json::Value = answer.json().await.unwrap_or_default();
        assert_eq!(error["error"]["code"], "unsupported_media_type", "{error}");
    }
    let (_, list) = writ.get("/v1/requests", &token).await;
    assert_eq!(list["requests"].as_array().map(Vec::len), Some(0), "{list}");
    // JSON with parameters is JSON.
    let answer = writ
        .http
        .post(format!("{}/v1/requests", writ.base()))
        .bearer_auth(&token)
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .expect("call");
    assert_eq!(answer.status(), 201);
    writ.stop();
}

#[tokio::test]
async fn a_405_lists_the_methods_the_endpoint_takes() {
    let mut writ = started().await;
    let token = writ.token("alice");
    let answer = writ
        .http
        .delete(format!("{}/v1/requests", writ.base()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("call");
    assert_eq!(answer.status(), 405);
    let allow = header(&answer, "allow");
    assert!(
        allow.contains("GET") && allow.contains("POST"),
        "Allow: {allow:?}"
    );
    let error: serde_json::Value = answer.json().await.unwrap_or_default();
    assert_eq!(error["error"]["code"], "method_not_allowed", "{error}");
    writ.stop();
}

#[tokio::test]
async fn control_characters_in_text_are_refused() {
    let mut writ = started().await;
    let token = writ.token("alice");
    for justification in [
        "reading\u{0}the logs",
        "reading\u{1b}[31mthe logs",
        "line\u{7f}",
    ] {
        let (status, error) = writ
            .post(
                "/v1/requests",
                &token,
                json!({ "entitlement": "t/read", "justification": justification }),
            )
            .await;
        assert_eq!(status, 400, "{justification:?}: {error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("justification") && m.contains("control character")),
            "{error}"
        );
    }
    // Tabs and newlines are text.
    let (status, created) = writ
        .post(
            "/v1/requests",
            &token,
            json!({ "entitlement": "t/read", "justification": "reading the logs:\n\tincident 42" }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    writ.stop();
}

#[tokio::test]
async fn a_limit_out_of_range_is_a_400() {
    let mut writ = started().await;
    let token = writ.admin_token();
    for path in [
        "/v1/requests?limit=0",
        "/v1/grants?limit=-5",
        "/v1/audit?limit=0",
        "/v1/findings?limit=1001",
        "/v1/audit?after=-1",
    ] {
        let (status, error) = writ.call(Method::GET, path, Some(&token), None).await;
        assert_eq!(status, 400, "{path}: {error}");
        assert_eq!(
            error["error"]["code"], "malformed_request",
            "{path}: {error}"
        );
    }
    let (status, _) = writ
        .call(Method::GET, "/v1/requests?limit=1000", Some(&token), None)
        .await;
    assert_eq!(status, 200);
    writ.stop();
}

#[tokio::test]
async fn lists_page_with_a_cursor_and_the_cli_pages_through() {
    let mut writ = started().await;
    let token = writ.token("alice");
    for n in 0..25 {
        let (status, created) = writ
            .post(
                "/v1/requests",
                &token,
                json!({ "entitlement": "t/read", "justification": format!("request {n}") }),
            )
            .await;
        assert_eq!(status, 201, "{created}");
    }
    let mut seen = Vec::new();
    let mut path = "/v1/requests?limit=10".to_string();
    let mut pages = 0;
    loop {
        let (status, page) = writ.get(&path, &token).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        let requests = page["requests"].as_array().cloned().unwrap_or_default();
        seen.extend(
            requests
                .iter()
                .filter_map(|r| r["id"].as_str().map(str::to_string)),
        );
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/requests?limit=10&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let distinct: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), distinct.len()), (25, 25));
    let (_, all) = writ.get("/v1/requests", &token).await;
    let newest_first: Vec<String> = all["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(seen, newest_first, "pages join into the one list");
    assert!(all.get("next").is_none(), "{all}");

    // A cursor is the list's own: made up, or another list's, it is a 400.
    let (_, grants) = writ.get("/v1/grants?limit=1", &token).await;
    let grant_cursor = grants["next"]
        .as_str()
        .expect("more than one grant")
        .to_string();
    for cursor in [grant_cursor.as_str(), "12.not-hex!", "0193"] {
        let (status, error) = writ
            .get(&format!("/v1/requests?cursor={cursor}"), &token)
            .await;
        assert_eq!(status, 400, "{cursor}: {error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("is not one this list gave")),
            "{error}"
        );
    }

    // The CLI follows `next` for as many as asked.
    let listed = writ
        .command(&["requests", "--limit", "12", "--json"])
        .env("WRIT_TOKEN", &token)
        .output()
        .expect("run writ");
    assert!(listed.status.success(), "{}", support::stderr(&listed));
    let list: serde_json::Value = serde_json::from_str(&support::stdout(&listed)).expect("JSON");
    assert_eq!(list["requests"].as_array().map(Vec::len), Some(12));
    writ.stop();
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_each_requests_id() {
    let mut writ = Writ::new(support::NOOP_CONFIG, &[("p.cedar", POLICY)]);
    writ.start_with_env(&[("WRIT_LOG_FORMAT", "json")]).await;
    let token = writ.token("alice");
    let answer = writ
        .http
        .get(format!("{}/v1/grants", writ.base()))
        .bearer_auth(&token)
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("call");
    assert_eq!(answer.status(), 200);
    assert_eq!(header(&answer, "x-request-id"), "trace-me-42");
    writ.stop();
    let log = writ.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let answered = lines
        .iter()
        .find(|event| event["span"]["request_id"] == "trace-me-42")
        .unwrap_or_else(|| panic!("no event with the request id:\n{log}"));
    assert_eq!(answered["span"]["path"], "/v1/grants", "{answered}");
    assert_eq!(answered["fields"]["status"], 200, "{answered}");
    assert!(answered["fields"]["latency"].is_string(), "{answered}");
}
