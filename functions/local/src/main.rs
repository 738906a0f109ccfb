//! `landing-local`: the lead pipeline on one machine. Configuration: README "Configuration";
//! operator commands: README "Operator commands".

use landing_local_runtime::{Env, LocalConfig, admin};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    landing_telemetry::init();
    let config = LocalConfig::from_env(&Env::from_process())?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match admin::parse(&args)? {
        Some(command) => println!("{}", admin::execute(command, &config).await?),
        None => landing_local_runtime::run(config, shutdown_signal()).await?,
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
