//! `landing-pump-bench`: an SMS-pumping flood against landing-local, to show what the SMS guard
//! lets through (docs/architecture.md §14; README "Pumping benchmark").
//!
//! 10,000 bot submissions (honeypot filled and not; one address and a few; one Kazakh block of
//! numbers and random foreign ranges) mixed with 500 real leads (Kazakh numbers, distinct
//! people, a few behind one mobile-carrier address) go through one landing-local with the
//! guard's defaults and the AmoCRM fake. The run ends when every notification and every CRM sync
//! has settled; it then reads the outbox and the database and prints what bots and people got.
//!
//! The exit code reflects correctness only (a lost lead, a real lead without its SMS, email or
//! deal, a duplicate SMS), never the bot share, so the benchmark cannot flake CI. See `--help`.

#![allow(clippy::print_stdout)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use landing_amocrm_fake::{DEFAULT_LONG_LIVED_TOKEN, DEFAULT_PIPELINE_ID, FakeAmo, FakeConfig};
use landing_bench::server::{Scratch, Server};
use serde_json::{Value, json};

/// An SMS-pumping flood against landing-local: what bots get, what real leads get.
#[derive(Debug, Parser)]
#[command(name = "landing-pump-bench", version)]
struct Args {
    /// landing-local binary (default: the workspace's target/release, else target/debug)
    #[arg(long, value_name = "PATH")]
    bin: Option<PathBuf>,
    /// Bot submissions
    #[arg(long, default_value_t = 10_000)]
    bots: usize,
    /// Real leads
    #[arg(long, default_value_t = 500)]
    real: usize,
    /// Concurrent clients
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// SMS_BUDGET for the run. The default 300/1h is sized for a real hour; this run puts a
    /// campaign's 500 real leads into a few minutes, so it raises the budget unless told not to.
    #[arg(long, default_value = "1000/1h")]
    budget: String,
    /// Price of one SMS part to Kazakhstan in USD, for the cost lines (an assumption: check
    /// the current AWS End User Messaging SMS price list)
    #[arg(long, default_value_t = 0.09)]
    price_usd: f64,
    /// Give up waiting for notifications and CRM syncs to settle after this long
    #[arg(long, default_value = "20m", value_parser = humantime::parse_duration)]
    settle_timeout: Duration,
    /// Keep the temp dir (database, outbox, server log)
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    /// Fills every field, the hidden one too.
    BotHoneypot,
    /// Random foreign premium and mobile ranges, from one address.
    BotForeign,
    /// One Kazakh block of 10,000 numbers, from a few addresses.
    BotOnePrefix,
    /// Kazakh numbers all over, from one address.
    BotOneAddress,
    Real,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::BotHoneypot => "bots: honeypot filled, random numbers, many addresses",
            Kind::BotForeign => "bots: foreign ranges, one address",
            Kind::BotOnePrefix => "bots: one +7 block of numbers, 5 addresses",
            Kind::BotOneAddress => "bots: +7 numbers all over, one address",
            Kind::Real => "real leads",
        }
    }
}

struct Submission {
    kind: Kind,
    path: &'static str,
    body: Value,
    xff: String,
}

/// xorshift64*: deterministic, so a run can be reproduced; no crate for four lines.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const OPERATORS: [&str; 11] = [
    "700", "701", "702", "705", "707", "747", "771", "775", "776", "777", "778",
];
/// Where pumping numbers live: premium and high-termination-fee mobile ranges abroad.
const FOREIGN: [&str; 8] = ["+44", "+234", "+880", "+263", "+371", "+992", "+53", "+252"];

fn kz_number(rng: &mut Rng) -> String {
    let op = OPERATORS[rng.below(OPERATORS.len() as u64) as usize];
    format!("+7{op}{:07}", rng.below(10_000_000))
}

