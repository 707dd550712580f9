//! The handler: one remediation as phases, each a function from typed inputs to a typed result.
//!
//! 1. [`establish`]: the finding's account and region, the clients to reach them, GuardDuty's
//!    confirmation, and the role and instance the remediation is about.
//! 2. [`revoke`]: the role's facts, the decision, the claim and the write (containment); the
//!    claim is taken with the first reads ([`early_claim`]).
//! 3. [`fleet`]: the role's instances, read from the first reads on, and their plan.
//! 4. [`rounds`]: [`execute`] each instance's steps; then [`revoke::recheck`], and another round
//!    if the cut-off moved meanwhile.
//!
//! After containment, [`operate`] runs a [`release`] or a [`restore`] through the same steps.
//!
//! [`steps`] runs and records every AWS call; the report is assembled once from what the phases
//! returned ([`Done`]), whether the remediation finished or failed part-way.

pub mod administrator;
pub mod announce;
pub mod auto_release;
pub mod batch;
pub mod chain;
pub mod early_claim;
pub mod establish;
pub mod execute;
pub mod fleet;
pub mod follow_up;
pub mod operate;
pub mod release;
pub mod restore;
pub mod revoke;
pub mod rounds;
pub mod steps;

#[cfg(test)]
mod mocks;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::{Instrument, info, info_span, warn};

use crate::accounts::{Home, Reach};
use crate::app::App;
use crate::aws::clients::{Session, Target};
use crate::error::{Error, Result};
use crate::finding::{Finding, FindingSummary, Incident, Triage};
use crate::names::RoleName;
use crate::policy::cutoff_at;
use crate::report::{
    CutoffReport, Ended, InstanceReport, Outcome, Report, Response, RoleSummary, ScheduleReport, Verification,
};
use crate::wait::Deadline;
use crate::{input, op::StepRecord};

use early_claim::EarlyClaim;
use establish::{About, Claim, Established, Place, Request};
use revoke::{Asked, Decision};
use steps::Steps;

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
    let claim = match item {
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
        Ok(Triage::Act(incident)) => Claim::Incident(Box::new(incident)),
        Ok(Triage::Fetch(request)) => Claim::Fetch(request),
        Ok(Triage::Operate(operation)) => return Box::pin(operate::operate(app, operation, deadline)).await,
    };
    let span = info_span!("remediate", finding_id = claim.finding_id());
    remediate(app, claim, deadline).instrument(span).await
}

fn refuse(reason: String) -> Ended {
    warn!(%reason, "refused: GuardDuty does not confirm the finding; nothing changed");
    Ended {
        outcome: Outcome::Refused,
        reason: Some(reason),
    }
}

/// What the phases returned, each kept as it came, in the order they ran.
#[derive(Default)]
struct Done {
    place: Option<Place>,
    session: Option<Session>,
    verification: Option<Verification>,
    /// GuardDuty's copy, where it was consulted: what is acted on, so what the report shows.
    verified: Option<(FindingSummary, Vec<String>)>,
    /// The role the remediation is about, before IAM was asked.
    about_role: Option<RoleName>,
    /// The role as IAM has it, and the decision's warnings.
    decided: Option<(RoleSummary, Vec<String>)>,
    contained: Option<revoke::Contained>,
    /// The instances' reports, merged over the rounds, and the rounds' warnings.
    instances: Vec<InstanceReport>,
    round_warnings: Vec<String>,
    /// The cut-off the instances were last cycled against, once every round finished.
    settled: Option<chrono::DateTime<Utc>>,
    archive_warning: Option<String>,
    /// Why the claim taken ahead, unused, could not be given up.
    release_warning: Option<String>,
    /// The release scheduled for when the hold is over, and why it was not, if it was not.
    auto_release: Option<(ScheduleReport, Option<String>)>,
    /// The stolen key's trail (`CHAIN`), walked once the role's revocation is written.
    chain: Option<crate::report::chain::ChainReport>,
}

async fn remediate(app: &App, claim: Claim, deadline: Deadline) -> (Report, Option<Error>) {
    let request = claim.request();
    let dry_run = app.config.dry_run || request.dry_run_requested;
    let steps = Steps::new(claim.finding_id(), deadline);
    let mut done = Done::default();
    let ended = Box::pin(reach_and_run(app, claim, &request, dry_run, &steps, &mut done)).await;
    let mut report = assemble(request, dry_run, done, steps.into_records(), ended.as_ref());
    report.harden(app.config.require_imdsv2);
    if let Err(e) = &ended {
        warn!(error = %e, needs_attention = ?report.needing_attention(), "remediation failed");
    }
    (report, ended.err())
}

