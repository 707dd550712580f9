//! Starts logging, reads the configuration once, builds the AWS clients once, and runs the
//! handler: as a Lambda function when the Lambda Runtime API is there, else as the CLI.

use std::process::ExitCode;

use clap::Parser;
use exfil_responder::cli::{self, Cli, Command};
use exfil_responder::{App, Clients, Config, Error, lambda, logging};

#[tokio::main]
async fn main() -> ExitCode {
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let cli = if in_lambda { None } else { Some(Cli::parse()) };
    logging::init(in_lambda);

    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => return cannot_start(e, in_lambda).await,
    };
    // Honours AWS_ENDPOINT_URL, AWS_REGION and the default credential chain.
    let sdk = aws_config::load_from_env().await;
    if sdk.region().is_none() {
        let e = Error::Config {
            var: "AWS_REGION",
            message: "no AWS region configured".into(),
        };
        return cannot_start(e, in_lambda).await;
    }
    let app = App::new(config.clone(), Clients::new(&sdk, &config.timeouts));

    match cli.map(|c| c.command) {
        None => match lambda::run(&app).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "Lambda runtime stopped");
                ExitCode::FAILURE
            }
        },
        Some(Command::Invoke { event, dry_run }) => {
            let app = if dry_run {
                App::new(
                    Config {
                        dry_run: true,
                        ..app.config.clone()
                    },
                    app.clients.clone(),
                )
            } else {
                app
            };
            match cli::read_payload(&event) {
                Ok(payload) => cli::invoke(&app, payload).await,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(cli::EXIT_BAD_INPUT)
                }
            }
        }
        Some(operation) => {
            // Who asked: the credentials the CLI runs with. Without STS, the report says no one.
            let caller = match app.caller_arn().await {
                Ok(arn) => Some(arn),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot tell who is asking (GetCallerIdentity failed)");
                    None
                }
            };
            let payload = operation.operation_payload(caller).expect("not invoke");
            match operation {
                Command::Readiness { json, .. } => cli::readiness(&app, payload, json).await,
                _ => cli::invoke(&app, payload).await,
            }
        }
    }
}

/// A bad configuration stops start-up with a message naming the variable: on stderr for the CLI,
/// and in Lambda also to the Runtime API's init-error endpoint.
async fn cannot_start(e: Error, in_lambda: bool) -> ExitCode {
    tracing::error!(error = %e, "cannot start");
    eprintln!("error: {e}");
    if in_lambda && let Err(report) = lambda::report_init_error(e).await {
        tracing::error!(error = %report, "could not report the init error to the Runtime API");
    }
    ExitCode::from(cli::EXIT_BAD_INPUT)
}
