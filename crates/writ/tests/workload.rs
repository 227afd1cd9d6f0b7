//! Services and agents prove who they are with tokens their platform issues —
//! Kubernetes service-account tokens, GitHub Actions OIDC tokens, SPIFFE JWT-SVIDs —
//! each bound to one identity by issuer, `sub` and claim conditions; and writ's own
//! tokens can be switched off per identity kind. Every way around it is a case below.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::jwt::Signer;
use support::{NOOP_CONFIG, Writ, stderr};

const K8S: &str = "https://kubernetes.default.svc.cluster.local";
const GITHUB: &str = "https://token.actions.githubusercontent.com";
const SPIRE: &str = "https://oidc.spire.acme.test";
const RELEASE_WORKFLOW: &str = "acme/infra/.github/workflows/release.yml@refs/heads/main";

/// Besides the test kit's NOOP_CONFIG (target `t`, `t/read`, alice).
const CONFIG: &str = r#"
[[workload_issuer]]
name = "k8s"
issuer = "https://kubernetes.default.svc.cluster.local"
audience = "writ"
jwks_file = "k8s-jwks.json"

[[workload_issuer]]
name = "github"
issuer = "https://token.actions.githubusercontent.com"
audience = "https://writ.test"
jwks_file = "github-jwks.json"
max_lifetime = "10m"

[[workload_issuer]]
name = "spire"
issuer = "https://oidc.spire.acme.test"
audience = "writ"
jwks_file = "spire-jwks.json"

[[service]]
name = "deployer"
owner = "alice"
groups = ["deployers"]
workload = [{ issuer = "k8s", subject = "system:serviceaccount:ci:deployer" }]

[[service]]
name = "payments"
owner = "alice"
workload = [{ issuer = "spire", subject = "spiffe://acme.test/ns/prod/sa/payments" }]

[[service]]
name = "retired"
owner = "alice"
disabled = true
workload = [{ issuer = "k8s", subject = "system:serviceaccount:ci:retired" }]

[[agent]]
name = "release-bot"
owner = "alice"
workload = [{ issuer = "github", subject = "repo:acme/infra:environment:prod", claims = { job_workflow_ref = "acme/infra/.github/workflows/release.yml@refs/heads/main" } }]
"#;

fn config() -> String {
    format!("{NOOP_CONFIG}\n{CONFIG}")
}

const POLICY: &str =
    r#"permit (principal in Group::"deployers", action == Action::"request", resource);"#;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct Platforms {
    k8s: Signer,
    github: Signer,
    spire: Signer,
}

/// A writ trusting three platforms, each with a key of its own in a JWKS file.
fn writ_and_platforms(extra: &str) -> (Writ, Platforms) {
    let writ = Writ::new(&format!("{}\n{extra}", config()), &[("p.cedar", POLICY)]);
    let platforms = Platforms {
        k8s: Signer::new("k8s-1"),
        github: Signer::new("gh-1"),
        spire: Signer::new("spire-1"),
    };
    for (file, signer) in [
        ("k8s-jwks.json", &platforms.k8s),
        ("github-jwks.json", &platforms.github),
        ("spire-jwks.json", &platforms.spire),
    ] {
        std::fs::write(writ.path(file), signer.jwks().to_string()).expect("jwks");
    }
    (writ, platforms)
}

/// A Kubernetes projected service-account token's claims (iat now, an hour to live).
fn k8s_claims(namespace: &str, name: &str) -> Value {
    json!({
        "iss": K8S, "aud": ["writ"], "sub": format!("system:serviceaccount:{namespace}:{name}"),
        "iat": now(), "nbf": now(), "exp": now() + 3600,
        "kubernetes.io": { "namespace": namespace, "serviceaccount": { "name": name, "uid": "5b1c" } },
    })
}

