//! Tables as docs/architecture.md §4 names them, created and migrated at start. `PRAGMA user_version` holds
//! the number of migrations applied; each runs in its own transaction.

use rusqlite::Connection;

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
];

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let applied: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(applied).unwrap_or(0))
    {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
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
                "unified_lead_tracking"
            ]
        );
    }
}
