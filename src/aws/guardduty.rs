//! GuardDuty effects: fetching a finding to verify it (or to act on a manual finding id), and
//! archiving it after a remediation.

use aws_sdk_guardduty::Client;
use aws_sdk_guardduty::types as gd;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::finding::{AccessKeyDetails, Finding, InstanceDetails, Resource, Service};
use crate::names::GuardDutyId;

/// What GuardDuty said about a finding.
#[derive(Debug, Clone)]
pub enum Fetched {
    Found(Box<Finding>),
    /// GuardDuty knows no such finding under that detector.
    Missing,
    /// GuardDuty refused the request as bad (for instance a detector that is not in this account
    /// and region): its message. Asking again would get the same answer.
    Rejected(String),
}

pub async fn get_finding(guardduty: &Client, detector: &GuardDutyId, id: &GuardDutyId) -> Result<Fetched> {
    let out = match guardduty
        .get_findings()
        .detector_id(detector.as_str())
        .finding_ids(id.as_str())
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_bad_request_exception()) => {
            let err = Error::aws("guardduty", "GetFindings", e);
            return Ok(Fetched::Rejected(err.to_string()));
        }
        // Throttling, a 5xx, AccessDenied, no network: retryable, never a pass.
        Err(e) => return Err(Error::aws("guardduty", "GetFindings", e)),
    };
    Ok(out
        .findings
        .unwrap_or_default()
        .into_iter()
        .find(|f| f.id.as_deref() == Some(id.as_str()))
        .map_or(Fetched::Missing, |f| Fetched::Found(Box::new(from_sdk(f)))))
}

/// This account's detector in the client's region, if GuardDuty is enabled there (one detector
/// per account and region). The administrator reads and archives its members' findings with it.
pub async fn own_detector(guardduty: &Client) -> Result<Option<GuardDutyId>> {
    let out = guardduty
        .list_detectors()
        .send()
        .await
        .map_err(|e| Error::aws("guardduty", "ListDetectors", e))?;
    match out.detector_ids.unwrap_or_default().into_iter().next() {
        Some(id) => GuardDutyId::parse(&id)
            .map(Some)
            .map_err(|why| Error::Unexpected(format!("ListDetectors answered detector {id:?}: {why}"))),
        None => Ok(None),
    }
}

/// Whether the detector is monitoring: a suspended GuardDuty keeps its detector, `DISABLED`, and
/// generates no findings.
/// <https://docs.aws.amazon.com/guardduty/latest/APIReference/API_GetDetector.html>
pub async fn detector_enabled(guardduty: &Client, detector: &GuardDutyId) -> Result<bool> {
    let out = guardduty
        .get_detector()
        .detector_id(detector.as_str())
        .send()
        .await
        .map_err(|e| Error::aws("guardduty", "GetDetector", e))?;
    Ok(out.status() == Some(&aws_sdk_guardduty::types::DetectorStatus::Enabled))
}

pub async fn archive(guardduty: &Client, detector: &GuardDutyId, id: &GuardDutyId) -> Result<()> {
    guardduty
        .archive_findings()
        .detector_id(detector.as_str())
        .finding_ids(id.as_str())
        .send()
        .await
        .map_err(|e| Error::aws("guardduty", "ArchiveFindings", e))?;
    Ok(())
}

