//! Bearer tokens from a real OpenID provider (panva's `oidc-provider`, started by the
//! test from `tests/oidc`): accepted while valid and naming a configured identity, and
//! every forged, stale or misdirected one refused — each a case below. Key rotation at
//! the provider needs no restart of writ.

mod support;

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde_json::{Value, json};
use support::Writ;
use support::oidc_provider::{AUDIENCE, Provider, provider_dir};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn status_and_code(writ: &Writ, token: &str) -> (u16, String) {
    let (status, body) = writ.get("/v1/grants", token).await;
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test]
async fn provider_tokens_are_accepted_only_when_valid_for_writ_and_a_configured_identity() {
    let Some(dir) = provider_dir() else { return };
    let mut provider = Provider::start(dir, "k1").await;
    let mut writ = Writ::new(
        &format!(
            r#"
[[oidc]]
issuer = "{}"
audience = "{AUDIENCE}"

[[target]]
name = "files"
kind = "noop"

[[entitlement]]
id = "files/read"
target = "files"
role = "read"
sensitivity = "low"
max_duration = "1h"

[[user]]
name = "alice"
groups = ["engineers"]

[[user]]
name = "carol"
disabled = true
"#,
            provider.issuer()
        ),
        &[(
            "p.cedar",
            r#"permit (principal in Group::"engineers", action == Action::"request", resource);"#,
        )],
    );
    writ.start().await;

    // A token the provider issued for alice: she is the caller.
    let alice = provider.token_for("alice").await;
    let (status, request) = writ
        .post(
            "/v1/requests",
            &alice,
            json!({"entitlement": "files/read", "justification": "signed in with the IdP"}),
        )
        .await;
    assert_eq!(status, 201, "{request}\n{}", writ.log());
    assert_eq!(request["requester"], "alice");
    let (status, me) = writ.get("/v1/whoami", &alice).await;
    assert_eq!(
        (status, me["name"].as_str(), me["admin"].as_bool()),
        (200, Some("alice"), Some(false)),
        "{me}"
    );
    let whoami = writ.run(&["whoami", "--token", &alice]);
    assert!(
        whoami.status.success() && support::stdout(&whoami).starts_with("alice (user)"),
        "{}{}",
        support::stdout(&whoami),
        support::stderr(&whoami)
    );

    // Valid tokens for people writ does not know, or who are disabled.
    let carol = provider.token_for("carol").await;
    assert_eq!(
        status_and_code(&writ, &carol).await,
        (401, "token_identity_disabled".into())
    );
    let mallory = provider.token_for("mallory").await;
    assert_eq!(
        status_and_code(&writ, &mallory).await,
        (401, "token_identity_unknown".into())
    );

    // Signed with the provider's key, but not acceptable.
    let issuer = provider.issuer();
    let claims = |extra: Value| {
        let mut claims = json!({
            "iss": issuer, "aud": AUDIENCE, "preferred_username": "alice",
            "iat": now(), "exp": now() + 600,
        });
        for (key, value) in extra.as_object().expect("object") {
            claims[key] = value.clone();
        }
        claims
    };
    let rs256 = json!({"alg": "RS256", "kid": "k1"});
    let cases = [
        (
            "a token signed like the provider's",
            provider.crafted(rs256.clone(), claims(json!({}))),
            200,
        ),
        (
            "an expired token",
            provider.crafted(rs256.clone(), claims(json!({"exp": now() - 3600}))),
            401,
        ),
        (
            "a token not valid yet",
            provider.crafted(rs256.clone(), claims(json!({"nbf": now() + 3600}))),
            401,
        ),
        (
            "a token issued in the future",
            provider.crafted(rs256.clone(), claims(json!({"iat": now() + 3600}))),
            401,
        ),
        (
            "a token for another audience",
            provider.crafted(rs256.clone(), claims(json!({"aud": "https://other.test"}))),
            401,
        ),
        (
            "a token from another issuer",
            provider.crafted(rs256.clone(), claims(json!({"iss": "https://evil.test"}))),
            401,
        ),
        (
            "a token without an expiry",
            provider.crafted(rs256.clone(), {
                let mut c = claims(json!({}));
                c.as_object_mut().expect("object").remove("exp");
                c
            }),
            401,
        ),
        (
            "a token signed with a key the provider does not publish",
            provider.crafted(json!({"alg": "RS256", "kid": "k9"}), claims(json!({}))),
            401,
        ),
    ];
    for (what, token, expected) in &cases {
        let (status, code) = status_and_code(&writ, token).await;
        assert_eq!(status, *expected, "{what}: {code}");
        if *expected == 401 {
            assert_eq!(code, "unauthenticated", "{what}");
        }
    }

    // Groups come from writ's identities: a groups claim the provider adds (or anyone
    // who controls it) makes nobody an admin or an auditor.
    let claiming_admin = provider.crafted(
        rs256.clone(),
        claims(json!({"groups": ["admins", "auditors"], "roles": ["admin"]})),
    );
    let (status, me) = writ.get("/v1/whoami", &claiming_admin).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["admin"].as_bool(), me["auditor"].as_bool()),
        (Some(false), Some(false)),
        "{me}"
    );
    assert_eq!(me["groups"], json!(["engineers"]));
    assert_eq!(writ.get("/v1/audit", &claiming_admin).await.0, 403);

    // Forged without the key: alg none, HS256 keyed with the public key, a payload
    // changed under a real signature.
    let body = b64(claims(json!({})).to_string().as_bytes());
    let unsigned = format!("{}.{body}.", b64(br#"{"alg":"none","kid":"k1"}"#));
    let public_jwks = std::fs::read_to_string(&provider.jwks).expect("jwks");
    let hs_header = b64(br#"{"alg":"HS256","kid":"k1"}"#);
    let hs256 = {
        use hmac::{KeyInit, Mac};
        let input = format!("{hs_header}.{body}");
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(public_jwks.as_bytes()).expect("any key");
        mac.update(input.as_bytes());
        format!("{input}.{}", b64(&mac.finalize().into_bytes()))
    };
    let mut parts: Vec<String> = alice.split('.').map(str::to_string).collect();
    let mut payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&parts[1])
            .expect("base64"),
    )
    .expect("claims");
    payload["preferred_username"] = json!("carol-admin");
    parts[1] = b64(payload.to_string().as_bytes());
    let tampered = parts.join(".");
    for (what, token) in [
        ("alg none", unsigned),
        ("HS256 with the public key", hs256),
        ("a tampered payload", tampered),
    ] {
        assert_eq!(
            status_and_code(&writ, &token).await,
            (401, "unauthenticated".into()),
            "{what}"
        );
    }

    // The provider rotates its key: new tokens are accepted without restarting writ
    // (it fetches the keys again on an unknown kid, at most every 10 s), old ones no
    // longer are.
    tokio::time::sleep(Duration::from_secs(10)).await;
    provider.rotate("k2").await;
    let rotated = provider.token_for("alice").await;
    assert_eq!(
        writ.get("/v1/grants", &rotated).await.0,
        200,
        "{}",
        writ.log()
    );
    assert_eq!(
        status_and_code(&writ, &alice).await,
        (401, "unauthenticated".into())
    );

    // The provider down: a token naming a key writ has not seen cannot be checked.
    provider.stop();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let unseen = provider.crafted(json!({"alg": "RS256", "kid": "k3"}), claims(json!({})));
    assert_eq!(
        status_and_code(&writ, &unseen).await,
        (503, "identity_provider_unavailable".into())
    );
    // What was fetched still verifies.
    assert_eq!(writ.get("/v1/grants", &rotated).await.0, 200);

    writ.stop();
    assert!(writ.run(&["audit", "verify"]).status.success());
}
