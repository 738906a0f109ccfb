//! Unit tests: message building and error classification. Classification is driven by
//! real SDK clients talking to a canned HTTP server on a loopback port (so the SDK's own error
//! parsing is exercised) and, for what only a real service says, to moto.

use std::time::Duration;

use landing_core::domain::{LeadId, Phone};
use landing_core::ports::MessageMeta;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

#[test]
fn tag_values_are_sanitised_to_ses_characters() {
    assert_eq!(
        sanitize_tag_value("0190f3c4-1a2b-7c3d-8e4f-123456789abc"),
        "0190f3c4-1a2b-7c3d-8e4f-123456789abc"
    );
    assert_eq!(sanitize_tag_value("proftest_kenesary"), "proftest_kenesary");
    assert_eq!(sanitize_tag_value("a.b c/d=é\r\n"), "a_b_c_d____");
    assert_eq!(sanitize_tag_value("курс"), "____");
    assert_eq!(sanitize_tag_value(&"x".repeat(300)).len(), 256);
    assert_eq!(sanitize_tag_value(&"я".repeat(300)).len(), 256);
}

// ---- canned HTTP server -------------------------------------------------------------------

type Captured = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// Serves `response` (raw HTTP) to every connection; `None` accepts and never answers.
async fn canned(response: Option<&'static str>) -> String {
    canned_capturing(response).await.0
}

/// Like [`canned`], and keeps every request (head and body) it received.
async fn canned_capturing(response: Option<&'static str>) -> (String, Captured) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let captured = Captured::default();
    let sink = captured.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let sink = sink.clone();
            tokio::spawn(async move {
                let request = read_request(&mut sock).await;
                sink.lock().unwrap().push(request);
                match response {
                    Some(r) => {
                        let _ = sock.write_all(r.as_bytes()).await;
                        let _ = sock.shutdown().await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    (format!("http://{addr}"), captured)
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = sock.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())
                        .flatten()
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf).to_string()
}

fn http(status: &str, headers: &str, body: &str) -> &'static str {
    Box::leak(
        format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
            body.len()
        )
        .into_boxed_str(),
    )
}

async fn sdk_config(endpoint: String) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("eu-central-1"))
        .credentials_provider(aws_sdk_sns::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_millis(500))
                .build(),
        )
        .load()
        .await
}

fn config() -> MessagingConfig {
    MessagingConfig {
        email_from: Email::parse("noreply@example.com").unwrap(),
        configuration_set: None,
        sms_sender_id: Some("Kenesary".into()),
    }
}

fn meta() -> MessageMeta {
    MessageMeta {
        notification_id: uuid::Uuid::now_v7(),
        lead_id: LeadId::new(),
        source_campaign: "proftest_kenesary".into(),
        correlation_id: "corr-1".into(),
    }
}

fn sms() -> SmsMessage {
    SmsMessage {
        meta: meta(),
        to: Phone::parse("+77011234567").unwrap(),
        body: "Здравствуйте!".into(),
        segments: 1,
    }
}

fn email() -> EmailMessage {
    EmailMessage {
        meta: meta(),
        to: Email::parse("lead@example.org").unwrap(),
        subject: "Тема".into(),
        text: "text".into(),
        html: "<p>html</p>".into(),
        list_unsubscribe: None,
    }
}

async fn sns_against(response: Option<&'static str>) -> Result<String, SendError> {
    let conf = sdk_config(canned(response).await).await;
    SnsSms::new(aws_sdk_sns::Client::new(&conf), &config())
        .send_sms(&sms())
        .await
}

async fn ses_against(response: Option<&'static str>) -> Result<String, SendError> {
    let conf = sdk_config(canned(response).await).await;
    SesEmail::new(aws_sdk_sesv2::Client::new(&conf), &config())
        .send_email(&email())
        .await
}

fn sns_error_xml(code: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error>\
         <Type>Sender</Type><Code>{code}</Code><Message>canned {code}</Message></Error>\
         <RequestId>r-1</RequestId></ErrorResponse>"
    )
}

#[tokio::test]
async fn sns_success_returns_the_message_id() {
    let body = "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
                <PublishResult><MessageId>m-123</MessageId></PublishResult>\
                <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishResponse>";
    let id = sns_against(Some(http("200 OK", "content-type: text/xml\r\n", body)))
        .await
        .unwrap();
    assert_eq!(id, "m-123");
}

