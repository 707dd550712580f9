//! `AUTO_RELEASE` under faults: `CreateSchedule` against each fault the proxy injects, once
//! (transient) and every time (persistent). The invariants, checked against the emulator:
//! - containment first: the role is revoked and the invocation never fails by the schedule;
//! - never a second schedule for one revocation (a lost answer's retry finds the first);
//! - said as it is: a report that says scheduled has its schedule in the group, and one without
//!   says `failed` and to release by hand;
//! - a transient fault the SDK's retry outlasts (all but an access denial) leaves it scheduled.

mod support;

use exfil_responder::config::AutoRelease;
use exfil_responder::{Config, handle};
use serde_json::Value;
use support::faults::{Fault, Rule};
use support::guardduty::GuardDuty;
use support::scene::{Scene, test_config};
use support::*;

const GROUP: &str = "releases";

fn config(account: &str) -> Config {
    Config {
        auto_release: Some(AutoRelease {
            scheduler_role_arn: format!("arn:aws:iam::{account}:role/scheduler"),
            group: GROUP.into(),
            function_arn: Some(format!("arn:aws:lambda:{REGION}:{account}:function:exfil-responder")),
        }),
        ..test_config()
    }
}

async fn case(moto: &Moto, guardduty: &GuardDuty, fault: Fault, persistent: bool) -> Result<(), String> {
    let name = format!("CreateSchedule × {fault:?} × persistent={persistent}");
    let scene = Scene::new(moto, guardduty, &["revoke"]).await;
    // Scheduler read directly, not through the proxy.
    let scheduler = aws_sdk_scheduler::Client::new(&moto.sdk_with(scene.credentials.clone(), REGION).await);
    scheduler.create_schedule_group().name(GROUP).send().await.unwrap();
    let event = scene.event(guardduty, &format!("release-{}", scene.account_id));
    scene.proxy.add(Rule::case("CreateSchedule", fault, persistent));

    let handled = handle(&scene.app(config(&scene.account_id)).await, event).await;
    let report: Value = report(&handled.response);
    if let Some(failure) = handled.failure {
        return Err(format!("{name}: the invocation failed: {failure}\n{report:#}"));
    }
    if !scene.proxy.faulted("CreateSchedule") {
        return Err(format!(
            "{name}: the fault never applied; CreateSchedule was not called"
        ));
    }
    if scene.account.revocation(&scene.role.name).await.is_none() {
        return Err(format!("{name}: not contained\n{report:#}"));
    }
    let listed = scheduler.list_schedules().group_name(GROUP).send().await.unwrap();
    let schedules: Vec<&str> = listed.schedules().iter().filter_map(|s| s.name()).collect();
    if schedules.len() > 1 {
        return Err(format!(
            "{name}: {} schedules for one revocation: {schedules:?}",
            schedules.len()
        ));
    }
    let release = &report["autoRelease"];
    let status = release["status"].as_str().unwrap_or_default();
    let says_scheduled = matches!(status, "scheduled" | "already-scheduled");
    if says_scheduled && schedules != [release["schedule"].as_str().unwrap_or_default()] {
        return Err(format!(
            "{name}: reported {status}, but the group holds {schedules:?}\n{report:#}"
        ));
    }
    let warned = report["warnings"].to_string().contains("NOT scheduled");
    if !says_scheduled && (status != "failed" || !warned) {
        return Err(format!("{name}: not scheduled, and not said so\n{report:#}"));
    }
    if !persistent && fault != Fault::AccessDenied && !says_scheduled {
        return Err(format!("{name}: a transient fault left it unscheduled\n{report:#}"));
    }
    Ok(())
}

async fn matrix(persistent: bool) {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let (moto, guardduty) = (&moto, &guardduty);
    let cases = Fault::ANY_CALL
        .into_iter()
        .map(|fault| case(moto, guardduty, fault, persistent));
    support::faults::assert_every_case_holds(cases, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn transient_faults_are_outlasted_and_never_make_a_second_schedule() {
    matrix(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn persistent_faults_never_fail_the_containment_and_are_reported() {
    matrix(true).await;
}
