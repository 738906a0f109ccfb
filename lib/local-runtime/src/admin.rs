//! Operator commands of landing-local (README "Operator commands"):
//!
//! - `amocrm check` — reads the configured pipeline and reports the stage mapping; an unknown
//!   stage is an error, a mapping onto the built-in won (142) / lost (143) stages a loud warning;
//! - `amocrm auth --code CODE` — trades an OAuth authorization code for the first token pair;
//! - the operator verbs shared with `landing-ops` (`report`, `lead show`, `lead release`,
//!   `notify resend`, `crm resync`, `export`: `landing_operations`);
//! - `web export --out DIR` — the rendered pages as files, for the S3 bucket on AWS.

use std::sync::Arc;

use landing_amocrm::{AmoClient, AmoSettings, RetryConfig};
use landing_core::crm::{STATUS_LOST, STATUS_WON};
use landing_core::domain::CrmStatus;
use landing_core::ports::SystemClock;
use landing_operations::Operator;

use crate::LocalConfig;
use crate::cli::{AmoCommand, Command, WebCommand};

/// What a command could not do, with its cause chain, for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AdminError(pub String);

fn open_store(config: &LocalConfig) -> Result<Arc<landing_sqlite::SqliteStore>, AdminError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| AdminError(format!("data dir: {e}")))?;
    landing_sqlite::open(&config.data_dir.join("landing.db"))
        .map(Arc::new)
        .map_err(|e| AdminError(landing_core::error_chain(&e)))
}

fn crm(config: &LocalConfig) -> Result<&AmoSettings, AdminError> {
    config.crm.as_ref().ok_or_else(|| {
        AdminError("no AmoCRM credentials configured (AMOCRM_ACCESS_TOKEN, or AMOCRM_CLIENT_ID/SECRET/REDIRECT_URI)".into())
    })
}

fn client(
    settings: &AmoSettings,
    store: Arc<landing_sqlite::SqliteStore>,
) -> Result<AmoClient, AdminError> {
    settings
        .client(store, RetryConfig::default())
        .map_err(|e| AdminError(landing_core::error_chain(&e)))
}

/// Runs an operator command; the `Ok` text is the report for the operator.
pub async fn execute(cmd: Command, config: &LocalConfig) -> Result<String, AdminError> {
    match cmd {
        Command::Serve => Err(AdminError(
            "serve is not an operator command; run it with landing_local_runtime::run".into(),
        )),
        Command::Amocrm(AmoCommand::Check) => {
            let settings = crm(config)?;
            let client = client(settings, open_store(config)?)?;
            let pipeline = landing_amocrm::endpoints::pipeline(
                &client,
                settings.crm.pipeline_id,
                "amocrm-check",
            )
            .await
            .map_err(|e| AdminError(landing_core::error_chain(&e)))?
            .ok_or_else(|| {
                AdminError(format!(
                    "AMOCRM_PIPELINE_ID: pipeline {} does not exist in this account",
                    settings.crm.pipeline_id
                ))
            })?;
            check_report(settings, &pipeline.name, &pipeline.stages)
        }
        Command::Amocrm(AmoCommand::Auth { code }) => {
            let settings = crm(config)?;
            let client = client(settings, open_store(config)?)?;
            let oauth = client.oauth().ok_or_else(|| {
                AdminError("a long-lived token (AMOCRM_ACCESS_TOKEN) is configured; there is no code to exchange".into())
            })?;
            let pair = oauth
                .exchange_code(&code)
                .await
                .map_err(|e| AdminError(landing_core::error_chain(&e)))?;
            Ok(format!(
                "AmoCRM token pair stored in {}; access token valid until {}",
                config.data_dir.join("landing.db").display(),
                pair.expires_at
            ))
        }
        Command::Web(WebCommand::Export { out }) => {
            let site =
                landing_web::Site::load_with(config.web_content.as_deref(), &config.honeypot_field)
                    .map_err(|e| AdminError(landing_core::error_chain(&e)))?;
            let files = site
                .export(&out)
                .map_err(|e| AdminError(landing_core::error_chain(&e)))?;
            Ok(format!(
                "{} files and manifest.json written to {}",
                files.len(),
                out.display()
            ))
        }
        Command::Ops(cmd) => {
            let store = open_store(config)?;
            let output = operator(store, config)
                .execute(cmd)
                .await
                .map_err(|e| AdminError(landing_core::error_chain(&e)))?;
            match output.out {
                Some(path) => {
                    std::fs::write(&path, output.text.as_bytes())
                        .map_err(|e| AdminError(format!("{}: {e}", path.display())))?;
                    Ok(format!("written to {}", path.display()))
                }
                None => Ok(output.text.trim_end().to_owned()),
            }
        }
    }
}

