//! The GuardDuty finding inside an EventBridge event: typed (and lenient where GuardDuty varies;
//! its shape is in `shape`), then triaged into something to act on, or a skip with its reason
//! (`model`). GuardDuty's own event is triaged in `guardduty`; Security Hub's shapes and the attack
//! sequences are mapped onto it in `asff`, `ocsf` and `sequence`. Whether it is what it says and
//! where (its detector, its ARN, a sample) is in `identity`.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::Value;

use crate::error::Result;

pub mod asff;
mod guardduty;
mod identity;
mod model;
mod ocsf;
mod sequence;
mod shape;
pub use guardduty::{triage_event, triage_finding};
pub use identity::Locator;
pub(crate) use identity::{FindingArn, finding_arn};
pub use model::*;
pub use shape::{AccessKeyDetails, Finding, InstanceDetails, Resource, Service};

/// Triage one EventBridge event: GuardDuty's carries one finding, Security Hub's one or more
/// (each triaged on its own).
pub fn triage_events(value: Value) -> Vec<Result<Triage>> {
    match typed::<EventBridgeEvent<Value>>(value, "") {
        Ok(event) if event.source == asff::SOURCE && event.detail_type == ocsf::IMPORTED => ocsf::triage_event(event),
        Ok(event) if event.source == asff::SOURCE => asff::triage_event(event),
        Ok(event) if sequence::is_attack_sequence(&event) => sequence::triage_event(event),
        Ok(event) => vec![guardduty::triage_guardduty(event)],
        Err(e) => vec![Err(e)],
    }
}

#[cfg(test)]
mod tests {
    use crate::error::Error;
    use crate::names::{InstanceId, RoleName};
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
