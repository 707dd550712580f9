//! The finding as GuardDuty shapes it: GetFindings' camelCase, which an event's `detail` shares.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A finding in GetFindings' camelCase shape. Only what we use is modelled; the rest is ignored,
/// which is also what makes int-or-float, string-or-number and null variations harmless.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub id: String,
    /// `arn:aws:guardduty:<region>:<account>:detector/<detector>/finding/<id>`.
    pub arn: Option<String>,
    #[serde(rename = "type")]
    pub finding_type: String,
    pub account_id: Option<String>,
    pub region: Option<String>,
    /// GuardDuty sends `8` or `8.0`; both land here.
    pub severity: Option<f64>,
    pub resource: Option<Resource>,
    pub service: Option<Service>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub resource_type: Option<String>,
    pub access_key_details: Option<AccessKeyDetails>,
    pub instance_details: Option<InstanceDetails>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessKeyDetails {
    pub access_key_id: Option<String>,
    pub principal_id: Option<String>,
    pub user_name: Option<String>,
    pub user_type: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceDetails {
    pub instance_id: Option<String>,
    /// Where the instance runs, which names its region: a finding's `region` can differ (for
    /// global-service events).
    #[serde(default)]
    pub availability_zone: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub detector_id: Option<String>,
    pub event_first_seen: Option<String>,
    /// The latest activity GuardDuty folded into this finding: a key stolen again after the
    /// revocation arrives as the same finding, with a later `eventLastSeen`.
    #[serde(default)]
    pub event_last_seen: Option<String>,
    pub archived: Option<bool>,
    pub additional_info: Option<Value>,
}

impl Finding {
    /// The named instance's region, from its availability zone (`us-east-1a` is in `us-east-1`;
    /// Local Zones and Wavelength Zones too, `us-west-2-lax-1a` is in `us-west-2`).
    pub fn instance_region(&self) -> Option<String> {
        let zone = self
            .resource
            .as_ref()?
            .instance_details
            .as_ref()?
            .availability_zone
            .as_deref()?;
        let parts: Vec<&str> = zone.split('-').collect();
        // The region is up to the first part that starts with a digit: `us`, `west`, `2...`.
        let end = parts.iter().position(|p| p.starts_with(|c: char| c.is_ascii_digit()))?;
        let number: String = parts[end].chars().take_while(char::is_ascii_digit).collect();
        (end >= 1 && !number.is_empty()).then(|| format!("{}-{number}", parts[..end].join("-")))
    }

    /// The partition its ARN names, if it has one.
    pub fn partition(&self) -> Option<&str> {
        self.arn.as_deref()?.split(':').nth(1)
    }
}
