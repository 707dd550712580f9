//! The Lambda entry point: each invocation's payload goes to [`handle`]; every report is logged
//! as one JSON line with its metrics, and a failure is returned as an error so Lambda retries the
//! event. A start-up failure is reported to the Runtime API's init-error endpoint.

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use lambda_runtime_api_client::body::Body;
use serde_json::Value;

use crate::accounts::Home;
use crate::app::App;
use crate::error::Error;
use crate::metrics;
use crate::report::{self, Response};
use crate::respond::handle_until;
use crate::wait::Deadline;

pub async fn run(app: &App) -> Result<(), lambda_runtime::Error> {
    // Always set by Lambda; the metrics' one dimension.
    let function_name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "exfil-responder".into());
    let function_name = function_name.as_str();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let deadline = Deadline::at_epoch_millis(event.context.deadline, app.config.timeouts.deadline_reserve());
        if let Some(home) = Home::from_function_arn(&event.context.invoked_function_arn) {
            app.runs_in(home);
        }
        app.invoked_as(&event.context.invoked_function_arn);
        app.serving(&event.context.request_id);
        invoke(app, function_name, event.payload, deadline)
    }))
    .await
}

async fn invoke(app: &App, function_name: &str, payload: Value, deadline: Deadline) -> Result<Response, Error> {
    let handled = handle_until(app, payload, deadline).await;
    for report in handled.response.reports() {
        report::log_json_line(report);
        metrics::log_emf(report, &app.config.metrics_namespace, function_name);
    }
    match handled.failure {
        Some(err) => Err(err),
        None => Ok(handled.response),
    }
}

/// Tell Lambda why start-up failed, before any invocation: Lambda logs it, fails the pending
/// invocation with it, and retries it on a fresh start. Without this the process would only exit.
pub async fn report_init_error(err: Error) -> Result<(), lambda_runtime::Error> {
    let client = lambda_runtime_api_client::Client::builder().build()?;
    let body = serde_json::to_vec(&Diagnostic::from(err))?;
    let request = lambda_runtime_api_client::build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
        .header("Content-Type", "application/json")
        .body(Body::from(body))?;
    let response = client.call(request).await?;
    if !response.status().is_success() {
        return Err(format!("the Runtime API answered the init error with {}", response.status()).into());
    }
    Ok(())
}
