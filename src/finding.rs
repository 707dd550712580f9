//! The GuardDuty finding inside an EventBridge event: typed (and lenient where GuardDuty varies;
//! its shape is in `shape`), then triaged into something to act on, or a skip with its reason.
//! Whether it is what it says and where (its detector, its ARN, a sample) is in `identity`.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::names::{InstanceId, RoleName, is_access_key_id, is_role_id};
use crate::rules::Action;

pub mod asff;
mod identity;
mod ocsf;
mod sequence;
mod shape;
pub use identity::Locator;
use identity::{is_partition, is_sample, locator};
pub use shape::{AccessKeyDetails, Finding, InstanceDetails, Resource, Service};

pub const OUTSIDE_AWS: &str = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS";
pub const INSIDE_AWS: &str = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS";
/// The OutsideAWS type's name before September 2021.
pub const LEGACY: &str = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration";
pub const HANDLED_TYPES: [&str; 3] = [OUTSIDE_AWS, INSIDE_AWS, LEGACY];

/// What a report's `finding.source` says for a finding delivered by GuardDuty's own event.
pub const GUARDDUTY_SOURCE: &str = "guardduty";

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FindingSummary {
    /// `guardduty` for GuardDuty's EventBridge event, `securityhub` for Security Hub's, `manual` for
    /// a manual payload.
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// When EventBridge published the event: the start of time-to-containment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_time: Option<DateTime<Utc>>,
    pub id: Option<String>,
    /// GuardDuty's ARN for it, which is also its `Id` in Security Hub.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(rename = "type")]
    pub finding_type: Option<String>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub severity: Option<f64>,
    pub event_first_seen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_last_seen: Option<String>,
    /// The stolen key's id (not a secret): what to search CloudTrail for.
    pub access_key_id: Option<String>,
    /// The GuardDuty attack sequence that named this finding, when one did: the reports of its
    /// findings are grouped under it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attack_sequence: Option<String>,
}

impl FindingSummary {
    /// What an EventBridge event's envelope says, before its finding is read; `source` is what
    /// the report calls where it came from.
    pub fn of_event(source: &str, event: &EventBridgeEvent<Value>) -> Self {
        Self {
            source: source.to_owned(),
            event_id: event.id.clone(),
            event_time: event.time,
            account_id: event.account.clone(),
            region: event.region.clone(),
            ..Self::default()
        }
    }
}

/// Whom a remediation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// From a finding: the role whose credentials leaked, and the instance they came from.
    Finding {
        role: RoleName,
        role_id: Option<String>,
        instance: Option<InstanceId>,
    },
    /// Manual `{"instanceId"}`: the role is the one the instance's profile holds now.
    Instance(InstanceId),
    /// Manual `{"roleName"}`: revoke the role; no instance is named.
    Role(RoleName),
}

impl Subject {
    /// The role it names, if it names one.
    pub fn role(&self) -> Option<&RoleName> {
        match self {
            Self::Finding { role, .. } | Self::Role(role) => Some(role),
            Self::Instance(_) => None,
        }
    }

    /// The instance it names, if it names one.
    pub fn instance(&self) -> Option<&InstanceId> {
        match self {
            Self::Finding { instance, .. } => instance.as_ref(),
            Self::Instance(id) => Some(id),
            Self::Role(_) => None,
        }
    }
}

/// A request to act on, with everything the plan needs from the input.
#[derive(Debug, Clone)]
pub struct Incident {
    pub summary: FindingSummary,
    pub subject: Subject,
    /// When the stolen key was first seen in use; `None` for manual requests, which always revoke.
    pub first_seen: Option<DateTime<Utc>>,
    /// When the finding's latest activity was seen (`None` if it does not say, and for manual
    /// requests): with the key it names, whether it was stolen again after the cut-off.
    pub last_seen: Option<DateTime<Utc>>,
    pub action_override: Option<Action>,
    pub dry_run_requested: bool,
    pub request_reason: Option<String>,
    pub warnings: Vec<String>,
    /// The finding as delivered (for an event), kept to compare with GuardDuty's own copy.
    pub finding: Option<Box<Finding>>,
    /// Where GuardDuty keeps it, when the finding names its detector.
    pub locator: Option<Locator>,
}

impl Incident {
    /// The GuardDuty finding id, or `manual` for a manual request: what logs and marker tags name.
    pub fn finding_id(&self) -> &str {
        self.summary.id.as_deref().unwrap_or("manual")
    }
}

