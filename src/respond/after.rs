//! After containment: a release or a restore, reached in its account as a finding's is (the
//! account lists, then our own credentials or the member role), run through the step executor,
//! and reported like a remediation, with what was asked and removed or given back. A follow-up
//! and readiness are handed to their own modules.

use tracing::{Instrument, info_span, warn};

use crate::app::App;

use crate::error::{Error, Result};
use crate::finding::FindingSummary;
use crate::operation::{Asked, Operation};
use crate::report::{Ended, OperationReport, Report};
use crate::respond::establish;
use crate::respond::journal::Journal;
use crate::respond::undo::{Undoing, Undone};
use crate::respond::{follow_up, readiness, release, restore};
use crate::wait::Deadline;

/// Release a role or restore an instance (or walk a follow-up), and report it.
pub async fn respond(app: &App, op: Operation, deadline: Deadline) -> (Report, Option<Error>) {
    let op = match op {
        Operation::FollowUp(f) => return Box::pin(follow_up::follow_up(app, f, deadline)).await,
        Operation::Readiness(r) => return Box::pin(readiness::readiness(app, r, deadline)).await,
        op => op,
    };
    let asked = op.asked().clone();
    let dry_run = app.config.dry_run || asked.dry_run;
    let id = format!("{}-{}", op.name(), op.subject());
    let steps = Journal::new(&id, deadline);
    let mut done = Undone {
        operation: OperationReport {
            name: op.name(),
            subject: op.subject().to_owned(),
            requested_by: asked.requested_by.clone(),
            ..OperationReport::default()
        },
        ..Undone::default()
    };
    let span = info_span!("operate", operation = op.name(), subject = op.subject());
    let ended = run(app, &op, dry_run, &steps, &mut done).instrument(span).await;
    let report = assemble(&asked, dry_run, done, steps, ended.as_ref());
    if let Err(e) = &ended {
        warn!(error = %e, "operation failed");
    }
    (report, ended.err())
}

async fn run(app: &App, op: &Operation, dry_run: bool, steps: &Journal, done: &mut Undone) -> Result<Ended> {
    let asked = op.asked();
    let home = app.home_for(asked.account_id.as_deref()).await?;
    let region = match op {
        Operation::Restore(r) => r.region.clone(),
        Operation::Release(_) | Operation::FollowUp(_) | Operation::Readiness(_) => None,
    };
    let summary = FindingSummary {
        account_id: asked.account_id.clone(),
        region,
        ..FindingSummary::default()
    };
    let place = establish::place(&summary, &home, app.clients.region())?;
    done.place = Some(place.clone());
    let reach = match establish::route(app, &home, &place) {
        Ok(reach) => reach,
        Err(reason) => return Ok(Ended::skipped(reason)),
    };
    let session = format!("{}-{}", op.name(), op.subject());
    let target = establish::reach(app, &reach, &place, &session).await?;
    done.session = target.session.clone();
    let own_role = app.own_role(&reach, &home).await?;
    let undoing = Undoing {
        target: &target,
        account: &place.account,
        own_role: own_role.as_deref(),
        dry_run,
        steps,
    };
    match op {
        Operation::Release(r) => release::release(app, &undoing, r, done).await,
        Operation::Restore(r) => restore::restore(app, &undoing, r, done).await,
        Operation::FollowUp(_) | Operation::Readiness(_) => {
            Err(Error::Unexpected(format!("a {} is run by its own module", op.name())))
        }
    }
}

fn assemble(
    asked: &Asked,
    dry_run: bool,
    done: Undone,
    steps: Journal,
    ended: std::result::Result<&Ended, &Error>,
) -> Report {
    let finding = FindingSummary {
        source: "manual".into(),
        account_id: done.place.as_ref().map(|p| p.account.clone()),
        region: done.place.map(|p| p.region),
        ..FindingSummary::default()
    };
    let mut warnings = done.warnings;
    let auto_release = done.auto_release.map(|(scheduled, warning)| {
        warnings.extend(warning);
        scheduled
    });
    let mut report = Report {
        request_reason: asked.reason.clone(),
        member_session: done.session,
        role: done.role,
        instances: done.instances,
        steps: steps.into_records(),
        warnings,
        auto_release,
        operation: Some(done.operation),
        ..Report::new(finding, dry_run)
    };
    report.end(ended);
    report
}
