//! The merge policy (docs/architecture.md §6, steps 1–3) as one pure function: given a lead and
//! what AmoCRM returned for its person, decide whether to create a deal, move an existing one,
//! or only annotate it. No I/O; the client fetches, calls [`decide`], and executes the [`Action`].
//!
//! Facts this relies on (`docs/amocrm.md`):
//! * contact search (`query=`) is fuzzy, so every hit is re-checked against its own PHONE/EMAIL
//!   values (§0.2, §3.2);
//! * 142 (won) and 143 (lost) exist in every pipeline, so a stage is only meaningful together
//!   with its `pipeline_id` (§0.8, §4.3, §9);
//! * a deal is open when its status is neither 142 nor 143 and it has no `closed_at` (§4.2).

use super::model::{CrmContact, CrmDeal};
#[cfg(test)]
use super::model::{STATUS_LOST, STATUS_WON};
use crate::domain::{Email, Form, PaymentMethod, Phone};

/// Where deals go: configuration, not code (`AMOCRM_PIPELINE_ID` and the stage per payment
/// method / for proftest). A stage left unset means "no stage for this": a new deal lands in the
/// pipeline's first stage, an existing deal is only annotated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmSettings {
    pub pipeline_id: i64,
    pub stage_kaspi: Option<i64>,
    pub stage_halyk: Option<i64>,
    pub stage_robokassa: Option<i64>,
    pub stage_proftest: Option<i64>,
}

impl CrmSettings {
    /// The stage a purchase with this payment method moves a deal to.
    pub fn stage_for(&self, method: PaymentMethod) -> Option<i64> {
        match method {
            PaymentMethod::Kaspi => self.stage_kaspi,
            PaymentMethod::Halyk => self.stage_halyk,
            PaymentMethod::Robokassa => self.stage_robokassa,
        }
    }

    /// Every configured payment stage, in `PaymentMethod::ALL` order, without repeats.
    pub fn payment_stages(&self) -> Vec<i64> {
        let mut stages = Vec::with_capacity(PaymentMethod::ALL.len());
        for stage in PaymentMethod::ALL.iter().filter_map(|m| self.stage_for(*m)) {
            if !stages.contains(&stage) {
                stages.push(stage);
            }
        }
        stages
    }

    pub fn is_payment_stage(&self, status_id: i64) -> bool {
        PaymentMethod::ALL
            .iter()
            .any(|m| self.stage_for(*m) == Some(status_id))
    }

    /// The stage a *new* deal for this submission starts in (`None` = the pipeline's first stage).
    pub fn stage_for_submission(&self, form: Form, method: Option<PaymentMethod>) -> Option<i64> {
        match form {
            Form::ProfTest => self.stage_proftest,
            Form::ExpressCourse => method.and_then(|m| self.stage_for(m)),
        }
    }
}

/// Everything [`decide`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct PolicyInput<'a> {
    pub form: Form,
    pub payment_method: Option<PaymentMethod>,
    pub phone: Option<&'a Phone>,
    pub email: Option<&'a Email>,
    /// The deal `unified_lead_tracking` remembers for this person.
    pub tracked_deal_id: Option<i64>,
    /// The contact `unified_lead_tracking` remembers for this person: trusted even when the
    /// search (whose index lags behind writes) does not return it yet.
    pub tracked_contact_id: Option<i64>,
    /// Raw search hits (by phone, then by email; repeats allowed). Fuzzy: re-checked here.
    pub contacts: &'a [CrmContact],
    /// Details of the hits' deals and of the tracked deal. A deal whose details are missing
    /// cannot be judged open or closed and is not a candidate.
    pub deals: &'a [CrmDeal],
    pub source_campaign: &'a str,
    pub settings: &'a CrmSettings,
}

/// What to do in AmoCRM for one lead. Tags are to be *appended* (`tags_to_add`), never set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    CreateDeal {
        /// The existing contact to link the deal to; `None`: a new contact made from the lead
        /// (`leads/complex` with an embedded contact).
        existing_contact: Option<i64>,
        pipeline_id: i64,
        /// `None`: the pipeline's first stage.
        status_id: Option<i64>,
        tags: Vec<String>,
    },
    /// `PATCH` the deal's stage; `pipeline_id` always goes with `status_id`.
    MoveDeal {
        deal_id: i64,
        pipeline_id: i64,
        status_id: i64,
        tags: Vec<String>,
    },
    /// Leave the stage alone; add tags and a note.
    Annotate { deal_id: i64, tags: Vec<String> },
}

