//! `AUTO_RELEASE=true`: schedule a role's release for when its hold is over, in the function's own
//! account and region ([`crate::plan::auto_release`] names the schedule and what it delivers).
//!
//! Best effort, beside the cycling: a schedule that cannot be made leaves the role revoked, the
//! safe way round, and the report says to release it by hand. Containment never waits on it.

use chrono::{DateTime, Utc};

use crate::api::ApiCall;
use crate::app::App;
use crate::aws::scheduler::{self, OneTime};
use crate::names::RoleName;
use crate::plan::auto_release;
use crate::report::{ScheduleReport, ScheduleStatus};
use crate::respond::journal::Journal;

/// The schedule asked for, and a warning if it was not made. None while `AUTO_RELEASE` is off.
pub async fn schedule(
    app: &App,
    (account, role): (&str, &RoleName),
    safe_at: DateTime<Utc>,
    dry_run: bool,
    steps: &Journal,
) -> Option<(ScheduleReport, Option<String>)> {
    let config = app.config.auto_release.as_ref()?;
    let planned = auto_release::schedule(account, role, safe_at, Utc::now());
    let report = |status| ScheduleReport {
        schedule: planned.name.clone(),
        group: config.group.clone(),
        at: planned.at,
        status,
    };
    if dry_run {
        let at = planned.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        steps.planned(
            ApiCall::CreateSchedule,
            role.as_str(),
            format!(
                "schedule {}/{} to release role {role} at {at}",
                config.group, planned.name
            ),
        );
        return Some((report(ScheduleStatus::Planned), None));
    }
    let create = async {
        let function_arn = app.release_target().await?;
        let one = OneTime {
            group: &config.group,
            name: &planned.name,
            expression: &planned.expression,
            description: &planned.description,
            function_arn: &function_arn,
            role_arn: &config.scheduler_role_arn,
            input: planned.payload.to_string(),
        };
        scheduler::create_one_time(&app.clients.scheduler, one).await
    };
    match steps.run(ApiCall::CreateSchedule, role.as_str(), create).await {
        Ok(created) => Some((report(created.into()), None)),
        Err(e) => {
            let safe = safe_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let warning = format!(
                "AUTO_RELEASE: role {role}'s release was NOT scheduled ({e}); it stays revoked: release it by hand from {safe}"
            );
            Some((report(ScheduleStatus::Failed), Some(warning)))
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_scheduler::Client;
    use aws_sdk_scheduler::operation::create_schedule::{CreateScheduleError, CreateScheduleOutput};
    use aws_sdk_scheduler::types::error::{ConflictException, ResourceNotFoundException};
    use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindowMode, ScheduleState};
    use aws_smithy_mocks::{Rule, mock};
    use chrono::Duration;

    use super::*;
    use crate::config::{AutoRelease, Config};
    use crate::respond::mocks::Rules;
    use crate::wait::Deadline;

    const FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789012:function:exfil-responder";
    const SCHEDULER_ROLE: &str = "arn:aws:iam::123456789012:role/exfil-responder-ReleaseSchedulerRole";

    fn config(function_arn: Option<&str>) -> Config {
        Config {
            auto_release: Some(AutoRelease {
                scheduler_role_arn: SCHEDULER_ROLE.into(),
                group: "releases".into(),
                function_arn: function_arn.map(str::to_owned),
            }),
            ..Config::default()
        }
    }

    async fn scheduled(
        rule: Option<&Rule>,
        config: Config,
        dry_run: bool,
    ) -> (ScheduleReport, Option<String>, Journal) {
        let app = Rules {
            scheduler: rule.into_iter().collect(),
            ..Rules::default()
        }
        .app(config);
        let steps = Journal::new("f-1", Deadline::none());
        let role = RoleName::parse("WebAppRole").unwrap();
        let safe = Utc::now() + Duration::hours(12);
        let (report, warning) = schedule(&app, ("123456789012", &role), safe, dry_run, &steps)
            .await
            .expect("AUTO_RELEASE is on");
        (report, warning, steps)
    }

    #[tokio::test]
    async fn the_schedule_fires_once_at_its_minute_invokes_the_function_as_the_schedulers_role_and_deletes_itself() {
        let created = mock!(Client::create_schedule)
            .match_requests(|r| {
                let target = r.target().unwrap();
                let input: serde_json::Value = serde_json::from_str(target.input().unwrap()).unwrap();
                r.group_name() == Some("releases")
                    && r.schedule_expression().is_some_and(|e| e.starts_with("at("))
                    && r.schedule_expression_timezone() == Some("UTC")
                    && r.flexible_time_window().map(|w| w.mode()) == Some(&FlexibleTimeWindowMode::Off)
                    && r.action_after_completion() == Some(&ActionAfterCompletion::Delete)
                    && r.state() == Some(&ScheduleState::Enabled)
                    && (target.arn(), target.role_arn()) == (FUNCTION, SCHEDULER_ROLE)
                    && input["operation"] == "release"
                    && input["roleName"] == "WebAppRole"
                    && input["schedule"].as_str() == r.name()
            })
            .then_output(|| CreateScheduleOutput::builder().schedule_arn("arn").build().unwrap());
        let (report, warning, steps) = scheduled(Some(&created), config(Some(FUNCTION)), false).await;
        assert_eq!((report.status, warning), (ScheduleStatus::Scheduled, None));
        assert_eq!(created.num_calls(), 1);
        assert_eq!(steps.into_records()[0].step, ApiCall::CreateSchedule);
    }

    #[tokio::test]
    async fn a_schedule_already_there_is_the_same_release() {
        let conflict = mock!(Client::create_schedule).then_error(|| {
            CreateScheduleError::ConflictException(ConflictException::builder().message("exists").build().unwrap())
        });
        let (report, warning, _) = scheduled(Some(&conflict), config(Some(FUNCTION)), false).await;
        assert_eq!((report.status, warning), (ScheduleStatus::AlreadyScheduled, None));
    }

    #[tokio::test]
    async fn a_schedule_not_made_leaves_the_role_revoked_and_says_to_release_it_by_hand() {
        let missing = mock!(Client::create_schedule).then_error(|| {
            CreateScheduleError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("no group")
                    .build()
                    .unwrap(),
            )
        });
        let (report, warning, steps) = scheduled(Some(&missing), config(Some(FUNCTION)), false).await;
        assert_eq!(report.status, ScheduleStatus::Failed);
        let warning = warning.expect("a warning");
        assert!(
            warning.contains("NOT scheduled") && warning.contains("by hand"),
            "{warning}"
        );
        assert!(warning.contains("CreateSchedule"), "{warning}");
        assert_eq!(steps.into_records()[0].outcome, crate::api::StepOutcome::Failed);
        // Outside Lambda with no function named: nothing to invoke, so nothing is asked of Scheduler.
        let (report, warning, _) = scheduled(None, config(None), false).await;
        assert_eq!(report.status, ScheduleStatus::Failed);
        assert!(warning.unwrap().contains("AUTO_RELEASE_FUNCTION_ARN"));
    }

    #[tokio::test]
    async fn a_dry_run_plans_the_schedule_and_auto_release_off_asks_for_none() {
        let (report, warning, steps) = scheduled(None, config(None), true).await;
        assert_eq!((report.status, warning), (ScheduleStatus::Planned, None));
        let detail = steps.into_records()[0].detail.clone().unwrap_or_default();
        assert!(detail.contains("to release role WebAppRole at"), "{detail}");
        let app = Rules::default().app(Config::default());
        let steps = Journal::new("f-1", Deadline::none());
        let role = RoleName::parse("WebAppRole").unwrap();
        assert!(
            schedule(&app, ("123456789012", &role), Utc::now(), false, &steps)
                .await
                .is_none()
        );
    }
}
