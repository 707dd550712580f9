//! Structured logs through `tracing`: JSON lines on stdout in Lambda (CloudWatch Logs), readable
//! text on stderr for the CLI, whose stdout carries the report.

use std::io::Write;

use tracing_subscriber::EnvFilter;

const DEFAULT: &str = "warn,exfil_responder=info";

/// An explicit `RUST_LOG` wins; else Lambda's `AWS_LAMBDA_LOG_LEVEL` sets our level (dependencies
/// stay at warn); else our info and others' warnings.
fn filter() -> EnvFilter {
    let directives = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| {
            std::env::var("AWS_LAMBDA_LOG_LEVEL")
                .ok()
                .map(|l| format!("warn,exfil_responder={}", l.to_ascii_lowercase()))
        })
        .unwrap_or_else(|| DEFAULT.to_owned());
    EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new(DEFAULT))
}

/// Write one JSON object as one line on stdout, beside the tracing lines; in Lambda, CloudWatch
/// Logs takes each line whole, so the report and the metrics stay queryable as nested JSON.
pub fn print_json_line(line: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout must not turn a finished remediation into a failure.
    let _ = writeln!(out, "{line}");
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
