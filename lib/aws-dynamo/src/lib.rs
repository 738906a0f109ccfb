//! DynamoDB adapters for the storage ports (`LeadStore`, `NotificationStore`, `CrmStateStore`,
//! `TokenStore`), with the same semantics as the SQLite adapters (`landing-sqlite`) and checked
//! by the same contract suites (`landing-contract`, on moto).
//!
//! # Tables, keys and indexes
//!
//! The SAM template copies this layout; [`create_tables`] creates exactly it (tests, dev).
//! Every table is on-demand (`PAY_PER_REQUEST`). Timestamps are strings in
//! [`landing_core::time::format`] (UTC RFC 3339, three fractional digits), so string order is
//! time order in key conditions and comparisons; counters and CRM ids are numbers; absent
//! optional values are absent attributes, never `NULL`.
//!
//! | table (env var) | key | indexes / extras |
//! |---|---|---|
//! | `landing_leads` (`LEADS_TABLE`) | PK `id` (S, UUIDv7) | sparse GSI `crm-pending`: PK `crm_pending` (S, `"pending"`, present only while `crm_status = pending`), SK `created_at` (S), projection `KEYS_ONLY`; GSI `by-day`: PK `created_day` (S, the UTC day `2026-12-01`), SK `created_at`, `KEYS_ONLY`; GSI `by-phone`: PK `phone`, SK `created_at`, `KEYS_ONLY`; GSI `by-email`: PK `email_key` (S, the stored email lower-cased), SK `created_at`, `KEYS_ONLY`; stream `NEW_IMAGE` (the CRM sync trigger) |
//! | `scheduled_notifications` (`NOTIFICATIONS_TABLE`) | PK `id` (S) | GSI `by-lead`: PK `lead_id` (S), projection `ALL`; sparse GSI `due`: PK `due_shard` (S, always `"due"`), SK `due_at` (S), projection `ALL` — both attributes present only while `status` is `pending` (`due_at = send_at`) or `sending` (`due_at = claimed_until`), removed when the row settles; GSI `by-day`: PK `lead_day` (S, the UTC day its lead was created), `KEYS_ONLY` |
//! | `unified_lead_tracking` (`TRACKING_TABLE`) | PK `person_key` (S) | — |
//! | `idempotency` (`IDEMPOTENCY_TABLE`) | PK `key` (S) | TTL attribute `ttl` (N, epoch seconds of `expires_at`; TTL only cleans up — expiry is decided in code from `expires_at`) |
//! | `tokens` (`TOKENS_TABLE`) | PK `id` (S, the single item `"amocrm"`) | — |
//! | `quotas` (`QUOTAS_TABLE`) | PK `key` (S, the quota's key and its window start, `phone:+7701…#1767225600000`) | attribute `used` (N); TTL attribute `ttl` (N, epoch seconds a day after the window ends) |
//! | `suppressed_addresses` (`SUPPRESSION_TABLE`) | PK `email` (S, `Email::match_key`) | attributes `reason` (S), `suppressed_at` (S); written once (`attribute_not_exists`) |
//!
//! `due` has a single constant partition key: "what is claimable by T" is one Query
//! (`due_shard = "due" AND due_at <= T`). That puts every unsettled notification in one index
//! partition, which is fine for this volume (a few thousand rows a day at most; one partition
//! takes 1,000 writes/s); shard it (`due#0..n`, query each) if that ever changes.
//!
//! The `by-day`, `by-phone` and `by-email` indexes serve the operators' reads (report, export,
//! `lead show --phone`): a query per day or person and a `BatchGetItem` of the items, never a
//! scan. `KEYS_ONLY`, so a lead's later updates (CRM sync, release) do not rewrite them.
//!
//! GSIs are eventually consistent: a Query may return a row that was just claimed or settled,
//! or miss one written a moment ago. Every state change is therefore a conditional write on the
//! base item, whose condition is what guarantees "never claimed twice"; an index read only picks
//! candidates (a missed row is found by the next sweep).

mod crm;
mod errors;
mod inspect;
mod intake;
mod items;
mod notifications;
mod ops;
mod quotas;
mod schema;
mod suppression;
mod tokens;

use aws_sdk_dynamodb::Client;
use landing_core::config::{ConfigError, Env};

pub use schema::{SchemaError, create_tables};

