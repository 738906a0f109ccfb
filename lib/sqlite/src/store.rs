//! `LeadStore` and `NotificationStore` on SQLite.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use landing_core::domain::{
    CrmStatus, HoldReason, IdempotencyRecord, Lead, LeadId, Notification, PersonKey, StoredLead,
    StoredNotification, StoredResponse, StoredTracking, SuppressReason, Tracking, Utm,
};
use landing_core::guard::Quota;
use landing_core::ports::{
    EmailEventRecord, Inspect, IntakeOutcome, IntakeWrite, LeadOps, LeadStore, NotificationStore,
    QuotaStore, Released, Resend, StoreError,
};
use landing_core::time;
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::db::Db;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: Db,
}

impl SqliteStore {
    pub fn new(db: Db) -> Self {
        SqliteStore { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::unavailable(e)
}

fn corrupt(column: &'static str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::corrupt(column, detail)
}

fn ts(raw: &str, column: &'static str) -> Result<Timestamp, StoreError> {
    time::parse(raw).map_err(|e| corrupt(column, e))
}

fn opt_ts(raw: Option<String>, column: &'static str) -> Result<Option<Timestamp>, StoreError> {
    raw.map(|r| ts(&r, column)).transpose()
}

fn json_text<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(StoreError::encode)
}

const LEAD_COLUMNS: &str = "id, created_at, form, source_campaign, name, email, phone, payment_method, metadata,
    utm_source, utm_medium, utm_campaign, utm_content, utm_term, referrer, page_url, warnings, correlation_id,
    crm_status, crm_attempts, crm_error, amocrm_lead_id, amocrm_contact_id, crm_synced_at,
    client_ip_hash, quarantine_reason";

/// Reads a `landing_leads` row; `warnings` is JSON text in SQLite. The parsing rules of the
/// values themselves are the core's (`StoredLead::into_lead`), shared with every adapter.
fn read_lead_row(r: &Row<'_>) -> rusqlite::Result<(StoredLead, String)> {
    Ok((
        StoredLead {
            id: r.get(0)?,
            created_at: r.get(1)?,
            form: r.get(2)?,
            source_campaign: r.get(3)?,
            name: r.get(4)?,
            email: r.get(5)?,
            phone: r.get(6)?,
            payment_method: r.get(7)?,
            metadata: r.get(8)?,
            utm_source: r.get(9)?,
            utm_medium: r.get(10)?,
            utm_campaign: r.get(11)?,
            utm_content: r.get(12)?,
            utm_term: r.get(13)?,
            referrer: r.get(14)?,
            page_url: r.get(15)?,
            warnings: Vec::new(),
            correlation_id: r.get(17)?,
            crm_status: r.get(18)?,
            crm_attempts: r.get(19)?,
            crm_error: r.get(20)?,
            amocrm_lead_id: r.get(21)?,
            amocrm_contact_id: r.get(22)?,
            crm_synced_at: r.get(23)?,
            client_ip_hash: r.get(24)?,
            quarantine_reason: r.get(25)?,
        },
        r.get(16)?,
    ))
}

fn into_lead((mut row, warnings): (StoredLead, String)) -> Result<Lead, StoreError> {
    row.warnings =
        serde_json::from_str(&warnings).map_err(|e| corrupt("landing_leads.warnings", e))?;
    Ok(row.into_lead()?)
}

const NOTIFICATION_COLUMNS: &str =
    "id, lead_id, channel, recipient, source_campaign, send_at, status, attempts,
    claimed_until, last_error, provider_message_id, sent_at, failed_at, suppressed_reason,
    hold_reason, delivered_at, feedback, feedback_detail";

fn read_notification_row(r: &Row<'_>) -> rusqlite::Result<StoredNotification> {
    Ok(StoredNotification {
        id: r.get(0)?,
        lead_id: r.get(1)?,
        channel: r.get(2)?,
        recipient: r.get(3)?,
        source_campaign: r.get(4)?,
        send_at: r.get(5)?,
        status: r.get(6)?,
        attempts: r.get(7)?,
        claimed_until: r.get(8)?,
        last_error: r.get(9)?,
        provider_message_id: r.get(10)?,
        sent_at: r.get(11)?,
        failed_at: r.get(12)?,
        suppressed_reason: r.get(13)?,
        hold_reason: r.get(14)?,
        delivered_at: r.get(15)?,
        feedback: r.get(16)?,
        feedback_detail: r.get(17)?,
    })
}

fn into_notification(row: StoredNotification) -> Result<Notification, StoreError> {
    Ok(row.into_notification()?)
}

fn insert_lead(c: &Connection, lead: &Lead) -> Result<(), StoreError> {
    let l = StoredLead::from(lead);
    let warnings = json_text(&l.warnings)?;
    c.prepare_cached(&format!(
        "INSERT INTO landing_leads ({LEAD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)"
    ))
    .and_then(|mut st| {
        st.execute(params![
            l.id,
            l.created_at,
            l.form,
            l.source_campaign,
            l.name,
            l.email,
            l.phone,
            l.payment_method,
            l.metadata,
            l.utm_source,
            l.utm_medium,
            l.utm_campaign,
            l.utm_content,
            l.utm_term,
            l.referrer,
            l.page_url,
            warnings,
            l.correlation_id,
            l.crm_status,
            l.crm_attempts,
            l.crm_error,
            l.amocrm_lead_id,
            l.amocrm_contact_id,
            l.crm_synced_at,
            l.client_ip_hash,
            l.quarantine_reason,
        ])
    })
    .map_err(unavailable)?;
    Ok(())
}

fn insert_notification(c: &Connection, n: &Notification) -> Result<(), StoreError> {
    let n = StoredNotification::from(n);
    c.prepare_cached(&format!(
        "INSERT INTO scheduled_notifications ({NOTIFICATION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
    ))
    .and_then(|mut st| {
        st.execute(params![
            n.id,
            n.lead_id,
            n.channel,
            n.recipient,
            n.source_campaign,
            n.send_at,
            n.status,
            n.attempts,
            n.claimed_until,
            n.last_error,
            n.provider_message_id,
            n.sent_at,
            n.failed_at,
            n.suppressed_reason,
            n.hold_reason,
            n.delivered_at,
            n.feedback,
            n.feedback_detail,
        ])
    })
    .map_err(unavailable)?;
    Ok(())
}

const TRACKING_COLUMNS: &str = "person_key, first_seen, last_seen, first_campaign, first_utm, last_campaign, last_utm,
    last_lead_id, proftest_count, expresscourse_count, last_payment_method, amocrm_contact_id, amocrm_lead_id";

/// Reads a `unified_lead_tracking` row; the UTM sets are JSON text in SQLite. The rules for the
/// values themselves are the core's (`StoredTracking::into_tracking`), shared with DynamoDB.
fn read_tracking(c: &Connection, key: &PersonKey) -> Result<Option<Tracking>, StoreError> {
    let row: Option<(StoredTracking, String, String)> = c
        .prepare_cached(&format!(
            "SELECT {TRACKING_COLUMNS} FROM unified_lead_tracking WHERE person_key = ?1"
        ))
        .and_then(|mut st| {
            st.query_row([key.as_str()], |r| {
                Ok((
                    StoredTracking {
                        person_key: r.get(0)?,
                        first_seen: r.get(1)?,
                        last_seen: r.get(2)?,
                        first_campaign: r.get(3)?,
                        first_utm: Utm::default(),
                        last_campaign: r.get(5)?,
                        last_utm: Utm::default(),
                        last_lead_id: r.get(7)?,
                        proftest_count: r.get(8)?,
                        expresscourse_count: r.get(9)?,
                        last_payment_method: r.get(10)?,
                        amocrm_contact_id: r.get(11)?,
                        amocrm_lead_id: r.get(12)?,
                    },
                    r.get(4)?,
                    r.get(6)?,
                ))
            })
            .optional()
        })
        .map_err(unavailable)?;
    let Some((mut row, first_utm, last_utm)) = row else {
        return Ok(None);
    };
    row.first_utm = serde_json::from_str(&first_utm)
        .map_err(|e| corrupt("unified_lead_tracking.first_utm", e))?;
    row.last_utm = serde_json::from_str(&last_utm)
        .map_err(|e| corrupt("unified_lead_tracking.last_utm", e))?;
    Ok(Some(row.into_tracking()?))
}

fn write_tracking(c: &Connection, t: &Tracking) -> Result<(), StoreError> {
    let t = StoredTracking::from(t);
    let (first_utm, last_utm) = (json_text(&t.first_utm)?, json_text(&t.last_utm)?);
    c.prepare_cached(&format!(
        "INSERT OR REPLACE INTO unified_lead_tracking ({TRACKING_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))
    .and_then(|mut st| {
        st.execute(params![
            t.person_key,
            t.first_seen,
            t.last_seen,
            t.first_campaign,
            first_utm,
            t.last_campaign,
            last_utm,
            t.last_lead_id,
            t.proftest_count,
            t.expresscourse_count,
            t.last_payment_method,
            t.amocrm_contact_id,
            t.amocrm_lead_id,
        ])
    })
    .map_err(unavailable)?;
    Ok(())
}

/// Looks the key up; `Some(outcome)` if the request must not be executed again.
fn check_idempotency(
    c: &Connection,
    rec: &IdempotencyRecord,
    now: Timestamp,
) -> Result<Option<IntakeOutcome>, StoreError> {
    type Raw = (String, String, Option<u16>, Option<String>, String);
    let existing: Option<Raw> = c
        .prepare_cached("SELECT payload_hash, status, response_status, response_body, expires_at FROM idempotency WHERE key = ?1")
        .and_then(|mut st| st.query_row([&rec.key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).optional())
        .map_err(unavailable)?;
    let Some((hash, status, resp_status, resp_body, expires_at)) = existing else {
        return Ok(None);
    };
    if ts(&expires_at, "idempotency.expires_at")? <= now {
        return Ok(None);
    }
    if hash != rec.payload_hash {
        return Ok(Some(IntakeOutcome::KeyReused));
    }
    match (status.as_str(), resp_status, resp_body) {
        ("completed", Some(status), Some(body)) => {
            Ok(Some(IntakeOutcome::Replay(StoredResponse { status, body })))
        }
        _ => Ok(Some(IntakeOutcome::InFlight)),
    }
}

fn claim(
    c: &Connection,
    lead: Option<LeadId>,
    due_by: Timestamp,
    now: Timestamp,
    lease: Duration,
    limit: usize,
) -> Result<Vec<Notification>, StoreError> {
    let lead_filter = if lead.is_some() {
        "AND lead_id = ?5"
    } else {
        "AND ?5 IS NULL"
    };
    // Each branch of the OR matches one of the two indexes on (status, ...).
    let sql = format!(
        "UPDATE scheduled_notifications
            SET status = 'sending', attempts = attempts + 1, claimed_until = ?3, hold_reason = NULL
          WHERE id IN (
                SELECT id FROM scheduled_notifications
                 WHERE ((status = 'pending' AND send_at <= ?1) OR (status = 'sending' AND claimed_until <= ?2))
                   {lead_filter}
                 ORDER BY send_at, id
                 LIMIT ?4)
        RETURNING {NOTIFICATION_COLUMNS}"
    );
    let rows: Vec<StoredNotification> = c
        .prepare_cached(&sql)
        .and_then(|mut st| {
            st.query_map(
                params![
                    time::format(due_by),
                    time::format(now),
                    time::format(time::add(now, lease)),
                    i64::try_from(limit).unwrap_or(i64::MAX),
                    lead.map(|l| l.to_string()),
                ],
                read_notification_row,
            )?
            .collect()
        })
        .map_err(unavailable)?;
    let mut out = rows
        .into_iter()
        .map(into_notification)
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by_key(|n| (n.send_at, n.id));
    Ok(out)
}

/// A transition out of `sending`, allowed only to the holder of the latest claim.
fn settle(c: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<bool, StoreError> {
    c.prepare_cached(sql)
        .and_then(|mut st| st.execute(params))
        .map(|n| n == 1)
        .map_err(unavailable)
}

#[async_trait]
impl LeadStore for SqliteStore {
    async fn commit_intake(&self, write: IntakeWrite) -> Result<IntakeOutcome, StoreError> {
        self.db
            .run(move |c| {
                if let Some(rec) = &write.idempotency {
                    if let Some(outcome) = check_idempotency(c, rec, write.now)? {
                        return Ok(outcome);
                    }
                    c.prepare_cached(
                        "INSERT OR REPLACE INTO idempotency (key, payload_hash, status, response_status, response_body, created_at, expires_at)
                         VALUES (?1, ?2, 'completed', ?3, ?4, ?5, ?6)",
                    )
                    .and_then(|mut st| {
                        st.execute(params![
                            rec.key,
                            rec.payload_hash,
                            rec.response.status,
                            rec.response.body,
                            time::format(rec.created_at),
                            time::format(rec.expires_at),
                        ])
                    })
                    .map_err(unavailable)?;
                }
                insert_lead(c, &write.lead)?;
                for n in &write.notifications {
                    insert_notification(c, n)?;
                }
                for touch in &write.tracking {
                    let row = match read_tracking(c, &touch.key)? {
                        Some(mut t) => {
                            t.apply(touch);
                            t
                        }
                        None => Tracking::first(touch),
                    };
                    write_tracking(c, &row)?;
                }
                Ok(IntakeOutcome::Committed)
            })
            .await
    }

    async fn get_lead(&self, id: LeadId) -> Result<Option<Lead>, StoreError> {
        let row = self
            .db
            .run(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {LEAD_COLUMNS} FROM landing_leads WHERE id = ?1"
                ))
                .and_then(|mut st| st.query_row([id.to_string()], read_lead_row).optional())
                .map_err(unavailable)
            })
            .await?;
        row.map(into_lead).transpose()
    }

    async fn get_tracking(&self, key: &PersonKey) -> Result<Option<Tracking>, StoreError> {
        let key = key.clone();
        self.db.run(move |c| read_tracking(c, &key)).await
    }
}

#[async_trait]
impl Inspect for SqliteStore {
    async fn notifications_for_lead(&self, id: LeadId) -> Result<Vec<Notification>, StoreError> {
        let rows: Vec<StoredNotification> = self
            .db
            .run(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {NOTIFICATION_COLUMNS} FROM scheduled_notifications WHERE lead_id = ?1 ORDER BY channel"
                ))
                .and_then(|mut st| st.query_map([id.to_string()], read_notification_row)?.collect())
                .map_err(unavailable)
            })
            .await?;
        rows.into_iter().map(into_notification).collect()
    }

    async fn leads_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(Lead, Vec<Notification>)>, StoreError> {
        let (from, to) = (time::format(from), time::format(to));
        type Rows = (Vec<(StoredLead, String)>, Vec<StoredNotification>);
        let (leads, notifications): Rows = self
            .db
            .run(move |c| {
                let leads = c
                    .prepare_cached(&format!(
                        "SELECT {LEAD_COLUMNS} FROM landing_leads
                          WHERE created_at >= ?1 AND created_at < ?2 ORDER BY created_at, id"
                    ))
                    .and_then(|mut st| st.query_map([&from, &to], read_lead_row)?.collect())
                    .map_err(unavailable)?;
                let columns = NOTIFICATION_COLUMNS
                    .split(',')
                    .map(|c| format!("n.{}", c.trim()))
                    .collect::<Vec<_>>()
                    .join(", ");
                let notifications = c
                    .prepare_cached(&format!(
                        "SELECT {columns} FROM scheduled_notifications n
                           JOIN landing_leads l ON l.id = n.lead_id
                          WHERE l.created_at >= ?1 AND l.created_at < ?2"
                    ))
                    .and_then(|mut st| st.query_map([&from, &to], read_notification_row)?.collect())
                    .map_err(unavailable)?;
                Ok((leads, notifications))
            })
            .await?;
        let mut by_lead: std::collections::HashMap<LeadId, Vec<Notification>> =
            std::collections::HashMap::new();
        for n in notifications {
            let n = into_notification(n)?;
            by_lead.entry(n.lead_id).or_default().push(n);
        }
        leads
            .into_iter()
            .map(|row| {
                let lead = into_lead(row)?;
                let mut rows = by_lead.remove(&lead.id).unwrap_or_default();
                rows.sort_by_key(|n| n.channel().as_str());
                Ok((lead, rows))
            })
            .collect()
    }

    async fn leads_of(&self, key: &PersonKey) -> Result<Vec<Lead>, StoreError> {
        let (sql, value) = match key.as_str().split_once(':') {
            Some(("phone", p)) => ("phone = ?1", p.to_owned()),
            Some(("email", e)) => ("lower(email) = ?1", e.to_owned()),
            _ => return Ok(Vec::new()),
        };
        let rows: Vec<(StoredLead, String)> = self
            .db
            .run(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {LEAD_COLUMNS} FROM landing_leads WHERE {sql} ORDER BY created_at DESC, id DESC"
                ))
                .and_then(|mut st| st.query_map([&value], read_lead_row)?.collect())
                .map_err(unavailable)
            })
            .await?;
        rows.into_iter().map(into_lead).collect()
    }
}

