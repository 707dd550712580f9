//! One step of a remediation as data: the AWS operation (or wait) it runs, whether that changes
//! anything in the account, and the record the report keeps of how it went.

use serde::Serialize;

/// Every AWS operation and wait a remediation runs. The report names each by its AWS name
/// ([`ApiCall::name`], the one list of names: serialized from it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiCall {
    // GuardDuty
    /// Our own detector in the finding's region (the administrator's), once per process.
    ListDetectors,
    /// Readiness: whether the account's detector in a region is monitoring or suspended.
    GetDetector,
    GetFindings,
    ArchiveFindings,
    // IAM
    GetRole,
    GetRolePolicy,
    PutRolePolicy,
    /// The managed fallback's attachment, and its default version's document when attached.
    ListAttachedRolePolicies,
    /// The managed fallback (or a new default version of it), when the inline quota is full.
    CreatePolicy,
    AttachRolePolicy,
    /// The role's record of the stolen keys its revocation answered.
    TagRole,
    /// A release: the inline revocation removed, or the managed fallback detached.
    DeleteRolePolicy,
    DetachRolePolicy,
    ListInstanceProfilesForRole,
    GetInstanceProfile,
    /// Readiness: every role with its profiles, policies and tags; the account's IAM quotas; and
    /// the managed fallback's document where it is attached (its `GetPolicy`, then this).
    GetAccountAuthorizationDetails,
    GetAccountSummary,
    GetPolicyVersion,
    // The revocation claim (DynamoDB), and the wait for another run's revocation to show in IAM
    ClaimRevocation,
    AwaitClaimedRevocation,
    /// A claim taken with the first reads, given up when no write used it.
    ReleaseClaim,
    // EC2
    DescribeRegions,
    DescribeIamInstanceProfileAssociations,
    DescribeInstances,
    CreateTags,
    DisassociateIamInstanceProfile,
    AwaitDisassociation,
    AssociateIamInstanceProfile,
    AwaitAssociation,
    RebootInstances,
    /// A restore: the isolation mark cleared.
    DeleteTags,
    /// `FORENSICS=snapshot`: termination protection, and stop on shutdown.
    ModifyInstanceAttribute,
    CreateSnapshots,
    /// `HARDEN=imdsv2`.
    ModifyInstanceMetadataOptions,
    // Auto Scaling
    /// `FORENSICS=snapshot`: an isolated member of a group on standby (after reading its state).
    EnterStandby,
    // EventBridge Scheduler
    /// `AUTO_RELEASE=true`: the one-time schedule that releases the role once its hold is over;
    /// `CHAIN`: the follow-up walks of the stolen key's trail.
    CreateSchedule,
    // CloudTrail, and what the walk of the key's trail does (`CHAIN`)
    LookupEvents,
    /// A user's keys: is the key the attacker created still active?
    ListAccessKeys,
    /// That key deactivated (never deleted).
    UpdateAccessKey,
}

