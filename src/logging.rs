//! Structured logs through `tracing`: JSON lines on stdout in Lambda (CloudWatch Logs), readable
//! text on stderr for the CLI, whose stdout carries the report.

use tracing_subscriber::EnvFilter;

/// Level from Lambda's `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else our own info and others' warnings.
fn filter() -> EnvFilter {
    let directives = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|level| level.to_ascii_lowercase())
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "warn,exfil_responder=info".to_owned());
    EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("warn,exfil_responder=info"))
}

pub fn init(lambda: bool) {
    let builder = tracing_subscriber::fmt().with_env_filter(filter());
    if lambda {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stdout)
            .init();
    } else {
        builder.compact().with_writer(std::io::stderr).init();
    }
}
