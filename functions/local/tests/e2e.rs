//! End to end against the real `landing-local` binary: a temporary data dir, a short
//! `NOTIFY_DELAY`, real HTTP over loopback, SIGKILL and restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_landing-local");
/// Generous: the suite shares two cores with everything else.
const PATIENCE: Duration = Duration::from_secs(40);

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("landing-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Landing {
    child: Child,
    base: String,
    data: PathBuf,
    /// Every line the process wrote to stdout (its JSON logs), as it was written.
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Landing {
    /// Starts the binary on a free port and waits for it to say where it listens.
    fn start(data: &Path, extra_env: &[(&str, &str)]) -> Landing {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LANDING_ADDR", "127.0.0.1:0")
            .env("LANDING_DATA_DIR", data)
            .env("NOTIFY_DELAY", "2s")
            .env("NOTIFY_LEASE", "2s")
            // These tests expect the SMS whatever the hour they run at; the window has its own.
            .env("NOTIFY_SMS_WINDOW", "always")
            // Many of these tests send several forms from one phone or address and count what
            // each got; one follow-up per person is on in `follow_ups::*`.
            .env("NOTIFY_SUPERSEDE", "off")
            .env("RUST_LOG", "info")
            // Every lead of these tests comes from 127.0.0.1 and many share a prefix: the SMS
            // limits would withhold most of their SMS. They are about delivery; the `guard`
            // module turns the limits back on.
            .env("SMS_LIMIT_PER_PHONE", "off")
            .env("SMS_LIMIT_PER_PREFIX", "off")
            .env("SMS_LIMIT_PER_IP", "off")
            .env("SMS_BUDGET", "off")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = logs.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line.clone());
                if !sent
                    && let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["message"] == "landing-local listening"
                {
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                    sent = true;
                }
            }
        });
        let addr = rx
            .recv_timeout(PATIENCE)
            .expect("landing-local did not start listening");
        Landing {
            child,
            base: format!("http://{addr}"),
            data: data.to_owned(),
            logs,
        }
    }

    /// The log lines so far, each parsed as the one JSON object it must be.
    fn log_lines(&self) -> Vec<Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "landing-local did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.data.join("landing.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap()
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn post(base: &str, path: &str, body: &Value, key: Option<&str>) -> (u16, Value) {
    let mut req = client().post(format!("{base}{path}")).json(body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn lead(i: usize) -> Value {
    json!({"name": format!("Лид {i}"), "phone": format!("+7701{:07}", i), "email": format!("lead{i}@mail.kz"), "slug": "kenesary"})
}

fn outbox(data: &Path) -> Vec<Value> {
    match std::fs::read_to_string(data.join("outbox.jsonl")) {
        Ok(s) => s
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        Err(_) => vec![],
    }
}

/// Waits until the outbox has at least `n` lines, then a little longer to catch extras.
fn wait_outbox(data: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    while outbox(data).len() < n {
        assert!(
            Instant::now() < deadline,
            "outbox has {} of {n} lines",
            outbox(data).len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    outbox(data)
}

/// Every (lead, channel) appears exactly once, and each id is one of `leads`.
fn assert_exactly_once(lines: &[Value], leads: &[String], channels_per_lead: usize) {
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for l in lines {
        *seen
            .entry((
                l["leadId"].as_str().unwrap().to_owned(),
                l["channel"].as_str().unwrap().to_owned(),
            ))
            .or_default() += 1;
    }
    assert_eq!(
        seen.len(),
        leads.len() * channels_per_lead,
        "distinct (lead, channel) pairs"
    );
    assert!(
        seen.values().all(|&n| n == 1),
        "some message went out twice: {seen:?}"
    );
    assert!(seen.keys().all(|(lead, _)| leads.contains(lead)));
}

fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn leads_are_committed_and_followed_by_one_sms_and_one_email_each() {
    let dir = temp_dir("happy");
    let app = Landing::start(&dir, &[]);
    let mut ids = vec![];
    for i in 0..3 {
        let (status, body) = post(&app.base, "/api/landing/proftest", &lead(i), None).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["sourceCampaign"], "proftest_kenesary");
        ids.push(body["leadId"].as_str().unwrap().to_owned());
        // Committed before the answer: the row is there the moment the 201 is.
        assert_eq!(
            count(
                &app.db(),
                &format!("SELECT COUNT(*) FROM landing_leads WHERE id = '{}'", ids[i])
            ),
            1
        );
    }
    let (status, body) = post(&app.base, "/api/landing/submit", &json!({"name": "Ерлан", "phone": "87051234567", "email": "erlan@mail.kz", "paymentMethod": "Halyk"}), None).await;
    assert_eq!(status, 201);
    assert_eq!(body["sourceCampaign"], "expresscourse");
    ids.push(body["leadId"].as_str().unwrap().to_owned());

    assert!(
        outbox(&dir).is_empty(),
        "nothing may be sent before the delay"
    );
    let lines = wait_outbox(&dir, 8);
    assert_exactly_once(&lines, &ids, 2);
    let express_sms = lines
        .iter()
        .find(|l| l["leadId"] == ids[3].as_str() && l["channel"] == "sms")
        .unwrap();
    assert!(express_sms["body"].as_str().unwrap().contains("Ерлан"));
    assert_eq!(express_sms["to"], "+77051234567");
    let db = app.db();
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM scheduled_notifications WHERE status = 'sent'"
        ),
        8
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM unified_lead_tracking"), 8);
    assert_eq!(app.terminate().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotent_retry_stores_nothing_new() {
    let dir = temp_dir("idem");
    let app = Landing::start(&dir, &[("NOTIFY_DELAY", "1h")]);
    let body = lead(1);
    let (s1, b1) = post(
        &app.base,
        "/api/landing/proftest",
        &body,
        Some("retry-key-1"),
    )
    .await;
    let (s2, b2) = post(
        &app.base,
        "/api/landing/proftest",
        &body,
        Some("retry-key-1"),
    )
    .await;
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(b1, b2);
    let (s3, b3) = post(
        &app.base,
        "/api/landing/proftest",
        &lead(2),
        Some("retry-key-1"),
    )
    .await;
    assert_eq!(s3, 422);
    assert!(b3["fields"]["Idempotency-Key"].is_string());
    let db = app.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM landing_leads"), 1);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM scheduled_notifications"),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_with_notifications_pending_loses_and_doubles_nothing() {
    let dir = temp_dir("kill-pending");
    let app = Landing::start(&dir, &[("NOTIFY_DELAY", "3s")]);
    let mut ids = vec![];
    for i in 0..10 {
        let (status, body) = post(&app.base, "/api/landing/proftest", &lead(100 + i), None).await;
        assert_eq!(status, 201);
        ids.push(body["leadId"].as_str().unwrap().to_owned());
    }
    app.kill9();
    assert!(outbox(&dir).is_empty(), "killed before anything was due");

    let app = Landing::start(&dir, &[]);
    let lines = wait_outbox(&dir, 20);
    assert_exactly_once(&lines, &ids, 2);
    assert_eq!(
        count(
            &app.db(),
            "SELECT COUNT(*) FROM scheduled_notifications WHERE status = 'sent' AND attempts = 1"
        ),
        20
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_while_a_notification_is_being_sent_resends_it_exactly_once() {
    let dir = temp_dir("kill-sending");
    // A FIFO as outbox: the send blocks opening it until someone reads, so the process is
    // provably killed mid-send with the row claimed and nothing written.
    let fifo = dir.join("outbox.jsonl");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let app = Landing::start(&dir, &[("NOTIFY_DELAY", "1s")]);
    let (status, body) = post(
        &app.base,
        "/api/landing/proftest",
        &json!({"name": "Асель", "phone": "+77019998877"}),
        None,
    )
    .await;
    assert_eq!(status, 201);
    let id = body["leadId"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + PATIENCE;
    while count(
        &app.db(),
        "SELECT COUNT(*) FROM scheduled_notifications WHERE status = 'sending'",
    ) == 0
    {
        assert!(Instant::now() < deadline, "notification was never claimed");
        std::thread::sleep(Duration::from_millis(50));
    }
    app.kill9();
    std::fs::remove_file(&fifo).unwrap();

    let app = Landing::start(&dir, &[]);
    let lines = wait_outbox(&dir, 1);
    assert_exactly_once(&lines, &[id], 1);
    assert_eq!(
        count(
            &app.db(),
            "SELECT attempts FROM scheduled_notifications WHERE status = 'sent'"
        ),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_concurrent_submissions_give_200_leads_and_400_notifications() {
    let dir = temp_dir("concurrent");
    let app = Landing::start(&dir, &[("NOTIFY_DELAY", "3s")]);
    let base = app.base.clone();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let base = base.clone();
            tokio::spawn(async move {
                let (path, body) = if i % 2 == 0 {
                    ("/api/landing/proftest", lead(1000 + i))
                } else {
                    let mut b = lead(1000 + i);
                    b["paymentMethod"] = json!(["kaspi", "halyk", "robokassa"][i % 3]);
                    ("/api/landing/submit", b)
                };
                post(&base, path, &body, Some(&format!("concurrent-{i}"))).await
            })
        })
        .collect();
    let mut ids = vec![];
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 201, "{body}");
        ids.push(body["leadId"].as_str().unwrap().to_owned());
    }
    let db = app.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM landing_leads"), 200);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM scheduled_notifications"),
        400
    );
    let lines = wait_outbox(&dir, 400);
    assert_exactly_once(&lines, &ids, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_email_with_a_valid_phone_gets_only_an_sms() {
    let dir = temp_dir("sms-only");
    let app = Landing::start(&dir, &[("NOTIFY_DELAY", "1s")]);
    let (status, body) = post(
        &app.base,
        "/api/landing/proftest",
        &json!({"name": "Дана", "phone": "8 701 555 44 33", "email": "dana@@mail"}),
        None,
    )
    .await;
    assert_eq!(status, 201);
    let id = body["leadId"].as_str().unwrap().to_owned();
    let (status, body) = post(
        &app.base,
        "/api/landing/proftest",
        &json!({"name": "Дана", "phone": "555", "email": "dana@@mail"}),
        None,
    )
    .await;
    assert_eq!(status, 422);
    assert!(body["fields"]["phone"].is_string() && body["fields"]["email"].is_string());

    let lines = wait_outbox(&dir, 1);
    assert_exactly_once(&lines, std::slice::from_ref(&id), 1);
    assert_eq!(lines[0]["channel"], "sms");
    let warnings: String = app
        .db()
        .query_row(
            "SELECT warnings FROM landing_leads WHERE id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    assert!(warnings.contains("email"), "{warnings}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_process_on_the_same_data_dir_refuses_to_start() {
    let dir = temp_dir("lock");
    let _app = Landing::start(&dir, &[]);
    let out = Command::new(BIN)
        .env_clear()
        .env("LANDING_ADDR", "127.0.0.1:0")
        .env("LANDING_DATA_DIR", &dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("in use by another landing-local process"),
        "{text}"
    );
}

#[test]
fn invalid_configuration_stops_the_process_and_names_the_variable() {
    for (var, value) in [
        ("NOTIFY_DELAY", "soon"),
        ("LANDING_ADDR", "nowhere"),
        ("LANDING_TRANSPORTT", "outbox"),
    ] {
        let out = Command::new(BIN)
            .env_clear()
            .env(var, value)
            .env("LANDING_DATA_DIR", temp_dir("config"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(text.contains(var), "{var}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_requests_in_flight_finish_and_every_201_is_stored() {
    let dir = temp_dir("sigterm");
    let app = Landing::start(&dir, &[("NOTIFY_DELAY", "1h")]);
    let base = app.base.clone();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let base = base.clone();
            tokio::spawn(async move {
                let resp = client()
                    .post(format!("{base}/api/landing/proftest"))
                    .json(&lead(5000 + i))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == 201 => r
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|b| b["leadId"].as_str().map(str::to_owned)),
                    // Refused after shutdown began: the client knows it was not accepted.
                    _ => None,
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let data = app.data.clone();
    let status = app.terminate();
    assert_eq!(status.code(), Some(0));
    let mut accepted = vec![];
    for t in tasks {
        if let Some(id) = t.await.unwrap() {
            accepted.push(id);
        }
    }
    let db = rusqlite::Connection::open(data.join("landing.db")).unwrap();
    for id in &accepted {
        assert_eq!(
            count(
                &db,
                &format!("SELECT COUNT(*) FROM landing_leads WHERE id = '{id}'")
            ),
            1,
            "201 without a row"
        );
    }
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM landing_leads"),
        accepted.len() as i64,
        "a row nobody was told about"
    );
}

mod crm {
    use super::*;
    use landing_amocrm_fake::{DEFAULT_LONG_LIVED_TOKEN, DEFAULT_PIPELINE_ID, FakeAmo, FakeConfig};

    fn crm_env(fake: &FakeAmo) -> Vec<(String, String)> {
        vec![
            ("AMOCRM_BASE_URL".into(), fake.base_url()),
            (
                "AMOCRM_ACCESS_TOKEN".into(),
                DEFAULT_LONG_LIVED_TOKEN.into(),
            ),
            ("AMOCRM_PIPELINE_ID".into(), DEFAULT_PIPELINE_ID.to_string()),
            ("AMOCRM_STATUS_KASPI".into(), "10002".into()),
            ("AMOCRM_STATUS_HALYK".into(), "144".into()),
            ("AMOCRM_STATUS_ROBOKASSA".into(), "10002".into()),
            ("NOTIFY_DELAY".into(), "1h".into()),
        ]
    }

    fn start(dir: &Path, env: &[(String, String)]) -> Landing {
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Landing::start(dir, &pairs)
    }

    fn wait_synced(app: &Landing, n: i64) {
        let deadline = Instant::now() + PATIENCE;
        while count(
            &app.db(),
            "SELECT COUNT(*) FROM landing_leads WHERE crm_status = 'synced'",
        ) < n
        {
            assert!(Instant::now() < deadline, "leads not synced in time");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn both_forms_end_as_deals_merged_per_person_with_stage_tags_and_notes() {
        let fake = FakeAmo::start(FakeConfig::default());
        let dir = temp_dir("crm-e2e");
        let app = start(&dir, &crm_env(&fake));
        let (s, _) = post(&app.base, "/api/landing/proftest", &json!({"name": "Айгерим", "phone": "+77017000001", "email": "aigerim@mail.kz", "slug": "kenesary", "metadata": {"result": "Дизайн"}}), None).await;
        assert_eq!(s, 201);
        wait_synced(&app, 1);
        let (s, _) = post(
            &app.base,
            "/api/landing/submit",
            &json!({"name": "Айгерим", "phone": "8 701 700 00 01", "paymentMethod": "halyk"}),
            None,
        )
        .await;
        assert_eq!(s, 201);
        let (s, _) = post(
            &app.base,
            "/api/landing/submit",
            &json!({"name": "Ерлан", "email": "erlan@mail.kz", "paymentMethod": "kaspi"}),
            None,
        )
        .await;
        assert_eq!(s, 201);
        wait_synced(&app, 3);

        let deals = fake.leads();
        assert_eq!(deals.len(), 2, "one deal per person");
        let aigerim = deals
            .iter()
            .find(|d| d.tag_names().contains(&"proftest_kenesary".to_owned()))
            .unwrap();
        assert_eq!(
            (aigerim.pipeline_id, aigerim.status_id),
            (DEFAULT_PIPELINE_ID, 144),
            "moved to the halyk stage by the second lead"
        );
        assert!(aigerim.tag_names().contains(&"halyk".to_owned()));
        assert_eq!(fake.notes(aigerim.id).len(), 2);
        assert!(fake.notes(aigerim.id).iter().any(|n| {
            n.params["text"]
                .as_str()
                .unwrap_or_default()
                .contains("Результат теста: Дизайн")
        }));
        let erlan = deals.iter().find(|d| d.id != aigerim.id).unwrap();
        assert_eq!(erlan.status_id, 10002);
        assert_eq!(fake.contacts().len(), 2);
        let db = app.db();
        assert_eq!(
            count(
                &db,
                &format!(
                    "SELECT COUNT(*) FROM landing_leads WHERE amocrm_lead_id = {}",
                    aigerim.id
                )
            ),
            2
        );
        assert_eq!(
            count(
                &db,
                &format!(
                    "SELECT COUNT(*) FROM unified_lead_tracking WHERE amocrm_lead_id = {}",
                    aigerim.id
                )
            ),
            2
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn leads_pending_during_an_outage_are_synced_after_a_restart() {
        let fake = FakeAmo::start(FakeConfig::default());
        fake.fail_next(100_000, 503);
        let dir = temp_dir("crm-restart");
        let app = start(&dir, &crm_env(&fake));
        for i in 0..3 {
            let (s, _) = post(&app.base, "/api/landing/proftest", &lead(7000 + i), None).await;
            assert_eq!(s, 201);
        }
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(
            count(
                &app.db(),
                "SELECT COUNT(*) FROM landing_leads WHERE crm_status = 'pending'"
            ),
            3
        );
        app.kill9();
        fake.clear_faults();
        let app = start(&dir, &crm_env(&fake));
        wait_synced(&app, 3);
        assert_eq!(fake.leads().len(), 3);
    }

    #[test]
    fn without_credentials_leads_are_kept_and_marked_disabled() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = temp_dir("crm-disabled");
        let app = Landing::start(&dir, &[("NOTIFY_DELAY", "1h")]);
        let (s, _) = rt.block_on(post(&app.base, "/api/landing/proftest", &lead(8000), None));
        assert_eq!(s, 201);
        assert_eq!(
            count(
                &app.db(),
                "SELECT COUNT(*) FROM landing_leads WHERE crm_status = 'disabled'"
            ),
            1
        );
    }

    fn admin(dir: &Path, env: &[(String, String)], args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .env_clear()
            .env("LANDING_DATA_DIR", dir)
            .envs(env.iter().cloned())
            .args(args)
            .output()
            .unwrap()
    }

    #[test]
    fn amocrm_check_reports_the_mapping_warns_on_won_and_lost_and_refuses_unknown_stages() {
        let fake = FakeAmo::start(FakeConfig::default());
        let dir = temp_dir("crm-check");
        let mut env = crm_env(&fake);
        // The seed configuration: kaspi→142, halyk→143, robokassa→144.
        env.retain(|(k, _)| !k.starts_with("AMOCRM_STATUS_"));
        env.extend([
            ("AMOCRM_STATUS_KASPI".into(), "142".into()),
            ("AMOCRM_STATUS_HALYK".into(), "143".into()),
            ("AMOCRM_STATUS_ROBOKASSA".into(), "144".into()),
        ]);
        let out = admin(&dir, &env, &["amocrm", "check"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("kaspi") && text.contains("142 WARNING") && text.contains("won"),
            "{text}"
        );
        assert!(
            text.contains("143 WARNING") && text.contains("LOST"),
            "{text}"
        );
        assert!(text.contains("robokassa  → 144"), "{text}");

        env.push(("AMOCRM_STATUS_PROFTEST".into(), "555".into()));
        let out = admin(&dir, &env, &["amocrm", "check"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("AMOCRM_STATUS_PROFTEST=555"));
    }

    #[test]
    fn amocrm_auth_stores_the_first_token_pair_and_crm_resync_requeues() {
        let fake = FakeAmo::start(FakeConfig::default());
        let dir = temp_dir("crm-auth");
        let env: Vec<(String, String)> = vec![
            ("AMOCRM_BASE_URL".into(), fake.base_url()),
            (
                "AMOCRM_CLIENT_ID".into(),
                landing_amocrm_fake::DEFAULT_CLIENT_ID.into(),
            ),
            (
                "AMOCRM_CLIENT_SECRET".into(),
                landing_amocrm_fake::DEFAULT_CLIENT_SECRET.into(),
            ),
            (
                "AMOCRM_REDIRECT_URI".into(),
                landing_amocrm_fake::DEFAULT_REDIRECT_URI.into(),
            ),
            ("AMOCRM_PIPELINE_ID".into(), DEFAULT_PIPELINE_ID.to_string()),
        ];
        let code = fake.issue_auth_code();
        let out = admin(&dir, &env, &["amocrm", "auth", "--code", &code]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let db = rusqlite::Connection::open(dir.join("landing.db")).unwrap();
        assert_eq!(count(&db, "SELECT COUNT(*) FROM amocrm_tokens"), 1);
        // The stored pair works: check uses it.
        let out = admin(&dir, &env, &["amocrm", "check"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A used code cannot be used again.
        assert!(
            !admin(&dir, &env, &["amocrm", "auth", "--code", &code])
                .status
                .success()
        );

        let out = admin(&dir, &env, &["crm", "resync", "--failed"]);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("0 lead(s)"));
    }
}

/// `LANDING_TRANSPORT=aws`: the same worker sends through the real SNS/SES adapters (moto).
/// Needs a landing-local built with the `aws` feature (infra/check.sh runs it so).
#[cfg(feature = "aws")]
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
async fn aws_transport_sends_through_sns_and_ses() {
    let moto = landing_moto::endpoint();
    let domain = format!("{}.example.kz", landing_moto::unique("local", 20));
    landing_moto::ses_identity(&landing_moto::sdk_config().await, &domain).await;
    let dir = temp_dir("aws-transport");
    let from = format!("school@{domain}");
    let app = Landing::start(
        &dir,
        &[
            ("NOTIFY_DELAY", "1s"),
            ("LANDING_TRANSPORT", "aws"),
            ("EMAIL_FROM", &from),
            ("AWS_ENDPOINT_URL", &moto),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "eu-central-1"),
        ],
    );
    let phone = format!("+7701{:07}", std::process::id() % 10_000_000);
    let (s, _) = post(
        &app.base,
        "/api/landing/proftest",
        &json!({"name": "Аружан", "phone": phone, "email": format!("aruzhan@{domain}")}),
        None,
    )
    .await;
    assert_eq!(s, 201);
    let deadline = Instant::now() + PATIENCE;
    while count(
        &app.db(),
        "SELECT COUNT(*) FROM scheduled_notifications WHERE status = 'sent'",
    ) < 2
    {
        assert!(
            Instant::now() < deadline,
            "not sent through SNS/SES in time"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (sms, mail) = landing_moto::sent().await;
    assert!(sms.iter().any(|m| m["phone_number"] == phone.as_str()));
    assert!(mail.iter().any(|m| m["source"] == from.as_str()));
    assert!(outbox(&dir).is_empty(), "nothing went to the outbox");
}

/// Log lines are one flat JSON object each, their fields data (numbers, masked strings, arrays),
/// the correlation id at the top level — and no phone, email or name of a lead appears whole
/// anywhere in them (docs/architecture.md §7.8).
#[tokio::test(flavor = "multi_thread")]
async fn logs_are_flat_json_with_typed_fields_and_no_personal_data() {
    let dir = temp_dir("log-shape");
    let app = Landing::start(&dir, &[("NOTIFY_DELAY", "1s")]);
    let body =
        json!({"name": "Айгерим Сейтова", "phone": "+77015550123", "email": "aigerim.s@mail.kz"});
    let resp = client()
        .post(format!("{}/api/landing/proftest", app.base))
        .header("X-Correlation-Id", "corr-log-shape")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let (s, _) = post(
        &app.base,
        "/api/landing/submit",
        &json!({"name": "Ерлан", "phone": "12"}),
        None,
    )
    .await;
    assert_eq!(s, 422);
    wait_outbox(&dir, 2);
    let lines = app.log_lines();
    let find = |message: &str| {
        lines
            .iter()
            .find(|l| l["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} line in {lines:#?}"))
            .clone()
    };
    let committed = find("lead committed");
    assert_eq!(committed["correlation_id"], "corr-log-shape");
    assert_eq!(committed["form"], "proftest");
    assert_eq!(committed["phone"], "+7******0123");
    assert_eq!(committed["email"], "a***@mail.kz");
    assert!(committed["warnings"].is_u64(), "{committed}");
    let refused = find("validation failed");
    assert!(refused["fields"].is_array(), "{refused}");
    let answered = lines
        .iter()
        .find(|l| l["message"] == "answered" && l["correlation_id"] == "corr-log-shape")
        .expect("the 201 is logged");
    assert_eq!(answered["status"], 201);
    for l in &lines {
        assert!(l.get("span").is_none() && l.get("spans").is_none(), "{l}");
        assert!(l["timestamp"].is_string() && l["level"].is_string(), "{l}");
        let text = l.to_string();
        for secret in ["7015550123", "aigerim.s@", "Сейтова"] {
            assert!(!text.contains(secret), "{secret} in a log line: {text}");
        }
    }
}

/// Raw HTTP/1.1 over a socket, for what a well-behaved client never sends.
mod raw {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpStream};
    use std::time::{Duration, Instant};

    pub fn connect(base: &str) -> TcpStream {
        let s = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    }

    /// Everything the server sends until it closes the connection.
    pub fn read_all(s: &mut TcpStream) -> String {
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    pub fn request(path: &str, headers: &str, body: &str) -> String {
        format!("POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n{body}")
    }

    pub fn write(s: &mut TcpStream, text: &str) {
        s.write_all(text.as_bytes()).unwrap();
    }

    pub fn half_close(s: &TcpStream) {
        s.shutdown(Shutdown::Write).unwrap();
    }

    /// Seconds until the server closed a connection that sends a header byte a second.
    pub fn trickle_until_closed(base: &str, give_up: Duration) -> Option<Duration> {
        let mut s = connect(base);
        s.set_read_timeout(Some(Duration::from_millis(900)))
            .unwrap();
        let start = Instant::now();
        let head = b"POST /api/landing/proftest HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        let mut i = 0;
        while start.elapsed() < give_up {
            let byte = head.get(i).copied().unwrap_or(b'a');
            if s.write_all(&[byte]).is_err() {
                return Some(start.elapsed());
            }
            i += 1;
            let mut buf = [0u8; 64];
            match s.read(&mut buf) {
                Ok(0) => return Some(start.elapsed()),
                Ok(_) => return Some(start.elapsed()),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return Some(start.elapsed()),
            }
        }
        None
    }
}

/// A body whose chunked framing is broken is unreadable: a 400, not a 413 (only a body over
/// 64 KiB is too large), and nothing is stored.
#[test]
fn broken_chunked_framing_is_400_and_an_oversized_chunked_body_413() {
    let dir = temp_dir("chunked");
    let app = Landing::start(&dir, &[]);
    let mut s = raw::connect(&app.base);
    raw::write(
        &mut s,
        &raw::request(
            "/api/landing/proftest",
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
            "zz\r\n{}\r\n0\r\n\r\n",
        ),
    );
    let answer = raw::read_all(&mut s);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("malformed_body"), "{answer}");

    let big = "x".repeat(70 * 1024);
    let mut s = raw::connect(&app.base);
    raw::write(
        &mut s,
        &raw::request(
            "/api/landing/proftest",
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
            &format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len()),
        ),
    );
    let answer = raw::read_all(&mut s);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(count(&app.db(), "SELECT COUNT(*) FROM landing_leads"), 0);
}

/// A client that sends its headers a byte at a time is cut off after the header timeout (5 s)
/// instead of holding its connection for ever; a normal request right after still works.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let dir = temp_dir("slowloris");
    let app = Landing::start(&dir, &[]);
    let base = app.base.clone();
    let closed_after = tokio::task::spawn_blocking(move || {
        raw::trickle_until_closed(&base, Duration::from_secs(20))
    })
    .await
    .unwrap();
    let closed_after = closed_after.expect("the connection was still open after 20 s");
    assert!(closed_after >= Duration::from_secs(4), "{closed_after:?}");
    let (s, _) = post(&app.base, "/api/landing/proftest", &lead(1), None).await;
    assert_eq!(s, 201);
}

/// A client that half-closes its side after a complete request still gets its answer, and the
/// lead is logged as committed (it used to be committed silently, the answer lost).
#[test]
fn a_client_that_half_closes_after_its_request_gets_the_answer_and_the_lead_is_logged() {
    let dir = temp_dir("half-close");
    let app = Landing::start(&dir, &[]);
    let body = json!({"name": "Айгерим", "phone": "+77015550199"}).to_string();
    let mut s = raw::connect(&app.base);
    raw::write(
        &mut s,
        &raw::request(
            "/api/landing/proftest",
            &format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\nX-Correlation-Id: corr-half\r\n",
                body.len()
            ),
            &body,
        ),
    );
    raw::half_close(&s);
    let answer = raw::read_all(&mut s);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert_eq!(count(&app.db(), "SELECT COUNT(*) FROM landing_leads"), 1);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let lines = app.log_lines();
        let logged = |m: &str| {
            lines
                .iter()
                .any(|l| l["message"] == m && l["correlation_id"] == "corr-half")
        };
        if logged("lead committed") && logged("answered") {
            break;
        }
        assert!(Instant::now() < deadline, "not logged: {lines:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The SMS guard against the real binary: screening at intake, limits at send time.
mod guard {
    use super::*;

    const DEFAULT_LIMITS: [(&str, &str); 4] = [
        ("SMS_LIMIT_PER_PHONE", "3/24h"),
        ("SMS_LIMIT_PER_PREFIX", "20/1h"),
        ("SMS_LIMIT_PER_IP", "20/1h"),
        ("SMS_BUDGET", "300/1h"),
    ];

    fn with_defaults<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut env: Vec<(&str, &str)> = DEFAULT_LIMITS.to_vec();
        env.push(("NOTIFY_DELAY", "1s"));
        env.extend_from_slice(extra);
        env
    }

    fn sent_to(data: &Path, channel: &str) -> Vec<String> {
        outbox(data)
            .iter()
            .filter(|l| l["channel"] == channel)
            .map(|l| l["to"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until no row is pending or sending any more.
    fn wait_settled(app: &Landing) {
        let deadline = Instant::now() + PATIENCE;
        while count(
            &app.db(),
            "SELECT COUNT(*) FROM scheduled_notifications WHERE status IN ('pending', 'sending')",
        ) > 0
        {
            assert!(
                Instant::now() < deadline,
                "notifications not settled in time"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn suppressed(app: &Landing, reason: &str) -> i64 {
        count(
            &app.db(),
            &format!(
                "SELECT COUNT(*) FROM scheduled_notifications WHERE status = 'suppressed' AND suppressed_reason = '{reason}'"
            ),
        )
    }

    fn person(i: usize, phone: &str) -> Value {
        json!({"name": format!("Человек {i}"), "phone": phone, "email": format!("p{i}@mail.kz"), "slug": "kenesary"})
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_honeypot_lead_is_answered_alike_quarantined_and_sent_once_released() {
        let dir = temp_dir("guard-honeypot");
        let app = Landing::start(&dir, &with_defaults(&[]));
        let mut bot = person(1, "+77011110001");
        bot["website"] = json!("http://casino.example");
        let (status, bot_answer) = post(&app.base, "/api/landing/proftest", &bot, None).await;
        let (human_status, human_answer) = post(
            &app.base,
            "/api/landing/proftest",
            &person(2, "+77011110002"),
            None,
        )
        .await;
        assert_eq!((status, human_status), (201, 201), "a bot learns nothing");
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&bot_answer), keys(&human_answer));
        let bot_id = bot_answer["leadId"].as_str().unwrap().to_owned();

        wait_settled(&app);
        assert_eq!(
            sent_to(&dir, "sms"),
            ["+77011110002"],
            "only the person got an SMS"
        );
        assert_eq!(sent_to(&dir, "email"), ["p2@mail.kz"]);
        let db = app.db();
        let (crm, reason, ip_hash): (String, String, String) = db
            .query_row(
                "SELECT crm_status, quarantine_reason, client_ip_hash FROM landing_leads WHERE id = ?1",
                [&bot_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((crm.as_str(), reason.as_str()), ("quarantined", "honeypot"));
        assert_eq!(ip_hash.len(), 32, "a keyed hash is stored");
        assert!(!ip_hash.contains("127.0.0.1"));
        assert_eq!(suppressed(&app, "quarantined"), 2);
        assert!(
            !app.logs
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("127.0.0.1\"") && l.contains("lead")),
            "the client address is never logged"
        );

        let out = Command::new(BIN)
            .env_clear()
            .env("LANDING_DATA_DIR", &dir)
            .args(["lead", "release", &bot_id])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("2 notification(s) due now"));
        // The running worker finds them on its next look at storage (at most its idle poll).
        let deadline = Instant::now() + Duration::from_secs(60);
        while sent_to(&dir, "sms").len() < 2 {
            assert!(Instant::now() < deadline, "released lead not sent");
            std::thread::sleep(Duration::from_millis(200));
        }
        wait_settled(&app);
        assert_eq!(sent_to(&dir, "sms"), ["+77011110002", "+77011110001"]);
        assert_eq!(sent_to(&dir, "email").len(), 2);
        let again = Command::new(BIN)
            .env_clear()
            .env("LANDING_DATA_DIR", &dir)
            .args(["lead", "release", &bot_id])
            .output()
            .unwrap();
        assert!(!again.status.success(), "a second release is refused");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_foreign_number_gets_the_email_only() {
        let dir = temp_dir("guard-foreign");
        let app = Landing::start(&dir, &with_defaults(&[]));
        let (status, _) = post(
            &app.base,
            "/api/landing/proftest",
            &person(1, "+447911123456"),
            None,
        )
        .await;
        assert_eq!(status, 201);
        wait_settled(&app);
        assert!(sent_to(&dir, "sms").is_empty());
        assert_eq!(sent_to(&dir, "email"), ["p1@mail.kz"]);
        assert_eq!(suppressed(&app, "country_not_allowed"), 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn five_leads_of_one_phone_get_three_sms_and_five_emails() {
        let dir = temp_dir("guard-phone");
        let app = Landing::start(&dir, &with_defaults(&[]));
        for i in 0..5 {
            let (status, _) = post(
                &app.base,
                "/api/landing/proftest",
                &person(i, "+77012345678"),
                None,
            )
            .await;
            assert_eq!(status, 201);
        }
        wait_settled(&app);
        assert_eq!(sent_to(&dir, "sms").len(), 3);
        assert_eq!(
            sent_to(&dir, "email").len(),
            5,
            "the email is never withheld"
        );
        assert_eq!(suppressed(&app, "phone_limit"), 2);
        assert_eq!(
            count(&app.db(), "SELECT COUNT(*) FROM landing_leads"),
            5,
            "every lead stored"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn twenty_five_numbers_of_one_prefix_in_an_hour_get_twenty_sms() {
        let dir = temp_dir("guard-prefix");
        let app = Landing::start(&dir, &with_defaults(&[("SMS_LIMIT_PER_IP", "off")]));
        for i in 0..25 {
            let phone = format!("+7701555{i:04}");
            let (status, _) =
                post(&app.base, "/api/landing/proftest", &person(i, &phone), None).await;
            assert_eq!(status, 201);
        }
        wait_settled(&app);
        assert_eq!(sent_to(&dir, "sms").len(), 20);
        assert_eq!(sent_to(&dir, "email").len(), 25);
        assert_eq!(suppressed(&app, "prefix_limit"), 5);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn one_address_behind_a_trusted_proxy_gets_twenty_sms() {
        let dir = temp_dir("guard-ip");
        let app = Landing::start(
            &dir,
            &with_defaults(&[("LANDING_TRUSTED_PROXIES", "127.0.0.1/32")]),
        );
        let via = |xff: &'static str, body: Value| {
            let base = app.base.clone();
            async move {
                client()
                    .post(format!("{base}/api/landing/proftest"))
                    .header("X-Forwarded-For", xff)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        for i in 0..25 {
            // Distinct prefixes, so only the address is shared.
            let phone = format!("+770{:04}0000", 1000 + i);
            assert_eq!(via("203.0.113.7", person(i, &phone)).await, 201);
        }
        assert_eq!(via("198.51.100.9", person(99, "+77479990000")).await, 201);
        wait_settled(&app);
        let sms = sent_to(&dir, "sms");
        assert_eq!(sms.len(), 21, "20 for the shared address, 1 for the other");
        assert!(sms.contains(&"+77479990000".to_owned()));
        assert_eq!(sent_to(&dir, "email").len(), 26);
        assert_eq!(suppressed(&app, "ip_limit"), 5);
        assert_eq!(
            count(
                &app.db(),
                "SELECT COUNT(DISTINCT client_ip_hash) FROM landing_leads"
            ),
            2,
            "the proxy's own address is not the client's"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn past_the_budget_sms_are_held_then_sent_when_the_window_moves_on() {
        const WINDOW_MS: u128 = 15_000;
        let dir = temp_dir("guard-budget");
        let app = Landing::start(
            &dir,
            &with_defaults(&[("SMS_BUDGET", "5/15s"), ("SMS_LIMIT_PER_IP", "off")]),
        );
        // Windows are aligned to the epoch: start right after a boundary, so that the first
        // eight sends all fall in one window.
        let now_ms = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        };
        let into_window = now_ms() % WINDOW_MS;
        if into_window > 2_000 {
            std::thread::sleep(Duration::from_millis(
                (WINDOW_MS - into_window) as u64 + 100,
            ));
        }
        let window_end = (now_ms() / WINDOW_MS + 1) * WINDOW_MS;
        let phones: Vec<String> = (0..8).map(|i| format!("+770{:04}1111", 2000 + i)).collect();
        for (i, phone) in phones.iter().enumerate() {
            assert_eq!(
                post(&app.base, "/api/landing/proftest", &person(i, phone), None)
                    .await
                    .0,
                201
            );
        }
        let deadline = Instant::now() + PATIENCE;
        while sent_to(&dir, "email").len() < 8 {
            assert!(Instant::now() < deadline, "emails not sent");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
        assert!(now_ms() < window_end, "the test itself ran past the window");
        assert_eq!(sent_to(&dir, "sms").len(), 5, "the budget's worth, no more");
        assert_eq!(
            count(
                &app.db(),
                "SELECT COUNT(*) FROM scheduled_notifications WHERE status = 'pending' AND hold_reason = 'budget'"
            ),
            3,
            "held, not dropped"
        );
        let trips = app
            .log_lines()
            .iter()
            .filter(|l| l["event"] == "sms_budget_tripped")
            .count();
        assert_eq!(trips, 1, "one warning per window");

        wait_settled(&app);
        assert!(now_ms() >= window_end, "sent only once the window moved on");
        let mut sms = sent_to(&dir, "sms");
        assert_eq!(sms.len(), 8, "every held SMS went out, once");
        sms.sort();
        assert_eq!(sms, phones);
        assert_eq!(
            suppressed(&app, "quarantined")
                + count(
                    &app.db(),
                    "SELECT COUNT(*) FROM scheduled_notifications WHERE status = 'failed'"
                ),
            0
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_foreign_origin_is_refused_with_403_and_stores_nothing() {
        let dir = temp_dir("guard-origin");
        let app = Landing::start(
            &dir,
            &with_defaults(&[("CORS_ALLOWED_ORIGINS", "https://school.kz")]),
        );
        let send = |origin: Option<&'static str>, form: bool| {
            let base = app.base.clone();
            async move {
                let mut req = client().post(format!("{base}/api/landing/proftest"));
                if let Some(o) = origin {
                    req = req.header("Origin", o);
                }
                req = if form {
                    req.header("Content-Type", "application/x-www-form-urlencoded")
                        .body("name=Bot&phone=%2B77011234567")
                } else {
                    req.json(&json!({"name": "Айя", "phone": "+77011234567"}))
                };
                let resp = req.send().await.unwrap();
                (
                    resp.status().as_u16(),
                    resp.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
        };
        let (status, body) = send(Some("https://evil.example"), true).await;
        assert_eq!(status, 403);
        assert_eq!(body["error"], "origin_not_allowed");
        assert_eq!(send(Some("https://evil.example"), false).await.0, 403);
        assert_eq!(
            count(&app.db(), "SELECT COUNT(*) FROM landing_leads"),
            0,
            "nothing stored"
        );
        assert_eq!(send(Some("https://school.kz"), false).await.0, 201);
        assert_eq!(
            send(None, false).await.0,
            201,
            "no Origin: not a browser, not refused"
        );
        let own = app.base.clone();
        let own: &'static str = Box::leak(own.into_boxed_str());
        assert_eq!(send(Some(own), true).await.0, 201, "the pages' own origin");
    }
}

/// The operator verbs against the real binary and its data dir.
mod ops {
    use super::*;

    fn verb(dir: &Path, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .env_clear()
            .env("LANDING_DATA_DIR", dir)
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(out: &std::process::Output) -> String {
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout.clone()).unwrap()
    }

    fn settle(app: &Landing) {
        let deadline = Instant::now() + PATIENCE;
        while count(
            &app.db(),
            "SELECT COUNT(*) FROM scheduled_notifications WHERE status IN ('pending', 'sending')",
        ) > 0
        {
            assert!(Instant::now() < deadline, "notifications not settled");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A known mix: three campaigns, both forms, a bot in the honeypot, a foreign number, a
    /// number past its limit. The JSON report must say exactly what SQL counts in the table.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_json_report_counts_exactly_what_the_tables_hold() {
        let dir = temp_dir("ops-report");
        let app = Landing::start(
            &dir,
            &[("NOTIFY_DELAY", "1s"), ("SMS_LIMIT_PER_PHONE", "1/24h")],
        );
        let mut n = 0;
        let mut send = |path: &'static str, body: Value| {
            n += 1;
            let base = app.base.clone();
            async move { post(&base, path, &body, None).await.0 }
        };
        for (i, slug) in ["kenesary", "kenesary", "arystan", "kenesary"]
            .iter()
            .enumerate()
        {
            let phone = format!("+7701444{i:04}");
            let body = json!({"name": "Ая", "phone": phone, "email": format!("r{i}@mail.kz"), "slug": slug});
            assert_eq!(send("/api/landing/proftest", body).await, 201);
        }
        for (i, pm) in ["kaspi", "halyk"].iter().enumerate() {
            let body = json!({"name": "Бек", "phone": "+77015550000", "email": format!("e{i}@mail.kz"), "paymentMethod": pm});
            assert_eq!(send("/api/landing/submit", body).await, 201);
        }
        let bot =
            json!({"name": "Bot", "phone": "+77016660000", "website": "x", "slug": "arystan"});
        assert_eq!(send("/api/landing/proftest", bot).await, 201);
        let foreign = json!({"name": "Tom", "phone": "+447911123456", "email": "t@mail.kz", "slug": "arystan"});
        assert_eq!(send("/api/landing/proftest", foreign).await, 201);
        settle(&app);
        // What SES would report of two sent emails (the outbox reports nothing): one delivered,
        // one bounced.
        rusqlite::Connection::open(app.data.join("landing.db"))
            .unwrap()
            .execute_batch(
                "UPDATE scheduled_notifications SET delivered_at = sent_at
                  WHERE id = (SELECT MIN(id) FROM scheduled_notifications WHERE channel = 'email' AND status = 'sent');
                 UPDATE scheduled_notifications SET feedback = 'bounced', feedback_detail = 'Permanent/General: 550'
                  WHERE id = (SELECT MAX(id) FROM scheduled_notifications WHERE channel = 'email' AND status = 'sent');",
            )
            .unwrap();

        let report: Value = serde_json::from_str(&ok(&verb(
            &dir,
            &["report", "--since", "1d", "--format", "json"],
        )))
        .unwrap();
        let rows = report.as_array().unwrap();
        let db = app.db();
        let campaigns: Vec<String> = db
            .prepare("SELECT DISTINCT source_campaign FROM landing_leads ORDER BY 1")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| r["sourceCampaign"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>(),
            campaigns
        );
        for row in rows {
            let c = row["sourceCampaign"].as_str().unwrap();
            let q = |sql: &str| count(&db, &sql.replace("$C", &format!("'{c}'")));
            assert_eq!(
                row["leads"],
                q("SELECT COUNT(*) FROM landing_leads WHERE source_campaign = $C"),
                "{c}"
            );
            assert_eq!(
                row["proftest"],
                q(
                    "SELECT COUNT(*) FROM landing_leads WHERE source_campaign = $C AND form = 'proftest'"
                ),
                "{c}"
            );
            for channel in ["sms", "email"] {
                for (key, status) in [
                    ("sent", "sent"),
                    ("failed", "failed"),
                    ("suppressed", "suppressed"),
                ] {
                    let want = q(&format!(
                        "SELECT COUNT(*) FROM scheduled_notifications WHERE channel = '{channel}' AND status = '{status}' AND source_campaign = $C"
                    ));
                    assert_eq!(row[channel][key], want, "{c} {channel} {key}");
                }
                assert_eq!(row[channel]["pending"], 0, "{c}: everything settled");
            }
            for (key, cond) in [
                ("delivered", "delivered_at IS NOT NULL"),
                ("bounced", "feedback IN ('bounced', 'soft_bounced')"),
                ("complained", "feedback = 'complained'"),
            ] {
                let want = q(&format!(
                    "SELECT COUNT(*) FROM scheduled_notifications WHERE channel = 'email' AND {cond} AND source_campaign = $C"
                ));
                assert_eq!(row["email"][key], want, "{c} email {key}");
            }
            for status in ["pending", "synced", "failed", "disabled", "quarantined"] {
                let want = q(&format!(
                    "SELECT COUNT(*) FROM landing_leads WHERE crm_status = '{status}' AND source_campaign = $C"
                ));
                assert_eq!(row["crm"][status], want, "{c} crm {status}");
            }
        }
        let by = |c: &str| rows.iter().find(|r| r["sourceCampaign"] == c).unwrap();
        let sum =
            |key: &str| -> u64 { rows.iter().map(|r| r["email"][key].as_u64().unwrap()).sum() };
        assert_eq!((sum("delivered"), sum("bounced")), (1, 1));
        // What the mix was built to show, stated outright.
        assert_eq!(by("proftest_kenesary")["leads"], 3);
        assert_eq!(by("proftest_arystan")["crm"]["quarantined"], 1);
        assert_eq!(
            by("proftest_arystan")["sms"]["suppressed"],
            2,
            "the bot's and the foreign number's"
        );
        assert_eq!(
            by("expresscourse")["sms"]["suppressed"],
            1,
            "the second SMS to one number"
        );
        assert_eq!(
            by("expresscourse")["email"]["sent"],
            2,
            "its email still went"
        );
        assert!(
            by("proftest_kenesary")["medianMinutesToSms"]
                .as_f64()
                .unwrap()
                < 1.0
        );

        let table = ok(&verb(&dir, &["report", "--since", "1d"]));
        assert!(
            table.contains("proftest_kenesary") && table.contains("all"),
            "{table}"
        );
        let by_day: Value = serde_json::from_str(&ok(&verb(
            &dir,
            &["report", "--since", "1d", "--by", "day", "--format", "json"],
        )))
        .unwrap();
        assert!(
            by_day
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["day"].is_string())
        );
        let csv = ok(&verb(&dir, &["report", "--format", "csv"]));
        assert!(csv.starts_with('\u{feff}'), "a BOM for Excel");
        let html_file = dir.join("report.html");
        ok(&verb(
            &dir,
            &[
                "report",
                "--format",
                "html",
                "--out",
                html_file.to_str().unwrap(),
            ],
        ));
        let html = std::fs::read_to_string(&html_file).unwrap();
        assert!(html.contains("<svg") && html.contains("proftest_kenesary"));
        assert!(
            !html.contains("<script") && !html.contains("src=\"http"),
            "self-contained"
        );
        let export = ok(&verb(&dir, &["export", "--since", "1d"]));
        assert!(
            export.starts_with("\u{feff}lead_id,created_at,form,source_campaign,name,phone,email")
        );
        assert_eq!(export.lines().count(), 1 + n, "one line per lead");
        assert!(export.contains("Бек"), "Cyrillic as it is");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn lead_show_tells_a_leads_story_and_notify_resend_sends_a_failed_one_again() {
        let dir = temp_dir("ops-show");
        let app = Landing::start(&dir, &[("NOTIFY_DELAY", "1s")]);
        let body = json!({"name": "Айгерим", "phone": "8 701 777 00 11", "email": "aigerim@mail.kz", "slug": "kenesary", "utm_source": "instagram"});
        let (status, answer) = post(&app.base, "/api/landing/proftest", &body, None).await;
        assert_eq!(status, 201);
        let id = answer["leadId"].as_str().unwrap().to_owned();
        settle(&app);
        let show = ok(&verb(&dir, &["lead", "show", &id]));
        for needle in [
            id.as_str(),
            "proftest_kenesary",
            "intake: Айгерим",
            "utm_source=instagram",
            "sms to +77017770011: sent after 1 attempt(s), provider id outbox-",
            "email to aigerim@mail.kz: sent",
            "crm: disabled",
        ] {
            assert!(show.contains(needle), "{needle:?} not in\n{show}");
        }
        let by_phone = ok(&verb(
            &dir,
            &[
                "lead",
                "show",
                "--phone",
                "+7 701 777 00 11",
                "--format",
                "json",
            ],
        ));
        let v: Value = serde_json::from_str(&by_phone).unwrap();
        assert_eq!(v[0]["leadId"], id.as_str());
        assert_eq!(v[0]["notifications"].as_array().unwrap().len(), 2);
        assert!(
            !verb(&dir, &["lead", "show", "--email", "nobody@mail.kz"])
                .status
                .success()
        );

        // The SMS failed for good (a rejected number, say): resend makes it due again.
        app.terminate();
        {
            let db = rusqlite::Connection::open(dir.join("landing.db")).unwrap();
            db.execute(
                "UPDATE scheduled_notifications SET status = 'failed', last_error = 'permanent: rejected', failed_at = sent_at WHERE channel = 'sms'",
                [],
            )
            .unwrap();
        }
        let out = ok(&verb(&dir, &["notify", "resend", &id]));
        assert!(
            out.starts_with("1 failed notification(s) due again now"),
            "{out}"
        );
        assert!(ok(&verb(&dir, &["notify", "resend", "--failed"])).starts_with("0 "));
        let app = Landing::start(&dir, &[("NOTIFY_DELAY", "1s")]);
        settle(&app);
        let sms = outbox(&dir)
            .into_iter()
            .filter(|l| l["channel"] == "sms")
            .count();
        assert_eq!(sms, 2, "sent again, once");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_admin_report_exists_only_with_a_token_and_only_for_its_holder() {
        let dir = temp_dir("ops-admin");
        let app = Landing::start(&dir, &[]);
        let get = |base: String, auth: Option<&'static str>| async move {
            let mut req = client().get(format!("{base}/admin/report?since=7d"));
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let www = resp
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            let ct = resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, www, ct, resp.text().await.unwrap())
        };
        assert_eq!(
            get(app.base.clone(), Some("Bearer anything")).await.0,
            404,
            "no token, no route"
        );
        app.terminate();
        let token = "admin-token-0123456789";
        let app = Landing::start(&dir, &[("LANDING_ADMIN_TOKEN", token)]);
        for auth in [
            None,
            Some("Bearer wrong-token-0123456789"),
            Some("admin-token-0123456789"),
        ] {
            let (status, www, _, _) = get(app.base.clone(), auth).await;
            assert_eq!(status, 401, "{auth:?}");
            assert_eq!(www.as_deref(), Some("Bearer realm=\"landing-admin\""));
        }
        let (status, _, ct, body) =
            get(app.base.clone(), Some("Bearer admin-token-0123456789")).await;
        assert_eq!(status, 200);
        assert_eq!(ct.as_deref(), Some("text/html; charset=utf-8"));
        assert!(body.contains("Лиды по кампаниям"));
        let bad = client()
            .get(format!("{}/admin/report?since=soon", app.base))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status().as_u16(), 400);
    }
}

/// One follow-up per person and the SMS parts, on the real binary.
mod follow_ups {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_proftest_then_a_purchase_from_one_person_get_one_sms_and_one_email_with_the_link() {
        let dir = temp_dir("follow-ups-supersede");
        let app = Landing::start(
            &dir,
            &[
                ("NOTIFY_DELAY", "3s"),
                ("NOTIFY_SUPERSEDE", "on"),
                ("PAYMENT_LINK_KASPI", "https://pay.kaspi.kz/pay/abc123"),
            ],
        );
        let who = json!({"name": "Айгерим", "phone": "+77011119901", "email": "one@mail.kz"});
        let (s1, test) = post(&app.base, "/api/landing/proftest", &who, None).await;
        let mut purchase = who.clone();
        purchase["paymentMethod"] = json!("kaspi");
        let (s2, course) = post(&app.base, "/api/landing/submit", &purchase, None).await;
        assert_eq!((s1, s2), (201, 201));

        let lines = wait_outbox(&dir, 2);
        // Give a wrongly sent third or fourth line the time to appear.
        std::thread::sleep(Duration::from_secs(4));
        let lines = if outbox(&dir).len() > lines.len() {
            outbox(&dir)
        } else {
            lines
        };
        assert_eq!(lines.len(), 2, "{lines:?}");
        let course_id = course["leadId"].as_str().unwrap();
        assert!(lines.iter().all(|l| l["leadId"] == course_id), "{lines:?}");
        let sms = lines.iter().find(|l| l["channel"] == "sms").unwrap();
        assert!(
            sms["body"]
                .as_str()
                .unwrap()
                .contains("https://pay.kaspi.kz/pay/abc123")
        );
        assert_eq!(sms["segments"], 1, "the default text fits one part");
        let superseded = count(
            &app.db(),
            &format!(
                "SELECT COUNT(*) FROM scheduled_notifications WHERE lead_id = '{}' AND status = 'suppressed' AND suppressed_reason = 'superseded'",
                test["leadId"].as_str().unwrap()
            ),
        );
        assert_eq!(superseded, 2);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_unsubscribe_link_of_an_email_stops_the_next_email_but_not_the_sms() {
        let dir = temp_dir("follow-ups-unsubscribe");
        let app = Landing::start(&dir, &[("NOTIFY_DELAY", "2s")]);
        let who = json!({"name": "Айгерим", "phone": "+77011119902", "email": "Unsub@Mail.kz"});
        let (status, first) = post(&app.base, "/api/landing/proftest", &who, None).await;
        assert_eq!(status, 201);
        let lines = wait_outbox(&dir, 2);
        let email = lines.iter().find(|l| l["channel"] == "email").unwrap();
        let link = email["headers"]["List-Unsubscribe"]
            .as_str()
            .unwrap()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned();
        assert!(
            link.starts_with(&format!("{}/api/landing/unsubscribe?token=", app.base)),
            "{link}"
        );
        assert_eq!(
            email["headers"]["List-Unsubscribe-Post"],
            "List-Unsubscribe=One-Click"
        );
        assert!(
            email["text"].as_str().unwrap().ends_with(&link),
            "the text part's footer"
        );
        assert!(
            email["html"]
                .as_str()
                .unwrap()
                .contains(&format!("href=\"{link}\"")),
            "the HTML part's footer"
        );
        assert!(
            !link.contains("mail.kz"),
            "the link names the lead, not the address"
        );

        let http = reqwest::Client::new();
        let page = http.get(&link).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(
            html.contains("<button type=\"submit\">Отписаться</button>"),
            "{html}"
        );
        assert_eq!(
            count(&app.db(), "SELECT COUNT(*) FROM suppressed_addresses"),
            0,
            "a GET changes nothing"
        );
        // What a mail client sends for a one-click unsubscribe (RFC 8058).
        let done = http
            .post(&link)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 200);
        assert!(done.text().await.unwrap().contains("Вы отписаны"));
        assert_eq!(
            count(
                &app.db(),
                "SELECT COUNT(*) FROM suppressed_addresses WHERE email = 'unsub@mail.kz' AND reason = 'unsubscribed'"
            ),
            1
        );
        let forged = http.post(format!("{link}0")).send().await.unwrap();
        assert_eq!(forged.status(), 400);

        // The same person's next form: the SMS goes, the email does not.
        let mut again = who.clone();
        again["email"] = json!("unsub@mail.kz");
        let (status, second) = post(&app.base, "/api/landing/proftest", &again, None).await;
        assert_eq!(status, 201);
        let second_id = second["leadId"].as_str().unwrap().to_owned();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let settled = count(
                &app.db(),
                &format!(
                    "SELECT COUNT(*) FROM scheduled_notifications WHERE lead_id = '{second_id}' AND status IN ('sent', 'suppressed')"
                ),
            );
            if settled == 2 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the second lead's rows did not settle"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(
            count(
                &app.db(),
                &format!(
                    "SELECT COUNT(*) FROM scheduled_notifications WHERE lead_id = '{second_id}' AND channel = 'email' AND status = 'suppressed' AND suppressed_reason = 'address_suppressed'"
                )
            ),
            1
        );
        let lines = outbox(&dir);
        assert_eq!(lines.len(), 3, "one more line, the SMS: {lines:?}");
        assert_eq!(lines[2]["channel"], "sms");
        assert_eq!(lines[2]["leadId"], second_id.as_str());
        assert_ne!(first["leadId"], second["leadId"]);
    }

    #[test]
    fn an_sms_template_longer_than_the_limit_stops_the_start_with_its_length() {
        let dir = temp_dir("follow-ups-long-sms");
        let file = dir.join("texts.json");
        let long = "{{ name }}, ".to_owned() + &"очень длинный текст ".repeat(8);
        std::fs::write(&file, json!({"proftest": {"sms": long}}).to_string()).unwrap();
        let out = Command::new(BIN)
            .env_clear()
            .env("LANDING_ADDR", "127.0.0.1:0")
            .env("LANDING_DATA_DIR", &dir)
            .env("NOTIFY_TEMPLATES", &file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("NOTIFY_TEMPLATES"), "{err}");
        assert!(err.contains("renders 168 characters, 3 SMS parts"), "{err}");
    }
}
