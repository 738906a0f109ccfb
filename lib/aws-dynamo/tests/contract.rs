//! The storage contract suites (`landing-contract`) on DynamoDB, against moto: each case gets
//! its own five tables (a unique name prefix), since cases run in parallel on one emulator.
//! Run via `./infra/with-moto.sh cargo test -p landing-aws-dynamo`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

async fn fresh() -> landing_contract::Stores {
    landing_contract::Stores::new(landing_moto::fresh_store().await)
}

landing_contract::storage_contract_tests!(
    fresh(),
    #[ignore = "needs moto: run through infra/with-moto.sh (infra/check.sh does)"]
);
