//! `landing-ops`: the operator verbs of `landing-operations` over the AWS stack's DynamoDB
//! tables, and `smoke`, the check of a deployed stack (also the last step of the offline deploy
//! rehearsal, `infra/rehearse.py`).

pub mod cli;
mod smoke;
mod stack;

use std::sync::Arc;

use landing_aws_dynamo::DynamoStore;
use landing_core::domain::CrmStatus;
use landing_core::ports::SystemClock;
use landing_operations::Operator;

pub use stack::{Stack, StackError};

use crate::cli::{Cli, OpsCli};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot find the stack's resources")]
    Stack(#[from] StackError),
    #[error(transparent)]
    Ops(#[from] landing_operations::OpsError),
    #[error("{0}")]
    Io(String),
    #[error("smoke test failed:\n{0}")]
    Smoke(String),
}

/// An error and its causes on one line.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    landing_core::error_chain(e)
}

/// The verbs over the stack's tables.
pub fn operator(store: Arc<DynamoStore>, stack: &Stack) -> Operator {
    Operator {
        leads: store.clone(),
        inspect: store.clone(),
        ops: store.clone(),
        crm: store,
        clock: Arc::new(SystemClock),
        amocrm_subdomain: stack.amocrm_subdomain.clone(),
        crm_on_release: if stack.crm_configured {
            CrmStatus::Pending
        } else {
            CrmStatus::Disabled
        },
        picked_up: "the sweeper picks it up within 5 minutes",
    }
}

/// Runs one command; the text is what the operator reads.
pub async fn run(cli: Cli) -> Result<String, Error> {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let stack = Stack::resolve(&aws, cli.stack.as_deref()).await?;
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        stack.tables.clone(),
    ));
    match cli.command {
        OpsCli::Ops(cmd) => {
            let out = operator(store, &stack).execute(cmd).await?;
            match out.out {
                Some(path) => {
                    std::fs::write(&path, out.text.as_bytes())
                        .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
                    Ok(format!("written to {}", path.display()))
                }
                None => Ok(out.text),
            }
        }
        OpsCli::Smoke(args) => {
            smoke::run(&args, store, aws_sdk_scheduler::Client::new(&aws), &stack).await
        }
    }
}
