//! Readiness (`{"operation": "readiness"}`, the CLI's `readiness`): for each account named (the
//! function's own if none), read every role an instance profile holds and every instance holding
//! a profile in every enabled region, and report what a containment would do now
//! ([`plan::readiness`](crate::plan::readiness), through the gate as a dry run).
//!
//! It writes nothing: every call it sends is a read (`make test` asserts the operations sent), and
//! the gate, asked as a dry run, can plan a write but never make the `Permit` one needs. A part
//! that cannot be read (an account, a region, GuardDuty, the quotas) is named as not read, and the
//! rest is still assessed: a partial report, never a silent gap.

use chrono::Utc;
use futures::StreamExt;
use tracing::{Instrument, info, info_span, warn};

use crate::api::ApiCall;
use crate::app::App;
use crate::aws::clients::{Target, ec2_in, guardduty_in, region_of};
use crate::aws::{ec2, guardduty, iam, inventory};
use crate::error::{Error, Result};
use crate::finding::FindingSummary;
use crate::operation::Readiness;
use crate::plan::InstanceFacts;
use crate::plan::readiness::{self as plan, AccountFacts, Quotas, RoleInventory, Watch};
use crate::report::readiness::{AccountReadiness, ReadinessReport, markdown};
use crate::report::{OperationReport, Outcome, Report};
use crate::respond::establish::{self, Place};
use crate::respond::journal::Journal;
use crate::wait::Deadline;

/// Accounts assessed at once: each reads its regions at once too.
const ACCOUNTS_AT_ONCE: usize = 4;
/// Regions read at once in an account. EC2 throttles per account and region, so this only bounds
/// the connections open at once (DescribeRegions lists up to about 30).
const REGIONS_AT_ONCE: usize = 32;
/// Managed fallbacks read at once (two IAM reads each; few roles have one).
const FALLBACKS_AT_ONCE: usize = 8;

/// Assess each account named, and report. Never an error: what could not be read is in the report.
pub async fn readiness(app: &App, request: Readiness, deadline: Deadline) -> (Report, Option<Error>) {
    let steps = Journal::new("readiness", deadline);
    let at = Utc::now();
    // Owned: the handler's future may be spawned (`tokio::spawn` needs it `Send` for any lifetime),
    // which a stream over borrowed `&str` accounts is not.
    let named: Vec<Option<String>> = match request.accounts.is_empty() {
        true => vec![None],
        false => request.accounts.iter().cloned().map(Some).collect(),
    };
    let span = info_span!("readiness", accounts = named.len());
    let accounts: Vec<AccountReadiness> = futures::stream::iter(named)
        .map(|account| assess_account(app, account, &steps))
        .buffered(ACCOUNTS_AT_ONCE)
        .collect()
        .instrument(span)
        .await;
    let readiness = ReadinessReport {
        summary: markdown(&accounts, at),
        accounts,
    };
    info!(
        not_containable = readiness.not_containable(),
        unread = readiness.unread(),
        "readiness assessed"
    );
    let finding = FindingSummary {
        source: "manual".into(),
        ..FindingSummary::default()
    };
    let report = Report {
        outcome: Outcome::Assessed,
        request_reason: request.asked.reason.clone(),
        steps: steps.into_records(),
        operation: Some(OperationReport {
            name: "readiness",
            subject: "accounts".into(),
            requested_by: request.asked.requested_by.clone(),
            ..OperationReport::default()
        }),
        readiness: Some(readiness),
        // Not a dry run even under DRY_RUN: readiness writes nothing either way, and its summary
        // is still sent (announce sends nothing for a dry run).
        ..Report::new(finding, false)
    };
    (report, None)
}

/// One account, or why it could not be assessed.
async fn assess_account(app: &App, requested: Option<String>, steps: &Journal) -> AccountReadiness {
    let label = requested.clone().unwrap_or_else(|| "(own)".into());
    match assess(app, requested.as_deref(), steps).await {
        Ok(assessed) => assessed,
        Err(e) => {
            warn!(account = %label, error = %e, "readiness: account not assessed");
            AccountReadiness::unread(&label, format!("account {label} could not be assessed: {e}"))
        }
    }
}