/// The report, from the request and what the phases returned.
fn assemble(
    request: Request,
    dry_run: bool,
    done: Done,
    steps: Vec<StepRecord>,
    ended: std::result::Result<&Ended, &Error>,
) -> Report {
    let (summary, mut warnings) = match done.verified {
        Some((summary, warnings)) => (summary, warnings),
        None => (request.summary, request.warnings),
    };
    let finding = with_place(summary, done.place.as_ref());
    let role = match (done.decided.as_ref(), done.about_role) {
        (Some((role, _)), _) => Some(role.clone()),
        (None, Some(name)) => Some(RoleSummary {
            name: name.to_string(),
            arn: None,
        }),
        (None, None) => None,
    };
    warnings.extend(done.decided.map(|(_, w)| w).unwrap_or_default());
    let cutoff = done.contained.map(|c| {
        warnings.extend(c.warnings);
        match done.settled {
            Some(at) => CutoffReport {
                at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                ..c.report
            },
            None => c.report,
        }
    });
    warnings.extend(done.round_warnings);
    warnings.extend(done.archive_warning);
    warnings.extend(done.release_warning);
    let auto_release = done.auto_release.map(|(scheduled, warning)| {
        warnings.extend(warning);
        scheduled
    });
    let mut report = Report {
        request_reason: request.reason,
        verification: done.verification,
        member_session: done.session,
        role,
        cutoff,
        instances: done.instances,
        auto_release,
        chain: done.chain,
        steps,
        warnings,
        ..Report::new(finding, dry_run)
    };
    report.end(ended);
    report
}

fn with_place(summary: FindingSummary, place: Option<&Place>) -> FindingSummary {
    match place {
        Some(place) => FindingSummary {
            account_id: Some(place.account.clone()),
            region: Some(place.region.clone()),
            ..summary
        },
        None => summary,
    }
}

/// Reach the finding's account and region, establish what to act on, contain, and archive.
async fn reach_and_run(
    app: &App,
    claim: Claim,
    request: &Request,
    dry_run: bool,
    steps: &Steps,
    done: &mut Done,
) -> Result<Ended> {
    let home = app.home_for(request.summary.account_id.as_deref()).await?;
    claim.check_partition(&home)?;
    let place = establish::place(&request.summary, &home, app.clients.region())?;
    done.place = Some(place.clone());
    if let Some(reason) = establish::unvouched_elsewhere(&request.summary, &home, &place) {
        return Ok(Ended::skipped(reason));
    }
    let reach = match establish::route(app, &home, &place) {
        Ok(reach) => reach,
        Err(reason) => return Ok(Ended::skipped(reason)),
    };
    // A member's finding is read by the administrator (this account) before its role is assumed,
    // so that a forged one is refused having touched nothing in the member account.
    let (read, keeper) = match administrator::first(app, &claim, (&home.account, &place), steps).await? {
        Ok(read) => read,
        Err(reason) => return Ok(refuse(reason)),
    };
    let target = establish::reach(app, &reach, &place, claim.finding_id()).await?;
    done.session = target.session.clone();
    // The cut-off is decided as of now (see `contain`): the claim taken with the first reads is
    // of it, and the fleet can be read from here on, beside them, without missing an instance
    // that took credentials before it.
    let now = cutoff_at(Utc::now());
    let early = EarlyClaim::new(app, &place.account, claim.incident(), (now, dry_run));
    let (fleet_tx, fleet_rx) = tokio::sync::oneshot::channel();
    let named = fleet::named_fleet(claim.incident(), &place);
    let read_fleet = async {
        if let Some(read) = fleet::early_fleet(&target, named, steps).await {
            let _ = fleet_tx.send(read);
        }
    };
    let reached = Reached {
        target: &target,
        place: &place,
        us: (&reach, &home),
        keeper: &keeper,
        early: Early {
            at: now,
            claim: early.as_ref(),
            fleet: fleet_rx,
        },
    };
    // Boxed, as each phase below: the futures nest deep enough to overflow a thread's stack.
    let ended = {
        let mut contained = Box::pin(confirm_and_contain(app, reached, (claim, read), dry_run, steps, done));
        // A run that ends without the fleet (refused, skipped) does not wait for its reads.
        // Biased: polled in order, as a join would, so that calls go out in a fixed order.
        tokio::select! {
            biased;
            ended = &mut contained => ended,
            () = read_fleet => contained.await,
        }
    };
    if let Some(early) = &early {
        done.release_warning = early.release_unused(app, steps).await;
    }
    ended
}

