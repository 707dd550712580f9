//! What the fleet plan reads and returns: an instance's facts, the steps it may need, and the
//! marker tags those steps leave so that a retry finishes a plan instead of repeating it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::op::Op;
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
}

impl Step {
    /// The AWS operation (or wait) the step runs as.
    pub fn op(&self) -> Op {
        match self {
            Self::Tag(_) => Op::CreateTags,
            Self::Disassociate { .. } => Op::DisassociateIamInstanceProfile,
            Self::AwaitDisassociated => Op::AwaitDisassociation,
            Self::Associate(_) => Op::AssociateIamInstanceProfile,
            Self::AwaitAssociated(_) => Op::AwaitAssociation,
            Self::Reboot => Op::RebootInstances,
            Self::Untag(_) => Op::DeleteTags,
        }
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
}
