//! The domain: values that parse on construction, and the records the pipeline stores. No I/O.

/// An enum stored and logged as its text: `as_str`, `FromStr` (refusing anything else with
/// [`UnknownValue`]) and `Display`, from one list of variants and their texts.
macro_rules! string_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::domain::UnknownValue),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

mod contact;
mod idempotency;
mod lead;
mod notification;
mod stored;
mod suppression;
mod tracking;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use contact::{Contact, Email, EmailError, Phone, PhoneError};
pub use idempotency::{IdempotencyRecord, StoredResponse};
pub use lead::{CrmState, CrmStatus, Lead, LeadId, QuarantineReason, Utm};
pub use notification::{
    Channel, EmailFeedback, HoldReason, Notification, NotificationStatus, Recipient, SuppressReason,
};
pub use stored::{CorruptColumn, StoredLead, StoredNotification, StoredTracking};
pub use suppression::{AddressSuppression, SuppressedAddress};
pub use tracking::{PersonKey, Placement, Tracking, TrackingTouch};

/// Which landing page a lead came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    #[serde(rename = "proftest")]
    ProfTest,
    #[serde(rename = "expresscourse")]
    ExpressCourse,
}

impl Form {
    pub fn as_str(self) -> &'static str {
        match self {
            Form::ProfTest => "proftest",
            Form::ExpressCourse => "expresscourse",
        }
    }
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Form {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "proftest" => Ok(Form::ProfTest),
            "expresscourse" => Ok(Form::ExpressCourse),
            _ => Err(UnknownValue),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown value")]
pub struct UnknownValue;

/// How an ExpressCourse buyer chose to pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentMethod {
    Kaspi,
    Halyk,
    Robokassa,
}

impl PaymentMethod {
    pub const ALL: [PaymentMethod; 3] = [
        PaymentMethod::Kaspi,
        PaymentMethod::Halyk,
        PaymentMethod::Robokassa,
    ];

    /// Case-insensitive, surrounding whitespace ignored.
    pub fn parse(raw: &str) -> Result<Self, UnknownValue> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "kaspi" => Ok(PaymentMethod::Kaspi),
            "halyk" => Ok(PaymentMethod::Halyk),
            "robokassa" => Ok(PaymentMethod::Robokassa),
            _ => Err(UnknownValue),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Kaspi => "kaspi",
            PaymentMethod::Halyk => "halyk",
            PaymentMethod::Robokassa => "robokassa",
        }
    }

    /// How the method is named to a person.
    pub fn display_name(self) -> &'static str {
        match self {
            PaymentMethod::Kaspi => "Kaspi",
            PaymentMethod::Halyk => "Halyk",
            PaymentMethod::Robokassa => "Robokassa",
        }
    }
}

impl fmt::Display for PaymentMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("is empty")]
    Empty,
    #[error("is longer than 64 characters")]
    TooLong,
    #[error("may only contain a-z, 0-9, '_' and '-'")]
    BadCharacters,
}

