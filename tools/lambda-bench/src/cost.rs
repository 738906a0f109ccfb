//! The AWS cost of 1,000 leads, computed from what the bench measured — invocations, billed
//! duration at the template's memory sizes, DynamoDB request units, SMS parts, emails, log
//! bytes — and the eu-central-1 list prices below. What does not grow with leads (the sweeper's
//! schedule, custom metrics, alarms) is a monthly line of its own.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::report::FunctionReport;
use crate::stats;

/// eu-central-1 (Frankfurt) list prices in USD, free tiers ignored. Transcribed by hand from
/// the AWS pricing pages named beside each; this machine reaches no pricing page, so check
/// them (above all the SMS one) before relying on a total.
pub struct Prices {
    pub as_of: &'static str,
    /// aws.amazon.com/lambda/pricing — Arm, per GB-second and per request.
    pub lambda_arm_gb_second: f64,
    pub lambda_request: f64,
    /// aws.amazon.com/api-gateway/pricing — HTTP API, first 300 M requests a month.
    pub http_api_request: f64,
    /// aws.amazon.com/dynamodb/pricing/on-demand — per write / read request unit.
    pub dynamodb_write_unit: f64,
    pub dynamodb_read_unit: f64,
    /// aws.amazon.com/eventbridge/pricing — Scheduler, per scheduled invocation.
    pub scheduler_invocation: f64,
    /// aws.amazon.com/sns/sms-pricing — Kazakhstan, per message part. An assumption (the page
    /// lists it per carrier and it changes); the same figure as the pumping benchmark's.
    pub sms_part_kz: f64,
    /// aws.amazon.com/ses/pricing — per email sent.
    pub ses_email: f64,
    /// aws.amazon.com/cloudwatch/pricing — Logs ingestion (Standard) per GB, custom metric per
    /// month (first 10,000), standard-resolution alarm per metric per month.
    pub logs_ingest_gb: f64,
    pub custom_metric_month: f64,
    pub alarm_month: f64,
}

pub const PRICES: Prices = Prices {
    as_of: "2026-12-01 (transcribed, not fetched)",
    lambda_arm_gb_second: 0.000_013_333_4,
    lambda_request: 0.20 / 1e6,
    http_api_request: 1.20 / 1e6,
    dynamodb_write_unit: 0.7625 / 1e6,
    dynamodb_read_unit: 0.1525 / 1e6,
    scheduler_invocation: 1.00 / 1e6,
    sms_part_kz: 0.09,
    ses_email: 0.10 / 1e3,
    logs_ingest_gb: 0.63,
    custom_metric_month: 0.30,
    alarm_month: 0.10,
};

/// What Lambda itself writes per invocation beside the function's own lines, in JSON log
/// format (`platform.start` and `platform.report`; the sizes of real lines with typical ids).
const PLATFORM_LOG_LINES: [&str; 2] = [
    r#"{"time":"2026-12-01T09:00:00.000Z","type":"platform.start","record":{"requestId":"6f7f0961-3c8b-4a9e-8f3e-2f8c2a1b0d4e","version":"$LATEST","tracing":{"spanId":"2c8b5a0e1d3f4a6b","type":"X-Amzn-Trace-Id","value":"Root=1-6b0e0000-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1"}}}"#,
    r#"{"time":"2026-12-01T09:00:00.042Z","type":"platform.report","record":{"requestId":"6f7f0961-3c8b-4a9e-8f3e-2f8c2a1b0d4e","metrics":{"durationMs":41.52,"billedDurationMs":42,"memorySizeMB":256,"maxMemoryUsedMB":14},"tracing":{"spanId":"2c8b5a0e1d3f4a6b","type":"X-Amzn-Trace-Id","value":"Root=1-6b0e0000-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1"},"status":"success"}}"#,
];

const LEADS: f64 = 1000.0;
/// The template's sweeper schedule, `rate(5 minutes)`, over a 30-day month.
const SWEEPS_PER_MONTH: f64 = 30.0 * 24.0 * 12.0;

/// One function's measured footprint per invocation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PerInvocation {
    pub billed_gb_seconds: f64,
    pub write_units: f64,
    pub read_units: f64,
    pub log_bytes: f64,
    pub sms_parts: f64,
    pub emails: f64,
}

