//! The `TokenStore` contract: the CRM's OAuth pair is replaced only by whoever presents the
//! refresh token that is stored now (refresh tokens are single-use: a second winner would hold a
//! dead token).

use std::sync::Arc;

use jiff::Timestamp;
use landing_core::ports::{TokenPair, TokenStore};
use secrecy::{ExposeSecret, SecretString};

use crate::Harness;
use crate::fixtures::*;

fn pair(access: &str, refresh: &str, expires_at: Timestamp) -> TokenPair {
    TokenPair {
        access_token: SecretString::from(access.to_owned()),
        refresh_token: SecretString::from(refresh.to_owned()),
        expires_at,
    }
}

async fn loaded(tokens: &dyn TokenStore) -> TokenPair {
    tokens
        .load()
        .await
        .expect("load failed")
        .expect("a pair is stored")
}

async fn replace(tokens: &dyn TokenStore, expected: Option<&str>, new: &TokenPair) -> bool {
    tokens.replace(expected, new).await.expect("replace failed")
}

pub async fn the_first_pair_is_stored_only_when_none_is_expected<H: Harness + ?Sized>(h: &H) {
    let tokens = h.tokens();
    assert!(tokens.load().await.expect("load failed").is_none());
    let first = pair("a1", "r1", at(mins(60)));
    assert!(
        !replace(tokens.as_ref(), Some("r0"), &first).await,
        "nothing stored yet: an expected token cannot match"
    );
    assert!(replace(tokens.as_ref(), None, &first).await, "first store");
    assert!(
        !replace(tokens.as_ref(), None, &pair("x", "y", at(mins(1)))).await,
        "a second 'first store' is refused"
    );
    let l = loaded(tokens.as_ref()).await;
    assert_eq!(
        (
            l.access_token.expose_secret(),
            l.refresh_token.expose_secret()
        ),
        ("a1", "r1")
    );
    assert_eq!(l.expires_at, at(mins(60)));
}

pub async fn a_pair_is_replaced_only_with_the_current_refresh_token<H: Harness + ?Sized>(h: &H) {
    let tokens = h.tokens();
    let first = pair("a1", "r1", at(mins(60)));
    assert!(replace(tokens.as_ref(), None, &first).await);
    let second = pair("a2", "r2", at(mins(120)));
    assert!(
        !replace(tokens.as_ref(), Some("stale"), &second).await,
        "a stale expected refresh token is refused"
    );
    let l = loaded(tokens.as_ref()).await;
    assert_eq!(
        (
            l.access_token.expose_secret(),
            l.refresh_token.expose_secret()
        ),
        ("a1", "r1"),
        "the refused write changed nothing"
    );
    assert!(replace(tokens.as_ref(), Some("r1"), &second).await);
    let l = loaded(tokens.as_ref()).await;
    assert_eq!(
        (
            l.access_token.expose_secret(),
            l.refresh_token.expose_secret()
        ),
        ("a2", "r2")
    );
    assert_eq!(l.expires_at, at(mins(120)));
    assert!(
        !replace(tokens.as_ref(), Some("r1"), &first).await,
        "a used refresh token cannot win twice"
    );
}

pub async fn refreshers_racing_with_one_token_have_exactly_one_winner<H: Harness + ?Sized>(h: &H) {
    let tokens: Arc<dyn TokenStore> = h.tokens();
    assert!(replace(tokens.as_ref(), None, &pair("a2", "r2", at(mins(60)))).await);
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let tokens = tokens.clone();
            tokio::spawn(async move {
                let new = pair(&format!("a3-{i}"), &format!("r3-{i}"), at(mins(180)));
                replace(tokens.as_ref(), Some("r2"), &new).await
            })
        })
        .collect();
    let mut winners = 0;
    for r in racers {
        winners += usize::from(r.await.expect("racer panicked"));
    }
    assert_eq!(winners, 1);
    let l = loaded(tokens.as_ref()).await;
    let winner = l.refresh_token.expose_secret().to_owned();
    assert!(winner.starts_with("r3-"), "{winner}");
    assert_eq!(
        l.access_token.expose_secret(),
        winner.replace('r', "a"),
        "the stored pair is one racer's whole pair"
    );
}
