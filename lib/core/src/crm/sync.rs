//! The CRM sync use case: pending leads become deals, merged per person ("склейка").
//!
//! A batch is worked in phases so that CRM calls are shared between leads (AmoCRM allows 7
//! requests/s): identity per person (tracking map first, then contact search by phone, then by
//! email), one read of all candidate deals, one create call, one update call, one notes call.
//! Leads of the same person — in one batch or in two concurrent ones — are serialised by
//! per-person-key locks and grouped, so they end in one deal.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::OwnedMutexGuard;

use super::model::{CrmContact, CrmDeal, CrmError, DealContact, DealUpdate, NewContact, NewDeal};
use super::policy::{Action, CrmSettings, PolicyInput, decide, matching_contacts};
use crate::domain::{CrmStatus, Email, Form, Lead, LeadId, PersonKey, Phone};
use crate::ports::{Clock, CrmApi, CrmStateStore, LeadStore, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Synced {
        deal_id: i64,
    },
    /// Not `pending` (already synced, failed, disabled) or gone: nothing to do.
    NotPending,
    /// Will be retried: the reason of this attempt.
    Retry(String),
    Failed(String),
}

/// Per-person-key async locks, so two syncs of one person never interleave.
#[derive(Default)]
struct KeyLocks(std::sync::Mutex<HashMap<PersonKey, Arc<tokio::sync::Mutex<()>>>>);

impl KeyLocks {
    async fn lock_all(&self, keys: &BTreeSet<PersonKey>) -> Vec<OwnedMutexGuard<()>> {
        let mutexes: Vec<Arc<tokio::sync::Mutex<()>>> = {
            // A poisoned map still maps keys to their locks; giving up the locks instead would
            // give up the one-deal-per-person serialisation.
            let mut map = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.retain(|_, m| Arc::strong_count(m) > 1);
            keys.iter()
                .map(|k| map.entry(k.clone()).or_default().clone())
                .collect()
        };
        // BTreeSet order: every caller takes the locks in the same order, so no deadlock.
        let mut guards = Vec::with_capacity(mutexes.len());
        for m in mutexes {
            guards.push(m.lock_owned().await);
        }
        guards
    }
}

pub struct CrmSync {
    leads: Arc<dyn LeadStore>,
    state: Arc<dyn CrmStateStore>,
    api: Arc<dyn CrmApi>,
    settings: CrmSettings,
    clock: Arc<dyn Clock>,
    max_attempts: u32,
    locks: KeyLocks,
}

/// A created deal and its contact, or why not.
type CreateResult = Result<(i64, Option<i64>), CrmError>;

/// One person's leads in this batch, oldest first, and what we learn about them.
struct Group {
    leads: Vec<Lead>,
    keys: BTreeSet<PersonKey>,
    phone: Option<Phone>,
    email: Option<Email>,
    tracked_deal: Option<i64>,
    tracked_contact: Option<i64>,
    contacts: Vec<CrmContact>,
    /// The deal all of this person's leads end in, once known.
    deal: Option<(i64, Option<i64>)>,
    /// Set when the group cannot go on in this batch.
    stop: Option<Stop>,
}

#[derive(Debug, Clone)]
enum Stop {
    Retry(String),
    Failed(String),
}

impl From<CrmError> for Stop {
    fn from(e: CrmError) -> Self {
        match e {
            CrmError::Transient(r) => Stop::Retry(r),
            CrmError::Permanent(r) => Stop::Failed(r),
        }
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Retry(crate::error_chain(&e))
    }
}

impl CrmSync {
    /// Attempts of one lead's sync before it is marked failed (transient errors only), on every
    /// runtime.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;

    pub fn new(
        leads: Arc<dyn LeadStore>,
        state: Arc<dyn CrmStateStore>,
        api: Arc<dyn CrmApi>,
        settings: CrmSettings,
        clock: Arc<dyn Clock>,
        max_attempts: u32,
    ) -> Self {
        CrmSync {
            leads,
            state,
            api,
            settings,
            clock,
            max_attempts: max_attempts.max(1),
            locks: KeyLocks::default(),
        }
    }

    pub fn settings(&self) -> &CrmSettings {
        &self.settings
    }

