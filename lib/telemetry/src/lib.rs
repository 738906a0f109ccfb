//! JSON logs, one object per line: `timestamp`, `level`, the event's fields and the fields of
//! every span it happens in (correlation id, lead id …), all at the top level, so a log query
//! reads `correlation_id` without knowing which span set it.
//!
//! Field values are data: numbers stay numbers, strings strings, and a value logged with `?`
//! whose `Debug` form is a JSON array (a `Vec<&str>` of plain names is) becomes that array.
//! Anything else logged with `?` is its `Debug` text — so PII-bearing types mask themselves
//! there, and log them as `%masked` strings rather than `?value`.

pub mod emf;

use std::fmt;
use std::io;

use json_subscriber::JsonLayer;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Installs the global subscriber once, writing to stdout; later calls are no-ops. `RUST_LOG`
/// filters (default `info`). In a Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set) the log events that
/// stand for a metric also get an EMF line ([`emf`]) in `METRICS_NAMESPACE` (default `Landing`),
/// whatever `RUST_LOG` says.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let metrics = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").map(|_| {
        let namespace = std::env::var("METRICS_NAMESPACE")
            .ok()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| emf::DEFAULT_NAMESPACE.to_owned());
        emf::EmfLayer::new(namespace, io::stdout)
    });
    let _ = tracing_subscriber::registry()
        .with(json_layer(io::stdout).with_filter(filter))
        .with(metrics)
        .try_init();
}

/// The JSON layer writing to `writer` (tests capture the lines with it).
pub fn json_layer<S, W>(writer: W) -> JsonLayer<S, W>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    let mut layer = JsonLayer::new(writer);
    layer.with_timer("timestamp", tracing_subscriber::fmt::time::SystemTime);
    layer.with_level("level");
    layer.with_top_level_flattened_span_list();
    layer.add_multiple_dynamic_fields(|event, _| {
        let mut fields = EventFields::default();
        event.record(&mut fields);
        fields.0
    });
    layer
}

/// A subscriber with [`json_layer`] alone, for a scoped default in tests.
pub fn subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    Registry::default().with(json_layer(writer))
}

/// An event's fields as JSON values.
#[derive(Default)]
struct EventFields(Map<String, Value>);

impl EventFields {
    fn put(&mut self, field: &Field, v: Value) {
        self.0.insert(field.name().to_owned(), v);
    }
}

impl Visit for EventFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        let v = match serde_json::from_str::<Value>(&text) {
            Ok(array @ Value::Array(_)) => array,
            _ => Value::String(text),
        };
        self.put(field, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn capture(f: impl FnOnce()) -> Vec<Value> {
        let lines = Lines::default();
        tracing::subscriber::with_default(subscriber(lines.clone()), f);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }

    #[test]
    fn a_log_line_is_one_flat_json_object_with_span_fields_and_typed_values() {
        let lines = capture(|| {
            let span = tracing::info_span!("intake", correlation_id = "corr-1", form = "proftest");
            let _g = span.enter();
            let names = vec!["email", "phone"];
            tracing::info!(
                phone = "+7******4567",
                status = 201u16,
                fields = ?names,
                report = ?Some(3),
                "lead committed"
            );
        });
        let [line] = lines.as_slice() else {
            panic!("one line expected: {lines:?}")
        };
        assert_eq!(line["message"], "lead committed");
        assert_eq!(line["level"], "INFO");
        assert!(line["timestamp"].as_str().is_some());
        assert_eq!(line["correlation_id"], "corr-1");
        assert_eq!(line["form"], "proftest");
        assert_eq!(line["phone"], "+7******4567");
        assert_eq!(line["status"], 201);
        assert_eq!(line["fields"], serde_json::json!(["email", "phone"]));
        // Not a JSON array: kept as its Debug text.
        assert_eq!(line["report"], "Some(3)");
        assert!(line.get("span").is_none() && line.get("spans").is_none());
    }
}
