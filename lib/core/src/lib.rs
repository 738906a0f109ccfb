//! The landing lead pipeline's core: domain types that parse on construction, the ports every
//! runtime implements, and the use cases (intake, notification dispatch) written once against
//! them. No storage or network code lives here.

pub mod config;
pub mod crm;
pub mod domain;
pub mod guard;
pub mod intake;
pub mod keyed_hash;
pub mod mask;
pub mod notify;
pub mod ports;
pub mod submission;
pub mod time;
pub mod unsubscribe;

/// An error and its causes on one line (`a: b: c`), for logs.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