    /// Up to `limit` leads still `pending` that were created before `before`, oldest first: what
    /// a sweep re-drives when the regular trigger (a stream record, a wake-up) did not finish
    /// them.
    pub async fn stale_pending(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<LeadId>, StoreError> {
        let mut stale = Vec::new();
        for id in self.state.pending_crm(limit.saturating_mul(4)).await? {
            if let Some(lead) = self.leads.get_lead(id).await?
                && lead.created_at <= before
            {
                stale.push(id);
            }
            if stale.len() >= limit {
                break;
            }
        }
        Ok(stale)
    }

    /// Syncs the given leads (at most ~50 at a time is sensible); every id gets an outcome.
    pub async fn sync_batch(&self, ids: &[LeadId]) -> Vec<(LeadId, SyncOutcome)> {
        let mut outcomes: Vec<(LeadId, SyncOutcome)> = Vec::new();
        let mut keys = BTreeSet::new();
        for id in ids {
            // A lead that cannot be read now is re-read under the locks below, and reported then.
            if let Ok(Some(lead)) = self.leads.get_lead(*id).await {
                keys.extend(lead.person_keys());
            }
        }
        let _guards = self.locks.lock_all(&keys).await;
        // Re-read under the locks: a concurrent batch may have synced some of these meanwhile.
        let mut leads = Vec::new();
        for id in ids {
            match self.leads.get_lead(*id).await {
                Ok(Some(lead)) if lead.crm.status == CrmStatus::Pending => leads.push(lead),
                Ok(_) => outcomes.push((*id, SyncOutcome::NotPending)),
                Err(e) => outcomes.push((*id, SyncOutcome::Retry(crate::error_chain(&e)))),
            }
        }
        let mut groups = group_by_person(leads);
        for g in &mut groups {
            if let Err(stop) = self.identify(g).await {
                g.stop = Some(stop);
            }
        }
        let deals = self.read_deals(&mut groups).await;
        let plans = self.create_deals(&mut groups, &deals).await;
        self.update_and_annotate(&mut groups, &deals, &plans).await;
        outcomes.extend(self.settle(groups).await);
        outcomes
    }

    /// The tracking map first (it knows deals AmoCRM's search index may not show yet), then a
    /// contact search by the phone's last ten digits, then by email; hits are re-checked.
    async fn identify(&self, g: &mut Group) -> Result<(), Stop> {
        let cid = correlation_id(g);
        for lead in &g.leads {
            if let Some(deal) = lead.crm.amocrm_lead_id {
                g.tracked_deal = Some(deal);
                g.tracked_contact = g.tracked_contact.or(lead.crm.amocrm_contact_id);
            }
        }
        for key in &g.keys {
            if let Some(t) = self.leads.get_tracking(key).await? {
                g.tracked_deal = g.tracked_deal.or(t.amocrm_lead_id);
                g.tracked_contact = g.tracked_contact.or(t.amocrm_contact_id);
            }
        }
        if g.tracked_deal.is_some() {
            return Ok(());
        }
        if let Some(phone) = &g.phone {
            let hits = self.api.search_contacts(phone.last10(), &cid).await?;
            g.contacts.extend(hits);
        }
        let found =
            !matching_contacts(&g.contacts, g.phone.as_ref(), g.email.as_ref(), None).is_empty();
        if !found && let Some(email) = &g.email {
            let hits = self.api.search_contacts(email.as_str(), &cid).await?;
            g.contacts.extend(hits);
        }
        Ok(())
    }

    /// One read for the candidate deals of every group: the tracked deals and the deals of
    /// contacts that really match.
    async fn read_deals(&self, groups: &mut [Group]) -> Vec<CrmDeal> {
        let mut ids = BTreeSet::new();
        for g in groups.iter().filter(|g| g.stop.is_none()) {
            ids.extend(g.tracked_deal);
            for c in matching_contacts(
                &g.contacts,
                g.phone.as_ref(),
                g.email.as_ref(),
                g.tracked_contact,
            ) {
                ids.extend(c.lead_ids.iter().copied());
            }
        }
        if ids.is_empty() {
            return vec![];
        }
        let ids: Vec<i64> = ids.into_iter().collect();
        let cid = groups.first().map(correlation_id).unwrap_or_default();
        match self.api.deals_by_id(&ids, &cid).await {
            Ok(deals) => deals,
            Err(e) => {
                let stop = Stop::from(e);
                for g in groups.iter_mut().filter(|g| g.stop.is_none()) {
                    g.stop = Some(stop.clone());
                }
                vec![]
            }
        }
    }

    fn input<'a>(&'a self, g: &'a Group, lead: &'a Lead, deals: &'a [CrmDeal]) -> PolicyInput<'a> {
        PolicyInput {
            form: lead.form,
            payment_method: lead.payment_method,
            phone: g.phone.as_ref(),
            email: g.email.as_ref(),
            tracked_deal_id: g.deal.map(|(d, _)| d).or(g.tracked_deal),
            tracked_contact_id: g.deal.and_then(|(_, c)| c).or(g.tracked_contact),
            contacts: &g.contacts,
            deals,
            source_campaign: lead.source_campaign.as_str(),
            settings: &self.settings,
        }
    }

    /// Decides the first lead of every group; creates all new deals in one call.
    async fn create_deals(&self, groups: &mut [Group], deals: &[CrmDeal]) -> Vec<(usize, Action)> {
        let mut first_actions = Vec::new();
        let mut creates: Vec<(usize, NewDeal)> = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            if g.stop.is_some() {
                continue;
            }
            let Some(lead) = g.leads.first() else {
                continue;
            };
            let action = decide(&self.input(g, lead, deals));
            if let Action::CreateDeal {
                existing_contact,
                pipeline_id,
                status_id,
                tags,
            } = &action
            {
                creates.push((
                    i,
                    new_deal(lead, g, *existing_contact, *pipeline_id, *status_id, tags),
                ));
            }
            first_actions.push((i, action));
        }
        if creates.is_empty() {
            return first_actions;
        }
        let cid = creates
            .first()
            .map(|(i, _)| groups.get(*i).map(correlation_id).unwrap_or_default())
            .unwrap_or_default();
        let requests: Vec<NewDeal> = creates.iter().map(|(_, d)| d.clone()).collect();
        let results: Vec<(usize, CreateResult)> = match self.api.create_deals(&requests, &cid).await
        {
            Ok(created) if created.len() == creates.len() => creates
                .iter()
                .zip(created)
                .map(|((i, _), c)| (*i, Ok((c.deal_id, c.contact_id))))
                .collect(),
            Ok(_) => creates
                .iter()
                .map(|(i, _)| {
                    (
                        *i,
                        Err(CrmError::Transient(
                            "CRM answered a different number of deals".into(),
                        )),
                    )
                })
                .collect(),
            // One invalid deal rejects the whole call: redo them one by one to find it.
            Err(CrmError::Permanent(_)) if creates.len() > 1 => {
                let mut out = Vec::new();
                for (i, d) in &creates {
                    let r = self
                        .api
                        .create_deals(std::slice::from_ref(d), &cid)
                        .await
                        .and_then(|c| {
                            c.first()
                                .map(|c| (c.deal_id, c.contact_id))
                                .ok_or_else(|| CrmError::Transient("CRM created nothing".into()))
                        });
                    out.push((*i, r));
                }
                out
            }
            Err(e) => creates.iter().map(|(i, _)| (*i, Err(e.clone()))).collect(),
        };
        for (i, r) in results {
            let Some(g) = groups.get_mut(i) else { continue };
            match r {
                Ok((deal, contact)) => {
                    g.deal = Some((deal, contact));
                    if let Some(lead) = g.leads.first()
                        && let Err(e) = self.state.record_crm_deal(lead.id, deal, contact).await
                    {
                        // The deal exists but we could not note it: stop here, the tracking
                        // search will find it again rather than create a second one.
                        g.stop = Some(Stop::from(e));
                    }
                }
                Err(e) => g.stop = Some(Stop::from(e)),
            }
        }
        first_actions
    }

