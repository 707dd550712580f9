//! The handler: gathers the facts, asks `plan` what to do, executes it, and reports every step.

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::{SecondsFormat, Utc};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::OnceCell;
use tracing::{Instrument, info, info_span, warn};

use crate::accounts::{self, Home, Reach};
use crate::claim::{self, Claimed};
pub use crate::clients::Clients;
use crate::clients::{Pool, Target};
use crate::config::Config;
use crate::ec2::Attached;
use crate::error::{Error, Result};
use crate::finding::{FindingRequest, Incident, Locator, Subject, Triage, triage_finding};
use crate::guardduty::{self, Fetched};
use crate::iam::{self, Identity};
use crate::names::{RoleName, profile_name_from_arn};
use crate::plan::{
    self, FleetFacts, InstanceFacts, InstancePlan, Profile, Revocation, RevocationFacts, RoleFacts, Step, TagValue,
};
use crate::policy::Existing;
use crate::report::{
    CutoffReport, CutoffStatus, FindingSummary, InstanceReport, Outcome, Report, Response, RoleSummary, Steps,
    Verification,
};
use crate::verify::{self, Verdict};
use crate::wait::{Deadline, poll};
use crate::{ec2, input};

pub struct App {
    pub config: Config,
    pub clients: Clients,
    identity: OnceCell<Identity>,
    /// Where Lambda says the function runs: known without asking STS.
    home: OnceLock<Home>,
    /// Clients and member credentials per account and region, kept while the process lives.
    pool: Pool,
}

impl App {
    pub fn new(config: Config, clients: Clients) -> Self {
        Self {
            config,
            clients,
            identity: OnceCell::new(),
            home: OnceLock::new(),
            pool: Pool::default(),
        }
    }

    /// Our account and role: asked once per process, on first use rather than at start-up.
    async fn identity(&self) -> Result<&Identity> {
        self.identity
            .get_or_try_init(|| iam::caller_identity(&self.clients.sts))
            .await
    }

    /// Record where Lambda says the function runs (the first time is kept).
    pub fn runs_in(&self, home: Home) {
        let _ = self.home.set(home);
    }

    /// Our account and partition: from Lambda, so that a cold start asks STS for our role
    /// alongside its first reads instead of before them; else (the CLI) from STS.
    async fn home(&self) -> Result<Home> {
        match self.home.get() {
            Some(home) => Ok(home.clone()),
            None => Ok(self.identity().await?.home.clone()),
        }
    }

    /// The role this run acts through, which it must never revoke: the member role in a member
    /// account, else the function's own. Either way STS must put us in the account Lambda named.
    async fn own_role(&self, reach: &Reach, home: &Home) -> Result<Option<String>> {
        let identity = self.identity().await?;
        if identity.home.account != home.account {
            return Err(Error::Unexpected(format!(
                "Lambda names account {} as the function's, but STS says it runs in {}",
                home.account, identity.home.account
            )));
        }
        Ok(match reach {
            Reach::Member { .. } => self.config.member_role_name.clone(),
            Reach::Home => identity.role.clone(),
        })
    }
}

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
            let mut report = Report::new(FindingSummary::default(), app.config.dry_run);
            report.fail(&e);
            return Handled {
                response: Response::Single(Box::new(report)),
                failure: Some(e),
            };
        }
    };
    let mut results = Vec::new();
    for item in payload.items {
        // Boxed: the whole remediation's future type is too deep to lay out inline in callers.
        results.push(Box::pin(respond(app, item, deadline)).await);
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
        batch_outcome(&reports)
    };
    Handled {
        response: Response::Batch { outcome, reports },
        failure,
    }
}

fn batch_outcome(reports: &[Report]) -> Outcome {
    let any = |o| reports.iter().any(|r| r.outcome == o);
    [Outcome::Remediated, Outcome::Planned, Outcome::AlreadyRemediated]
        .into_iter()
        .find(|o| any(*o))
        .unwrap_or(Outcome::Skipped)
}

/// What a request claims, before anything is checked with AWS.
enum Claim {
    /// From an event, or a manual `instanceId` or `roleName` payload.
    Incident(Box<Incident>),
    /// A manual payload naming a GuardDuty finding.
    Fetch(FindingRequest),
}

impl Claim {
    fn finding_id(&self) -> &str {
        match self {
            Self::Incident(i) => i.finding_id(),
            Self::Fetch(r) => r.locator.finding_id.as_str(),
        }
    }

    /// The role it names, if it names one.
    fn role(&self) -> Option<&RoleName> {
        match self {
            Self::Incident(i) => match &i.subject {
                Subject::Finding { role, .. } | Subject::Role(role) => Some(role),
                Subject::Instance(_) => None,
            },
            Self::Fetch(_) => None,
        }
    }
}

