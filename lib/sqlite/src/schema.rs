//! Tables as docs/architecture.md §4 names them, created and migrated at start. `PRAGMA user_version` holds
//! the number of migrations applied; each runs in its own transaction.

use rusqlite::{Connection, OptionalExtension};

const MIGRATIONS: &[&str] = &[
    // 1: the four tables of the local pipeline.
    "CREATE TABLE landing_leads (
        id                TEXT PRIMARY KEY,
        created_at        TEXT NOT NULL,
        form              TEXT NOT NULL CHECK (form IN ('proftest', 'expresscourse')),
        source_campaign   TEXT NOT NULL,
        name              TEXT NOT NULL,
        email             TEXT,
        phone             TEXT,
        payment_method    TEXT CHECK (payment_method IN ('kaspi', 'halyk', 'robokassa')),
        metadata          TEXT,
        utm_source        TEXT,
        utm_medium        TEXT,
        utm_campaign      TEXT,
        utm_content       TEXT,
        utm_term          TEXT,
        referrer          TEXT,
        page_url          TEXT,
        warnings          TEXT NOT NULL DEFAULT '[]',
        correlation_id    TEXT NOT NULL,
        crm_status        TEXT NOT NULL CHECK (crm_status IN ('pending', 'synced', 'failed', 'disabled')),
        crm_attempts      INTEGER NOT NULL DEFAULT 0,
        crm_error         TEXT,
        amocrm_lead_id    INTEGER,
        amocrm_contact_id INTEGER,
        crm_synced_at     TEXT
    );
    CREATE INDEX landing_leads_crm_status ON landing_leads (crm_status, created_at);

    CREATE TABLE scheduled_notifications (
        id                  TEXT PRIMARY KEY,
        lead_id             TEXT NOT NULL REFERENCES landing_leads (id),
        channel             TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
        recipient           TEXT NOT NULL,
        source_campaign     TEXT NOT NULL,
        send_at             TEXT NOT NULL,
        status              TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
        attempts            INTEGER NOT NULL DEFAULT 0,
        claimed_until       TEXT,
        last_error          TEXT,
        provider_message_id TEXT,
        sent_at             TEXT,
        UNIQUE (lead_id, channel)
    );
    CREATE INDEX scheduled_notifications_pending ON scheduled_notifications (status, send_at);
    CREATE INDEX scheduled_notifications_claims ON scheduled_notifications (status, claimed_until);

    CREATE TABLE unified_lead_tracking (
        person_key          TEXT PRIMARY KEY,
        first_seen          TEXT NOT NULL,
        last_seen           TEXT NOT NULL,
        first_campaign      TEXT NOT NULL,
        first_utm           TEXT NOT NULL,
        last_campaign       TEXT NOT NULL,
        last_utm            TEXT NOT NULL,
        last_lead_id        TEXT NOT NULL,
        proftest_count      INTEGER NOT NULL DEFAULT 0,
        expresscourse_count INTEGER NOT NULL DEFAULT 0,
        last_payment_method TEXT,
        amocrm_contact_id   INTEGER,
        amocrm_lead_id      INTEGER
    );

    CREATE TABLE idempotency (
        key             TEXT PRIMARY KEY,
        payload_hash    TEXT NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('in_progress', 'completed')),
        response_status INTEGER,
        response_body   TEXT,
        created_at      TEXT NOT NULL,
        expires_at      TEXT NOT NULL
    );",
    // 2: the AmoCRM OAuth token pair (one row), replaced by compare-and-swap.
    "CREATE TABLE amocrm_tokens (
        id            INTEGER PRIMARY KEY CHECK (id = 1),
        access_token  TEXT NOT NULL,
        refresh_token TEXT NOT NULL,
        expires_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    );",
    // 3: when a notification was given up (mark_failed's instant used to be dropped).
    "ALTER TABLE scheduled_notifications ADD COLUMN failed_at TEXT;",
    // 4: the SMS guard. New states need new CHECK constraints, and SQLite changes a constraint
    // only by rebuilding the table (its documented twelve-step procedure; `migrate` turns
    // foreign keys off around it and checks them after).
    "CREATE TABLE landing_leads_v4 (
        id                TEXT PRIMARY KEY,
        created_at        TEXT NOT NULL,
        form              TEXT NOT NULL CHECK (form IN ('proftest', 'expresscourse')),
        source_campaign   TEXT NOT NULL,
        name              TEXT NOT NULL,
        email             TEXT,
        phone             TEXT,
        payment_method    TEXT CHECK (payment_method IN ('kaspi', 'halyk', 'robokassa')),
        metadata          TEXT,
        utm_source        TEXT,
        utm_medium        TEXT,
        utm_campaign      TEXT,
        utm_content       TEXT,
        utm_term          TEXT,
        referrer          TEXT,
        page_url          TEXT,
        warnings          TEXT NOT NULL DEFAULT '[]',
        correlation_id    TEXT NOT NULL,
        crm_status        TEXT NOT NULL
                          CHECK (crm_status IN ('pending', 'synced', 'failed', 'disabled', 'quarantined')),
        crm_attempts      INTEGER NOT NULL DEFAULT 0,
        crm_error         TEXT,
        amocrm_lead_id    INTEGER,
        amocrm_contact_id INTEGER,
        crm_synced_at     TEXT,
        client_ip_hash    TEXT,
        quarantine_reason TEXT CHECK (quarantine_reason IN ('honeypot'))
    );
    INSERT INTO landing_leads_v4 (id, created_at, form, source_campaign, name, email, phone,
        payment_method, metadata, utm_source, utm_medium, utm_campaign, utm_content, utm_term,
        referrer, page_url, warnings, correlation_id, crm_status, crm_attempts, crm_error,
        amocrm_lead_id, amocrm_contact_id, crm_synced_at)
    SELECT id, created_at, form, source_campaign, name, email, phone,
        payment_method, metadata, utm_source, utm_medium, utm_campaign, utm_content, utm_term,
        referrer, page_url, warnings, correlation_id, crm_status, crm_attempts, crm_error,
        amocrm_lead_id, amocrm_contact_id, crm_synced_at FROM landing_leads;
    DROP TABLE landing_leads;
    ALTER TABLE landing_leads_v4 RENAME TO landing_leads;
    CREATE INDEX landing_leads_crm_status ON landing_leads (crm_status, created_at);

    CREATE TABLE scheduled_notifications_v4 (
        id                  TEXT PRIMARY KEY,
        lead_id             TEXT NOT NULL REFERENCES landing_leads (id),
        channel             TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
        recipient           TEXT NOT NULL,
        source_campaign     TEXT NOT NULL,
        send_at             TEXT NOT NULL,
        status              TEXT NOT NULL
                            CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'suppressed')),
        attempts            INTEGER NOT NULL DEFAULT 0,
        claimed_until       TEXT,
        last_error          TEXT,
        provider_message_id TEXT,
        sent_at             TEXT,
        failed_at           TEXT,
        suppressed_reason   TEXT,
        hold_reason         TEXT,
        UNIQUE (lead_id, channel)
    );
    INSERT INTO scheduled_notifications_v4 (id, lead_id, channel, recipient, source_campaign,
        send_at, status, attempts, claimed_until, last_error, provider_message_id, sent_at,
        failed_at)
    SELECT id, lead_id, channel, recipient, source_campaign,
        send_at, status, attempts, claimed_until, last_error, provider_message_id, sent_at,
        failed_at FROM scheduled_notifications;
    DROP TABLE scheduled_notifications;
    ALTER TABLE scheduled_notifications_v4 RENAME TO scheduled_notifications;
    CREATE INDEX scheduled_notifications_pending ON scheduled_notifications (status, send_at);
    CREATE INDEX scheduled_notifications_claims ON scheduled_notifications (status, claimed_until);
    CREATE INDEX scheduled_notifications_by_lead ON scheduled_notifications (lead_id);

    -- One counter per quota and window (`key` is the quota's key and its window start).
    CREATE TABLE sms_quota (
        key        TEXT PRIMARY KEY,
        used       INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX sms_quota_expiry ON sms_quota (expires_at);",
    // 5: the operators' reads: leads by creation time (report, export) and by person.
    "CREATE INDEX landing_leads_created ON landing_leads (created_at);
    CREATE INDEX landing_leads_phone ON landing_leads (phone, created_at);
    CREATE INDEX landing_leads_email ON landing_leads (lower(email), created_at);",
    // 6: addresses no email goes to any more (unsubscribed, bounced, complained).
    "CREATE TABLE suppressed_addresses (
        email         TEXT PRIMARY KEY,
        reason        TEXT NOT NULL CHECK (reason IN ('unsubscribed', 'bounced', 'complained')),
        suppressed_at TEXT NOT NULL
    );",
    // 7: what the email provider reported of a sent email (delivery, bounce, complaint, reject).
    "ALTER TABLE scheduled_notifications ADD COLUMN delivered_at TEXT;
    ALTER TABLE scheduled_notifications ADD COLUMN feedback TEXT
        CHECK (feedback IN ('bounced', 'soft_bounced', 'complained', 'rejected'));
    ALTER TABLE scheduled_notifications ADD COLUMN feedback_detail TEXT;",
];

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    migrate_to(conn, MIGRATIONS.len())
}