    /// Stage moves and tags for every lead that lands on an existing deal (merged per deal, the
    /// latest lead's stage winning), then one note per lead.
    async fn update_and_annotate(
        &self,
        groups: &mut [Group],
        deals: &[CrmDeal],
        first: &[(usize, Action)],
    ) {
        let mut updates: Vec<DealUpdate> = Vec::new();
        let mut touched: Vec<usize> = Vec::new();
        let mut notes: Vec<(usize, i64, String)> = Vec::new();
        for (i, g) in groups.iter_mut().enumerate() {
            if g.stop.is_some() {
                continue;
            }
            let first_action = first.iter().find(|(j, _)| *j == i).map(|(_, a)| a.clone());
            for (n, lead) in g.leads.iter().enumerate() {
                let action = match (n, &first_action) {
                    (0, Some(a)) => a.clone(),
                    _ => {
                        // Later leads of the person act on the deal the first one settled on.
                        let mut known: Vec<CrmDeal> = deals.to_vec();
                        known.extend(g.deal.map(|(id, contact)| {
                            settled_deal(id, contact, self.settings.pipeline_id)
                        }));
                        decide(&self.input(g, lead, &known))
                    }
                };
                let deal_id = match &action {
                    Action::CreateDeal { .. } => g.deal.map(|(d, _)| d),
                    Action::MoveDeal {
                        deal_id,
                        pipeline_id,
                        status_id,
                        tags,
                    } => {
                        merge_update(
                            &mut updates,
                            *deal_id,
                            Some((*pipeline_id, *status_id)),
                            tags,
                        );
                        Some(*deal_id)
                    }
                    Action::Annotate { deal_id, tags } => {
                        merge_update(&mut updates, *deal_id, None, tags);
                        Some(*deal_id)
                    }
                };
                if let Some(d) = deal_id {
                    if g.deal.is_none() {
                        let contact = g.tracked_contact.or_else(|| {
                            matching_contacts(&g.contacts, g.phone.as_ref(), g.email.as_ref(), None)
                                .first()
                                .map(|c| c.id)
                        });
                        g.deal = Some((d, contact));
                    }
                    notes.push((i, d, note_text(lead)));
                }
            }
            touched.push(i);
        }
        let cid = touched
            .first()
            .and_then(|i| groups.get(*i))
            .map(correlation_id)
            .unwrap_or_default();
        if !updates.is_empty()
            && let Err(e) = self.api.update_deals(&updates, &cid).await
        {
            stop_all(groups, &touched, Stop::from(e));
            return;
        }
        let batch: Vec<(i64, String)> = notes.iter().map(|(_, d, t)| (*d, t.clone())).collect();
        if !batch.is_empty()
            && let Err(e) = self.api.add_notes(&batch, &cid).await
        {
            stop_all(groups, &touched, Stop::from(e));
        }
    }

