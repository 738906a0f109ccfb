//! Masks for values that must never reach a log whole (docs/architecture.md §7.8): `+7******4567`,
//! `a***@example.kz`.

/// Keeps the first two and the last four characters of a phone number.
pub fn phone(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len());
    }
    let head: String = chars.iter().take(2).collect();
    let tail: String = chars.iter().skip(chars.len() - 4).collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 6))
}

/// Keeps the first character of the local part and the whole domain.
pub fn email(raw: &str) -> String {
    match raw.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_keep_country_prefix_and_last_four() {
        assert_eq!(phone("+77771234567"), "+7******4567");
        assert_eq!(phone("12345"), "*****");
    }

    #[test]
    fn emails_keep_first_letter_and_domain() {
        assert_eq!(email("aigerim@example.kz"), "a***@example.kz");
        assert_eq!(email("garbage"), "***");
    }
}