fn submissions(args: &Args, rng: &mut Rng) -> Vec<Submission> {
    let mut out = Vec::with_capacity(args.bots + args.real);
    for i in 0..args.bots {
        let kind = match i % 10 {
            0..=3 => Kind::BotHoneypot,
            4..=6 => Kind::BotForeign,
            7 | 8 => Kind::BotOnePrefix,
            _ => Kind::BotOneAddress,
        };
        let phone = match kind {
            Kind::BotForeign => {
                let cc = FOREIGN[rng.below(FOREIGN.len() as u64) as usize];
                format!("{cc}7{:09}", rng.below(1_000_000_000))
            }
            Kind::BotOnePrefix => format!("+7701555{:04}", rng.below(10_000)),
            _ => kz_number(rng),
        };
        let xff = match kind {
            Kind::BotHoneypot => format!("100.64.{}.{}", rng.below(256), rng.below(256)),
            Kind::BotForeign | Kind::BotOneAddress => "203.0.113.66".to_owned(),
            _ => format!("203.0.113.{}", 10 + rng.below(5)),
        };
        let mut body = json!({"name": format!("User{i}"), "phone": phone, "email": format!("bot{i}@pump.example")});
        if kind == Kind::BotHoneypot {
            body["website"] = json!("http://best-offers.example");
        }
        let path = if i % 3 == 0 {
            body["paymentMethod"] = json!("kaspi");
            "/api/landing/submit"
        } else {
            "/api/landing/proftest"
        };
        out.push(Submission {
            kind,
            path,
            body,
            xff,
        });
    }
    let mut phones = HashSet::new();
    for i in 0..args.real {
        let phone = loop {
            let p = kz_number(rng);
            if phones.insert(p.clone()) {
                break p;
            }
        };
        // Fifteen people behind one mobile carrier's address, the others each their own.
        let xff = if i % 33 == 0 {
            "37.99.0.1".to_owned()
        } else {
            format!("95.56.{}.{}", i / 250, i % 250)
        };
        let mut body = json!({"name": format!("Айгерим {i}"), "phone": phone, "email": format!("person{i}@mail.kz"), "slug": "kenesary"});
        let path = if i % 2 == 0 {
            body["paymentMethod"] = json!(["kaspi", "halyk", "robokassa"][i % 3]);
            "/api/landing/submit"
        } else {
            "/api/landing/proftest"
        };
        out.push(Submission {
            kind: Kind::Real,
            path,
            body,
            xff,
        });
    }
    // Interleaved: people arrive in the middle of the flood, not before or after it.
    for i in (1..out.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        out.swap(i, j);
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("landing-pump-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let bin = landing_bench::server::landing_local(args.bin.as_deref())?;
    let scratch = Scratch::create(None, args.keep)?;
    let fake = FakeAmo::start(FakeConfig {
        rate_limit: None,
        ..FakeConfig::default()
    });
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()?;
    let env = [
        ("NOTIFY_DELAY", "1s".to_owned()),
        // Measured whatever the hour: an SMS held for the morning would not be counted.
        ("NOTIFY_SMS_WINDOW", "always".to_owned()),
        // The guard alone, as measured before one follow-up per person existed (which would
        // only withhold more of the bots' repeated numbers).
        ("NOTIFY_SUPERSEDE", "off".to_owned()),
        // The bench stands in for the proxy of many visitors: it says who they are.
        ("LANDING_TRUSTED_PROXIES", "127.0.0.1/32".to_owned()),
        ("SMS_BUDGET", args.budget.clone()),
        ("AMOCRM_BASE_URL", fake.base_url()),
        ("AMOCRM_ACCESS_TOKEN", DEFAULT_LONG_LIVED_TOKEN.to_owned()),
        ("AMOCRM_PIPELINE_ID", DEFAULT_PIPELINE_ID.to_string()),
        // The fake enforces no limit here; the CRM's own pace is the CRM benchmark's subject.
        ("AMOCRM_RPS", "200".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let server = Server::start(&bin, &scratch, &http, &env).await?;
    let base = server.base_url().to_owned();
    println!("landing-local {} on {base}", bin.display());
    println!(
        "guard      defaults (+77 only; 3/24h per phone; 20/1h per prefix; 20/1h per address) with SMS_BUDGET={}",
        args.budget
    );

    let mut rng = Rng(0x005E_ED0F_B075);
    let subs = submissions(&args, &mut rng);
    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(args.clients));
    let mut tasks = tokio::task::JoinSet::new();
    for s in subs {
        let permit = gate.clone().acquire_owned().await?;
        let (http, url) = (http.clone(), format!("{base}{}", s.path));
        tasks.spawn(async move {
            let _permit = permit;
            let resp = http
                .post(url)
                .header("X-Forwarded-For", &s.xff)
                .json(&s.body)
                .send()
                .await;
            let answer = match resp {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    Ok((status, body["leadId"].as_str().map(str::to_owned)))
                }
                Err(e) => Err(e.to_string()),
            };
            (s.kind, answer)
        });
    }
    let mut accepted: HashMap<Kind, Vec<String>> = HashMap::new();
    let mut refused: BTreeMap<String, usize> = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        let (kind, answer) = done?;
        match answer {
            Ok((201, Some(id))) => accepted.entry(kind).or_default().push(id),
            Ok((status, _)) => *refused.entry(format!("{kind:?} {status}")).or_default() += 1,
            Err(e) => *refused.entry(format!("{kind:?} error {e}")).or_default() += 1,
        }
    }
    let submitted_in = started.elapsed();
    println!(
        "submitted  {} in {:.1} s ({:.0}/s)",
        accepted.values().map(Vec::len).sum::<usize>(),
        submitted_in.as_secs_f64(),
        accepted.values().map(Vec::len).sum::<usize>() as f64 / submitted_in.as_secs_f64()
    );

    let db_path = scratch.data_dir().join("landing.db");
    let deadline = Instant::now() + args.settle_timeout;
    loop {
        let db = rusqlite::Connection::open_with_flags(
            &db_path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let open: i64 = db.query_row(
            "SELECT (SELECT COUNT(*) FROM scheduled_notifications WHERE status IN ('pending', 'sending'))
                  + (SELECT COUNT(*) FROM landing_leads WHERE crm_status = 'pending')",
            [],
            |r| r.get(0),
        )?;
        if open == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{open} notifications or CRM syncs still open after {:?}; log:\n{}",
                args.settle_timeout,
                server.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "settled    every notification and CRM sync after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let db = rusqlite::Connection::open_with_flags(
        &db_path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let outbox =
        std::fs::read_to_string(scratch.data_dir().join("outbox.jsonl")).unwrap_or_default();
    let mut sms: HashMap<String, usize> = HashMap::new();
    let mut email: HashMap<String, usize> = HashMap::new();
    let mut parts = 0usize;
    for line in outbox.lines() {
        let v: Value = serde_json::from_str(line).context("outbox line")?;
        let lead = v["leadId"].as_str().unwrap_or_default().to_owned();
        match v["channel"].as_str() {
            Some("sms") => {
                parts += sms_parts(v["body"].as_str().unwrap_or_default());
                *sms.entry(lead).or_default() += 1;
            }
            Some("email") => *email.entry(lead).or_default() += 1,
            _ => {}
        }
    }
    let stored: HashSet<String> = db
        .prepare("SELECT id FROM landing_leads")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let synced: HashSet<String> = db
        .prepare("SELECT id FROM landing_leads WHERE crm_status = 'synced'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let suppressed: Vec<(String, i64)> = db
        .prepare("SELECT suppressed_reason, COUNT(*) FROM scheduled_notifications WHERE status = 'suppressed' GROUP BY 1 ORDER BY 1")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;

    let mut ok = true;
    let all: Vec<&String> = accepted.values().flatten().collect();
    let lost = all.iter().filter(|id| !stored.contains(**id)).count();
    let doubled = sms
        .values()
        .chain(email.values())
        .filter(|n| **n > 1)
        .count();
    println!();
    println!(
        "{:<58} {:>6} {:>6} {:>6} {:>6}",
        "", "leads", "SMS", "email", "deal"
    );
    let mut bots = (0usize, 0usize);
    for kind in [
        Kind::BotHoneypot,
        Kind::BotForeign,
        Kind::BotOnePrefix,
        Kind::BotOneAddress,
        Kind::Real,
    ] {
        let ids = accepted.get(&kind).map(Vec::as_slice).unwrap_or_default();
        let with = |m: &HashMap<String, usize>| ids.iter().filter(|id| m.contains_key(*id)).count();
        let deals = ids.iter().filter(|id| synced.contains(*id)).count();
        println!(
            "{:<58} {:>6} {:>6} {:>6} {:>6}",
            kind.label(),
            ids.len(),
            with(&sms),
            with(&email),
            deals
        );
        if kind == Kind::Real {
            if with(&sms) != ids.len()
                || with(&email) != ids.len()
                || deals != ids.len()
                || ids.len() != args.real
            {
                println!("ERROR      a real lead went without its SMS, email or deal");
                ok = false;
            }
        } else {
            bots.0 += ids.len();
            bots.1 += with(&sms);
        }
    }
    println!();
    for (reason, n) in &suppressed {
        println!("suppressed {n:>6} {reason}");
    }
    let share = 100.0 * bots.1 as f64 / bots.0.max(1) as f64;
    println!(
        "bots       {} of {} got an SMS: {share:.2} % (target ≤ 1 %)",
        bots.1, bots.0
    );
    println!("leads lost {lost} (target 0); refused {refused:?}; duplicate sends {doubled}");
    let per_sms = args.price_usd;
    let sent_total: usize = sms.values().sum();
    println!(
        "cost       at ${per_sms:.4} per SMS part ({parts} parts for {sent_total} SMS): bots cost ${:.2} with the guard, ${:.2} without (every bot submission one SMS); per 1,000 bot submissions ${:.2} vs ${:.2}",
        bots.1 as f64 * per_sms,
        bots.0 as f64 * per_sms,
        1000.0 * bots.1 as f64 / bots.0.max(1) as f64 * per_sms,
        1000.0 * per_sms
    );
    if lost > 0 || doubled > 0 || !refused.is_empty() {
        println!("ERROR      leads lost, refused or messages doubled");
        ok = false;
    }
    let shutdown = server.shutdown().await?;
    if !shutdown.clean() {
        println!(
            "ERROR      landing-local did not stop cleanly: {:?}",
            shutdown.status
        );
        ok = false;
    }
    drop(fake);
    Ok(ok)
}

/// SMS parts of `body`: 160/153 GSM-7 characters, or 70/67 UCS-2 ones (Cyrillic).
fn sms_parts(body: &str) -> usize {
    let n = body.chars().count();
    let gsm = body
        .chars()
        .all(|c| c.is_ascii() && !c.is_ascii_control() || c == '\n');
    let (single, multi) = if gsm { (160, 153) } else { (70, 67) };
    if n <= single { 1 } else { n.div_ceil(multi) }
}