/// Handle one event or manual request.
pub async fn respond(app: &App, item: Result<Triage>, deadline: Deadline) -> (Report, Option<Error>) {
    let claim = match item {
        Err(e) => {
            let mut report = Report::new(FindingSummary::default(), app.config.dry_run);
            report.fail(&e);
            return (report, Some(e));
        }
        Ok(Triage::Skip { summary, reason }) => {
            info!(finding_id = summary.id.as_deref().unwrap_or("-"), %reason, "skipped");
            let mut report = Report::new(summary, app.config.dry_run);
            report.outcome_reason = Some(reason);
            return (report, None);
        }
        Ok(Triage::Act(incident)) => Claim::Incident(Box::new(incident)),
        Ok(Triage::Fetch(request)) => Claim::Fetch(request),
    };
    let span = info_span!("remediate", finding_id = claim.finding_id());
    remediate(app, claim, deadline).instrument(span).await
}

async fn remediate(app: &App, claim: Claim, deadline: Deadline) -> (Report, Option<Error>) {
    let (summary, dry_run_requested, request_reason, warnings) = match &claim {
        Claim::Incident(i) => (
            i.summary.clone(),
            i.dry_run_requested,
            i.request_reason.clone(),
            i.warnings.clone(),
        ),
        Claim::Fetch(r) => (
            FindingSummary {
                source: "manual".into(),
                id: Some(r.locator.finding_id.to_string()),
                account_id: r.account_id.clone(),
                region: r.region.clone(),
                ..FindingSummary::default()
            },
            r.dry_run_requested,
            r.request_reason.clone(),
            Vec::new(),
        ),
    };
    let dry_run = app.config.dry_run || dry_run_requested;
    let mut report = Report::new(summary, dry_run);
    report.request_reason = request_reason;
    report.warnings = warnings;
    let steps = Steps::new(claim.finding_id(), deadline);
    let result = reach_and_run(app, claim, dry_run, &steps, &mut report).await;
    report.steps = steps.into_records();
    match result {
        Ok(outcome) => {
            report.outcome = outcome;
            (report, None)
        }
        Err(e) => {
            warn!(error = %e, needs_attention = ?report.needing_attention(), "remediation failed");
            report.fail(&e);
            (report, Some(e))
        }
    }
}

fn skip(report: &mut Report, reason: String) -> Result<Outcome> {
    warn!(%reason, "nothing changed");
    report.outcome_reason = Some(reason);
    Ok(Outcome::Skipped)
}

fn refuse(report: &mut Report, reason: String) -> Result<Outcome> {
    warn!(%reason, "refused: GuardDuty does not confirm the finding; nothing changed");
    report.outcome_reason = Some(reason);
    Ok(Outcome::Refused)
}

/// Reach the finding's account and region, establish what to act on, act, and archive.
async fn reach_and_run(app: &App, claim: Claim, dry_run: bool, steps: &Steps, report: &mut Report) -> Result<Outcome> {
    let home = app.home().await?;
    let account = report
        .finding
        .account_id
        .clone()
        .unwrap_or_else(|| home.account.clone());
    let Some(region) = report.finding.region.clone().or_else(|| app.clients.region()) else {
        return Err(Error::bad_input(
            "detail.region",
            "missing, and no default region is configured",
        ));
    };
    report.finding.account_id = Some(account.clone());
    report.finding.region = Some(region.clone());
    let reach = match accounts::reach(&app.config, &home.account, &home.partition, &account) {
        Ok(reach) => reach,
        Err(reason) => return skip(report, reason),
    };
    let target = app
        .pool
        .target(
            &app.clients,
            &reach,
            &account,
            &region,
            claim.finding_id(),
            app.config.member_role_external_id.as_deref(),
        )
        .await?;
    report.member_session = target.session.clone();

    let place = Place {
        account: &account,
        region: &region,
    };
    // Containment is gated by GuardDuty's confirmation, our own role (never revoked) and the
    // named role's facts: all read at once. The role's facts are used only if GuardDuty's copy
    // names the same role; otherwise they are read again.
    let named = claim.role().cloned();
    let read_named = async {
        match named {
            Some(role) => {
                let read = read_role(&target.iam, &role, steps).await;
                Some((role, read))
            }
            None => None,
        }
    };
    let (established, prefetched, own_role) = tokio::join!(
        establish(app, &target, claim, place, steps),
        read_named,
        app.own_role(&reach, &home)
    );
    let (incident, verification) = match established? {
        Established::Act(incident, verification) => (*incident, verification),
        Established::Skip(reason) => return skip(report, reason),
        Established::Refuse(reason) => return refuse(report, reason),
    };
    let own_role = own_role?;
    if verification.is_some() {
        // GuardDuty's copy is what is acted on, so it is what the report shows.
        report.finding = FindingSummary {
            account_id: Some(account.clone()),
            region: Some(region.clone()),
            ..incident.summary.clone()
        };
        report.warnings = incident.warnings.clone();
    }
    report.verification = verification;

    let acting = Acting {
        own_role: own_role.as_deref(),
        incident: &incident,
        prefetched,
        dry_run,
    };
    let outcome = run(app, &target, acting, steps, report).await?;
    let confirmed = matches!(verification, Some(Verification::Confirmed | Verification::Fetched));
    let done = matches!(outcome, Outcome::Remediated | Outcome::AlreadyRemediated);
    if app.config.archive_findings
        && done
        && confirmed
        && let Some(locator) = &incident.locator
    {
        archive(&target, locator, steps, report).await;
    }
    Ok(outcome)
}

