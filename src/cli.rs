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
