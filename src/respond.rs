//! The handler: gathers the facts, asks `plan` what to do, executes it, and reports every step.

use std::collections::HashMap;

use aws_config::SdkConfig;
use chrono::{SecondsFormat, Utc};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::OnceCell;
use tracing::{Instrument, info, info_span, warn};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::finding::{Incident, Subject, Triage};
use crate::iam::{self, Identity};
use crate::names::{RoleName, profile_name_from_arn};
use crate::plan::{
    self, FleetFacts, InstanceFacts, InstancePlan, Profile, Revocation, RevocationFacts, Step, TagValue,
};
use crate::report::{
    CutoffReport, CutoffStatus, FindingSummary, InstanceReport, Outcome, Report, Response, RoleSummary, Steps,
};
use crate::{ec2, input};

/// The AWS clients, built once per process.
#[derive(Clone, Debug)]
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub sts: aws_sdk_sts::Client,
}

impl Clients {
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            iam: aws_sdk_iam::Client::new(sdk),
            ec2: aws_sdk_ec2::Client::new(sdk),
            sts: aws_sdk_sts::Client::new(sdk),
        }
    }

    pub fn region(&self) -> Option<String> {
        self.ec2.config().region().map(|r| r.to_string())
    }
}

pub struct App {
    pub config: Config,
    pub clients: Clients,
    identity: OnceCell<Identity>,
}

impl App {
    pub fn new(config: Config, clients: Clients) -> Self {
        Self {
            config,
            clients,
            identity: OnceCell::new(),
        }
    }

    /// Our account and role: asked once per process, on first use rather than at start-up.
    async fn identity(&self) -> Result<&Identity> {
        self.identity
            .get_or_try_init(|| iam::caller_identity(&self.clients.sts))
            .await
    }
}

/// The answer to one invocation, and the error to hand Lambda if any event failed.
pub struct Handled {
    pub response: Response,
    pub failure: Option<Error>,
}

