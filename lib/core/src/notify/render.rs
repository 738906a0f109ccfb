//! Notification texts: one template set per form (Russian defaults, any of them overridable by
//! a JSON file), rendered with every user-supplied value HTML-escaped in the HTML part and no
//! CR/LF ever reaching the subject header.

use std::collections::BTreeMap;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, context};
use serde::Deserialize;

use crate::domain::{Form, Lead, PaymentMethod};

const PARTS: [&str; 4] = ["sms", "subject", "text", "html"];

const PROFTEST_SMS: &str =
    "{{ name }}, спасибо, что прошли профтест! Подробности отправили на почту.";
const PROFTEST_SUBJECT: &str = "{{ name }}, результаты профтеста";
const PROFTEST_TEXT: &str = "Здравствуйте, {{ name }}!

Спасибо, что прошли профориентационный тест. Консультант свяжется с вами в ближайшее время, чтобы обсудить результаты и подобрать направление обучения.

С уважением,
команда школы";
const PROFTEST_HTML: &str = "<p>Здравствуйте, {{ name }}!</p>
<p>Спасибо, что прошли профориентационный тест. Консультант свяжется с вами в ближайшее время, чтобы обсудить результаты и подобрать направление обучения.</p>
<p>С уважением,<br>команда школы</p>";

// One SMS part (70 Cyrillic characters) with a name of 7 letters and a 30-character link: a
// second part would double what every lead costs.
const EXPRESS_SMS: &str = "{{ name }}, заявка {% if payment_link %}принята. Оплата {{ payment_method }}: {{ payment_link }}{% else %}на экспресс-курс принята.{% endif %}";
const EXPRESS_SUBJECT: &str = "Заявка на экспресс-курс: оплата {{ payment_method }}";
const EXPRESS_TEXT: &str = "Здравствуйте, {{ name }}!

Вы записались на экспресс-курс и выбрали оплату через {{ payment_method }}.{% if payment_link %}
Оплатить можно по ссылке: {{ payment_link }}{% endif %}

Если возникнут вопросы, просто ответьте на это письмо.

С уважением,
команда школы";
const EXPRESS_HTML: &str = "<p>Здравствуйте, {{ name }}!</p>
<p>Вы записались на экспресс-курс и выбрали оплату через {{ payment_method }}.</p>{% if payment_link %}
<p><a href=\"{{ payment_link }}\">Оплатить через {{ payment_method }}</a></p>{% endif %}
<p>Если возникнут вопросы, просто ответьте на это письмо.</p>
<p>С уважением,<br>команда школы</p>";

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("templates are not valid JSON of the form {{\"proftest\": {{\"sms\": …}}}}")]
    Parse(#[source] serde_json::Error),
    #[error(
        "template {name} renders {chars} characters, {segments} SMS parts with sample values; at most {max} (NOTIFY_SMS_MAX_SEGMENTS)"
    )]
    TooLong {
        name: String,
        chars: usize,
        segments: u32,
        max: u32,
    },
    #[error("template {name} is invalid")]
    Invalid {
        name: String,
        #[source]
        source: minijinja::Error,
    },
}