/// Names of the seven tables (they differ per stack / environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    pub leads: String,
    pub notifications: String,
    pub tracking: String,
    pub idempotency: String,
    pub tokens: String,
    pub quotas: String,
    pub suppression: String,
}

impl Tables {
    pub const LEADS_VAR: &'static str = "LEADS_TABLE";
    pub const NOTIFICATIONS_VAR: &'static str = "NOTIFICATIONS_TABLE";
    pub const TRACKING_VAR: &'static str = "TRACKING_TABLE";
    pub const IDEMPOTENCY_VAR: &'static str = "IDEMPOTENCY_TABLE";
    pub const TOKENS_VAR: &'static str = "TOKENS_TABLE";
    pub const QUOTAS_VAR: &'static str = "QUOTAS_TABLE";
    pub const SUPPRESSION_VAR: &'static str = "SUPPRESSION_TABLE";

    /// Reads `LEADS_TABLE`, `NOTIFICATIONS_TABLE`, `TRACKING_TABLE`, `IDEMPOTENCY_TABLE`,
    /// `TOKENS_TABLE`, `QUOTAS_TABLE` and `SUPPRESSION_TABLE`; every one is required (there is no sensible default name for a table of
    /// a given stack), and the error names the missing variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let get = |var: &str| {
            env.get(var)
                .map(str::to_owned)
                .ok_or_else(|| ConfigError::new(var, "is required (the DynamoDB table name)"))
        };
        Ok(Tables {
            leads: get(Self::LEADS_VAR)?,
            notifications: get(Self::NOTIFICATIONS_VAR)?,
            tracking: get(Self::TRACKING_VAR)?,
            idempotency: get(Self::IDEMPOTENCY_VAR)?,
            tokens: get(Self::TOKENS_VAR)?,
            quotas: get(Self::QUOTAS_VAR)?,
            suppression: get(Self::SUPPRESSION_VAR)?,
        })
    }

    /// The design's logical names (`landing_leads`, ...) behind `prefix`: tests give every case
    /// its own prefix, so that cases sharing one emulator never see each other's items.
    pub fn prefixed(prefix: &str) -> Self {
        Tables {
            leads: format!("{prefix}landing_leads"),
            notifications: format!("{prefix}scheduled_notifications"),
            tracking: format!("{prefix}unified_lead_tracking"),
            idempotency: format!("{prefix}idempotency"),
            tokens: format!("{prefix}tokens"),
            quotas: format!("{prefix}quotas"),
            suppression: format!("{prefix}suppressed_addresses"),
        }
    }
}

/// The DynamoDB implementation of every storage port. Cheap to clone (the SDK client is an
/// `Arc` inside); build it once per Lambda container.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    tables: Tables,
}

impl DynamoStore {
    pub fn new(client: Client, tables: Tables) -> Self {
        DynamoStore { client, tables }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn tables(&self) -> &Tables {
        &self.tables
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_env_reads_every_table_and_names_the_missing_one() {
        let all = [
            ("LEADS_TABLE", "l"),
            ("NOTIFICATIONS_TABLE", "n"),
            ("TRACKING_TABLE", "t"),
            ("IDEMPOTENCY_TABLE", "i"),
            ("TOKENS_TABLE", "k"),
            ("QUOTAS_TABLE", "q"),
            ("SUPPRESSION_TABLE", "s"),
        ];
        let tables = Tables::from_env(&Env::from_pairs(all)).unwrap();
        assert_eq!(
            tables,
            Tables {
                leads: "l".into(),
                notifications: "n".into(),
                tracking: "t".into(),
                idempotency: "i".into(),
                tokens: "k".into(),
                quotas: "q".into(),
                suppression: "s".into(),
            }
        );
        for missing in 0..all.len() {
            let env = Env::from_pairs(
                all.iter()
                    .enumerate()
                    .filter(|(i, _)| *i != missing)
                    .map(|(_, kv)| *kv),
            );
            let err = Tables::from_env(&env).unwrap_err();
            assert_eq!(err.var, all[missing].0);
            assert!(err.to_string().starts_with(all[missing].0), "{err}");
        }
        let blank =
            Env::from_pairs(all.map(|(k, v)| (k, if k == "TOKENS_TABLE" { " " } else { v })));
        assert_eq!(Tables::from_env(&blank).unwrap_err().var, "TOKENS_TABLE");
    }
}
