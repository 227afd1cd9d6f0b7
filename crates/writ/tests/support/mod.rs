//! Test harness: a real `writ` process on a free port, with its own folder; per-test
//! PostgreSQL roles and databases (from `writ-testkit`) so tests never see each
//! other's state.

#![allow(dead_code)]

pub mod authzen;
pub mod browser;
pub mod chaos;
pub mod fake_jira;
pub mod fake_servicenow;
pub mod jwt;
pub mod oidc_provider;
pub mod sink;
pub mod ui;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use writ_api::GrantView;
use writ_domain::lifecycle::GrantState;
use writ_domain::{GrantId, Request};

#[allow(unused_imports)] // each test file uses some of them
pub use writ_testkit::pg::{ADMIN_URL as PG_URL, TestDatabase, TestRoles, unique};

pub fn writ_binary() -> &'static str {
    env!("CARGO_BIN_EXE_writ")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The admin added to every test config.
pub const ADMIN: &str = "test-admin";
const ADMIN_USER: &str = "[[user]]\nname = \"test-admin\"\ngroups = [\"admins\"]\n";

pub struct Writ {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub port: u16,
    child: Option<Child>,
    pub http: reqwest::Client,
    /// "https" once `use_tls` is called.
    scheme: &'static str,
    /// Whether a PostgreSQL database has been given writ's schema (`ensure_schema`).
    schema_ready: std::sync::atomic::AtomicBool,
}

impl Writ {
    /// A folder with `writ.toml` (the `[server]` table is added here) and `policies/`.
    pub fn new(config_body: &str, policies: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = dir.path().join("writ.toml");
        std::fs::write(
            &config,
            format!("[server]\nlisten = \"127.0.0.1:{port}\"\n\n{config_body}\n{ADMIN_USER}"),
        )
        .expect("write config");
        std::fs::create_dir_all(dir.path().join("policies")).expect("policies dir");
        for (name, text) in policies {
            std::fs::write(dir.path().join("policies").join(name), text).expect("write policy");
        }
        Self {
            dir,
            config,
            port,
            child: None,
            scheme: "http",
            schema_ready: std::sync::atomic::AtomicBool::new(false),
            http: {
                writ_itsm::install_crypto_provider();
                reqwest::Client::new()
            },
        }
    }

    /// Adds `settings` (e.g. `rate_limit = "off"`) to the config's `[server]` table.
    pub fn set_server(&self, settings: &str) {
        self.replace_in_config("[server]\n", &format!("[server]\n{settings}\n"));
    }