/// An ad-campaign slug from the page route (`/integrator/proftest/kenesary` → `kenesary`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, SlugError> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err(SlugError::Empty);
        }
        if s.chars().count() > 64 {
            return Err(SlugError::TooLong);
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(SlugError::BadCharacters);
        }
        Ok(Slug(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Attribution of a lead to a campaign: `proftest`, `proftest_{slug}`, `expresscourse`,
/// `expresscourse_{slug}`. Only constructible from a form and an already valid slug.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SourceCampaign(String);

impl SourceCampaign {
    pub fn new(form: Form, slug: Option<&Slug>) -> Self {
        match slug {
            Some(slug) => SourceCampaign(format!("{}_{}", form.as_str(), slug.as_str())),
            None => SourceCampaign(form.as_str().to_owned()),
        }
    }

    /// Re-reads a stored value; anything that is not a form optionally followed by `_slug` is
    /// rejected, so a hand-edited row cannot smuggle in an arbitrary string.
    pub fn from_stored(raw: &str) -> Result<Self, UnknownValue> {
        for form in [Form::ProfTest, Form::ExpressCourse] {
            if raw == form.as_str() {
                return Ok(SourceCampaign::new(form, None));
            }
            if let Some(slug) = raw
                .strip_prefix(form.as_str())
                .and_then(|r| r.strip_prefix('_'))
            {
                let slug = Slug::parse(slug).map_err(|_| UnknownValue)?;
                return Ok(SourceCampaign::new(form, Some(&slug)));
            }
        }
        Err(UnknownValue)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SourceCampaign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("is required")]
    Empty,
    #[error("must be at most 100 characters")]
    TooLong,
    #[error("contains control characters")]
    ControlCharacters,
}

/// A person's name as typed: trimmed, inner whitespace runs collapsed to one space, 1–100 chars.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.is_empty() {
            return Err(NameError::Empty);
        }
        if collapsed.chars().count() > 100 {
            return Err(NameError::TooLong);
        }
        if collapsed.chars().any(char::is_control) {
            return Err(NameError::ControlCharacters);
        }
        Ok(PersonName(collapsed))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first word, for a friendly greeting.
    pub fn first(&self) -> &str {
        self.0.split(' ').next().unwrap_or(&self.0)
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonName({} chars)", self.0.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn payment_method_is_case_insensitive() {
        assert_eq!(PaymentMethod::parse(" KASPI "), Ok(PaymentMethod::Kaspi));
        assert_eq!(PaymentMethod::parse("Halyk"), Ok(PaymentMethod::Halyk));
        assert_eq!(
            PaymentMethod::parse("robokassa"),
            Ok(PaymentMethod::Robokassa)
        );
        assert!(PaymentMethod::parse("cash").is_err());
    }

    #[test]
    fn source_campaign_follows_form_and_slug() {
        let slug = Slug::parse("Kenesary").unwrap();
        assert_eq!(
            SourceCampaign::new(Form::ProfTest, Some(&slug)).as_str(),
            "proftest_kenesary"
        );
        assert_eq!(
            SourceCampaign::new(Form::ProfTest, None).as_str(),
            "proftest"
        );
        assert_eq!(
            SourceCampaign::new(Form::ExpressCourse, None).as_str(),
            "expresscourse"
        );
        assert_eq!(
            SourceCampaign::from_stored("expresscourse_arystan")
                .unwrap()
                .as_str(),
            "expresscourse_arystan"
        );
        assert!(SourceCampaign::from_stored("proftest_Bad Slug").is_err());
        assert!(SourceCampaign::from_stored("other").is_err());
    }

    #[test]
    fn names_are_trimmed_and_collapsed() {
        assert_eq!(
            PersonName::parse("  Айгерим \t\n Касымова ")
                .unwrap()
                .as_str(),
            "Айгерим Касымова"
        );
        assert_eq!(PersonName::parse("   "), Err(NameError::Empty));
        assert_eq!(PersonName::parse(&"а".repeat(101)), Err(NameError::TooLong));
        assert!(PersonName::parse(&"а".repeat(100)).is_ok());
        assert_eq!(
            PersonName::parse("a\u{0}b"),
            Err(NameError::ControlCharacters)
        );
    }

    proptest! {
        #[test]
        fn valid_slugs_round_trip(s in "[a-zA-Z0-9_-]{1,64}") {
            let slug = Slug::parse(&s).unwrap();
            prop_assert_eq!(slug.as_str(), s.to_lowercase());
        }

        #[test]
        fn any_string_parses_as_slug_or_errors(s in "\\PC{0,80}") {
            if let Ok(slug) = Slug::parse(&s) {
                prop_assert!(slug.as_str().len() <= 64);
                prop_assert!(slug.as_str().chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'));
            }
        }

        #[test]
        fn any_string_parses_as_name_or_errors(s in "\\PC{0,120}") {
            if let Ok(n) = PersonName::parse(&s) {
                prop_assert!(!n.as_str().starts_with(' ') && !n.as_str().ends_with(' '));
                prop_assert!(n.as_str().chars().count() <= 100);
            }
        }
    }
}
