//! AWS transports for the sender ports (docs/architecture.md §5): SMS through SNS `Publish` to a phone number
//! ([`SnsSms`]) and email through SES v2 `SendEmail` ([`SesEmail`]).
//!
//! Errors are classified from the SDK's typed error variants (and, for codes the SDK has no
//! variant for, [`ProvideErrorMetadata::code`]) — never from message text:
//!
//! * [`SendError::Permanent`] — the request itself is wrong and will never succeed: SNS
//!   `InvalidParameter` (e.g. a number SNS refuses), `ParameterValueInvalid`, `NotFound`,
//!   `EndpointDisabled`, `ValidationException`; SES `BadRequestException`, `MessageRejected`
//!   (e.g. an unverified sender), `MailFromDomainNotVerifiedException`, `NotFoundException`
//!   (e.g. a missing configuration set).
//! * [`SendError::Transient`] — everything else: throttling, 5xx, timeouts, connection and
//!   dispatch failures, unparseable responses, and account/credential states that are not the
//!   message's fault (`AuthorizationError`, SES `SendingPaused`, `LimitExceeded`, …). The
//!   notification's `MAX_ATTEMPTS` bounds how long an error that never heals is retried.
//!
//! Neither SNS (direct publish) nor SES has an idempotency token; duplicates are prevented by
//! the notification claim, not here.

use std::error::Error as StdError;

use async_trait::async_trait;
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{
    Body, Content, Destination, EmailContent, Message, MessageHeader, MessageTag,
};
use aws_sdk_sns::operation::publish::PublishError;
use aws_sdk_sns::types::MessageAttributeValue;
// The error helpers are the same smithy types re-exported by every SDK crate.
use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use landing_core::domain::Email;
use landing_core::ports::{EmailMessage, EmailSender, SendError, SmsMessage, SmsSender};

/// SNS message attribute selecting the SMS route.
pub const SMS_TYPE_ATTRIBUTE: &str = "AWS.SNS.SMS.SMSType";
/// Lead notifications are transactional: highest-reliability route, not the cheapest.
pub const SMS_TYPE: &str = "Transactional";
/// SNS message attribute carrying the alphanumeric sender ID.
pub const SENDER_ID_ATTRIBUTE: &str = "AWS.SNS.SMS.SenderID";
/// Charset of every SES content part.
pub const CHARSET: &str = "UTF-8";
/// SES tag names set on every email (values pass through [`sanitize_tag_value`]).
pub const TAG_LEAD_ID: &str = "leadId";
pub const TAG_NOTIFICATION_ID: &str = "notificationId";
pub const TAG_SOURCE_CAMPAIGN: &str = "sourceCampaign";

pub use landing_core::config::{MessagingConfig, is_valid_configuration_set, is_valid_sender_id};

/// Makes `raw` a valid SES message-tag value: every character other than ASCII letters, digits,
/// `_` and `-` becomes `_`, and the result is cut to 256 characters.
pub fn sanitize_tag_value(raw: &str) -> String {
    raw.chars()
        .take(256)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Which side of the retry line an error falls on.
fn classify<E>(op: &str, err: &SdkError<E>, permanent: bool) -> SendError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let text = match err {
        SdkError::ServiceError(ctx) => format!(
            "{op}: {} (HTTP {}): {}",
            ctx.err().code().unwrap_or("unknown error"),
            ctx.raw().status().as_u16(),
            ctx.err().message().unwrap_or("no message"),
        ),
        other => format!("{op}: {}", DisplayErrorContext(other)),
    };
    if permanent {
        SendError::Permanent(text)
    } else {
        SendError::Transient(text)
    }
}

/// Codes that mean "this request is wrong", for errors the SDK has no typed variant for.
const PERMANENT_CODES: &[&str] = &[
    "InvalidParameter",
    "InvalidParameterValue",
    "ParameterValueInvalid",
    "ValidationError",
    "ValidationException",
    "MessageRejected",
    "BadRequestException",
    "NotFoundException",
    "MailFromDomainNotVerifiedException",
];

