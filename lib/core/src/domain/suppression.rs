//! Addresses no email may go to any more: the person unsubscribed, or the address bounced hard
//! or complained (SES would suspend a sender that keeps mailing them).

use jiff::Timestamp;

use super::Email;

string_enum! {
    /// Why an address is on the suppression list.
    pub enum AddressSuppression {
        /// The person used the one-click unsubscribe link (RFC 8058).
        Unsubscribed = "unsubscribed",
        /// A permanent bounce: the address does not exist.
        Bounced = "bounced",
        /// The person marked an email as spam.
        Complained = "complained",
    }
}

/// An entry of the suppression list. The first reason stays: an address that unsubscribed and
/// later bounces is still listed as unsubscribed, which is what the person did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressedAddress {
    pub email: Email,
    pub reason: AddressSuppression,
    pub at: Timestamp,
}