impl ApiCall {
    /// Whether it changes something in the account. It decides remediated versus
    /// already-remediated, and which instances a run acted on. No wildcard arm: a new operation
    /// must be classed here before it compiles.
    pub fn writes(self) -> bool {
        match self {
            Self::PutRolePolicy
            | Self::CreatePolicy
            | Self::AttachRolePolicy
            | Self::CreateTags
            | Self::DisassociateIamInstanceProfile
            | Self::AssociateIamInstanceProfile
            | Self::RebootInstances
            | Self::ArchiveFindings
            | Self::DeleteRolePolicy
            | Self::DetachRolePolicy
            | Self::DeleteTags
            | Self::ModifyInstanceAttribute
            | Self::CreateSnapshots
            | Self::ModifyInstanceMetadataOptions
            | Self::EnterStandby
            | Self::UpdateAccessKey => true,
            // The claim is a DynamoDB item in our own account, not a change to the finding's; the
            // record of revoked keys is bookkeeping about a revocation, not a remediation.
            // A schedule in our own account: it changes nothing where the finding is, until it fires.
            Self::CreateSchedule
            | Self::ClaimRevocation
            | Self::ReleaseClaim
            | Self::TagRole
            | Self::AwaitClaimedRevocation
            | Self::ListDetectors
            | Self::GetDetector
            | Self::GetFindings
            | Self::GetRole
            | Self::GetRolePolicy
            | Self::ListAttachedRolePolicies
            | Self::ListInstanceProfilesForRole
            | Self::GetInstanceProfile
            | Self::GetAccountAuthorizationDetails
            | Self::GetAccountSummary
            | Self::GetPolicyVersion
            | Self::DescribeRegions
            | Self::DescribeIamInstanceProfileAssociations
            | Self::DescribeInstances
            | Self::AwaitDisassociation
            | Self::AwaitAssociation
            | Self::LookupEvents
            | Self::ListAccessKeys => false,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::ListDetectors => "ListDetectors",
            Self::GetDetector => "GetDetector",
            Self::GetFindings => "GetFindings",
            Self::ArchiveFindings => "ArchiveFindings",
            Self::GetRole => "GetRole",
            Self::GetRolePolicy => "GetRolePolicy",
            Self::PutRolePolicy => "PutRolePolicy",
            Self::ListAttachedRolePolicies => "ListAttachedRolePolicies",
            Self::CreatePolicy => "CreatePolicy",
            Self::AttachRolePolicy => "AttachRolePolicy",
            Self::TagRole => "TagRole",
            Self::ListInstanceProfilesForRole => "ListInstanceProfilesForRole",
            Self::GetInstanceProfile => "GetInstanceProfile",
            Self::GetAccountAuthorizationDetails => "GetAccountAuthorizationDetails",
            Self::GetAccountSummary => "GetAccountSummary",
            Self::GetPolicyVersion => "GetPolicyVersion",
            Self::ClaimRevocation => "ClaimRevocation",
            Self::AwaitClaimedRevocation => "AwaitClaimedRevocation",
            Self::ReleaseClaim => "ReleaseClaim",
            Self::DescribeRegions => "DescribeRegions",
            Self::DescribeIamInstanceProfileAssociations => "DescribeIamInstanceProfileAssociations",
            Self::DescribeInstances => "DescribeInstances",
            Self::CreateTags => "CreateTags",
            Self::DisassociateIamInstanceProfile => "DisassociateIamInstanceProfile",
            Self::AwaitDisassociation => "AwaitDisassociation",
            Self::AssociateIamInstanceProfile => "AssociateIamInstanceProfile",
            Self::AwaitAssociation => "AwaitAssociation",
            Self::RebootInstances => "RebootInstances",
            Self::DeleteRolePolicy => "DeleteRolePolicy",
            Self::DetachRolePolicy => "DetachRolePolicy",
            Self::DeleteTags => "DeleteTags",
            Self::ModifyInstanceAttribute => "ModifyInstanceAttribute",
            Self::CreateSnapshots => "CreateSnapshots",
            Self::ModifyInstanceMetadataOptions => "ModifyInstanceMetadataOptions",
            Self::EnterStandby => "EnterStandby",
            Self::CreateSchedule => "CreateSchedule",
            Self::LookupEvents => "LookupEvents",
            Self::ListAccessKeys => "ListAccessKeys",
            Self::UpdateAccessKey => "UpdateAccessKey",
        }
    }
}

impl Serialize for ApiCall {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl std::fmt::Display for ApiCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepOutcome {
    Ok,
    Failed,
    Planned,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// The AWS operation (or wait) this step is.
    pub step: ApiCall,
    pub target: String,
    pub outcome: StepOutcome,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

impl StepRecord {
    /// A write that succeeded.
    pub fn wrote(&self) -> bool {
        self.outcome == StepOutcome::Ok && self.step.writes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_each_step_by_its_aws_name() {
        for op in [
            ApiCall::PutRolePolicy,
            ApiCall::AwaitDisassociation,
            ApiCall::ClaimRevocation,
        ] {
            assert_eq!(serde_json::to_value(op).unwrap(), op.name());
        }
    }

    #[test]
    fn only_changes_to_the_account_count_as_writes() {
        let writes = [
            ApiCall::PutRolePolicy,
            ApiCall::CreateTags,
            ApiCall::DisassociateIamInstanceProfile,
            ApiCall::AssociateIamInstanceProfile,
            ApiCall::RebootInstances,
            ApiCall::ArchiveFindings,
        ];
        assert!(writes.iter().all(|op| op.writes()));
        for read in [
            ApiCall::GetRolePolicy,
            ApiCall::DescribeInstances,
            ApiCall::ClaimRevocation,
            ApiCall::AwaitAssociation,
        ] {
            assert!(!read.writes(), "{read}");
        }
    }
}