#[async_trait]
impl NotificationStore for SqliteStore {
    async fn claim_due(
        &self,
        due_by: Timestamp,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        self.db
            .run(move |c| claim(c, None, due_by, now, lease, limit))
            .await
    }

    async fn claim_for_lead(
        &self,
        lead_id: LeadId,
        due_by: Timestamp,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Vec<Notification>, StoreError> {
        self.db
            .run(move |c| claim(c, Some(lead_id), due_by, now, lease, 2))
            .await
    }

    async fn mark_sent(
        &self,
        id: Uuid,
        attempt: u32,
        provider_message_id: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let provider = provider_message_id.to_owned();
        self.db
            .run(move |c| {
                settle(
                    c,
                    "UPDATE scheduled_notifications
                        SET status = 'sent', provider_message_id = ?3, sent_at = ?4, claimed_until = NULL, last_error = NULL
                      WHERE id = ?1 AND status = 'sending' AND attempts = ?2",
                    params![id.to_string(), attempt, provider, time::format(now)],
                )
            })
            .await
    }

    async fn release(
        &self,
        id: Uuid,
        attempt: u32,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let error = error.to_owned();
        self.db
            .run(move |c| {
                settle(
                    c,
                    "UPDATE scheduled_notifications
                        SET status = 'pending', send_at = ?3, last_error = ?4, claimed_until = NULL
                      WHERE id = ?1 AND status = 'sending' AND attempts = ?2",
                    params![id.to_string(), attempt, time::format(retry_at), error],
                )
            })
            .await
    }

    async fn mark_failed(
        &self,
        id: Uuid,
        attempt: u32,
        error: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let error = error.to_owned();
        self.db
            .run(move |c| {
                settle(
                    c,
                    "UPDATE scheduled_notifications
                        SET status = 'failed', last_error = ?3, failed_at = ?4, claimed_until = NULL
                      WHERE id = ?1 AND status = 'sending' AND attempts = ?2",
                    params![id.to_string(), attempt, error, time::format(now)],
                )
            })
            .await
    }

    async fn suppress(
        &self,
        id: Uuid,
        attempt: u32,
        reason: SuppressReason,
        _now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.db
            .run(move |c| {
                settle(
                    c,
                    "UPDATE scheduled_notifications
                        SET status = 'suppressed', suppressed_reason = ?3, claimed_until = NULL
                      WHERE id = ?1 AND status = 'sending' AND attempts = ?2",
                    params![id.to_string(), attempt, reason.as_str()],
                )
            })
            .await
    }

    async fn record_email_event(
        &self,
        id: Uuid,
        event: &EmailEventRecord,
    ) -> Result<bool, StoreError> {
        let id = id.to_string();
        let event = event.clone();
        self.db
            .run(move |c| {
                match &event {
                    EmailEventRecord::Delivered { at } => c.execute(
                        "UPDATE scheduled_notifications SET delivered_at = ?2 WHERE id = ?1",
                        params![id, time::format(*at)],
                    ),
                    EmailEventRecord::Feedback { kind, detail } => c.execute(
                        "UPDATE scheduled_notifications SET feedback = ?2, feedback_detail = ?3 WHERE id = ?1",
                        params![id, kind.as_str(), detail],
                    ),
                }
                .map(|n| n == 1)
                .map_err(unavailable)
            })
            .await
    }

    async fn hold(
        &self,
        id: Uuid,
        attempt: u32,
        until: Timestamp,
        reason: HoldReason,
    ) -> Result<bool, StoreError> {
        self.db
            .run(move |c| {
                settle(
                    c,
                    "UPDATE scheduled_notifications
                        SET status = 'pending', send_at = ?3, hold_reason = ?4, claimed_until = NULL,
                            attempts = attempts - 1
                      WHERE id = ?1 AND status = 'sending' AND attempts = ?2",
                    params![id.to_string(), attempt, time::format(until), reason.as_str()],
                )
            })
            .await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let raw: Option<String> = self
            .db
            .run(|c| {
                c.prepare_cached(
                    "SELECT MIN(t) FROM (
                        SELECT MIN(send_at) AS t FROM scheduled_notifications WHERE status = 'pending'
                        UNION ALL
                        SELECT MIN(claimed_until) AS t FROM scheduled_notifications WHERE status = 'sending')",
                )
                .and_then(|mut st| st.query_row([], |r| r.get(0)))
                .map_err(unavailable)
            })
            .await?;
        opt_ts(raw, "scheduled_notifications.send_at")
    }

