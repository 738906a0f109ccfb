//! The stack the functions run against, created in moto under a unique prefix: the schedule
//! group, the SES sender domain, the AmoCRM secret (pointing at the fake AmoCRM), and table sets
//! on demand — every intake run gets fresh tables, because moto's `TransactWriteItems` deep-copies
//! each table it touches (its latency grows with the table), and the sweeper gets an empty set.

use anyhow::Context;
use aws_config::BehaviorVersion;
use landing_amocrm_fake::{DEFAULT_LONG_LIVED_TOKEN, DEFAULT_PIPELINE_ID, FakeAmo, FakeConfig};
use landing_aws_dynamo::Tables;

pub type Env = Vec<(String, String)>;

pub struct Stack {
    pub prefix: String,
    /// Configuration shared by every function, without tables and `AWS_ENDPOINT_URL`.
    common: Env,
    dynamo: aws_sdk_dynamodb::Client,
    pub fake: FakeAmo,
}

/// The credentials and region `infra/with-moto.sh` exported, passed on to the functions.
const PASSED_ON: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EC2_METADATA_DISABLED",
];

pub async fn create(moto: &str) -> anyhow::Result<Stack> {
    let aws = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto)
        .load()
        .await;
    let prefix = format!("lb{}_", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let group = format!("{prefix}group");
    aws_sdk_scheduler::Client::new(&aws)
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .context("create the schedule group")?;
    let domain = format!("{}.example.kz", prefix.trim_end_matches('_'));
    aws_sdk_sesv2::Client::new(&aws)
        .create_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .context("create the SES identity")?;
    let secret = aws_sdk_secretsmanager::Client::new(&aws)
        .create_secret()
        .name(format!("{prefix}amocrm"))
        .secret_string(format!(
            r#"{{"AMOCRM_ACCESS_TOKEN":"{DEFAULT_LONG_LIVED_TOKEN}"}}"#
        ))
        .send()
        .await
        .context("create the AmoCRM secret")?;
    let fake = FakeAmo::start(FakeConfig {
        rate_limit: None,
        ..FakeConfig::default()
    });

    let mut common: Env = vec![
        ("SCHEDULE_GROUP".into(), group),
        (
            "NOTIFY_TARGET_ARN".into(),
            "arn:aws:lambda:eu-central-1:123456789012:function:notify".into(),
        ),
        (
            "SCHEDULER_ROLE_ARN".into(),
            "arn:aws:iam::123456789012:role/landing-aws-scheduler".into(),
        ),
        ("NOTIFY_DELAY".into(), "0s".into()),
        // Measured whatever the hour: an SMS held for the morning would not be counted.
        ("NOTIFY_SMS_WINDOW".into(), "always".into()),
        ("EMAIL_FROM".into(), format!("school@{domain}")),
        (
            "AMOCRM_SECRET_ARN".into(),
            secret.arn().context("secret ARN")?.to_owned(),
        ),
        ("AMOCRM_BASE_URL".into(), fake.base_url()),
        ("AMOCRM_PIPELINE_ID".into(), DEFAULT_PIPELINE_ID.to_string()),
        ("AMOCRM_STATUS_KASPI".into(), "10002".into()),
        ("RUST_LOG".into(), "info".into()),
        (
            "LANDING_IP_HASH_KEY".into(),
            "lambda-bench-ip-hash-key".into(),
        ),
        // This bench measures the pipeline's cost per lead; the guard's own cost is one more
        // DynamoDB transaction per SMS, and what it withholds is the pumping bench's subject.
        ("SMS_LIMIT_PER_PHONE".into(), "off".into()),
        ("SMS_LIMIT_PER_PREFIX".into(), "off".into()),
        ("SMS_LIMIT_PER_IP".into(), "off".into()),
        ("SMS_BUDGET".into(), "off".into()),
    ];
    for var in PASSED_ON {
        if let Ok(v) = std::env::var(var) {
            common.push(((*var).into(), v));
        }
    }
    Ok(Stack {
        prefix,
        common,
        dynamo: aws_sdk_dynamodb::Client::new(&aws),
        fake,
    })
}

impl Stack {
    /// The functions' configuration over a new, empty set of tables named `<prefix><tag>_…`.
    pub async fn fresh_tables(&self, tag: &str) -> anyhow::Result<Env> {
        let tables = Tables::prefixed(&format!("{}{tag}_", self.prefix));
        landing_aws_dynamo::create_tables(&self.dynamo, &tables)
            .await
            .with_context(|| format!("create the tables {}*", tables.leads))?;
        let mut env = self.common.clone();
        for (k, v) in [
            ("LEADS_TABLE", tables.leads),
            ("NOTIFICATIONS_TABLE", tables.notifications),
            ("TRACKING_TABLE", tables.tracking),
            ("IDEMPOTENCY_TABLE", tables.idempotency),
            ("TOKENS_TABLE", tables.tokens),
            ("QUOTAS_TABLE", tables.quotas),
            ("SUPPRESSION_TABLE", tables.suppression),
        ] {
            env.push((k.into(), v));
        }
        Ok(env)
    }
}
