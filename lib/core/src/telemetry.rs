//! JSON logs, one line per event, with the span's fields (correlation id, lead id) flattened in.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls are no-ops. `RUST_LOG` filters (default
/// `info`).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .try_init();
}