/// A GitHub Actions OIDC token's claims for a job in environment `prod`.
fn github_claims(workflow: &str) -> Value {
    json!({
        "iss": GITHUB, "aud": "https://writ.test", "sub": "repo:acme/infra:environment:prod",
        "repository": "acme/infra", "repository_owner": "acme", "environment": "prod",
        "ref": "refs/heads/main", "job_workflow_ref": workflow,
        "iat": now(), "nbf": now(), "exp": now() + 300,
    })
}

/// (status, name or error code) of `GET /v1/whoami` with `token`.
async fn who(writ: &Writ, token: &str) -> (u16, String) {
    let (status, body) = writ.get("/v1/whoami", token).await;
    let said = if status == 200 {
        body["name"].as_str()
    } else {
        body["error"]["code"].as_str()
    };
    (status, said.unwrap_or_default().to_string())
}

#[tokio::test]
async fn platform_tokens_prove_the_service_or_agent_they_are_bound_to() {
    let (mut writ, platforms) = writ_and_platforms("");
    writ.start().await;

    let deployer = platforms.k8s.sign(&k8s_claims("ci", "deployer"));
    assert_eq!(who(&writ, &deployer).await, (200, "deployer".into()));
    // Bound by the same policy as any caller: deployer may request, release-bot may not.
    let request = writ
        .request_access(
            &deployer,
            json!({"entitlement": "t/read", "justification": "deploy 4711"}),
        )
        .await;
    assert_eq!(request.requester.as_str(), "deployer");

    let release_bot = platforms.github.sign(&github_claims(RELEASE_WORKFLOW));
    assert_eq!(who(&writ, &release_bot).await, (200, "release-bot".into()));
    let (status, body) = writ
        .post(
            "/v1/requests",
            &release_bot,
            json!({"entitlement": "t/read", "justification": "release", "on_behalf_of": "alice"}),
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (201, Some("denied")),
        "{body}"
    );

    let svid = platforms.spire.sign(&json!({
        "iss": SPIRE, "aud": ["writ"], "sub": "spiffe://acme.test/ns/prod/sa/payments",
        "iat": now(), "exp": now() + 300,
    }));
    assert_eq!(who(&writ, &svid).await, (200, "payments".into()));

    // The CLI takes a platform token like any other.
    let output = writ.run(&["whoami", "--token", &deployer]);
    assert!(
        support::stdout(&output).starts_with("deployer (service)"),
        "{}{}",
        support::stdout(&output),
        stderr(&output)
    );
}

