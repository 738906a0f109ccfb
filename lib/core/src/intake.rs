//! The intake use case: a validated submission becomes one atomic write (lead, notifications,
//! tracking, idempotency record); only after it commits is the lead accepted.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::{
    CrmState, CrmStatus, Email, Form, IdempotencyRecord, Lead, LeadId, Notification,
    NotificationStatus, PaymentMethod, Phone, QuarantineReason, StoredResponse, SuppressReason,
    TrackingTouch,
};
use crate::guard::{OriginPolicy, Screening};
use crate::ports::{
    Clock, IntakeOutcome, IntakeWrite, LeadStore, NotificationScheduler, StoreError,
};
use crate::submission::{FieldErrors, IDEMPOTENCY_KEY_FIELDS, Submission};

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key {rule}", rule = Self::RULE)]
pub struct BadIdempotencyKey;

impl BadIdempotencyKey {
    /// What a key must be, as the field message of a `400` says it.
    pub const RULE: &'static str = "must be 1-255 visible ASCII characters";
}

/// The client's `Idempotency-Key` header: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, BadIdempotencyKey> {
        if raw.is_empty() || raw.len() > 255 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(BadIdempotencyKey);
        }
        Ok(IdempotencyKey(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key a body carries as `idempotencyKey` (alias `idempotency_key`): `None` when absent,
    /// `null` or blank; a field error named `idempotencyKey` when it is not a valid key.
    pub fn from_fields(fields: &Map<String, Value>) -> Result<Option<Self>, FieldErrors> {
        let value = IDEMPOTENCY_KEY_FIELDS
            .iter()
            .filter_map(|n| fields.get(*n))
            .find(|v| !v.is_null());
        let problem = match value {
            None => return Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
            Some(Value::String(s)) => match IdempotencyKey::parse(s) {
                Ok(k) => return Ok(Some(k)),
                Err(_) => BadIdempotencyKey::RULE,
            },
            Some(_) => "must be a string",
        };
        Err(FieldErrors::from([(
            "idempotencyKey".to_owned(),
            problem.to_owned(),
        )]))
    }
}

#[derive(Debug, Clone)]
pub struct IntakeConfig {
    pub notify_delay: Duration,
    /// Each channel's send window: a follow-up due outside it is due at its next start.
    pub windows: crate::notify::SendWindows,
    pub idempotency_ttl: Duration,
    /// `pending` when a CRM sync will pick the lead up, `disabled` when none is configured.
    pub initial_crm_status: CrmStatus,
    /// `PAYMENT_LINK_<METHOD>` (`NotifySettings::payment_links`): put into the accepted answer of
    /// an ExpressCourse lead as `paymentLink`, so the page can offer it at once.
    pub payment_links: BTreeMap<PaymentMethod, String>,
    /// The honeypot and the client-address hash.
    pub screening: Screening,
    /// Which browser origins may post (`CORS_ALLOWED_ORIGINS`), enforced by the HTTP edge.
    pub origins: OriginPolicy,
}

/// The body of a `201`/replayed `200`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedBody {
    pub lead_id: String,
    pub source_campaign: String,
    /// The configured link of the chosen payment method, so the page can offer it at once
    /// instead of the visitor waiting ten minutes for the SMS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_link: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    Created { lead_id: LeadId, body: String },
    Replayed(StoredResponse),
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("validation failed")]
    Validation(FieldErrors),
    #[error("idempotency key reused with a different body")]
    KeyReused,
    #[error("a request with this idempotency key is in flight")]
    InFlight,
    #[error("lead storage is unavailable")]
    Unavailable(#[source] StoreError),
    /// A fault of this process, not of the request or the store (still retryable for the
    /// caller: nothing was committed).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Called with each committed lead id, after the commit (wakes the CRM worker locally).
pub type CommitHook = Arc<dyn Fn(LeadId) + Send + Sync>;

pub struct IntakeService {
    store: Arc<dyn LeadStore>,
    scheduler: Arc<dyn NotificationScheduler>,
    clock: Arc<dyn Clock>,
    config: IntakeConfig,
    in_flight: Mutex<HashSet<String>>,
    on_commit: Option<CommitHook>,
}

/// Removes an idempotency key from the in-flight set however the request ends.
struct InFlightGuard<'a> {
    set: &'a Mutex<HashSet<String>>,
    key: String,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.lock() {
            set.remove(&self.key);
        }
    }
}

impl IntakeService {
    pub fn new(
        store: Arc<dyn LeadStore>,
        scheduler: Arc<dyn NotificationScheduler>,
        clock: Arc<dyn Clock>,
        config: IntakeConfig,
    ) -> Self {
        IntakeService {
            store,
            scheduler,
            clock,
            config,
            in_flight: Mutex::new(HashSet::new()),
            on_commit: None,
        }
    }