#[tokio::test]
async fn sns_request_carries_number_body_type_and_sender_id() {
    let body = "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
                <PublishResult><MessageId>m-1</MessageId></PublishResult></PublishResponse>";
    let (url, captured) =
        canned_capturing(Some(http("200 OK", "content-type: text/xml\r\n", body))).await;
    let conf = sdk_config(url).await;
    let msg = sms();
    SnsSms::new(aws_sdk_sns::Client::new(&conf), &config())
        .send_sms(&msg)
        .await
        .unwrap();
    let request = captured.lock().unwrap().join("\n");
    let form_body = request.split("\r\n\r\n").nth(1).unwrap();
    let form: Vec<(String, String)> = form_urlencoded(form_body);
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{k} missing in {form:?}"))
    };
    assert_eq!(get("Action"), "Publish");
    assert_eq!(get("PhoneNumber"), "+77011234567");
    assert_eq!(get("Message"), "Здравствуйте!");
    let mut attrs = std::collections::BTreeMap::new();
    for i in 1..=2 {
        attrs.insert(
            get(&format!("MessageAttributes.entry.{i}.Name")).to_owned(),
            (
                get(&format!("MessageAttributes.entry.{i}.Value.DataType")).to_owned(),
                get(&format!("MessageAttributes.entry.{i}.Value.StringValue")).to_owned(),
            ),
        );
    }
    assert_eq!(
        attrs.get(SMS_TYPE_ATTRIBUTE),
        Some(&("String".to_owned(), "Transactional".to_owned()))
    );
    assert_eq!(
        attrs.get(SENDER_ID_ATTRIBUTE),
        Some(&("String".to_owned(), "Kenesary".to_owned()))
    );

    // Without a sender ID only the SMS type is sent.
    let (url, captured) =
        canned_capturing(Some(http("200 OK", "content-type: text/xml\r\n", body))).await;
    let conf = sdk_config(url).await;
    let mut cfg = config();
    cfg.sms_sender_id = None;
    SnsSms::new(aws_sdk_sns::Client::new(&conf), &cfg)
        .send_sms(&msg)
        .await
        .unwrap();
    let request = captured.lock().unwrap().join("\n");
    assert!(request.contains("AWS.SNS.SMS.SMSType"));
    assert!(!request.contains("SenderID"));
}

