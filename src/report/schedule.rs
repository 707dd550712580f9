//! A one-time schedule's report: a leaf, so that the report and its chain part can both use it.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A one-time schedule that invokes this function: a role's release once its hold is over
/// (`AUTO_RELEASE`: after every token issued before the cut-off has expired), or a follow-up walk
/// of a stolen key's trail (`CHAIN`).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleReport {
    pub schedule: String,
    pub group: String,
    /// When it fires.
    pub at: DateTime<Utc>,
    pub status: ScheduleStatus,
}

impl From<crate::aws::scheduler::Created> for ScheduleStatus {
    /// What Scheduler answered to the schedule asked for.
    fn from(created: crate::aws::scheduler::Created) -> Self {
        match created {
            crate::aws::scheduler::Created::Created => Self::Scheduled,
            crate::aws::scheduler::Created::AlreadyThere => Self::AlreadyScheduled,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleStatus {
    Scheduled,
    /// A schedule of that name was there: the same release, asked for before.
    AlreadyScheduled,
    Planned,
    /// Not scheduled (the warnings say why): the role stays revoked until a person releases it.
    Failed,
}
