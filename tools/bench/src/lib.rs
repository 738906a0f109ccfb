//! What the benchmarks of landing-local share: the process under test and its scratch dir.

pub mod server;