#[derive(Clone, Copy)]
struct Place<'a> {
    account: &'a str,
    region: &'a str,
}

enum Established {
    Act(Box<Incident>, Option<Verification>),
    Skip(String),
    Refuse(String),
}

/// What to act on. A GuardDuty event is checked against GuardDuty's own copy of the finding
/// (unless `VERIFY_FINDINGS=false`), and that copy is then acted on; a manual finding id is
/// fetched; manual `instanceId` and `roleName` payloads name no finding and are taken as given.
async fn establish(app: &App, target: &Target, claim: Claim, place: Place<'_>, steps: &Steps) -> Result<Established> {
    let act = |i: Incident, v| Ok(Established::Act(Box::new(i), v));
    match claim {
        Claim::Incident(incident) if incident.summary.source != "guardduty" => act(*incident, None),
        Claim::Incident(incident) if !app.config.verify_findings => act(*incident, Some(Verification::Off)),
        Claim::Incident(incident) => {
            let (Some(locator), Some(claimed)) = (&incident.locator, incident.finding.as_deref()) else {
                return Ok(Established::Refuse(
                    "the finding names no detector (detail.service.detectorId or detail.arn), so GuardDuty cannot confirm it".into(),
                ));
            };
            let actual = match fetch(target, locator, place, steps).await? {
                Ok(actual) => actual,
                Err(reason) => return Ok(Established::Refuse(reason)),
            };
            if let Verdict::Refused(reason) = verify::compare(claimed, &actual) {
                return Ok(Established::Refuse(reason));
            }
            let summary = FindingSummary {
                source: "guardduty".into(),
                event_id: incident.summary.event_id.clone(),
                event_time: incident.summary.event_time,
                ..FindingSummary::default()
            };
            from_triage(triage_finding(actual, summary)?, Verification::Confirmed)
        }
        Claim::Fetch(request) => {
            let actual = match fetch(target, &request.locator, place, steps).await? {
                Ok(actual) => actual,
                Err(reason) => return Ok(Established::Refuse(reason)),
            };
            // The request said where to look; the finding itself must say it lives there.
            let (account, region) = (actual.account_id.as_deref(), actual.region.as_deref());
            if account != Some(place.account) || region != Some(place.region) {
                return Ok(Established::Refuse(format!(
                    "GuardDuty's finding {} is for account {} in {}, not {} in {}",
                    actual.id,
                    account.unwrap_or("(none)"),
                    region.unwrap_or("(none)"),
                    place.account,
                    place.region
                )));
            }
            let summary = FindingSummary {
                source: "manual".into(),
                ..FindingSummary::default()
            };
            let mut established = from_triage(triage_finding(actual, summary)?, Verification::Fetched)?;
            if let Established::Act(fetched, _) = &mut established {
                fetched.dry_run_requested = request.dry_run_requested;
                fetched.request_reason = request.request_reason;
            }
            Ok(established)
        }
    }
}

/// GuardDuty's own copy, triaged: acted on as `verification` says, or skipped like its event.
fn from_triage(triage: Triage, verification: Verification) -> Result<Established> {
    match triage {
        Triage::Act(incident) => Ok(Established::Act(Box::new(incident), Some(verification))),
        Triage::Skip { reason, .. } => Ok(Established::Skip(reason)),
        Triage::Fetch(_) => Err(Error::Unexpected("a finding triaged into a fetch".into())),
    }
}

/// GuardDuty's copy of the finding, or why it has none (Ok(Err)). GuardDuty unreachable, throttling
/// or denying us is an Err: retried, never taken as a pass.
async fn fetch(
    target: &Target,
    locator: &Locator,
    place: Place<'_>,
    steps: &Steps,
) -> Result<std::result::Result<crate::finding::Finding, String>> {
    let (detector, id) = (&locator.detector_id, &locator.finding_id);
    let fetched = steps
        .run(
            "GetFindings",
            id.as_str(),
            guardduty::get_finding(&target.guardduty, detector, id),
        )
        .await?;
    let (account, region) = (place.account, place.region);
    Ok(match fetched {
        Fetched::Found(finding) => Ok(*finding),
        Fetched::Missing => Err(format!(
            "GuardDuty has no finding {id} under detector {detector} in account {account}, {region}: forged, or deleted"
        )),
        Fetched::Rejected(why) => Err(format!(
            "GuardDuty would not look up finding {id} under detector {detector} in account {account}, {region} \
             (forged, or the wrong account or region): {why}"
        )),
    })
}

