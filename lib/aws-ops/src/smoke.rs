//! `landing-ops smoke --api URL`: one lead per form through the API, then every step that should
//! follow it, checked in the stack's own resources and reported line by line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use landing_aws_dynamo::DynamoStore;
use landing_core::domain::{CrmStatus, Lead, LeadId, NotificationStatus, SuppressReason};
use landing_core::ports::{Inspect, LeadStore};
use serde_json::{Value, json};

use crate::Error;
use crate::cli::SmokeArgs;
use crate::stack::Stack;

const POLL: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Checklist {
    lines: Vec<String>,
    failed: bool,
}

impl Checklist {
    fn ok(&mut self, what: impl Into<String>) {
        self.lines.push(format!("ok    {}", what.into()));
    }

    fn fail(&mut self, what: impl Into<String>) {
        self.failed = true;
        self.lines.push(format!("FAIL  {}", what.into()));
    }

    fn note(&mut self, what: impl Into<String>) {
        self.lines.push(format!("--    {}", what.into()));
    }
}

struct Sent {
    form: &'static str,
    id: LeadId,
}

pub async fn run(
    args: &SmokeArgs,
    store: Arc<DynamoStore>,
    scheduler: aws_sdk_scheduler::Client,
    stack: &Stack,
) -> Result<String, Error> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Error::Io(e.to_string()))?;
    let mut c = Checklist::default();
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let base = args.api.trim_end_matches('/');
    let mut sent = Vec::new();
    for (form, path, extra) in [
        (
            "proftest",
            "/api/landing/proftest",
            json!({"slug": "smoke", "metadata": {"result": "smoke"}}),
        ),
        (
            "expresscourse",
            "/api/landing/submit",
            json!({"slug": "smoke", "paymentMethod": "kaspi"}),
        ),
    ] {
        let mut body = json!({"name": "Smoke Test", "phone": args.phone, "email": args.email});
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        let mut req = http
            .post(format!("{base}{path}"))
            .header("Idempotency-Key", format!("smoke-{run_id}-{form}"))
            .header("X-Correlation-Id", format!("smoke-{run_id}"))
            .json(&body);
        if let Some(o) = &args.origin {
            req = req.header("Origin", o);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let answer: Value = resp.json().await.unwrap_or(Value::Null);
                match (
                    status,
                    answer["leadId"].as_str().and_then(|s| s.parse().ok()),
                ) {
                    (201, Some(id)) => {
                        c.ok(format!("{form}: 201, lead {id}"));
                        sent.push(Sent { form, id });
                    }
                    _ => c.fail(format!("{form}: HTTP {status} {answer}")),
                }
            }
            Err(e) => c.fail(format!("{form}: {e}")),
        }
    }

    let deadline = Instant::now() + args.timeout;
    let mut leads: Vec<(&'static str, Lead)> = Vec::new();
    for s in &sent {
        match wait_for(
            deadline.min(Instant::now() + Duration::from_secs(60)),
            || async { store.get_lead(s.id).await.ok().flatten() },
        )
        .await
        {
            Some(lead) => {
                c.ok(format!(
                    "{}: stored, crm_status {}",
                    s.form,
                    lead.crm.status.as_str()
                ));
                leads.push((s.form, lead));
            }
            None => c.fail(format!(
                "{}: lead {} not in {}",
                s.form, s.id, stack.tables.leads
            )),
        }
        let rows = wait_for(
            deadline.min(Instant::now() + Duration::from_secs(60)),
            || async {
                store
                    .notifications_for_lead(s.id)
                    .await
                    .ok()
                    .filter(|r| r.len() == 2)
            },
        )
        .await;
        match rows {
            Some(_) => c.ok(format!("{}: two notification rows (sms, email)", s.form)),
            None => c.fail(format!("{}: not two notification rows", s.form)),
        }
        match &stack.schedule_group {
            Some(group) => {
                let name = landing_aws_scheduler::schedule_name(s.id);
                match scheduler.get_schedule().group_name(group).name(&name).send().await {
                    Ok(_) => c.ok(format!("{}: schedule {group}/{name}", s.form)),
                    // A one-shot schedule deletes itself once it has fired.
                    Err(_) => c.note(format!(
                        "{}: no schedule {group}/{name} (already fired, or scheduling failed and the sweeper sends)",
                        s.form
                    )),
                }
            }
            None => c.note("no SCHEDULE_GROUP: schedules not checked"),
        }
    }

    for (form, lead) in &leads {
        let settled = wait_for(deadline, || async {
            store
                .notifications_for_lead(lead.id)
                .await
                .ok()
                .filter(|rows| rows.len() == 2 && rows.iter().all(|n| n.status.is_final()))
        })
        .await;
        match settled {
            Some(rows) => {
                for n in rows {
                    let what = format!("{form}: {} {}", n.channel().as_str(), n.status.as_str());
                    match n.status {
                        NotificationStatus::Sent => c.ok(format!(
                            "{what} (provider id {})",
                            n.provider_message_id.unwrap_or_default()
                        )),
                        // Both smoke leads are one person: the ExpressCourse follow-up takes
                        // the ProfTest one's place (one per person at a time).
                        NotificationStatus::Suppressed
                            if *form == "proftest"
                                && n.suppressed_reason == Some(SuppressReason::Superseded) =>
                        {
                            c.ok(format!("{what}: superseded by the expresscourse lead"))
                        }
                        _ => c.fail(format!(
                            "{what}: {}",
                            n.last_error
                                .or(n.suppressed_reason.map(|r| r.as_str().to_owned()))
                                .unwrap_or_default()
                        )),
                    }
                }
            }
            None => c.fail(format!(
                "{form}: follow-ups not sent within {:?}",
                args.timeout
            )),
        }
        if lead.crm.status == CrmStatus::Disabled {
            c.note(format!(
                "{form}: CRM sync off (no AmoCrmPipelineId): no deal expected"
            ));
            continue;
        }
        let synced = wait_for(deadline, || async {
            store
                .get_lead(lead.id)
                .await
                .ok()
                .flatten()
                .filter(|l| matches!(l.crm.status, CrmStatus::Synced | CrmStatus::Failed))
        })
        .await;
        match synced {
            Some(l) if l.crm.status == CrmStatus::Synced => c.ok(format!(
                "{form}: deal {}{}",
                l.crm.amocrm_lead_id.unwrap_or_default(),
                landing_operations::timeline::deal_url(
                    stack.amocrm_subdomain.as_deref(),
                    l.crm.amocrm_lead_id.unwrap_or_default()
                )
                .map(|u| format!(" {u}"))
                .unwrap_or_default()
            )),
            Some(l) => c.fail(format!(
                "{form}: CRM sync failed: {}",
                l.crm.error.unwrap_or_default()
            )),
            None => c.fail(format!("{form}: no deal within {:?}", args.timeout)),
        }
    }
    c.note(
        "delete the smoke leads' deals in AmoCRM; the leads stay in the tables, campaign *_smoke",
    );
    let text = c.lines.join("\n");
    if c.failed {
        Err(Error::Smoke(text))
    } else {
        Ok(text)
    }
}

async fn wait_for<T, F, Fut>(deadline: Instant, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}
