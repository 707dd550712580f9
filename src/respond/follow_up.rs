//! `CHAIN`'s follow-up walks: after a containment's walk, one-time EventBridge Scheduler schedules
//! (in the function's own account and region, deleted by Scheduler once they have run) that
//! deliver the follow-up payload ([`crate::plan::chain::follow_ups`]); and that payload's run:
//! the same walk, from the same stolen key, over the trail CloudTrail has delivered since.
//!
//! A follow-up acts only for a key a containment of the role it names revoked, in that incident's
//! window ([`standing`]): anyone allowed to invoke the function can send the payload, and a key
//! not in the role's record of revoked keys is no finding's to follow. A
//! follow-up delivered twice walks twice and writes once: every action it takes is decided on
//! what is in place ([`chain`]).

use chrono::{DateTime, Utc};
use tracing::{Instrument, info_span, warn};

use crate::accounts::Home;
use crate::api::ApiCall;
use crate::app::App;
use crate::aws::scheduler::{self, OneTime};
use crate::error::{Error, Result};
use crate::finding::{FindingSummary, Incident};
use crate::names::RoleName;
use crate::operation::FollowUp;
use crate::plan::chain::{Walked, follow_ups, standing};
use crate::report::chain::ChainReport;
use crate::report::{Ended, OperationReport, Report, ScheduleReport, ScheduleStatus};
use crate::respond::chain::{self, Root};
use crate::respond::establish::{self, Place};
use crate::respond::journal::Journal;
use crate::respond::revoke;
use crate::wait::Deadline;

