//! `CrmStateStore` on SQLite: the CRM columns of `landing_leads` and `unified_lead_tracking`.

use async_trait::async_trait;
use jiff::Timestamp;
use landing_core::domain::{LeadId, PersonKey};
use landing_core::ports::{CrmStateStore, Requeue, StoreError};
use landing_core::time;
use rusqlite::{OptionalExtension, params};

use crate::SqliteStore;

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::unavailable(e)
}

#[async_trait]
impl CrmStateStore for SqliteStore {
    async fn pending_crm(&self, limit: usize) -> Result<Vec<LeadId>, StoreError> {
        let ids: Vec<String> = self
            .db()
            .run(move |c| {
                c.prepare_cached("SELECT id FROM landing_leads WHERE crm_status = 'pending' ORDER BY created_at, id LIMIT ?1")
                    .and_then(|mut st| st.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get(0))?.collect())
                    .map_err(unavailable)
            })
            .await?;
        ids.into_iter()
            .map(|id| {
                id.parse()
                    .map_err(|e| StoreError::corrupt("landing_leads.id", e))
            })
            .collect()
    }

    async fn record_crm_deal(
        &self,
        id: LeadId,
        deal_id: i64,
        contact_id: Option<i64>,
    ) -> Result<(), StoreError> {
        self.db()
            .run(move |c| {
                c.execute(
                    "UPDATE landing_leads SET amocrm_lead_id = ?2, amocrm_contact_id = COALESCE(?3, amocrm_contact_id) WHERE id = ?1",
                    params![id.to_string(), deal_id, contact_id],
                )
                .map(|_| ())
                .map_err(unavailable)
            })
            .await
    }

    async fn mark_crm_synced(
        &self,
        id: LeadId,
        deal_id: i64,
        contact_id: Option<i64>,
        keys: &[PersonKey],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let keys: Vec<String> = keys.iter().map(|k| k.as_str().to_owned()).collect();
        self.db()
            .run(move |c| {
                c.execute(
                    "UPDATE landing_leads
                        SET crm_status = 'synced', crm_error = NULL, amocrm_lead_id = ?2,
                            amocrm_contact_id = COALESCE(?3, amocrm_contact_id), crm_synced_at = ?4
                      WHERE id = ?1",
                    params![id.to_string(), deal_id, contact_id, time::format(at)],
                )
                .map_err(unavailable)?;
                for key in &keys {
                    c.execute(
                        "UPDATE unified_lead_tracking
                            SET amocrm_lead_id = ?2, amocrm_contact_id = COALESCE(?3, amocrm_contact_id)
                          WHERE person_key = ?1",
                        params![key, deal_id, contact_id],
                    )
                    .map_err(unavailable)?;
                }
                Ok(())
            })
            .await
    }

    async fn record_crm_failure(
        &self,
        id: LeadId,
        error: &str,
        permanent: bool,
    ) -> Result<u32, StoreError> {
        let error = error.chars().take(2000).collect::<String>();
        self.db()
            .run(move |c| {
                c.query_row(
                    "UPDATE landing_leads
                        SET crm_attempts = crm_attempts + 1, crm_error = ?2,
                            crm_status = CASE WHEN ?3 THEN 'failed' ELSE crm_status END
                      WHERE id = ?1 AND crm_status = 'pending'
                  RETURNING crm_attempts",
                    params![id.to_string(), error, permanent],
                    |r| r.get(0),
                )
                .optional()
                .map(Option::unwrap_or_default)
                .map_err(unavailable)
            })
            .await
    }

    async fn requeue_crm(&self, which: Requeue) -> Result<u64, StoreError> {
        self.db()
            .run(move |c| {
                let n = match which {
                    Requeue::Lead(id) => c.execute(
                        "UPDATE landing_leads SET crm_status = 'pending', crm_attempts = 0 WHERE id = ?1 AND crm_status IN ('failed', 'disabled')",
                        [id.to_string()],
                    ),
                    Requeue::AllFailed => {
                        c.execute("UPDATE landing_leads SET crm_status = 'pending', crm_attempts = 0 WHERE crm_status = 'failed'", [])
                    }
                }
                .map_err(unavailable)?;
                Ok(n as u64)
            })
            .await
    }
}