async fn assess(app: &App, requested: Option<&str>, steps: &Journal) -> Result<AccountReadiness> {
    let home = app.home_for(requested).await?;
    let summary = FindingSummary {
        account_id: requested.map(str::to_owned),
        ..FindingSummary::default()
    };
    let place = establish::place(&summary, &home, app.clients.region())?;
    let account = place.account.clone();
    let reach = match establish::route(app, &home, &place) {
        Ok(reach) => reach,
        Err(why) => return Ok(AccountReadiness::unread(&account, why)),
    };
    let target = match establish::reach(app, &reach, &place, "readiness").await {
        Ok(target) => target,
        Err(e) => {
            let why = format!("account {account}: the member role could not be assumed ({e}): nothing there was read");
            return Ok(AccountReadiness::unread(&account, why));
        }
    };
    let own_role = app.own_role(&reach, &home).await?;
    let now = Utc::now();
    let read = read_account(&target, &place, steps).await;
    let (roles, problems) = plan::assess(&AccountFacts {
        config: &app.config,
        own_role: own_role.as_deref(),
        member_role: app.config.member_role_name.as_deref(),
        now,
        quotas: read.quotas,
        roles: &read.roles,
        instances: &read.instances,
        watched: &read.watched,
    });
    Ok(AccountReadiness {
        account,
        regions: read.watched.into_iter().map(|(region, _)| region).collect(),
        roles,
        problems: problems.into_iter().chain(read.denied).collect(),
        unread: read.unread,
    })
}

/// What was read of one account, and what could not be.
#[derive(Default)]
struct Read {
    roles: Vec<RoleInventory>,
    quotas: Quotas,
    instances: Vec<InstanceFacts>,
    /// Each region whose instances were read, and whether GuardDuty watches there.
    watched: Vec<(String, Option<Watch>)>,
    /// Regions EC2 denies outright (an SCP): nothing runs there, so nothing is missing.
    denied: Vec<String>,
    unread: Vec<String>,
}

/// IAM (global) and every enabled region at once.
async fn read_account(target: &Target, place: &Place, steps: &Journal) -> Read {
    let account = place.account.as_str();
    let (roles, quotas, regions) = tokio::join!(
        read_roles(&target.iam, steps),
        steps.run(ApiCall::GetAccountSummary, account, inventory::quotas(&target.iam)),
        read_regions(target, steps),
    );
    let mut read = Read::default();
    match roles {
        Ok((roles, unread)) => {
            read.roles = roles;
            read.unread.extend(unread);
        }
        Err(e) => read.unread.push(format!(
            "account {account}: IAM's roles could not be read ({e}): no role was assessed"
        )),
    }
    match quotas {
        Ok(quotas) => read.quotas = quotas,
        Err(e) => read.unread.push(format!(
            "account {account}: IAM's quotas could not be read ({e}): IAM's default quotas were assumed"
        )),
    }
    let (regions, unread) = regions;
    read.unread.extend(unread);
    for (region, instances, watch) in regions {
        match instances {
            Ok(instances) => {
                read.instances.extend(instances);
                read.watched.push((region, watch));
            }
            Err(Some(denied)) => read.denied.push(denied),
            Err(None) => {}
        }
    }
    read.watched.sort_by(|a, b| a.0.cmp(&b.0));
    read.denied.sort();
    read
}

/// Every role an instance profile holds, with the managed fallback's document where attached;
/// and, for each fallback that could not be read, why (its role is assessed without it).
async fn read_roles(iam_client: &aws_sdk_iam::Client, steps: &Journal) -> Result<(Vec<RoleInventory>, Vec<String>)> {
    let listed = inventory::instance_roles(iam_client);
    let roles = steps
        .run(ApiCall::GetAccountAuthorizationDetails, "roles", listed)
        .await?;
    let read: Vec<(RoleInventory, Option<String>)> = futures::stream::iter(roles)
        .map(|role| read_fallback(iam_client, role, steps))
        .buffered(FALLBACKS_AT_ONCE)
        .collect()
        .await;
    let mut unread = Vec::new();
    let roles = (read.into_iter())
        .map(|(role, why)| {
            unread.extend(why);
            role
        })
        .collect();
    Ok((roles, unread))
}

/// The role with its managed fallback's document, where one is attached; or why it was not read.
async fn read_fallback(
    iam_client: &aws_sdk_iam::Client,
    mut role: RoleInventory,
    steps: &Journal,
) -> (RoleInventory, Option<String>) {
    let Some(arn) = role.fallback.clone() else {
        return (role, None);
    };
    let read = iam::policy_document(iam_client, &arn);
    match steps.run(ApiCall::GetPolicyVersion, &arn, read).await {
        Ok(document) => {
            role.documents.managed = Some((arn, document));
            (role, None)
        }
        Err(e) => {
            let why = format!(
                "role {}: its managed fallback {arn} could not be read ({e}): what it holds is not in this report",
                role.facts.name
            );
            (role, Some(why))
        }
    }
}