/// What was started with the first reads.
struct Early<'a> {
    /// When: the cut-off is decided as of then.
    at: DateTime<Utc>,
    /// The claim taken with them, if one is.
    claim: Option<&'a EarlyClaim>,
    /// The fleet being read with them (none if the request names no role).
    fleet: tokio::sync::oneshot::Receiver<fleet::Early>,
}

/// The finding's account and region, reached.
struct Reached<'a> {
    target: &'a Target,
    place: &'a Place,
    /// How it is reached from ours, and ours.
    us: (&'a Reach, &'a Home),
    keeper: &'a administrator::Keeper,
    early: Early<'a>,
}

/// Confirm the finding, contain, and archive.
async fn confirm_and_contain(
    app: &App,
    reached: Reached<'_>,
    (claim, read): (Claim, Option<Finding>),
    dry_run: bool,
    steps: &Steps,
    done: &mut Done,
) -> Result<Ended> {
    let Reached {
        target,
        place,
        us: (reach, home),
        keeper,
        early,
    } = reached;
    // Containment is gated by GuardDuty's confirmation, our own role (never revoked) and the
    // named role's facts: all read at once, with the claim taken ahead (`early_claim`). The
    // role's facts are used only if GuardDuty's copy names the same role; otherwise they are
    // read again.
    let named = claim.role().cloned();
    let read_named = async {
        match named {
            Some(role) => Some((role.clone(), revoke::read_role(&target.iam, &role, steps).await)),
            None => None,
        }
    };
    let take_early = async {
        if let Some(claim) = early.claim {
            claim.take(app, steps).await;
        }
    };
    let (established, prefetched, own_role, ()) = tokio::join!(
        establish::establish(app.config.verify_findings, target, claim, (place, read), steps),
        read_named,
        app.own_role(reach, home),
        take_early
    );
    let (incident, verification) = match established? {
        Established::Act(incident, verification) => (*incident, verification),
        Established::Skip(reason) => return Ok(Ended::skipped(reason)),
        Established::Refuse(reason) => return Ok(refuse(reason)),
        Established::Archived(incident, reason) => {
            return archived((app, target), &incident, place, (prefetched, reason), steps, done).await;
        }
    };
    let own_role = own_role?;
    if verification.is_some() {
        done.verified = Some((incident.summary.clone(), incident.warnings.clone()));
    }
    done.verification = verification;

    let acting = Acting {
        home,
        own_role: own_role.as_deref(),
        incident: &incident,
        prefetched,
        early,
        dry_run,
    };
    let ended = Box::pin(contain(app, target, place, acting, steps, done)).await?;
    let confirmed = matches!(verification, Some(Verification::Confirmed | Verification::Fetched));
    let finished = matches!(ended.outcome, Outcome::Remediated | Outcome::AlreadyRemediated);
    if app.config.archive_findings
        && finished
        && confirmed
        && let Some(locator) = &incident.locator
    {
        done.archive_warning = administrator::archive(app, target, keeper, place, locator, steps).await;
    }
    Ok(ended)
}

/// GuardDuty shows the finding archived since it was published. If the role's revocation already
/// covers it (the revocation decision keeps it), this is a repeat delivery of a finding already
/// contained, which this function archived once done: nothing to do. Otherwise someone decided
/// not to act on it: refused.
async fn archived(
    (app, target): (&App, &Target),
    incident: &Incident,
    place: &Place,
    (prefetched, reason): (Option<(RoleName, Result<revoke::RoleRead>)>, String),
    steps: &Steps,
    done: &mut Done,
) -> Result<Ended> {
    let (about, read) = about_role(target, (incident, place), prefetched, steps, done).await?;
    let kept = match revoke::decide(app, read, &asked(incident, &about, None), Utc::now()) {
        Decision::Act(kept) if !kept.write && incident.first_seen.is_some() => kept,
        _ => return Ok(refuse(reason)),
    };
    done.decided = Some((RoleSummary::of(&kept.role), kept.warnings.clone()));
    let contained = revoke::settle(&kept, false, &Ok(revoke::Written::Nothing));
    let reason = format!(
        "GuardDuty shows finding {} archived, and role {}'s revocation (cut-off {}) covers its first sighting: \
         a repeat delivery of a finding already contained; nothing changed",
        incident.finding_id(),
        about.role,
        contained.report.at
    );
    done.contained = Some(contained);
    Ok(Ended {
        outcome: Outcome::AlreadyRemediated,
        reason: Some(reason),
    })
}

