//! `ses-suppression-sim`: runs the SESv2 suppression-list simulator on loopback.
//!
//! Prints `listening on http://127.0.0.1:PORT` on stdout once it accepts connections (so a
//! script can pass `--port 0` and read the port), then serves until interrupted. Control routes
//! are described in `simulators::sesv2`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use simulators::sesv2::{self, Config, Throttle};
use tokio::net::TcpListener;

/// Simulates the SESv2 account suppression list (Put/Get/List/DeleteSuppressedDestination).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Port to listen on, on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Milliseconds to earn back one request; 0 turns throttling off.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Requests accepted back to back after a quiet period.
    #[arg(long, default_value_t = 1)]
    burst: u32,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args = Args::parse();
    let throttle =
        Throttle { interval: Duration::from_millis(args.interval_ms), burst: args.burst };
    let config = Config { throttle: (args.interval_ms > 0).then_some(throttle) };

    let listener = match TcpListener::bind(("127.0.0.1", args.port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("ses-suppression-sim: cannot listen on port {}: {error}", args.port);
            return ExitCode::from(2);
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("listening on http://{addr}"),
        Err(error) => {
            eprintln!("ses-suppression-sim: cannot read the bound address: {error}");
            return ExitCode::from(2);
        }
    }

    tokio::select! {
        result = sesv2::serve(listener, config) => match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("ses-suppression-sim: server failed: {error}");
                ExitCode::from(2)
            }
        },
        _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
    }
}
