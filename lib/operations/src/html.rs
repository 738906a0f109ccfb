//! `report --format html`: one self-contained page (no script, font or image from elsewhere) —
//! a stacked bar chart of leads per campaign per day, and the delivery and CRM columns.

use std::collections::BTreeMap;

use jiff::Timestamp;
use landing_core::domain::{Lead, Notification};
use serde::Serialize;

use crate::OpsError;
use crate::report::{self, By, Report, school_tz};

const TEMPLATE: &str = include_str!("../templates/report.html");
/// Distinguishable for the common forms of colour blindness (Okabe–Ito, then two greys).
const PALETTE: [&str; 10] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
    "#8a8f9c", "#c3c7d1",
];
const HEIGHT: i64 = 260;
const LEFT: i64 = 44;
const TOP: i64 = 20;
const BOTTOM: i64 = 28;

#[derive(Serialize)]
struct Tick {
    y: i64,
    value: u64,
}

#[derive(Serialize)]
struct Segment {
    y: i64,
    h: i64,
    color: &'static str,
    campaign: String,
    value: u64,
}

#[derive(Serialize)]
struct Bar {
    x: i64,
    day: String,
    label: String,
    total: u64,
    top: i64,
    segments: Vec<Segment>,
}

#[derive(Serialize)]
struct Legend {
    campaign: String,
    color: &'static str,
}

#[derive(Serialize)]
struct Chart {
    width: i64,
    height: i64,
    left: i64,
    bar_width: i64,
    ticks: Vec<Tick>,
    bars: Vec<Bar>,
    legend: Vec<Legend>,
}

/// A round step for about four grid lines up to `max`.
fn step(max: u64) -> u64 {
    let raw = (max.max(1) as f64 / 4.0).max(1.0);
    let magnitude = 10f64.powi(raw.log10().floor() as i32);
    let nice = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(raw);
    nice.round().max(1.0) as u64
}

fn chart(leads: &[(Lead, Vec<Notification>)], from: Timestamp, to: Timestamp) -> Chart {
    let tz = school_tz();
    // Every day of the range, also the empty ones: a gap in the chart is a finding.
    let mut days: Vec<String> = Vec::new();
    let mut t = from;
    while t < to && days.len() < 400 {
        let d = report::day(t, &tz);
        if days.last() != Some(&d) {
            days.push(d);
        }
        t = t
            .checked_add(jiff::SignedDuration::from_hours(1))
            .unwrap_or(to);
    }
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut campaigns: BTreeMap<String, u64> = BTreeMap::new();
    for (lead, _) in leads {
        let d = report::day(lead.created_at, &tz);
        let c = lead.source_campaign.as_str().to_owned();
        *counts.entry((d.clone(), c.clone())).or_default() += 1;
        *campaigns.entry(c).or_default() += 1;
        if !days.contains(&d) {
            days.push(d);
        }
    }
    days.sort();
    // The biggest campaigns get the first colours; beyond the palette they share the last.
    let mut order: Vec<(String, u64)> = campaigns.into_iter().collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let color = |c: &str| {
        let i = order.iter().position(|(n, _)| n == c).unwrap_or(0);
        PALETTE
            .get(i)
            .copied()
            .unwrap_or(PALETTE[PALETTE.len() - 1])
    };
    let per_day: Vec<u64> = days
        .iter()
        .map(|d| {
            counts
                .iter()
                .filter(|((dd, _), _)| dd == d)
                .map(|(_, n)| n)
                .sum()
        })
        .collect();
    let max = per_day.iter().copied().max().unwrap_or(0);
    let step = step(max);
    let top_value = max.div_ceil(step).max(1) * step;
    let plot = HEIGHT - TOP - BOTTOM;
    let y_of = |v: u64| HEIGHT - BOTTOM - (v as i64 * plot) / top_value as i64;
    let slot = ((900 - LEFT) / days.len().max(1) as i64).clamp(14, 64);
    let bar_width = (slot * 7 / 10).max(8);
    let width = LEFT + slot * days.len().max(1) as i64 + 8;
    let label_every = (days.len() / 14).max(1);
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let x = LEFT + slot * i as i64 + (slot - bar_width) / 2;
            let mut acc = 0u64;
            let mut segments = Vec::new();
            for (c, _) in &order {
                let n = counts.get(&(d.clone(), c.clone())).copied().unwrap_or(0);
                if n == 0 {
                    continue;
                }
                let (y0, y1) = (y_of(acc), y_of(acc + n));
                segments.push(Segment {
                    y: y1,
                    h: (y0 - y1).max(1),
                    color: color(c),
                    campaign: c.clone(),
                    value: n,
                });
                acc += n;
            }
            Bar {
                x,
                day: d.clone(),
                label: if i % label_every == 0 {
                    d.get(5..).unwrap_or(d).replace('-', ".")
                } else {
                    String::new()
                },
                total: acc,
                top: y_of(acc),
                segments,
            }
        })
        .collect();
    Chart {
        width,
        height: HEIGHT,
        left: LEFT,
        bar_width,
        ticks: (0..=top_value / step)
            .map(|k| Tick {
                y: y_of(k * step),
                value: k * step,
            })
            .collect(),
        bars,
        legend: order
            .iter()
            .map(|(c, _)| Legend {
                campaign: c.clone(),
                color: color(c),
            })
            .collect(),
    }
}

/// The page for `report` over the same leads it was built from.
pub fn render(
    report: &Report,
    leads: &[(Lead, Vec<Notification>)],
    now: Timestamp,
) -> Result<String, OpsError> {
    let tz = school_tz();
    let by_campaign = if report.rows.iter().any(|r| r.day.is_some()) {
        report::build(leads, By::Campaign, report.from, report.to)
    } else {
        report.clone()
    };
    let t = &by_campaign.total;
    let problems = t.sms.failed + t.email.channel.failed + t.crm.failed;
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("report.html", TEMPLATE)
        .map_err(|e| OpsError::Render(e.to_string()))?;
    let ctx = minijinja::context! {
        period => format!(
            "{} – {}",
            report.from.to_zoned_datetime(tz.clone()).strftime("%d.%m.%Y %H:%M"),
            report.to.to_zoned_datetime(tz.clone()).strftime("%d.%m.%Y %H:%M")
        ),
        generated => now.to_zoned_datetime(tz).strftime("%d.%m.%Y %H:%M").to_string(),
        total => minijinja::Value::from_serialize(t),
        rows => minijinja::Value::from_serialize(&by_campaign.rows),
        problems => problems,
        chart => minijinja::Value::from_serialize(chart(leads, report.from, report.to)),
    };
    env.get_template("report.html")
        .and_then(|tpl| tpl.render(ctx))
        .map_err(|e| OpsError::Render(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_steps_are_round() {
        assert_eq!(step(0), 1);
        assert_eq!(step(3), 1);
        assert_eq!(step(17), 5);
        assert_eq!(step(180), 50);
        assert_eq!(step(1234), 500);
    }
}
