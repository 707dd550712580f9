//! Whether a finding is what it says and where: the detector and id GuardDuty keeps it under, its
//! ARN naming the finding itself, and GuardDuty's sample findings told apart.

use serde_json::Value;

use super::shape::Finding;
use crate::error::{Error, Result};
use crate::names::GuardDutyId;

/// GuardDuty's sample findings fill the key fields with these placeholders.
const SAMPLE_PLACEHOLDER: &str = "GeneratedFinding";

/// Where GuardDuty keeps a finding: GetFindings and ArchiveFindings take these two, in the
/// finding's account and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locator {
    pub detector_id: GuardDutyId,
    pub finding_id: GuardDutyId,
}

/// The detector comes from `service.detectorId`, or failing that from the finding's ARN; where
/// both are given they must agree.
pub fn locator(finding: &Finding) -> Result<Option<Locator>> {
    if let Some(arn) = &finding.arn {
        check_arn(arn, finding)?;
    }
    let from_service = finding.service.as_ref().and_then(|s| s.detector_id.as_deref());
    let from_arn = finding
        .arn
        .as_deref()
        .and_then(|arn| arn.split_once(":detector/"))
        .and_then(|(_, rest)| rest.split('/').next());
    let detector = match (from_service, from_arn) {
        (Some(a), Some(b)) if a != b => {
            return Err(Error::bad_input(
                "detail.service.detectorId",
                format!("{a:?} disagrees with the detector {b:?} in detail.arn"),
            ));
        }
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) => return Ok(None),
    };
    let field = if from_service.is_some() {
        "detail.service.detectorId"
    } else {
        "detail.arn"
    };
    Ok(Some(Locator {
        detector_id: GuardDutyId::parse(detector).map_err(|e| Error::bad_input(field, e))?,
        finding_id: GuardDutyId::parse(&finding.id).map_err(|e| Error::bad_input("detail.id", e))?,
    }))
}

/// The finding's ARN must name the finding itself: its region, account and id. One that names
/// another is forged or corrupt, and is not acted on. Its partition must be one (`aws`, or
/// `aws-` and a name: `aws-cn`, `aws-us-gov`, `aws-iso-b`, `aws-eusc`, ...); that it is the
/// function's own is checked once that is known ([`Finding::partition`]).
fn check_arn(arn: &str, finding: &Finding) -> Result<()> {
    let bad = |why: String| Err(Error::bad_input("detail.arn", why));
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, partition, service, region, account, resource] = parts[..] else {
        return bad(format!("{arn:?} is not an ARN"));
    };
    let finding_resource = resource.rsplit_once("/finding/").map(|(_, id)| id);
    if parts[0] != "arn" || service != "guardduty" || !resource.starts_with("detector/") {
        return bad(format!("{arn:?} is not a GuardDuty finding's ARN"));
    }
    if !is_partition(partition)
        || Some(region) != finding.region.as_deref()
        || Some(account) != finding.account_id.as_deref()
        || finding_resource != Some(finding.id.as_str())
    {
        return bad(format!(
            "{arn:?} names another finding than {} in account {} and {}",
            finding.id,
            finding.account_id.as_deref().unwrap_or("(none)"),
            finding.region.as_deref().unwrap_or("(no region)")
        ));
    }
    Ok(())
}

pub fn is_partition(value: &str) -> bool {
    value == "aws"
        || value.strip_prefix("aws-").is_some_and(|rest| {
            !rest.is_empty()
                && !rest.starts_with('-')
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

pub fn is_sample(finding: &Finding) -> bool {
    let info = finding.service.as_ref().and_then(|s| s.additional_info.as_ref());
    let says_sample = |v: &Value| {
        matches!(v.get("sample"), Some(Value::Bool(true))) || v.get("sample").and_then(Value::as_str) == Some("true")
    };
    // GetFindings (and newer events) carry the flags as a JSON string in `value`.
    let flagged = info.is_some_and(|i| {
        says_sample(i)
            || i.get("value")
                .and_then(Value::as_str)
                .and_then(|v| serde_json::from_str::<Value>(v).ok())
                .is_some_and(|v| says_sample(&v))
    });
    let resource = finding.resource.as_ref();
    let keys = resource.and_then(|r| r.access_key_details.as_ref());
    let placeholders = [
        keys.and_then(|k| k.access_key_id.as_deref()),
        keys.and_then(|k| k.principal_id.as_deref()),
        keys.and_then(|k| k.user_name.as_deref()),
        resource
            .and_then(|r| r.instance_details.as_ref())
            .and_then(|d| d.instance_id.as_deref()),
    ];
    flagged
        || placeholders
            .into_iter()
            .flatten()
            .any(|v| v.starts_with(SAMPLE_PLACEHOLDER))
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
