//! A cold Lambda pays for whatever its first request touches. phonenumber's full metadata
//! database costs ~65 ms to load; a +7 number must be normalised without it. This runs in its own
//! process (an integration test binary with one test) so no other test has loaded it first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

use landing_core::domain::Phone;
use once_cell::sync::Lazy;

#[test]
fn kz_and_ru_numbers_never_load_the_full_phone_database_but_foreign_ones_do() {
    let loaded = || Lazy::get(&phonenumber::metadata::DATABASE).is_some();
    assert!(!loaded(), "nothing has parsed a phone yet");

    for raw in [
        "8 777 123 45 67",
        "+7 (777) 123-45-67",
        "7771234567",
        "87011234567",
        "+7 912 123-45-67",
        "8 (727) 250-12-34",
    ] {
        assert!(Phone::parse(raw).is_ok(), "{raw}");
    }
    assert!(!loaded(), "a +7 number loaded the full database");

    // The observation can fail: a number of another country needs the full database.
    assert_eq!(
        Phone::parse("+49 30 12345678").map(|p| p.as_str().to_owned()),
        Ok("+493012345678".to_owned())
    );
    assert!(loaded());
}