/// `application/x-www-form-urlencoded` without another dependency.
fn form_urlencoded(body: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

#[tokio::test]
async fn ses_request_carries_parts_charset_headers_tags_and_configuration_set() {
    let (url, captured) = canned_capturing(Some(http(
        "200 OK",
        "content-type: application/json\r\n",
        r#"{"MessageId":"ses-1"}"#,
    )))
    .await;
    let conf = sdk_config(url).await;
    let mut cfg = config();
    cfg.configuration_set = Some("landing-events".into());
    let mut msg = email();
    msg.meta.source_campaign = "курс/весна 2025".into();
    msg.subject = "Тема\r\nBcc: x@example.org".into();
    msg.list_unsubscribe =
        Some("https://school.example.kz/api/landing/unsubscribe?token=0123abcd".into());
    SesEmail::new(aws_sdk_sesv2::Client::new(&conf), &cfg)
        .send_email(&msg)
        .await
        .unwrap();
    let request = captured.lock().unwrap().join("\n");
    assert!(
        request.starts_with("POST /v2/email/outbound-emails "),
        "{request}"
    );
    let body = request.split("\r\n\r\n").nth(1).unwrap();
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["FromEmailAddress"], "noreply@example.com");
    assert_eq!(
        json["Destination"]["ToAddresses"],
        serde_json::json!(["lead@example.org"])
    );
    assert_eq!(json["ConfigurationSetName"], "landing-events");
    let simple = &json["Content"]["Simple"];
    assert_eq!(
        simple["Subject"],
        serde_json::json!({"Data": "Тема  Bcc: x@example.org", "Charset": "UTF-8"})
    );
    assert_eq!(
        simple["Body"]["Text"],
        serde_json::json!({"Data": "text", "Charset": "UTF-8"})
    );
    assert_eq!(
        simple["Body"]["Html"],
        serde_json::json!({"Data": "<p>html</p>", "Charset": "UTF-8"})
    );
    assert_eq!(
        simple["Headers"],
        serde_json::json!([
            {"Name": "List-Unsubscribe", "Value": "<https://school.example.kz/api/landing/unsubscribe?token=0123abcd>"},
            {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"},
        ])
    );
    assert_eq!(
        json["EmailTags"],
        serde_json::json!([
            {"Name": "leadId", "Value": msg.meta.lead_id.to_string()},
            {"Name": "notificationId", "Value": msg.meta.notification_id.to_string()},
            {"Name": "sourceCampaign", "Value": "___________2025"},
        ])
    );

    // Without a configuration set the field is absent.
    let (url, captured) = canned_capturing(Some(http(
        "200 OK",
        "content-type: application/json\r\n",
        r#"{"MessageId":"ses-2"}"#,
    )))
    .await;
    let conf = sdk_config(url).await;
    SesEmail::new(aws_sdk_sesv2::Client::new(&conf), &config())
        .send_email(&email())
        .await
        .unwrap();
    let request = captured.lock().unwrap().join("");
    assert!(!request.contains("ConfigurationSetName"));
    let body: serde_json::Value =
        serde_json::from_str(request.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert!(
        body["Content"]["Simple"].get("Headers").is_none(),
        "no link, no headers: {body}"
    );
}

#[tokio::test]
async fn sns_errors_are_classified() {
    for (status, code, permanent) in [
        ("400 Bad Request", "InvalidParameter", true),
        ("400 Bad Request", "ParameterValueInvalid", true),
        ("404 Not Found", "NotFound", true),
        ("400 Bad Request", "ValidationException", true),
        ("400 Bad Request", "Throttling", false),
        ("429 Too Many Requests", "ThrottledException", false),
        ("500 Internal Server Error", "InternalError", false),
        ("503 Service Unavailable", "ServiceUnavailable", false),
        ("403 Forbidden", "AuthorizationError", false),
    ] {
        let xml = sns_error_xml(code);
        let err = sns_against(Some(http(status, "content-type: text/xml\r\n", &xml)))
            .await
            .unwrap_err();
        match (&err, permanent) {
            (SendError::Permanent(m), true) | (SendError::Transient(m), false) => {
                assert!(m.contains(code), "{m}");
                assert!(m.contains(&status[..3]), "{m}");
            }
            _ => panic!("{code}: {err:?}"),
        }
    }
}

#[tokio::test]
async fn sns_unparseable_5xx_is_transient() {
    let err = sns_against(Some(http(
        "502 Bad Gateway",
        "content-type: text/html\r\n",
        "<html>bad gateway</html>",
    )))
    .await
    .unwrap_err();
    assert!(matches!(err, SendError::Transient(_)), "{err:?}");
}

#[tokio::test]
async fn ses_success_returns_the_message_id() {
    let id = ses_against(Some(http(
        "200 OK",
        "content-type: application/json\r\n",
        r#"{"MessageId":"ses-1"}"#,
    )))
    .await
    .unwrap();
    assert_eq!(id, "ses-1");
}

#[tokio::test]
async fn ses_errors_are_classified() {
    for (status, code, permanent) in [
        ("400 Bad Request", "BadRequestException", true),
        ("400 Bad Request", "MessageRejected", true),
        (
            "400 Bad Request",
            "MailFromDomainNotVerifiedException",
            true,
        ),
        ("404 Not Found", "NotFoundException", true),
        ("429 Too Many Requests", "TooManyRequestsException", false),
        ("400 Bad Request", "LimitExceededException", false),
        ("400 Bad Request", "SendingPausedException", false),
        ("500 Internal Server Error", "InternalFailure", false),
        ("503 Service Unavailable", "ServiceUnavailable", false),
    ] {
        let headers = format!("content-type: application/json\r\nx-amzn-errortype: {code}\r\n");
        let body = format!(r#"{{"message":"canned {code}"}}"#);
        let err = ses_against(Some(http(status, &headers, &body)))
            .await
            .unwrap_err();
        match (&err, permanent) {
            (SendError::Permanent(m), true) | (SendError::Transient(m), false) => {
                assert!(m.contains(code), "{m}");
            }
            _ => panic!("{code}: {err:?}"),
        }
    }
    // No error code at all, 5xx: transient.
    let err = ses_against(Some(http("503 Service Unavailable", "", "")))
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Transient(_)), "{err:?}");
}

#[tokio::test]
async fn timeouts_and_dispatch_failures_are_transient() {
    // Accepts and never answers: the operation timeout fires.
    let err = sns_against(None).await.unwrap_err();
    assert!(matches!(err, SendError::Transient(_)), "{err:?}");
    let err = ses_against(None).await.unwrap_err();
    assert!(matches!(err, SendError::Transient(_)), "{err:?}");

    // Nobody listens: connection refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let conf = sdk_config(closed).await;
    let err = SnsSms::new(aws_sdk_sns::Client::new(&conf), &config())
        .send_sms(&sms())
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Transient(_)), "{err:?}");
    let err = SesEmail::new(aws_sdk_sesv2::Client::new(&conf), &config())
        .send_email(&email())
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Transient(_)), "{err:?}");
}

// ---- moto (below the port, so it lives with the crate's own tests) ---------------------------

#[tokio::test]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn moto_rejects_a_number_that_is_not_e164_as_permanent() {
    let conf = landing_moto::sdk_config().await;
    let sns = SnsSms::new(aws_sdk_sns::Client::new(&conf), &config());
    // `Phone` cannot hold this, so go below the port.
    let err = sns.publish("+0123", "x").await.unwrap_err();
    match err {
        SendError::Permanent(m) => assert!(m.contains("InvalidParameter"), "{m}"),
        other => panic!("{other:?}"),
    }
}
