//! The `command` connector: runs a program for each call.
//!
//! Protocol (see docs/connectors.md): the program gets one JSON document on stdin,
//! `{"action": "grant"|"revoke"|"check", "target": "...", "role": "...", "account": "..."}`,
//! and the same values in the environment (`WRIT_ACTION`, `WRIT_TARGET`, `WRIT_ROLE`,
//! `WRIT_ACCOUNT`). Exit status 0 means done. For `check` it prints `{"held": true}` or
//! `{"held": false}` on stdout. For `list` (reconciliation; `account` is empty) it prints
//! `{"accounts": ["...", ...]}`: every account holding `role`. Any other exit status is a failure and its stderr the
//! reason. A program that outlives the timeout is killed and the outcome is unknown.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::{Access, Connector, ConnectorError};

/// The most stderr a failure message carries.
const ERROR_TEXT_MAX: usize = 500;
/// The most of each of stdout and stderr writ keeps from one call.
pub const OUTPUT_BYTES_MAX: usize = 1024 * 1024;
/// `PATH` for the program: its environment is otherwise cleared.
const SAFE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

#[derive(Debug)]
pub struct CommandConnector {
    target: String,
    program: PathBuf,
    args: Vec<String>,
    timeout: Duration,
    env_allowed: Vec<String>,
}

#[derive(serde::Deserialize)]
struct CheckOutput {
    held: bool,
}

#[derive(serde::Deserialize)]
struct ListOutput {
    accounts: Vec<String>,
}

impl CommandConnector {
    pub fn new(target: &str, program: PathBuf, args: Vec<String>, timeout_seconds: u64) -> Self {
        Self {
            target: target.to_string(),
            program,
            args,
            timeout: Duration::from_secs(timeout_seconds),
            env_allowed: Vec::new(),
        }
    }

    /// Names of writ's environment variables the program also gets (say, a secret its
    /// target needs); it gets nothing else but `PATH` and the `WRIT_*` call.
    pub fn with_env(mut self, names: Vec<String>) -> Self {
        self.env_allowed = names;
        self
    }

    async fn run(&self, action: &str, access: Access<'_>) -> Result<Vec<u8>, ConnectorError> {
        let input = serde_json::json!({ "action": action, "target": self.target, "role": access.role, "account": access.account });
        let mut command = Command::new(&self.program);
        // A cleared environment: writ's own secrets (database URLs, ticketing tokens)
        // are not the program's business unless the configuration says so.
        command.args(&self.args).env_clear().env("PATH", SAFE_PATH);
        for name in &self.env_allowed {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command
            .env("WRIT_ACTION", action)
            .env("WRIT_TARGET", &self.target)
            .env("WRIT_ROLE", access.role)
            .env("WRIT_ACCOUNT", access.account)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout ends whatever it started too.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| {
            ConnectorError::Failed(format!("cannot run {}: {e}", self.program.display()))
        })?;
        let group = child.id();
        if let Some(mut stdin) = child.stdin.take() {
            // A program that ignores stdin closes it early; that is not an error.
            let _ = stdin.write_all(input.to_string().as_bytes()).await;
        }
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let finished = async {
            let (stdout, stderr) = tokio::join!(read_bounded(stdout), read_bounded(stderr));
            (stdout, stderr, child.wait().await)
        };
        let (stdout, stderr, status) = match tokio::time::timeout(self.timeout, finished).await {
            Ok(done) => done,
            Err(_) => {
                kill_group(group);
                return Err(ConnectorError::Unknown(format!(
                    "{} {action} did not finish within {}s and was killed",
                    self.program.display(),
                    self.timeout.as_secs()
                )));
            }
        };
        let status = status.map_err(|e| {
            ConnectorError::Unknown(format!("{} {action}: {e}", self.program.display()))
        })?;
        if status.success() {
            let (stdout, overflowed) = stdout;
            if overflowed {
                return Err(ConnectorError::Failed(format!(
                    "{} {action} printed more than {OUTPUT_BYTES_MAX} bytes on stdout",
                    self.program.display()
                )));
            }
            return Ok(stdout);
        }
        let mut stderr = String::from_utf8_lossy(&stderr.0).trim().to_string();
        writ_domain::truncate_on_char_boundary(&mut stderr, ERROR_TEXT_MAX);
        let code = status
            .code()
            .map_or_else(|| "a signal".to_string(), |code| format!("status {code}"));
        // Killed by a signal mid-way: it may have done its work.
        let message = format!(
            "{} {action} exited with {code}: {stderr}",
            self.program.display()
        );
        if status.code().is_none() {
            Err(ConnectorError::Unknown(message))
        } else {
            Err(ConnectorError::Failed(message))
        }
    }
}

/// Reads a pipe to its end, keeping at most `OUTPUT_BYTES_MAX` bytes; `true` when
/// there was more. Draining the rest (not stopping) keeps the program from blocking
/// on a full pipe; one that never stops writing meets the timeout.
async fn read_bounded(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> (Vec<u8>, bool) {
    let Some(mut pipe) = pipe else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut overflowed = false;
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return (kept, overflowed),
            Ok(read) => {
                let room = OUTPUT_BYTES_MAX.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..read.min(room)]);
                overflowed |= read > room;
            }
        }
    }
}

/// Ends the program's whole process group (what it started as well as itself).
fn kill_group(group: Option<u32>) {
    let Some(group) = group.and_then(|id| i32::try_from(id).ok()) else {
        return;
    };
    // Already gone is fine: there is nothing left to end.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(group),
        nix::sys::signal::Signal::SIGKILL,
    );
}

impl CommandConnector {
    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        action: &str,
        stdout: &[u8],
        expected: &str,
    ) -> Result<T, ConnectorError> {
        serde_json::from_slice(stdout).map_err(|e| {
            let mut printed = String::from_utf8_lossy(stdout).into_owned();
            writ_domain::truncate_on_char_boundary(&mut printed, ERROR_TEXT_MAX);
            ConnectorError::Failed(format!(
                "{} {action} printed {printed:?}, expected {expected}: {e}",
                self.program.display()
            ))
        })
    }
}

#[async_trait]
impl Connector for CommandConnector {
    async fn grant(&self, access: Access<'_>) -> Result<(), ConnectorError> {
        self.run("grant", access).await.map(|_| ())
    }

    async fn revoke(&self, access: Access<'_>) -> Result<(), ConnectorError> {
        self.run("revoke", access).await.map(|_| ())
    }

    async fn holds(&self, access: Access<'_>) -> Result<bool, ConnectorError> {
        // A name with a NUL byte cannot be passed to the program, so it was never
        // granted through it.
        if access.role.contains('\0') || access.account.contains('\0') {
            return Ok(false);
        }
        let stdout = self.run("check", access).await?;
        self.parse::<CheckOutput>("check", &stdout, r#"{"held": true|false}"#)
            .map(|out| out.held)
    }

    async fn members(&self, role: &str) -> Result<Vec<String>, ConnectorError> {
        let stdout = self.run("list", Access { role, account: "" }).await?;
        self.parse::<ListOutput>("list", &stdout, r#"{"accounts": [...]}"#)
            .map(|out| out.accounts)
    }
}