    pub fn with_commit_hook(mut self, hook: CommitHook) -> Self {
        self.on_commit = Some(hook);
        self
    }

    pub fn config(&self) -> &IntakeConfig {
        &self.config
    }

    pub async fn submit(
        &self,
        form: Form,
        fields: &Map<String, Value>,
        key: Option<&IdempotencyKey>,
        correlation_id: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<Submitted, IntakeError> {
        let submission = Submission::from_fields(form, fields).map_err(IntakeError::Validation)?;
        let screening = &self.config.screening;
        let quarantine = screening
            .is_honeypot_filled(fields)
            .then_some(QuarantineReason::Honeypot);

        let scoped_key = key.map(|k| format!("{}:{}", form.as_str(), k.as_str()));
        let _guard = match &scoped_key {
            Some(k) => Some(self.enter(k)?),
            None => None,
        };

        // Stored timestamps keep milliseconds; truncate now so what is returned equals what is stored.
        let now = self.clock.now();
        let now = jiff::Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now);
        let lead = Lead {
            id: LeadId::new(),
            created_at: now,
            form,
            source_campaign: submission.source_campaign.clone(),
            name: submission.name.clone(),
            email: submission.email.clone(),
            phone: submission.phone.clone(),
            payment_method: submission.payment_method,
            metadata: submission.metadata.clone(),
            utm: submission.utm.clone(),
            referrer: submission.referrer.clone(),
            page_url: submission.page_url.clone(),
            warnings: submission.warnings.clone(),
            correlation_id: correlation_id.to_owned(),
            crm: CrmState::new(match quarantine {
                Some(_) => CrmStatus::Quarantined,
                None => self.config.initial_crm_status,
            }),
            client_ip_hash: client_ip
                .and_then(|ip| screening.ip_hasher.as_ref().map(|h| h.hash(ip))),
            quarantine,
        };
        let due = crate::time::add(now, self.config.notify_delay);
        let mut notifications = Notification::for_lead(&lead, due);
        for n in &mut notifications {
            n.send_at = self.config.windows.next_allowed(n.channel(), due);
        }
        // The schedule fires for the earliest row; a row due later (an SMS waiting for the
        // morning while its email goes now) is sent by whoever claims due rows then (the
        // sweeper on AWS, the worker locally).
        let send_at = notifications.iter().map(|n| n.send_at).min().unwrap_or(due);
        if quarantine.is_some() {
            // Kept as rows (a release turns them into fresh pending ones), never sent.
            for n in &mut notifications {
                n.status = NotificationStatus::Suppressed;
                n.suppressed_reason = Some(SuppressReason::Quarantined);
            }
        }
        let body = serde_json::to_string(&AcceptedBody {
            lead_id: lead.id.to_string(),
            source_campaign: lead.source_campaign.as_str().to_owned(),
            payment_link: lead
                .payment_method
                .and_then(|pm| self.config.payment_links.get(&pm).cloned()),
        })
        .map_err(|e| IntakeError::Internal(format!("cannot encode the answer: {e}")))?;
        let idempotency = scoped_key.map(|key| IdempotencyRecord {
            key,
            payload_hash: payload_hash(form, fields),
            response: StoredResponse {
                status: 201,
                body: body.clone(),
            },
            created_at: now,
            expires_at: crate::time::add(now, self.config.idempotency_ttl),
        });
        let lead_id = lead.id;
        let tracking = TrackingTouch::for_lead(&lead);
        let write = IntakeWrite {
            lead,
            notifications,
            tracking,
            idempotency,
            now,
        };

        match self
            .store
            .commit_intake(write)
            .await
            .map_err(IntakeError::Unavailable)?
        {
            IntakeOutcome::Committed => {}
            IntakeOutcome::Replay(resp) => {
                tracing::info!(form = form.as_str(), "idempotent replay");
                return Ok(Submitted::Replayed(resp));
            }
            IntakeOutcome::KeyReused => return Err(IntakeError::KeyReused),
            IntakeOutcome::InFlight => return Err(IntakeError::InFlight),
        }
        tracing::info!(
            event = "lead_accepted",
            lead_id = %lead_id,
            form = form.as_str(),
            source_campaign = submission.source_campaign.as_str(),
            phone = submission.phone.valid().map(Phone::masked),
            email = submission.email.valid().map(Email::masked),
            warnings = submission.warnings.len(),
            quarantine = quarantine.map(QuarantineReason::as_str),
            "lead committed"
        );
        if let Some(reason) = quarantine {
            // Answered like any lead, so a bot learns nothing; no follow-up, no deal.
            tracing::warn!(lead_id = %lead_id, reason = reason.as_str(), "lead quarantined by screening; release it with `lead release` if it is a person");
            return Ok(Submitted::Created { lead_id, body });
        }
        // The lead is durable: from here on nothing may turn this into an error answer.
        if let Err(e) = self
            .scheduler
            .schedule(lead_id, send_at, correlation_id)
            .await
        {
            tracing::warn!(lead_id = %lead_id, error = %crate::error_chain(&e), "scheduling failed; the sweeper will send the notifications");
        }
        if let Some(hook) = &self.on_commit {
            hook(lead_id);
        }
        Ok(Submitted::Created { lead_id, body })
    }

