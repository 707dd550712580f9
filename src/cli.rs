//! The command line: runs the same handler on an event or manual payload from a file or stdin,
//! with the default AWS credential chain, and prints the report.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::App;
use crate::error::Error;
use crate::report::Response;
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
    /// Before any incident: read every role an instance uses, and every instance in every enabled
    /// region, and print what a containment would do now, as a Markdown table per account.
    /// Nothing is written.
    ///
    /// Exit status: 0 every role can be contained and everything was read; 3 a role cannot be
    /// contained, or a part could not be read (the report names it); 1 failed; 2 bad input.
    Readiness {
        /// An account to assess through the member role (repeat for more); none: the credentials' own.
        #[arg(long = "account", value_name = "ACCOUNT_ID")]
        accounts: Vec<String>,
        /// Print the JSON report rather than the Markdown summary.
        #[arg(long)]
        json: bool,
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
            Self::Readiness { accounts, .. } => {
                let accounts = (!accounts.is_empty()).then_some(accounts);
                serde_json::json!({"operation": "readiness", "accountIds": accounts})
            }
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
/// Readiness: a role cannot be contained, or a part of an account could not be read.
pub const EXIT_NOT_READY: u8 = 3;

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
    print_json(&handled.response);
    handled.failure.as_ref().map_or(ExitCode::SUCCESS, failed)
}

fn print_json(response: &Response) {
    match serde_json::to_string_pretty(response) {
        Ok(json) => println!("{json}"),
        Err(e) => eprintln!("error: cannot print the report: {e}"),
    }
}

/// The exit status of a run that failed: bad input, or anything else.
fn failed(e: &Error) -> ExitCode {
    match e {
        Error::BadInput { .. } => ExitCode::from(EXIT_BAD_INPUT),
        _ => ExitCode::from(EXIT_FAILED),
    }
}

/// Run readiness and print its Markdown summary (or, with `json`, the report); the exit code
/// says whether every role can be contained.
pub async fn readiness(app: &App, payload: serde_json::Value, json: bool) -> ExitCode {
    let handled = handle(app, payload).await;
    let reports = handled.response.reports();
    let readiness = reports.first().and_then(|r| r.readiness.as_ref());
    match (json, readiness) {
        (false, Some(r)) => print!("{}", r.summary),
        _ => print_json(&handled.response),
    }
    match (&handled.failure, readiness) {
        (Some(e), _) => failed(e),
        (None, None) => ExitCode::from(EXIT_FAILED),
        (None, Some(r)) if r.not_containable() > 0 || r.unread() > 0 => ExitCode::from(EXIT_NOT_READY),
        (None, Some(_)) => ExitCode::SUCCESS,
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
    fn readiness_sends_its_accounts_only_when_named() {
        let own = parsed(&["readiness"]).unwrap();
        assert_eq!(
            own.operation_payload(None).unwrap(),
            serde_json::json!({"operation": "readiness"})
        );
        let two = parsed(&[
            "readiness",
            "--account",
            "111122223333",
            "--account",
            "444455556666",
            "--json",
        ])
        .unwrap();
        let payload = two.operation_payload(Some("arn:aws:iam::1:user/alice".into())).unwrap();
        assert_eq!(
            payload,
            serde_json::json!({"operation": "readiness", "accountIds": ["111122223333", "444455556666"],
                               "requestedBy": "arn:aws:iam::1:user/alice"})
        );
        assert!(matches!(
            crate::input::parse_payload(payload).unwrap().items.pop().unwrap(),
            Ok(crate::finding::Triage::Operate(crate::operation::Operation::Readiness(
                _
            )))
        ));
    }

    #[test]
    fn a_forced_release_without_a_reason_is_refused_by_the_parser() {
        let err = parsed(&["release", "--role", "WebAppRole", "--force"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }
}