/// The role the incident is about, and its facts: those read while GuardDuty was asked if they are
/// of the same role, else read now.
async fn about_role(
    target: &Target,
    (incident, place): (&Incident, &Place),
    prefetched: Option<(RoleName, Result<revoke::RoleRead>)>,
    steps: &Steps,
    done: &mut Done,
) -> Result<(About, revoke::RoleRead)> {
    let about = establish::about(target, &incident.subject, &place.region, steps).await?;
    steps.set_role(about.role.as_str());
    done.about_role = Some(about.role.clone());
    let read = match prefetched {
        Some((named, read)) if named == about.role => read?,
        _ => revoke::read_role(&target.iam, &about.role, steps).await?,
    };
    Ok((about, read))
}

/// What the revocation decision asks about the finding's role.
fn asked<'a>(incident: &'a Incident, about: &'a About, own_role: Option<&'a str>) -> Asked<'a> {
    Asked {
        role_name: &about.role,
        expected_role_id: about.role_id.as_deref(),
        own_role,
        first_seen: incident.first_seen,
        key: incident.summary.access_key_id.as_deref(),
        last_seen: incident.last_seen,
    }
}

/// What to act on, and what was already read about it.
struct Acting<'a> {
    home: &'a Home,
    /// Never revoked.
    own_role: Option<&'a str>,
    incident: &'a Incident,
    /// The facts of the role the claim named, read while GuardDuty was asked.
    prefetched: Option<(RoleName, Result<revoke::RoleRead>)>,
    early: Early<'a>,
    dry_run: bool,
}

