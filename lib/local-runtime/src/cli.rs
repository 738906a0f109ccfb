//! landing-local's command line (clap): the server is the default, the operator commands are
//! subcommands. `--help` and `--version` exit 0, a usage error exits 2 (clap's own handling);
//! what the commands themselves print is in [`crate::admin`].

use clap::{Parser, Subcommand};
pub use landing_operations::cli::OpsCommand;

/// The lead pipeline of the school's landing pages on one machine: intake, durable follow-ups
/// (SMS and email), the AmoCRM sync, on SQLite.
///
/// Configuration comes from the environment (README.md, "Configuration"); a bad value stops it
/// with a message naming the variable.
#[derive(Debug, Parser)]
#[command(name = "landing-local", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run the pipeline (the default): the HTTP endpoints on LANDING_ADDR, the notification
    /// worker and the CRM sync, until SIGINT or SIGTERM.
    Serve,
    /// The AmoCRM integration: check the configuration against the account, authorise it.
    #[command(subcommand)]
    Amocrm(AmoCommand),
    /// The operator verbs, the same as `landing-ops` takes on AWS.
    #[command(flatten)]
    Ops(OpsCommand),
    /// The landing pages.
    #[command(subcommand)]
    Web(WebCommand),
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum WebCommand {
    /// Write the rendered pages, their assets and a manifest of their headers into a directory,
    /// for a static host (the S3 bucket behind CloudFront: infra/upload_web.py).
    Export {
        /// Where to write (created if missing).
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum AmoCommand {
    /// Read the configured pipeline and print the stage mapping; an unknown stage is an error,
    /// a mapping onto the built-in won (142) / lost (143) stages a loud warning.
    Check,
    /// Trade an OAuth authorization code for the first token pair and store it.
    Auth {
        /// The code AmoCRM showed when the integration was installed.
        #[arg(long, value_name = "CODE")]
        code: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use landing_core::domain::LeadId;
    use landing_core::ports::Requeue;
    use landing_operations::cli::{CrmCommand, LeadCommand, ReportFormat};

    fn parse(line: &str) -> Result<Option<Command>, clap::Error> {
        Cli::try_parse_from(std::iter::once("landing-local").chain(line.split_whitespace()))
            .map(|c| c.command)
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn arguments_parse_into_commands_and_bad_ones_are_usage_errors() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("serve").unwrap(), Some(Command::Serve));
        let id = LeadId::new();
        assert_eq!(
            parse(&format!("lead release {id}")).unwrap(),
            Some(Command::Ops(OpsCommand::Lead(LeadCommand::Release {
                lead: id
            })))
        );
        assert!(parse("lead release not-a-uuid").is_err());
        assert_eq!(
            parse("amocrm check").unwrap(),
            Some(Command::Amocrm(AmoCommand::Check))
        );
        assert_eq!(
            parse("amocrm auth --code abc").unwrap(),
            Some(Command::Amocrm(AmoCommand::Auth { code: "abc".into() }))
        );
        let failed = parse("crm resync --failed").unwrap();
        let Some(Command::Ops(OpsCommand::Crm(CrmCommand::Resync(args)))) = failed else {
            panic!("{failed:?}")
        };
        assert_eq!(args.which(), Requeue::AllFailed);
        let id = LeadId::new();
        let one = parse(&format!("crm resync {id}")).unwrap();
        let Some(Command::Ops(OpsCommand::Crm(CrmCommand::Resync(args)))) = one else {
            panic!("{one:?}")
        };
        assert_eq!(args.which(), Requeue::Lead(id));
        for bad in [
            "crm resync 42",
            "crm resync",
            "crm resync --failed 0193f6a0-0000-7000-8000-000000000000",
            "serve now",
            "amocrm auth",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
        assert_eq!(
            parse("web export --out /tmp/pages").unwrap(),
            Some(Command::Web(WebCommand::Export {
                out: "/tmp/pages".into()
            }))
        );
        let report = parse("report --since 30d --by day --format html").unwrap();
        let Some(Command::Ops(OpsCommand::Report(args))) = report else {
            panic!("{report:?}")
        };
        assert_eq!(args.format, ReportFormat::Html);
        assert_eq!(args.since, std::time::Duration::from_secs(30 * 86_400));
        for ok in [
            "lead show 0193f6a0-0000-7000-8000-000000000000",
            "lead show --phone 87011234567",
            "lead show --email a@b.kz --format json",
            "notify resend --failed",
            "notify resend 0193f6a0-0000-7000-8000-000000000000",
            "export --since 30d --format csv --out x.csv",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "lead show",
            "lead show --phone 1 --email a@b.kz",
            "notify resend",
            "report --format pdf",
            "report --since soon",
        ] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
        assert_eq!(parse("--help").unwrap_err().exit_code(), 0);
        assert_eq!(parse("crm resync --help").unwrap_err().exit_code(), 0);
        assert_eq!(parse("--version").unwrap_err().exit_code(), 0);
    }
}