    fn enter(&self, key: &str) -> Result<InFlightGuard<'_>, IntakeError> {
        // A poisoned set only means another request panicked while holding it; the set itself
        // is still a valid set of keys.
        let mut set = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !set.insert(key.to_owned()) {
            return Err(IntakeError::InFlight);
        }
        Ok(InFlightGuard {
            set: &self.in_flight,
            key: key.to_owned(),
        })
    }
}

/// SHA-256 over the form and the canonical JSON of the decoded fields (serde_json's map keeps
/// keys sorted), so key order and JSON whitespace do not make two equal bodies differ. The key
/// fields are left out: a beacon carries the key in its body, the fetch it stands in for may
/// carry it only in the header, and both are the same submission.
pub fn payload_hash(form: Form, fields: &Map<String, Value>) -> String {
    let mut h = Sha256::new();
    h.update(form.as_str().as_bytes());
    h.update([0]);
    if IDEMPOTENCY_KEY_FIELDS
        .iter()
        .any(|k| fields.contains_key(*k))
    {
        let mut fields = fields.clone();
        for k in IDEMPOTENCY_KEY_FIELDS {
            fields.remove(k);
        }
        h.update(serde_json::to_vec(&fields).unwrap_or_default());
    } else {
        h.update(serde_json::to_vec(fields).unwrap_or_default());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn idempotency_keys_are_bounded_visible_ascii() {
        assert!(IdempotencyKey::parse("abc-123_XYZ").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse("ключ").is_err());
    }

    #[test]
    fn a_body_key_is_read_from_either_spelling_and_bad_ones_name_the_field() {
        let key = |v: Value| {
            let Value::Object(m) = v else { unreachable!() };
            IdempotencyKey::from_fields(&m)
        };
        assert_eq!(
            key(json!({"idempotencyKey": "k-1"})),
            Ok(Some(IdempotencyKey("k-1".into())))
        );
        assert_eq!(
            key(json!({"idempotency_key": "k-2"})),
            Ok(Some(IdempotencyKey("k-2".into())))
        );
        assert_eq!(key(json!({"name": "A"})), Ok(None));
        assert_eq!(key(json!({"idempotencyKey": null})), Ok(None));
        assert_eq!(key(json!({"idempotencyKey": "  "})), Ok(None));
        for bad in [json!("has space"), json!(42), json!("k".repeat(256))] {
            let err = key(json!({ "idempotencyKey": bad })).unwrap_err();
            assert_eq!(err.keys().collect::<Vec<_>>(), vec!["idempotencyKey"]);
        }
    }

    #[test]
    fn payload_hash_leaves_the_body_key_out() {
        let (Value::Object(plain), Value::Object(keyed), Value::Object(aliased)) = (
            json!({"name": "A", "phone": "1"}),
            json!({"name": "A", "phone": "1", "idempotencyKey": "k-1"}),
            json!({"name": "A", "phone": "1", "idempotency_key": "k-2"}),
        ) else {
            unreachable!()
        };
        let h = payload_hash(Form::ProfTest, &plain);
        assert_eq!(payload_hash(Form::ProfTest, &keyed), h);
        assert_eq!(payload_hash(Form::ProfTest, &aliased), h);
    }

    #[test]
    fn payload_hash_ignores_key_order_but_not_values_or_form() {
        let a = json!({"name": "A", "phone": "1"});
        let b: Value = serde_json::from_str(r#"{ "phone":"1",  "name":"A" }"#).unwrap();
        let (Value::Object(a), Value::Object(b)) = (a, b) else {
            unreachable!()
        };
        assert_eq!(
            payload_hash(Form::ProfTest, &a),
            payload_hash(Form::ProfTest, &b)
        );
        assert_ne!(
            payload_hash(Form::ProfTest, &a),
            payload_hash(Form::ExpressCourse, &a)
        );
        let mut c = a.clone();
        c.insert("name".into(), json!("B"));
        assert_ne!(
            payload_hash(Form::ProfTest, &a),
            payload_hash(Form::ProfTest, &c)
        );
    }
}