impl PerInvocation {
    pub fn of(r: &FunctionReport, memory_mb: u32) -> Option<PerInvocation> {
        let n = r.counted as f64;
        if r.counted == 0 {
            return None;
        }
        // Lambda bills each invocation's duration rounded up to the millisecond.
        let billed_ms = stats::median(&r.counted_times)?.as_secs_f64() * 1000.0;
        let platform: usize = PLATFORM_LOG_LINES.iter().map(|l| l.len() + 1).sum();
        Some(PerInvocation {
            billed_gb_seconds: billed_ms.ceil() / 1000.0 * f64::from(memory_mb) / 1024.0,
            write_units: r.usage.write_units / n,
            read_units: r.usage.read_units / n,
            log_bytes: r.log_bytes as f64 / n + platform as f64,
            sms_parts: r.usage.sms_parts as f64 / n,
            emails: r.usage.emails as f64 / n,
        })
    }

    fn mean(a: PerInvocation, b: PerInvocation) -> PerInvocation {
        let m = |x: f64, y: f64| (x + y) / 2.0;
        PerInvocation {
            billed_gb_seconds: m(a.billed_gb_seconds, b.billed_gb_seconds),
            write_units: m(a.write_units, b.write_units),
            read_units: m(a.read_units, b.read_units),
            log_bytes: m(a.log_bytes, b.log_bytes),
            sms_parts: m(a.sms_parts, b.sms_parts),
            emails: m(a.emails, b.emails),
        }
    }
}

/// The footprint of one lead: an intake invocation (half ProfTest, half ExpressCourse), one
/// notify invocation (both channels), one crm-sync invocation (a stream batch of one: the upper
/// bound, batches of several share an invocation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lead {
    pub intake: PerInvocation,
    pub notify: PerInvocation,
    pub crm: PerInvocation,
}

pub struct Line {
    pub service: &'static str,
    pub quantity: String,
    pub usd: f64,
}

/// The lines of 1,000 leads, largest first.
pub fn per_thousand(lead: &Lead, p: &Prices) -> Vec<Line> {
    let parts = [lead.intake, lead.notify, lead.crm];
    let sum = |f: fn(&PerInvocation) -> f64| parts.iter().map(f).sum::<f64>() * LEADS;
    let gb_s = sum(|x| x.billed_gb_seconds);
    let wru = sum(|x| x.write_units);
    let rru = sum(|x| x.read_units);
    let log_gb = sum(|x| x.log_bytes) / 1e9;
    let sms_parts = lead.notify.sms_parts * LEADS;
    let emails = lead.notify.emails * LEADS;
    let mut lines = vec![
        Line {
            service: "SNS SMS to Kazakhstan",
            quantity: format!("{sms_parts:.0} parts"),
            usd: sms_parts * p.sms_part_kz,
        },
        Line {
            service: "Lambda (arm64)",
            quantity: format!("{:.0} invocations, {gb_s:.1} GB-s", 3.0 * LEADS),
            usd: 3.0 * LEADS * p.lambda_request + gb_s * p.lambda_arm_gb_second,
        },
        Line {
            service: "DynamoDB on demand",
            quantity: format!("{wru:.0} write + {rru:.0} read units"),
            usd: wru * p.dynamodb_write_unit + rru * p.dynamodb_read_unit,
        },
        Line {
            service: "API Gateway HTTP API",
            quantity: format!("{LEADS:.0} requests"),
            usd: LEADS * p.http_api_request,
        },
        Line {
            service: "EventBridge Scheduler",
            quantity: format!("{LEADS:.0} invocations"),
            usd: LEADS * p.scheduler_invocation,
        },
        Line {
            service: "SES",
            quantity: format!("{emails:.0} emails"),
            usd: emails * p.ses_email,
        },
        Line {
            service: "CloudWatch Logs",
            quantity: format!("{:.2} MB ingested", log_gb * 1000.0),
            usd: log_gb * p.logs_ingest_gb,
        },
    ];
    lines.sort_by(|a, b| b.usd.total_cmp(&a.usd));
    lines
}