/// Archiving is bookkeeping after a finished remediation: a failure is reported, not retried.
async fn archive(target: &Target, locator: &Locator, steps: &Steps, report: &mut Report) {
    let id = &locator.finding_id;
    let archived = steps
        .run(
            "ArchiveFindings",
            id.as_str(),
            guardduty::archive(&target.guardduty, &locator.detector_id, id),
        )
        .await;
    if let Err(e) = archived {
        report.warnings.push(format!(
            "the remediation is complete, but archiving finding {id} in GuardDuty failed ({e}): archive it by hand"
        ));
    }
}

/// What to act on, and what was already read about it.
struct Acting<'a> {
    /// Never revoked.
    own_role: Option<&'a str>,
    incident: &'a Incident,
    /// The facts of the role the claim named, read while GuardDuty was asked.
    prefetched: Option<(RoleName, Result<RoleRead>)>,
    dry_run: bool,
}

/// A role (None if it does not exist), and the revocation on it.
type RoleRead = (Option<RoleFacts>, Option<Existing>);

/// The only facts that gate the revocation, read together.
async fn read_role(iam: &aws_sdk_iam::Client, role_name: &RoleName, steps: &Steps) -> Result<RoleRead> {
    steps.set_role(role_name.as_str());
    tokio::try_join!(
        steps.run("GetRole", role_name.as_str(), iam::get_role(iam, role_name)),
        steps.run("GetRolePolicy", role_name.as_str(), iam::get_revocation(iam, role_name)),
    )
}

