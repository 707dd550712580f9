//! What a release or a restore works with and returns: shared by `after`, which reaches the
//! account, and `release` and `restore`, which undo a containment there.

use crate::aws::clients::{Session, Target};
use crate::report::{InstanceReport, OperationReport, RoleSummary, ScheduleReport};
use crate::respond::establish::Place;
use crate::respond::journal::Journal;

/// What the operation returned for the report, kept as it came.
#[derive(Default)]
pub struct Undone {
    pub place: Option<Place>,
    pub session: Option<Session>,
    pub role: Option<RoleSummary>,
    pub instances: Vec<InstanceReport>,
    pub operation: OperationReport,
    /// A scheduled release that came too early, asked again for later (`AUTO_RELEASE`).
    pub auto_release: Option<(ScheduleReport, Option<String>)>,
    pub warnings: Vec<String>,
}

/// The account and region the operation works in, and what it needs there.
pub struct Undoing<'a> {
    pub target: &'a Target,
    pub account: &'a str,
    /// The role this run acts through, never changed.
    pub own_role: Option<&'a str>,
    pub dry_run: bool,
    pub steps: &'a Journal,
}
