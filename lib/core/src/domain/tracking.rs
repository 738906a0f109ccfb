//! One person as the pipeline knows them: the person key, and the `unified_lead_tracking` row
//! that first- and last-touch attribution and the CRM identity map live on.
use std::fmt;

use jiff::Timestamp;

use super::{Email, Form, Lead, LeadId, PaymentMethod, Phone, SourceCampaign, UnknownValue, Utm};

/// `phone:+77771234567` or `email:a@example.kz`: one person as the pipeline knows them.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonKey(String);

impl PersonKey {
    pub fn phone(p: &Phone) -> Self {
        PersonKey(format!("phone:{}", p.as_str()))
    }

    pub fn email(e: &Email) -> Self {
        PersonKey(format!("email:{}", e.match_key()))
    }

    pub fn from_stored(raw: &str) -> Result<Self, UnknownValue> {
        if let Some(p) = raw.strip_prefix("phone:") {
            Phone::parse(p)
                .map(|p| PersonKey::phone(&p))
                .map_err(|_| UnknownValue)
        } else if let Some(e) = raw.strip_prefix("email:") {
            Email::parse(e)
                .map(|e| PersonKey::email(&e))
                .map_err(|_| UnknownValue)
        } else {
            Err(UnknownValue)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        match self.0.split_once(':') {
            Some(("phone", p)) => format!("phone:{}", crate::mask::phone(p)),
            Some(("email", e)) => format!("email:{}", crate::mask::email(e)),
            _ => "?".to_owned(),
        }
    }
}

impl fmt::Debug for PersonKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonKey({})", self.masked())
    }
}

/// What one submission tells the tracking row of one person key.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingTouch {
    pub key: PersonKey,
    pub at: Timestamp,
    pub form: Form,
    pub lead_id: LeadId,
    pub campaign: SourceCampaign,
    pub utm: Utm,
    pub payment_method: Option<PaymentMethod>,
}

impl TrackingTouch {
    pub fn for_lead(lead: &Lead) -> Vec<TrackingTouch> {
        lead.person_keys()
            .into_iter()
            .map(|key| TrackingTouch {
                key,
                at: lead.created_at,
                form: lead.form,
                lead_id: lead.id,
                campaign: lead.source_campaign.clone(),
                utm: lead.utm.clone(),
                payment_method: lead.payment_method,
            })
            .collect()
    }
}

/// One row of `unified_lead_tracking`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracking {
    pub key: PersonKey,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub first_campaign: SourceCampaign,
    pub first_utm: Utm,
    pub last_campaign: SourceCampaign,
    pub last_utm: Utm,
    pub last_lead_id: LeadId,
    pub proftest_count: u32,
    pub expresscourse_count: u32,
    pub last_payment_method: Option<PaymentMethod>,
    pub amocrm_contact_id: Option<i64>,
    pub amocrm_lead_id: Option<i64>,
}

impl Tracking {
    /// The row a first touch creates; later touches go through [`Tracking::apply`].
    pub fn first(touch: &TrackingTouch) -> Self {
        let mut t = Tracking {
            key: touch.key.clone(),
            first_seen: touch.at,
            last_seen: touch.at,
            first_campaign: touch.campaign.clone(),
            first_utm: touch.utm.clone(),
            last_campaign: touch.campaign.clone(),
            last_utm: touch.utm.clone(),
            last_lead_id: touch.lead_id,
            proftest_count: 0,
            expresscourse_count: 0,
            last_payment_method: None,
            amocrm_contact_id: None,
            amocrm_lead_id: None,
        };
        t.count(touch);
        t
    }

    /// Where a touch at `at` lands on this row: attribution follows `created_at`, not arrival
    /// order, so a late-arriving older lead moves first touch and never last touch.
    pub fn placement(&self, at: Timestamp) -> Placement {
        Placement {
            moves_last: at >= self.last_seen,
            moves_first: at < self.first_seen,
        }
    }

    /// Last touch wins for last-touch attribution; first touch is never rewritten by a later one.
    pub fn apply(&mut self, touch: &TrackingTouch) {
        let place = self.placement(touch.at);
        if place.moves_last {
            self.last_seen = touch.at;
            self.last_campaign = touch.campaign.clone();
            self.last_utm = touch.utm.clone();
            self.last_lead_id = touch.lead_id;
        }
        if place.moves_first {
            self.first_seen = touch.at;
            self.first_campaign = touch.campaign.clone();
            self.first_utm = touch.utm.clone();
        }
        self.count(touch);
    }

    fn count(&mut self, touch: &TrackingTouch) {
        match touch.form {
            Form::ProfTest => self.proftest_count += 1,
            Form::ExpressCourse => self.expresscourse_count += 1,
        }
        if touch.payment_method.is_some() {
            self.last_payment_method = touch.payment_method;
        }
    }
}

/// What one touch changes on an existing tracking row ([`Tracking::placement`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The touch is the newest: it becomes the last touch.
    pub moves_last: bool,
    /// The touch is older than the first one known: it becomes the first touch.
    pub moves_first: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(at: i64, form: Form, campaign: &str, pm: Option<PaymentMethod>) -> TrackingTouch {
        TrackingTouch {
            key: PersonKey::phone(&Phone::parse("+77771234567").unwrap()),
            at: Timestamp::from_second(at).unwrap(),
            form,
            lead_id: LeadId::new(),
            campaign: SourceCampaign::from_stored(campaign).unwrap(),
            utm: Utm {
                source: Some(campaign.to_owned()),
                ..Utm::default()
            },
            payment_method: pm,
        }
    }

    #[test]
    fn tracking_keeps_first_touch_and_moves_last_touch() {
        let mut t = Tracking::first(&touch(100, Form::ProfTest, "proftest_kenesary", None));
        t.apply(&touch(
            200,
            Form::ExpressCourse,
            "expresscourse",
            Some(PaymentMethod::Kaspi),
        ));
        t.apply(&touch(300, Form::ProfTest, "proftest_arystan", None));
        assert_eq!(t.first_campaign.as_str(), "proftest_kenesary");
        assert_eq!(t.last_campaign.as_str(), "proftest_arystan");
        assert_eq!(t.last_utm.source.as_deref(), Some("proftest_arystan"));
        assert_eq!((t.proftest_count, t.expresscourse_count), (2, 1));
        assert_eq!(t.last_payment_method, Some(PaymentMethod::Kaspi));
    }

    #[test]
    fn a_late_arriving_older_touch_does_not_steal_last_touch() {
        let mut t = Tracking::first(&touch(200, Form::ProfTest, "proftest_b", None));
        t.apply(&touch(100, Form::ProfTest, "proftest_a", None));
        assert_eq!(t.first_campaign.as_str(), "proftest_a");
        assert_eq!(t.last_campaign.as_str(), "proftest_b");
    }

    #[test]
    fn person_keys_mask_their_value() {
        let k = PersonKey::email(&Email::parse("Aigerim@Mail.kz").unwrap());
        assert_eq!(k.as_str(), "email:aigerim@mail.kz");
        assert_eq!(format!("{k:?}"), "PersonKey(email:a***@mail.kz)");
        assert_eq!(
            PersonKey::from_stored("phone:+77771234567")
                .unwrap()
                .as_str(),
            "phone:+77771234567"
        );
    }
}