async fn run(app: &App, target: &Target, acting: Acting<'_>, steps: &Steps, report: &mut Report) -> Result<Outcome> {
    let Acting {
        own_role,
        incident,
        prefetched,
        dry_run,
    } = acting;
    let region = report.finding.region.clone().unwrap_or_default();
    let ec2 = target.ec2.clone();
    let iam = &target.iam;

    let (role_name, expected_role_id, named_instance) = match &incident.subject {
        Subject::Finding {
            role,
            role_id,
            instance,
        } => (role.clone(), role_id.clone(), instance.clone()),
        Subject::Role(role) => (role.clone(), None, None),
        Subject::Instance(id) => {
            let role = role_of_instance(iam, &ec2, id.as_str(), &region, steps).await?;
            (role, None, Some(id.clone()))
        }
    };
    steps.set_role(role_name.as_str());
    report.role = Some(RoleSummary {
        name: role_name.to_string(),
        arn: None,
    });

    // Containment first: only the role's own facts gate the revocation.
    let (role, existing) = match prefetched {
        Some((named, read)) if named == role_name => read?,
        _ => read_role(iam, &role_name, steps).await?,
    };
    let Some(role) = role else {
        return skip(
            report,
            format!(
                "role {role_name} does not exist (deleted?): there is no role to revoke; check CloudTrail for what it did"
            ),
        );
    };
    report.role = Some(RoleSummary {
        name: role.name.clone(),
        arn: Some(role.arn.clone()),
    });
    let (decision, warnings) = plan::revocation(&RevocationFacts {
        role: &role,
        expected_role_id: expected_role_id.as_deref(),
        own_role,
        protected_roles: &app.config.protected_roles,
        existing: existing.as_ref(),
        first_seen: incident.first_seen,
        now: Utc::now(),
    });
    report.warnings.extend(warnings);
    let cutoff = match &decision {
        Revocation::Refuse(reason) => {
            return skip(
                report,
                format!("{reason}. Its sessions were NOT revoked: respond by hand"),
            );
        }
        Revocation::Write(c) | Revocation::Keep(c) => *c,
    };
    let cutoff_text = cutoff.to_rfc3339_opts(SecondsFormat::Millis, true);
    // What a cut-off must reach to deny the stolen token; a manual request asks for this one.
    let covers_from = incident.first_seen.unwrap_or(cutoff);

    let write = async {
        match decision {
            Revocation::Write(c) if !dry_run => {
                let finding_id = incident.finding_id();
                revoke(app, iam, &role_name, &role.arn, c, covers_from, finding_id, steps).await
            }
            Revocation::Write(_) => {
                steps.planned(
                    "PutRolePolicy",
                    role_name.as_str(),
                    format!("deny sessions issued before {cutoff_text}"),
                );
                Ok(Written::Nothing)
            }
            _ => Ok(Written::Nothing),
        }
    };
    let (written, fleet) = tokio::join!(
        write,
        discover_fleet(iam, &ec2, &role_name, named_instance.as_ref(), steps)
    );
    let status = match (&decision, dry_run, &written) {
        (Revocation::Keep(_), ..) => CutoffStatus::Existing,
        (_, true, _) => CutoffStatus::Planned,
        (_, false, Ok(Written::Adopted(_))) => CutoffStatus::Existing,
        (_, false, Ok(_)) => CutoffStatus::Written,
        (_, false, Err(_)) => CutoffStatus::Failed,
    };
    let mut cutoff = cutoff;
    let written_at = match &written {
        Ok(Written::At(at)) => Some(*at),
        Ok(Written::Unclaimed(at, why)) => {
            report.warnings.push(format!(
                "the revocation was written without a claim ({why}), so a concurrent run may write another"
            ));
            Some(*at)
        }
        Ok(Written::Adopted(theirs)) => {
            cutoff = *theirs;
            None
        }
        _ => None,
    };
    report.cutoff = Some(CutoffReport {
        at: cutoff.to_rfc3339_opts(SecondsFormat::Millis, true),
        status,
        written_at,
    });
    // If the revocation failed, the instances' credentials still work: leave them alone.
    written?;
    let fleet = fleet.map_err(|e| {
        Error::RemediationFailed(format!(
            "sessions revoked, but the instances using role {role_name} could not be listed ({e}): none was cycled or isolated; a retry does it"
        ))
    })?;
    let mut fleet = Some(fleet);

    // The cut-off can move while we cycle: a concurrent run for another finding about this role,
    // or a person, revokes again, and a later cut-off denies the credentials just issued. So after
    // cycling we read it again, and cycle against any later one, a bounded number of times.
    let mut instances: Vec<InstanceReport> = Vec::new();
    for round in 1..=CUTOFF_ROUNDS {
        // Facts read before the cut-off was settled (a claim lost to another run) are read again.
        let facts = match fleet.take().filter(|f| f.observed_at >= cutoff) {
            Some(f) => f,
            None => discover_fleet(iam, &ec2, &role_name, named_instance.as_ref(), steps).await?,
        };
        let plans = plan::instances(&FleetFacts {
            config: &app.config,
            cutoff,
            finding_id: incident.finding_id(),
            role_name: role_name.as_str(),
            role_tags: &role.tags,
            role_profiles: &facts.profiles,
            named: named_instance.as_ref().map(|id| (id.as_str(), facts.named.as_ref())),
            siblings: &facts.siblings,
            action_override: incident.action_override,
            observed_at: facts.observed_at,
        });
        for warning in plans.iter().filter_map(|p| p.chosen.as_ref()?.warning.clone()) {
            if !report.warnings.contains(&warning) {
                report.warnings.push(warning);
            }
        }
        let attaches = plans
            .iter()
            .any(|p| p.steps.iter().any(|s| matches!(s, Step::AwaitAssociated(_))));
        let executed: Vec<(InstanceReport, Option<Error>)> = futures::stream::iter(plans)
            .map(|p| execute(app, &ec2, p, dry_run, steps))
            .buffered(app.config.fleet_concurrency)
            .collect()
            .await;
        let failures: Vec<String> = executed
            .iter()
            .filter_map(|(r, e)| e.as_ref().map(|e| format!("{} ({})", r.instance_id, e.kind())))
            .collect();
        for (done, _) in executed {
            match instances.iter_mut().find(|r| r.instance_id == done.instance_id) {
                Some(earlier) => *earlier = done,
                None => instances.push(done),
            }
        }
        report.instances = instances.clone();
        if !failures.is_empty() {
            return Err(Error::RemediationFailed(format!(
                "sessions revoked, but {} instance(s) need attention: {}",
                failures.len(),
                failures.join(", ")
            )));
        }
        if dry_run || !attaches {
            break;
        }
        let in_force = steps
            .run(
                "GetRolePolicy",
                role_name.as_str(),
                iam::get_revocation(iam, &role_name),
            )
            .await?;
        match moved(&role_name, in_force, cutoff, covers_from, round)? {
            None => break,
            Some(later) => {
                let moved = format!(
                    "the cut-off moved from {} to {} while instances were cycled (another run or a person revoked again); cycled against the later one",
                    cutoff.to_rfc3339_opts(SecondsFormat::Millis, true),
                    later.to_rfc3339_opts(SecondsFormat::Millis, true),
                );
                warn!(role = %role_name, %moved, "cut-off moved");
                report.warnings.push(moved);
                cutoff = later;
            }
        }
    }
    if let Some(c) = report.cutoff.as_mut() {
        c.at = cutoff.to_rfc3339_opts(SecondsFormat::Millis, true);
    }
    if dry_run {
        return Ok(Outcome::Planned);
    }
    Ok(if steps.wrote_anything() {
        Outcome::Remediated
    } else {
        Outcome::AlreadyRemediated
    })
}

