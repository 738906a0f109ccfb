//! `landing-local`: the lead pipeline on one machine. Configuration: README "Configuration";
//! commands: `landing-local --help`.

use std::process::ExitCode;

use clap::Parser;
use landing_local_runtime::cli::{Cli, Command};
use landing_local_runtime::{Env, LocalConfig, admin};

fn main() -> ExitCode {
    // Usage errors exit 2 and --help/--version 0, before any configuration is read.
    let cli = Cli::parse();
    landing_telemetry::init();
    // One clear message with its causes, and no backtrace even under RUST_BACKTRACE=1: these
    // are configuration and runtime errors for an operator, not bugs.
    match run(cli.command.unwrap_or(Command::Serve)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("landing-local: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(command: Command) -> anyhow::Result<()> {
    let config = LocalConfig::from_env(&Env::from_process())?;
    match command {
        Command::Serve => landing_local_runtime::run(config, shutdown_signal()).await?,
        operator => println!("{}", admin::execute(operator, &config).await?),
    }
    Ok(())
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested");
}
