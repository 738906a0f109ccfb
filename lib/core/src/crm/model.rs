//! What the CRM sync and the CRM client say to each other (the `CrmApi` port's vocabulary): the
//! contacts and deals AmoCRM returns, the deals we create and update, and how a call fails.

use crate::domain::{Email, Phone, Utm};

/// AmoCRM's built-in "closed – won" stage, present in every pipeline.
pub const STATUS_WON: i64 = 142;
/// AmoCRM's built-in "closed – lost" stage, present in every pipeline.
pub const STATUS_LOST: i64 = 143;

/// A contact as AmoCRM returned it from a search, values as stored (`"8 777 123-45-67"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmContact {
    pub id: i64,
    pub name: String,
    /// Values of the PHONE field only.
    pub phones: Vec<String>,
    /// Values of the EMAIL field only.
    pub emails: Vec<String>,
    /// `_embedded.leads[].id`: ids only, no status (§0.3).
    pub lead_ids: Vec<i64>,
    pub updated_at: i64,
}

/// A deal's details (`GET /api/v4/leads?filter[id][]=…&with=contacts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmDeal {
    pub id: i64,
    pub pipeline_id: i64,
    pub status_id: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
    pub contact_ids: Vec<i64>,
}

impl CrmDeal {
    /// Neither won nor lost, and not closed.
    pub fn is_open(&self) -> bool {
        self.status_id != STATUS_WON && self.status_id != STATUS_LOST && self.closed_at.is_none()
    }
}

/// A CRM call failed. `Transient`: retry later; `Permanent`: the same request will never work
/// (validation error, bad credentials, blocked account) — the lead is marked failed with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrmError {
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Permanent(String),
}

/// A contact to create together with a deal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContact {
    pub name: String,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DealContact {
    Existing(i64),
    New(NewContact),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeal {
    /// Our lead id, echoed back by the CRM to map answers to requests.
    pub request_id: String,
    pub name: String,
    pub pipeline_id: i64,
    pub status_id: Option<i64>,
    pub tags: Vec<String>,
    pub utm: Utm,
    pub referrer: Option<String>,
    pub contact: DealContact,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedDeal {
    pub deal_id: i64,
    pub contact_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealUpdate {
    pub deal_id: i64,
    /// Stage move: `pipeline_id` and `status_id` always travel together.
    pub stage: Option<(i64, i64)>,
    pub tags_to_add: Vec<String>,
}