pub async fn handle(app: &App, payload: Value) -> Handled {
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
        results.push(Box::pin(respond(app, item)).await);
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

/// Handle one event or manual request.
pub async fn respond(app: &App, item: Result<Triage>) -> (Report, Option<Error>) {
    match item {
        Err(e) => {
            let mut report = Report::new(FindingSummary::default(), app.config.dry_run);
            report.fail(&e);
            (report, Some(e))
        }
        Ok(Triage::Skip { summary, reason }) => {
            info!(finding_id = summary.id.as_deref().unwrap_or("-"), %reason, "skipped");
            let mut report = Report::new(summary, app.config.dry_run);
            report.outcome_reason = Some(reason);
            (report, None)
        }
        Ok(Triage::Act(incident)) => {
            let span = info_span!("remediate", finding_id = incident.finding_id());
            remediate(app, incident).instrument(span).await
        }
    }
}

async fn remediate(app: &App, incident: Incident) -> (Report, Option<Error>) {
    let dry_run = app.config.dry_run || incident.dry_run_requested;
    let mut report = Report::new(incident.summary.clone(), dry_run);
    report.request_reason = incident.request_reason.clone();
    report.warnings = incident.warnings.clone();
    let steps = Steps::new(incident.finding_id());
    let result = run(app, &incident, dry_run, &steps, &mut report).await;
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

async fn run(app: &App, incident: &Incident, dry_run: bool, steps: &Steps, report: &mut Report) -> Result<Outcome> {
    let identity = app.identity().await?;
    let account = incident
        .summary
        .account_id
        .clone()
        .unwrap_or_else(|| identity.account.clone());
    if account != identity.account {
        let reason = format!(
            "the finding is for account {account}, and this function acts in account {} only: not acting on a role of the same name here",
            identity.account
        );
        return skip(report, reason);
    }
    let region = match incident.summary.region.clone().or_else(|| app.clients.region()) {
        Some(r) => r,
        None => {
            return Err(Error::bad_input(
                "detail.region",
                "missing, and no default region is configured",
            ));
        }
    };
    report.finding.account_id = Some(account);
    report.finding.region = Some(region.clone());
    // EC2 work happens in the finding's region; IAM is global.
    let ec2 = ec2::client_in(&app.clients.ec2, &region);
    let iam = &app.clients.iam;

    let (role_name, expected_role_id, named_instance) = match &incident.subject {
        Subject::Finding {
            role,
            role_id,
            instance,
        } => (role.clone(), role_id.clone(), instance.clone()),
        Subject::Role(role) => (role.clone(), None, None),
        Subject::Instance(id) => {
            let role = role_of_instance(app, &ec2, id.as_str(), &region, steps).await?;
            (role, None, Some(id.clone()))
        }
    };
    steps.set_role(role_name.as_str());
    report.role = Some(RoleSummary {
        name: role_name.to_string(),
        arn: None,
    });

    // Containment first: only the role's own facts gate the revocation.
    let (role, existing) = tokio::try_join!(
        steps.run("GetRole", role_name.as_str(), iam::get_role(iam, &role_name)),
        steps.run(
            "GetRolePolicy",
            role_name.as_str(),
            iam::get_revocation(iam, &role_name)
        ),
    )?;
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
        own_role: identity.role.as_deref(),
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
    let cutoff_text = cutoff.to_rfc3339_opts(SecondsFormat::Secs, true);

    let write = async {
        match decision {
            Revocation::Write(c) if !dry_run => {
                info!(role = %role_name, cutoff = %cutoff_text, "revoking sessions issued before the cut-off");
                steps
                    .run(
                        "PutRolePolicy",
                        role_name.as_str(),
                        iam::put_revocation(iam, &role_name, c),
                    )
                    .await
                    .map(|()| Some(Utc::now()))
            }
            Revocation::Write(_) => {
                steps.planned(
                    "PutRolePolicy",
                    role_name.as_str(),
                    format!("deny sessions issued before {cutoff_text}"),
                );
                Ok(None)
            }
            _ => Ok(None),
        }
    };
    let (written, fleet) = tokio::join!(
        write,
        discover_fleet(iam, &ec2, &role_name, named_instance.as_ref(), steps)
    );
    let status = match (&decision, dry_run, &written) {
        (Revocation::Keep(_), ..) => CutoffStatus::Existing,
        (_, true, _) => CutoffStatus::Planned,
        (_, false, Ok(_)) => CutoffStatus::Written,
        (_, false, Err(_)) => CutoffStatus::Failed,
    };
    report.cutoff = Some(CutoffReport {
        at: cutoff_text,
        status,
        written_at: written.as_ref().ok().copied().flatten(),
    });
    // If the revocation failed, the instances' credentials still work: leave them alone.
    written?;
    let fleet = fleet?;

    let plans = plan::instances(&FleetFacts {
        config: &app.config,
        cutoff,
        finding_id: incident.finding_id(),
        role_name: role_name.as_str(),
        role_tags: &role.tags,
        role_profiles: &fleet.profiles,
        named: named_instance.as_ref().map(|id| (id.as_str(), fleet.named.as_ref())),
        siblings: &fleet.siblings,
        action_override: incident.action_override,
    });
    for warning in plans.iter().filter_map(|p| p.chosen.as_ref()?.warning.clone()) {
        report.warnings.push(warning);
    }
    let executed: Vec<(InstanceReport, Option<Error>)> = futures::stream::iter(plans)
        .map(|p| execute(app, &ec2, p, dry_run, steps))
        .buffered(app.config.fleet_concurrency)
        .collect()
        .await;
    let failures: Vec<String> = executed
        .iter()
        .filter_map(|(r, e)| e.as_ref().map(|e| format!("{} ({})", r.instance_id, e.kind())))
        .collect();
    report.instances = executed.into_iter().map(|(r, _)| r).collect();
    if !failures.is_empty() {
        return Err(Error::RemediationFailed(format!(
            "sessions revoked, but {} instance(s) need attention: {}",
            failures.len(),
            failures.join(", ")
        )));
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

/// For `{"instanceId"}`: the role its current profile holds.
async fn role_of_instance(
    app: &App,
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
            iam::role_of_instance_profile(&app.clients.iam, profile),
        )
        .await?;
    let role =
        role.ok_or_else(|| Error::bad_input("instanceId", format!("{id}'s instance profile {profile} holds no role")))?;
    RoleName::parse(&role).map_err(Error::Unexpected)
}

struct Fleet {
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
    let (profiles, associations): (Vec<String>, HashMap<String, plan::Association>) = tokio::try_join!(
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
    )?;
    let mut ids: Vec<String> = associations
        .iter()
        .filter(|(_, a)| profiles.contains(&a.profile_arn))
        .map(|(id, _)| id.clone())
        .collect();
    if let Some(named) = named
        && !ids.iter().any(|i| i == named.as_str())
    {
        ids.push(named.to_string());
    }
    ids.sort();
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
    for step in &plan.steps {
        let name = step_name(step);
        let result = match step {
            Step::Tag(tags) => {
                let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
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
                steps.run(name, id, ec2::disassociate(ec2_client, association_id)).await
            }
            Step::AwaitDisassociated => {
                steps
                    .run(name, id, ec2::await_disassociated(ec2_client, id, timeout))
                    .await
            }
            Step::Associate(profile) => steps
                .run(name, id, ec2::associate(ec2_client, id, profile))
                .await
                .map(drop),
            Step::AwaitAssociated(profile) => {
                steps
                    .run(name, id, ec2::await_associated(ec2_client, id, profile, timeout))
                    .await
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
