//! The handler: each item of a payload is triaged, then contained ([`contain`]) or, after a
//! containment, released, restored or followed up ([`after`]).
//!
//! A containment, in reading order (`REVIEWING.md` walks it):
//! 1. [`contain`]: the linear driver: place and reach ([`establish`], [`administrator`]),
//!    confirm, the role's facts, the [`gate`](crate::gate), the write ([`revoke`]), the fleet
//!    ([`fleet`]), the rounds ([`rounds`], [`execute`]); what each phase returned is kept in
//!    [`progress`] and the report assembled from it.
//! 2. [`prefetch`]: what is read before GuardDuty confirms, and why none of it can authorise a
//!    write; [`early_claim`] is the revocation claim taken with it.
//! 3. Beside the rounds: the key's record ([`revoke::record`]), the release's schedule
//!    ([`auto_release`]), the stolen key's trail ([`chain`], [`follow_up`]).
//!
//! [`journal`] runs and records every AWS call; [`announce`] tells Security Hub and people.
//!
//! Before any incident, [`readiness`] reads every role and instance and reports what a
//! containment would do now, writing nothing.

pub mod administrator;
pub mod after;
pub mod announce;
pub mod auto_release;
pub mod batch;
pub mod chain;
pub mod contain;
pub mod early_claim;
pub mod establish;
pub mod execute;
pub mod fleet;
pub mod follow_up;
pub mod journal;
pub mod lookup;
pub mod prefetch;
pub mod progress;
pub mod readiness;
pub mod release;
pub mod restore;
pub mod revoke;
pub mod rounds;
pub mod tamper;
pub mod undo;

#[cfg(test)]
mod mocks;

use serde_json::Value;
use tracing::info;

use crate::app::App;
use crate::error::{Error, Result};
use crate::finding::{FindingSummary, Triage};
use crate::input;
use crate::report::{Outcome, Report, Response};
use crate::wait::Deadline;

use establish::Alleged;

/// The answer to one invocation, and the error to hand Lambda if any event failed.
pub struct Handled {
    pub response: Response,
    pub failure: Option<Error>,
}

/// Handle a payload with no deadline (the CLI).
pub async fn handle(app: &App, payload: Value) -> Handled {
    handle_until(app, payload, Deadline::none()).await
}

/// Handle a payload, stopping between steps when `deadline` gets close.
pub async fn handle_until(app: &App, payload: Value, deadline: Deadline) -> Handled {
    let payload = match input::parse_payload(payload) {
        Ok(p) => p,
        Err(e) => {
            let report = Report::failed(FindingSummary::default(), app.config.dry_run, &e);
            return Handled {
                response: Response::Single(Box::new(report)),
                failure: Some(e),
            };
        }
    };
    let run =
        (app.request_id()).unwrap_or_else(|| format!("local-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")));
    let mut results = Vec::new();
    for (i, item) in payload.items.into_iter().enumerate() {
        // Boxed: the whole remediation's future type is too deep to lay out inline in callers.
        let (mut report, failure) = Box::pin(respond(app, item, deadline)).await;
        report.id = Some(format!("{run}#{i}"));
        Box::pin(announce::announce(app, &mut report)).await;
        results.push((report, failure));
    }
    if !payload.batch {
        let (report, failure) = results.pop().expect("a single payload has one item");
        return Handled {
            response: Response::Single(Box::new(report)),
            failure,
        };
    }
    let failed: Vec<String> = results
        .iter()
        .enumerate()
        .filter_map(|(i, (_, err))| err.as_ref().map(|e| format!("[{i}] {e}")))
        .collect();
    let failure = (!failed.is_empty()).then(|| {
        Error::RemediationFailed(format!(
            "{} of {} events failed: {}",
            failed.len(),
            results.len(),
            failed.join("; ")
        ))
    });
    let reports: Vec<Report> = results.into_iter().map(|(r, _)| r).collect();
    let outcome = if failure.is_some() {
        Outcome::Failed
    } else {
        Outcome::of_batch(&reports)
    };
    Handled {
        response: Response::Batch { outcome, reports },
        failure,
    }
}

/// Handle one event or manual request.
pub async fn respond(app: &App, item: Result<Triage>, deadline: Deadline) -> (Report, Option<Error>) {
    let alleged = match item {
        Err(e) => {
            return (
                Report::failed(FindingSummary::default(), app.config.dry_run, &e),
                Some(e),
            );
        }
        Ok(Triage::Skip { summary, reason }) => {
            info!(finding_id = summary.id.as_deref().unwrap_or("-"), %reason, "skipped");
            let mut report = Report::new(summary, app.config.dry_run);
            report.outcome_reason = Some(reason);
            return (report, None);
        }
        Ok(Triage::Act(incident)) => Alleged::Incident(Box::new(incident)),
        Ok(Triage::Fetch(request)) => Alleged::Fetch(Box::new(request)),
        Ok(Triage::Operate(operation)) => return Box::pin(after::respond(app, operation, deadline)).await,
    };
    contain::contain(app, alleged, deadline).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_as_good_as_its_best_report() {
        let with = |outcomes: &[Outcome]| {
            let reports: Vec<Report> = outcomes
                .iter()
                .map(|o| Report {
                    outcome: *o,
                    ..Report::new(FindingSummary::default(), false)
                })
                .collect();
            Outcome::of_batch(&reports)
        };
        assert_eq!(with(&[Outcome::Skipped, Outcome::Remediated]), Outcome::Remediated);
        assert_eq!(with(&[Outcome::AlreadyRemediated, Outcome::Planned]), Outcome::Planned);
        assert_eq!(with(&[Outcome::Refused, Outcome::Skipped]), Outcome::Skipped);
    }
}
