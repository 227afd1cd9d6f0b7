//! The `writ` binary: parses the command line and hands over to one module per job.
//! Library crates return typed errors; here they get context and an exit code.

mod cli;
mod client;
mod init;
mod offline;
mod output;
mod serve;

use std::process::ExitCode;

use clap::Parser;

/// Exit code for a bad command line, configuration or policy.
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a command that ran and failed (an API error, a ledger that does not verify).
pub const EXIT_FAILED: u8 = 1;

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
        Self {
            code: EXIT_FAILED,
            message: message.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::failed(format!("{error:#}"))
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
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
