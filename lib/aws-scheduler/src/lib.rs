//! EventBridge Scheduler adapter of the [`NotificationScheduler`] port (docs/architecture.md §5).
//!
//! Every lead gets **one** one-shot schedule in a configured schedule group:
//!
//! | field | value |
//! |---|---|
//! | `Name` | `lead-<uuid>` ([`schedule_name`]) — deterministic, so a second attempt for the same lead hits `ConflictException`, which counts as "already scheduled" |
//! | `ScheduleExpression` | `at(yyyy-mm-ddThh:mm:ss)` ([`at_expression`]): `send_at` in UTC, rounded **up** to the whole second |
//! | `ScheduleExpressionTimezone` | `UTC` |
//! | `FlexibleTimeWindow` | `Mode = OFF` |
//! | `ActionAfterCompletion` | `DELETE` (the schedule removes itself after its one invocation) |
//! | `Target.Arn` / `Target.RoleArn` | the notify function / the role Scheduler assumes to invoke it |
//! | `Target.RetryPolicy` | [`MAX_EVENT_AGE_SECS`] / [`MAX_RETRY_ATTEMPTS`] |
//! | `Target.DeadLetterConfig` | the DLQ (an SQS queue ARN), when configured |
//! | `Target.Input` | the [`NotifyPayload`] JSON: `{"leadId":"…","correlationId":"…"}` |
//!
//! moto accepts any name and any expression, so both are validated here before the call.

use async_trait::async_trait;
use aws_sdk_scheduler::config::http::HttpResponse;
use aws_sdk_scheduler::error::{BuildError, SdkError};
use aws_sdk_scheduler::operation::create_schedule::CreateScheduleError;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode,
    RetryPolicy, Target,
};
use jiff::Timestamp;
use landing_core::config::{ConfigError, Env};
use landing_core::domain::LeadId;
use landing_core::ports::{NotificationScheduler, SchedulerError};

/// How long Scheduler keeps trying to hand the event to Lambda: one hour.
///
/// The target is invoked asynchronously, so Scheduler's retries only cover getting the event
/// *accepted* by Lambda (throttling, a Lambda outage, a missing permission). Past an hour the
/// sweeper (every 5 minutes) has long since found the overdue notification rows, so further
/// retries would only produce duplicate (harmless, claimed-away) invocations; what is dropped
/// lands in the DLQ for inspection instead. (AWS allows 60–86,400 s; default 24 h.)
pub const MAX_EVENT_AGE_SECS: i32 = 3600;

/// Retries within [`MAX_EVENT_AGE_SECS`], with Scheduler's exponential backoff. 20 attempts
/// span the hour comfortably without the 185-attempt default's long tail. (AWS allows 0–185.)
pub const MAX_RETRY_ATTEMPTS: i32 = 20;

/// Time zone the `at()` expression is evaluated in.
pub const SCHEDULE_TIMEZONE: &str = "UTC";

/// Prefix of every schedule name: `lead-<uuid>`.
pub const SCHEDULE_NAME_PREFIX: &str = "lead-";

/// What the notify function receives as its event: the schedule's `Target.Input`.
///
/// ```json
/// {"leadId": "0190f3c4-…", "correlationId": "req-…"}
/// ```
///
/// `leadId` is the lead's UUID (hyphenated, lower case); `correlationId` is the id of the intake
/// request that created the lead, so the notify invocation's logs join the request's. The notify
/// Lambda deserializes exactly this type (unknown fields are ignored, so the payload can grow).
pub use landing_core::notify::NotifyPayload;

/// Where the schedules go and what they invoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Schedule group (`SCHEDULE_GROUP`); must exist.
    pub group: String,
    /// ARN of the notify function (`NOTIFY_TARGET_ARN`).
    pub target_arn: String,
    /// Role Scheduler assumes to invoke the target (`SCHEDULER_ROLE_ARN`); it must trust
    /// `scheduler.amazonaws.com` and allow `lambda:InvokeFunction` on the target.
    pub role_arn: String,
    /// Standard SQS queue for events Scheduler gave up on (`SCHEDULER_DLQ_ARN`, optional).
    pub dlq_arn: Option<String>,
}

