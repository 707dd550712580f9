//! The Lambda entry point: each invocation's payload goes to [`handle`]; every report is logged
//! as one JSON line, and a failure is returned as an error so Lambda retries the event.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use crate::error::Error;
use crate::report::{self, Response};
use crate::respond::{App, handle};

pub async fn run(app: &App) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| invoke(app, event.payload))).await
}

async fn invoke(app: &App, payload: Value) -> Result<Response, Error> {
    let handled = handle(app, payload).await;
    match &handled.response {
        Response::Single(report) => report::log_json_line(report),
        Response::Batch { reports, .. } => reports.iter().for_each(report::log_json_line),
    }
    match handled.failure {
        Some(err) => Err(err),
        None => Ok(handled.response),
    }
}