    async fn release_all_claims(&self) -> Result<u64, StoreError> {
        self.db
            .run(|c| {
                c.execute(
                    "UPDATE scheduled_notifications SET status = 'pending', claimed_until = NULL WHERE status = 'sending'",
                    [],
                )
                .map(|n| n as u64)
                .map_err(unavailable)
            })
            .await
    }
}

#[async_trait]
impl QuotaStore for SqliteStore {
    async fn take(&self, quotas: &[Quota], now: Timestamp) -> Result<Vec<usize>, StoreError> {
        let quotas: Vec<(String, u32, i64)> = quotas
            .iter()
            .map(|q| (q.item_key(now), q.limit, q.window_end(now).as_millisecond()))
            .collect();
        // One job of the single writer: reads and increments cannot interleave with another
        // taker's, which is what makes "all or none" and "never over" hold.
        self.db
            .run(move |c| {
                c.prepare_cached("DELETE FROM sms_quota WHERE expires_at <= ?1")
                    .and_then(|mut st| st.execute([now.as_millisecond()]))
                    .map_err(unavailable)?;
                let mut refused = Vec::new();
                for (i, (key, limit, _)) in quotas.iter().enumerate() {
                    let used: Option<u32> = c
                        .prepare_cached("SELECT used FROM sms_quota WHERE key = ?1")
                        .and_then(|mut st| st.query_row([key], |r| r.get(0)).optional())
                        .map_err(unavailable)?;
                    if used.unwrap_or(0) >= *limit {
                        refused.push(i);
                    }
                }
                if !refused.is_empty() {
                    return Ok(refused);
                }
                for (key, _, expires_at) in &quotas {
                    c.prepare_cached(
                        "INSERT INTO sms_quota (key, used, expires_at) VALUES (?1, 1, ?2)
                         ON CONFLICT (key) DO UPDATE SET used = used + 1",
                    )
                    .and_then(|mut st| st.execute(params![key, expires_at]))
                    .map_err(unavailable)?;
                }
                Ok(refused)
            })
            .await
    }
}