impl Action {
    pub fn tags(&self) -> &[String] {
        match self {
            Action::CreateDeal { tags, .. }
            | Action::MoveDeal { tags, .. }
            | Action::Annotate { tags, .. } => tags,
        }
    }

    /// The existing deal acted on; `None` for a creation.
    pub fn deal_id(&self) -> Option<i64> {
        match self {
            Action::CreateDeal { .. } => None,
            Action::MoveDeal { deal_id, .. } | Action::Annotate { deal_id, .. } => Some(*deal_id),
        }
    }
}

/// The last (up to) ten digits of a string, everything that is not an ASCII digit dropped.
fn last10_digits(s: &str) -> String {
    let digits: Vec<char> = s.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len().saturating_sub(10)..].iter().collect()
}

/// A stored PHONE value is this phone: digits only, last ten compared, so `8 777 123 45 67`,
/// `+7 777 123-45-67` and `7 (777) 1234567` all match `+77771234567`.
pub(crate) fn phone_matches(raw: &str, phone: &Phone) -> bool {
    let want = last10_digits(phone.as_str());
    !want.is_empty() && last10_digits(raw) == want
}

/// A stored EMAIL value is this address: trimmed, compared case-insensitively.
pub(crate) fn email_matches(raw: &str, email: &Email) -> bool {
    raw.trim().to_lowercase() == email.match_key()
}

/// One of the contact's PHONE values is the lead's phone, or one of its EMAIL values the lead's
/// email. Other fields never count: the search may have found the digits anywhere.
pub(crate) fn contact_matches(
    contact: &CrmContact,
    phone: Option<&Phone>,
    email: Option<&Email>,
) -> bool {
    phone.is_some_and(|p| contact.phones.iter().any(|raw| phone_matches(raw, p)))
        || email.is_some_and(|e| contact.emails.iter().any(|raw| email_matches(raw, e)))
}

/// The search hits that really are this person (or are the tracked contact), each once, in the
/// order they were given.
pub(crate) fn matching_contacts<'c>(
    contacts: &'c [CrmContact],
    phone: Option<&Phone>,
    email: Option<&Email>,
    tracked_contact_id: Option<i64>,
) -> Vec<&'c CrmContact> {
    let mut out: Vec<&CrmContact> = Vec::new();
    for c in contacts {
        let is_person = tracked_contact_id == Some(c.id) || contact_matches(c, phone, email);
        if is_person && !out.iter().any(|seen| seen.id == c.id) {
            out.push(c);
        }
    }
    out
}

fn matching<'a>(input: &PolicyInput<'a>) -> Vec<&'a CrmContact> {
    matching_contacts(
        input.contacts,
        input.phone,
        input.email,
        input.tracked_contact_id,
    )
}

fn candidate_among<'a>(input: &PolicyInput<'a>, people: &[&CrmContact]) -> Option<&'a CrmDeal> {
    let settings = input.settings;
    let belongs_to_person = |d: &CrmDeal| {
        input.tracked_deal_id == Some(d.id)
            || people.iter().any(|c| c.lead_ids.contains(&d.id))
            || d.contact_ids.iter().any(|id| {
                input.tracked_contact_id == Some(*id) || people.iter().any(|c| c.id == *id)
            })
    };
    input
        .deals
        .iter()
        .filter(|d| d.pipeline_id == settings.pipeline_id)
        .filter(|d| d.is_open() || settings.is_payment_stage(d.status_id))
        .filter(|d| belongs_to_person(d))
        .max_by_key(|d| (d.updated_at, d.id))
}

/// The deal this lead merges into: a deal of a matching contact (or the tracked deal) in the
/// configured pipeline that is open or sits in a configured payment stage; the most recently
/// updated wins, a tie goes to the higher id.
#[cfg(test)]
pub(crate) fn candidate_deal<'a>(input: &PolicyInput<'a>) -> Option<&'a CrmDeal> {
    candidate_among(input, &matching(input))
}

fn best_among(input: &PolicyInput<'_>, people: &[&CrmContact]) -> Option<i64> {
    input.tracked_contact_id.or_else(|| {
        people
            .iter()
            .max_by_key(|c| (c.updated_at, c.id))
            .map(|c| c.id)
    })
}

/// `form`, source campaign and (ExpressCourse only) payment method: trimmed, empties dropped,
/// each once (case-insensitively), first occurrence kept.
fn tags_for(input: &PolicyInput<'_>) -> Vec<String> {
    let method = match input.form {
        Form::ExpressCourse => input.payment_method.map(PaymentMethod::as_str),
        Form::ProfTest => None,
    };
    let mut tags: Vec<String> = Vec::with_capacity(3);
    for tag in [
        Some(input.form.as_str()),
        Some(input.source_campaign),
        method,
    ]
    .into_iter()
    .flatten()
    .map(str::trim)
    {
        if !tag.is_empty() && !tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
            tags.push(tag.to_owned());
        }
    }
    tags
}

