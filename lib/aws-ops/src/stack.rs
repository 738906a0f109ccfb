//! Which tables, schedule group and AmoCRM account the commands work on: the CloudFormation
//! stack's outputs and parameters, or the environment the functions themselves get.

use aws_config::SdkConfig;
use landing_aws_dynamo::Tables;
use landing_core::config::{ConfigError, Env};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    pub tables: Tables,
    pub schedule_group: Option<String>,
    pub amocrm_subdomain: Option<String>,
    /// An AmoCRM pipeline is configured (a released lead goes to the sync).
    pub crm_configured: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("cannot describe stack {stack}")]
    Describe {
        stack: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("stack {stack} has no output {output} (deployed from an older template?)")]
    Output { stack: String, output: &'static str },
    #[error("no --stack, and the environment does not name the tables")]
    Env(#[source] ConfigError),
}

const OUTPUTS: [(&str, &str); 7] = [
    ("LEADS_TABLE", "LeadsTableName"),
    ("NOTIFICATIONS_TABLE", "NotificationsTableName"),
    ("TRACKING_TABLE", "TrackingTableName"),
    ("IDEMPOTENCY_TABLE", "IdempotencyTableName"),
    ("TOKENS_TABLE", "TokensTableName"),
    ("QUOTAS_TABLE", "QuotasTableName"),
    ("SUPPRESSION_TABLE", "SuppressionTableName"),
];

impl Stack {
    pub async fn resolve(aws: &SdkConfig, stack: Option<&str>) -> Result<Stack, StackError> {
        let env = Env::from_process();
        let Some(name) = stack else {
            return Ok(Stack {
                tables: Tables::from_env(&env).map_err(StackError::Env)?,
                schedule_group: env.get("SCHEDULE_GROUP").map(str::to_owned),
                amocrm_subdomain: env.get("AMOCRM_SUBDOMAIN").map(str::to_owned),
                crm_configured: env.get("AMOCRM_PIPELINE_ID").is_some(),
            });
        };
        let described = aws_sdk_cloudformation::Client::new(aws)
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| StackError::Describe {
                stack: name.to_owned(),
                source: Box::new(e),
            })?;
        let s = described
            .stacks()
            .first()
            .ok_or_else(|| StackError::Describe {
                stack: name.to_owned(),
                source: "no such stack".into(),
            })?;
        let output = |key: &'static str| -> Result<String, StackError> {
            s.outputs()
                .iter()
                .find(|o| o.output_key() == Some(key))
                .and_then(|o| o.output_value())
                .map(str::to_owned)
                .ok_or(StackError::Output {
                    stack: name.to_owned(),
                    output: key,
                })
        };
        let param = |key: &str| {
            s.parameters()
                .iter()
                .find(|p| p.parameter_key() == Some(key))
                .and_then(|p| p.parameter_value())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let mut pairs = Vec::new();
        for (var, out) in OUTPUTS {
            pairs.push((var, output(out)?));
        }
        Ok(Stack {
            tables: Tables::from_env(&Env::from_pairs(pairs)).map_err(StackError::Env)?,
            // A stack without the output (or an emulator that skipped the group) can name it
            // the way the functions get it.
            schedule_group: output("ScheduleGroupName")
                .ok()
                .or_else(|| env.get("SCHEDULE_GROUP").map(str::to_owned)),
            amocrm_subdomain: param("AmoCrmSubdomain"),
            crm_configured: param("AmoCrmPipelineId").is_some(),
        })
    }
}