#[async_trait]
impl LeadOps for SqliteStore {
    async fn resend_failed(&self, which: Resend, now: Timestamp) -> Result<u64, StoreError> {
        let (filter, value) = match which {
            Resend::Lead(id) => ("lead_id = ?2", id.to_string()),
            Resend::FailedSince(since) => (
                "lead_id IN (SELECT id FROM landing_leads WHERE created_at >= ?2)",
                time::format(since),
            ),
        };
        self.db
            .run(move |c| {
                c.prepare_cached(&format!(
                    "UPDATE scheduled_notifications
                        SET status = 'pending', send_at = ?1, attempts = 0, last_error = NULL,
                            failed_at = NULL, claimed_until = NULL
                      WHERE status = 'failed' AND {filter}"
                ))
                .and_then(|mut st| st.execute(params![time::format(now), value]))
                .map(|n| n as u64)
                .map_err(unavailable)
            })
            .await
    }

    async fn release_quarantined(
        &self,
        id: LeadId,
        crm: CrmStatus,
        now: Timestamp,
    ) -> Result<Released, StoreError> {
        self.db
            .run(move |c| {
                let status: Option<String> = c
                    .prepare_cached("SELECT crm_status FROM landing_leads WHERE id = ?1")
                    .and_then(|mut st| st.query_row([id.to_string()], |r| r.get(0)).optional())
                    .map_err(unavailable)?;
                match status.as_deref() {
                    None => return Ok(Released::NotFound),
                    Some(s) if s != CrmStatus::Quarantined.as_str() => {
                        return Ok(Released::NotQuarantined);
                    }
                    Some(_) => {}
                }
                c.prepare_cached(
                    "UPDATE landing_leads SET crm_status = ?2, quarantine_reason = NULL WHERE id = ?1",
                )
                .and_then(|mut st| st.execute(params![id.to_string(), crm.as_str()]))
                .map_err(unavailable)?;
                let notifications = c
                    .prepare_cached(
                        "UPDATE scheduled_notifications
                            SET status = 'pending', send_at = ?2, attempts = 0, suppressed_reason = NULL
                          WHERE lead_id = ?1 AND status = 'suppressed' AND suppressed_reason = 'quarantined'",
                    )
                    .and_then(|mut st| st.execute(params![id.to_string(), time::format(now)]))
                    .map_err(unavailable)?;
                Ok(Released::Released {
                    notifications: notifications as u64,
                })
            })
            .await
    }
}