/// What a month costs whatever the number of leads.
pub fn monthly(sweep: &PerInvocation, metrics: usize, alarms: usize, p: &Prices) -> Vec<Line> {
    vec![
        Line {
            service: "sweeper (Lambda + DynamoDB + logs)",
            quantity: format!("{SWEEPS_PER_MONTH:.0} sweeps"),
            usd: SWEEPS_PER_MONTH
                * (p.lambda_request
                    + sweep.billed_gb_seconds * p.lambda_arm_gb_second
                    + sweep.write_units * p.dynamodb_write_unit
                    + sweep.read_units * p.dynamodb_read_unit
                    + sweep.log_bytes / 1e9 * p.logs_ingest_gb
                    + p.scheduler_invocation),
        },
        Line {
            service: "CloudWatch custom metrics (EMF)",
            quantity: format!("{metrics} metric × dimension combinations"),
            usd: metrics as f64 * p.custom_metric_month,
        },
        Line {
            service: "CloudWatch alarms",
            quantity: format!("{alarms} alarms"),
            usd: alarms as f64 * p.alarm_month,
        },
    ]
}

/// The distinct (namespace, metric, dimension values) the functions' EMF lines publish: each
/// is a custom metric CloudWatch bills by the month.
pub fn emf_metrics(log_dir: &Path) -> anyhow::Result<usize> {
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(log_dir).context("read the function logs")? {
        let text = std::fs::read_to_string(entry?.path()).unwrap_or_default();
        for line in text.lines().filter(|l| l.contains("\"_aws\"")) {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            for cw in v["_aws"]["CloudWatchMetrics"]
                .as_array()
                .into_iter()
                .flatten()
            {
                for metric in cw["Metrics"].as_array().into_iter().flatten() {
                    for dims in cw["Dimensions"].as_array().into_iter().flatten() {
                        let values: Vec<String> = dims
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .map(|d| format!("{d}={}", v[d].as_str().unwrap_or("")))
                            .collect();
                        // The namespace carries the stack name, different per bench run.
                        seen.insert((metric["Name"].to_string(), values));
                    }
                }
            }
        }
    }
    Ok(seen.len())
}

