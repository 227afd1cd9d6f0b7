//! The `writ` binary: parses the command line and hands over to one module per job.
//! Library crates return typed errors; here they get context and an exit code.

mod check;
mod cli;
mod client;
mod credentials;
mod evidence;
mod http_server;
mod init;
mod login;
mod offline;
mod output;
mod policy_tools;
mod serve;
mod stdout;
mod tls;
mod when;

use std::process::ExitCode;

use clap::Parser;

// Exit codes a script can rely on (docs/cli.md lists them).
/// A command that ran and failed (a ledger that does not verify, an error not below).
pub const EXIT_FAILED: u8 = 1;
/// A bad command line, configuration or policy (clap uses 2 for its own, too).
pub const EXIT_USAGE: u8 = 2;
/// Policy denied the request, or the caller may not do this (HTTP 403).
pub const EXIT_DENIED: u8 = 3;
/// No such request, grant, finding or entitlement (HTTP 404).
pub const EXIT_NOT_FOUND: u8 = 4;
/// No token, or one the server does not accept (HTTP 401).
pub const EXIT_UNAUTHENTICATED: u8 = 5;
/// A revocation ended `failed`: the access may still be on the target (writ retries).
pub const EXIT_REVOKE_FAILED: u8 = 6;
/// The server cannot be reached, or answered that it cannot serve now (HTTP 503).
pub const EXIT_UNAVAILABLE: u8 = 7;

/// An error that carries the exit code it should end the process with.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::with_code(EXIT_FAILED, message)
    }

    /// A failure whose story was already printed: only the exit code is left to give.
    pub fn silent(code: u8) -> Self {
        Self::with_code(code, "")
    }

    pub fn with_code(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

fn main() -> ExitCode {
    writ_itsm::install_crypto_provider();
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("error: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}