/// Overrides as read from the file: any form, any part, the rest keeps its default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Overrides {
    #[serde(default)]
    proftest: BTreeMap<String, String>,
    #[serde(default)]
    expresscourse: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedSms {
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Templates {
    env: Environment<'static>,
    payment_links: BTreeMap<PaymentMethod, String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

fn template_name(form: Form, part: &str) -> String {
    let ext = if part == "html" { "html" } else { "txt" };
    format!("{}/{part}.{ext}", form.as_str())
}

impl Templates {
    /// The built-in Russian texts.
    pub fn defaults(payment_links: BTreeMap<PaymentMethod, String>) -> Result<Self, TemplateError> {
        Self::build(Overrides::default(), payment_links)
    }

    /// Defaults, with whatever the JSON text `overrides` replaces (the `NOTIFY_TEMPLATES` file).
    pub fn from_json(
        overrides: &str,
        payment_links: BTreeMap<PaymentMethod, String>,
    ) -> Result<Self, TemplateError> {
        let overrides: Overrides = serde_json::from_str(overrides).map_err(TemplateError::Parse)?;
        Self::build(overrides, payment_links)
    }

    fn build(
        overrides: Overrides,
        payment_links: BTreeMap<PaymentMethod, String>,
    ) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_keep_trailing_newline(false);
        let defaults = [
            (
                Form::ProfTest,
                [PROFTEST_SMS, PROFTEST_SUBJECT, PROFTEST_TEXT, PROFTEST_HTML],
            ),
            (
                Form::ExpressCourse,
                [EXPRESS_SMS, EXPRESS_SUBJECT, EXPRESS_TEXT, EXPRESS_HTML],
            ),
        ];
        for (form, sources) in defaults {
            let custom = match form {
                Form::ProfTest => &overrides.proftest,
                Form::ExpressCourse => &overrides.expresscourse,
            };
            if let Some(unknown) = custom.keys().find(|k| !PARTS.contains(&k.as_str())) {
                return Err(TemplateError::Invalid {
                    name: format!("{}/{unknown}", form.as_str()),
                    source: minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        "unknown template part; use sms, subject, text or html",
                    ),
                });
            }
            for (part, default) in PARTS.iter().zip(sources) {
                let name = template_name(form, part);
                let source = custom
                    .get(*part)
                    .cloned()
                    .unwrap_or_else(|| default.to_owned());
                env.add_template_owned(name.clone(), source)
                    .map_err(|source| TemplateError::Invalid { name, source })?;
            }
        }
        let templates = Templates { env, payment_links };
        templates.self_check()?;
        Ok(templates)
    }

    /// Renders every template once with sample values, so a typo in an override stops the
    /// process at start instead of failing every notification ten minutes later.
    fn self_check(&self) -> Result<(), TemplateError> {
        for form in [Form::ProfTest, Form::ExpressCourse] {
            for part in PARTS {
                let name = template_name(form, part);
                self.render_part(
                    form,
                    part,
                    "Айгерим",
                    Some(PaymentMethod::Kaspi),
                    "proftest",
                )
                .map_err(|source| TemplateError::Invalid { name, source })?;
            }
        }
        Ok(())
    }

    /// Refuses an SMS template that renders longer than `max` parts with the sample values
    /// (a 7-letter name, each payment method with its configured link).
    pub fn check_sms_segments(&self, max: u32) -> Result<(), TemplateError> {
        for form in [Form::ProfTest, Form::ExpressCourse] {
            for pm in [
                PaymentMethod::Kaspi,
                PaymentMethod::Halyk,
                PaymentMethod::Robokassa,
            ] {
                let name = template_name(form, "sms");
                let body = self
                    .render_part(form, "sms", "Айгерим", Some(pm), "proftest")
                    .map_err(|source| TemplateError::Invalid {
                        name: name.clone(),
                        source,
                    })?;
                let body = body.trim();
                let segments = super::sms_segments(body);
                if segments > max {
                    return Err(TemplateError::TooLong {
                        name,
                        chars: body.chars().count(),
                        segments,
                        max,
                    });
                }
            }
        }
        Ok(())
    }

    fn render_part(
        &self,
        form: Form,
        part: &str,
        name: &str,
        payment_method: Option<PaymentMethod>,
        source_campaign: &str,
    ) -> Result<String, minijinja::Error> {
        let tmpl = self.env.get_template(&template_name(form, part))?;
        tmpl.render(context! {
            name => name,
            payment_method => payment_method.map(PaymentMethod::display_name).unwrap_or(""),
            payment_link => payment_method.and_then(|pm| self.payment_links.get(&pm)).map(String::as_str).unwrap_or(""),
            source_campaign => source_campaign,
        })
    }

    pub fn sms(&self, lead: &Lead) -> Result<RenderedSms, minijinja::Error> {
        let body = self.render_part(
            lead.form,
            "sms",
            lead.name.first(),
            lead.payment_method,
            lead.source_campaign.as_str(),
        )?;
        Ok(RenderedSms {
            body: body.trim().to_owned(),
        })
    }

    pub fn email(&self, lead: &Lead) -> Result<RenderedEmail, minijinja::Error> {
        let name = lead.name.first();
        let campaign = lead.source_campaign.as_str();
        Ok(RenderedEmail {
            subject: header_safe(&self.render_part(
                lead.form,
                "subject",
                name,
                lead.payment_method,
                campaign,
            )?),
            text: self.render_part(lead.form, "text", name, lead.payment_method, campaign)?,
            html: self.render_part(lead.form, "html", name, lead.payment_method, campaign)?,
        })
    }

    /// [`Templates::email`], with the unsubscribe link at the foot of both parts when there is
    /// one. The code adds it rather than the templates, so an edited template cannot lose it.
    pub fn email_with_footer(
        &self,
        lead: &Lead,
        unsubscribe: Option<&str>,
    ) -> Result<RenderedEmail, minijinja::Error> {
        let mut email = self.email(lead)?;
        if let Some(url) = unsubscribe {
            email.text.push_str(&format!("\n\n--\n{FOOTER_TEXT} {url}"));
            let href = url.replace('&', "&amp;");
            email.html.push_str(&format!(
                "\n<p style=\"font-size:12px;color:#555\">{FOOTER_HTML_BEFORE} <a href=\"{href}\">{FOOTER_HTML_LINK}</a>.</p>"
            ));
        }
        Ok(email)
    }
}

