//! Contact details that parse on construction: a `Phone` is always E.164, an `Email` is always
//! syntactically valid with a lower-cased domain. Their `Debug`/`Display` never print the full
//! value, so a stray `?phone` in a log line cannot leak PII.

use std::fmt;
use std::sync::LazyLock;

use phonenumber::country::Id as Country;
use phonenumber::metadata::Database;

/// Longest raw phone input we even try to parse; anything longer is garbage.
const MAX_RAW_PHONE: usize = 32;
const MAX_EMAIL: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("is empty")]
    Empty,
    #[error("contains characters that are not part of a phone number")]
    BadCharacters,
    #[error("is not a valid phone number")]
    Invalid,
}

/// A phone number normalised to E.164 (`+77771234567`). Kazakhstan is the default region, so
/// `8 777 123 45 67`, `+7 (777) 123-45-67` and `7771234567` all become `+77771234567`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(PhoneError::Empty);
        }
        // phonenumber is a port of libphonenumber and tolerates a lot, but we only hand it input
        // that looks like a phone number at all: this keeps pathological strings (and their cost)
        // out of the parser and lets the property tests prove that garbage never panics.
        if raw.chars().count() > MAX_RAW_PHONE
            || !raw
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | '(' | ')' | '-' | '.' | ' '))
        {
            return Err(PhoneError::BadCharacters);
        }
        let digits = raw.chars().filter(char::is_ascii_digit).count();
        if !(7..=15).contains(&digits) || raw.rfind('+').is_some_and(|i| i != 0) {
            return Err(PhoneError::Invalid);
        }
        // The Rust port of libphonenumber reads a bare ten-digit national number starting with 7
        // (`7771234567`) as country code 7 plus nine digits, which is invalid; the C++/Java
        // library would retry it as a national number. Do that retry ourselves.
        let national_retry = (digits == 10 && !raw.starts_with(['+', '8'])).then(|| {
            format!(
                "+7{}",
                raw.chars().filter(char::is_ascii_digit).collect::<String>()
            )
        });
        let in_database = |database: &Database| {
            parse_with(database, raw).or_else(|| {
                national_retry
                    .as_deref()
                    .and_then(|r| parse_with(database, r))
            })
        };
        // The +7 metadata answers first and the full database only what it cannot call valid.
        // That gives the full database's own answer: input it reads as a +7 number consults only
        // the KZ and RU metadata, identical in both, and an international prefix followed by
        // another country's code is an error in the small one (both tested against the full
        // database alone).
        let parsed = CODE_7
            .as_ref()
            .and_then(in_database)
            .or_else(|| in_database(&phonenumber::metadata::DATABASE));
        parsed.map(Phone).ok_or(PhoneError::Invalid)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last ten digits: what AmoCRM's fuzzy search matches reliably (`+7…` and `8…` differ).
    pub fn last10(&self) -> &str {
        let start = self.0.len().saturating_sub(10);
        self.0.get(start..).unwrap_or(&self.0)
    }

    pub fn masked(&self) -> String {
        crate::mask::phone(&self.0)
    }
}

/// The metadata of calling code 7 (KZ and RU) alone. Loading phonenumber's full database checks
/// the syntax of every region's patterns, ~65 ms of CPU on the first parse — the whole cold-start
/// budget of an intake Lambda — while nearly every lead is a +7 number. This one loads in ~1 ms.
/// `None` only if the embedded file were broken, which a test rules out; then every number takes
/// the full database.
static CODE_7: LazyLock<Option<Database>> =
    LazyLock::new(|| Database::parse(include_str!("../../data/phone-metadata-code7.xml")).ok());

fn parse_with(database: &Database, raw: &str) -> Option<String> {
    let number = phonenumber::parse_with(database, Some(Country::KZ), raw).ok()?;
    // E.164 is `+`, the calling code and the national number, exactly what phonenumber's E.164
    // formatter writes; its formatter also loads the full database, so it is not used here.
    phonenumber::is_valid_with(database, &number)
        .then(|| format!("+{}{}", number.code().value(), number.national()))
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("is empty")]
    Empty,
    #[error("is too long")]
    TooLong,
    #[error("is not a valid email address")]
    Invalid,
}

