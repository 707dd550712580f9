//! Security Hub's events: `Security Hub Findings - Imported` (every finding Security Hub takes in
//! or updates) and `Security Hub Findings - Custom Action` (findings an analyst selected in the
//! console), each carrying `detail.findings[]` in the AWS Security Finding Format (ASFF). A
//! GuardDuty finding there is mapped onto GuardDuty's own shape and triaged as its GuardDuty event
//! would be; with verification on, GuardDuty's copy is then fetched and acted on (see
//! `respond::establish`). Findings of other products are skipped with the reason.
//! Field map: <https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-findings-format-syntax.html>,
//! events: <https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-cwe-event-formats.html>.

use std::collections::HashMap;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::{Value, json};

use super::guardduty::triage_finding;
use super::identity::{FindingArn, finding_arn};
use super::model::{FindingSummary, HANDLED_TYPES, Triage, typed};
use super::shape::{AccessKeyDetails, Finding, InstanceDetails, Resource, Service};
use crate::error::{Error, Result};

pub const SOURCE: &str = "aws.securityhub";
pub const IMPORTED: &str = "Security Hub Findings - Imported";
pub const CUSTOM_ACTION: &str = "Security Hub Findings - Custom Action";
/// What a report's `finding.source` says for a finding delivered by Security Hub.
pub const REPORTED_SOURCE: &str = "securityhub";

#[derive(Debug, Deserialize)]
struct AsffDetail {
    /// Custom actions name themselves; imported findings do not.
    #[serde(rename = "actionName")]
    action_name: Option<String>,
    findings: Vec<Value>,
}