/// Write the revocation, or adopt the one a concurrent run claimed first (with `CLAIM_TABLE`).
#[allow(clippy::too_many_arguments)]
async fn revoke(
    app: &App,
    iam: &aws_sdk_iam::Client,
    role_name: &RoleName,
    role_arn: &str,
    cutoff: chrono::DateTime<Utc>,
    covers_from: chrono::DateTime<Utc>,
    finding_id: &str,
    steps: &Steps,
) -> Result<Written> {
    let Some(table) = &app.config.claim_table else {
        return put(iam, role_name, cutoff, steps).await.map(Written::At);
    };
    let dynamodb = &app.clients.dynamodb;
    let claimed = steps
        .run(
            "ClaimRevocation",
            role_name.as_str(),
            claim::claim(dynamodb, table, role_arn, cutoff, covers_from, finding_id, Utc::now()),
        )
        .await?;
    let theirs = match claimed {
        Claimed::Won => return put(iam, role_name, cutoff, steps).await.map(Written::At),
        Claimed::Unavailable(why) => {
            warn!(role = %role_name, %why, "no revocation claim; writing without one");
            return put(iam, role_name, cutoff, steps)
                .await
                .map(|at| Written::Unclaimed(at, why));
        }
        Claimed::Lost { cutoff: theirs } => theirs,
    };
    info!(role = %role_name, cutoff = %theirs, "another run claimed the revocation; adopting it");
    let wait = await_revocation(iam, role_name, covers_from, steps.bounded(claim::ADOPT_WITHIN));
    match steps.run("AwaitClaimedRevocation", role_name.as_str(), wait).await {
        Ok(in_force) => Ok(Written::Adopted(in_force)),
        // The claim's run failed or died before writing: containment must not wait on it, so
        // write (a second write costs nothing but the write).
        Err(Error::Timeout { seconds, .. }) => {
            let why = format!(
                "the run that claimed the revocation ({}) did not write it within {seconds} s",
                theirs.to_rfc3339_opts(SecondsFormat::Millis, true)
            );
            warn!(role = %role_name, %why, "taking over the revocation");
            put(iam, role_name, cutoff, steps)
                .await
                .map(|at| Written::Unclaimed(at, why))
        }
        Err(e) => Err(e),
    }
}

/// After cycling against `cutoff`: None if what was issued stands (the cut-off in force is the
/// same, or an earlier one that still covers the finding), or the later cut-off to cycle against.
fn moved(
    role_name: &RoleName,
    in_force: Option<Existing>,
    cutoff: chrono::DateTime<Utc>,
    covers_from: chrono::DateTime<Utc>,
    round: usize,
) -> Result<Option<chrono::DateTime<Utc>>> {
    let what = match in_force {
        Some(Existing::Cutoff(c)) if c <= cutoff && c >= covers_from => return Ok(None),
        Some(Existing::Cutoff(later)) if later > cutoff && round < CUTOFF_ROUNDS => return Ok(Some(later)),
        Some(Existing::Cutoff(later)) if later > cutoff => {
            return Err(Error::RemediationFailed(format!(
                "the cut-off on role {role_name} kept moving ({CUTOFF_ROUNDS} rounds); its cycled instances may hold revoked credentials: a retry cycles them against the latest"
            )));
        }
        None => "was removed".to_owned(),
        Some(Existing::Cutoff(c)) => format!(
            "now has a cut-off ({}) before the finding's first sighting",
            c.to_rfc3339_opts(SecondsFormat::Millis, true)
        ),
        Some(Existing::Unrecognised(why)) => format!("was replaced by something else ({why})"),
    };
    Err(Error::RemediationFailed(format!(
        "the revocation on role {role_name} {what} while we worked, so the stolen credentials may work again: a retry revokes again"
    )))
}

/// How many times one run cycles against a cut-off that moved under it before giving up.
const CUTOFF_ROUNDS: usize = 3;

/// What became of the revocation write.
enum Written {
    Nothing,
    /// Ours, written at this time.
    At(chrono::DateTime<Utc>),
    /// Ours, written without a claim because the table would not take one (why).
    Unclaimed(chrono::DateTime<Utc>, String),
    /// Another run's, claimed first and now in IAM.
    Adopted(chrono::DateTime<Utc>),
}

async fn put(
    iam: &aws_sdk_iam::Client,
    role: &RoleName,
    cutoff: chrono::DateTime<Utc>,
    steps: &Steps,
) -> Result<chrono::DateTime<Utc>> {
    let at = cutoff.to_rfc3339_opts(SecondsFormat::Millis, true);
    info!(role = %role, cutoff = %at, "revoking sessions issued before the cut-off");
    steps
        .run("PutRolePolicy", role.as_str(), iam::put_revocation(iam, role, cutoff))
        .await?;
    Ok(Utc::now())
}