fn migrate_to(conn: &mut Connection, version: usize) -> rusqlite::Result<()> {
    let applied: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let applied = usize::try_from(applied).unwrap_or(0);
    if applied >= version {
        return Ok(());
    }
    // A table rebuild drops a table other rows refer to; the pragma is a no-op inside a
    // transaction, so it is set around them, and the references are checked before going on.
    let foreign_keys: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    conn.pragma_update(None, "foreign_keys", false)?;
    let result = apply(conn, applied, version);
    conn.pragma_update(None, "foreign_keys", foreign_keys)?;
    result
}

fn apply(conn: &mut Connection, applied: usize, version: usize) -> rusqlite::Result<()> {
    for (i, sql) in MIGRATIONS.iter().enumerate().take(version).skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        let broken: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()?;
        if let Some(table) = broken {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
                Some(format!(
                    "migration {} leaves a dangling reference in {table}",
                    i + 1
                )),
            ));
        }
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
        tx.commit()?;
        tracing::info!(version = i + 1, "database migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            tables,
            [
                "amocrm_tokens",
                "idempotency",
                "landing_leads",
                "scheduled_notifications",
                "sms_quota",
                "suppressed_addresses",
                "unified_lead_tracking"
            ]
        );
    }

    #[test]
    fn the_guard_migration_keeps_every_row_and_allows_the_new_states() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        migrate_to(&mut conn, 3).unwrap();
        conn.execute_batch(
            "INSERT INTO landing_leads (id, created_at, form, source_campaign, name, correlation_id, crm_status)
               VALUES ('l1', '2026-01-01T00:00:00.000Z', 'proftest', 'proftest', 'A', 'c', 'pending');
             INSERT INTO scheduled_notifications (id, lead_id, channel, recipient, source_campaign, send_at, status, failed_at)
               VALUES ('n1', 'l1', 'sms', '+77011234567', 'proftest', '2026-01-01T00:10:00.000Z', 'failed', '2026-01-01T00:11:00.000Z');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let (status, failed_at, lead): (String, String, String) = conn
            .query_row(
                "SELECT n.status, n.failed_at, l.id FROM scheduled_notifications n JOIN landing_leads l ON l.id = n.lead_id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (status.as_str(), failed_at.as_str(), lead.as_str()),
            ("failed", "2026-01-01T00:11:00.000Z", "l1")
        );
        conn.execute_batch(
            "UPDATE landing_leads SET crm_status = 'quarantined', quarantine_reason = 'honeypot';
             UPDATE scheduled_notifications SET status = 'suppressed', suppressed_reason = 'quarantined';",
        )
        .unwrap();
        let fk: bool = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert!(fk, "foreign keys are on again after migrating");
        assert!(
            conn.execute("INSERT INTO scheduled_notifications (id, lead_id, channel, recipient, source_campaign, send_at, status) VALUES ('n2', 'nope', 'email', 'a@b.kz', 'p', 't', 'pending')", [])
                .is_err(),
            "the rebuilt table still refers to landing_leads"
        );
    }
}