fn is_permanent_code(code: Option<&str>) -> bool {
    code.is_some_and(|c| PERMANENT_CODES.contains(&c))
}

fn sns_error(err: &SdkError<PublishError>) -> SendError {
    let permanent = match err.as_service_error() {
        Some(
            PublishError::InvalidParameterException(_)
            | PublishError::InvalidParameterValueException(_)
            | PublishError::NotFoundException(_)
            | PublishError::EndpointDisabledException(_)
            | PublishError::PlatformApplicationDisabledException(_)
            | PublishError::ValidationException(_),
        ) => true,
        // Internal errors, throttling, authorization and KMS states heal (or need an operator).
        Some(
            PublishError::InternalErrorException(_)
            | PublishError::AuthorizationErrorException(_)
            | PublishError::InvalidSecurityException(_)
            | PublishError::KmsThrottlingException(_),
        ) => false,
        Some(other) => is_permanent_code(other.code()),
        // Timeouts, dispatch/connection failures, unparseable responses, request construction.
        None => false,
    };
    classify("SNS Publish", err, permanent)
}

fn ses_error(err: &SdkError<SendEmailError>) -> SendError {
    let permanent = match err.as_service_error() {
        Some(
            SendEmailError::BadRequestException(_)
            | SendEmailError::MailFromDomainNotVerifiedException(_)
            | SendEmailError::MessageRejected(_)
            | SendEmailError::NotFoundException(_),
        ) => true,
        Some(
            SendEmailError::TooManyRequestsException(_)
            | SendEmailError::LimitExceededException(_)
            | SendEmailError::SendingPausedException(_)
            | SendEmailError::AccountSuspendedException(_),
        ) => false,
        Some(other) => is_permanent_code(other.code()),
        None => false,
    };
    classify("SES SendEmail", err, permanent)
}

/// SMS through SNS `Publish` to a phone number (E.164), `Transactional`, with the configured
/// sender ID if any. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SnsSms {
    client: aws_sdk_sns::Client,
    sender_id: Option<String>,
}

impl SnsSms {
    pub fn new(client: aws_sdk_sns::Client, config: &MessagingConfig) -> Self {
        SnsSms {
            client,
            sender_id: config.sms_sender_id.clone(),
        }
    }

    fn attribute(value: &str) -> Result<MessageAttributeValue, SendError> {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| SendError::Permanent(format!("SNS Publish: cannot build attribute: {e}")))
    }

    /// Publishes `body` to `phone` (already E.164); returns SNS's MessageId.
    pub(crate) async fn publish(&self, phone: &str, body: &str) -> Result<String, SendError> {
        let mut request = self
            .client
            .publish()
            .phone_number(phone)
            .message(body)
            .message_attributes(SMS_TYPE_ATTRIBUTE, Self::attribute(SMS_TYPE)?);
        if let Some(id) = &self.sender_id {
            request = request.message_attributes(SENDER_ID_ATTRIBUTE, Self::attribute(id)?);
        }
        let out = request.send().await.map_err(|e| sns_error(&e))?;
        Ok(out.message_id().unwrap_or("unknown").to_owned())
    }
}

#[async_trait]
impl SmsSender for SnsSms {
    async fn send_sms(&self, msg: &SmsMessage) -> Result<String, SendError> {
        match self.publish(msg.to.as_str(), &msg.body).await {
            Ok(id) => {
                tracing::info!(
                    to = %msg.to.masked(),
                    lead_id = %msg.meta.lead_id,
                    notification_id = %msg.meta.notification_id,
                    correlation_id = %msg.meta.correlation_id,
                    message_id = %id,
                    chars = msg.body.chars().count(),
                    "sms published"
                );
                Ok(id)
            }
            Err(e) => {
                tracing::warn!(
                    to = %msg.to.masked(),
                    lead_id = %msg.meta.lead_id,
                    notification_id = %msg.meta.notification_id,
                    correlation_id = %msg.meta.correlation_id,
                    error = %e,
                    "sms publish failed"
                );
                Err(e)
            }
        }
    }
}

