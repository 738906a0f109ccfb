//! Building the event-driven functions' services from the environment the SAM template sets.
//! Clients are built once per cold start; AmoCRM credentials come from Secrets Manager.

#[cfg(feature = "crm")]
use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use landing_aws_dynamo::{DynamoStore, Tables};
use landing_aws_messaging::{MessagingConfig, SesEmail, SnsSms};
use landing_core::config::{ConfigError, Env, NotifySettings};
#[cfg(feature = "crm")]
use landing_core::crm::CrmSync;
use landing_core::guard::SmsGuardConfig;
use landing_core::notify::{Dispatcher, EmailEvents, SmsGuard, Transports};
use landing_core::ports::SystemClock;
use landing_core::unsubscribe::UnsubscribeLinks;

/// The only keys the AmoCRM secret may hold.
#[cfg(feature = "crm")]
const SECRET_KEYS: &[&str] = &[
    "AMOCRM_ACCESS_TOKEN",
    "AMOCRM_CLIENT_ID",
    "AMOCRM_CLIENT_SECRET",
    "AMOCRM_REDIRECT_URI",
];

#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[cfg(feature = "crm")]
    #[error("cannot read the AmoCRM secret {arn}")]
    Secret {
        arn: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[cfg(feature = "crm")]
    #[error("cannot set up the AmoCRM client")]
    Crm(#[from] landing_amocrm::AmoError),
}

pub fn store(aws: &SdkConfig, env: &Env) -> Result<Arc<DynamoStore>, WiringError> {
    Ok(Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(aws),
        Tables::from_env(env)?,
    )))
}

/// The recording of SES's events over the notification rows and the suppression list.
pub fn email_events(store: Arc<DynamoStore>) -> EmailEvents {
    EmailEvents::new(store.clone(), store)
}

/// The claim/send path over DynamoDB, SNS and SES.
pub fn dispatcher(
    aws: &SdkConfig,
    env: &Env,
    store: Arc<DynamoStore>,
) -> Result<Dispatcher, WiringError> {
    let notify = NotifySettings::from_env(env)?;
    let messaging = MessagingConfig::from_env(env)?;
    let store_for_quotas = store.clone();
    let people = store.clone();
    let dispatcher = Dispatcher::new(
        store.clone(),
        store.clone(),
        Transports {
            sms: Arc::new(SnsSms::new(aws_sdk_sns::Client::new(aws), &messaging)),
            email: Arc::new(SesEmail::new(aws_sdk_sesv2::Client::new(aws), &messaging)),
        },
        notify.templates()?,
        Arc::new(SystemClock),
        notify.retry.clone(),
        SmsGuard::new(SmsGuardConfig::from_env(env)?, store_for_quotas),
    )
    .with_windows(notify.windows.clone())
    .with_suppression_list(store.clone());
    let dispatcher = match UnsubscribeLinks::from_env(env)? {
        Some(links) => dispatcher.with_unsubscribe_links(links),
        None => {
            tracing::warn!(
                "UNSUBSCRIBE_URL and UNSUBSCRIBE_SECRET are not set: emails go without a one-click unsubscribe link"
            );
            dispatcher
        }
    };
    Ok(if notify.supersede {
        dispatcher.with_supersede(people)
    } else {
        dispatcher
    })
}

#[cfg(feature = "crm")]
/// The environment plus the credentials stored in the secret `AMOCRM_SECRET_ARN` names (a JSON
/// object of `AMOCRM_ACCESS_TOKEN` or the three OAuth variables). Never logged.
pub async fn with_crm_secret(aws: &SdkConfig, env: &Env) -> Result<Env, WiringError> {
    let Some(arn) = env.get("AMOCRM_SECRET_ARN") else {
        return Ok(env.clone());
    };
    let secret_err = |source: Box<dyn std::error::Error + Send + Sync>| WiringError::Secret {
        arn: arn.to_owned(),
        source,
    };
    let answer = aws_sdk_secretsmanager::Client::new(aws)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| secret_err(Box::new(e)))?;
    let raw = answer.secret_string().unwrap_or("{}");
    let values: BTreeMap<String, String> =
        serde_json::from_str(raw).map_err(|e| secret_err(Box::new(e)))?;
    if let Some(unknown) = values.keys().find(|k| !SECRET_KEYS.contains(&k.as_str())) {
        return Err(WiringError::Config(ConfigError::new(
            "AMOCRM_SECRET_ARN",
            format!("the secret holds an unknown key {unknown:?}; allowed: {SECRET_KEYS:?}"),
        )));
    }
    Ok(env.with(values))
}

#[cfg(feature = "crm")]
/// The CRM sync, or `None` when no credentials are configured (the sync is then off and leads
/// wait in `pending`; the sweeper picks them up once credentials exist).
pub async fn crm_sync(
    aws: &SdkConfig,
    env: &Env,
    store: Arc<DynamoStore>,
) -> Result<Option<CrmSync>, WiringError> {
    let env = with_crm_secret(aws, env).await?;
    use landing_amocrm::{AmoSettings, RetryConfig};
    let Some(settings) = AmoSettings::from_env(&env)? else {
        tracing::warn!("no AmoCRM credentials in the secret: CRM sync is off");
        return Ok(None);
    };
    let client = settings.client(store.clone(), RetryConfig::default())?;
    Ok(Some(CrmSync::new(
        store.clone(),
        store,
        Arc::new(client),
        settings.crm.clone(),
        Arc::new(SystemClock),
        CrmSync::DEFAULT_MAX_ATTEMPTS,
    )))
}
