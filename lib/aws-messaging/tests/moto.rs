//! Against moto: `./infra/with-moto.sh cargo test -p landing-aws-messaging`. What was "sent" is read
//! back from `GET /moto-api/data.json` (`sns.SMS[]`, `ses.Message[]`). State is never reset:
//! every test uses its own sender domain, recipient and message text, so tests run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

use landing_aws_messaging::{MessagingConfig, SesEmail, SnsSms};
use landing_core::config::Env;
use landing_core::domain::{Email, LeadId, Phone};
use landing_core::ports::{
    EmailMessage, EmailSender, MessageMeta, SendError, SmsMessage, SmsSender,
};
use serde_json::Value;

async fn sdk_config() -> aws_config::SdkConfig {
    landing_moto::sdk_config().await
}

async fn moto_data() -> Value {
    reqwest::get(format!("{}/moto-api/data.json", landing_moto::endpoint()))
        .await
        .expect("GET data.json")
        .json()
        .await
        .expect("data.json is JSON")
}

fn unique() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

fn meta(campaign: &str) -> MessageMeta {
    MessageMeta {
        notification_id: uuid::Uuid::now_v7(),
        lead_id: LeadId::new(),
        source_campaign: campaign.into(),
        correlation_id: format!("corr-{}", unique()),
    }
}

/// A valid Kazakh mobile number, different for every call.
fn phone() -> Phone {
    let n = uuid::Uuid::now_v7().as_u128() % 10_000_000;
    Phone::parse(&format!("+7701{n:07}")).expect("valid phone")
}

/// Verifies a fresh domain in moto's SES and returns a sender on it.
async fn verified_sender(ses: &aws_sdk_sesv2::Client) -> Email {
    let domain = format!("t{}.example.com", unique());
    ses.create_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .expect("CreateEmailIdentity");
    Email::parse(&format!("noreply@{domain}")).expect("valid sender")
}

fn config(from: Email, sender_id: Option<&str>) -> MessagingConfig {
    MessagingConfig {
        email_from: from,
        configuration_set: None,
        sms_sender_id: sender_id.map(str::to_owned),
    }
}

fn sms_in(data: &Value, message_id: &str) -> Option<Value> {
    data["sns"]["SMS"]
        .as_array()?
        .iter()
        .find(|m| m["message_id"] == message_id)
        .cloned()
}

fn emails_to(data: &Value, to: &str) -> Vec<Value> {
    data["ses"]["Message"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|m| {
                    m["destinations"]["ToAddresses"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x == to))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn sms_publish_reaches_moto_with_number_and_body() {
    let conf = sdk_config().await;
    let sns = SnsSms::new(
        aws_sdk_sns::Client::new(&conf),
        &config(Email::parse("a@example.com").unwrap(), None),
    );
    let to = phone();
    let body = format!("Здравствуйте, Айгерим! Ваш код {}", unique());
    let msg = SmsMessage {
        meta: meta("proftest_kenesary"),
        to: to.clone(),
        body: body.clone(),
        segments: landing_core::notify::sms_segments(&body),
    };
    let id = sns.send_sms(&msg).await.unwrap();
    assert!(!id.is_empty());

    let data = moto_data().await;
    let sent = sms_in(&data, &id).unwrap_or_else(|| panic!("SMS {id} not in {data}"));
    assert_eq!(sent["phone_number"], to.as_str());
    assert_eq!(sent["message"], body.as_str());
}

#[tokio::test]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn sms_with_sender_id_is_published() {
    let conf = sdk_config().await;
    let sns = SnsSms::new(
        aws_sdk_sns::Client::new(&conf),
        &config(Email::parse("a@example.com").unwrap(), Some("Kenesary")),
    );
    let to = phone();
    let body = format!("sender id {}", unique());
    let id = sns
        .send_sms(&SmsMessage {
            meta: meta("c"),
            to: to.clone(),
            body: body.clone(),
            segments: landing_core::notify::sms_segments(&body),
        })
        .await
        .unwrap();
    let data = moto_data().await;
    let sent = sms_in(&data, &id).unwrap_or_else(|| panic!("SMS {id} not in {data}"));
    assert_eq!(sent["phone_number"], to.as_str());
    assert_eq!(sent["message"], body.as_str());
}

#[tokio::test]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn email_reaches_moto_with_subject_and_html() {
    let conf = sdk_config().await;
    let client = aws_sdk_sesv2::Client::new(&conf);
    let from = verified_sender(&client).await;
    let ses = SesEmail::new(client, &config(from.clone(), None));
    let to = Email::parse(&format!("lead-{}@example.org", unique())).unwrap();
    let msg = EmailMessage {
        // Non-ASCII campaign: the tag value is sanitised, so SES would accept it.
        meta: meta("курс/весна 2025"),
        to: to.clone(),
        subject: "Ваша заявка принята".into(),
        text: "Здравствуйте, Айгерим!".into(),
        html: "<p>Здравствуйте, <b>Айгерим</b>!</p>".into(),
        // SES takes the RFC 8058 headers in Message.Headers.
        list_unsubscribe: Some(
            "https://school.example.kz/api/landing/unsubscribe?token=0123abcd".into(),
        ),
    };
    let id = ses.send_email(&msg).await.unwrap();
    assert!(!id.is_empty());

    let data = moto_data().await;
    let sent = emails_to(&data, to.as_str());
    assert_eq!(sent.len(), 1, "{data}");
    let sent = &sent[0];
    assert_eq!(sent["id"], id.as_str());
    assert_eq!(sent["source"], from.as_str());
    assert_eq!(sent["subject"], "Ваша заявка принята");
    // moto keeps only the HTML part of a two-part message.
    assert_eq!(sent["body"], "<p>Здравствуйте, <b>Айгерим</b>!</p>");
}