    async fn settle(&self, groups: Vec<Group>) -> Vec<(LeadId, SyncOutcome)> {
        let now: Timestamp = self.clock.now();
        let mut out = Vec::new();
        for g in groups {
            let keys: Vec<PersonKey> = g.keys.iter().cloned().collect();
            for lead in &g.leads {
                let outcome = match (&g.stop, g.deal) {
                    (None, Some((deal, contact))) => match self
                        .state
                        .mark_crm_synced(lead.id, deal, contact, &keys, now)
                        .await
                    {
                        Ok(()) => {
                            tracing::info!(event = "crm_synced", lead_id = %lead.id, correlation_id = %lead.correlation_id, deal_id = deal, "lead synced to CRM");
                            SyncOutcome::Synced { deal_id: deal }
                        }
                        Err(e) => self.failure(lead, &crate::error_chain(&e), false).await,
                    },
                    (None, None) => {
                        self.failure(lead, "no deal was found or created", false)
                            .await
                    }
                    (Some(Stop::Retry(r)), _) => self.failure(lead, r, false).await,
                    (Some(Stop::Failed(r)), _) => self.failure(lead, r, true).await,
                };
                out.push((lead.id, outcome));
            }
        }
        out
    }

    async fn failure(&self, lead: &Lead, reason: &str, permanent: bool) -> SyncOutcome {
        let give_up = permanent || lead.crm.attempts + 1 >= self.max_attempts;
        let reason = if give_up && !permanent {
            format!("gave up after {} attempts: {reason}", lead.crm.attempts + 1)
        } else {
            reason.to_owned()
        };
        match self
            .state
            .record_crm_failure(lead.id, &reason, give_up)
            .await
        {
            Ok(_) if give_up => {
                tracing::warn!(event = "crm_failed", lead_id = %lead.id, correlation_id = %lead.correlation_id, reason = %reason, "CRM sync failed");
                SyncOutcome::Failed(reason)
            }
            Ok(_) => {
                tracing::info!(lead_id = %lead.id, correlation_id = %lead.correlation_id, reason = %reason, "CRM sync will be retried");
                SyncOutcome::Retry(reason)
            }
            Err(e) => SyncOutcome::Retry(crate::error_chain(&e)),
        }
    }
}

/// One failed call of a phase stops every group that took part in it.
fn stop_all(groups: &mut [Group], which: &[usize], stop: Stop) {
    for i in which {
        if let Some(g) = groups.get_mut(*i) {
            g.stop = Some(stop.clone());
        }
    }
}

/// The deal a person's first lead in this batch settled on, as the policy sees it for their
/// later leads: open (stage 0 is no real stage — AmoCRM's ids are positive — so it is neither
/// won, lost nor a payment stage) and the most recently updated, so it is their candidate.
fn settled_deal(id: i64, contact: Option<i64>, pipeline_id: i64) -> CrmDeal {
    CrmDeal {
        id,
        pipeline_id,
        status_id: 0,
        updated_at: i64::MAX,
        closed_at: None,
        contact_ids: contact.into_iter().collect(),
    }
}