/// Ask for the follow-ups of `chain` (walked from the stolen key of `root`), counted from the
/// containment's `cutoff`; a schedule not made is a warning (why), never a failed containment.
pub async fn schedule(
    app: &App,
    (chain, root): (&mut ChainReport, &Root<'_>),
    cutoff: DateTime<Utc>,
    dry_run: bool,
    steps: &Journal,
) -> Vec<String> {
    let config = &app.config.chain;
    let Some(schedules) = &config.schedules else {
        return Vec::new();
    };
    let keys = chain.keys();
    let walked = Walked {
        finding_id: root.finding_id,
        account: &root.place.account,
        region: &root.place.region,
        key: root.key,
        role: root.role.map(|r| r.as_str()),
        since: root.since,
        keys: &keys,
    };
    let mut warnings = Vec::new();
    for planned in follow_ups(&walked, cutoff, &config.follow_up_minutes, Utc::now()) {
        let report = |status| ScheduleReport {
            schedule: planned.name.clone(),
            group: schedules.group.clone(),
            at: planned.at,
            status,
        };
        if dry_run {
            let detail = format!(
                "schedule {}/{} to walk key {}'s trail again",
                schedules.group, planned.name, root.key
            );
            steps.planned(ApiCall::CreateSchedule, root.key, detail);
            chain.follow_ups.push(report(ScheduleStatus::Planned));
            continue;
        }
        let create = async {
            let function_arn = app
                .schedule_target(schedules.function_arn.clone(), "CHAIN_FUNCTION_ARN")
                .await?;
            let one = OneTime {
                group: &schedules.group,
                name: &planned.name,
                expression: &planned.expression,
                description: &planned.description,
                function_arn: &function_arn,
                role_arn: &schedules.scheduler_role_arn,
                input: planned.payload.to_string(),
            };
            scheduler::create_one_time(&app.clients.scheduler, one).await
        };
        let status = match steps.run(ApiCall::CreateSchedule, root.key, create).await {
            Ok(created) => created.into(),
            Err(e) => {
                warnings.push(format!(
                    "CHAIN: the follow-up walk {} was NOT scheduled ({e}): walk key {}'s trail again by hand later",
                    planned.name, root.key
                ));
                ScheduleStatus::Failed
            }
        };
        chain.follow_ups.push(report(status));
    }
    warnings
}

/// Run a follow-up: the walk again, reported as an operation.
pub async fn follow_up(app: &App, f: FollowUp, deadline: Deadline) -> (Report, Option<Error>) {
    let dry_run = app.config.dry_run || f.asked.dry_run;
    let steps = Journal::new(&f.finding_id, deadline);
    let summary = FindingSummary {
        source: "follow-up".into(),
        id: Some(f.finding_id.clone()),
        account_id: f.asked.account_id.clone(),
        region: Some(f.region.clone()),
        access_key_id: Some(f.key.clone()),
        ..FindingSummary::default()
    };
    let mut report = Report::new(summary, dry_run);
    report.operation = Some(OperationReport {
        name: "follow-up",
        subject: f.key.clone(),
        requested_by: f.asked.requested_by.clone(),
        ..OperationReport::default()
    });
    let span = info_span!("follow_up", finding_id = %f.finding_id, key = %f.key);
    let ended = run(app, &f, dry_run, &steps, &mut report).instrument(span).await;
    report.steps = steps.into_records();
    report.end(ended.as_ref());
    if let Err(e) = &ended {
        warn!(error = %e, "follow-up failed");
    }
    (report, ended.err())
}

async fn run(app: &App, f: &FollowUp, dry_run: bool, steps: &Journal, report: &mut Report) -> Result<Ended> {
    let account = f.asked.account_id.clone().unwrap_or_default();
    let home = app.home_for(Some(&account)).await?;
    let place = Place {
        account,
        region: f.region.clone(),
    };
    let reach = match establish::route(app, &home, &place) {
        Ok(reach) => reach,
        Err(reason) => return Ok(Ended::skipped(reason)),
    };
    let target = establish::reach(app, &reach, &place, &f.finding_id).await?;
    let role = f
        .role
        .as_ref()
        .ok_or_else(|| Error::bad_input("roleName", "a follow-up names the contained role"))?;
    let read = revoke::read_role(&target.iam, role, steps).await?;
    let cutoff = match standing(&f.key, f.since, read.role.as_ref(), read.in_force.existing().as_ref()) {
        Ok(cutoff) => cutoff,
        Err(why) => {
            warn!(%why, "a follow-up refused");
            return Ok(Ended::skipped(format!(
                "refused in account {}: {why}; a follow-up walks only the trail of a key a containment revoked",
                place.account
            )));
        }
    };
    let root = Root {
        finding_id: &f.finding_id,
        place: &place,
        key: &f.key,
        role: Some(role),
        since: crate::plan::chain::in_history(f.since, Utc::now()),
        cutoff: Some(cutoff),
    };
    let Some(chain) = Box::pin(chain::walk(app, &home, &root, dry_run, steps)).await else {
        return Ok(Ended::skipped("CHAIN is off: no follow-up walk".into()));
    };
    let new: Vec<String> = chain.keys().into_iter().filter(|k| !f.walked.contains(k)).collect();
    if !new.is_empty() {
        report
            .warnings
            .push(format!("keys found since the walks before: {}", new.join(", ")));
    }
    // Reading the trail is all a follow-up is for: one that CloudTrail failed (throttled,
    // unavailable) fails, so that Lambda delivers it again. A refusal, an account out of reach or
    // the invocation's time would be met again: the report says what was not read. A
    // containment's own walk never fails the containment: its follow-ups read again.
    let failure = failed(&chain).or_else(|| unread(&chain));
    report.chain = Some(chain);
    failure.map_or(Ok(()), Err)?;
    Ok(Ended::finished(dry_run, steps.wrote_anything()))
}

/// What CloudTrail failed to answer, as a failure another delivery may not meet.
fn unread(chain: &ChainReport) -> Option<Error> {
    let parts: Vec<String> = (chain.unread.iter().filter(|u| u.transient))
        .map(|u| {
            format!(
                "key {}'s calls in {} {} from {} to {} were not read ({})",
                u.key, u.account, u.region, u.from, u.to, u.why
            )
        })
        .collect();
    (!parts.is_empty())
        .then(|| Error::RemediationFailed(format!("the follow-up walk was not complete: {}", parts.join("; "))))
}

/// What the walk after a containment returned.
pub struct Chained {
    pub report: Option<ChainReport>,
    /// Why a follow-up was not scheduled.
    pub warnings: Vec<String>,
    /// The chain's containment failed somewhere (the report's nodes say where): Lambda retries.
    pub failure: Option<Error>,
}

/// Walk the stolen key's trail once the role's revocation is written (`CHAIN`), and ask for the
/// follow-up walks.
pub async fn after_containment(
    app: &App,
    (home, place): (&Home, &Place),
    (incident, role): (&Incident, &RoleName),
    cutoff: DateTime<Utc>,
    dry_run: bool,
    steps: &Journal,
) -> Chained {
    let none = || Chained {
        report: None,
        warnings: Vec::new(),
        failure: None,
    };
    let Some(key) = incident.summary.access_key_id.as_deref() else {
        return none();
    };
    let root = Root {
        finding_id: incident.finding_id(),
        place,
        key,
        role: Some(role),
        since: crate::plan::chain::since(incident.first_seen, Utc::now()),
        cutoff: Some(cutoff),
    };
    let Some(mut walked) = chain::walk(app, home, &root, dry_run, steps).await else {
        return none();
    };
    let warnings = schedule(app, (&mut walked, &root), cutoff, dry_run, steps).await;
    Chained {
        failure: failed(&walked),
        report: Some(walked),
        warnings,
    }
}

fn failed(chain: &ChainReport) -> Option<Error> {
    let failures = chain.failures();
    (!failures.is_empty())
        .then(|| Error::RemediationFailed(format!("the chain's containment failed: {}", failures.join("; "))))
}
