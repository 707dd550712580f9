//! Security Hub's `Findings Imported V2` event: one finding in the Open Cybersecurity Schema
//! Framework (OCSF), <https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-v2-cwe-event-formats.html>.
//! A GuardDuty finding there (`metadata.product.name` GuardDuty, `finding_info.uid` its ARN,
//! `finding_info.types` its type) names the access key. The principal id that carries the role id
//! and the instance's session, which the rules need to tell the role and the instance apart, can
//! be carried too, in a resource's `data`, but that is free-form: OCSF does not fix its shape. So
//! it is never acted on as carried: it locates GuardDuty's copy, which is fetched and handled as a
//! manual finding id would be, whatever `VERIFY_FINDINGS` says.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::Value;

use super::identity::{FindingArn, Locator, finding_arn};
use super::model::{FindingRequest, FindingSummary, HANDLED_TYPES, OcsfIdentifier, Triage, typed};
use crate::error::{Error, Result};
use crate::names::{GuardDutyId, is_account_id};

pub const IMPORTED: &str = "Findings Imported V2";

#[derive(Debug, Deserialize)]
struct OcsfDetail {
    findings: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct Ocsf {
    metadata: Metadata,
    finding_info: FindingInfo,
    cloud: Option<Cloud>,
    /// OCSF's finding status: `New`, `In Progress`, `Suppressed`, `Resolved`, ...
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    product: Product,
}

#[derive(Debug, Deserialize)]
struct Product {
    name: Option<String>,
    uid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct FindingInfo {
    uid: String,
    #[serde(default)]
    types: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Cloud {
    account: Option<Account>,
    region: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Account {
    uid: Option<String>,
}

pub fn triage_event(event: EventBridgeEvent<Value>) -> Vec<Result<Triage>> {
    let summary = FindingSummary::of_event(super::asff::REPORTED_SOURCE, &event);
    let detail: OcsfDetail = match typed(event.detail, "detail.") {
        Ok(detail) => detail,
        Err(e) => return vec![Err(e)],
    };
    if detail.findings.is_empty() {
        return vec![Err(Error::bad_input("detail.findings", "empty: no finding to act on"))];
    }
    (detail.findings.into_iter().enumerate())
        .map(|(i, value)| {
            let prefix = format!("detail.findings[{i}].");
            let ocsf: Ocsf = typed(value, &prefix)?;
            triage_one(ocsf, summary.clone(), &prefix)
        })
        .collect()
}

fn triage_one(ocsf: Ocsf, mut summary: FindingSummary, prefix: &str) -> Result<Triage> {
    summary.id = Some(ocsf.finding_info.uid.clone());
    let skip = |summary, reason| Ok(Triage::Skip { summary, reason });
    let product = &ocsf.metadata.product;
    let by_guardduty = product.name.as_deref() == Some("GuardDuty")
        && product.uid.as_deref().is_none_or(|uid| uid.ends_with("/aws/guardduty"));
    if !by_guardduty {
        let name = product
            .name
            .as_deref()
            .or(product.uid.as_deref())
            .unwrap_or("an unnamed product");
        return skip(
            summary,
            format!("a finding of {name} in Security Hub, not of GuardDuty"),
        );
    }
    let Some(finding_type) = ocsf
        .finding_info
        .types
        .iter()
        .find(|t| HANDLED_TYPES.contains(&t.as_str()))
    else {
        let types = ocsf.finding_info.types.join(", ");
        summary.finding_type = ocsf.finding_info.types.first().cloned();
        return skip(
            summary,
            format!("finding types [{types}] name no EC2 instance-credential exfiltration finding"),
        );
    };
    summary.finding_type = Some(finding_type.clone());
    // As for ASFF: Security Hub announces every change, a workflow update of ours included.
    if let Some(status) = ocsf.status.as_deref().filter(|s| !s.eq_ignore_ascii_case("new")) {
        let reason = format!("its Security Hub status is {status}, not New: someone is on it, or decided not to act");
        return skip(summary, reason);
    }
    let (locator, account, region) = locate(&ocsf, prefix)?;
    // Security Hub sets the product's uid on every finding; GuardDuty's, where one does not say.
    let product_uid = product.uid.clone().unwrap_or_else(|| {
        let partition = finding_arn(&ocsf.finding_info.uid).map_or("aws", |a| a.partition);
        format!("arn:{partition}:securityhub:{region}::productv2/aws/guardduty")
    });
    let ocsf = Some(OcsfIdentifier {
        cloud_account_uid: account.clone(),
        finding_info_uid: ocsf.finding_info.uid.clone(),
        metadata_product_uid: product_uid,
    });
    Ok(Triage::Fetch(FindingRequest {
        source: summary.source,
        event_id: summary.event_id,
        event_time: summary.event_time,
        attack_sequence: None,
        locator,
        account_id: Some(account),
        region: Some(region),
        dry_run_requested: false,
        request_reason: None,
        ocsf,
    }))
}

/// Where GuardDuty keeps the finding `finding_info.uid` names: in the account and region the
/// finding itself says it is in, if it says.
fn locate(ocsf: &Ocsf, prefix: &str) -> Result<(Locator, String, String)> {
    let field = format!("{prefix}finding_info.uid");
    let uid = &ocsf.finding_info.uid;
    let Some(FindingArn {
        region,
        account,
        detector,
        id,
        ..
    }) = finding_arn(uid)
    else {
        return Err(Error::bad_input(
            field,
            format!("{uid:?} is not a GuardDuty finding's ARN"),
        ));
    };
    let cloud = ocsf.cloud.as_ref();
    let named_account = cloud.and_then(|c| c.account.as_ref()).and_then(|a| a.uid.as_deref());
    let named_region = cloud.and_then(|c| c.region.as_deref());
    if !is_account_id(account)
        || named_account.is_some_and(|a| a != account)
        || named_region.is_some_and(|r| r != region)
    {
        let why = format!(
            "{uid:?} names another account or region than cloud.account.uid {} and cloud.region {}",
            named_account.unwrap_or("(none)"),
            named_region.unwrap_or("(none)")
        );
        return Err(Error::bad_input(field, why));
    }
    let id_of = |v: &str| GuardDutyId::parse(v).map_err(|e| Error::bad_input(&field, e));
    let locator = Locator {
        detector_id: id_of(detector)?,
        finding_id: id_of(id)?,
    };
    Ok((locator, account.to_owned(), region.to_owned()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn finding() -> Value {
        let event: Value = serde_json::from_str(include_str!("../../events/securityhub-ocsf.json")).unwrap();
        event["detail"]["findings"][0].clone()
    }

    fn triage(findings: Vec<Value>) -> Vec<Result<Triage>> {
        let mut event: Value = serde_json::from_str(include_str!("../../events/securityhub-ocsf.json")).unwrap();
        event["detail"]["findings"] = findings.into();
        triage_event(serde_json::from_value(event).unwrap())
    }

    fn one(finding: Value) -> Result<Triage> {
        triage(vec![finding]).pop().unwrap()
    }

    #[test]
    fn a_guardduty_finding_in_ocsf_is_a_request_for_guardduty_s_copy() {
        let Ok(Triage::Fetch(request)) = one(finding()) else {
            panic!()
        };
        assert_eq!(request.source, "securityhub");
        assert_eq!(request.locator.detector_id.as_str(), "12abc34d567e8fa901bc2d34e56789f0");
        assert_eq!(request.locator.finding_id.as_str(), "7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b");
        assert_eq!(request.account_id.as_deref(), Some("123456789012"));
        assert_eq!(request.region.as_deref(), Some("us-east-1"));
        assert!(request.event_time.is_some());
    }

    #[test]
    fn other_products_types_and_statuses_are_skipped_with_the_reason() {
        let reason = |f: Value| match one(f).unwrap() {
            Triage::Skip { reason, .. } => reason,
            other => panic!("{other:?}"),
        };
        let mut inspector = finding();
        inspector["metadata"]["product"] =
            json!({"name": "Inspector", "uid": "arn:aws:securityhub:us-east-1::productv2/aws/inspector"});
        assert!(reason(inspector).contains("a finding of Inspector"));
        let mut lookalike = finding();
        lookalike["metadata"]["product"]["uid"] =
            "arn:aws:securityhub:us-east-1:999999999999:productv2/999999999999/default".into();
        assert!(reason(lookalike).contains("not of GuardDuty"));
        let mut probe = finding();
        probe["finding_info"]["types"] = json!(["Recon:EC2/PortProbeUnprotectedPort"]);
        assert!(reason(probe).contains("name no EC2 instance-credential exfiltration finding"));
        let mut resolved = finding();
        resolved["status"] = "Resolved".into();
        assert!(reason(resolved).contains("status is Resolved"));
    }

    #[test]
    fn an_arn_that_names_another_place_or_no_finding_is_refused() {
        let field = |f: Value| match one(f) {
            Err(Error::BadInput { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let mut elsewhere = finding();
        elsewhere["cloud"]["account"]["uid"] = "210987654321".into();
        assert_eq!(field(elsewhere), "detail.findings[0].finding_info.uid");
        let mut region = finding();
        region["cloud"]["region"] = "eu-west-1".into();
        assert_eq!(field(region), "detail.findings[0].finding_info.uid");
        let mut not_an_arn = finding();
        not_an_arn["finding_info"]["uid"] = "7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b".into();
        assert_eq!(field(not_an_arn), "detail.findings[0].finding_info.uid");
        let mut bad_id = finding();
        bad_id["finding_info"]["uid"] =
            "arn:aws:guardduty:us-east-1:123456789012:detector/12abc34d567e8fa901bc2d34e56789f0/finding/../x".into();
        assert_eq!(field(bad_id), "detail.findings[0].finding_info.uid");
        let mut untyped = finding();
        untyped["finding_info"]["types"] = "UnauthorizedAccess".into();
        assert_eq!(field(untyped), "detail.findings[0].finding_info.types");
        assert!(matches!(&triage(vec![])[..], [Err(Error::BadInput { field, .. })] if field == "detail.findings"));
    }
}