/// Wait until IAM shows a revocation on `role` that covers `covers_from` (the claim winner's).
async fn await_revocation(
    iam: &aws_sdk_iam::Client,
    role: &RoleName,
    covers_from: chrono::DateTime<Utc>,
    timeout: std::time::Duration,
) -> Result<chrono::DateTime<Utc>> {
    let what = format!("the revocation another run claimed to show on role {role}");
    poll(timeout, what, || async {
        Ok(match iam::get_revocation(iam, role).await? {
            Some(Existing::Cutoff(c)) if c >= covers_from => Some(c),
            _ => None,
        })
    })
    .await
}

/// For `{"instanceId"}`: the role its current profile holds.
async fn role_of_instance(
    iam: &aws_sdk_iam::Client,
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    region: &str,
    steps: &Steps,
) -> Result<RoleName> {
    let assoc = steps
        .run("DescribeIamInstanceProfileAssociations", id, ec2::current_association_of(ec2, id))
        .await?
        .ok_or_else(|| {
            let why = format!("{id} has no instance profile attached in {region} (or does not exist there); name the role with roleName instead");
            Error::bad_input("instanceId", why)
        })?;
    let profile = profile_name_from_arn(&assoc.profile_arn)
        .ok_or_else(|| Error::Unexpected(format!("{} is not an instance-profile ARN", assoc.profile_arn)))?;
    let role = steps
        .run(
            "GetInstanceProfile",
            profile,
            iam::role_of_instance_profile(iam, profile),
        )
        .await?;
    let role =
        role.ok_or_else(|| Error::bad_input("instanceId", format!("{id}'s instance profile {profile} holds no role")))?;
    RoleName::parse(&role).map_err(Error::Unexpected)
}

struct Fleet {
    /// Taken before the first read: any association made later is newer than this.
    observed_at: chrono::DateTime<Utc>,
    profiles: Vec<String>,
    named: Option<InstanceFacts>,
    siblings: Vec<InstanceFacts>,
}

/// Every instance whose current profile holds the role, plus the named instance however it stands.
async fn discover_fleet(
    iam: &aws_sdk_iam::Client,
    ec2: &aws_sdk_ec2::Client,
    role: &RoleName,
    named: Option<&crate::names::InstanceId>,
    steps: &Steps,
) -> Result<Fleet> {
    let observed_at = Utc::now();
    let (profiles, associations, marked): (Vec<String>, HashMap<String, plan::Association>, _) = tokio::try_join!(
        steps.run(
            "ListInstanceProfilesForRole",
            role.as_str(),
            iam::instance_profiles_for_role(iam, role)
        ),
        steps.run(
            "DescribeIamInstanceProfileAssociations",
            "region",
            ec2::current_associations(ec2)
        ),
        steps.run("DescribeInstances", "marked instances", ec2::marked_instances(ec2)),
    )?;
    let mut ids: Vec<String> = associations
        .iter()
        .filter(|(_, a)| profiles.contains(&a.profile_arn))
        .map(|(id, _)| id.clone())
        .collect();
    // Stranded by an interrupted cycle: no profile now, but our marker names one of the role's.
    ids.extend(
        marked
            .into_iter()
            .filter(|(id, profile)| profiles.contains(profile) && !associations.contains_key(id))
            .map(|(id, _)| id),
    );
    if let Some(named) = named
        && !ids.iter().any(|i| i == named.as_str())
    {
        ids.push(named.to_string());
    }
    ids.sort();
    ids.dedup();
    let found = if ids.is_empty() {
        Vec::new()
    } else {
        steps
            .run(
                "DescribeInstances",
                &format!("{} instance(s)", ids.len()),
                ec2::describe_instances(ec2, &ids, &associations),
            )
            .await?
    };
    let (named_facts, siblings): (Vec<_>, Vec<_>) = found
        .into_iter()
        .partition(|f| named.is_some_and(|n| n.as_str() == f.id));
    Ok(Fleet {
        observed_at,
        profiles,
        named: named_facts.into_iter().next(),
        siblings,
    })
}

fn step_name(step: &Step) -> &'static str {
    match step {
        Step::Tag(_) => "CreateTags",
        Step::Disassociate { .. } => "DisassociateIamInstanceProfile",
        Step::AwaitDisassociated => "AwaitDisassociation",
        Step::Associate(_) => "AssociateIamInstanceProfile",
        Step::AwaitAssociated(_) => "AwaitAssociation",
        Step::Reboot => "RebootInstances",
    }
}

