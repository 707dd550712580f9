//! The command line: runs the same handler on an event or manual payload from a file or stdin,
//! with the default AWS credential chain, and prints the report.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::App;
use crate::error::Error;
use crate::respond::handle;

#[derive(Debug, Parser)]
#[command(
    name = "exfil-responder",
    version,
    about = "Contain GuardDuty EC2 instance-credential exfiltration findings"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Handle one event, an array of events, or a manual payload, and print the report as JSON.
    ///
    /// Exit status: 0 remediated, already-remediated, skipped or planned; 1 failed; 2 bad input.
    Invoke {
        /// The JSON file to read, or - for standard input.
        #[arg(long, value_name = "FILE")]
        event: PathBuf,
        /// Read and plan only; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove the revocation this function wrote on a role, once every token issued before its
    /// cut-off has expired (REVOKE_HOLD_HOURS after it), and print the report.
    ///
    /// Exit status: 0 released, refused (with the reason) or planned; 1 failed; 2 bad input.
    Release {
        /// The role to release.
        #[arg(long, value_name = "ROLE")]
        role: String,
        /// Its account, when not the credentials' own (reached through the member role).
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: Option<String>,
        /// Release before the hold has passed: revives tokens issued before the cut-off.
        #[arg(long, requires = "reason")]
        force: bool,
        /// Why, recorded in the report (required with --force).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Read and plan only; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Give an instance this function isolated its recorded profile back, clear its isolation
    /// mark, and print the report.
    ///
    /// Exit status: 0 restored, refused (with the reason) or planned; 1 failed; 2 bad input.
    Restore {
        /// The instance to restore.
        #[arg(long, value_name = "INSTANCE_ID")]
        instance: String,
        /// Its region, when not the configured one.
        #[arg(long, value_name = "REGION")]
        region: Option<String>,
        /// Its account, when not the credentials' own (reached through the member role).
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: Option<String>,
        /// Why, recorded in the report.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Read and plan only; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

impl Command {
    /// The manual payload a `release` or `restore` stands for, the same as a Lambda invocation
    /// would carry; `requested_by` is the caller's ARN. None for `invoke`, which reads its own.
    pub fn operation_payload(&self, requested_by: Option<String>) -> Option<serde_json::Value> {
        let mut payload = match self {
            Self::Invoke { .. } => return None,
            Self::Release {
                role,
                account,
                force,
                reason,
                dry_run,
            } => serde_json::json!({"operation": "release", "roleName": role, "accountId": account,
                                    "force": force, "reason": reason, "dryRun": dry_run}),
            Self::Restore {
                instance,
                region,
                account,
                reason,
                dry_run,
            } => serde_json::json!({"operation": "restore", "instanceId": instance, "region": region,
                                    "accountId": account, "reason": reason, "dryRun": dry_run}),
        };
        payload["requestedBy"] = requested_by.into();
        // Flags not given are not sent, as a hand-written payload would leave them out.
        if let Some(map) = payload.as_object_mut() {
            map.retain(|_, v| !v.is_null());
        }
        Some(payload)
    }
}

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

pub fn read_payload(path: &PathBuf) -> Result<serde_json::Value, Error> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| Error::bad_input(path.display().to_string(), format!("cannot read: {e}")))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::bad_input(path.display().to_string(), format!("not valid JSON: {e}")))
}

/// Run the handler on the payload and print the response; the exit code tells the outcome.
pub async fn invoke(app: &App, payload: serde_json::Value) -> ExitCode {
    let handled = handle(app, payload).await;
    match serde_json::to_string_pretty(&handled.response) {
        Ok(json) => println!("{json}"),
        Err(e) => eprintln!("error: cannot print the report: {e}"),
    }
    match handled.failure {
        None => ExitCode::SUCCESS,
        Some(Error::BadInput { .. }) => ExitCode::from(EXIT_BAD_INPUT),
        Some(_) => ExitCode::from(EXIT_FAILED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("exfil-responder").chain(args.iter().copied())).map(|c| c.command)
    }

    #[test]
    fn release_and_restore_send_the_manual_payload_with_the_caller() {
        let release = parsed(&["release", "--role", "WebAppRole", "--force", "--reason", "IR-9"]).unwrap();
        assert_eq!(
            release
                .operation_payload(Some("arn:aws:iam::1:user/alice".into()))
                .unwrap(),
            serde_json::json!({"operation": "release", "roleName": "WebAppRole", "force": true, "reason": "IR-9",
                               "dryRun": false, "requestedBy": "arn:aws:iam::1:user/alice"})
        );
        let restore = parsed(&[
            "restore",
            "--instance",
            "i-1234abcd",
            "--region",
            "eu-west-1",
            "--dry-run",
        ])
        .unwrap();
        assert_eq!(
            restore.operation_payload(None).unwrap(),
            serde_json::json!({"operation": "restore", "instanceId": "i-1234abcd", "region": "eu-west-1", "dryRun": true})
        );
        let payload = restore.operation_payload(None).unwrap();
        assert!(matches!(
            crate::input::parse_payload(payload).unwrap().items.pop().unwrap(),
            Ok(crate::finding::Triage::Operate(_))
        ));
    }

    #[test]
    fn a_forced_release_without_a_reason_is_refused_by_the_parser() {
        let err = parsed(&["release", "--role", "WebAppRole", "--force"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }
}
