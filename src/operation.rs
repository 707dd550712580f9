//! The operations after containment, as a responder asks for them (the manual payload's
//! `operation`, or the CLI's `release` and `restore`): release a role's revocation once its old
//! tokens have expired, and restore an instance this function isolated; and what a follow-up
//! schedule delivers: another walk of a stolen key's trail; and, before any incident, readiness:
//! what a containment would do to every role and instance now. Every other payload is a
//! containment.

use crate::error::{Error, Result};
use crate::names::{InstanceId, RoleName};

/// The longest `requestedBy` taken: who asked, as the report and the audit trail keep it.
pub const MAX_REQUESTED_BY_CHARS: usize = 512;

/// The longest free-text `reason` taken.
const MAX_REASON_CHARS: usize = 1024;

/// A payload's `reason`, if any, is at most [`MAX_REASON_CHARS`] long.
pub fn check_reason(reason: Option<&str>) -> Result<()> {
    match reason {
        Some(r) if r.chars().count() > MAX_REASON_CHARS => Err(Error::bad_input(
            "reason",
            format!("longer than {MAX_REASON_CHARS} characters"),
        )),
        _ => Ok(()),
    }
}

/// An operation's `reason` and `requestedBy`, if any, are within their lengths.
pub fn check_asked(reason: Option<&str>, requested_by: Option<&str>) -> Result<()> {
    check_reason(reason)?;
    match requested_by {
        Some(r) if r.chars().count() > MAX_REQUESTED_BY_CHARS => Err(Error::bad_input(
            "requestedBy",
            format!("longer than {MAX_REQUESTED_BY_CHARS} characters"),
        )),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    Release(Release),
    Restore(Restore),
    FollowUp(FollowUp),
    Readiness(Readiness),
}

/// Who asked and why, and where: what every operation's report records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Asked {
    /// The account to act in; the function's own if not given (others through the member role).
    pub account_id: Option<String>,
    /// The free-text reason (required to force a release).
    pub reason: Option<String>,
    /// Who asked, as the payload states it (the CLI fills in its caller's ARN). Lambda does not
    /// tell a function who invoked it: CloudTrail's Lambda data events do.
    pub requested_by: Option<String>,
    pub dry_run: bool,
}

/// Remove the revocation this function wrote on a role.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    pub role: RoleName,
    /// Release before every token issued before the cut-off has expired (needs a reason).
    pub force: bool,
    /// The release schedule that delivered it (`AUTO_RELEASE`): never forced, acted on only while
    /// `AUTO_RELEASE` is on, and put off to the safe time if it comes too early.
    pub schedule: Option<String>,
    pub asked: Asked,
}

/// Re-attach the profile an isolated instance held, and clear its isolation mark.
#[derive(Debug, Clone, PartialEq)]
pub struct Restore {
    pub instance: InstanceId,
    /// The instance's region; the function's own if not given.
    pub region: Option<String>,
    pub asked: Asked,
}

/// Read every role an instance uses, in the accounts named, and report what a containment would
/// do now: read only (`respond::readiness`).
#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    /// The accounts to assess; none: the function's own.
    pub accounts: Vec<String>,
    pub asked: Asked,
}

/// Walk a contained finding's stolen key's trail again (`CHAIN`): what a follow-up schedule
/// delivers, as CloudTrail delivers more of the trail.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    pub finding_id: String,
    pub key: String,
    /// The role the stolen key is a session of, which the containment revoked.
    pub role: Option<RoleName>,
    pub region: String,
    pub since: chrono::DateTime<chrono::Utc>,
    /// The keys the walks before found.
    pub walked: Vec<String>,
    pub schedule: Option<String>,
    pub asked: Asked,
}

impl Operation {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Release(_) => "release",
            Self::Restore(_) => "restore",
            Self::FollowUp(_) => "follow-up",
            Self::Readiness(_) => "readiness",
        }
    }

    pub fn asked(&self) -> &Asked {
        match self {
            Self::Release(r) => &r.asked,
            Self::Restore(r) => &r.asked,
            Self::FollowUp(f) => &f.asked,
            Self::Readiness(r) => &r.asked,
        }
    }

    /// What the operation is on, for logs and the member-role session's name.
    pub fn subject(&self) -> &str {
        match self {
            Self::Release(r) => r.role.as_str(),
            Self::Restore(r) => r.instance.as_str(),
            Self::FollowUp(f) => f.key.as_str(),
            Self::Readiness(_) => "accounts",
        }
    }
}
