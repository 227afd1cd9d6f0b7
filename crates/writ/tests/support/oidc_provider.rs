//! A real OpenID provider for the tests: panva's `oidc-provider` from `tests/oidc`
//! (`.ci/run` runs `npm ci` there and sets WRIT_OIDC_PROVIDER, which makes it
//! required), with its keys in a file a test can rotate.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::free_port;

pub const AUDIENCE: &str = "https://writ.test";

/// `tests/oidc`, with its npm packages installed (`.ci/run` runs `npm ci` there and
/// sets WRIT_OIDC_PROVIDER, which makes the provider required).
pub fn provider_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
    let installed = dir.join("node_modules/oidc-provider").exists();
    if std::env::var_os("WRIT_OIDC_PROVIDER").is_some() {
        assert!(
            installed,
            "WRIT_OIDC_PROVIDER is set but {} has no node_modules: run npm ci there",
            dir.display()
        );
    }
    if !installed {
        eprintln!(
            "oidc: {} has no node_modules (npm ci there): skipped",
            dir.display()
        );
        return None;
    }
    Some(dir)
}

fn node(dir: &PathBuf, args: &[&str]) -> String {
    let output = Command::new("node")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("node");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

pub struct Provider {
    dir: PathBuf,
    /// The `as-NAME` machine clients (`alice~helper`: an agent acting for alice).
    names: String,
    port: u16,
    child: Option<Child>,
    pub jwks: PathBuf,
    /// Where the `writ-web` client may send browsers back to (writ's `/auth/callback`).
    web_redirect: Option<String>,
    _keys: tempfile::TempDir,
}

impl Provider {
    pub async fn start(dir: PathBuf, kid: &str) -> Self {
        Self::start_with(dir, kid, None, &[]).await
    }

    /// A provider that also issues the tokens a token exchange (RFC 8693) gives agents
    /// acting for people: `chains` like `alice~helper~planner` (see `token_for`).
    pub async fn start_with_chains(dir: PathBuf, kid: &str, chains: &[&str]) -> Self {
        Self::start_with(dir, kid, None, chains).await
    }

    /// A provider whose confidential `writ-web` client (secret `web-secret`) may send
    /// browsers back to `redirect_uri`.
    pub async fn start_for_web(dir: PathBuf, kid: &str, redirect_uri: &str) -> Self {
        Self::start_with(dir, kid, Some(redirect_uri.to_string()), &[]).await
    }

    async fn start_with(
        dir: PathBuf,
        kid: &str,
        web_redirect: Option<String>,
        chains: &[&str],
    ) -> Self {
        writ_itsm::install_crypto_provider();
        let keys = tempfile::tempdir().expect("tempdir");
        let mut provider = Self {
            jwks: keys.path().join("jwks.json"),
            port: free_port(),
            names: ["alice", "carol", "mallory"]
                .iter()
                .chain(chains)
                .copied()
                .collect::<Vec<_>>()
                .join(","),
            dir,
            child: None,
            web_redirect,
            _keys: keys,
        };
        provider.rotate(kid).await;
        provider
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Restarts the provider on the same address with a new key.
    pub async fn rotate(&mut self, kid: &str) {
        self.stop();
        std::fs::write(&self.jwks, node(&self.dir, &["keys.mjs", "RS256", kid])).expect("jwks");
        let child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(&self.dir)
            .env("WRIT_OIDC_ISSUER", self.issuer())
            .env("WRIT_OIDC_PORT", self.port.to_string())
            .env("WRIT_OIDC_JWKS", &self.jwks)
            .env("WRIT_OIDC_AUDIENCE", AUDIENCE)
            .env("WRIT_OIDC_NAMES", &self.names)
            .env(
                "WRIT_OIDC_WEB_REDIRECT",
                self.web_redirect.as_deref().unwrap_or_default(),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start oidc-provider");
        self.child = Some(child);
        let discovery = format!("{}/.well-known/openid-configuration", self.issuer());
        let up = super::eventually(Duration::from_secs(15), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        })
        .await;
        assert!(up, "oidc-provider did not start");
        let answer = reqwest::get(&discovery).await.expect("discovery");
        assert!(answer.status().is_success());
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A token the provider issues (client credentials for `as-NAME`: a JWT access
    /// token for writ whose preferred_username is NAME; for a chain `alice~helper`, one
    /// naming alice with `act: {sub: helper}`).
    pub async fn token_for(&self, name: &str) -> String {
        let answer: Value = reqwest::Client::new()
            .post(format!("{}/token", self.issuer()))
            .basic_auth(format!("as-{name}"), Some("test-secret"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&scope=openid")
            .send()
            .await
            .expect("token endpoint")
            .json()
            .await
            .expect("JSON");
        answer["access_token"]
            .as_str()
            .expect("a token")
            .to_string()
    }

    /// A token signed with the provider's own key, saying whatever the test wants.
    pub fn crafted(&self, header: Value, claims: Value) -> String {
        node(
            &self.dir,
            &[
                "sign.mjs",
                self.jwks.to_str().expect("path"),
                &header.to_string(),
                &claims.to_string(),
            ],
        )
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop();
    }
}