#[tokio::test]
async fn a_platform_token_that_is_not_exactly_right_proves_nobody() {
    let (mut writ, platforms) = writ_and_platforms("");
    writ.start().await;
    let unknown = (401, "token_identity_unknown".to_string());
    let refused = (401, "unauthenticated".to_string());

    // A service account writ does not know, and one whose name only resembles.
    let cases = [
        (
            "another service account",
            platforms.k8s.sign(&k8s_claims("ci", "builder")),
            unknown.clone(),
        ),
        (
            "another namespace",
            platforms.k8s.sign(&k8s_claims("dev", "deployer")),
            unknown.clone(),
        ),
        (
            "a workload token naming a person",
            platforms.k8s.sign(&json!({
                "iss": K8S, "aud": "writ", "sub": "alice", "preferred_username": "test-admin",
                "iat": now(), "exp": now() + 600,
            })),
            unknown.clone(),
        ),
        (
            "the right repository and environment from another workflow",
            platforms.github.sign(&github_claims(
                "acme/infra/.github/workflows/pr-checks.yml@refs/heads/feature",
            )),
            unknown.clone(),
        ),
        (
            "a disabled service's token",
            platforms.k8s.sign(&k8s_claims("ci", "retired")),
            (401, "token_identity_disabled".to_string()),
        ),
        (
            "a token that lives longer than max_lifetime (2 h, at most 1 h)",
            platforms.k8s.sign(&{
                let mut claims = k8s_claims("ci", "deployer");
                claims["exp"] = json!(now() + 7200);
                claims
            }),
            refused.clone(),
        ),
        (
            "a GitHub token that lives 1 h (at most 10 min there)",
            platforms.github.sign(&{
                let mut claims = github_claims(RELEASE_WORKFLOW);
                claims["exp"] = json!(now() + 3600);
                claims
            }),
            refused.clone(),
        ),
        (
            "a long-lived token without iat",
            platforms.k8s.sign(&{
                let mut claims = k8s_claims("ci", "deployer");
                claims.as_object_mut().expect("claims").remove("iat");
                claims["exp"] = json!(now() + 86_400);
                claims
            }),
            refused.clone(),
        ),
        (
            "an expired token",
            platforms.k8s.sign(&{
                let mut claims = k8s_claims("ci", "deployer");
                claims["iat"] = json!(now() - 7200);
                claims["exp"] = json!(now() - 3600);
                claims
            }),
            refused.clone(),
        ),
        (
            "another audience",
            platforms.k8s.sign(&{
                let mut claims = k8s_claims("ci", "deployer");
                claims["aud"] = json!(["vault"]);
                claims
            }),
            refused.clone(),
        ),
        (
            "signed by another platform's key (GitHub's key, Kubernetes' issuer)",
            platforms.github.sign(&k8s_claims("ci", "deployer")),
            refused.clone(),
        ),
        (
            "an issuer writ does not trust",
            platforms.k8s.sign(&{
                let mut claims = k8s_claims("ci", "deployer");
                claims["iss"] = json!("https://evil.example");
                claims
            }),
            refused.clone(),
        ),
    ];
    for (case, token, expected) in cases {
        assert_eq!(who(&writ, &token).await, expected, "{case}");
    }
    // Signed by the right key, then altered: the signature no longer verifies.
    let token = platforms.k8s.sign(&k8s_claims("ci", "builder"));
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[1] = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(k8s_claims("ci", "deployer").to_string())
    };
    assert_eq!(
        who(&writ, &parts.join(".")).await,
        refused,
        "a tampered payload"
    );
}

#[tokio::test]
async fn writ_tokens_can_be_switched_off_for_services_and_agents() {
    let (mut writ, platforms) = writ_and_platforms("");
    // Issued while services still take writ tokens.
    let old_token = writ.token("deployer");
    writ.replace_in_config(
        "[[target]]",
        "[access]\nstatic_tokens = [\"user\"]\n\n[[target]]",
    );
    let output = writ.run(&["token", "issue", "deployer"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("static_tokens"),
        "{}",
        stderr(&output)
    );
    writ.start().await;
    assert_eq!(
        who(&writ, &old_token).await,
        (401, "static_tokens_disabled".into())
    );
    // People keep theirs; the service proves itself with its platform's token.
    let admin = writ.admin_token();
    assert_eq!(who(&writ, &admin).await, (200, support::ADMIN.into()));
    let deployer = platforms.k8s.sign(&k8s_claims("ci", "deployer"));
    assert_eq!(who(&writ, &deployer).await, (200, "deployer".into()));
}

#[test]
fn bindings_that_could_prove_two_identities_or_a_person_are_refused() {
    let writ = Writ::new(&config(), &[]);
    let check = |from: &str, to: &str, expected: &str| {
        writ.replace_in_config(from, to);
        let output = writ.run(&["policy", "check"]);
        assert!(!output.status.success(), "{to}");
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
        writ.replace_in_config(to, from);
    };
    check(
        "system:serviceaccount:ci:retired",
        "system:serviceaccount:ci:deployer",
        "also proves deployer",
    );
    check(
        "[[user]]\nname = \"alice\"\n",
        "[[user]]\nname = \"alice\"\nworkload = [{ issuer = \"k8s\", subject = \"alice\" }]\n",
        "people sign in through an [[oidc]] provider",
    );
    check(
        "issuer = \"spire\"",
        "issuer = \"spiree\"",
        "\"spiree\" is not a configured [[workload_issuer]]",
    );
    check(
        "max_lifetime = \"10m\"",
        "max_lifetime = \"0s\"",
        "workload_issuer[1].max_lifetime",
    );
}