/// A syntactically valid email address, trimmed, with the domain lower-cased (the local part is
/// case-sensitive in theory, so it is kept as typed).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(EmailError::Empty);
        }
        if raw.len() > MAX_EMAIL {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = raw.rsplit_once('@').ok_or(EmailError::Invalid)?;
        // email_address accepts quoted local parts and IP literals; neither belongs in a lead
        // form, and both make headers and CRM matching harder.
        // email_address also accepts a display-name form (`Shop <a@b.kz>`); an address that goes
        // into an email header must be the bare address.
        if local.starts_with('"')
            || domain.starts_with('[')
            || !domain.contains('.')
            || raw
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\\\"".contains(c))
        {
            return Err(EmailError::Invalid);
        }
        let normalised = format!("{local}@{}", domain.to_ascii_lowercase());
        if !email_address::EmailAddress::is_valid(&normalised) {
            return Err(EmailError::Invalid);
        }
        Ok(Email(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key used to match people: addresses are compared case-insensitively in practice.
    pub fn match_key(&self) -> String {
        self.0.to_lowercase()
    }

    pub fn masked(&self) -> String {
        crate::mask::email(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.masked())
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// A contact channel as submitted: usable, present but unusable (kept raw with a warning, so a
/// lead is never refused while one channel works), or not given.
#[derive(Clone, PartialEq, Eq)]
pub enum Contact<T> {
    Valid(T),
    Invalid(String),
    Absent,
}

impl<T> Contact<T> {
    pub fn valid(&self) -> Option<&T> {
        match self {
            Contact::Valid(v) => Some(v),
            _ => None,
        }
    }

    pub fn is_valid(&self) -> bool {
        matches!(self, Contact::Valid(_))
    }
}

impl<T: fmt::Debug> fmt::Debug for Contact<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contact::Valid(v) => write!(f, "Valid({v:?})"),
            Contact::Invalid(raw) => write!(f, "Invalid({} chars)", raw.chars().count()),
            Contact::Absent => f.write_str("Absent"),
        }
    }
}

impl Contact<Phone> {
    /// Re-reads a stored value: a stored E.164 parses back as valid, a stored raw value as invalid.
    pub fn from_stored(raw: Option<&str>) -> Self {
        match raw {
            None => Contact::Absent,
            Some(s) => match Phone::parse(s) {
                Ok(p) => Contact::Valid(p),
                Err(_) => Contact::Invalid(s.to_owned()),
            },
        }
    }

    pub fn stored(&self) -> Option<&str> {
        match self {
            Contact::Valid(p) => Some(p.as_str()),
            Contact::Invalid(raw) => Some(raw),
            Contact::Absent => None,
        }
    }
}

impl Contact<Email> {
    pub fn from_stored(raw: Option<&str>) -> Self {
        match raw {
            None => Contact::Absent,
            Some(s) => match Email::parse(s) {
                Ok(e) => Contact::Valid(e),
                Err(_) => Contact::Invalid(s.to_owned()),
            },
        }
    }