/// An ASFF finding: only what we map or check. Security Hub's `ProductFields` are strings.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Asff {
    id: String,
    product_arn: String,
    product_name: Option<String>,
    aws_account_id: String,
    region: Option<String>,
    #[serde(default)]
    types: Vec<String>,
    first_observed_at: Option<String>,
    last_observed_at: Option<String>,
    severity: Option<Severity>,
    #[serde(default)]
    product_fields: HashMap<String, String>,
    #[serde(default)]
    resources: Vec<AsffResource>,
    workflow: Option<Workflow>,
    record_state: Option<String>,
    sample: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Severity {
    /// The product's own severity: GuardDuty's 1 to 8.9.
    product: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Workflow {
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AsffResource {
    #[serde(rename = "Type")]
    kind: String,
    id: String,
    details: Option<ResourceDetails>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResourceDetails {
    aws_iam_access_key: Option<AwsIamAccessKey>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AwsIamAccessKey {
    access_key_id: Option<String>,
    principal_id: Option<String>,
    principal_name: Option<String>,
    principal_type: Option<String>,
}

/// One entry per finding the event carries, each triaged or a bad-input error of its own.
pub fn triage_event(event: EventBridgeEvent<Value>) -> Vec<Result<Triage>> {
    let summary = FindingSummary::of_event(REPORTED_SOURCE, &event);
    let custom_action = match event.detail_type.as_str() {
        IMPORTED => false,
        CUSTOM_ACTION => true,
        other => {
            let reason = format!("a Security Hub event of type {other:?}, which carries no finding to contain");
            return vec![Ok(Triage::Skip { summary, reason })];
        }
    };
    let detail: AsffDetail = match typed(event.detail, "detail.") {
        Ok(detail) => detail,
        Err(e) => return vec![Err(e)],
    };
    if detail.findings.is_empty() {
        return vec![Err(Error::bad_input("detail.findings", "empty: no finding to act on"))];
    }
    if custom_action && detail.action_name.is_none() {
        return vec![Err(Error::bad_input(
            "detail.actionName",
            "missing from a custom action",
        ))];
    }
    (detail.findings.into_iter().enumerate())
        .map(|(i, value)| {
            let prefix = format!("detail.findings[{i}].");
            let asff: Asff = typed(value, &prefix)?;
            triage_one(asff, summary.clone(), custom_action, &prefix)
        })
        .collect()
}

fn triage_one(asff: Asff, mut summary: FindingSummary, custom_action: bool, prefix: &str) -> Result<Triage> {
    summary.id = Some(asff.id.clone());
    summary.account_id = Some(asff.aws_account_id.clone());
    summary.region = asff.region.clone().or(summary.region);
    let skip = |summary, reason| Ok(Triage::Skip { summary, reason });
    if !is_guardduty(&asff) {
        let product = asff.product_name.as_deref().unwrap_or(&asff.product_arn);
        return skip(
            summary,
            format!("a finding of {product} in Security Hub, not of GuardDuty"),
        );
    }
    // Security Hub announces every change to a finding, ours included (a workflow update): only a
    // new one is news. A custom action is an analyst's choice, whatever its status.
    let status = asff.workflow.as_ref().and_then(|w| w.status.as_deref());
    if let Some(status) = status.filter(|s| !custom_action && *s != "NEW") {
        let reason = format!(
            "its Security Hub workflow status is {status}, not NEW: someone is on it, or decided not to act \
             (choose the custom action to act regardless)"
        );
        return skip(summary, reason);
    }
    let finding = to_guardduty(asff, prefix)?;
    triage_finding(finding, summary).map_err(|e| in_asff(e, prefix))
}

fn is_guardduty(asff: &Asff) -> bool {
    asff.product_arn.ends_with(":product/aws/guardduty")
        && asff.product_name.as_deref().is_none_or(|name| name == "GuardDuty")
}

/// The GuardDuty finding an ASFF finding carries, in GuardDuty's shape.
fn to_guardduty(asff: Asff, prefix: &str) -> Result<Finding> {
    let bad = |field: &str, why: String| Error::bad_input(format!("{prefix}{field}"), why);
    // `Id` is GuardDuty's finding ARN: arn:<partition>:guardduty:<region>:<account>:detector/<d>/finding/<f>.
    let Some(FindingArn {
        region,
        account,
        detector,
        id,
        ..
    }) = finding_arn(&asff.id)
    else {
        return Err(bad("Id", format!("{:?} is not a GuardDuty finding's ARN", asff.id)));
    };
    if account != asff.aws_account_id || asff.region.as_deref().is_some_and(|r| r != region) {
        return Err(bad(
            "Id",
            format!(
                "{:?} names another account or region than AwsAccountId {} and Region {}",
                asff.id,
                asff.aws_account_id,
                asff.region.as_deref().unwrap_or("(none)")
            ),
        ));
    }
    let field = |name: &str| {
        asff.product_fields
            .get(&format!("aws/guardduty/service/{name}"))
            .cloned()
    };
    if let Some(named) = field("detectorId").filter(|d| d != detector) {
        return Err(bad(
            "ProductFields",
            format!("aws/guardduty/service/detectorId {named:?} disagrees with the detector {detector:?} in Id"),
        ));
    }
    let archived = field("archived").as_deref() == Some("true") || asff.record_state.as_deref() == Some("ARCHIVED");
    let finding_type =
        guardduty_type(&asff.types).ok_or_else(|| bad("Types", "names no GuardDuty finding type".into()))?;
    Ok(Finding {
        id: id.to_owned(),
        arn: Some(asff.id.clone()),
        finding_type,
        account_id: Some(account.to_owned()),
        region: Some(region.to_owned()),
        severity: asff.severity.and_then(|s| s.product),
        resource: Some(resource(&asff.resources, prefix)?),
        service: Some(Service {
            detector_id: Some(detector.to_owned()),
            event_first_seen: field("eventFirstSeen").or(asff.first_observed_at),
            event_last_seen: field("eventLastSeen").or(asff.last_observed_at),
            archived: Some(archived),
            additional_info: asff.sample.map(|sample| json!({ "sample": sample })),
        }),
    })
}

/// GuardDuty's type from ASFF's `Types`, where its `/` became `-` under a namespace:
/// `TTPs/Initial Access/UnauthorizedAccess:IAMUser-InstanceCredentialExfiltration.OutsideAWS`.
fn guardduty_type(types: &[String]) -> Option<String> {
    let from = |t: &String| {
        let last = t.rsplit('/').next()?;
        let (purpose, rest) = last.split_once(':')?;
        let (affected, family) = rest.split_once('-')?;
        Some(format!("{purpose}:{affected}/{family}"))
    };
    let mapped: Vec<String> = types.iter().filter_map(from).collect();
    (mapped.iter().find(|t| HANDLED_TYPES.contains(&t.as_str())))
        .or(mapped.first())
        .cloned()
}

/// The access key and the instance the finding names, from its `Resources`. Two of either is
/// ambiguous, and not guessed between.
fn resource(resources: &[AsffResource], prefix: &str) -> Result<Resource> {
    let of = |kind: &str| resources.iter().filter(|r| r.kind == kind).collect::<Vec<_>>();
    let (keys, instances) = (of("AwsIamAccessKey"), of("AwsEc2Instance"));
    if keys.len() > 1 || instances.len() > 1 {
        return Err(Error::bad_input(
            format!("{prefix}Resources"),
            "names more than one access key or instance: which one leaked is not guessed",
        ));
    }
    let key = keys.first().ok_or_else(|| {
        Error::bad_input(
            format!("{prefix}Resources"),
            "no AwsIamAccessKey resource: it names the role whose credentials leaked",
        )
    })?;
    let details = key.details.as_ref().and_then(|d| d.aws_iam_access_key.as_ref());
    let key_id = key.id.strip_prefix("AWS::IAM::AccessKey:").map(str::to_owned);
    let access_key_details = AccessKeyDetails {
        access_key_id: details.and_then(|d| d.access_key_id.clone()).or(key_id),
        principal_id: details.and_then(|d| d.principal_id.clone()),
        user_name: details.and_then(|d| d.principal_name.clone()),
        user_type: details.and_then(|d| d.principal_type.clone()),
    };
    let instance_id = |r: &&AsffResource| {
        r.id.rsplit_once(":instance/")
            .map_or(r.id.clone(), |(_, id)| id.to_owned())
    };
    Ok(Resource {
        resource_type: Some("AccessKey".into()),
        access_key_details: Some(access_key_details),
        instance_details: instances.first().map(|r| InstanceDetails {
            instance_id: Some(instance_id(r)),
            availability_zone: None,
        }),
    })
}

/// GuardDuty's field names in an error, for a finding that came as ASFF: where to look in the event.
fn in_asff(err: Error, prefix: &str) -> Error {
    match err {
        Error::BadInput { field, message } => {
            let asff = match field.as_str() {
                "detail.resource.accessKeyDetails.accessKeyId" => "Resources[AwsIamAccessKey].Id",
                "detail.resource.accessKeyDetails.userName" => {
                    "Resources[AwsIamAccessKey].Details.AwsIamAccessKey.PrincipalName"
                }
                "detail.resource.accessKeyDetails.principalId" => {
                    "Resources[AwsIamAccessKey].Details.AwsIamAccessKey.PrincipalId"
                }
                "detail.resource.instanceDetails.instanceId" => "Resources[AwsEc2Instance].Id",
                "detail.service.eventFirstSeen" => "ProductFields.aws/guardduty/service/eventFirstSeen",
                "detail.service.eventLastSeen" => "ProductFields.aws/guardduty/service/eventLastSeen",
                "detail.id" | "detail.arn" => "Id",
                _ => return Error::BadInput { field, message },
            };
            Error::BadInput {
                field: format!("{prefix}{asff}"),
                message,
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::finding::Subject;

    fn event(detail_type: &str, findings: Vec<Value>) -> Value {
        let mut event: Value = serde_json::from_str(include_str!("../../events/securityhub-imported.json")).unwrap();
        event["detail-type"] = detail_type.into();
        event["detail"] = json!({ "findings": findings });
        if detail_type == CUSTOM_ACTION {
            event["detail"]["actionName"] = "ContainCredentials".into();
        }
        event
    }

    fn guardduty() -> Value {
        let event: Value = serde_json::from_str(include_str!("../../events/securityhub-imported.json")).unwrap();
        event["detail"]["findings"][0].clone()
    }

    fn triage(detail_type: &str, findings: Vec<Value>) -> Vec<Result<Triage>> {
        let event: EventBridgeEvent<Value> = serde_json::from_value(event(detail_type, findings)).unwrap();
        triage_event(event)
    }

    fn one(finding: Value) -> Result<Triage> {
        triage(IMPORTED, vec![finding]).pop().unwrap()
    }

    fn skip_reason(finding: Value) -> String {
        match one(finding).unwrap() {
            Triage::Skip { reason, .. } => reason,
            other => panic!("{other:?}"),
        }
    }

    fn bad_field(finding: Value) -> String {
        match one(finding) {
            Err(Error::BadInput { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_guardduty_finding_in_asff_is_its_guardduty_finding() {
        let Ok(Triage::Act(incident)) = one(guardduty()) else {
            panic!()
        };
        assert_eq!(
            incident.subject,
            Subject::Finding {
                role: crate::names::RoleName::parse("WebAppRole").unwrap(),
                role_id: Some("AROAEXAMPLEWEBAPPROLE".into()),
                instance: Some(crate::names::InstanceId::parse("i-0a1b2c3d4e5f60718").unwrap()),
            }
        );
        assert_eq!(incident.summary.source, REPORTED_SOURCE);
        assert_eq!(
            incident.summary.finding_type.as_deref(),
            Some(crate::finding::OUTSIDE_AWS)
        );
        assert_eq!(incident.summary.access_key_id.as_deref(), Some("ASIAQX3EXAMPLEKEY7N2"));
        assert_eq!(incident.summary.severity, Some(8.0));
        let locator = incident.locator.unwrap();
        assert_eq!(locator.detector_id.as_str(), "12abc34d567e8fa901bc2d34e56789f0");
        assert_eq!(locator.finding_id.as_str(), "7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b");
        assert!(incident.first_seen.is_some() && incident.last_seen.is_some());
    }

    #[test]
    fn without_an_instance_resource_the_session_names_the_instance() {
        let mut f = guardduty();
        f["Resources"]
            .as_array_mut()
            .unwrap()
            .retain(|r| r["Type"] == "AwsIamAccessKey");
        let Ok(Triage::Act(incident)) = one(f) else { panic!() };
        assert_eq!(
            incident.subject.instance().map(|i| i.as_str()),
            Some("i-0a1b2c3d4e5f60718")
        );
        let finding = incident.finding.unwrap();
        assert!(finding.resource.unwrap().instance_details.is_none(), "not invented");
    }

    #[test]
    fn each_finding_of_a_custom_action_is_its_own_item() {
        let mut inspector = guardduty();
        inspector["ProductArn"] = "arn:aws:securityhub:us-east-1::product/aws/inspector".into();
        inspector["ProductName"] = "Inspector".into();
        let mut broken = guardduty();
        broken["Resources"] = json!([]);
        let items = triage(CUSTOM_ACTION, vec![guardduty(), inspector, broken]);
        assert!(matches!(items[0], Ok(Triage::Act(_))));
        assert!(matches!(&items[1], Ok(Triage::Skip { reason, .. }) if reason.contains("a finding of Inspector")));
        assert!(matches!(&items[2], Err(Error::BadInput { field, .. }) if field == "detail.findings[2].Resources"));
    }

    #[test]
    fn only_a_new_finding_is_news_unless_an_analyst_chose_it() {
        for status in ["NOTIFIED", "RESOLVED", "SUPPRESSED"] {
            let mut f = guardduty();
            f["Workflow"]["Status"] = status.into();
            assert!(
                skip_reason(f.clone()).contains(&format!("workflow status is {status}")),
                "{status}"
            );
            let chosen = triage(CUSTOM_ACTION, vec![f]).pop().unwrap();
            assert!(matches!(chosen, Ok(Triage::Act(_))), "{status}: {chosen:?}");
        }
    }

    #[test]
    fn other_products_types_samples_and_events_are_skipped_with_the_reason() {
        let mut other = guardduty();
        other["ProductArn"] = "arn:aws:securityhub:us-east-1:999999999999:product/999999999999/default".into();
        other["ProductName"] = "GuardDuty".into();
        assert!(skip_reason(other).contains("not of GuardDuty"));
        let mut probe = guardduty();
        probe["Types"] = json!(["TTPs/Discovery/Recon:EC2-PortProbeUnprotectedPort"]);
        assert!(skip_reason(probe).contains("Recon:EC2/PortProbeUnprotectedPort is not"));
        let mut sample = guardduty();
        sample["Sample"] = true.into();
        assert!(skip_reason(sample).contains("sample finding"));
        let event: EventBridgeEvent<Value> = serde_json::from_value(json!({
            "version": "0", "id": "x", "detail-type": "Security Hub Insight Results", "source": SOURCE,
            "account": "123456789012", "time": "2026-11-22T10:04:02Z", "region": "us-east-1",
            "resources": [], "detail": {}
        }))
        .unwrap();
        assert!(matches!(&triage_event(event)[..], [Ok(Triage::Skip { .. })]));
    }

    #[test]
    fn an_archived_record_is_an_archived_finding() {
        let mut f = guardduty();
        f["RecordState"] = "ARCHIVED".into();
        let Ok(Triage::Act(incident)) = one(f) else { panic!() };
        assert!(incident.warnings.iter().any(|w| w.contains("archived")));
    }

    #[test]
    fn inconsistent_or_unsafe_fields_are_errors_naming_the_field() {
        type Mutation = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "detail.findings[0].Id",
                Box::new(|f| f["Id"] = "arn:aws:inspector2:us-east-1:123456789012:finding/x".into()),
            ),
            (
                "detail.findings[0].Id",
                Box::new(|f| f["AwsAccountId"] = "210987654321".into()),
            ),
            ("detail.findings[0].Id", Box::new(|f| f["Region"] = "eu-west-1".into())),
            (
                "detail.findings[0].ProductFields",
                Box::new(|f| f["ProductFields"]["aws/guardduty/service/detectorId"] = "other".into()),
            ),
            ("detail.findings[0].Types", Box::new(|f| f["Types"] = json!([]))),
            (
                "detail.findings[0].Resources",
                Box::new(|f| {
                    let key = f["Resources"][0].clone();
                    f["Resources"].as_array_mut().unwrap().push(key);
                }),
            ),
            (
                "detail.findings[0].Resources[AwsIamAccessKey].Details.AwsIamAccessKey.PrincipalId",
                Box::new(|f| f["Resources"][0]["Details"]["AwsIamAccessKey"]["PrincipalId"] = "AIDAUSER".into()),
            ),
            (
                "detail.findings[0].Resources[AwsIamAccessKey].Id",
                Box::new(|f| f["Resources"][0]["Id"] = "AWS::IAM::AccessKey:not a key".into()),
            ),
            (
                "detail.findings[0].Resources[AwsEc2Instance].Id",
                Box::new(|f| f["Resources"][1]["Id"] = "i-nope".into()),
            ),
            (
                "detail.findings[0].ProductFields.aws/guardduty/service/eventFirstSeen",
                Box::new(|f| f["ProductFields"]["aws/guardduty/service/eventFirstSeen"] = "yesterday".into()),
            ),
            (
                "detail.findings[0].ProductFields.aws/guardduty/service/archived",
                Box::new(|f| f["ProductFields"]["aws/guardduty/service/archived"] = false.into()),
            ),
            (
                "detail.findings[0].AwsAccountId",
                Box::new(|f| f["AwsAccountId"] = 123456789012_u64.into()),
            ),
        ];
        for (field, mutate) in cases {
            let mut f = guardduty();
            mutate(&mut f);
            assert_eq!(bad_field(f), field);
        }
        let empty = triage(IMPORTED, vec![]);
        assert!(matches!(&empty[..], [Err(Error::BadInput { field, .. })] if field == "detail.findings"));
    }
}