impl SchedulerConfig {
    pub const VARS: &'static [&'static str] = &[
        "SCHEDULE_GROUP",
        "NOTIFY_TARGET_ARN",
        "SCHEDULER_ROLE_ARN",
        "SCHEDULER_DLQ_ARN",
    ];

    /// Reads `SCHEDULE_GROUP`, `NOTIFY_TARGET_ARN`, `SCHEDULER_ROLE_ARN` (required) and
    /// `SCHEDULER_DLQ_ARN` (optional). Every error names its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let group = required(env, "SCHEDULE_GROUP")?;
        if !is_valid_name(&group) {
            return Err(ConfigError::new(
                "SCHEDULE_GROUP",
                format!("{group:?} must be 1-64 characters of [0-9a-zA-Z-_.]"),
            ));
        }
        let target_arn = arn(env, "NOTIFY_TARGET_ARN")?;
        let role_arn = arn(env, "SCHEDULER_ROLE_ARN")?;
        let dlq_arn = match env.get("SCHEDULER_DLQ_ARN") {
            None => None,
            Some(_) => Some(arn(env, "SCHEDULER_DLQ_ARN")?),
        };
        Ok(SchedulerConfig {
            group,
            target_arn,
            role_arn,
            dlq_arn,
        })
    }
}

fn required(env: &Env, var: &str) -> Result<String, ConfigError> {
    env.get(var)
        .map(str::to_owned)
        .ok_or_else(|| ConfigError::new(var, "is required"))
}

/// ARNs: `arn:partition:service:region:account:resource`, at most 1,600 characters.
fn arn(env: &Env, var: &str) -> Result<String, ConfigError> {
    let value = required(env, var)?;
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let ok = value.len() <= 1600
        && parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && !parts[2].is_empty()
        && !parts[5].is_empty()
        && !value.chars().any(char::is_whitespace);
    if ok {
        Ok(value)
    } else {
        Err(ConfigError::new(
            var,
            format!("{value:?} is not an ARN (arn:partition:service:region:account:resource)"),
        ))
    }
}

/// Why a schedule was not created. Carried inside [`SchedulerError`] (downcast its source to
/// get at it); the AWS error chain is kept as the source.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid schedule name {0:?}: expected 1-64 characters of [0-9a-zA-Z-_.]")]
    InvalidName(String),
    #[error("invalid schedule expression {0:?}: expected at(yyyy-mm-ddThh:mm:ss)")]
    InvalidExpression(String),
    #[error("send_at {0} cannot be expressed as an at() time")]
    OutOfRange(Timestamp),
    #[error("cannot encode the notify payload")]
    Payload(#[source] serde_json::Error),
    #[error("cannot build the CreateSchedule request")]
    Build(#[source] BuildError),
    #[error("CreateSchedule {name} in group {group} failed")]
    Api {
        name: String,
        group: String,
        #[source]
        source: Box<SdkError<CreateScheduleError, HttpResponse>>,
    },
}

impl From<ScheduleError> for SchedulerError {
    fn from(e: ScheduleError) -> Self {
        SchedulerError(Box::new(e))
    }
}

/// `[0-9a-zA-Z-_.]{1,64}`: Scheduler's pattern for schedule and group names.
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub fn validate_schedule_name(name: &str) -> Result<(), ScheduleError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(ScheduleError::InvalidName(name.to_owned()))
    }
}

/// The deterministic schedule name of a lead: `lead-<uuid>` (41 characters).
pub fn schedule_name(lead_id: LeadId) -> String {
    format!("{SCHEDULE_NAME_PREFIX}{lead_id}")
}

