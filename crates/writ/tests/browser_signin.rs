//! Browser sign-in against a real OpenID provider: `/auth/login` sends the browser
//! to the provider (code + PKCE), `/auth/callback` starts a session in an HttpOnly,
//! SameSite cookie, changes made with the cookie need the session's CSRF token, and
//! `/auth/logout` ends the session on the ledger. Each way around it is a case.

mod support;

use serde_json::{Value, json};
use support::browser::Browser;
use support::oidc_provider::{AUDIENCE, Provider, provider_dir};
use support::{NOOP_CONFIG, Writ};

async fn writ_and_provider() -> Option<(Writ, Provider)> {
    let dir = provider_dir()?;
    let writ = Writ::new(NOOP_CONFIG, &[("p.cedar", POLICY)]);
    let public_url = format!("http://127.0.0.1:{}", writ.port);
    let provider = Provider::start_for_web(dir, "k1", &format!("{public_url}/auth/callback")).await;
    writ.set_server(&format!("public_url = \"{public_url}\""));
    std::fs::OpenOptions::new()
        .append(true)
        .open(&writ.config)
        .and_then(|mut config| {
            std::io::Write::write_all(
                &mut config,
                format!(
                    "\n[[oidc]]\nissuer = \"{}\"\naudience = \"{AUDIENCE}\"\n\
                     web_client_id = \"writ-web\"\nweb_client_secret = \"web-secret\"\n",
                    provider.issuer()
                )
                .as_bytes(),
            )
        })
        .expect("config");
    Some((writ, provider))
}

const POLICY: &str = r#"permit (principal, action == Action::"request", resource);"#;

/// `GET /v1/whoami` with only `writ-session=<session>` for credentials.
async fn whoami_with_cookie(writ: &Writ, session: &str) -> (u16, Value) {
    json_of(
        reqwest::Client::new()
            .get(format!("{}/v1/whoami", writ.base()))
            .header("cookie", format!("writ-session={session}"))
            .send()
            .await
            .expect("get"),
    )
    .await
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_person_signs_in_with_a_browser_and_the_session_works_only_as_a_session() {
    let Some((mut writ, _provider)) = writ_and_provider().await else {
        return;
    };
    writ.start().await;
    let browser = Browser::new();
    let (landed, page) = browser
        .sign_in(
            &format!("{}/auth/login?return_to=/v1/whoami", writ.base()),
            "alice",
        )
        .await;
    assert_eq!(landed, format!("{}/v1/whoami", writ.base()), "{page}");
    let me: Value = serde_json::from_str(&page).expect("whoami JSON");
    assert_eq!(me["name"], "alice", "{me}");

    // The session cookie: not for scripts, not sent on other sites' requests.
    let session_cookie = browser
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("writ-session=") && !c.starts_with("writ-session=;"))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }
    let secret = session_cookie
        .trim_start_matches("writ-session=")
        .split(';')
        .next()
        .expect("a value")
        .to_string();

    // A change made with the cookie needs the session's CSRF token.
    let (status, session) = json_of(
        browser
            .http()
            .get(format!("{}/auth/session", writ.base()))
            .send()
            .await
            .expect("session"),
    )
    .await;
    assert_eq!((status, session["name"].as_str()), (200, Some("alice")));
    let csrf = session["csrf_token"].as_str().expect("csrf").to_string();
    let ask = json!({"entitlement": "t/read", "justification": "from the browser"});
    let requests = format!("{}/v1/requests", writ.base());
    let post = |csrf: Option<String>| {
        let mut request = browser.http().post(&requests).json(&ask);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        async move { json_of(request.send().await.expect("post")).await }
    };
    let (status, body) = post(None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("csrf_token_invalid")),
        "{body}"
    );
    let (status, body) = post(Some("0".repeat(32))).await;
    assert_eq!(status, 403, "a wrong CSRF token: {body}");
    let (status, body) = post(Some(csrf.clone())).await;
    assert_eq!(
        (status, body["requester"].as_str()),
        (201, Some("alice")),
        "{body}"
    );

    // The session secret is no bearer token, and a bearer token is no session.
    let (status, _) = writ.get("/v1/whoami", &secret).await;
    assert_eq!(status, 401, "a session secret used as a bearer token");
    let admin = writ.admin_token();
    let (status, _) = whoami_with_cookie(&writ, &admin).await;
    assert_eq!(status, 401, "a bearer token used as a session cookie");

    // Signing out ends the session: the cookie no longer works anywhere.
    let response = browser
        .http()
        .post(format!("{}/auth/logout", writ.base()))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(response.status().as_u16(), 303);
    let (status, _) = whoami_with_cookie(&writ, &secret).await;
    assert_eq!(status, 401, "the ended session still works");

    // Sign-in and sign-out are on the ledger (a session is a token of its own).
    let (_, audit) = writ.get("/v1/audit", &admin).await;
    let sessions: Vec<&str> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["data"]["session"] == true)
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(sessions, ["token.issued", "token.revoked"], "{audit}");
    let verify = writ.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", support::stderr(&verify));
}

