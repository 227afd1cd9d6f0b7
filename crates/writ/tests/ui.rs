//! The web UI over plain HTTP, as a browser without JavaScript uses it: signing in
//! with a token, requesting with a previewed decision, approving as someone else,
//! revoking, the grant's timeline and its JSON; and every way around it — another
//! person's pages, forms without the CSRF token, a sign-in form posted from elsewhere,
//! an agent's token, sending people off-site after sign-in.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::Writ;
use support::ui::{CONFIG, POLICIES, UiClient, input_value};

async fn started() -> Writ {
    let mut writ = Writ::new(CONFIG, POLICIES);
    writ.set_server("rate_limit = \"off\"");
    writ.start().await;
    writ
}

async fn signed_in(writ: &Writ, who: &str) -> UiClient {
    let browser = UiClient::new(&writ.base());
    let landed = browser.sign_in_with_token(&writ.token(who)).await;
    assert_eq!(landed.status, 303, "{}", landed.body);
    assert_eq!(landed.location.as_deref(), Some("/ui"));
    browser
}

/// The id in a `Location: /ui/<kind>/<id>`.
fn id_in(location: Option<&str>, kind: &str) -> String {
    location
        .and_then(|l| l.strip_prefix(&format!("/ui/{kind}/")))
        .unwrap_or_else(|| panic!("a redirect to a {kind}: {location:?}"))
        .to_string()
}