/// `at(yyyy-mm-ddThh:mm:ss)` for `send_at` in UTC, rounded **up** to the whole second so the
/// schedule is never set before `send_at`.
pub fn at_expression(send_at: Timestamp) -> Result<String, ScheduleError> {
    // For instants before the epoch the sub-second part is negative and `as_second` already
    // is the ceiling; after it, any positive fraction moves to the next second.
    let mut secs = send_at.as_second();
    if send_at.subsec_nanosecond() > 0 {
        secs += 1;
    }
    let rounded = Timestamp::from_second(secs).map_err(|_| ScheduleError::OutOfRange(send_at))?;
    let expr = format!("at({})", rounded.strftime("%Y-%m-%dT%H:%M:%S"));
    validate_at_expression(&expr).map_err(|_| ScheduleError::OutOfRange(send_at))?;
    Ok(expr)
}

/// Accepts exactly `at(yyyy-mm-ddThh:mm:ss)` with a real calendar date and time.
pub fn validate_at_expression(expr: &str) -> Result<(), ScheduleError> {
    let invalid = || ScheduleError::InvalidExpression(expr.to_owned());
    let inner = expr
        .strip_prefix("at(")
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or_else(invalid)?;
    // yyyy-mm-ddThh:mm:ss, byte by byte: digits, and the separators in their places.
    const SHAPE: &[u8; 19] = b"dddd-dd-ddTdd:dd:dd";
    if inner.len() != SHAPE.len()
        || !inner.bytes().zip(SHAPE.iter()).all(|(b, &s)| match s {
            b'd' => b.is_ascii_digit(),
            sep => b == sep,
        })
    {
        return Err(invalid());
    }
    jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M:%S", inner).map_err(|_| invalid())?;
    Ok(())
}

/// The [`NotificationScheduler`] on EventBridge Scheduler. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBridgeScheduler {
    client: aws_sdk_scheduler::Client,
    config: SchedulerConfig,
}

impl EventBridgeScheduler {
    pub fn new(client: aws_sdk_scheduler::Client, config: SchedulerConfig) -> Self {
        EventBridgeScheduler { client, config }
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// The `Target` every schedule gets, with `input` as its payload.
    fn target(&self, input: String) -> Result<Target, ScheduleError> {
        let mut target = Target::builder()
            .arn(&self.config.target_arn)
            .role_arn(&self.config.role_arn)
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_event_age_in_seconds(MAX_EVENT_AGE_SECS)
                    .maximum_retry_attempts(MAX_RETRY_ATTEMPTS)
                    .build(),
            )
            .input(input);
        if let Some(dlq) = &self.config.dlq_arn {
            target = target.dead_letter_config(DeadLetterConfig::builder().arn(dlq).build());
        }
        target.build().map_err(ScheduleError::Build)
    }

    /// Creates the lead's schedule; `Ok(true)` if it was created, `Ok(false)` if a schedule
    /// with its name already existed (an earlier attempt for the same lead).
    pub async fn create(
        &self,
        lead_id: LeadId,
        send_at: Timestamp,
        correlation_id: &str,
    ) -> Result<bool, ScheduleError> {
        let name = schedule_name(lead_id);
        validate_schedule_name(&name)?;
        let expression = at_expression(send_at)?;
        let input = serde_json::to_string(&NotifyPayload {
            lead_id,
            correlation_id: correlation_id.to_owned(),
        })
        .map_err(ScheduleError::Payload)?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(ScheduleError::Build)?;
        let result = self
            .client
            .create_schedule()
            .name(&name)
            .group_name(&self.config.group)
            .schedule_expression(&expression)
            .schedule_expression_timezone(SCHEDULE_TIMEZONE)
            .flexible_time_window(window)
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(self.target(input)?)
            .send()
            .await;
        match result {
            Ok(out) => {
                tracing::info!(
                    lead_id = %lead_id,
                    correlation_id,
                    schedule = %name,
                    expression = %expression,
                    arn = out.schedule_arn(),
                    "notification schedule created"
                );
                Ok(true)
            }
            Err(e) if is_conflict(&e) => {
                tracing::info!(
                    lead_id = %lead_id,
                    correlation_id,
                    schedule = %name,
                    "notification schedule already exists"
                );
                Ok(false)
            }
            Err(source) => Err(ScheduleError::Api {
                name,
                group: self.config.group.clone(),
                source: Box::new(source),
            }),
        }
    }
}