/// GetFindings' finding in the shape EventBridge delivers, so that one triage serves both.
pub fn from_sdk(f: gd::Finding) -> Finding {
    let resource = f.resource.map(|r| Resource {
        resource_type: r.resource_type,
        access_key_details: r.access_key_details.map(|k| AccessKeyDetails {
            access_key_id: k.access_key_id,
            principal_id: k.principal_id,
            user_name: k.user_name,
            user_type: k.user_type,
        }),
        instance_details: r.instance_details.map(|d| InstanceDetails {
            instance_id: d.instance_id,
            availability_zone: d.availability_zone,
        }),
    });
    let service = f.service.map(|s| Service {
        detector_id: s.detector_id,
        event_first_seen: s.event_first_seen,
        event_last_seen: s.event_last_seen,
        archived: s.archived,
        additional_info: s
            .additional_info
            .map(|i| json!({ "value": i.value, "type": i.r#type }))
            .filter(|v| v != &json!({ "value": Value::Null, "type": Value::Null })),
    });
    Finding {
        id: f.id.unwrap_or_default(),
        arn: f.arn,
        finding_type: f.r#type.unwrap_or_default(),
        account_id: f.account_id,
        region: f.region,
        severity: f.severity,
        resource,
        service,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_guardduty::operation::archive_findings::{ArchiveFindingsError, ArchiveFindingsOutput};
    use aws_sdk_guardduty::operation::get_findings::{GetFindingsError, GetFindingsOutput};
    use aws_sdk_guardduty::types::error::{BadRequestException, InternalServerErrorException};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    fn id(s: &str) -> GuardDutyId {
        GuardDutyId::parse(s).unwrap()
    }

    fn sdk_finding(finding_id: &str) -> gd::Finding {
        gd::Finding::builder()
            .id(finding_id)
            .r#type("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS")
            .account_id("123456789012")
            .region("eu-west-1")
            .severity(8.0)
            .resource(
                gd::Resource::builder()
                    .access_key_details(
                        gd::AccessKeyDetails::builder()
                            .access_key_id("ASIAEXAMPLE")
                            .principal_id("AROAEXAMPLE:i-0123456789abcdef0")
                            .user_name("WebAppRole")
                            .user_type("AssumedRole")
                            .build(),
                    )
                    .instance_details(
                        gd::InstanceDetails::builder()
                            .instance_id("i-0123456789abcdef0")
                            .build(),
                    )
                    .build(),
            )
            .service(
                gd::Service::builder()
                    .detector_id("det1")
                    .archived(false)
                    .event_first_seen("2026-11-22T09:58:31Z")
                    .additional_info(
                        gd::ServiceAdditionalInfo::builder()
                            .value(r#"{"sample":true}"#)
                            .r#type("default")
                            .build(),
                    )
                    .build(),
            )
            .build()
    }

    #[tokio::test]
    async fn the_finding_is_fetched_by_detector_and_id_and_converted() {
        let get = mock!(Client::get_findings)
            .match_requests(|r| r.detector_id() == Some("det1") && r.finding_ids() == ["f1"])
            .then_output(|| GetFindingsOutput::builder().findings(sdk_finding("f1")).build());
        let client = mock_client!(aws_sdk_guardduty, RuleMode::Sequential, [&get]);
        let Fetched::Found(f) = get_finding(&client, &id("det1"), &id("f1")).await.unwrap() else {
            panic!("not found")
        };
        assert_eq!(f.id, "f1");
        assert_eq!(f.region.as_deref(), Some("eu-west-1"));
        let keys = f.resource.as_ref().unwrap().access_key_details.as_ref().unwrap();
        assert_eq!(keys.access_key_id.as_deref(), Some("ASIAEXAMPLE"));
        assert_eq!(keys.user_name.as_deref(), Some("WebAppRole"));
        let service = f.service.as_ref().unwrap();
        assert_eq!(service.detector_id.as_deref(), Some("det1"));
        assert_eq!(service.additional_info.as_ref().unwrap()["value"], r#"{"sample":true}"#);
    }

    #[tokio::test]
    async fn an_unknown_finding_is_missing_and_a_bad_request_is_a_rejection() {
        let empty = mock!(Client::get_findings).then_output(|| GetFindingsOutput::builder().build());
        let other = mock!(Client::get_findings)
            .then_output(|| GetFindingsOutput::builder().findings(sdk_finding("another")).build());
        let bad = mock!(Client::get_findings).then_error(|| {
            GetFindingsError::BadRequestException(
                BadRequestException::builder()
                    .message(
                        "The request is rejected because the input detectorId is not owned by the current account.",
                    )
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_guardduty, RuleMode::Sequential, [&empty, &other, &bad]);
        for _ in 0..2 {
            assert!(matches!(
                get_finding(&client, &id("det1"), &id("f1")).await.unwrap(),
                Fetched::Missing
            ));
        }
        let Fetched::Rejected(why) = get_finding(&client, &id("det1"), &id("f1")).await.unwrap() else {
            panic!("not rejected")
        };
        assert!(why.contains("not owned by the current account"), "{why}");
    }

    #[tokio::test]
    async fn guardduty_unavailable_is_a_retryable_error_not_a_pass() {
        let down = mock!(Client::get_findings).then_error(|| {
            GetFindingsError::InternalServerErrorException(
                InternalServerErrorException::builder()
                    .message("internal error")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_guardduty, RuleMode::Sequential, [&down]);
        let err = get_finding(&client, &id("det1"), &id("f1")).await.unwrap_err();
        assert!(err.kind().starts_with("Aws.guardduty.GetFindings"), "{}", err.kind());
    }

    #[tokio::test]
    async fn archive_names_the_detector_and_finding() {
        let ok = mock!(Client::archive_findings)
            .match_requests(|r| r.detector_id() == Some("det1") && r.finding_ids() == ["f1"])
            .then_output(|| ArchiveFindingsOutput::builder().build());
        let denied = mock!(Client::archive_findings).then_error(|| {
            ArchiveFindingsError::BadRequestException(BadRequestException::builder().message("no").build())
        });
        let client = mock_client!(aws_sdk_guardduty, RuleMode::Sequential, [&ok, &denied]);
        archive(&client, &id("det1"), &id("f1")).await.unwrap();
        assert_eq!(ok.num_calls(), 1);
        assert!(archive(&client, &id("det1"), &id("f1")).await.is_err());
    }
}
