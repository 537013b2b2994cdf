//! `suppressions`: the operator tool for the SES feedback suppression table.
//!
//! `main` parses the command line, runs one command on a Tokio runtime and turns the result into
//! the exit status: 0 success, 1 nothing matched (or a `doctor` check did not pass), 2 error
//! (with advice on what to do next).

mod args;
mod aws;
mod commands;
mod csv;
mod doctor;
mod output;
mod timespec;
mod write;

use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;
use crate::commands::Status;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let global = cli.global.clone();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: could not start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(Status::Done) => ExitCode::SUCCESS,
        Ok(Status::NothingMatched | Status::ChecksFailed) => ExitCode::from(1),
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", aws::describe(&err));
            if let Some(advice) = aws::advice(&err, &global) {
                eprintln!("hint: {advice}");
            }
            ExitCode::from(2)
        }
    }
}

/// Output piped into `head` and closed early is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