/// Email through SES v2 `SendEmail` with `Simple` content (subject, HTML and text parts, all
/// UTF-8) from the configured address, in the configured configuration set if any, tagged with
/// the lead, notification and campaign. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SesEmail {
    client: aws_sdk_sesv2::Client,
    from: Email,
    configuration_set: Option<String>,
}

fn utf8(data: &str) -> Result<Content, SendError> {
    Content::builder()
        .data(data)
        .charset(CHARSET)
        .build()
        .map_err(|e| SendError::Permanent(format!("SES SendEmail: cannot build content: {e}")))
}

/// `List-Unsubscribe` and `List-Unsubscribe-Post` (RFC 8058), as SES adds them to the message.
fn headers(msg: &EmailMessage) -> Result<Vec<MessageHeader>, SendError> {
    msg.extra_headers()
        .into_iter()
        .map(|(name, value)| {
            MessageHeader::builder()
                .name(name)
                .value(value)
                .build()
                .map_err(|e| {
                    SendError::Permanent(format!("SES SendEmail: cannot build header: {e}"))
                })
        })
        .collect()
}

fn tag(name: &str, value: &str) -> Result<Option<MessageTag>, SendError> {
    let value = sanitize_tag_value(value);
    if value.is_empty() {
        return Ok(None);
    }
    MessageTag::builder()
        .name(name)
        .value(value)
        .build()
        .map(Some)
        .map_err(|e| SendError::Permanent(format!("SES SendEmail: cannot build tag: {e}")))
}

impl SesEmail {
    pub fn new(client: aws_sdk_sesv2::Client, config: &MessagingConfig) -> Self {
        SesEmail {
            client,
            from: config.email_from.clone(),
            configuration_set: config.configuration_set.clone(),
        }
    }

    async fn send(&self, msg: &EmailMessage) -> Result<String, SendError> {
        // The subject becomes a header: no CR/LF may reach it, whatever the template did.
        let subject: String = msg
            .subject
            .chars()
            .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
            .collect();
        let headers = headers(msg)?;
        let content = EmailContent::builder()
            .simple(
                Message::builder()
                    .subject(utf8(&subject)?)
                    .body(
                        Body::builder()
                            .text(utf8(&msg.text)?)
                            .html(utf8(&msg.html)?)
                            .build(),
                    )
                    .set_headers((!headers.is_empty()).then_some(headers))
                    .build(),
            )
            .build();
        let tags = [
            tag(TAG_LEAD_ID, &msg.meta.lead_id.to_string())?,
            tag(TAG_NOTIFICATION_ID, &msg.meta.notification_id.to_string())?,
            tag(TAG_SOURCE_CAMPAIGN, &msg.meta.source_campaign)?,
        ];
        let out = self
            .client
            .send_email()
            .from_email_address(self.from.as_str())
            .destination(Destination::builder().to_addresses(msg.to.as_str()).build())
            .content(content)
            .set_email_tags(Some(tags.into_iter().flatten().collect()))
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map_err(|e| ses_error(&e))?;
        Ok(out.message_id().unwrap_or("unknown").to_owned())
    }
}

#[async_trait]
impl EmailSender for SesEmail {
    async fn send_email(&self, msg: &EmailMessage) -> Result<String, SendError> {
        match self.send(msg).await {
            Ok(id) => {
                tracing::info!(
                    to = %msg.to.masked(),
                    lead_id = %msg.meta.lead_id,
                    notification_id = %msg.meta.notification_id,
                    correlation_id = %msg.meta.correlation_id,
                    message_id = %id,
                    "email sent"
                );
                Ok(id)
            }
            Err(e) => {
                tracing::warn!(
                    to = %msg.to.masked(),
                    lead_id = %msg.meta.lead_id,
                    notification_id = %msg.meta.notification_id,
                    correlation_id = %msg.meta.correlation_id,
                    error = %e,
                    "email send failed"
                );
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests;
