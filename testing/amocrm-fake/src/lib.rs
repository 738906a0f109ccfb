//! A stateful fake AmoCRM (API v4) server for tests and benchmarks.
//!
//! It implements the semantics described in `docs/amocrm.md` (§13 checklist): bearer
//! auth and the OAuth token endpoint with single-use rotating refresh tokens, fuzzy contact
//! search answering 204 when empty, `leads/complex` returning a bare array and creating a new
//! contact every time (unless duplicate control is on), tag replace/append semantics, stage
//! validation with 400 `validation-errors`, notes, a rolling-window 429 limiter with a non-JSON
//! body, an nginx-style 403 "blocked" mode and fault injection.
//!
//! It serves only the routes the real client (`landing-amocrm`) calls; every other path answers
//! 404, so a client change that needs a new endpoint fails here first instead of passing against
//! a fake that drifted from it. Tests read the fake's state through the accessors below.
//!
//! The server runs on its own thread with its own single-threaded tokio runtime, so it works
//! from sync code, from any test runtime flavour, and with paused tokio time in the client.
//!
//! ```no_run
//! use landing_amocrm_fake::{FakeAmo, FakeConfig};
//! let fake = FakeAmo::start(FakeConfig::default());
//! let contact = fake.add_contact("Иван", &["+7 999 555-11-22"], &[], &[]);
//! println!("{} {contact}", fake.base_url());
//! ```

mod api;
mod auth;
mod http;
mod model;
mod parse;
mod state;
mod token;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

pub use model::*;

use http::Shared;
use state::{ContactDraft, Fault, State, fix_pipeline};

