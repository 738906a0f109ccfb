//! `landing-ops`: the operator verbs on the AWS stack (README "Operator commands"), and the
//! smoke test of a deployed stack. `landing-ops --help`.

use std::process::ExitCode;

use clap::Parser;
use landing_aws_ops::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match landing_aws_ops::run(cli).await {
        Ok(text) => {
            println!("{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("landing-ops: {}", landing_aws_ops::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}
