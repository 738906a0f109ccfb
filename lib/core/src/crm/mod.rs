//! AmoCRM sync, the parts that need no network: what to do with a lead given what AmoCRM already
//! knows about the person (docs/architecture.md §6). The HTTP client lives in its own crate and only executes
//! the [`Action`] decided here.

pub mod model;
pub mod policy;
pub mod sync;

pub mod worker;

pub use sync::{CrmSync, SyncOutcome, note_text};
pub use worker::{CrmWorker, CrmWorkerConfig};

pub use model::{
    CreatedDeal, CrmContact, CrmDeal, CrmError, DealContact, DealUpdate, NewContact, NewDeal,
    STATUS_LOST, STATUS_WON,
};
pub use policy::{Action, CrmSettings, PolicyInput, decide};
