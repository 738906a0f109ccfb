//! `landing-crm-bench [LEADS]`: commits a burst of leads (60 % new people, 30 % returning people
//! with an open deal, 10 % pairs of one person submitted at the same moment) and lets the real
//! CRM worker sync them through the real client against the fake AmoCRM, which enforces
//! 7 requests/s. Prints calls per lead, throughput as a share of the limit, 429s, duplicated
//! deals and leads left unsynced. Exit code: non-zero only on correctness failures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use landing_amocrm::{AmoSettings, Credentials, RetryConfig};
use landing_amocrm_fake::{
    DEFAULT_FIRST_STATUS, DEFAULT_LONG_LIVED_TOKEN, DEFAULT_PIPELINE_ID, DEFAULT_SECOND_STATUS,
    FakeAmo, FakeConfig,
};
use landing_core::crm::{CrmSettings, CrmSync, CrmWorker, CrmWorkerConfig};
use landing_core::domain::{CrmStatus, Form};
use landing_core::intake::{IntakeConfig, IntakeService};
use landing_core::notify::LocalScheduler;
use landing_core::ports::{CrmStateStore, SystemClock};
use serde_json::{Value, json};

const LIMIT: f64 = 7.0;

/// Commits a burst of leads (60 % new people, 30 % returning with an open deal, 10 % pairs of one
/// person at the same moment) and lets the real worker sync them through the real client
/// against the fake AmoCRM at 7 requests/s; prints calls per lead, throughput, 429s, duplicated
/// deals and unsynced leads.
#[derive(clap::Parser)]
#[command(name = "landing-crm-bench", version)]
struct Args {
    /// How many leads
    #[arg(default_value_t = 1000, value_parser = clap::value_parser!(u64).range(20..))]
    leads: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total = usize::try_from(<Args as clap::Parser>::parse().leads)?;
    let (returning, dup_pairs) = (total * 3 / 10, total / 20);
    let new = total - returning - 2 * dup_pairs;

    let fake = FakeAmo::start(FakeConfig::default());
    let dir = std::env::temp_dir().join(format!("crm-bench-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let store = Arc::new(landing_sqlite::open(&dir.join("landing.db"))?);
    let crm = CrmSettings {
        pipeline_id: DEFAULT_PIPELINE_ID,
        stage_kaspi: Some(DEFAULT_SECOND_STATUS),
        stage_halyk: Some(DEFAULT_SECOND_STATUS),
        stage_robokassa: Some(DEFAULT_SECOND_STATUS),
        stage_proftest: None,
    };
    let settings = AmoSettings {
        base_url: fake.base_url(),
        credentials: Credentials::LongLived(secrecy::SecretString::from(DEFAULT_LONG_LIVED_TOKEN)),
        requests_per_second: 7,
        crm: crm.clone(),
    };
    let client = settings
        .client(store.clone(), RetryConfig::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let intake = IntakeService::new(
        store.clone(),
        Arc::new(LocalScheduler::new()),
        Arc::new(SystemClock),
        IntakeConfig {
            notify_delay: Duration::from_secs(3600),
            windows: landing_core::notify::SendWindows::always(),
            idempotency_ttl: Duration::from_secs(3600),
            initial_crm_status: CrmStatus::Pending,
            payment_links: Default::default(),
            screening: Default::default(),
            origins: Default::default(),
        },
    );

    // Returning people: a contact with an open deal in AmoCRM, phone stored as managers type it.
    for i in 0..returning {
        let contact = fake.add_contact(
            &format!("Клиент {i}"),
            &[&format!(
                "8 702 {:03} {:02} {:02}",
                i / 10_000,
                (i / 100) % 100,
                i % 100
            )],
            &[],
            &[],
        );
        fake.add_lead(
            &format!("Сделка {i}"),
            DEFAULT_PIPELINE_ID,
            DEFAULT_FIRST_STATUS,
            &[contact],
            &[],
            None,
        );
    }
    let seeded_deals = fake.leads().len();
    fake.reset_stats();

    let mut bodies: Vec<(Form, Value)> = Vec::with_capacity(total);
    for i in 0..new {
        bodies.push((Form::ProfTest, json!({"name": format!("Новый {i}"), "phone": format!("+7701{i:07}"), "email": format!("new{i}@mail.kz"), "slug": "kenesary"})));
    }
    for i in 0..returning {
        bodies.push((Form::ExpressCourse, json!({"name": format!("Клиент {i}"), "phone": format!("+7702{i:07}"), "paymentMethod": "kaspi"})));
    }
    for i in 0..dup_pairs {
        let person = json!({"name": format!("Дубль {i}"), "phone": format!("+7705{i:07}"), "email": format!("dup{i}@mail.kz")});
        bodies.push((Form::ProfTest, person.clone()));
        let mut second = person;
        second["paymentMethod"] = json!("halyk");
        bodies.push((Form::ExpressCourse, second));
    }
    for (form, body) in &bodies {
        let Value::Object(fields) = body else {
            bail!("not an object")
        };
        intake
            .submit(*form, fields, None, "crm-bench", None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }

    let sync = Arc::new(CrmSync::new(
        store.clone(),
        store.clone(),
        Arc::new(client),
        crm,
        Arc::new(SystemClock),
        8,
    ));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = CrmWorker::new(
        sync,
        store.clone(),
        Arc::new(tokio::sync::Notify::new()),
        CrmWorkerConfig {
            idle_poll: Duration::from_millis(200),
            ..CrmWorkerConfig::default()
        },
    );
    let started = Instant::now();
    let handle = tokio::spawn(worker.run(stopped));
    let deadline = started + Duration::from_secs(1800);
    loop {
        let pending = store.pending_crm(1).await?.len();
        if pending == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let _ = handle.await;

    let stats = fake.stats();
    let db = landing_sqlite_count(&dir)?;
    let expected_deals = seeded_deals + new + dup_pairs;
    let deals = fake.leads().len();
    let calls_per_lead = stats.api_calls as f64 / total as f64;
    let share = stats.api_calls as f64 / elapsed / LIMIT;
    println!(
        "leads: {total} ({new} new people, {returning} returning with an open deal, {dup_pairs} same-moment pairs)"
    );
    println!(
        "synced in {elapsed:.1} s; AmoCRM API calls: {} ({:?})",
        stats.api_calls, stats.per_endpoint
    );
    println!(
        "calls per lead:         {calls_per_lead:.2}   (target <= 3)        {}",
        verdict(calls_per_lead <= 3.0)
    );
    println!(
        "share of 7 req/s:       {:.1} %  (target >= 85 %)      {}",
        share * 100.0,
        verdict(share >= 0.85)
    );
    println!(
        "429 answers:            {}      (target 0)",
        stats.served_429
    );
    println!(
        "deals duplicated:       {}      (must be 0)",
        deals.saturating_sub(expected_deals)
    );
    println!(
        "leads not synced:       {}      (must be 0; failed: {})",
        db.not_synced, db.failed
    );
    let _ = std::fs::remove_dir_all(&dir);
    if stats.served_429 > 0 || deals != expected_deals || db.not_synced > 0 {
        bail!("correctness target missed");
    }
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

struct Counts {
    not_synced: i64,
    failed: i64,
}

fn landing_sqlite_count(dir: &std::path::Path) -> anyhow::Result<Counts> {
    let db = rusqlite::Connection::open(dir.join("landing.db"))?;
    let (not_synced, failed) = db.query_row(
        "SELECT COALESCE(SUM(crm_status <> 'synced'), 0), COALESCE(SUM(crm_status = 'failed'), 0) FROM landing_leads",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(Counts { not_synced, failed })
}