    pub fn stored(&self) -> Option<&str> {
        match self {
            Contact::Valid(e) => Some(e.as_str()),
            Contact::Invalid(raw) => Some(raw),
            Contact::Absent => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_documented_kz_format_normalises_to_e164() {
        for raw in [
            "8 777 123 45 67",
            "+7 (777) 123-45-67",
            "7771234567",
            "87771234567",
            "+77771234567",
            "8(777)1234567",
            "  +7 777 123 4567  ",
            "8-777-123-45-67",
            "+7.777.123.45.67",
            "77771234567",
        ] {
            assert_eq!(
                Phone::parse(raw).map(|p| p.as_str().to_owned()),
                Ok("+77771234567".to_owned()),
                "{raw}"
            );
        }
    }

    #[test]
    fn almaty_landline_and_russian_mobile_are_valid_too() {
        assert_eq!(
            Phone::parse("8 727 250 00 00").unwrap().as_str(),
            "+77272500000"
        );
        assert_eq!(
            Phone::parse("+7 916 123-45-67").unwrap().as_str(),
            "+79161234567"
        );
    }

    #[test]
    fn junk_phones_are_rejected_with_a_reason() {
        assert_eq!(Phone::parse(""), Err(PhoneError::Empty));
        assert_eq!(Phone::parse("call me"), Err(PhoneError::BadCharacters));
        assert_eq!(Phone::parse("12345"), Err(PhoneError::Invalid));
        assert_eq!(Phone::parse("+7 777 12+3"), Err(PhoneError::Invalid));
        assert_eq!(Phone::parse("8 000 000 00 00"), Err(PhoneError::Invalid));
    }

    #[test]
    fn phone_debug_and_display_are_masked() {
        let p = Phone::parse("+77771234567").unwrap();
        assert_eq!(format!("{p}"), "+7******4567");
        assert_eq!(format!("{p:?}"), "Phone(+7******4567)");
        assert_eq!(p.last10(), "7771234567");
    }

    #[test]
    fn email_is_trimmed_and_its_domain_lower_cased() {
        let e = Email::parse("  Aigerim.K@Mail.KZ ").unwrap();
        assert_eq!(e.as_str(), "Aigerim.K@mail.kz");
        assert_eq!(e.match_key(), "aigerim.k@mail.kz");
        assert_eq!(format!("{e}"), "A***@mail.kz");
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for raw in [
            "",
            "no-at-sign",
            "a@b",
            "a@@b.kz",
            "@mail.kz",
            "a@mail.kz\r\nBcc: x@y.kz",
            "\"quoted\"@mail.kz",
            "a@[127.0.0.1]",
            "a b@mail.kz",
            "Shop <a@mail.kz>",
            "<a@mail.kz>",
            "a,b@mail.kz",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} should be rejected");
        }
    }

    #[test]
    fn stored_contacts_read_back_as_what_they_were() {
        let p = Contact::<Phone>::from_stored(Some("+77771234567"));
        assert!(p.is_valid());
        let bad = Contact::<Phone>::from_stored(Some("123"));
        assert_eq!(bad.stored(), Some("123"));
        assert!(!bad.is_valid());
        assert_eq!(Contact::<Email>::from_stored(None), Contact::Absent);
    }

    /// What `Phone::parse` answered before the +7 fast path: the full database alone, formatted
    /// by phonenumber's own E.164 formatter. The fast path must never answer differently.
    fn full_database_only(raw: &str) -> Option<String> {
        let db = &*phonenumber::metadata::DATABASE;
        let valid = |s: &str| {
            phonenumber::parse_with(db, Some(Country::KZ), s)
                .ok()
                .filter(|n| phonenumber::is_valid_with(db, n))
        };
        let raw = raw.trim();
        let digits = raw.chars().filter(char::is_ascii_digit).count();
        valid(raw)
            .or_else(|| {
                (digits == 10 && !raw.starts_with(['+', '8']))
                    .then(|| {
                        valid(&format!(
                            "+7{}",
                            raw.chars().filter(char::is_ascii_digit).collect::<String>()
                        ))
                    })
                    .flatten()
            })
            .map(|n| n.format().mode(phonenumber::Mode::E164).to_string())
    }

    #[test]
    fn code_7_metadata_is_the_full_databases_kz_and_ru() {
        let code7 = CODE_7.as_ref().expect("the embedded +7 metadata parses");
        let full = &*phonenumber::metadata::DATABASE;
        for id in ["KZ", "RU"] {
            let (small, full) = (code7.by_id(id), full.by_id(id));
            assert!(small.is_some(), "{id} is in the embedded metadata");
            // Metadata has no PartialEq; its Debug prints every pattern, format and prefix.
            assert_eq!(
                format!("{small:?}"),
                format!("{full:?}"),
                "{id} metadata differs"
            );
        }
        assert_eq!(code7.by_code(&7).map(|m| m.len()), Some(2));
    }

    #[test]
    fn numbers_of_other_countries_still_normalise_through_the_full_database() {
        for (raw, e164) in [
            ("+49 30 12345678", "+493012345678"),
            ("+998 90 123 45 67", "+998901234567"),
            ("+996 700 123 456", "+996700123456"),
            ("810 49 30 12345678", "+493012345678"),
            ("+1 (212) 555-0123", "+12125550123"),
        ] {
            assert_eq!(Phone::parse(raw).map(|p| p.0), Ok(e164.to_owned()), "{raw}");
            assert_eq!(full_database_only(raw).as_deref(), Some(e164), "{raw}");
        }
    }

    proptest! {
        #[test]
        fn any_string_parses_as_phone_or_errors_without_panicking(s in "\\PC{0,64}") {
            let _ = Phone::parse(&s);
        }

        #[test]
        fn phone_like_strings_never_panic(s in "[0-9+() .-]{0,40}") {
            if let Ok(p) = Phone::parse(&s) {
                prop_assert!(p.as_str().starts_with('+'));
                prop_assert!(p.as_str()[1..].chars().all(|c| c.is_ascii_digit()));
                // Normalising is idempotent.
                prop_assert_eq!(Phone::parse(p.as_str()).unwrap(), p);
            }
        }

        #[test]
        fn the_fast_path_answers_exactly_as_the_full_database(
            prefix in prop::sample::select(vec![
                "", "+", "+7", "7", "8", "+7 ", "8 ", "810", "8 10 ", "00", "+8", "+49", "+998", "+996", "+1",
            ]),
            // Ten-digit national numbers are what KZ and RU metadata decide about, so they are
            // generated often enough to hit every operator range, valid or not.
            body in prop_oneof!["[0-9]{4,13}", "[3-9][0-9]{9}", "7[0-9]{9}"],
            spaced in any::<bool>(),
        ) {
            let body = if spaced {
                body.as_bytes()
                    .chunks(3)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                body
            };
            let raw = format!("{prefix}{body}");
            let expected = full_database_only(&raw);
            let got = Phone::parse(&raw).ok().map(|p| p.0);
            // The pre-filter (length, characters) refuses some inputs the library would take;
            // beyond that the two must agree.
            if got.is_some() || (7..=15).contains(&raw.chars().filter(char::is_ascii_digit).count()) {
                prop_assert_eq!(got, expected, "input {:?}", raw);
            }
        }

        #[test]
        fn every_kz_mobile_in_every_format_normalises_identically(
            op in prop::sample::select(vec!["700", "701", "702", "705", "707", "708", "747", "771", "775", "776", "777", "778"]),
            rest in "[0-9]{7}",
            style in 0usize..6,
        ) {
            let (a, b, c) = (&rest[0..3], &rest[3..5], &rest[5..7]);
            let raw = match style {
                0 => format!("8 {op} {a} {b} {c}"),
                1 => format!("+7 ({op}) {a}-{b}-{c}"),
                2 => format!("{op}{rest}"),
                3 => format!("8{op}{rest}"),
                4 => format!("+7{op}{rest}"),
                _ => format!("8-{op}-{a}-{b}-{c}"),
            };
            let expected = format!("+7{op}{rest}");
            prop_assert_eq!(Phone::parse(&raw).map(|p| p.as_str().to_owned()), Ok(expected));
        }

        #[test]
        fn any_string_parses_as_email_or_errors_without_panicking(s in "\\PC{0,300}") {
            if let Ok(e) = Email::parse(&s) {
                prop_assert!(!e.as_str().contains(['\r', '\n']));
                prop_assert_eq!(Email::parse(e.as_str()).unwrap(), e);
            }
        }

        #[test]
        fn generated_addresses_are_accepted(local in "[a-z0-9._%+-]{1,20}", domain in "[a-z0-9-]{1,20}", tld in "[a-z]{2,6}") {
            prop_assume!(!local.starts_with('.') && !local.ends_with('.') && !local.contains(".."));
            prop_assume!(!domain.starts_with('-') && !domain.ends_with('-'));
            let raw = format!("{local}@{}.{}", domain.to_uppercase(), tld);
            let e = Email::parse(&raw).unwrap();
            prop_assert_eq!(e.as_str(), format!("{local}@{domain}.{tld}"));
        }
    }
}
