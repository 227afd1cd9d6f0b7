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
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::{Access, Connector, ConnectorError};

/// The most stderr a failure message carries.
const ERROR_TEXT_MAX: usize = 500;

#[derive(Debug)]
pub struct CommandConnector {
    target: String,
    program: PathBuf,
    args: Vec<String>,
    timeout: Duration,
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
        }
    }

    async fn run(&self, action: &str, access: Access<'_>) -> Result<Vec<u8>, ConnectorError> {
        let input = serde_json::json!({ "action": action, "target": self.target, "role": access.role, "account": access.account });
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .env("WRIT_ACTION", action)
            .env("WRIT_TARGET", &self.target)
            .env("WRIT_ROLE", access.role)
            .env("WRIT_ACCOUNT", access.account)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                ConnectorError::Failed(format!("cannot run {}: {e}", self.program.display()))
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A program that ignores stdin closes it early; that is not an error.
            let _ = stdin.write_all(input.to_string().as_bytes()).await;
        }
        let output = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => {
                return Err(ConnectorError::Unknown(format!(
                    "{} {action}: {e}",
                    self.program.display()
                )));
            }
            Err(_) => {
                return Err(ConnectorError::Unknown(format!(
                    "{} {action} did not finish within {}s and was killed",
                    self.program.display(),
                    self.timeout.as_secs()
                )));
            }
        };
        if output.status.success() {
            return Ok(output.stdout);
        }
        let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        writ_domain::truncate_on_char_boundary(&mut stderr, ERROR_TEXT_MAX);
        let status = output
            .status
            .code()
            .map_or_else(|| "a signal".to_string(), |code| format!("status {code}"));
        // Killed by a signal mid-way: it may have done its work.
        let message = format!(
            "{} {action} exited with {status}: {stderr}",
            self.program.display()
        );
        if output.status.code().is_none() {
            Err(ConnectorError::Unknown(message))
        } else {
            Err(ConnectorError::Failed(message))
        }
    }
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