/// One region's instances (or, where they could not be read, the note if EC2 denies the region
/// outright), and whether GuardDuty watches it.
type Regional = (
    String,
    std::result::Result<Vec<InstanceFacts>, Option<String>>,
    Option<Watch>,
);

/// Every enabled region: the instances holding a profile, and whether GuardDuty watches there.
/// If the regions cannot be listed, the target's own region is read, and the report says so.
async fn read_regions(target: &Target, steps: &Journal) -> (Vec<Regional>, Vec<String>) {
    let here = region_of(&target.ec2);
    let mut unread = Vec::new();
    let listed = steps.run(
        ApiCall::DescribeRegions,
        "enabled regions",
        ec2::enabled_regions(&target.ec2),
    );
    let regions = match listed.await {
        Ok(regions) => regions,
        Err(e) => {
            unread.push(format!(
                "the enabled regions could not be listed ({e}): only {here} was read"
            ));
            vec![here]
        }
    };
    let reads: Vec<(Regional, Vec<String>)> = futures::stream::iter(regions)
        .map(|region| read_region(target, region, steps))
        .buffer_unordered(REGIONS_AT_ONCE)
        .collect()
        .await;
    let mut regional = Vec::new();
    for (read, gaps) in reads {
        regional.push(read);
        unread.extend(gaps);
    }
    (regional, unread)
}

async fn read_region(target: &Target, region: String, steps: &Journal) -> (Regional, Vec<String>) {
    let ec2_client = ec2_in(&target.ec2, &region);
    let guardduty_client = guardduty_in(&target.guardduty, &region);
    let (instances, watch) = tokio::join!(
        region_instances(&ec2_client, &region, steps),
        watch(&guardduty_client, &region, steps)
    );
    let mut gaps = Vec::new();
    let instances = instances.map_err(|e| match e.aws_code() {
        // Organisations deny unused regions with an SCP, which DescribeRegions does not show: no
        // instance can run there, so nothing is missing (a containment skips them alike).
        Some("UnauthorizedOperation") => Some(format!(
            "region {region} is denied to this account ({e}; an SCP?): no instance can run there"
        )),
        _ => {
            gaps.push(format!(
                "region {region}: its instances could not be read ({e}): any there using a role are not in this report"
            ));
            None
        }
    });
    let watch = match (watch, &instances) {
        (Ok(watch), _) => Some(watch),
        (Err(_), Err(Some(_))) => None,
        (Err(e), _) => {
            gaps.push(format!(
                "region {region}: whether GuardDuty watches it could not be read ({e})"
            ));
            None
        }
    };
    ((region, instances, watch), gaps)
}

/// The region's instances holding a profile, and those our marker says an interrupted cycle
/// stranded without one (as a containment's fleet finds them).
async fn region_instances(
    ec2_client: &aws_sdk_ec2::Client,
    region: &str,
    steps: &Journal,
) -> Result<Vec<InstanceFacts>> {
    let listed = ec2::current_associations(ec2_client);
    let (associations, marked) = tokio::try_join!(
        steps.run(ApiCall::DescribeIamInstanceProfileAssociations, region, listed),
        steps.run(ApiCall::DescribeInstances, region, ec2::marked_instances(ec2_client)),
    )?;
    let mut ids: Vec<String> = (associations.keys().cloned())
        .chain(marked.into_iter().map(|(id, _)| id))
        .collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let what = format!("{} instance(s) in {region}", ids.len());
    let describe = ec2::describe_instances(ec2_client, (region, &ids), &associations);
    steps.run(ApiCall::DescribeInstances, &what, describe).await
}

/// Whether GuardDuty watches the region: a detector, and not suspended.
async fn watch(guardduty_client: &aws_sdk_guardduty::Client, region: &str, steps: &Journal) -> Result<Watch> {
    let listed = guardduty::own_detector(guardduty_client);
    let Some(detector) = steps.run(ApiCall::ListDetectors, region, listed).await? else {
        return Ok(Watch::NoDetector);
    };
    let status = guardduty::detector_enabled(guardduty_client, &detector);
    Ok(match steps.run(ApiCall::GetDetector, region, status).await? {
        true => Watch::Enabled,
        false => Watch::Suspended,
    })
}