    /// Replaces the first `from` in the config file with `to` (for the next start); the
    /// text must be there, so that a mistyped edit fails the test instead of doing nothing.
    pub fn replace_in_config(&self, from: &str, to: &str) {
        let config = std::fs::read_to_string(&self.config).expect("config");
        assert!(
            config.contains(from),
            "{from:?} is not in the config:\n{config}"
        );
        std::fs::write(&self.config, config.replacen(from, to, 1)).expect("config");
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn base(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// Talks to writ over TLS from now on, trusting only `ca_pem`, and presenting
    /// `client_pem` (a certificate and its key) when given.
    pub fn use_tls(&mut self, ca_pem: &str, client_pem: Option<&str>) {
        self.scheme = "https";
        self.http = tls_client(ca_pem, client_pem);
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.ensure_schema();
        self.command_as_is(args)
    }

    /// A PostgreSQL database changes schema only by `writ migrate` (or `serve
    /// --migrate`), as an operator would run it: done once, before the first command.
    fn ensure_schema(&self) {
        if self
            .schema_ready
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let config = std::fs::read_to_string(&self.config).unwrap_or_default();
        let storage_is_postgres = config
            .split("[storage]")
            .nth(1)
            .and_then(|rest| rest.lines().find(|l| l.trim_start().starts_with("url")))
            .is_some_and(|line| line.contains("postgres"));
        if storage_is_postgres {
            // A database that cannot be reached yet is the test's business: the
            // command that needs it says so.
            let _ = self.command_as_is(&["migrate"]).output();
        }
    }

    /// `command`, without making sure the database has writ's schema first.
    pub fn command_as_is(&self, args: &[&str]) -> Command {
        let mut command = Command::new(writ_binary());
        command
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env_remove("WRIT_TOKEN")
            .env_remove("WRIT_SERVER")
            // Sign-ins from `writ login` are the test's own, never the user's.
            .env("WRIT_CREDENTIALS", self.path("credentials.json"));
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run writ")
    }

    /// A token of the admin every test config has (reads everything: the audit log,
    /// every grant, the outbox).
    pub fn admin_token(&self) -> String {
        self.token(ADMIN)
    }

    pub fn token(&self, identity: &str) -> String {
        let output = self.run(&["token", "issue", identity]);
        assert!(
            output.status.success(),
            "token issue failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .expect("utf8")
            .trim()
            .to_string()
    }

    /// Starts `writ serve` and waits until /healthz answers.
    pub async fn start(&mut self) {
        self.start_with_env(&[]).await;
    }

    /// `start`, with these environment variables set for the server.
    pub async fn start_with_env(&mut self, env: &[(&str, &str)]) {
        self.spawn(env);
        self.wait_until_ready().await;
    }

    /// Waits until the server started by `spawn…` answers /healthz; panics with its log
    /// if it exits or does not within 30 s.
    pub async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(response) = self
                .http
                .get(format!("{}/healthz", self.base()))
                .send()
                .await
                && response.status().is_success()
            {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("writ serve exited with {status}: {}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("writ serve did not become ready: {}", self.log());
    }

    /// Starts `writ serve` (with these environment variables) without waiting for it.
    pub fn spawn(&mut self, env: &[(&str, &str)]) {
        self.ensure_schema();
        self.spawn_as_is(&["serve"], env);
    }

    /// Starts `writ ARGS` (e.g. `serve --migrate`) as the server, as it is: without
    /// the harness's `writ migrate` first.
    pub fn spawn_with_args(&mut self, args: &[&str]) {
        self.spawn_as_is(args, &[]);
    }

    fn spawn_as_is(&mut self, args: &[&str], env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("serve.log"))
            .expect("log file");
        let child = self
            .command_as_is(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn writ serve");
        self.child = Some(child);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("serve.log")).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (e.g. "HUP") to the running server.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("writ serve is running");
        send_signal(child.id(), signal);
    }

    /// SIGTERM and wait: the graceful path.
    pub fn stop(&mut self) {
        self.stop_and_wait();
    }

    /// SIGTERM, wait, and return the exit code (None if not running or killed by a signal).
    pub fn stop_and_wait(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        send_signal(child.id(), "TERM");
        child.wait().ok().and_then(|status| status.code())
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("HTTP call");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    /// Polls a grant until `done` says yes or `timeout` passes; returns the last view.
    /// Waits until the evidence outbox is empty; the last view of it.
    pub async fn wait_for_outbox_drained(&self, timeout: Duration) -> Value {
        self.wait_for_outbox(timeout, |outbox| outbox["backlog"] == 0)
            .await
    }

    /// Waits until the evidence outbox (`GET /v1/itsm/outbox`) satisfies `done`; the
    /// last view of it.
    pub async fn wait_for_outbox(&self, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, outbox) = self.get("/v1/itsm/outbox", &self.admin_token()).await;
            if done(&outbox) || Instant::now() > deadline {
                return outbox;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `POST /v1/requests`, which must answer 201: the request as writ's own record.
    pub async fn request_access(&self, token: &str, body: Value) -> Request {
        let (status, request) = self.post("/v1/requests", token, body).await;
        assert_eq!(status, 201, "{request}");
        serde_json::from_value(request.clone()).unwrap_or_else(|e| panic!("{e}: {request}"))
    }

    /// `GET /v1/grants/{id}`, which must answer 200: the grant as the API's typed view.
    pub async fn grant(&self, id: GrantId, token: &str) -> GrantView {
        let (status, grant) = self.get(&format!("/v1/grants/{id}"), token).await;
        assert_eq!(status, 200, "{grant}");
        serde_json::from_value(grant.clone()).unwrap_or_else(|e| panic!("{e}: {grant}"))
    }

    /// Polls a grant until it is in `state`; panics with the log if it is not within
    /// `timeout`.
    pub async fn wait_for_grant_state(
        &self,
        id: GrantId,
        token: &str,
        timeout: Duration,
        state: GrantState,
    ) -> GrantView {
        let deadline = Instant::now() + timeout;
        loop {
            let view = self.grant(id, token).await;
            if view.grant.state == state {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "grant {id} is {} after {timeout:?}, not {state}\n{}",
                view.grant.state,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn wait_for_grant(
        &self,
        id: &str,
        token: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, grant) = self.get(&format!("/v1/grants/{id}"), token).await;
            assert_eq!(status, 200, "{grant}");
            if done(&grant) || Instant::now() > deadline {
                return grant;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Writ {
    /// The ledger's public key (`writ audit pubkey`).
    pub fn pubkey(&self) -> String {
        let output = self.run(&["audit", "pubkey"]);
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output).trim().to_string()
    }

    /// The grant's evidence document as JSON, written offline by `writ evidence`, once
    /// `writ evidence verify` has accepted it — and its Markdown form — under the
    /// ledger's public key.
    pub fn evidence(&self, grant: &str) -> Value {
        let pubkey = self.pubkey();
        for (extra, name) in [(&["--json"][..], "evidence.json"), (&[][..], "evidence.md")] {
            let file = self.path(name);
            let file = file.to_str().expect("path");
            let mut args = vec!["evidence", grant, "--out", file];
            args.extend_from_slice(extra);
            let output = self.run(&args);
            assert!(
                output.status.success(),
                "evidence {grant}: {}",
                stderr(&output)
            );
            let output = self.run(&["evidence", "verify", file, "--pubkey", &pubkey]);
            assert!(
                output.status.success() && stdout(&output).contains("verified"),
                "evidence verify {name}: {}{}",
                stdout(&output),
                stderr(&output)
            );
        }
        let text = std::fs::read_to_string(self.path("evidence.json")).expect("the document");
        serde_json::from_str(&text).expect("JSON")
    }
}

/// The text of the statement about `topic` in an evidence document.
pub fn statement(document: &Value, topic: &str) -> String {
    document["statements"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["topic"] == topic))
        .and_then(|s| s["text"].as_str())
        .unwrap_or_else(|| panic!("no {topic} statement: {document:#}"))
        .to_string()
}

impl Drop for Writ {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// An HTTP client that trusts only `ca_pem` and presents `client_pem` when given.
pub fn tls_client(ca_pem: &str, client_pem: Option<&str>) -> reqwest::Client {
    writ_itsm::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM")]);
    if let Some(client_pem) = client_pem {
        builder =
            builder.identity(reqwest::Identity::from_pem(client_pem.as_bytes()).expect("identity"));
    }
    builder.build().expect("TLS client")
}

/// The workspace forbids unsafe code (so no libc::kill); the `kill` command does the job.
fn send_signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

/// A configuration most end-to-end tests can start from: SQLite, a `noop` target `t`
/// with a low-sensitivity entitlement `t/read`, and the user alice.
pub const NOOP_CONFIG: &str = r#"
[storage]
url = "sqlite://writ.db"

[[target]]
name = "t"
kind = "noop"

[[entitlement]]
id = "t/read"
target = "t"
role = "read"
sensitivity = "low"
max_duration = "1h"

[[user]]
name = "alice"
"#;

/// An external tool the tests use when it is there: the path in `env_var` (set by
/// `.ci/run`), or `program` if running it with `probe` succeeds; `None` otherwise (the
/// test says it skipped).
pub fn external_tool(env_var: &str, program: &str, probe: &[&str]) -> Option<String> {
    if let Ok(path) = std::env::var(env_var) {
        return Some(path);
    }
    Command::new(program)
        .args(probe)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| program.to_string())
}

/// Runs `command` with `input` on its stdin: whether it succeeded, and its stdout and
/// stderr together.
pub fn run_with_input(mut command: Command, input: &[u8]) -> (bool, String) {
    use std::io::Write as _;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the program runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write its input");
    let output = child.wait_with_output().expect("the program ends");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

/// Sends `request` (a webhook delivery, say): the status and the body as JSON (a JSON
/// string when it is not JSON); status 0 and the error when it could not be sent.
pub async fn answer_of(request: reqwest::RequestBuilder) -> (u16, Value) {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        }
        Err(error) => (0, Value::String(error.to_string())),
    }
}

/// Polls `done` every 100 ms until it holds or `timeout` passes; whether it holds.
pub async fn eventually(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done()
}

/// Milliseconds since the epoch, as webhook senders stamp their deliveries.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Forwards connections to PostgreSQL while `up`; cutting it closes every open
/// connection and refuses new ones, as a network partition would.
pub struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = watch::channel(0u64);
        let (accept_up, accept_cut) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !accept_up.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut = accept_cut.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect("127.0.0.1:5432").await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { port, up, cut }
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            self.cut.send_modify(|generation| *generation += 1);
        }
    }
}