fn is_conflict(e: &SdkError<CreateScheduleError, HttpResponse>) -> bool {
    matches!(
        e.as_service_error(),
        Some(CreateScheduleError::ConflictException(_))
    )
}

#[async_trait]
impl NotificationScheduler for EventBridgeScheduler {
    async fn schedule(
        &self,
        lead_id: LeadId,
        send_at: Timestamp,
        correlation_id: &str,
    ) -> Result<(), SchedulerError> {
        self.create(lead_id, send_at, correlation_id).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn at_expression_is_utc_and_rounds_up_to_the_second() {
        assert_eq!(
            at_expression(ts("2025-03-01T10:20:30Z")).unwrap(),
            "at(2025-03-01T10:20:30)"
        );
        assert_eq!(
            at_expression(ts("2025-03-01T10:20:30.000000001Z")).unwrap(),
            "at(2025-03-01T10:20:31)"
        );
        assert_eq!(
            at_expression(ts("2025-12-31T23:59:59.5Z")).unwrap(),
            "at(2026-01-01T00:00:00)"
        );
        // An offset is converted, not dropped.
        assert_eq!(
            at_expression(ts("2025-03-01T15:20:30.2+05:00")).unwrap(),
            "at(2025-03-01T10:20:31)"
        );
        // Before the epoch the fraction is negative: still the ceiling.
        assert_eq!(
            at_expression(ts("1969-12-31T23:59:59.5Z")).unwrap(),
            "at(1970-01-01T00:00:00)"
        );
    }

    #[test]
    fn at_expression_is_never_before_send_at() {
        let base = ts("2025-06-01T00:00:00Z");
        for nanos in [
            0i64,
            1,
            499_999_999,
            500_000_000,
            999_999_999,
            1_000_000_000,
        ] {
            let send_at = base + jiff::SignedDuration::from_nanos(nanos);
            let expr = at_expression(send_at).unwrap();
            let inner = &expr[3..expr.len() - 1];
            let fired = jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M:%S", inner)
                .unwrap()
                .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                .unwrap()
                .timestamp();
            assert!(fired >= send_at, "{expr} < {send_at}");
            assert!(fired - jiff::SignedDuration::from_secs(1) < send_at);
        }
    }

    #[test]
    fn validate_at_expression_accepts_only_the_exact_form() {
        validate_at_expression("at(2025-03-01T10:20:30)").unwrap();
        for bad in [
            "",
            "at()",
            "at(2025-03-01T10:20)",
            "at(2025-03-01 10:20:30)",
            "at(2025-03-01T10:20:30Z)",
            "at(2025-03-01T10:20:30.5)",
            "at(2025-3-01T10:20:30)",
            "at(2025-13-01T10:20:30)",
            "at(2025-02-30T10:20:30)",
            "at(2025-03-01T24:00:00)",
            "AT(2025-03-01T10:20:30)",
            "at(2025-03-01T10:20:30",
            " at(2025-03-01T10:20:30)",
            "at(-025-03-01T10:20:30)",
            "rate(5 minutes)",
            "cron(0 10 * * ? *)",
            "at(２０２５-03-01T10:20:30)",
        ] {
            assert!(
                matches!(
                    validate_at_expression(bad),
                    Err(ScheduleError::InvalidExpression(_))
                ),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn schedule_names_are_validated() {
        let id = LeadId::new();
        let name = schedule_name(id);
        assert_eq!(name, format!("lead-{}", id.0));
        assert_eq!(name.len(), 41);
        validate_schedule_name(&name).unwrap();
        validate_schedule_name(&"a".repeat(64)).unwrap();
        validate_schedule_name("a.b_c-D9").unwrap();
        for bad in [
            String::new(),
            "a".repeat(65),
            "lead/1".into(),
            "lead 1".into(),
            "lead:1".into(),
            "лид-1".into(),
            "lead-1\n".into(),
        ] {
            assert!(
                matches!(
                    validate_schedule_name(&bad),
                    Err(ScheduleError::InvalidName(_))
                ),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn notify_payload_is_camel_case_and_round_trips() {
        let id: LeadId = "0190f3c4-1a2b-7c3d-8e4f-123456789abc".parse().unwrap();
        let p = NotifyPayload {
            lead_id: id,
            correlation_id: "req-1".into(),
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"leadId":"0190f3c4-1a2b-7c3d-8e4f-123456789abc","correlationId":"req-1"}"#
        );
        assert_eq!(serde_json::from_str::<NotifyPayload>(&json).unwrap(), p);
        // Extra fields are tolerated; a missing one is not.
        let extra =
            r#"{"leadId":"0190f3c4-1a2b-7c3d-8e4f-123456789abc","correlationId":"c","x":1}"#;
        serde_json::from_str::<NotifyPayload>(extra).unwrap();
        assert!(
            serde_json::from_str::<NotifyPayload>(r#"{"leadId":"x","correlationId":"c"}"#).is_err()
        );
        assert!(serde_json::from_str::<NotifyPayload>(r#"{"correlationId":"c"}"#).is_err());
    }

    fn full_env() -> Vec<(&'static str, &'static str)> {
        vec![
            ("SCHEDULE_GROUP", "landing-notify"),
            (
                "NOTIFY_TARGET_ARN",
                "arn:aws:lambda:eu-central-1:123456789012:function:notify",
            ),
            (
                "SCHEDULER_ROLE_ARN",
                "arn:aws:iam::123456789012:role/landing-aws-scheduler",
            ),
            (
                "SCHEDULER_DLQ_ARN",
                "arn:aws:sqs:eu-central-1:123456789012:notify-dlq",
            ),
        ]
    }

    #[test]
    fn config_reads_every_variable() {
        let c = SchedulerConfig::from_env(&Env::from_pairs(full_env())).unwrap();
        assert_eq!(c.group, "landing-notify");
        assert_eq!(
            c.target_arn,
            "arn:aws:lambda:eu-central-1:123456789012:function:notify"
        );
        assert_eq!(
            c.role_arn,
            "arn:aws:iam::123456789012:role/landing-aws-scheduler"
        );
        assert_eq!(
            c.dlq_arn.as_deref(),
            Some("arn:aws:sqs:eu-central-1:123456789012:notify-dlq")
        );
        let mut env = full_env();
        env.retain(|(k, _)| *k != "SCHEDULER_DLQ_ARN");
        env.push(("SCHEDULER_DLQ_ARN", "  "));
        let c = SchedulerConfig::from_env(&Env::from_pairs(env)).unwrap();
        assert_eq!(c.dlq_arn, None);
    }

    #[test]
    fn config_errors_name_their_variable() {
        for var in ["SCHEDULE_GROUP", "NOTIFY_TARGET_ARN", "SCHEDULER_ROLE_ARN"] {
            let mut env = full_env();
            env.retain(|(k, _)| *k != var);
            let err = SchedulerConfig::from_env(&Env::from_pairs(env)).unwrap_err();
            assert_eq!(err.var, var, "{err}");
            assert!(err.to_string().starts_with(var), "{err}");
        }
        for (var, bad) in [
            ("SCHEDULE_GROUP", "has space"),
            ("SCHEDULE_GROUP", "g/1"),
            ("NOTIFY_TARGET_ARN", "notify"),
            ("NOTIFY_TARGET_ARN", "arn:aws:lambda"),
            ("SCHEDULER_ROLE_ARN", "role/x"),
            (
                "SCHEDULER_DLQ_ARN",
                "https://sqs.eu-central-1.amazonaws.com/1/q",
            ),
        ] {
            let mut env = full_env();
            env.retain(|(k, _)| *k != var);
            env.push((var, bad));
            let err = SchedulerConfig::from_env(&Env::from_pairs(env)).unwrap_err();
            assert_eq!(err.var, var, "{bad:?}: {err}");
        }
    }

    #[test]
    fn scheduler_error_keeps_the_chain() {
        let err: SchedulerError = ScheduleError::InvalidName("x y".into()).into();
        let source = std::error::Error::source(&err).unwrap();
        assert!(source.downcast_ref::<ScheduleError>().is_some());
        assert!(source.to_string().contains("x y"));
    }
}