#[tokio::test]
async fn a_sign_in_another_browser_started_or_an_outside_return_address_goes_nowhere() {
    let Some((mut writ, _provider)) = writ_and_provider().await else {
        return;
    };
    writ.start().await;

    // Somewhere else to return to: refused before anyone is sent to the provider.
    for outside in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
    ] {
        let response = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .get(format!("{}/auth/login", writ.base()))
            .query(&[("return_to", outside)])
            .send()
            .await
            .expect("login");
        assert_eq!(response.status().as_u16(), 400, "{outside}");
    }

    // Mallory starts a sign-in and gets the provider's answer for her own browser;
    // a victim's browser that is made to open that answer gets no session (login
    // CSRF), and neither does a callback with an altered sign-in cookie.
    let mallory = Browser::new();
    let login = mallory
        .http()
        .get(format!("{}/auth/login", writ.base()))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status().as_u16(), 303);
    let to_provider = login
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .expect("to the provider")
        .to_string();
    let sign_in_cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find(|c| c.starts_with("writ-signin="))
        .expect("the sign-in cookie")
        .to_string();
    assert!(sign_in_cookie.contains("HttpOnly"), "{sign_in_cookie}");
    // Through the provider's pages by hand, stopping at the answer meant for writ.
    let provider_only = Browser::new();
    let answer = answer_for(&provider_only, &to_provider, "mallory").await;
    assert!(
        answer.starts_with(&format!("{}/auth/callback?", writ.base())),
        "{answer}"
    );

    let victim = reqwest::Client::new();
    let (status, body) = json_of(victim.get(&answer).send().await.expect("callback")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("sign_in_failed")),
        "no sign-in cookie: {body}"
    );
    let value = sign_in_cookie
        .trim_start_matches("writ-signin=")
        .split(';')
        .next()
        .expect("value");
    let altered = format!("{}x", value);
    let (status, _) = json_of(
        victim
            .get(&answer)
            .header("cookie", format!("writ-signin={altered}"))
            .send()
            .await
            .expect("callback"),
    )
    .await;
    assert_eq!(status, 401, "an altered sign-in cookie");
    let (status, body) = json_of(
        victim
            .get(format!(
                "{}/auth/callback?code=abc&state=not-the-state",
                writ.base()
            ))
            .header("cookie", format!("writ-signin={value}"))
            .send()
            .await
            .expect("callback"),
    )
    .await;
    assert_eq!(status, 401, "another sign-in's state: {body}");

    // And with its own cookie, the answer signs in only someone writ knows.
    let (status, body) = json_of(
        victim
            .get(&answer)
            .header("cookie", format!("writ-signin={value}"))
            .send()
            .await
            .expect("callback"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_identity_unknown")),
        "mallory is no configured identity: {body}"
    );
}

/// Goes through the provider's pages as `login` from `url` (the provider's sign-in
/// address) and returns the address the provider sends the browser back to, without
/// opening it.
async fn answer_for(browser: &Browser, url: &str, login: &str) -> String {
    let mut next = url.to_string();
    let mut form: Option<Vec<(String, String)>> = None;
    for _ in 0..30 {
        let request = match form.take() {
            Some(fields) => browser.http().post(&next).form(&fields),
            None => browser.http().get(&next),
        };
        let response = request.send().await.expect("provider");
        let at = response.url().clone();
        if response.status().is_redirection() {
            let location = response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .expect("location");
            let target = at.join(location).expect("url").to_string();
            if target.contains("/auth/callback") {
                return target;
            }
            next = target;
            continue;
        }
        let page = response.text().await.expect("page");
        let (action, fields) = support::browser::form_of(&page, login).expect("a form");
        next = at.join(&action).expect("action").to_string();
        form = Some(fields);
    }
    panic!("the provider never sent the browser back");
}

/// The web UI with a provider: its sign-in page offers the provider and no token
/// form, a token posted to it anyway is refused, and the provider's sign-in is a
/// session the UI's pages know.
#[tokio::test]
async fn the_web_ui_signs_people_in_with_the_provider_only() {
    let Some((mut writ, provider)) = writ_and_provider().await else {
        return;
    };
    writ.start().await;
    let stranger = support::ui::UiClient::new(&writ.base());
    let page = stranger.get("/ui/signin?return_to=/ui/request").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        !page.body.contains("name=\"token\""),
        "no token form:\n{}",
        page.body
    );
    // The button's link, as HTML escapes it (`&` is written `&#38;`).
    let button = format!(
        "/auth/login?provider={}&#38;return_to=/ui/request",
        provider.issuer().replace(':', "%3A")
    );
    assert!(
        page.body.contains(&button),
        "{button} not in:\n{}",
        page.body
    );
    // A token posted anyway, with the sign-in form's own CSRF value (from its cookie:
    // the page has no token form to carry it): refused.
    let signin_csrf = page
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("writ-ui-signin="))
        .and_then(|c| c.split(';').next())
        .expect("the sign-in form's cookie")
        .to_string();
    let refused = stranger
        .post(
            "/ui/signin",
            &[
                ("token", writ.token("alice").as_str()),
                ("signin_csrf", &signin_csrf),
                ("return_to", "/ui"),
            ],
        )
        .await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("signs people in with their identity provider"),
        "{}",
        refused.body
    );

    let browser = Browser::new();
    let (landed, _) = browser
        .sign_in(
            &format!("{}/auth/login?return_to=/v1/whoami", writ.base()),
            "alice",
        )
        .await;
    assert_eq!(landed, format!("{}/v1/whoami", writ.base()));
    let mine = browser
        .http()
        .get(format!("{}/ui", writ.base()))
        .send()
        .await
        .expect("my access");
    assert_eq!(mine.status(), 200);
    let body = mine.text().await.expect("page");
    assert!(
        body.contains("Signed in as <strong>alice</strong>"),
        "{body}"
    );
}