/// A request naming a GuardDuty finding, to be fetched and then handled like its event: a manual
/// payload, or a Security Hub finding in OCSF (which carries too little to act on by itself).
#[derive(Debug, Clone, PartialEq)]
pub struct FindingRequest {
    /// What the report's `finding.source` says: `manual`, or `securityhub`.
    pub source: String,
    /// The event that carried it, if one did (Security Hub's, or an attack sequence's).
    pub event_id: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
    /// The attack sequence that named it, if one did.
    pub attack_sequence: Option<String>,
    pub locator: Locator,
    /// The finding's account; the function's own if not given.
    pub account_id: Option<String>,
    /// The finding's region; the function's own if not given.
    pub region: Option<String>,
    pub dry_run_requested: bool,
    pub request_reason: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Triage {
    Act(Incident),
    Fetch(FindingRequest),
    Skip {
        summary: FindingSummary,
        reason: String,
    },
    /// A release or restore, after containment.
    Operate(crate::operation::Operation),
}

/// Deserialize `value` into `T`, naming the offending field (under `prefix`) on failure.
pub fn typed<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = match (prefix, path.as_str()) {
            (p, ".") => p.trim_end_matches('.').to_owned(),
            (p, path) => format!("{p}{path}"),
        };
        let field = if field.is_empty() { "payload".to_owned() } else { field };
        Error::bad_input(field, e.into_inner().to_string())
    })
}

/// Triage one EventBridge event: GuardDuty's carries one finding, Security Hub's one or more
/// (each triaged on its own).
pub fn triage_events(value: Value) -> Vec<Result<Triage>> {
    match typed::<EventBridgeEvent<Value>>(value, "") {
        Ok(event) if event.source == asff::SOURCE && event.detail_type == ocsf::IMPORTED => ocsf::triage_event(event),
        Ok(event) if event.source == asff::SOURCE => asff::triage_event(event),
        Ok(event) if sequence::is_attack_sequence(&event) => sequence::triage_event(event),
        Ok(event) => vec![triage_guardduty(event)],
        Err(e) => vec![Err(e)],
    }
}

/// A GuardDuty finding's ARN, `arn:<partition>:guardduty:<region>:<account>:detector/<d>/finding/<f>`,
/// in its parts; `None` for anything else.
pub(crate) struct FindingArn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub detector: &'a str,
    pub id: &'a str,
}

pub(crate) fn finding_arn(arn: &str) -> Option<FindingArn<'_>> {
    let ["arn", partition, "guardduty", region, account, resource] = arn.splitn(6, ':').collect::<Vec<_>>()[..] else {
        return None;
    };
    let ["detector", detector, "finding", id] = resource.split('/').collect::<Vec<_>>()[..] else {
        return None;
    };
    (is_partition(partition) && !region.is_empty() && !account.is_empty()).then_some(FindingArn {
        partition,
        region,
        account,
        detector,
        id,
    })
}

/// Triage one GuardDuty EventBridge event.
pub fn triage_event(value: Value) -> Result<Triage> {
    triage_guardduty(typed(value, "")?)
}