#[tokio::test]
async fn request_preview_approve_revoke_and_the_timeline_without_javascript() {
    let writ = started().await;
    let alice = signed_in(&writ, "alice").await;
    let dave = signed_in(&writ, "dave").await;

    let home = alice.get("/ui").await;
    assert_eq!(home.status, 200);
    assert!(
        home.body.contains("Signed in as <strong>alice</strong>"),
        "{}",
        home.body
    );
    let csrf = alice.csrf().await;

    // The entitlement picker lists what there is, with policy's answer.
    let form = alice.get("/ui/request").await;
    assert!(
        form.body.contains(r#"<option value="t/admin""#),
        "{}",
        form.body
    );

    // Preview: nothing recorded.
    let fields = [
        ("csrf_token", csrf.as_str()),
        ("entitlement", "t/admin"),
        ("duration", "4h"),
        ("justification", "deploy the fix for INC-7"),
        ("ticket_system", ""),
        ("ticket_key", ""),
        ("subject", ""),
    ];
    let preview = alice.post("/ui/request/preview", &fields).await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(
        preview.body.contains("Needs 1 approval from") && preview.body.contains("at most 2h"),
        "{}",
        preview.body
    );
    assert!(
        preview
            .body
            .contains("You asked for 4h; it is capped at 2h."),
        "{}",
        preview.body
    );
    // What was typed is still in the form.
    assert!(
        preview.body.contains("deploy the fix for INC-7"),
        "{}",
        preview.body
    );
    let (_, listed) = writ.get("/v1/requests", &writ.admin_token()).await;
    assert_eq!(
        listed["requests"].as_array().map(Vec::len),
        Some(0),
        "a preview records nothing"
    );

    // The script's fragment is the preview alone.
    let fragment = alice
        .http
        .post(format!("{}/ui/request/preview", writ.base()))
        .header("x-writ-fragment", "1")
        .form(&fields)
        .send()
        .await
        .expect("fragment");
    let fragment = fragment.text().await.expect("text");
    assert!(
        fragment.contains("Needs 1 approval") && !fragment.contains("<html"),
        "{fragment}"
    );

    // Submit.
    let submitted = alice.post("/ui/request", &fields).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    let request_id = id_in(submitted.location.as_deref(), "requests");
    let shown = alice.get(&format!("/ui/requests/{request_id}")).await;
    assert!(shown.body.contains("pending_approval"), "{}", shown.body);
    assert!(
        shown
            .body
            .contains("You asked for this, so you cannot approve it"),
        "{}",
        shown.body
    );

    // Self-approval, posted by hand: refused, visibly, and nothing recorded.
    let refused = alice
        .post(
            &format!("/ui/requests/{request_id}/decide"),
            &[
                ("csrf_token", &csrf),
                ("decision", "approve"),
                ("comment", "me"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("You cannot approve this request"),
        "{}",
        refused.body
    );

    // Dave's inbox has it, with what he needs to decide.
    let inbox = dave.get("/ui/approvals").await;
    assert!(inbox.body.contains(&request_id), "{}", inbox.body);
    assert!(
        inbox.body.contains("deploy the fix for INC-7"),
        "{}",
        inbox.body
    );
    assert!(inbox.body.contains("high-needs-manager"), "{}", inbox.body);
    let dave_csrf = dave.csrf().await;
    let approved = dave
        .post(
            &format!("/ui/requests/{request_id}/decide"),
            &[
                ("csrf_token", &dave_csrf),
                ("decision", "approve"),
                ("comment", "go ahead"),
            ],
        )
        .await;
    assert_eq!(approved.status, 303, "{}", approved.body);

    // Alice sees the grant active, with its countdown.
    let shown = page_with(&alice, &format!("/ui/requests/{request_id}"), "/ui/grants/").await;
    let at = shown.body.find("/ui/grants/").expect("a link to the grant") + 11;
    let grant_id = shown.body[at..at + 36].to_string();
    let home = page_with(&alice, "/ui", "data-countdown").await;
    assert!(home.body.contains(&grant_id[24..]), "{}", home.body);

    // Revoke it early from its page; the timeline shows the verification.
    let revoked = alice
        .post(
            &format!("/ui/grants/{grant_id}/revoke"),
            &[("csrf_token", &csrf), ("reason", "done early")],
        )
        .await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    let timeline = page_with(
        &alice,
        &format!("/ui/grants/{grant_id}"),
        "Verified gone from the target",
    )
    .await;
    for needed in [
        "request.created",
        "request.approved",
        "grant.created",
        "grant.activated",
        "grant.revoke_started",
        "grant.revoked",
        "Approved by dave: “go ahead”",
        "done early",
        "high-needs-manager",
    ] {
        assert!(
            timeline.body.contains(needed),
            "{needed} missing:\n{}",
            timeline.body
        );
    }

    // The JSON download: the ledger's own events, each linking to the one before it
    // in the chain and carrying the hash `writ audit` shows.
    let history = alice
        .get(&format!("/ui/grants/{grant_id}/history.json"))
        .await;
    assert_eq!(history.status, 200);
    let history: Value = serde_json::from_str(&history.body).expect("JSON");
    let events = history["events"].as_array().expect("events");
    assert!(events.len() >= 6, "{history}");
    let (_, audit) = writ.get("/v1/audit?limit=1000", &writ.admin_token()).await;
    for event in events {
        let seq = event["seq"].as_i64().expect("seq");
        let on_ledger = audit["events"]
            .as_array()
            .and_then(|all| all.iter().find(|e| e["seq"] == seq))
            .expect("the event is on the ledger");
        assert_eq!(on_ledger, event, "event {seq} as the ledger holds it");
    }
    // The evidence download: a document `writ evidence verify` accepts.
    assert!(
        timeline
            .body
            .contains(&format!("/ui/grants/{grant_id}/evidence.md"))
    );
    let evidence = alice
        .get(&format!("/ui/grants/{grant_id}/evidence.md"))
        .await;
    assert_eq!(evidence.status, 200, "{}", evidence.body);
    assert!(
        evidence.body.starts_with("# Evidence: grant "),
        "{}",
        evidence.body
    );
    let file = writ.path("evidence-from-ui.md");
    std::fs::write(&file, &evidence.body).expect("write");
    let checked = writ.run(&[
        "evidence",
        "verify",
        file.to_str().expect("path"),
        "--pubkey",
        &writ.pubkey(),
    ]);
    assert!(checked.status.success(), "{}", support::stderr(&checked));
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", support::stderr(&verify));
}

/// The page at `path` once it shows `text` (within 10 s).
async fn page_with(browser: &UiClient, path: &str, text: &str) -> support::ui::Page {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = browser.get(path).await;
        if page.body.contains(text) || std::time::Instant::now() > deadline {
            assert!(
                page.body.contains(text),
                "{path} never showed {text:?}:\n{}",
                page.body
            );
            return page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_denied_request_says_why_and_keeps_what_was_typed() {
    let writ = started().await;
    let alice = signed_in(&writ, "alice").await;
    let csrf = alice.csrf().await;
    let fields = [
        ("csrf_token", csrf.as_str()),
        ("entitlement", "t/root"),
        ("duration", "30m"),
        ("justification", "break the glass"),
        ("ticket_system", ""),
        ("ticket_key", ""),
        ("subject", ""),
    ];
    let preview = alice.post("/ui/request/preview", &fields).await;
    assert!(
        preview
            .body
            .contains("Denied: critical access needs a ticket"),
        "{}",
        preview.body
    );
    let submitted = alice.post("/ui/request", &fields).await;
    assert_eq!(
        submitted.status, 303,
        "a denial is recorded like any decision"
    );
    let request_id = id_in(submitted.location.as_deref(), "requests");
    let shown = alice.get(&format!("/ui/requests/{request_id}")).await;
    assert!(shown.body.contains("denied"), "{}", shown.body);
    assert!(
        shown.body.contains("critical access needs a ticket"),
        "{}",
        shown.body
    );

    // Bad input: a clear error, the status the API gives, and nothing typed lost.
    let bad = alice
        .post(
            "/ui/request",
            &[
                ("csrf_token", &csrf),
                ("entitlement", "t/read"),
                ("duration", "forever"),
                ("justification", "typed with care"),
            ],
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("duration:"), "{}", bad.body);
    assert!(bad.body.contains("typed with care"), "{}", bad.body);
    let missing = alice
        .post(
            "/ui/request",
            &[
                ("csrf_token", &csrf),
                ("entitlement", "t/read"),
                ("justification", ""),
            ],
        )
        .await;
    assert_eq!(missing.status, 422, "{}", missing.body);
    assert!(
        missing.body.contains("a justification is required"),
        "{}",
        missing.body
    );
}

#[tokio::test]
async fn pages_show_nobody_what_the_api_would_refuse_them() {
    let writ = started().await;
    let alice = signed_in(&writ, "alice").await;
    let bob = signed_in(&writ, "bob").await;
    let alice_token = writ.token("alice");
    let request = writ
        .request_access(
            &alice_token,
            serde_json::json!({"entitlement": "t/read", "justification": "read"}),
        )
        .await;
    let grant = request.grant_id.expect("granted");
    assert_eq!(alice.get(&format!("/ui/grants/{grant}")).await.status, 200);
    // Bob is no auditor and not concerned: as for the API, the grant does not exist.
    let bob_token = writ.token("bob");
    let (api_status, _) = writ.get(&format!("/v1/grants/{grant}"), &bob_token).await;
    assert_eq!(api_status, 404);
    for path in [
        format!("/ui/grants/{grant}"),
        format!("/ui/grants/{grant}/history.json"),
        format!("/ui/requests/{}", request.id),
    ] {
        let page = bob.get(&path).await;
        assert_eq!(page.status, 404, "{path}: {}", page.body);
        assert!(
            !page.body.contains("alice"),
            "{path} shows alice's records:\n{}",
            page.body
        );
    }
    assert!(!bob.get("/ui").await.body.contains(&grant.to_string()));
    // Bob may not revoke it either, and learns no more than the API tells him.
    let bob_csrf = bob.csrf().await;
    let refused = bob
        .post(
            &format!("/ui/grants/{grant}/revoke"),
            &[("csrf_token", &bob_csrf), ("reason", "x")],
        )
        .await;
    let (api_status, _) = writ
        .post(
            &format!("/v1/grants/{grant}/revoke"),
            &bob_token,
            serde_json::json!({}),
        )
        .await;
    assert_eq!((refused.status, api_status), (404, 404), "{}", refused.body);
    // Operations pages are for auditors and admins.
    assert!(!alice.get("/ui").await.body.contains("/ui/ledger"));
}

#[tokio::test]
async fn forms_need_the_session_csrf_token_and_sign_in_cannot_be_forged() {
    let writ = started().await;
    let alice = signed_in(&writ, "alice").await;

    // A form posted without, or with another session's, CSRF token changes nothing.
    let bob = signed_in(&writ, "bob").await;
    let bobs = bob.csrf().await;
    for token in ["", bobs.as_str(), "0000"] {
        let posted = alice
            .post(
                "/ui/request",
                &[
                    ("csrf_token", token),
                    ("entitlement", "t/read"),
                    ("justification", "x"),
                ],
            )
            .await;
        assert_eq!(posted.status, 403, "{}", posted.body);
        assert!(
            posted.body.contains("csrf_token_invalid"),
            "{}",
            posted.body
        );
    }
    let (_, listed) = writ.get("/v1/requests", &writ.admin_token()).await;
    assert_eq!(listed["requests"].as_array().map(Vec::len), Some(0));

    // Login CSRF: a sign-in posted by another site's page (no sign-in cookie, or a
    // token from a form writ did not show) signs nobody in.
    let stranger = UiClient::new(&writ.base());
    let forged = stranger
        .post(
            "/ui/signin",
            &[
                ("token", &writ.token("bob")),
                ("signin_csrf", "guessed"),
                ("return_to", "/ui"),
            ],
        )
        .await;
    assert_eq!(forged.status, 401, "{}", forged.body);
    assert!(
        forged.body.contains("did not come from writ"),
        "{}",
        forged.body
    );
    assert_eq!(stranger.get("/ui").await.status, 303, "still signed out");

    // A wrong token, an agent's token: refused with the reason.
    let wrong = stranger.sign_in_with_token("writ_not-a-token").await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let agent = stranger.sign_in_with_token(&writ.token("helper")).await;
    assert_eq!(agent.status, 401, "{}", agent.body);
    assert!(agent.body.contains("only people sign in"), "{}", agent.body);

    // After sign-in, only a page of writ's UI: never another site.
    let form = stranger.get("/ui/signin?return_to=//evil.example/x").await;
    assert_eq!(input_value(&form.body, "return_to").as_deref(), Some("/ui"));
    let signin_csrf = input_value(&form.body, "signin_csrf").expect("csrf");
    let landed = stranger
        .post(
            "/ui/signin",
            &[
                ("token", &writ.token("bob")),
                ("signin_csrf", &signin_csrf),
                ("return_to", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(landed.location.as_deref(), Some("/ui"));

    // Signed out: the session ends (on the ledger), and its cookie works no more.
    let csrf = alice.csrf().await;
    let out = alice.post("/ui/signout", &[("csrf_token", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(alice.get("/ui").await.status, 303, "sent to sign in again");
}

#[tokio::test]
async fn pages_are_sent_to_sign_in_and_carry_safe_headers() {
    let writ = started().await;
    let stranger = UiClient::new(&writ.base());
    let page = stranger.get("/ui/grants/whatever?x=1").await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some("/ui/signin?return_to=/ui/grants/whatever%3Fx%3D1")
    );
    assert_eq!(stranger.get("/").await.location.as_deref(), Some("/ui"));
    let signin = stranger.get("/ui/signin").await;
    let csp = signin
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(
        signin
            .headers
            .get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff")
    );
    let cookie = signin
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("writ-ui-signin="))
        .expect("the sign-in form's cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    for asset in ["/ui/assets/writ.css", "/ui/assets/writ.js"] {
        assert_eq!(stranger.get(asset).await.status, 200, "{asset}");
    }
}

#[tokio::test]
async fn auditors_see_the_ledger_the_revocations_and_the_pictures_and_nobody_else_does() {
    let writ = started().await;
    let alice_token = writ.token("alice");
    for _ in 0..3 {
        let request = writ
            .request_access(
                &alice_token,
                serde_json::json!({"entitlement": "t/read", "justification": "read"}),
            )
            .await;
        let grant = request.grant_id.expect("granted");
        let (status, _) = writ
            .post(
                &format!("/v1/grants/{grant}/revoke"),
                &alice_token,
                serde_json::json!({}),
            )
            .await;
        assert_eq!(status, 200);
    }
    let checkpoint = writ.run(&["audit", "checkpoint"]);
    assert!(
        checkpoint.status.success(),
        "{}",
        support::stderr(&checkpoint)
    );
    let admin = signed_in(&writ, support::ADMIN).await;

    let ledger = admin.get("/ui/ledger").await;
    assert_eq!(ledger.status, 200, "{}", ledger.body);
    let (_, verify) = writ.get("/v1/audit/verify", &writ.admin_token()).await;
    assert!(
        ledger.body.contains("Latest signed checkpoint"),
        "{}",
        ledger.body
    );
    assert!(
        ledger.body.contains("valid</span> under this writ"),
        "{}",
        ledger.body
    );
    let csrf = admin.csrf().await;
    let verified = admin
        .post("/ui/ledger/verify", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert!(verified.body.contains("Intact:"), "{}", verified.body);
    assert!(verify["ok"] == true, "{verify}");

    let insights = admin.get("/ui/insights").await;
    assert_eq!(insights.status, 200, "{}", insights.body);
    assert_eq!(
        insights.body.matches("<svg").count(),
        3,
        "{}",
        insights.body
    );
    assert!(
        insights
            .body
            .contains("Grants made per day: 3 grants in all"),
        "{}",
        insights.body
    );
    assert!(
        insights.body.contains("revocations in all"),
        "{}",
        insights.body
    );
    assert_eq!(admin.get("/ui/revocations").await.status, 200);
    assert_eq!(admin.get("/ui/findings").await.status, 200);

    // Alice is no auditor: refused, as GET /v1/audit/verify and /v1/reports refuse her.
    let alice = signed_in(&writ, "alice").await;
    let (api_status, _) = writ.get("/v1/audit/verify", &alice_token).await;
    for path in ["/ui/ledger", "/ui/insights", "/ui/revocations"] {
        let page = alice.get(path).await;
        assert_eq!(
            (page.status, api_status),
            (403, 403),
            "{path}: {}",
            page.body
        );
    }
    let alice_csrf = alice.csrf().await;
    assert_eq!(
        alice
            .post("/ui/ledger/verify", &[("csrf_token", &alice_csrf)])
            .await
            .status,
        403
    );
    // Findings narrow to what she owns: none.
    let findings = alice.get("/ui/findings").await;
    assert_eq!(findings.status, 200);
    assert!(
        findings.body.contains("No open findings."),
        "{}",
        findings.body
    );
}

/// A credential entitlement granted at once (asked by a service's owner for the
/// service): its password is on the next page, once, with the warning; the request's
/// and the grant's pages never show it again.
#[tokio::test]
async fn a_credential_is_shown_once_with_its_warning() {
    let mut roles = support::TestRoles::new().await;
    let role = roles.create("report").await;
    let config = format!(
        r#"
[storage]
url = "sqlite://writ.db"

[[target]]
name = "pg"
kind = "postgres"
url = "{}"
reconcile_every = "off"

[[entitlement]]
id = "pg/report_db"
target = "pg"
role = "{role}"
sensitivity = "low"
max_duration = "1h"
credential = true

[[user]]
name = "alice"

[[service]]
name = "svc-report"
owner = "alice"
"#,
        support::PG_URL
    );
    let mut writ = Writ::new(
        &config,
        &[(
            "p.cedar",
            r#"permit (principal, action == Action::"request", resource);"#,
        )],
    );
    writ.set_server("rate_limit = \"off\"");
    writ.start().await;
    let alice = signed_in(&writ, "alice").await;
    let csrf = alice.csrf().await;
    let shown = alice
        .post(
            "/ui/request",
            &[
                ("csrf_token", csrf.as_str()),
                ("entitlement", "pg/report_db"),
                ("subject", "svc-report"),
                ("duration", "10m"),
                ("justification", "month-end numbers"),
            ],
        )
        .await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(
        shown.body.contains("This password is shown once."),
        "{}",
        shown.body
    );
    assert!(
        shown.body.contains("data-copy=\"credential-password\""),
        "{}",
        shown.body
    );
    let start = shown
        .body
        .find("id=\"credential-password\">")
        .expect("the password")
        + 25;
    let password = &shown.body[start..start + shown.body[start..].find('<').expect("end")];
    assert!(password.len() >= 40, "{password}");
    let at = shown.body.find("/ui/grants/").expect("the grant") + 11;
    let grant = shown.body[at..at + 36].to_string();
    for path in [format!("/ui/grants/{grant}"), "/ui".to_string()] {
        let page = alice.get(&path).await;
        assert_eq!(page.status, 200);
        assert!(
            !page.body.contains(password),
            "{path} shows the password again"
        );
    }
    let history = alice.get(&format!("/ui/grants/{grant}/history.json")).await;
    assert!(
        !history.body.contains(password),
        "the ledger holds no password"
    );
    writ.stop();
    roles.cleanup().await;
}

#[tokio::test]
async fn reviews_are_decided_and_break_glass_broken_and_signed_off_by_the_right_people() {
    let writ = started().await;
    let alice_token = writ.token("alice");
    let request = writ
        .request_access(
            &alice_token,
            serde_json::json!({"entitlement": "t/read", "justification": "read"}),
        )
        .await;
    let grant = request.grant_id.expect("granted");
    let (status, started) = writ
        .post(
            "/v1/reviews",
            &writ.admin_token(),
            serde_json::json!({"name": "Q1 reads", "entitlement": "t/read", "assign": "manager"}),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    let (_, items) = writ.get("/v1/review-items", &writ.admin_token()).await;
    let item = items["items"][0]["id"]
        .as_str()
        .expect("an item")
        .to_string();

    // Alice's manager reviews it; alice and bob see nothing to decide.
    let alice = signed_in(&writ, "alice").await;
    let bob = signed_in(&writ, "bob").await;
    let dave = signed_in(&writ, "dave").await;
    for (browser, who) in [(&alice, "alice"), (&bob, "bob")] {
        let page = browser.get("/ui/reviews").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains("No review items wait for you.") && !page.body.contains(&item),
            "{who}: {}",
            page.body
        );
    }
    let page = page_with(&dave, "/ui/reviews", "t/read held by alice").await;
    assert!(page.body.contains("Q1 reads"), "{}", page.body);
    assert!(
        page.body.contains(&format!("/ui/grants/{grant}")),
        "{}",
        page.body
    );

    // Bob deciding it is refused as the API refuses him, and changes nothing.
    let bob_csrf = bob.csrf().await;
    let decide = format!("/ui/review-items/{item}/decide");
    let refused = bob
        .post(
            &decide,
            &[
                ("csrf_token", &bob_csrf),
                ("decision", "revoke"),
                ("comment", "x"),
            ],
        )
        .await;
    let (api_status, _) = writ
        .post(
            &format!("/v1/review-items/{item}/decide"),
            &writ.token("bob"),
            serde_json::json!({"decision": "revoke", "comment": "x"}),
        )
        .await;
    assert_eq!(refused.status, api_status, "{}", refused.body);
    assert!(refused.status >= 400);
    // Without a comment, or without the CSRF token, nothing is recorded.
    let dave_csrf = dave.csrf().await;
    let no_comment = dave
        .post(
            &decide,
            &[
                ("csrf_token", &dave_csrf),
                ("decision", "revoke"),
                ("comment", ""),
            ],
        )
        .await;
    assert_eq!(no_comment.status, 422, "{}", no_comment.body);
    assert!(
        no_comment.body.contains("role=\"alert\""),
        "{}",
        no_comment.body
    );
    let forged = dave
        .post(&decide, &[("decision", "revoke"), ("comment", "gone")])
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let (_, still) = writ
        .get(&format!("/v1/review-items/{item}"), &writ.admin_token())
        .await;
    assert_eq!(still["state"], "pending", "{still}");

    let decided = dave
        .post(
            &decide,
            &[
                ("csrf_token", &dave_csrf),
                ("decision", "revoke"),
                ("comment", "not needed after the migration"),
            ],
        )
        .await;
    assert_eq!(decided.status, 303, "{}", decided.body);
    assert_eq!(decided.location.as_deref(), Some("/ui/reviews"));
    let (_, item_now) = writ
        .get(&format!("/v1/review-items/{item}"), &writ.admin_token())
        .await;
    assert_eq!(
        (&item_now["state"], &item_now["decided_by"]),
        (&Value::from("revoked"), &Value::from("dave")),
        "{item_now}"
    );
    let admin = signed_in(&writ, support::ADMIN).await;
    page_with(
        &admin,
        &format!("/ui/grants/{grant}"),
        "Verified gone from the target",
    )
    .await;
    let page = dave.get("/ui/reviews").await;
    assert!(
        page.body.contains("No review items wait for you."),
        "{}",
        page.body
    );

    // Break-glass: a manager may not break it (policy), an engineer may.
    let dave_refused = dave
        .post(
            "/ui/break-glass/outage",
            &[
                ("csrf_token", &dave_csrf),
                ("justification", "db down"),
                ("duration", ""),
            ],
        )
        .await;
    assert_eq!(dave_refused.status, 403, "{}", dave_refused.body);
    assert!(
        dave_refused
            .body
            .contains("No policy lets you break this glass"),
        "{}",
        dave_refused.body
    );
    let alice_csrf = alice.csrf().await;
    let page = alice.get("/ui/break-glass").await;
    assert!(
        page.body.contains("Break the glass: outage") && page.body.contains("t/admin"),
        "{}",
        page.body
    );
    let broken = alice
        .post(
            "/ui/break-glass/outage",
            &[
                ("csrf_token", &alice_csrf),
                ("justification", "primary database is down"),
                ("duration", "20m"),
            ],
        )
        .await;
    assert_eq!(broken.status, 303, "{}", broken.body);
    let location = broken.location.expect("sent to the activation");
    let activation = location
        .strip_prefix("/ui/break-glass?activated=")
        .expect("the activation's id")
        .to_string();
    let shown = alice.get(&location).await;
    assert!(shown.body.contains("The glass is broken"), "{}", shown.body);
    let (_, view) = writ
        .get(
            &format!("/v1/break-glass/activations/{activation}"),
            &writ.admin_token(),
        )
        .await;
    assert_eq!(view["review_state"], "open", "{view}");
    let made = view["requests"][0].as_str().expect("a request");
    let (_, made) = writ
        .get(&format!("/v1/requests/{made}"), &writ.admin_token())
        .await;
    assert_eq!(made["state"], "approved", "{made}");
    assert!(made["duration_seconds"].as_i64() == Some(1200), "{made}");

    // Alice may not sign off her own; dave signs it off.
    let sign_off = format!("/ui/break-glass/activations/{activation}/sign-off");
    let own = alice
        .post(
            &sign_off,
            &[("csrf_token", &alice_csrf), ("comment", "fine")],
        )
        .await;
    let (api_status, _) = writ
        .post(
            &format!("/v1/break-glass/activations/{activation}/sign-off"),
            &alice_token,
            serde_json::json!({"comment": "fine"}),
        )
        .await;
    assert_eq!(own.status, api_status, "{}", own.body);
    assert!(
        own.body.contains("You cannot sign off this activation"),
        "{}",
        own.body
    );
    let page = page_with(&dave, "/ui/break-glass", "Waiting for your sign-off (1)").await;
    assert!(
        page.body.contains("primary database is down"),
        "{}",
        page.body
    );
    let signed = dave
        .post(
            &sign_off,
            &[
                ("csrf_token", &dave_csrf),
                ("comment", "checked the session log"),
            ],
        )
        .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let (_, view) = writ
        .get(
            &format!("/v1/break-glass/activations/{activation}"),
            &writ.admin_token(),
        )
        .await;
    assert_eq!(
        (&view["review_state"], &view["reviewer"]),
        (&Value::from("signed_off"), &Value::from("dave")),
        "{view}"
    );
    // Bob sees neither alice's activation among his own nor anything to sign off.
    let page = bob.get("/ui/break-glass").await;
    assert!(
        !page.body.contains("primary database is down")
            && page.body.contains("Waiting for your sign-off (0)"),
        "{}",
        page.body
    );
}
