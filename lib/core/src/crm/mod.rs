//! AmoCRM sync, the parts that need no network: what to do with a lead given what AmoCRM already
//! knows about the person (DESIGN §6). The HTTP client lives in its own crate and only executes
//! the [`Action`] decided here.

pub mod policy;
pub mod sync;

pub mod worker;

pub use sync::{CrmSync, SyncOutcome, note_text};
pub use worker::{CrmWorker, CrmWorkerConfig};

pub use policy::{
    Action, ContactRef, CrmContact, CrmDeal, CrmSettings, PolicyInput, STATUS_LOST, STATUS_WON,
    best_contact, candidate_deal, contact_matches, decide, email_matches, matching_contacts,
    phone_matches,
};