fn triage_guardduty(event: EventBridgeEvent<Value>) -> Result<Triage> {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(detail: Value) -> Value {
        json!({"version": "0", "id": "e1", "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
               "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "us-east-1", "resources": [], "detail": detail})
    }

    fn finding() -> Value {
        json!({"id": "f1", "type": OUTSIDE_AWS, "accountId": "123456789012", "region": "us-east-1", "severity": 8,
               "resource": {"resourceType": "AccessKey",
                 "accessKeyDetails": {"accessKeyId": "ASIAEXAMPLEKEY123456", "principalId": "AROAEXAMPLEROLEID1234:i-0123456789abcdef0",
                                      "userType": "AssumedRole", "userName": "WebAppRole"},
                 "instanceDetails": {"instanceId": "i-0123456789abcdef0", "iamInstanceProfile": null}},
               "service": {"eventFirstSeen": "2026-11-22T09:58:00Z", "archived": false, "count": 1,
                 "action": {"awsApiCallAction": {"remoteIpDetails": {"organization": {"asn": "-1"}}}}}})
    }

    fn act(detail: Value) -> Incident {
        match triage_event(event(detail)).unwrap() {
            Triage::Act(i) => i,
            other => panic!("not acted on: {other:?}"),
        }
    }

    fn skip_reason(detail: Value) -> String {
        match triage_event(event(detail)).unwrap() {
            Triage::Skip { reason, .. } => reason,
            other => panic!("not skipped: {other:?}"),
        }
    }

    fn bad_field(value: Value) -> String {
        match triage_event(value).unwrap_err() {
            Error::BadInput { field, .. } => field,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_finding_names_role_role_id_and_instance() {
        let incident = act(finding());
        assert_eq!(
            incident.subject,
            Subject::Finding {
                role: RoleName::parse("WebAppRole").unwrap(),
                role_id: Some("AROAEXAMPLEROLEID1234".into()),
                instance: Some(InstanceId::parse("i-0123456789abcdef0").unwrap()),
            }
        );
        assert_eq!(incident.first_seen.unwrap().to_rfc3339(), "2026-11-22T09:58:00+00:00");
        assert_eq!(incident.last_seen, None, "the finding does not say");
        assert_eq!(incident.summary.severity, Some(8.0));
        assert_eq!(incident.summary.access_key_id.as_deref(), Some("ASIAEXAMPLEKEY123456"));
        assert!(incident.warnings.is_empty(), "{:?}", incident.warnings);
    }

    #[test]
    fn guardduty_variations_are_tolerated() {
        let mut f = finding();
        f["severity"] = json!(5.0);
        f["service"]["eventFirstSeen"] = json!("2026-11-22T09:58:00.123Z");
        f["service"]["action"]["awsApiCallAction"]["remoteIpDetails"]["organization"]["asn"] = json!(-1);
        f["someFieldFromTheFuture"] = json!({"x": 1});
        f["resource"]["instanceDetails"] = json!(null);
        let incident = act(f);
        assert_eq!(incident.summary.severity, Some(5.0));
        assert_eq!(incident.first_seen.unwrap().timestamp_subsec_millis(), 123);
        let mut later = finding();
        later["service"]["eventLastSeen"] = json!("2026-11-22T10:02:07.881Z");
        let incident = act(later);
        assert_eq!(
            incident.last_seen.unwrap().to_rfc3339(),
            "2026-11-22T10:02:07.881+00:00"
        );
        assert_eq!(
            incident.summary.event_last_seen.as_deref(),
            Some("2026-11-22T10:02:07.881Z")
        );
        // No instanceDetails: the instance comes from the principal's session name.
        assert!(
            matches!(incident.subject, Subject::Finding { instance: Some(ref i), .. } if i.as_str() == "i-0123456789abcdef0")
        );
    }

    #[test]
    fn a_principal_that_is_not_an_instance_session_names_no_instance() {
        let mut f = finding();
        f["resource"].as_object_mut().unwrap().remove("instanceDetails");
        f["resource"]["accessKeyDetails"]["principalId"] = json!("AROAEXAMPLEROLEID1234:some-session");
        assert!(matches!(act(f).subject, Subject::Finding { instance: None, .. }));
    }

    #[test]
    fn disagreeing_instance_ids_prefer_instance_details_and_warn() {
        let mut f = finding();
        f["resource"]["accessKeyDetails"]["principalId"] = json!("AROAEXAMPLEROLEID1234:i-1234abcd");
        let incident = act(f);
        assert!(
            matches!(incident.subject, Subject::Finding { instance: Some(ref i), .. } if i.as_str() == "i-0123456789abcdef0")
        );
        assert!(incident.warnings[0].contains("i-1234abcd"));
    }

    #[test]
    fn all_three_type_names_are_handled() {
        for t in HANDLED_TYPES {
            let mut f = finding();
            f["type"] = json!(t);
            act(f);
        }
    }

    #[test]
    fn other_findings_are_skipped_with_their_reason() {
        let mut other = finding();
        other["type"] = json!("UnauthorizedAccess:IAMUser/ResourceCredentialExfiltration.OutsideAWS");
        assert!(skip_reason(other).contains("is not an EC2 instance-credential exfiltration finding"));

        let mut sample = finding();
        sample["service"]["additionalInfo"] = json!({"sample": true});
        assert!(skip_reason(sample).contains("sample"));
        let mut placeholder = finding();
        placeholder["resource"]["accessKeyDetails"]["userName"] = json!("GeneratedFindingUserName");
        assert!(skip_reason(placeholder).contains("sample"));

        let mut user = finding();
        user["resource"]["accessKeyDetails"]["userType"] = json!("IAMUser");
        assert!(skip_reason(user).contains("\"IAMUser\", not AssumedRole"));

        let mut sample_as_api = finding();
        sample_as_api["service"]["additionalInfo"] = json!({"value": "{\"sample\":true}", "type": "default"});
        assert!(skip_reason(sample_as_api).contains("sample"));

        let mut not_guardduty = event(finding());
        not_guardduty["source"] = json!("aws.ec2");
        assert!(matches!(triage_event(not_guardduty).unwrap(), Triage::Skip { .. }));
    }

    #[test]
    fn unsafe_or_missing_fields_are_errors_naming_the_field() {
        let mut bad_role = finding();
        bad_role["resource"]["accessKeyDetails"]["userName"] = json!("*");
        assert_eq!(bad_field(event(bad_role)), "detail.resource.accessKeyDetails.userName");

        let mut bad_instance = finding();
        bad_instance["resource"]["instanceDetails"]["instanceId"] = json!("i-../../x");
        assert_eq!(
            bad_field(event(bad_instance)),
            "detail.resource.instanceDetails.instanceId"
        );

        let mut no_seen = finding();
        no_seen["service"]["eventFirstSeen"] = json!("last tuesday");
        assert_eq!(bad_field(event(no_seen)), "detail.service.eventFirstSeen");

        let mut bad_last_seen = finding();
        bad_last_seen["service"]["eventLastSeen"] = json!("soon");
        assert_eq!(bad_field(event(bad_last_seen)), "detail.service.eventLastSeen");

        // The key is compared with, and written into, the role's record of revoked keys.
        for key in [
            "ASIA SHORT",
            "ASIAEXAMPLEKEY12345 ASIAOTHERKEY12345678",
            "ASIAEXAMPLEKEY1234\u{0}",
        ] {
            let mut bad_key = finding();
            bad_key["resource"]["accessKeyDetails"]["accessKeyId"] = json!(key);
            assert_eq!(
                bad_field(event(bad_key)),
                "detail.resource.accessKeyDetails.accessKeyId"
            );
        }

        let mut wrong_type = finding();
        wrong_type["severity"] = json!("high");
        assert_eq!(bad_field(event(wrong_type)), "detail.severity");

        let mut no_keys = finding();
        no_keys["resource"]["accessKeyDetails"] = json!(null);
        assert_eq!(bad_field(event(no_keys)), "detail.resource.accessKeyDetails");

        let no_detail_type = json!({"source": "aws.guardduty", "detail": finding()});
        assert_eq!(bad_field(no_detail_type), "payload");

        let mut bad_detector = finding();
        bad_detector["service"]["detectorId"] = json!("../../admin");
        assert_eq!(bad_field(event(bad_detector)), "detail.service.detectorId");

        let mut disagreeing = finding();
        disagreeing["service"]["detectorId"] = json!("det1");
        disagreeing["arn"] = json!("arn:aws:guardduty:us-east-1:123456789012:detector/det2/finding/f1");
        assert_eq!(bad_field(event(disagreeing)), "detail.service.detectorId");
    }

    #[test]
    fn the_locator_comes_from_the_service_or_the_arn() {
        let mut f = finding();
        f["service"]["detectorId"] = json!("det1");
        assert_eq!(act(f).locator.unwrap().detector_id.as_str(), "det1");

        let mut from_arn = finding();
        from_arn["arn"] = json!("arn:aws:guardduty:us-east-1:123456789012:detector/det2/finding/f1");
        let locator = act(from_arn).locator.unwrap();
        assert_eq!(
            (locator.detector_id.as_str(), locator.finding_id.as_str()),
            ("det2", "f1")
        );

        assert_eq!(act(finding()).locator, None);
    }

    #[test]
    fn a_finding_in_any_partition_is_read_and_names_its_partition() {
        // No region-prefix list: aws-iso-b and aws-eusc are partitions as valid as aws-cn.
        for (partition, region) in [
            ("aws-iso-b", "us-isob-east-1"),
            ("aws-eusc", "eusc-de-east-1"),
            ("aws", "us-east-1"),
        ] {
            let mut f = finding();
            f["region"] = json!(region);
            f["arn"] = json!(format!(
                "arn:{partition}:guardduty:{region}:123456789012:detector/det2/finding/f1"
            ));
            let incident = act(f);
            assert_eq!(incident.finding.unwrap().partition(), Some(partition));
        }
        for bad in ["", "azure", "aws-", "aws--x", "AWS"] {
            let mut f = finding();
            f["arn"] = json!(format!(
                "arn:{bad}:guardduty:us-east-1:123456789012:detector/det2/finding/f1"
            ));
            assert!(triage_event(event(f)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_named_instance_s_region_comes_from_its_zone() {
        let in_zone = |zone: &str| {
            let finding: Finding = serde_json::from_value(serde_json::json!({
                "id": "f", "type": OUTSIDE_AWS,
                "resource": {"instanceDetails": {"instanceId": "i-0123456789abcdef0", "availabilityZone": zone}}
            }))
            .unwrap();
            finding.instance_region()
        };
        assert_eq!(in_zone("us-east-1a").as_deref(), Some("us-east-1"));
        assert_eq!(in_zone("us-west-2-lax-1a").as_deref(), Some("us-west-2"));
        assert_eq!(in_zone("ap-southeast-5b").as_deref(), Some("ap-southeast-5"));
        assert_eq!(in_zone("us-gov-west-1a").as_deref(), Some("us-gov-west-1"));
        assert_eq!(in_zone("nonsense"), None);
    }
}