const FOOTER_TEXT: &str = "Чтобы больше не получать писем школы, откройте ссылку:";
const FOOTER_HTML_BEFORE: &str = "Чтобы больше не получать писем школы,";
const FOOTER_HTML_LINK: &str = "отпишитесь";

/// A header value: control characters (CR/LF above all) become spaces, runs of whitespace one
/// space, at most 200 characters.
pub fn header_safe(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Contact, CrmState, CrmStatus, LeadId, SourceCampaign, Utm};

    fn lead(form: Form, name: &str, pm: Option<PaymentMethod>) -> Lead {
        Lead {
            id: LeadId::new(),
            created_at: jiff::Timestamp::UNIX_EPOCH,
            form,
            source_campaign: SourceCampaign::new(form, None),
            name: crate::domain::PersonName::parse(name).unwrap(),
            email: Contact::Absent,
            phone: Contact::Absent,
            payment_method: pm,
            metadata: None,
            utm: Utm::default(),
            referrer: None,
            page_url: None,
            warnings: vec![],
            correlation_id: "c".into(),
            crm: CrmState::new(CrmStatus::Disabled),
            client_ip_hash: None,
            quarantine: None,
        }
    }

    fn links() -> BTreeMap<PaymentMethod, String> {
        BTreeMap::from([(
            PaymentMethod::Kaspi,
            "https://pay.kaspi.kz/pay/abc?x=1&y=2".to_owned(),
        )])
    }

    #[test]
    fn express_course_texts_carry_the_method_and_its_link() {
        let t = Templates::defaults(links()).unwrap();
        let l = lead(
            Form::ExpressCourse,
            "Айгерим Касымова",
            Some(PaymentMethod::Kaspi),
        );
        let sms = t.sms(&l).unwrap();
        assert_eq!(
            sms.body,
            "Айгерим, заявка принята. Оплата Kaspi: https://pay.kaspi.kz/pay/abc?x=1&y=2"
        );
        let email = t.email(&l).unwrap();
        assert_eq!(email.subject, "Заявка на экспресс-курс: оплата Kaspi");
        assert!(email.text.contains("https://pay.kaspi.kz/pay/abc?x=1&y=2"));
        assert!(
            email
                .html
                .contains("href=\"https:&#x2f;&#x2f;pay.kaspi.kz&#x2f;pay&#x2f;abc?x=1&amp;y=2\"")
        );
    }

    #[test]
    fn the_default_sms_texts_fit_one_part_with_a_typical_name_and_link() {
        let mut links = BTreeMap::new();
        links.insert(
            PaymentMethod::Kaspi,
            "https://pay.kaspi.kz/pay/abc123".to_owned(),
        );
        let t = Templates::defaults(links).unwrap();
        t.check_sms_segments(1).unwrap();
        for (form, pm) in [
            (Form::ProfTest, None),
            (Form::ExpressCourse, Some(PaymentMethod::Kaspi)),
            (Form::ExpressCourse, Some(PaymentMethod::Halyk)),
        ] {
            let sms = t.sms(&lead(form, "Айгерим", pm)).unwrap();
            assert_eq!(super::super::sms_segments(&sms.body), 1, "{}", sms.body);
        }
    }

    #[test]
    fn an_sms_template_longer_than_the_limit_is_refused_with_its_length() {
        let text = "{{ name }}, ".to_owned() + &"очень длинный текст ".repeat(8);
        let json = serde_json::json!({"proftest": {"sms": text}}).to_string();
        let t = Templates::from_json(&json, BTreeMap::new()).unwrap();
        let err = t.check_sms_segments(2).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("proftest/sms.txt renders 168 characters, 3 SMS parts"),
            "{msg}"
        );
        t.check_sms_segments(3).unwrap();
    }

    #[test]
    fn a_method_without_a_link_leaves_the_link_out() {
        let t = Templates::defaults(links()).unwrap();
        let sms = t
            .sms(&lead(Form::ExpressCourse, "A", Some(PaymentMethod::Halyk)))
            .unwrap();
        assert_eq!(sms.body, "A, заявка на экспресс-курс принята.");
    }

    #[test]
    fn user_values_are_escaped_in_html_and_never_break_the_subject() {
        let mut overrides = Overrides::default();
        overrides
            .proftest
            .insert("subject".into(), "Hi {{ name }}".into());
        let t = Templates::build(overrides, BTreeMap::new()).unwrap();
        let l = lead(Form::ProfTest, "<script>x</script>\r\nBcc:", None);
        let email = t.email(&l).unwrap();
        assert!(email.html.contains("&lt;script&gt;x&lt;&#x2f;script&gt;"));
        assert!(!email.html.contains("<script>"));
        assert!(!email.subject.contains(['\r', '\n']));
        assert_eq!(header_safe("a\r\nBcc: b\u{0}c"), "a Bcc: b c");
    }

    #[test]
    fn overrides_replace_only_the_parts_they_name_and_typos_fail_at_load() {
        let mut overrides = Overrides::default();
        overrides
            .proftest
            .insert("sms".into(), "Привет, {{ name }}!".into());
        let t = Templates::build(overrides, BTreeMap::new()).unwrap();
        let l = lead(Form::ProfTest, "Айгерим", None);
        assert_eq!(t.sms(&l).unwrap().body, "Привет, Айгерим!");
        assert!(
            t.email(&l)
                .unwrap()
                .text
                .starts_with("Здравствуйте, Айгерим!")
        );

        let mut typo = Overrides::default();
        typo.proftest
            .insert("sms".into(), "Привет, {{ nmae }}!".into());
        assert!(matches!(
            Templates::build(typo, BTreeMap::new()),
            Err(TemplateError::Invalid { .. })
        ));
        let mut unknown_part = Overrides::default();
        unknown_part.proftest.insert("smss".into(), "x".into());
        assert!(Templates::build(unknown_part, BTreeMap::new()).is_err());
    }

    #[test]
    fn override_json_is_read_and_broken_json_is_refused() {
        let t = Templates::from_json(
            r#"{"expresscourse": {"sms": "Оплата: {{ payment_method }}"}}"#,
            BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(
            t.sms(&lead(Form::ExpressCourse, "A", Some(PaymentMethod::Halyk)))
                .unwrap()
                .body,
            "Оплата: Halyk"
        );
        assert!(matches!(
            Templates::from_json("{", BTreeMap::new()),
            Err(TemplateError::Parse(_))
        ));
    }
}