/// The merge policy. See the module docs and docs/architecture.md §6.
pub fn decide(input: &PolicyInput<'_>) -> Action {
    let settings = input.settings;
    let people = matching(input);
    let tags = tags_for(input);
    match (candidate_among(input, &people), input.form) {
        (Some(deal), Form::ExpressCourse) => {
            match input.payment_method.and_then(|m| settings.stage_for(m)) {
                Some(status_id) => Action::MoveDeal {
                    deal_id: deal.id,
                    pipeline_id: settings.pipeline_id,
                    status_id,
                    tags,
                },
                None => Action::Annotate {
                    deal_id: deal.id,
                    tags,
                },
            }
        }
        (Some(deal), Form::ProfTest) => Action::Annotate {
            deal_id: deal.id,
            tags,
        },
        (None, form) => Action::CreateDeal {
            existing_contact: best_among(input, &people),
            pipeline_id: settings.pipeline_id,
            status_id: settings.stage_for_submission(form, input.payment_method),
            tags,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PIPE: i64 = 10350882;
    const OTHER_PIPE: i64 = 9000001;
    /// An ordinary open stage of `PIPE`.
    const OPEN: i64 = 61000010;
    const PHONE: &str = "+77771234567";
    const EMAIL: &str = "aigerim@mail.kz";

    /// The seed config: kaspi→142 (won), halyk→143 (lost), robokassa→144.
    fn seed() -> CrmSettings {
        CrmSettings {
            pipeline_id: PIPE,
            stage_kaspi: Some(142),
            stage_halyk: Some(143),
            stage_robokassa: Some(144),
            stage_proftest: None,
        }
    }

    /// A sane account: payment stages are ordinary account-specific stages, 142/143 unmapped.
    fn sane() -> CrmSettings {
        CrmSettings {
            pipeline_id: PIPE,
            stage_kaspi: Some(61000001),
            stage_halyk: Some(61000002),
            stage_robokassa: Some(61000003),
            stage_proftest: None,
        }
    }

    fn contact(
        id: i64,
        phones: &[&str],
        emails: &[&str],
        lead_ids: &[i64],
        updated_at: i64,
    ) -> CrmContact {
        CrmContact {
            id,
            name: format!("contact {id}"),
            phones: phones.iter().map(|s| (*s).to_owned()).collect(),
            emails: emails.iter().map(|s| (*s).to_owned()).collect(),
            lead_ids: lead_ids.to_vec(),
            updated_at,
        }
    }

    /// The person, found by phone, owning `lead_ids`.
    fn person(id: i64, lead_ids: &[i64]) -> CrmContact {
        contact(id, &["+7 777 123 45 67"], &[], lead_ids, 1_000)
    }

    fn deal(id: i64, pipeline_id: i64, status_id: i64, updated_at: i64) -> CrmDeal {
        let closed = status_id == STATUS_WON || status_id == STATUS_LOST;
        CrmDeal {
            id,
            pipeline_id,
            status_id,
            updated_at,
            closed_at: closed.then_some(updated_at),
            contact_ids: Vec::new(),
        }
    }

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| (*s).to_owned()).collect()
    }

    fn create(existing_contact: Option<i64>, status_id: Option<i64>, t: &[&str]) -> Action {
        Action::CreateDeal {
            existing_contact,
            pipeline_id: PIPE,
            status_id,
            tags: tags(t),
        }
    }

    fn move_to(deal_id: i64, status_id: i64, t: &[&str]) -> Action {
        Action::MoveDeal {
            deal_id,
            pipeline_id: PIPE,
            status_id,
            tags: tags(t),
        }
    }

    fn annotate(deal_id: i64, t: &[&str]) -> Action {
        Action::Annotate {
            deal_id,
            tags: tags(t),
        }
    }

    const EC_KASPI: &[&str] = &["expresscourse", "expresscourse_kenesary", "kaspi"];
    const PT: &[&str] = &["proftest", "proftest_kenesary"];

    struct Case {
        name: &'static str,
        form: Form,
        payment_method: Option<PaymentMethod>,
        phone: Option<&'static str>,
        email: Option<&'static str>,
        tracked_deal_id: Option<i64>,
        tracked_contact_id: Option<i64>,
        contacts: Vec<CrmContact>,
        deals: Vec<CrmDeal>,
        source_campaign: &'static str,
        settings: CrmSettings,
        want: Action,
    }

    /// ExpressCourse paid with Kaspi, phone and email given, nothing in the CRM, seed config.
    fn base() -> Case {
        Case {
            name: "",
            form: Form::ExpressCourse,
            payment_method: Some(PaymentMethod::Kaspi),
            phone: Some(PHONE),
            email: Some(EMAIL),
            tracked_deal_id: None,
            tracked_contact_id: None,
            contacts: Vec::new(),
            deals: Vec::new(),
            source_campaign: "expresscourse_kenesary",
            settings: seed(),
            want: create(None, Some(142), EC_KASPI),
        }
    }

    fn proftest() -> Case {
        Case {
            form: Form::ProfTest,
            payment_method: None,
            source_campaign: "proftest_kenesary",
            ..base()
        }
    }

    fn cases() -> Vec<Case> {
        vec![
            Case {
                name: "new person (no hits), express course: create with a new contact in the kaspi stage",
                ..base()
            },
            Case {
                name: "new person (no hits), proftest: create with a new contact in the first stage",
                want: create(None, None, PT),
                ..proftest()
            },
            Case {
                name: "new person, proftest with a configured proftest stage: create in that stage",
                settings: CrmSettings {
                    stage_proftest: Some(61000009),
                    ..seed()
                },
                want: create(None, Some(61000009), PT),
                ..proftest()
            },
            Case {
                name: "known contact whose deals are in another pipeline or closed-lost outside the configured stages: create with that contact",
                contacts: vec![person(10, &[1, 2])],
                deals: vec![
                    deal(1, OTHER_PIPE, OPEN, 500),
                    deal(2, PIPE, STATUS_LOST, 400),
                ],
                settings: sane(),
                want: create(Some(10), Some(61000001), EC_KASPI),
                ..base()
            },
            Case {
                name: "open deal + express course kaspi: move to the kaspi stage with pipeline_id",
                contacts: vec![person(10, &[1])],
                deals: vec![deal(1, PIPE, OPEN, 500)],
                want: move_to(1, 142, EC_KASPI),
                ..base()
            },
            Case {
                name: "open deal + express course halyk: move to the halyk stage with pipeline_id",
                payment_method: Some(PaymentMethod::Halyk),
                contacts: vec![person(10, &[1])],
                deals: vec![deal(1, PIPE, OPEN, 500)],
                want: move_to(
                    1,
                    143,
                    &["expresscourse", "expresscourse_kenesary", "halyk"],
                ),
                ..base()
            },
            Case {
                name: "open deal + express course robokassa: move to the robokassa stage with pipeline_id",
                payment_method: Some(PaymentMethod::Robokassa),
                contacts: vec![person(10, &[1])],
                deals: vec![deal(1, PIPE, OPEN, 500)],
                want: move_to(
                    1,
                    144,
                    &["expresscourse", "expresscourse_kenesary", "robokassa"],
                ),
                ..base()
            },
            Case {
                name: "open deal + proftest: annotate only, the stage never moves",
                contacts: vec![person(10, &[1])],
                deals: vec![deal(1, PIPE, OPEN, 500)],
                settings: CrmSettings {
                    stage_proftest: Some(61000009),
                    ..seed()
                },
                want: annotate(1, PT),
                ..proftest()
            },
            Case {
                name: "closed-won deal outside the configured stages: new deal for the same contact",
                contacts: vec![person(10, &[1])],
                deals: vec![deal(1, PIPE, STATUS_WON, 500)],
                settings: sane(),
                want: create(Some(10), Some(61000001), EC_KASPI),
                ..base()
            },
            Case {
                name: "deal with closed_at in an ordinary stage is not open: new deal for the same contact",
                contacts: vec![person(10, &[1])],
                deals: vec![CrmDeal {
                    closed_at: Some(450),
                    ..deal(1, PIPE, OPEN, 500)
                }],
                want: create(Some(10), Some(142), EC_KASPI),
                ..base()
            },
            Case {
                name: "deal sitting in a configured payment stage (142 = kaspi in the seed) + express course halyk: move",
                payment_method: Some(PaymentMethod::Halyk),
                contacts: vec![person(10, &[1])],
                deals: vec![deal(1, PIPE, 142, 500)],
                want: move_to(
                    1,
                    143,
                    &["expresscourse", "expresscourse_kenesary", "halyk"],
                ),
                ..base()
            },
            Case {
                name: "deal sitting in a configured payment stage + proftest: annotate",
                contacts: vec![person(10, &[1])],
                deals: vec![deal(1, PIPE, 142, 500)],
                want: annotate(1, PT),
                ..proftest()
            },
            Case {
                name: "payment stage id in another pipeline never counts",
                contacts: vec![person(10, &[1])],
                deals: vec![deal(1, OTHER_PIPE, 142, 500)],
                want: create(Some(10), Some(142), EC_KASPI),
                ..base()
            },
            Case {
                name: "fuzzy hits whose PHONE/EMAIL do not really match are ignored, with their deals: create with a new contact",
                contacts: vec![
                    // The digits were in some other field; its phone is someone else's.
                    contact(20, &["+7 701 555 66 77"], &["other@mail.kz"], &[1], 900),
                    // The email merely contains the query.
                    contact(
                        21,
                        &[],
                        &["xaigerim@mail.kz", "aigerim@mail.kz.evil.com"],
                        &[2],
                        900,
                    ),
                    // Shares only the first digits.
                    contact(22, &["8 777 123 45 60"], &[], &[3], 900),
                ],
                deals: vec![
                    deal(1, PIPE, OPEN, 500),
                    deal(2, PIPE, OPEN, 500),
                    CrmDeal {
                        contact_ids: vec![22],
                        ..deal(3, PIPE, OPEN, 500)
                    },
                ],
                want: create(None, Some(142), EC_KASPI),
                ..base()
            },
            Case {
                name: "phone stored as `8 777 123 45 67` matches the lead's +77771234567",
                contacts: vec![contact(10, &["8 777 123 45 67"], &[], &[], 900)],
                email: None,
                want: create(Some(10), Some(142), EC_KASPI),
                ..base()
            },
            Case {
                name: "phone stored as `7 (777) 123-45-67` matches, and its open deal is moved",
                contacts: vec![contact(10, &["7 (777) 123-45-67"], &[], &[1], 900)],
                deals: vec![deal(1, PIPE, OPEN, 500)],
                want: move_to(1, 142, EC_KASPI),
                ..base()
            },
            Case {
                name: "email stored as ` Aigerim@Mail.KZ ` matches the lead's email",
                phone: None,
                contacts: vec![contact(10, &[], &[" Aigerim@Mail.KZ "], &[], 900)],
                want: create(Some(10), Some(142), EC_KASPI),
                ..base()
            },
            Case {
                name: "two candidate deals: the most recently updated wins",
                contacts: vec![person(10, &[1, 2, 3])],
                deals: vec![
                    deal(1, PIPE, OPEN, 100),
                    deal(2, PIPE, OPEN, 300),
                    deal(3, PIPE, OPEN, 200),
                ],
                want: move_to(2, 142, EC_KASPI),
                ..base()
            },
            Case {
                name: "two candidate deals updated at the same second: the higher id wins",
                contacts: vec![person(10, &[7, 8])],
                deals: vec![deal(8, PIPE, OPEN, 300), deal(7, PIPE, OPEN, 300)],
                want: move_to(8, 142, EC_KASPI),
                ..base()
            },
            Case {
                name: "candidates across two matching contacts (phone hit, email hit): the most recent wins",
                contacts: vec![
                    person(10, &[1]),
                    contact(11, &[], &["AIGERIM@mail.kz"], &[2], 800),
                ],
                deals: vec![deal(1, PIPE, OPEN, 100), deal(2, PIPE, 142, 900)],
                want: move_to(2, 142, EC_KASPI),
                ..base()
            },
            Case {
                name: "deal linked only through the deal's contact list still belongs to the person",
                contacts: vec![person(10, &[])],
                deals: vec![CrmDeal {
                    contact_ids: vec![10],
                    ..deal(1, PIPE, OPEN, 100)
                }],
                want: move_to(1, 142, EC_KASPI),
                ..base()
            },
            Case {
                name: "tracked deal (local identity map) is used even when the search returned nothing",
                tracked_deal_id: Some(5),
                tracked_contact_id: Some(50),
                deals: vec![deal(5, PIPE, OPEN, 100)],
                want: move_to(5, 142, EC_KASPI),
                ..base()
            },
            Case {
                name: "tracked deal + proftest with no search hits: annotate it",
                tracked_deal_id: Some(5),
                deals: vec![deal(5, PIPE, OPEN, 100)],
                want: annotate(5, PT),
                ..proftest()
            },
            Case {
                name: "tracked deal that is closed outside the configured stages: create, linked to the tracked contact",
                tracked_deal_id: Some(5),
                tracked_contact_id: Some(50),
                deals: vec![deal(5, PIPE, STATUS_LOST, 100)],
                settings: sane(),
                want: create(Some(50), Some(61000001), EC_KASPI),
                ..base()
            },
            Case {
                name: "tracked contact not yet in the search index: new deal linked to it",
                tracked_contact_id: Some(50),
                want: create(Some(50), Some(142), EC_KASPI),
                ..base()
            },
            Case {
                name: "tracked contact counts as matching even if its stored values differ; its deal is a candidate",
                tracked_contact_id: Some(50),
                contacts: vec![contact(50, &["+7 701 000 00 00"], &[], &[6], 100)],
                deals: vec![deal(6, PIPE, OPEN, 100)],
                want: move_to(6, 142, EC_KASPI),
                ..base()
            },
            Case {
                name: "tracked contact wins over a more recently updated matching contact",
                tracked_contact_id: Some(50),
                contacts: vec![person(10, &[]), contact(50, &[], &[EMAIL], &[], 1)],
                want: create(Some(50), Some(142), EC_KASPI),
                ..base()
            },
            Case {
                name: "several matching contacts, no candidate: the most recently updated contact is reused",
                contacts: vec![
                    contact(10, &["87771234567"], &[], &[], 100),
                    contact(12, &[], &[EMAIL], &[], 300),
                    contact(11, &["+77771234567"], &[], &[], 200),
                ],
                want: create(Some(12), Some(142), EC_KASPI),
                ..base()
            },
            Case {
                name: "express course with a payment method that has no configured stage + open deal: annotate",
                payment_method: Some(PaymentMethod::Robokassa),
                contacts: vec![person(10, &[1])],
                deals: vec![deal(1, PIPE, OPEN, 500)],
                settings: CrmSettings {
                    stage_robokassa: None,
                    ..seed()
                },
                want: annotate(1, &["expresscourse", "expresscourse_kenesary", "robokassa"]),
                ..base()
            },
            Case {
                name: "express course with a payment method that has no configured stage, no candidate: create in the first stage",
                payment_method: Some(PaymentMethod::Robokassa),
                settings: CrmSettings {
                    stage_robokassa: None,
                    ..seed()
                },
                want: create(
                    None,
                    None,
                    &["expresscourse", "expresscourse_kenesary", "robokassa"],
                ),
                ..base()
            },
            Case {
                name: "express course without a payment method + open deal: annotate",
                payment_method: None,
                contacts: vec![person(10, &[1])],
                deals: vec![deal(1, PIPE, OPEN, 500)],
                want: annotate(1, &["expresscourse", "expresscourse_kenesary"]),
                ..base()
            },
            Case {
                name: "proftest ignores a stray payment method in stage and tags",
                payment_method: Some(PaymentMethod::Kaspi),
                want: create(None, None, PT),
                ..proftest()
            },
            Case {
                name: "tags never duplicated: campaign without a slug equals the form",
                source_campaign: "expresscourse",
                contacts: vec![person(10, &[1])],
                deals: vec![deal(1, PIPE, OPEN, 500)],
                want: move_to(1, 142, &["expresscourse", "kaspi"]),
                ..base()
            },
            Case {
                name: "tags never duplicated: proftest campaign without a slug",
                source_campaign: "proftest",
                want: create(None, None, &["proftest"]),
                ..proftest()
            },
            Case {
                name: "tags never duplicated: a campaign equal to the payment method (any case) appears once",
                source_campaign: " KASPI ",
                want: create(None, Some(142), &["expresscourse", "KASPI"]),
                ..base()
            },
            Case {
                name: "tags never empty: a blank campaign is dropped",
                source_campaign: "  ",
                want: create(None, Some(142), &["expresscourse", "kaspi"]),
                ..base()
            },
            Case {
                name: "no phone and no email: nothing can match, create with a new contact",
                phone: None,
                email: None,
                contacts: vec![person(10, &[1])],
                deals: vec![deal(1, PIPE, OPEN, 500)],
                want: create(None, Some(142), EC_KASPI),
                ..base()
            },
            Case {
                name: "a matching contact's deal without fetched details is not a candidate",
                contacts: vec![person(10, &[1])],
                want: create(Some(10), Some(142), EC_KASPI),
                ..base()
            },
        ]
    }

    #[test]
    fn merge_policy_table() {
        let cases = cases();
        let mut failures = Vec::new();
        for case in &cases {
            let phone = case.phone.map(|p| Phone::parse(p).unwrap());
            let email = case.email.map(|e| Email::parse(e).unwrap());
            let input = PolicyInput {
                form: case.form,
                payment_method: case.payment_method,
                phone: phone.as_ref(),
                email: email.as_ref(),
                tracked_deal_id: case.tracked_deal_id,
                tracked_contact_id: case.tracked_contact_id,
                contacts: &case.contacts,
                deals: &case.deals,
                source_campaign: case.source_campaign,
                settings: &case.settings,
            };
            let got = decide(&input);
            if got != case.want {
                failures.push(format!(
                    "{}\n    want {:?}\n     got {:?}",
                    case.name, case.want, got
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} cases failed:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn stored_phone_formats_match_by_last_ten_digits() {
        let phone = Phone::parse(PHONE).unwrap();
        for raw in [
            "+77771234567",
            "8 777 123 45 67",
            "+7 777 123-45-67",
            "7 (777) 123-45-67",
            "87771234567",
            "7771234567",
            " 8-777-123-4567 ",
        ] {
            assert!(phone_matches(raw, &phone), "{raw:?} should match");
        }
        for raw in [
            "",
            "1234567",
            "777 123 45 6",
            "+7 777 123 45 68",
            "+7 701 123 45 67",
            "payment code 123",
            "+7 777 123 45 67 ext 1",
        ] {
            assert!(!phone_matches(raw, &phone), "{raw:?} should not match");
        }
    }

    #[test]
    fn stored_emails_match_trimmed_and_case_insensitively() {
        let email = Email::parse("Aigerim@mail.kz").unwrap();
        for raw in ["aigerim@mail.kz", " Aigerim@Mail.KZ ", "AIGERIM@MAIL.KZ\t"] {
            assert!(email_matches(raw, &email), "{raw:?} should match");
        }
        for raw in [
            "",
            "xaigerim@mail.kz",
            "aigerim@mail.kz.evil.com",
            "aigerim@mail.kz, other@mail.kz",
            "aigerim",
        ] {
            assert!(!email_matches(raw, &email), "{raw:?} should not match");
        }
    }

    #[test]
    fn matching_contacts_rechecks_hits_keeps_order_and_drops_repeats() {
        let phone = Phone::parse(PHONE).unwrap();
        let email = Email::parse(EMAIL).unwrap();
        let hits = vec![
            contact(3, &["+7 701 000 00 00"], &["nobody@mail.kz"], &[], 1),
            contact(1, &["8 777 123 45 67"], &[], &[], 1),
            contact(2, &[], &["AIGERIM@MAIL.KZ"], &[], 1),
            // The same contact returned again by the email search.
            contact(1, &["8 777 123 45 67"], &[], &[], 1),
            contact(9, &[], &[], &[], 1),
        ];
        let ids = |v: Vec<&CrmContact>| v.iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(
            ids(matching_contacts(&hits, Some(&phone), Some(&email), None)),
            vec![1, 2]
        );
        assert_eq!(
            ids(matching_contacts(&hits, Some(&phone), None, Some(9))),
            vec![1, 9]
        );
        assert_eq!(
            ids(matching_contacts(&hits, None, None, None)),
            Vec::<i64>::new()
        );
    }

    #[test]
    fn settings_list_payment_stages_once() {
        assert_eq!(seed().payment_stages(), vec![142, 143, 144]);
        let same = CrmSettings {
            stage_halyk: Some(142),
            stage_robokassa: None,
            ..seed()
        };
        assert_eq!(same.payment_stages(), vec![142]);
        assert!(same.is_payment_stage(142));
        assert!(!same.is_payment_stage(143));
        assert_eq!(
            seed().stage_for_submission(Form::ExpressCourse, Some(PaymentMethod::Halyk)),
            Some(143)
        );
        assert_eq!(seed().stage_for_submission(Form::ExpressCourse, None), None);
    }

    fn any_settings() -> impl Strategy<Value = CrmSettings> {
        let stage = || prop::option::of(prop::sample::select(vec![142i64, 143, 144, 500, 501]));
        (
            prop::sample::select(vec![1i64, 2]),
            stage(),
            stage(),
            stage(),
            stage(),
        )
            .prop_map(|(pipeline_id, k, h, r, p)| CrmSettings {
                pipeline_id,
                stage_kaspi: k,
                stage_halyk: h,
                stage_robokassa: r,
                stage_proftest: p,
            })
    }

    fn any_raw_phone() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "8 777 123 45 67",
                "+77771234567",
                "7 (777) 123-45-67",
                "+7 701 000 00 00",
                "",
            ])
            .prop_map(str::to_owned),
            "[0-9 +()-]{0,20}",
            "\\PC{0,12}",
        ]
    }

    fn any_raw_email() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                " Aigerim@Mail.KZ ",
                "aigerim@mail.kz",
                "xaigerim@mail.kz",
                ""
            ])
            .prop_map(str::to_owned),
            "\\PC{0,16}",
        ]
    }

    fn any_contact() -> impl Strategy<Value = CrmContact> {
        (
            1i64..6,
            prop::collection::vec(any_raw_phone(), 0..3),
            prop::collection::vec(any_raw_email(), 0..3),
            prop::collection::vec(1i64..8, 0..4),
            0i64..5,
        )
            .prop_map(|(id, phones, emails, lead_ids, updated_at)| CrmContact {
                id,
                name: String::new(),
                phones,
                emails,
                lead_ids,
                updated_at,
            })
    }

    fn any_deal() -> impl Strategy<Value = CrmDeal> {
        (
            1i64..8,
            1i64..4,
            prop::sample::select(vec![142i64, 143, 144, 500, 501]),
            0i64..5,
            prop::option::of(0i64..5),
            prop::collection::vec(1i64..6, 0..3),
        )
            .prop_map(
                |(id, pipeline_id, status_id, updated_at, closed_at, contact_ids)| CrmDeal {
                    id,
                    pipeline_id,
                    status_id,
                    updated_at,
                    closed_at,
                    contact_ids,
                },
            )
    }

    proptest! {
        #[test]
        fn decide_never_panics_and_stays_in_the_configured_pipeline(
            settings in any_settings(),
            express in any::<bool>(),
            payment_method in prop::option::of(prop::sample::select(PaymentMethod::ALL.to_vec())),
            phone in prop::option::of(prop::sample::select(vec!["+77771234567", "+77011234567"])),
            email in prop::option::of(prop::sample::select(vec!["aigerim@mail.kz", "Other@Mail.kz"])),
            tracked_deal_id in prop::option::of(1i64..8),
            tracked_contact_id in prop::option::of(1i64..6),
            contacts in prop::collection::vec(any_contact(), 0..5),
            deals in prop::collection::vec(any_deal(), 0..6),
            source_campaign in prop_oneof![
                prop::sample::select(vec!["expresscourse", "proftest", "expresscourse_x", "kaspi", ""]).prop_map(str::to_owned),
                "\\PC{0,12}",
            ],
        ) {
            let form = if express { Form::ExpressCourse } else { Form::ProfTest };
            let phone = phone.map(|p| Phone::parse(p).unwrap());
            let email = email.map(|e| Email::parse(e).unwrap());
            let input = PolicyInput {
                form,
                payment_method,
                phone: phone.as_ref(),
                email: email.as_ref(),
                tracked_deal_id,
                tracked_contact_id,
                contacts: &contacts,
                deals: &deals,
                source_campaign: &source_campaign,
                settings: &settings,
            };
            let action = decide(&input);

            let tags = action.tags();
            prop_assert!(tags.iter().all(|t| !t.trim().is_empty()));
            for (i, t) in tags.iter().enumerate() {
                prop_assert!(!tags[..i].iter().any(|u| u.eq_ignore_ascii_case(t)), "duplicate tag {t:?}");
            }
            prop_assert_eq!(tags.first().map(String::as_str), Some(form.as_str()));

            let matching_ids: Vec<i64> =
                matching_contacts(&contacts, phone.as_ref(), email.as_ref(), tracked_contact_id)
                    .iter()
                    .map(|c| c.id)
                    .collect();
            match &action {
                Action::CreateDeal { existing_contact, pipeline_id, status_id, .. } => {
                    prop_assert_eq!(*pipeline_id, settings.pipeline_id);
                    prop_assert_eq!(*status_id, settings.stage_for_submission(form, payment_method));
                    if let Some(id) = existing_contact {
                        prop_assert!(tracked_contact_id == Some(*id) || matching_ids.contains(id));
                    }
                    prop_assert!(candidate_deal(&input).is_none());
                }
                Action::MoveDeal { deal_id, pipeline_id, status_id, .. } => {
                    prop_assert_eq!(*pipeline_id, settings.pipeline_id);
                    prop_assert_eq!(form, Form::ExpressCourse);
                    prop_assert_eq!(payment_method.and_then(|m| settings.stage_for(m)), Some(*status_id));
                    prop_assert!(deals.iter().any(|d| d.id == *deal_id && d.pipeline_id == settings.pipeline_id));
                }
                Action::Annotate { deal_id, .. } => {
                    prop_assert!(deals.iter().any(|d| d.id == *deal_id && d.pipeline_id == settings.pipeline_id));
                }
            }
            if let Some(d) = candidate_deal(&input) {
                prop_assert_eq!(d.pipeline_id, settings.pipeline_id);
                prop_assert!(d.is_open() || settings.is_payment_stage(d.status_id));
                prop_assert_eq!(action.deal_id(), Some(d.id));
            }
        }
    }
}