/// A running fake AmoCRM server bound to `127.0.0.1:<random port>`; stops when dropped.
pub struct FakeAmo {
    shared: Arc<Shared>,
    base_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeAmo {
    /// Binds `127.0.0.1:0` and starts serving on a dedicated thread.
    pub fn start(config: FakeConfig) -> FakeAmo {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("set_nonblocking on listener");
        let addr = listener.local_addr().expect("local_addr");
        let base_url = format!("http://{addr}");
        let mut state = State::new(config);
        state.base_url = base_url.clone();
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .fallback(http::handle)
            .with_state(shared.clone());
        let thread = std::thread::Builder::new()
            .name("amocrm-fake".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("fake runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        res = axum::serve(listener, app).into_future() => {
                            if let Err(e) = res {
                                eprintln!("amocrm-fake: server error: {e}");
                            }
                        }
                        _ = rx => {}
                    }
                });
                rt.shutdown_background();
            })
            .expect("spawn fake thread");
        FakeAmo {
            shared,
            base_url,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>` (no trailing slash); API paths go under `/api/v4/…`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.shared.lock())
    }

    // ------------------------------------------------------------ seeding and reading

    /// Pipelines with their stages (142/143 included).
    pub fn pipelines(&self) -> Vec<PipelineConfig> {
        self.with(|s| s.pipelines.clone())
    }

    /// Adds (or replaces, by id) a pipeline at runtime.
    pub fn add_pipeline(&self, pipeline: PipelineConfig) {
        self.with(|s| {
            let p = fix_pipeline(pipeline);
            s.pipelines.retain(|x| x.id != p.id);
            s.pipelines.push(p);
        })
    }

    /// Seeds a contact. Phones/emails become multitext `PHONE`/`EMAIL` values (`WORK`);
    /// `extra_fields` are `(field name or code, value)` text fields, created if unknown —
    /// handy for reproducing fuzzy-search false positives (e.g. a payment code).
    pub fn add_contact(
        &self,
        name: &str,
        phones: &[&str],
        emails: &[&str],
        extra_fields: &[(&str, &str)],
    ) -> i64 {
        self.with(|s| {
            let mut fields: Vec<CustomField> = Vec::new();
            let mut push = |def: &FieldDef, value: &str| {
                let (enum_id, enum_code) = def
                    .enums
                    .first()
                    .map(|(id, c)| (Some(*id), Some(c.clone())))
                    .unwrap_or((None, None));
                let v = FieldValue {
                    value: value.to_owned(),
                    enum_id,
                    enum_code,
                };
                match fields.iter_mut().find(|f| f.field_id == def.id) {
                    Some(f) => f.values.push(v),
                    None => fields.push(CustomField {
                        field_id: def.id,
                        field_code: def.code.clone(),
                        field_name: def.name.clone(),
                        field_type: def.field_type.clone(),
                        values: vec![v],
                    }),
                }
            };
            let phone = s.ensure_contact_text_field("PHONE");
            let email = s.ensure_contact_text_field("EMAIL");
            for p in phones {
                push(&phone, p);
            }
            for e in emails {
                push(&email, e);
            }
            for (k, v) in extra_fields {
                let def = s.ensure_contact_text_field(k);
                push(&def, v);
            }
            let (first, last) = match name.split_once(' ') {
                Some((f, l)) => (f.to_owned(), l.to_owned()),
                None => (name.to_owned(), String::new()),
            };
            s.insert_contact(ContactDraft {
                name: name.to_owned(),
                first_name: first,
                last_name: last,
                custom_fields: fields,
                tags: Vec::new(),
            })
        })
    }

    /// Seeds a lead. Panics on an unknown pipeline, stage or contact (test set-up error).
    /// The first contact is the main one; 142/143 set `closed_at`; `updated_at` defaults to now.
    pub fn add_lead(
        &self,
        name: &str,
        pipeline_id: i64,
        status_id: i64,
        contact_ids: &[i64],
        tags: &[&str],
        updated_at: Option<i64>,
    ) -> i64 {
        self.with(|s| {
            assert!(
                s.stage_exists(pipeline_id, status_id),
                "add_lead: stage {status_id} does not exist in pipeline {pipeline_id}"
            );
            for c in contact_ids {
                assert!(s.contacts.contains_key(c), "add_lead: unknown contact {c}");
            }
            let now = s.now();
            let ts = updated_at.unwrap_or(now);
            let tags: Vec<Tag> = tags.iter().map(|t| s.lead_tag(t)).collect();
            let id = s.next_lead_id;
            s.next_lead_id += 1;
            let closed = status_id == STATUS_WON || status_id == STATUS_LOST;
            s.leads.insert(
                id,
                Lead {
                    id,
                    name: name.to_owned(),
                    price: 0,
                    pipeline_id,
                    status_id,
                    responsible_user_id: 504_141,
                    loss_reason_id: None,
                    contacts: contact_ids
                        .iter()
                        .enumerate()
                        .map(|(i, c)| LeadContact {
                            id: *c,
                            is_main: i == 0,
                        })
                        .collect(),
                    company_id: None,
                    tags,
                    custom_fields: Vec::new(),
                    created_at: ts.min(now),
                    updated_at: ts,
                    closed_at: closed.then_some(ts),
                },
            );
            id
        })
    }

    /// All contacts, ascending id (with `lead_ids` filled).
    pub fn contacts(&self) -> Vec<Contact> {
        self.with(|s| s.contacts.values().map(|c| s.contact_snapshot(c)).collect())
    }

    pub fn contact(&self, id: i64) -> Option<Contact> {
        self.with(|s| s.contacts.get(&id).map(|c| s.contact_snapshot(c)))
    }

    /// All leads, ascending id.
    pub fn leads(&self) -> Vec<Lead> {
        self.with(|s| s.leads.values().cloned().collect())
    }

    pub fn lead(&self, id: i64) -> Option<Lead> {
        self.with(|s| s.leads.get(&id).cloned())
    }

    /// Notes of a lead, in creation order.
    pub fn notes(&self, lead_id: i64) -> Vec<Note> {
        self.with(|s| {
            s.notes
                .iter()
                .filter(|n| n.entity_id == lead_id)
                .cloned()
                .collect()
        })
    }

    /// Every note.
    pub fn all_notes(&self) -> Vec<Note> {
        self.with(|s| s.notes.clone())
    }

    /// The rendered JSON of a lead exactly as `GET /api/v4/leads?filter[id][]=…&with=contacts`
    /// shows it.
    pub fn lead_json(&self, id: i64) -> Option<Value> {
        self.with(|s| s.leads.get(&id).map(|l| s.render_lead(l, true)))
    }

    // ------------------------------------------------------------ request log and counters

    /// The request log (oldest first, bounded by `FakeConfig::log_capacity`).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.with(|s| s.log.iter().cloned().collect())
    }

    pub fn stats(&self) -> Stats {
        self.with(|s| s.stats.clone())
    }

    /// Requests seen for an endpoint key, e.g. `"POST /api/v4/leads/complex"`.
    pub fn calls(&self, endpoint: &str) -> u64 {
        self.with(|s| s.stats.calls(endpoint))
    }

    /// Clears counters and the request log (state is kept).
    pub fn reset_stats(&self) {
        self.with(|s| {
            s.stats = Stats::default();
            s.log.clear();
        })
    }

    // ------------------------------------------------------------ faults

    /// The next `n` requests (any path) get `status` (500 → problem+json, 502/503/504 → nginx
    /// HTML) and are **not** executed.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.with(|s| {
            s.faults.extend((0..n).map(|_| Fault {
                status,
                execute: false,
            }))
        })
    }

    /// The next `n` requests **are executed** but answered with `status` — the ambiguous
    /// "did my write happen?" case that retries must survive.
    pub fn fail_next_after_execute(&self, n: usize, status: u16) {
        self.with(|s| {
            s.faults.extend((0..n).map(|_| Fault {
                status,
                execute: true,
            }))
        })
    }

    /// Delay before answering every request (`None` = no delay).
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.with(|s| s.delay = delay)
    }

    /// Delay only the next `n` requests.
    pub fn delay_next(&self, n: usize, delay: Duration) {
        self.with(|s| s.delay_next.extend((0..n).map(|_| delay)))
    }

    /// The next `n` authenticated API requests get 429 regardless of the rate.
    pub fn burst_429(&self, n: u64) {
        self.with(|s| s.burst_429 += n)
    }

    /// Blocked mode: every request (token endpoint included) gets an nginx 403 HTML page.
    pub fn set_blocked(&self, blocked: bool) {
        self.with(|s| s.blocked = blocked)
    }

    pub fn is_blocked(&self) -> bool {
        self.with(|s| s.blocked)
    }

    /// Drops pending faults, delays and 429 bursts.
    pub fn clear_faults(&self) {
        self.with(|s| {
            s.faults.clear();
            s.delay = None;
            s.delay_next.clear();
            s.burst_429 = 0;
        })
    }

    /// Duplicate control for `leads/complex` (off by default, like real accounts).
    pub fn set_duplicate_control(&self, on: bool) {
        self.with(|s| s.cfg.duplicate_control = on)
    }

    /// Executed requests allowed per integration per rolling window (`None` = unlimited).
    pub fn set_rate_limit(&self, limit: Option<u32>) {
        self.with(|s| {
            s.cfg.rate_limit = limit;
            s.windows.clear();
        })
    }

    // ------------------------------------------------------------ auth and clock

    /// A fresh single-use authorization code (valid `auth_code_ttl` seconds).
    pub fn issue_auth_code(&self) -> String {
        self.with(|s| s.issue_code())
    }

    /// Issues an access/refresh pair directly (as if the code flow had happened).
    pub fn issue_tokens(&self) -> TokenPair {
        self.with(|s| s.issue_pair())
    }

    /// Every access token issued so far **and** the long-lived token now answer 401.
    /// Refresh tokens stay usable; `set_long_lived_token` installs a new long-lived token.
    pub fn expire_access_tokens(&self) {
        self.with(|s| {
            for t in s.access_tokens.values_mut() {
                t.revoked = true;
            }
            s.long_lived_valid = false;
        })
    }

    /// Replaces the accepted long-lived token (`None` = none accepted).
    pub fn set_long_lived_token(&self, token: Option<String>) {
        self.with(|s| {
            s.long_lived_valid = token.is_some();
            s.cfg.long_lived_token = token;
        })
    }

    /// Every refresh token issued so far becomes revoked ("Token has been revoked").
    pub fn revoke_refresh_tokens(&self) {
        self.with(|s| {
            for t in s.refresh_tokens.values_mut() {
                t.used = true;
            }
        })
    }

    /// Moves the fake clock (timestamps, token/code expiry) forward by `secs`.
    pub fn advance_clock(&self, secs: i64) {
        self.with(|s| s.clock_offset += secs)
    }

    /// The fake clock, unix seconds.
    pub fn now(&self) -> i64 {
        self.with(|s| s.now())
    }
}

impl Drop for FakeAmo {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