fn correlation_id(g: &Group) -> String {
    g.leads
        .first()
        .map(|l| l.correlation_id.clone())
        .unwrap_or_default()
}

fn merge_update(
    updates: &mut Vec<DealUpdate>,
    deal_id: i64,
    stage: Option<(i64, i64)>,
    tags: &[String],
) {
    match updates.iter_mut().find(|u| u.deal_id == deal_id) {
        Some(u) => {
            if stage.is_some() {
                u.stage = stage;
            }
            for t in tags {
                if !u.tags_to_add.contains(t) {
                    u.tags_to_add.push(t.clone());
                }
            }
        }
        None => updates.push(DealUpdate {
            deal_id,
            stage,
            tags_to_add: tags.to_vec(),
        }),
    }
}

fn new_deal(
    lead: &Lead,
    g: &Group,
    existing_contact: Option<i64>,
    pipeline_id: i64,
    status_id: Option<i64>,
    tags: &[String],
) -> NewDeal {
    let title = match lead.form {
        Form::ProfTest => "Профтест",
        Form::ExpressCourse => "Экспресс-курс",
    };
    NewDeal {
        request_id: lead.id.to_string(),
        name: format!("{title}: {}", lead.name.as_str()),
        pipeline_id,
        status_id,
        tags: tags.to_vec(),
        utm: lead.utm.clone(),
        referrer: lead.referrer.clone(),
        contact: match existing_contact {
            Some(id) => DealContact::Existing(id),
            None => DealContact::New(NewContact {
                name: lead.name.as_str().to_owned(),
                phone: g.phone.clone(),
                email: g.email.clone(),
            }),
        },
    }
}

/// The note a manager reads on the deal: form, campaign, UTM, payment, and the test result.
pub fn note_text(lead: &Lead) -> String {
    let mut lines = vec![
        format!(
            "Заявка с сайта: {}",
            match lead.form {
                Form::ProfTest => "ProfTest (профтест)",
                Form::ExpressCourse => "ExpressCourse (экспресс-курс)",
            }
        ),
        format!("Кампания: {}", lead.source_campaign),
    ];
    if let Some(pm) = lead.payment_method {
        lines.push(format!("Способ оплаты: {}", pm.display_name()));
    }
    let utm: Vec<String> = lead.utm.pairs().map(|(k, v)| format!("{k}={v}")).collect();
    if !utm.is_empty() {
        lines.push(format!("UTM: {}", utm.join(", ")));
    }
    if let Some(r) = &lead.referrer {
        lines.push(format!("Источник перехода: {r}"));
    }
    if let Some(p) = &lead.page_url {
        lines.push(format!("Страница: {p}"));
    }
    if lead.form == Form::ProfTest
        && let Some(m) = &lead.metadata
    {
        match m.get("result").or_else(|| m.get("testResult")) {
            Some(serde_json::Value::String(s)) => lines.push(format!("Результат теста: {s}")),
            Some(other) => lines.push(format!("Результат теста: {other}")),
            None => {
                let raw = serde_json::Value::Object(m.clone()).to_string();
                lines.push(format!(
                    "Данные теста: {}",
                    raw.chars().take(2000).collect::<String>()
                ));
            }
        }
    }
    lines.push(format!("ID заявки: {}", lead.id));
    lines.join("\n")
}

/// Union of leads that share a person key, each group oldest first.
fn group_by_person(leads: Vec<Lead>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for lead in leads {
        let keys: BTreeSet<PersonKey> = lead.person_keys().into_iter().collect();
        let (mut same, rest): (Vec<Group>, Vec<Group>) =
            groups.into_iter().partition(|g| !g.keys.is_disjoint(&keys));
        groups = rest;
        let mut merged = Group {
            leads: vec![],
            keys: keys.clone(),
            phone: None,
            email: None,
            tracked_deal: None,
            tracked_contact: None,
            contacts: vec![],
            deal: None,
            stop: None,
        };
        for g in same.drain(..) {
            merged.leads.extend(g.leads);
            merged.keys.extend(g.keys);
        }
        merged.leads.push(lead);
        merged.leads.sort_by_key(|l| (l.created_at, l.id));
        merged.phone = merged
            .leads
            .iter()
            .rev()
            .find_map(|l| l.phone.valid().cloned());
        merged.email = merged
            .leads
            .iter()
            .rev()
            .find_map(|l| l.email.valid().cloned());
        groups.push(merged);
    }
    groups
}
