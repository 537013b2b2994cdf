//! `mailcow-sim`: the Mailcow API simulator as a standalone server, for the local demo.
//!
//! Prints the base URL on stdout once listening and runs until Ctrl-C. Control routes under
//! `/sim/` are described in `simulators::mailcow`. Keys are never printed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use clap::Parser;
use simulators::mailcow::{MailcowSimConfig, spawn};

/// Local simulator of the Mailcow REST API (recipient denylist map and Rspamd settings rules).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "MAILCOW_SIM_PORT", default_value_t = 0)]
    port: u16,
    /// Address to listen on.
    #[arg(long, env = "MAILCOW_SIM_BIND", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// The read-write API key (characters outside A-Z a-z 0-9 - are ignored, as Mailcow does).
    #[arg(long, env = "MAILCOW_SIM_RW_KEY", hide_env_values = true)]
    rw_key: String,
    /// The read-only API key.
    #[arg(long, env = "MAILCOW_SIM_RO_KEY", hide_env_values = true)]
    ro_key: Option<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = MailcowSimConfig {
        bind: SocketAddr::new(args.bind, args.port),
        rw_key: args.rw_key,
        ro_key: args.ro_key,
    };
    let handle = spawn(config).await?;
    println!("{}", handle.base_url);
    tokio::signal::ctrl_c().await?;
    handle.shutdown();
    Ok(())
}