#[tokio::test]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn email_subject_never_carries_a_line_break() {
    let conf = sdk_config().await;
    let client = aws_sdk_sesv2::Client::new(&conf);
    let from = verified_sender(&client).await;
    let ses = SesEmail::new(client, &config(from, None));
    let to = Email::parse(&format!("lead-{}@example.org", unique())).unwrap();
    ses.send_email(&EmailMessage {
        meta: meta("c"),
        to: to.clone(),
        subject: "Hello\r\nBcc: victim@example.org".into(),
        text: "t".into(),
        html: "<p>h</p>".into(),
        list_unsubscribe: None,
    })
    .await
    .unwrap();
    let data = moto_data().await;
    let sent = emails_to(&data, to.as_str());
    assert_eq!(sent.len(), 1, "{data}");
    assert_eq!(sent[0]["subject"], "Hello  Bcc: victim@example.org");
}

#[tokio::test]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn email_with_configuration_set_is_sent() {
    let conf = sdk_config().await;
    let client = aws_sdk_sesv2::Client::new(&conf);
    let from = verified_sender(&client).await;
    let set = format!("cs-{}", unique());
    client
        .create_configuration_set()
        .configuration_set_name(&set)
        .send()
        .await
        .expect("CreateConfigurationSet");
    let mut cfg = config(from, None);
    cfg.configuration_set = Some(set);
    let ses = SesEmail::new(client, &cfg);
    let to = Email::parse(&format!("lead-{}@example.org", unique())).unwrap();
    ses.send_email(&EmailMessage {
        meta: meta("c"),
        to: to.clone(),
        subject: "s".into(),
        text: "t".into(),
        html: "<p>h</p>".into(),
        list_unsubscribe: None,
    })
    .await
    .unwrap();
    assert_eq!(emails_to(&moto_data().await, to.as_str()).len(), 1);
}

#[tokio::test]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn unverified_sender_is_permanent() {
    let conf = sdk_config().await;
    let from = Email::parse(&format!("noreply@unverified-{}.example.com", unique())).unwrap();
    let ses = SesEmail::new(aws_sdk_sesv2::Client::new(&conf), &config(from, None));
    let to = Email::parse(&format!("lead-{}@example.org", unique())).unwrap();
    let err = ses
        .send_email(&EmailMessage {
            meta: meta("c"),
            to: to.clone(),
            subject: "s".into(),
            text: "t".into(),
            html: "<p>h</p>".into(),
            list_unsubscribe: None,
        })
        .await
        .unwrap_err();
    match &err {
        SendError::Permanent(m) => assert!(m.contains("MessageRejected"), "{m}"),
        other => panic!("expected Permanent, got {other:?}"),
    }
    assert!(emails_to(&moto_data().await, to.as_str()).is_empty());
}

#[tokio::test]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn config_from_env_builds_working_senders() {
    let conf = sdk_config().await;
    let client = aws_sdk_sesv2::Client::new(&conf);
    let from = verified_sender(&client).await;
    let cfg = MessagingConfig::from_env(&Env::from_pairs([
        ("EMAIL_FROM", from.as_str()),
        ("SMS_SENDER_ID", "Kenesary"),
    ]))
    .unwrap();
    let to = Email::parse(&format!("lead-{}@example.org", unique())).unwrap();
    SesEmail::new(client, &cfg)
        .send_email(&EmailMessage {
            meta: meta("c"),
            to: to.clone(),
            subject: "s".into(),
            text: "t".into(),
            html: "<p>h</p>".into(),
            list_unsubscribe: None,
        })
        .await
        .unwrap();
    let sent = emails_to(&moto_data().await, to.as_str());
    assert_eq!(sent[0]["source"], from.as_str());
}
