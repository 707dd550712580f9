//! EventBridge Scheduler, in the function's own account and region: the one-time schedule that
//! invokes the function with a release once a revocation's hold is over (`AUTO_RELEASE=true`).

use aws_sdk_scheduler::Client;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, ScheduleState, Target,
};

use crate::error::{Error, Result};

/// One schedule to create: fires once at `expression` (UTC), invokes `function_arn` as
/// `role_arn` with `input`.
pub struct OneTime<'a> {
    pub group: &'a str,
    pub name: &'a str,
    pub expression: &'a str,
    pub description: &'a str,
    pub function_arn: &'a str,
    pub role_arn: &'a str,
    pub input: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Created,
    /// A schedule of that name is there already: by its name, the same release (see
    /// [`crate::plan::auto_release`]); also what a retry after a lost answer finds.
    AlreadyThere,
}

/// Create the schedule. Scheduler deletes it once it has invoked the function
/// (`ActionAfterCompletion=DELETE`), and retries a failed invocation for up to a day by default.
pub async fn create_one_time(scheduler: &Client, s: OneTime<'_>) -> Result<Created> {
    let unbuilt = |e: aws_sdk_scheduler::error::BuildError| Error::Unexpected(format!("a schedule's part: {e}"));
    let target = Target::builder()
        .arn(s.function_arn)
        .role_arn(s.role_arn)
        .input(s.input)
        .build()
        .map_err(unbuilt)?;
    // At the minute named: the release it delivers must not come before the hold is over.
    let exact = FlexibleTimeWindow::builder()
        .mode(FlexibleTimeWindowMode::Off)
        .build()
        .map_err(unbuilt)?;
    let sent = scheduler
        .create_schedule()
        .group_name(s.group)
        .name(s.name)
        .description(s.description)
        .schedule_expression(s.expression)
        .schedule_expression_timezone("UTC")
        .flexible_time_window(exact)
        .target(target)
        .state(ScheduleState::Enabled)
        .action_after_completion(ActionAfterCompletion::Delete)
        .send()
        .await;
    match sent {
        Ok(_) => Ok(Created::Created),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_conflict_exception()) => Ok(Created::AlreadyThere),
        Err(e) => Err(Error::aws("scheduler", "CreateSchedule", e)),
    }
}
