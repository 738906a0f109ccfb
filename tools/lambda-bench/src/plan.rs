//! What each function is run with: its tables, its events, and for `notify`/`crm-sync` the leads
//! an intake run committed (with that run's tables). Per function: one counting run through the
//! proxy, then the timed runs straight to moto.

use std::collections::VecDeque;
use std::path::Path;

use anyhow::{Context, bail};

use crate::Knobs;
use crate::check;
use crate::events::Fixtures;
use crate::proxy::CountingProxy;
use crate::report::FunctionReport;
use crate::run::{self, RunResult, Target};
use crate::setup::{Env, Stack};

/// `AMOCRM_RPS` of the timed crm-sync runs: the client otherwise paces itself to 7 requests/s,
/// which would measure the deliberate pacing rather than the function.
pub const CRM_TIMED_RPS: &str = "1000";

/// Leads one intake run committed, in that run's tables.
struct Batch {
    env: Env,
    leads: Vec<String>,
}

/// proftest's batches go to notify, submit's to crm-sync, in order.
#[derive(Default)]
pub struct Leads {
    for_notify: VecDeque<Batch>,
    for_crm: VecDeque<Batch>,
}

pub struct Bench<'a> {
    pub root: &'a Path,
    pub log_dir: &'a Path,
    pub moto: &'a str,
    pub stack: &'a Stack,
    pub proxy: &'a CountingProxy,
    pub fixtures: &'a Fixtures,
    pub knobs: &'a Knobs,
}

/// One run's configuration and events.
struct Work {
    env: Env,
    events: Vec<Vec<u8>>,
}

impl Bench<'_> {
    async fn work(
        &self,
        function: &str,
        tag: &str,
        n: usize,
        leads: &mut Leads,
    ) -> anyhow::Result<Work> {
        let from_batch = |pool: &mut VecDeque<Batch>| -> anyhow::Result<Batch> {
            let batch = pool
                .pop_front()
                .context("no intake run left leads for it")?;
            if batch.leads.len() < n {
                bail!(
                    "{function} needs {n} committed leads, the intake run left {}",
                    batch.leads.len()
                );
            }
            Ok(batch)
        };
        Ok(match function {
            "proftest" | "submit" => Work {
                env: self
                    .stack
                    .fresh_tables(&format!("{}{tag}", function.replace('-', "")))
                    .await?,
                events: (0..n)
                    .map(|_| self.fixtures.intake(function))
                    .collect::<anyhow::Result<_>>()?,
            },
            "notify" => {
                let b = from_batch(&mut leads.for_notify)?;
                Work {
                    events: b
                        .leads
                        .iter()
                        .take(n)
                        .map(|l| self.fixtures.notify(l))
                        .collect(),
                    env: b.env,
                }
            }
            "crm-sync" => {
                let b = from_batch(&mut leads.for_crm)?;
                let mut env = b.env;
                if tag != "count" {
                    env.push(("AMOCRM_RPS".into(), CRM_TIMED_RPS.into()));
                }
                Work {
                    events: b
                        .leads
                        .iter()
                        .take(n)
                        .map(|l| self.fixtures.stream(l))
                        .collect(),
                    env,
                }
            }
            _ => Work {
                env: self.stack.fresh_tables(&format!("idle{tag}")).await?,
                events: (0..n).map(|_| self.fixtures.scheduled()).collect(),
            },
        })
    }

    fn target<'t>(
        &'t self,
        name: &'t str,
        bin: &'t Path,
        env: &'t Env,
        endpoint: &'t str,
    ) -> Target<'t> {
        Target {
            name,
            bin,
            env,
            endpoint,
            log_dir: self.log_dir,
        }
    }

    pub async fn measure(&self, leads: &mut Leads, r: &mut FunctionReport) -> anyhow::Result<()> {
        let name = r.name.clone();
        let bin = self.root.join("target/release").join(&name);

        let work = self.work(&name, "count", self.knobs.count(), leads).await?;
        self.stack.fake.reset_stats();
        let target = self.target(&name, &bin, &work.env, &self.proxy.url);
        let run::Counted {
            init,
            calls,
            usage,
            log_bytes,
            result: counted,
        } = run::count(&target, self.proxy, work.events).await?;
        let accepted = absorb(&name, &counted, &work.env, leads, &mut r.errors);
        r.init_calls = init;
        r.calls = calls;
        r.usage = usage;
        r.log_bytes = log_bytes;
        for request in self.stack.fake.requests() {
            *r.calls
                .entry(format!("amocrm {}", request.endpoint))
                .or_default() += 1;
        }
        r.counted = if check::is_intake(&name) {
            accepted
        } else {
            counted.answers.len()
        };
        r.counted_times = counted.warm;

        for i in 0..self.knobs.runs() {
            let tag = format!("run{i}");
            let work = self.work(&name, &tag, 1 + self.knobs.warm(), leads).await?;
            let target = self.target(&name, &bin, &work.env, self.moto);
            let result = run::run(&target, &tag, work.events).await?;
            absorb(&name, &result, &work.env, leads, &mut r.errors);
            r.add(result);
        }
        Ok(())
    }
}

/// Checks the answers; an intake run's lead ids become a batch for the function that consumes
/// them. The number of accepted leads.
fn absorb(
    function: &str,
    result: &RunResult,
    env: &Env,
    leads: &mut Leads,
    errors: &mut Vec<String>,
) -> usize {
    errors.extend(result.errors.iter().cloned());
    let mut ids = Vec::new();
    for answer in &result.answers {
        if let Some(p) = check::problem(function, answer) {
            errors.push(p);
        }
        ids.extend(check::lead_id(answer));
    }
    let accepted = ids.len();
    let batch = Batch {
        env: env.clone(),
        leads: ids,
    };
    match function {
        "proftest" => leads.for_notify.push_back(batch),
        "submit" => leads.for_crm.push_back(batch),
        _ => {}
    }
    accepted
}
