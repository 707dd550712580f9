//! What the fleet plan reads and returns: an instance's facts, the steps it may need, and the
//! marker tags those steps leave so that a retry finishes a plan instead of repeating it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::api::ApiCall;
use crate::config::Config;
use crate::rules::{Action, ChosenAction, Tags};

/// Written before a profile is detached: the profile ARN, so nothing can strand the instance.
pub const PROFILE_TAG: &str = "exfil-responder:profile";
/// A time (ISO 8601 UTC, milliseconds) no later than the instance's current association was made:
/// at or after the cut-off, it proves the association's credentials fresh (see `plan_cycle`).
pub const CYCLED_AT_TAG: &str = "exfil-responder:cycled-at";
pub const REBOOTED_AT_TAG: &str = "exfil-responder:rebooted-at";
/// Set before an isolating detach; an instance with it is never re-attached automatically.
pub const ISOLATED_AT_TAG: &str = "exfil-responder:isolated-at";
/// The finding (or `manual`) that made the last change.
pub const FINDING_TAG: &str = "exfil-responder:finding";
/// When the evidence snapshots were taken: at or after the cut-off, they were taken for it.
pub const SNAPSHOTTED_AT_TAG: &str = "exfil-responder:snapshotted-at";
/// On a snapshot: the instance it is evidence of (beside [`FINDING_TAG`]).
pub const EVIDENCE_OF_TAG: &str = "exfil-responder:evidence-of";
/// `imdsv2` on a sibling (or on the role, for all of them): `HARDEN=imdsv2` requires IMDSv2 there
/// too, not only on the named instance.
pub const HARDEN_TAG: &str = "exfil-responder:harden";

/// A role as IAM has it: what the gate and the plans read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleFacts {
    pub name: String,
    pub arn: String,
    pub id: String,
    pub path: String,
    pub tags: Tags,
}

/// An instance-profile association as EC2 reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Association {
    pub id: String,
    pub profile_arn: String,
    pub state: String,
    /// When it was made, where EC2 says (AWS does; moto does not).
    pub since: Option<DateTime<Utc>>,
}

impl Association {
    /// `associating` and `associated` hold the profile; the other states are on their way out.
    pub fn is_current(&self) -> bool {
        matches!(self.state.as_str(), "associated" | "associating")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceFacts {
    pub id: String,
    /// IAM is global, EC2 regional: a role's instances may run in any region.
    pub region: String,
    pub state: String,
    pub tags: Tags,
    pub association: Option<Association>,
    /// The metadata service's `HttpTokens` (`required`: IMDSv2 only; `optional`: IMDSv1 too).
    pub http_tokens: Option<String>,
    /// The metadata service's `HttpPutResponseHopLimit`: how many network hops IMDSv2's token
    /// travels (1 keeps it from containers behind a bridge).
    pub hop_limit: Option<i32>,
    /// A Spot Instance (`InstanceLifecycle`): EC2 may reclaim it at any time.
    pub spot: bool,
}

pub struct FleetFacts<'a> {
    pub config: &'a Config,
    pub cutoff: DateTime<Utc>,
    pub finding_id: &'a str,
    pub role_name: &'a str,
    pub role_tags: &'a Tags,
    /// ARNs of the instance profiles that hold the role.
    pub role_profiles: &'a [String],
    /// The instance the finding names: its id and facts (`None`: not found).
    pub named: Option<(&'a str, Option<&'a InstanceFacts>)>,
    pub siblings: &'a [InstanceFacts],
    pub action_override: Option<Action>,
    /// When the instances' facts were read, no earlier than the cut-off was decided: any
    /// association made after it is newer than the cut-off.
    pub observed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    Arn(String),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagValue {
    Text(String),
    /// The time the tag is written.
    Now,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Tag(Vec<(&'static str, TagValue)>),
    Disassociate {
        association_id: String,
    },
    AwaitDisassociated,
    Associate(Profile),
    AwaitAssociated(Profile),
    Reboot,
    /// Remove these tag keys (a restore clears the isolation mark).
    Untag(Vec<&'static str>),
    /// Evidence kept before an isolation (`FORENSICS=snapshot`).
    Preserve(Evidence),
    /// `HttpTokens=required`: the metadata service serves credentials only through IMDSv2. With
    /// `hop_limit`, `HttpPutResponseHopLimit` set to it in the same call: 2 where it was 1, so that
    /// containers behind a bridge network (one hop more) still reach a token.
    RequireImdsv2 {
        hop_limit: Option<i32>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// On standby in its Auto Scaling group (`aws:autoscaling:groupName`), which termination
    /// protection does not stop: neither health-checked nor scaled in ([`crate::aws::autoscaling`]).
    Standby,
    /// Termination protection on: nobody terminates the evidence by API or console.
    TerminationProtection,
    /// A shutdown from inside the instance stops it rather than terminating it.
    StopOnShutdown,
    /// Every attached EBS volume, tagged with the finding and the instance; then marked
    /// [`SNAPSHOTTED_AT_TAG`] so that a retry does not take them again.
    Snapshots { finding_id: String },
}

impl Step {
    /// The AWS operation (or wait) the step runs as.
    pub fn op(&self) -> ApiCall {
        match self {
            Self::Tag(_) => ApiCall::CreateTags,
            Self::Disassociate { .. } => ApiCall::DisassociateIamInstanceProfile,
            Self::AwaitDisassociated => ApiCall::AwaitDisassociation,
            Self::Associate(_) => ApiCall::AssociateIamInstanceProfile,
            Self::AwaitAssociated(_) => ApiCall::AwaitAssociation,
            Self::Reboot => ApiCall::RebootInstances,
            Self::Untag(_) => ApiCall::DeleteTags,
            Self::Preserve(Evidence::Snapshots { .. }) => ApiCall::CreateSnapshots,
            Self::Preserve(Evidence::Standby) => ApiCall::EnterStandby,
            Self::Preserve(_) => ApiCall::ModifyInstanceAttribute,
            Self::RequireImdsv2 { .. } => ApiCall::ModifyInstanceMetadataOptions,
        }
    }

    /// A step whose failure does not stop the instance's plan: containment comes first, and the
    /// report asks a person to finish what failed.
    pub fn best_effort(&self) -> bool {
        matches!(self, Self::Preserve(_) | Self::RequireImdsv2 { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    /// The instance the finding (or payload) names.
    Named,
    /// Another instance whose profile holds the revoked role.
    Sibling,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePlan {
    pub instance_id: String,
    /// None for a named instance found in no region.
    pub region: Option<String>,
    pub relation: Relation,
    pub state: Option<String>,
    pub chosen: Option<ChosenAction>,
    pub steps: Vec<Step>,
    /// What the instance's situation will be once the steps are done.
    pub result: String,
    pub needs_attention: bool,
    /// Its metadata service's `HttpTokens` as read, for the report.
    pub http_tokens: Option<String>,
}

impl InstancePlan {
    /// An operation's plan for the instance its payload names: steps of its own, no tag action.
    pub fn named(inst: &InstanceFacts, steps: Vec<Step>, result: String) -> Self {
        Self {
            instance_id: inst.id.clone(),
            region: Some(inst.region.clone()),
            relation: Relation::Named,
            state: Some(inst.state.clone()),
            chosen: None,
            steps,
            result,
            needs_attention: false,
            http_tokens: inst.http_tokens.clone(),
        }
    }
}