/// Revoke the role's sessions while the fleet is read, then cycle the fleet in rounds.
async fn contain(
    app: &App,
    target: &Target,
    place: &Place,
    acting: Acting<'_>,
    steps: &Steps,
    done: &mut Done,
) -> Result<Ended> {
    let Acting {
        home,
        own_role,
        incident,
        prefetched,
        early,
        dry_run,
    } = acting;
    // Containment first: only the role's own facts gate the revocation. Decided as of when the
    // first reads started: a write decides the cut-off claimed with them, and the fleet read with
    // them misses nothing that took credentials before it.
    let (about, read) = about_role(target, (incident, place), prefetched, steps, done).await?;
    let decided = match revoke::decide(app, read, &asked(incident, &about, own_role), early.at) {
        Decision::Act(decided) => decided,
        Decision::Missing(reason) => return Ok(Ended::skipped(reason)),
        Decision::Refused(role, reason) => {
            done.decided = Some((RoleSummary::of(&role), Vec::new()));
            return Ok(Ended::skipped(reason));
        }
    };
    done.decided = Some((RoleSummary::of(&decided.role), decided.warnings.clone()));
    let named_region = fleet::named_region(incident, place);

    let write = revoke::write(
        app,
        &target.iam,
        &decided,
        (incident.finding_id(), early.claim),
        dry_run,
        steps,
    );
    let named = rounds::named_in(&about, &named_region);
    let discover = async {
        let clients = (&target.iam, &target.ec2);
        fleet::Early::or_discover(early.fleet.await.ok(), clients, &about.role, named, steps).await
    };
    let (written, fleet) = tokio::join!(write, discover);
    let contained = revoke::settle(&decided, dry_run, &written);
    let cutoff = contained.cutoff;
    done.contained = Some(contained);
    // If the revocation failed, the instances' credentials still work: leave them alone.
    let written = written?;
    let cycling = rounds::Cycling {
        app,
        target,
        incident,
        about: &about,
        named_region: &named_region,
        decided: &decided,
        dry_run,
    };
    let cycled = rounds::Cycled {
        instances: &mut done.instances,
        warnings: &mut done.round_warnings,
    };
    let cycle = Box::pin(cycling.discovered(fleet, cutoff, steps, cycled));
    // The key's record names the cut-off in force, so it follows the write; nothing waits for it.
    let record = revoke::record(&target.iam, &decided, &written, dry_run, steps);
    let safe_at = cutoff + app.config.revoke_hold();
    let release = auto_release::schedule(app, (&place.account, &decided.role_name), safe_at, dry_run, steps);
    let walk = follow_up::after_containment(app, (home, place), (incident, &about.role), cutoff, dry_run, steps);
    let (unrecorded, settled, scheduled, chained) = tokio::join!(record, cycle, release, Box::pin(walk));
    done.auto_release = scheduled;
    done.round_warnings.extend(chained.warnings);
    done.chain = chained.report;
    if let Some(contained) = done.contained.as_mut() {
        contained.warnings.extend(unrecorded);
    }
    done.settled = Some(settled?);
    chained.failure.map_or(Ok(()), Err)?;
    Ok(Ended::finished(dry_run, steps.wrote_anything()))
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone};

    use super::*;
    use crate::report::CutoffStatus;

    fn request() -> Request {
        Request {
            summary: FindingSummary {
                source: "guardduty".into(),
                id: Some("f-1".into()),
                ..FindingSummary::default()
            },
            dry_run_requested: false,
            reason: None,
            warnings: vec!["as delivered".into()],
        }
    }

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, minute, 0).unwrap()
    }

    fn contained(cutoff: DateTime<Utc>) -> revoke::Contained {
        revoke::Contained {
            report: CutoffReport {
                at: cutoff.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                status: CutoffStatus::Written,
                written_at: Some(cutoff),
                policy: Some(crate::policy::Holder::inline()),
            },
            cutoff,
            warnings: vec!["unclaimed".into()],
        }
    }

    fn phases() -> Done {
        Done {
            place: Some(Place {
                account: "123456789012".into(),
                region: "us-east-1".into(),
            }),
            verification: Some(Verification::Confirmed),
            verified: Some((
                FindingSummary {
                    source: "guardduty".into(),
                    id: Some("f-1".into()),
                    finding_type: Some(crate::finding::OUTSIDE_AWS.into()),
                    ..FindingSummary::default()
                },
                vec!["as GuardDuty has it".into()],
            )),
            about_role: Some(RoleName::parse("WebAppRole").unwrap()),
            decided: Some((
                RoleSummary {
                    name: "WebAppRole".into(),
                    arn: Some("arn:aws:iam::123456789012:role/WebAppRole".into()),
                },
                vec!["decided".into()],
            )),
            contained: Some(contained(at(0))),
            round_warnings: vec!["round".into()],
            ..Done::default()
        }
    }

    #[test]
    fn a_failure_part_way_reports_what_the_phases_returned_before_it() {
        let err = Error::RemediationFailed("sessions revoked, but 1 instance(s) need attention".into());
        let report = assemble(request(), false, phases(), Vec::new(), Err(&err));
        assert_eq!(report.outcome, Outcome::Failed);
        assert_eq!(
            report.error.as_ref().map(|e| e.kind.as_str()),
            Some("RemediationFailed")
        );
        // GuardDuty's copy is what was acted on, placed where it was acted on.
        assert_eq!(
            report.finding.finding_type.as_deref(),
            Some(crate::finding::OUTSIDE_AWS)
        );
        assert_eq!(report.finding.account_id.as_deref(), Some("123456789012"));
        assert_eq!(report.finding.region.as_deref(), Some("us-east-1"));
        assert_eq!(report.cutoff.as_ref().map(|c| c.status), Some(CutoffStatus::Written));
        assert!(report.role.as_ref().is_some_and(|r| r.arn.is_some()));
        assert_eq!(
            report.warnings,
            ["as GuardDuty has it", "decided", "unclaimed", "round"]
        );
    }

    #[test]
    fn before_iam_answers_the_role_is_reported_by_name_and_the_request_as_it_came() {
        let done = Done {
            verified: None,
            decided: None,
            contained: None,
            ..phases()
        };
        let err = Error::Unexpected("GetRole failed".into());
        let report = assemble(request(), false, done, Vec::new(), Err(&err));
        assert_eq!(
            report.role.as_ref().map(|r| (r.name.as_str(), r.arn.is_none())),
            Some(("WebAppRole", true))
        );
        assert_eq!(report.warnings, ["as delivered", "round"]);
        assert_eq!(report.finding.finding_type, None);
        assert_eq!(report.cutoff, None);
    }

    #[test]
    fn the_cutoff_shown_is_the_one_the_fleet_was_last_cycled_against() {
        let done = Done {
            settled: Some(at(5)),
            ..phases()
        };
        let ended = Ended {
            outcome: Outcome::Remediated,
            reason: None,
        };
        let report = assemble(request(), false, done, Vec::new(), Ok(&ended));
        assert_eq!(report.outcome, Outcome::Remediated);
        assert_eq!(report.cutoff.map(|c| c.at).as_deref(), Some("2026-11-22T10:05:00.000Z"));
    }

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
