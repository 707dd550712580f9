//! GuardDuty in the administrator account, which is this function's own in an organisation
//! deployment. The administrator reads every member's findings with its own detector, so a
//! member's finding is verified here before any member role is assumed; and "only the
//! administrator account can archive findings. Member accounts don't have permission to archive
//! findings from their accounts" (ArchiveFindings, GuardDuty API reference:
//! https://docs.aws.amazon.com/guardduty/latest/APIReference/API_ArchiveFindings.html).

use crate::api::ApiCall;
use crate::app::App;
use crate::aws::clients::{Target, guardduty_in};
use crate::aws::guardduty::{self, Fetched};
use crate::error::Result;
use crate::finding::{Finding, Locator};
use crate::names::GuardDutyId;
use crate::respond::establish::{self, Alleged, Place};
use crate::respond::journal::Journal;
use crate::verify::{self, Comparison};

/// Where GuardDuty's copy of the finding was read, and so where it is archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keeper {
    /// This account, with its own detector (the administrator's, or a finding in this account).
    Administrator(GuardDutyId),
    /// The finding's own account, with the event's detector: a finding in this account, or a member's
    /// when this account has no detector in the region.
    FindingsAccount,
}

/// GuardDuty's copy of a member's finding, as the administrator sees it.
struct AdministratorCopy {
    detector: GuardDutyId,
    /// The finding, in the account and region the event names; or why it is refused.
    finding: std::result::Result<Finding, String>,
}

/// Our detector in the place's region, asked once per process (ListDetectors).
async fn detector(app: &App, region: &str, steps: &Journal) -> Result<Option<GuardDutyId>> {
    let client = guardduty_in(&app.clients.guardduty, region);
    let ask = async {
        steps
            .run(ApiCall::ListDetectors, region, guardduty::own_detector(&client))
            .await
    };
    app.detector_in(region, ask).await
}

/// The administrator's copy of the finding `id` for `place`, or None if this account has no
/// GuardDuty detector in the region (then the member's own detector is asked, after reaching it).
async fn copy(app: &App, place: &Place, id: &GuardDutyId, steps: &Journal) -> Result<Option<AdministratorCopy>> {
    let Some(detector) = detector(app, &place.region, steps).await? else {
        return Ok(None);
    };
    let client = guardduty_in(&app.clients.guardduty, &place.region);
    let fetched = steps
        .run(
            ApiCall::GetFindings,
            id.as_str(),
            guardduty::get_finding(&client, &detector, id),
        )
        .await?;
    let Place { account, region } = place;
    let finding = match fetched {
        Fetched::Found(finding) => establish::in_place(*finding, place),
        Fetched::Missing => Err(format!(
            "GuardDuty in this account (detector {detector}, {region}) has no finding {id} for account {account}: \
             forged, deleted, or this account is not the GuardDuty administrator of {account}"
        )),
        Fetched::Rejected(why) => Err(format!(
            "GuardDuty in this account would not look up finding {id} under its detector {detector} in {region}: {why}"
        )),
    };
    Ok(Some(AdministratorCopy { detector, finding }))
}

/// For a member's finding (verification on), GuardDuty's copy as the administrator reads it, and
/// who keeps it; or why it is refused, before any member role is assumed.
pub async fn first(
    app: &App,
    alleged: &Alleged,
    (home_account, place): (&str, &Place),
    steps: &Journal,
) -> Result<std::result::Result<(Option<Finding>, Keeper), String>> {
    let locator = match alleged.guardduty_locator(app.config.verify_findings) {
        Some(locator) if place.account != home_account => locator,
        _ => return Ok(Ok((None, Keeper::FindingsAccount))),
    };
    Ok(match copy(app, place, &locator.finding_id, steps).await? {
        Some(copy) => copy
            .finding
            .and_then(|f| confirms(alleged.claimed_finding(), f))
            .map(|f| (Some(f), Keeper::Administrator(copy.detector))),
        None => Ok((None, Keeper::FindingsAccount)),
    })
}

/// The administrator's copy, if it confirms what the event claims (an archived one is confirmed
/// here and told apart later, once the role's revocation is read); else why not.
fn confirms(claimed: Option<&Finding>, actual: Finding) -> std::result::Result<Finding, String> {
    match claimed.map(|claimed| verify::compare(claimed, &actual)) {
        Some(Comparison::Refused(reason)) => Err(reason),
        _ => Ok(actual),
    }
}

/// Archiving is bookkeeping after a finished remediation: a failure is a warning, not retried.
/// A member's finding is archived by the administrator with its own detector; with none, it
/// cannot be archived at all, and the warning says so.
pub async fn archive(
    app: &App,
    target: &Target,
    keeper: &Keeper,
    place: &Place,
    locator: &Locator,
    steps: &Journal,
) -> Option<String> {
    let id = &locator.finding_id;
    let archived = match (keeper, &target.session) {
        (Keeper::Administrator(detector), _) => {
            let client = guardduty_in(&app.clients.guardduty, &place.region);
            let archive = guardduty::archive(&client, detector, id);
            steps.run(ApiCall::ArchiveFindings, id.as_str(), archive).await
        }
        // Our own account's finding, read with its own detector.
        (Keeper::FindingsAccount, None) => {
            let archive = guardduty::archive(&target.guardduty, &locator.detector_id, id);
            steps.run(ApiCall::ArchiveFindings, id.as_str(), archive).await
        }
        (Keeper::FindingsAccount, Some(_)) => {
            return Some(format!(
                "finding {id} was not archived: only the GuardDuty administrator account can archive a member's findings, \
                 and this account has no GuardDuty detector in {}",
                place.region
            ));
        }
    };
    archived.err().map(|e| {
        format!("the remediation is complete, but archiving finding {id} in GuardDuty failed ({e}): archive it by hand")
    })
}