fn describe(step: &Step) -> String {
    match step {
        Step::Tag(tags) => {
            let shown: Vec<String> = tags
                .iter()
                .map(|(k, v)| match v {
                    TagValue::Text(t) => format!("{k}={t}"),
                    TagValue::Now => format!("{k}=<time of writing>"),
                })
                .collect();
            shown.join(", ")
        }
        Step::Disassociate { association_id } => format!("detach association {association_id}"),
        Step::AwaitDisassociated => "wait until no profile is attached".into(),
        Step::Associate(Profile::Arn(p)) | Step::Associate(Profile::Name(p)) => format!("attach {p}"),
        Step::AwaitAssociated(_) => "wait until the new association is associated".into(),
        Step::Reboot => "reboot".into(),
    }
}

/// A profile another run attached after our facts were read is as fresh as ours would be: take it
/// if it is the one this plan attaches. Any other profile is not ours to replace.
fn adopt(plan: &[Step], found: &plan::Association, replaced: Option<&str>, id: &str) -> Result<()> {
    let wanted = plan.iter().find_map(|s| match s {
        Step::Associate(p) => Some(p),
        _ => None,
    });
    match wanted {
        Some(p) if ec2::matches_profile(&found.profile_arn, p) && Some(found.id.as_str()) != replaced => {
            info!(instance = id, association = %found.id, "a concurrent run attached the profile first; adopting it");
            Ok(())
        }
        _ => Err(Error::Unexpected(format!(
            "{id} holds profile {} (association {}), which this cycle did not attach and cannot take as fresh; not changed further",
            found.profile_arn, found.id
        ))),
    }
}

/// Run one instance's steps in order; the first failure stops that instance, not the others.
async fn execute(
    app: &App,
    ec2_client: &aws_sdk_ec2::Client,
    plan: InstancePlan,
    dry_run: bool,
    steps: &Steps,
) -> (InstanceReport, Option<Error>) {
    let chosen = plan.chosen.as_ref();
    let mut out = InstanceReport {
        instance_id: plan.instance_id.clone(),
        relation: plan.relation,
        state: plan.state.clone(),
        action: chosen.map(|c| c.action),
        action_source: chosen.map(|c| c.source),
        result: plan.result.clone(),
        needs_attention: plan.needs_attention,
    };
    let id = plan.instance_id.as_str();
    if dry_run {
        for step in &plan.steps {
            steps.planned(step_name(step), id, describe(step));
        }
        if !plan.steps.is_empty() {
            out.result = format!("planned: {}", plan.result);
        }
        return (out, None);
    }
    let timeout = app.config.cycle_timeout;
    let mut detached = false;
    // The association this cycle replaces: any other current one appeared after our facts.
    let mut replaced: Option<&str> = None;
    // Set when a concurrent run attached the profile first: ours is then not attached again.
    let mut adopted = false;
    for step in &plan.steps {
        let name = step_name(step);
        let result = match step {
            Step::Tag(tags) => {
                let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
                let values: Vec<(&str, String)> = tags
                    .iter()
                    .map(|(k, v)| match v {
                        TagValue::Text(t) => (*k, t.clone()),
                        TagValue::Now => (*k, now.clone()),
                    })
                    .collect();
                steps.run(name, id, ec2::create_tags(ec2_client, id, &values)).await
            }
            Step::Disassociate { association_id } => {
                detached = true;
                replaced = Some(association_id);
                steps.run(name, id, ec2::disassociate(ec2_client, association_id)).await
            }
            Step::AwaitDisassociated => {
                let wait = ec2::await_disassociated(ec2_client, id, replaced, steps.bounded(timeout));
                match steps.run(name, id, wait).await {
                    Ok(Some(newer)) => adopt(&plan.steps, &newer, replaced, id).map(|()| adopted = true),
                    Ok(None) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Step::Associate(_) if adopted => Ok(()),
            Step::Associate(profile) => match steps.run(name, id, ec2::associate(ec2_client, id, profile)).await {
                Ok(Attached::Made(_)) => Ok(()),
                Ok(Attached::Found(found)) => adopt(&plan.steps, &found, replaced, id),
                Err(e) => Err(e),
            },
            Step::AwaitAssociated(profile) => {
                let wait = ec2::await_associated(ec2_client, id, profile, steps.bounded(timeout));
                steps.run(name, id, wait).await
            }
            Step::Reboot => steps.run(name, id, ec2::reboot(ec2_client, id)).await,
        };
        if let Err(e) = result {
            let stranded = detached && plan.steps.iter().any(|s| matches!(s, Step::Associate(_)));
            let recovery = if stranded {
                "its profile may be detached now; the marker tag records the original, and a retry finishes the remaining steps"
            } else {
                "a retry finishes the remaining steps"
            };
            warn!(instance = id, role = steps.role(), step = name, error = %e, "instance step failed");
            out.result = format!("FAILED at {name}: {e}; {recovery}");
            out.needs_attention = true;
            return (out, Some(e));
        }
    }
    info!(instance = id, role = steps.role(), result = %plan.result, "instance done");
    (out, None)
}
