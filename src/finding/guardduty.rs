//! GuardDuty's own event, and any finding GuardDuty holds: triaged into an incident to act on, or
//! a skip with its reason.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::identity::{is_sample, locator};
use super::model::{FindingSummary, GUARDDUTY_SOURCE, HANDLED_TYPES, Incident, Subject, Triage, typed};
use super::shape::{AccessKeyDetails, Finding};
use crate::error::{Error, Result};
use crate::names::{InstanceId, RoleName, is_access_key_id, is_role_id};

/// Triage one GuardDuty EventBridge event.
pub fn triage_event(value: Value) -> Result<Triage> {
    triage_guardduty(typed(value, "")?)
}

pub(super) fn triage_guardduty(event: EventBridgeEvent<Value>) -> Result<Triage> {
    let summary = FindingSummary::of_event(GUARDDUTY_SOURCE, &event);
    if event.source != "aws.guardduty" || event.detail_type != "GuardDuty Finding" {
        let reason = format!(
            "not a GuardDuty finding event (source {:?}, detail-type {:?})",
            event.source, event.detail_type
        );
        return Ok(Triage::Skip { summary, reason });
    }
    let finding: Finding = typed(event.detail, "detail.")?;
    triage_finding(finding, summary)
}

/// Triage a finding, from an event or from GuardDuty itself. `summary` carries what the event's
/// envelope said, if anything.
pub fn triage_finding(finding: Finding, mut summary: FindingSummary) -> Result<Triage> {
    let keys = finding.resource.as_ref().and_then(|r| r.access_key_details.as_ref());
    summary.id = Some(finding.id.clone());
    summary.arn = finding.arn.clone();
    summary.finding_type = Some(finding.finding_type.clone());
    summary.account_id = finding.account_id.clone().or(summary.account_id);
    summary.region = finding.region.clone().or(summary.region);
    summary.severity = finding.severity;
    summary.event_first_seen = finding.service.as_ref().and_then(|s| s.event_first_seen.clone());
    summary.event_last_seen = finding.service.as_ref().and_then(|s| s.event_last_seen.clone());
    summary.access_key_id = keys.and_then(|k| k.access_key_id.clone());

    let skip = |summary, reason: String| Ok(Triage::Skip { summary, reason });
    if !HANDLED_TYPES.contains(&finding.finding_type.as_str()) {
        let reason = format!(
            "finding type {} is not an EC2 instance-credential exfiltration finding",
            finding.finding_type
        );
        return skip(summary, reason);
    }
    if is_sample(&finding) {
        return skip(
            summary,
            "GuardDuty sample finding (placeholder values, nothing real to act on)".into(),
        );
    }
    let Some(keys) = keys else {
        return Err(Error::bad_input(
            "detail.resource.accessKeyDetails",
            "missing; it names the role whose credentials leaked",
        ));
    };
    match keys.user_type.as_deref() {
        Some("AssumedRole") => {}
        other => {
            let reason = format!(
                "accessKeyDetails.userType is {}, not AssumedRole: only instance role credentials are handled",
                other.map_or("missing".to_owned(), |t| format!("{t:?}"))
            );
            return skip(summary, reason);
        }
    }

    let role = role_of(keys)?;
    let mut warnings = Vec::new();
    let instance = instance_of(&finding, role.session.as_deref(), &mut warnings)?;
    let (first_seen, last_seen) = activity(&summary)?;
    if summary.account_id.is_none() {
        return Err(Error::bad_input("detail.accountId", "missing"));
    }
    if summary.region.is_none() {
        return Err(Error::bad_input("detail.region", "missing"));
    }
    if finding.service.as_ref().and_then(|s| s.archived) == Some(true) {
        warnings.push(
            "the finding is archived in GuardDuty; acting on it anyway, as its credentials may still be live".into(),
        );
    }
    let locator = locator(&finding)?;

    Ok(Triage::Act(Incident {
        summary,
        subject: Subject::Finding {
            role: role.name,
            role_id: Some(role.id),
            instance,
        },
        first_seen: Some(first_seen),
        last_seen,
        action_override: None,
        dry_run_requested: false,
        request_reason: None,
        warnings,
        finding: Some(Box::new(finding)),
        locator,
    }))
}

/// When the key was first used, when the finding's latest activity was, and that the key's id is
/// one: it is compared with, and recorded in, the role's record of revoked keys.
fn activity(summary: &FindingSummary) -> Result<(DateTime<Utc>, Option<DateTime<Utc>>)> {
    if let Some(key) = summary.access_key_id.as_deref().filter(|k| !is_access_key_id(k)) {
        return Err(Error::bad_input(
            "detail.resource.accessKeyDetails.accessKeyId",
            format!("{key:?} is not an access key id (16 to 128 letters, digits or _)"),
        ));
    }
    let first_seen = seen("detail.service.eventFirstSeen", summary.event_first_seen.as_deref())?;
    let last_seen = (summary.event_last_seen.as_deref())
        .map(|value| seen("detail.service.eventLastSeen", Some(value)))
        .transpose()?;
    Ok((first_seen, last_seen))
}

fn seen(field: &str, value: Option<&str>) -> Result<DateTime<Utc>> {
    let value = value.ok_or_else(|| Error::bad_input(field, "missing"))?;
    Ok(DateTime::parse_from_rfc3339(value)
        .map_err(|e| Error::bad_input(field, format!("{value:?} is not an ISO 8601 time: {e}")))?
        .with_timezone(&Utc))
}

/// The leaked role, from the access key's details.
struct LeakedRole {
    name: RoleName,
    id: String,
    /// For instance credentials, the instance id.
    session: Option<String>,
}

fn role_of(keys: &AccessKeyDetails) -> Result<LeakedRole> {
    let role_field = "detail.resource.accessKeyDetails.userName";
    let role_name = keys
        .user_name
        .as_deref()
        .ok_or_else(|| Error::bad_input(role_field, "missing"))?;
    let name = RoleName::parse(role_name).map_err(|e| Error::bad_input(role_field, e))?;
    // principalId is `<role id>:<session>`; for instance credentials the session is the instance id.
    // Without the role id, a role deleted and re-created under the same name would be revoked.
    match keys.principal_id.as_deref().and_then(|p| p.split_once(':')) {
        Some((id, session)) if is_role_id(id) => Ok(LeakedRole {
            name,
            id: id.to_owned(),
            session: Some(session.to_owned()),
        }),
        _ => Err(Error::bad_input(
            "detail.resource.accessKeyDetails.principalId",
            "missing, or carries no role id (AROA…): the role cannot be cross-checked, so it is not revoked",
        )),
    }
}

/// The instance: `instanceDetails` where given (warning if the session names another), else the
/// principal's session.
fn instance_of(finding: &Finding, session: Option<&str>, warnings: &mut Vec<String>) -> Result<Option<InstanceId>> {
    let session_instance = session.and_then(|s| InstanceId::parse(s).ok());
    let detail_instance = finding
        .resource
        .as_ref()
        .and_then(|r| r.instance_details.as_ref())
        .and_then(|d| d.instance_id.as_deref());
    Ok(match detail_instance {
        Some(id) => {
            let id =
                InstanceId::parse(id).map_err(|e| Error::bad_input("detail.resource.instanceDetails.instanceId", e))?;
            if let Some(s) = session_instance.as_ref().filter(|s| **s != id) {
                warnings.push(format!(
                    "instanceDetails names {id} but the principal's session is {s}; acting on {id}"
                ));
            }
            Some(id)
        }
        None => session_instance,
    })
}