/// The operator verbs over landing-local's SQLite file.
pub fn operator(store: Arc<landing_sqlite::SqliteStore>, config: &LocalConfig) -> Operator {
    Operator {
        leads: store.clone(),
        inspect: store.clone(),
        ops: store.clone(),
        crm: store,
        clock: Arc::new(SystemClock),
        amocrm_subdomain: config
            .crm
            .as_ref()
            .and_then(|s| amocrm_subdomain(&s.base_url)),
        crm_on_release: if config.crm.is_some() {
            CrmStatus::Pending
        } else {
            CrmStatus::Disabled
        },
        picked_up: "a running landing-local picks it up within 30 s, otherwise the next start does",
    }
}

/// `school` of `https://school.amocrm.ru`, for links to deals.
fn amocrm_subdomain(base_url: &str) -> Option<String> {
    base_url
        .strip_prefix("https://")
        .and_then(|h| h.trim_end_matches('/').strip_suffix(".amocrm.ru"))
        .map(str::to_owned)
}

/// The stage mapping, checked against the pipeline's real stages.
pub fn check_report(
    settings: &AmoSettings,
    pipeline_name: &str,
    stages: &[(i64, String)],
) -> Result<String, AdminError> {
    let c = &settings.crm;
    let mut out = vec![format!(
        "pipeline {} \"{pipeline_name}\": {} stages",
        c.pipeline_id,
        stages.len()
    )];
    let mut errors = vec![];
    for (label, var, stage) in [
        ("kaspi", "AMOCRM_STATUS_KASPI", c.stage_kaspi),
        ("halyk", "AMOCRM_STATUS_HALYK", c.stage_halyk),
        ("robokassa", "AMOCRM_STATUS_ROBOKASSA", c.stage_robokassa),
        ("proftest", "AMOCRM_STATUS_PROFTEST", c.stage_proftest),
    ] {
        let Some(id) = stage else {
            let what = if label == "proftest" {
                "new ProfTest deals go to the pipeline's first stage"
            } else {
                "deals are tagged but not moved"
            };
            out.push(format!("  {label:<10} → (unset): {what}"));
            continue;
        };
        let name = stages
            .iter()
            .find(|(s, _)| *s == id)
            .map(|(_, n)| n.as_str());
        match (id, name) {
            (STATUS_WON, _) => out.push(format!(
                "  {label:<10} → 142 WARNING: 142 is the built-in \"won\" stage (Успешно реализовано) of every pipeline. Every {label} lead will CLOSE its deal as won — it leaves the active funnel and managers stop seeing it. Set {var} to an open stage unless that is really intended."
            )),
            (STATUS_LOST, _) => out.push(format!(
                "  {label:<10} → 143 WARNING: 143 is the built-in \"lost\" stage (Закрыто и не реализовано) of every pipeline. Every {label} lead will CLOSE its deal as LOST — a paying customer recorded as a lost sale. Set {var} to the right stage id."
            )),
            (_, Some(n)) => out.push(format!("  {label:<10} → {id} \"{n}\"")),
            (_, None) => {
                out.push(format!("  {label:<10} → {id} ERROR: no such stage in pipeline {}", c.pipeline_id));
                errors.push(format!("{var}={id} is not a stage of pipeline {}", c.pipeline_id));
            }
        }
    }
    out.push("  stages of the pipeline:".into());
    out.extend(stages.iter().map(|(id, n)| format!("    {id} {n}")));
    if errors.is_empty() {
        Ok(out.join("\n"))
    } else {
        Err(AdminError(format!(
            "{}\n{}",
            out.join("\n"),
            errors.join("\n")
        )))
    }
}