/// What `infra/template_info.py <what>` says of template.yaml (the venv's Python reads it with
/// SAM's own YAML loader).
fn template_info(root: &Path, what: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("infra/template_info.py"))
        .arg(what)
        .output()
        .with_context(|| {
            format!("run infra/template_info.py {what} (the venv: ./infra/venv.sh)")
        })?;
    anyhow::ensure!(
        out.status.success(),
        "template_info.py {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// Memory sizes from the template, by binary name.
pub fn memory_sizes(root: &Path) -> anyhow::Result<Vec<(String, u32)>> {
    template_info(root, "memory")?
        .lines()
        .map(|l| {
            let (bin, mb) = l.split_once('\t').context("binary\\tMB")?;
            Ok((bin.to_owned(), mb.parse()?))
        })
        .collect()
}

pub fn alarm_count(root: &Path) -> anyhow::Result<usize> {
    Ok(template_info(root, "alarms")?.trim().parse()?)
}

pub fn print(reports: &[FunctionReport], root: &Path, log_dir: &Path) -> anyhow::Result<()> {
    let memory = memory_sizes(root)?;
    let per = |name: &str| -> anyhow::Result<PerInvocation> {
        let r = reports
            .iter()
            .find(|r| r.name == name)
            .with_context(|| format!("no report for {name}"))?;
        let mb = memory
            .iter()
            .find(|(b, _)| b == name)
            .map(|(_, mb)| *mb)
            .with_context(|| format!("{name}: no MemorySize in the template"))?;
        PerInvocation::of(r, mb).with_context(|| format!("{name}: nothing counted"))
    };
    let lead = Lead {
        intake: PerInvocation::mean(per("proftest")?, per("submit")?),
        notify: per("notify")?,
        crm: per("crm-sync")?,
    };
    let lines = per_thousand(&lead, &PRICES);
    let total: f64 = lines.iter().map(|l| l.usd).sum();
    println!(
        "\n## Cost of 1,000 leads on AWS, eu-central-1 (prices as of {}; free tiers ignored)",
        PRICES.as_of
    );
    println!(
        "{:<36} {:>44} {:>11} {:>7}",
        "service", "quantity", "USD", "share"
    );
    for l in &lines {
        println!(
            "{:<36} {:>44} {:>11.4} {:>6.1}%",
            l.service,
            l.quantity,
            l.usd,
            100.0 * l.usd / total
        );
    }
    println!("{:<36} {:>44} {:>11.4}", "total", "", total);
    let without_sms: f64 = lines.iter().skip(1).map(|l| l.usd).sum();
    println!(
        "dominant: {} ({:.1}%); everything else together ${without_sms:.4} per 1,000 leads",
        lines.first().map_or("-", |l| l.service),
        lines.first().map_or(0.0, |l| 100.0 * l.usd / total)
    );
    println!(
        "per lead: intake {:.1} write / {:.1} read units, notify {:.1} / {:.1}, crm-sync {:.1} / {:.1}; log bytes {:.0} / {:.0} / {:.0}; SMS parts {:.2}",
        lead.intake.write_units,
        lead.intake.read_units,
        lead.notify.write_units,
        lead.notify.read_units,
        lead.crm.write_units,
        lead.crm.read_units,
        lead.intake.log_bytes,
        lead.notify.log_bytes,
        lead.crm.log_bytes,
        lead.notify.sms_parts,
    );
    let largest = reports
        .iter()
        .map(|r| r.usage.max_item_bytes)
        .max()
        .unwrap_or(0);
    println!(
        "largest item written: {largest} bytes (updates are counted as 1 unit: right below 1,024)"
    );
    let metrics = emf_metrics(log_dir)?;
    let alarms = alarm_count(root)?;
    println!("\n## Monthly, whatever the number of leads");
    for l in monthly(&per("sweeper")?, metrics, alarms, &PRICES) {
        println!("{:<36} {:>44} {:>11.4}", l.service, l.quantity, l.usd);
    }
    println!(
        "(durations are the counting run's medians against moto on this machine, {} ms intake; real AWS calls take longer, and Lambda bills the ms)",
        stats::median(
            &reports
                .iter()
                .filter(|r| r.name == "proftest")
                .flat_map(|r| r.counted_times.iter().copied())
                .collect::<Vec<Duration>>()
        )
        .map_or("n/a".into(), |d| format!("{:.1}", d.as_secs_f64() * 1000.0))
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(sms_parts: f64) -> Lead {
        let x = PerInvocation {
            billed_gb_seconds: 0.01,
            write_units: 4.0,
            read_units: 1.0,
            log_bytes: 2000.0,
            sms_parts: 0.0,
            emails: 0.0,
        };
        Lead {
            intake: x,
            notify: PerInvocation {
                sms_parts,
                emails: 1.0,
                ..x
            },
            crm: x,
        }
    }

    #[test]
    fn the_thousand_leads_lines_multiply_measures_by_prices() {
        let lines = per_thousand(&lead(2.0), &PRICES);
        let by = |s: &str| {
            lines
                .iter()
                .find(|l| l.service == s)
                .map(|l| l.usd)
                .unwrap()
        };
        assert!((by("SNS SMS to Kazakhstan") - 2000.0 * 0.09).abs() < 1e-9);
        assert!((by("SES") - 0.10).abs() < 1e-9);
        let lambda = 3000.0 * 0.20 / 1e6 + 30.0 * 0.000_013_333_4;
        assert!((by("Lambda (arm64)") - lambda).abs() < 1e-12);
        let ddb = 12_000.0 * 0.7625 / 1e6 + 3000.0 * 0.1525 / 1e6;
        assert!((by("DynamoDB on demand") - ddb).abs() < 1e-12);
        assert!((by("CloudWatch Logs") - 0.006 * 0.63).abs() < 1e-12);
        assert_eq!(lines[0].service, "SNS SMS to Kazakhstan");
    }

    #[test]
    fn a_two_part_sms_doubles_the_dominant_line() {
        let one = per_thousand(&lead(1.0), &PRICES);
        let two = per_thousand(&lead(2.0), &PRICES);
        assert!((two[0].usd - 2.0 * one[0].usd).abs() < 1e-9);
    }

    #[test]
    fn billed_duration_is_rounded_up_to_the_millisecond_at_the_memory_size() {
        let r = FunctionReport {
            counted: 2,
            counted_times: vec![Duration::from_micros(10_200), Duration::from_micros(10_400)],
            log_bytes: 1000,
            ..FunctionReport::default()
        };
        let p = PerInvocation::of(&r, 512).unwrap();
        assert!((p.billed_gb_seconds - 0.011 * 0.5).abs() < 1e-12);
        assert!(p.log_bytes > 500.0);
    }
}
