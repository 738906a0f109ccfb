//! CloudWatch Embedded Metric Format (EMF): a JSON line CloudWatch Logs turns into metrics, so a
//! Lambda publishes its counts with no API call of its own. The layer watches for log events with
//! a known `event` field (the same lines landing-local writes) and adds one EMF line per event.
//!
//! | `event` | metric (unit) | dimension sets |
//! |---|---|---|
//! | `lead_accepted` | `LeadsAccepted` (Count) | `[]`, `[Form]` |
//! | `intake_answered` | `IntakeLatency` (Milliseconds, from `latency_ms`) | `[]` |
//! | `notification_sent` / `_failed` / `_suppressed` / `_held` | `NotificationsSent` / `…Failed` / `…Suppressed` / `…Held` (Count) | `[]`, `[Channel]` |
//! | `crm_synced` / `crm_failed` | `CrmSynced` / `CrmFailed` (Count) | `[]` |
//! | `sms_budget_tripped` | `SmsBudgetTripped` (Count) | `[]` |
//!
//! The empty dimension set gives the totals the alarms watch.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;

/// The namespace when `METRICS_NAMESPACE` is unset.
pub const DEFAULT_NAMESPACE: &str = "Landing";

/// One metric an event stands for.
struct Metric {
    name: &'static str,
    unit: &'static str,
    /// The event field whose value is the metric's (else 1).
    value_field: Option<&'static str>,
    /// The event field (logged lower-case) that is also a dimension, and its dimension name.
    dimension: Option<(&'static str, &'static str)>,
}

fn metric_of(event: &str) -> Option<Metric> {
    let count = |name, dimension| Metric {
        name,
        unit: "Count",
        value_field: None,
        dimension,
    };
    Some(match event {
        "lead_accepted" => count("LeadsAccepted", Some(("form", "Form"))),
        "intake_answered" => Metric {
            name: "IntakeLatency",
            unit: "Milliseconds",
            value_field: Some("latency_ms"),
            dimension: None,
        },
        "notification_sent" => count("NotificationsSent", Some(("channel", "Channel"))),
        "notification_failed" => count("NotificationsFailed", Some(("channel", "Channel"))),
        "notification_suppressed" => count("NotificationsSuppressed", Some(("channel", "Channel"))),
        "notification_held" => count("NotificationsHeld", Some(("channel", "Channel"))),
        "crm_synced" => count("CrmSynced", None),
        "crm_failed" => count("CrmFailed", None),
        "sms_budget_tripped" => count("SmsBudgetTripped", None),
        _ => return None,
    })
}

#[derive(Default)]
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// The EMF line for one event (what [`EmfLayer`] writes), or `None` for an event no metric
/// stands for.
pub fn line(namespace: &str, fields: &Map<String, Value>, now_ms: u128) -> Option<String> {
    let event = fields.get("event")?.as_str()?;
    let m = metric_of(event)?;
    let value = match m.value_field {
        Some(f) => fields.get(f)?.as_f64()?,
        None => 1.0,
    };
    let mut dimensions = vec![json!([])];
    let mut doc = Map::new();
    if let Some((field, dim)) = m.dimension
        && let Some(v) = fields.get(field).and_then(Value::as_str)
    {
        dimensions.push(json!([dim]));
        doc.insert(dim.to_owned(), Value::from(v));
    }
    doc.insert(m.name.to_owned(), Value::from(value));
    doc.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": u64::try_from(now_ms).unwrap_or(u64::MAX),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dimensions,
                "Metrics": [{"Name": m.name, "Unit": m.unit}],
            }],
        }),
    );
    Some(Value::Object(doc).to_string())
}

/// Writes an EMF line beside every log event that stands for a metric.
pub struct EmfLayer<W> {
    namespace: String,
    writer: W,
}

impl<W> EmfLayer<W> {
    pub fn new(namespace: impl Into<String>, writer: W) -> Self {
        EmfLayer {
            namespace: namespace.into(),
            writer,
        }
    }
}

impl<S, W> Layer<S> for EmfLayer<W>
where
    S: tracing::Subscriber,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        if let Some(l) = line(&self.namespace, &fields.0, now) {
            // A metric line that cannot be written is a lost data point, never a failed request.
            let _ = writeln!(self.writer.make_writer(), "{l}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: Value) -> Map<String, Value> {
        let Value::Object(m) = v else { unreachable!() };
        m
    }

    #[test]
    fn an_event_with_a_dimension_gives_the_total_and_the_split() {
        let l = line(
            "Landing/prod",
            &fields(json!({"event": "notification_failed", "channel": "sms", "lead_id": "x"})),
            1_767_225_600_000,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["NotificationsFailed"], 1.0);
        assert_eq!(v["Channel"], "sms");
        assert!(
            v.get("lead_id").is_none(),
            "no log field but the dimension leaks in"
        );
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "Landing/prod");
        assert_eq!(cw["Dimensions"], json!([[], ["Channel"]]));
        assert_eq!(
            cw["Metrics"],
            json!([{"Name": "NotificationsFailed", "Unit": "Count"}])
        );
        assert_eq!(v["_aws"]["Timestamp"], 1_767_225_600_000u64);
    }

    #[test]
    fn latency_takes_its_value_and_unknown_events_give_nothing() {
        let l = line(
            "Landing",
            &fields(json!({"event": "intake_answered", "latency_ms": 12.5, "status": 201})),
            0,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["IntakeLatency"], 12.5);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Milliseconds"
        );
        assert!(line("Landing", &fields(json!({"event": "something_else"})), 0).is_none());
        assert!(line("Landing", &fields(json!({"message": "no event"})), 0).is_none());
        assert!(line("Landing", &fields(json!({"event": "intake_answered"})), 0).is_none());
    }
}
