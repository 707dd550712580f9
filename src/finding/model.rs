//! What triage makes of an event: the finding's summary, the incident to act on (or the finding
//! to fetch), or a skip with its reason; and the typed reading every input shape shares. A leaf:
//! every input shape (GuardDuty's, Security Hub's, the attack sequences') builds these.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::identity::Locator;
use super::shape::Finding;
use crate::error::{Error, Result};
use crate::names::{InstanceId, RoleName};
use crate::rules::Action;

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
    /// How Security Hub names the finding, when it came in OCSF: its workflow is updated there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocsf: Option<OcsfIdentifier>,
}

/// A finding as Security Hub's OCSF findings are named for `BatchUpdateFindingsV2`
/// (https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_BatchUpdateFindingsV2.html):
/// `cloud.account.uid`, `finding_info.uid` and `metadata.product.uid`. A finding that came in
/// OCSF is updated through that API, which the ASFF `BatchUpdateFindings` may not reach.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OcsfIdentifier {
    pub cloud_account_uid: String,
    pub finding_info_uid: String,
    pub metadata_product_uid: String,
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
    /// How Security Hub names it, when it came in OCSF.
    pub ocsf: Option<OcsfIdentifier>,
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
