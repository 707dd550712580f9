//! `AUTO_RELEASE=true` against the moto server: containment asks EventBridge Scheduler for a
//! one-time schedule that releases the role once its hold is over, read back with Scheduler's own
//! client; and what that schedule delivers, run through the handler.
//!
//! moto stores schedules but never fires them, so these tests deliver the schedule's
//! `Target.Input`, read from moto, as Scheduler would at its time; and, as moto does not evaluate
//! `aws:TokenIssueTime`, a hold is "over" by writing the revocation with an older cut-off.

mod support;

use chrono::{DateTime, Duration, Utc};
use exfil_responder::Config;
use exfil_responder::config::AutoRelease;
use exfil_responder::policy::{cutoff_at, document};
use serde_json::{Value, json};
use support::*;

const GROUP: &str = "exfil-responder-releases";
const FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789012:function:exfil-responder";
const SCHEDULER_ROLE: &str = "arn:aws:iam::123456789012:role/exfil-responder-ReleaseSchedulerRole";

fn on() -> Config {
    Config {
        auto_release: Some(AutoRelease {
            scheduler_role_arn: SCHEDULER_ROLE.into(),
            group: GROUP.into(),
            function_arn: Some(FUNCTION.into()),
        }),
        ..Config::default()
    }
}

async fn world() -> World {
    let w = World::start().await;
    w.scheduler().create_schedule_group().name(GROUP).send().await.unwrap();
    w
}

impl World {
    /// Scheduler's own client, to read back what the function asked of it.
    fn scheduler(&self) -> aws_sdk_scheduler::Client {
        aws_sdk_scheduler::Client::new(&self.sdk)
    }

    async fn contained(&self, config: Config) -> Value {
        let instance = self.account.instance(Some(&self.role.profile_arn), &[]).await;
        let (report, ok) = self
            .run(finding("outside-aws.json", &self.role, Some(&instance)), config)
            .await;
        assert!(ok, "{report:#}");
        assert_eq!(report["outcome"], "remediated", "{report:#}");
        report
    }

    /// Every schedule in the group, by name.
    async fn schedules(&self) -> Vec<String> {
        let listed = self
            .scheduler()
            .list_schedules()
            .group_name(GROUP)
            .send()
            .await
            .unwrap();
        let mut names: Vec<String> = listed
            .schedules()
            .iter()
            .filter_map(|s| s.name().map(str::to_owned))
            .collect();
        names.sort();
        names
    }

    async fn schedule(&self, name: &str) -> aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput {
        self.scheduler()
            .get_schedule()
            .group_name(GROUP)
            .name(name)
            .send()
            .await
            .unwrap()
    }

    /// What the schedule delivers when it fires: its target's input, as Scheduler sends it.
    async fn delivery(&self, name: &str) -> Value {
        serde_json::from_str(self.schedule(name).await.target().unwrap().input().unwrap()).unwrap()
    }

    /// A containment's schedule, with its hold over: what it delivers, with the role's revocation
    /// rewritten 13 hours old (as if that long had passed) and the recorder cleared.
    async fn delivered_after_the_hold(&self) -> Value {
        let contained = self.contained(on()).await;
        let delivered = self
            .delivery(contained["autoRelease"]["schedule"].as_str().unwrap())
            .await;
        self.account.revoked_hours_ago(&self.role.name, 13).await;
        self.recorder.clear();
        delivered
    }
}

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn containment_schedules_one_release_for_when_the_hold_is_over() {
    let w = world().await;
    let contained = w.contained(on()).await;
    let scheduled = &contained["autoRelease"];
    assert_eq!(
        (&scheduled["status"], &scheduled["group"]),
        (&json!("scheduled"), &json!(GROUP)),
        "{contained:#}"
    );
    let cutoff = time(&contained["cutoff"]["at"]);
    let at = time(&scheduled["at"]);
    let safe = cutoff + Duration::hours(12);
    assert!(
        at > safe && at <= safe + Duration::minutes(2),
        "fires at {at}, safe from {safe}"
    );

    let name = scheduled["schedule"].as_str().unwrap();
    assert_eq!(w.schedules().await, [name]);
    let s = w.schedule(name).await;
    assert_eq!(
        s.schedule_expression(),
        Some(format!("at({})", at.format("%Y-%m-%dT%H:%M:%S")).as_str())
    );
    assert_eq!(s.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(s.action_after_completion().map(|a| a.as_str()), Some("DELETE"));
    assert_eq!(s.flexible_time_window().map(|f| f.mode().as_str()), Some("OFF"));
    let target = s.target().unwrap();
    assert_eq!((target.arn(), target.role_arn()), (FUNCTION, SCHEDULER_ROLE));
    let delivered = w.delivery(name).await;
    assert_eq!(
        (
            &delivered["operation"],
            &delivered["roleName"],
            &delivered["accountId"],
            &delivered["schedule"]
        ),
        (&json!("release"), &json!("WebAppRole"), &json!(ACCOUNT), &json!(name))
    );
    assert_eq!(delivered.get("force"), None);

    // The same finding again: the same cut-off holds, so the same schedule, asked for once.
    w.recorder.clear();
    let instance = w.account.instance(Some(&w.role.profile_arn), &[]).await;
    let again = with_id(
        finding("inside-aws.json", &w.role, Some(&instance)),
        "5d4c3b2a19f8e7d6c5b4a39281706f5e",
    );
    let (again, ok) = w.run(again, on()).await;
    assert!(ok, "{again:#}");
    assert_eq!(again["autoRelease"]["status"], "already-scheduled", "{again:#}");
    assert_eq!(again["autoRelease"]["schedule"], name);
    assert_eq!(w.recorder.count("CreateSchedule"), 1);
    assert_eq!(w.schedules().await, [name]);
}

#[tokio::test]
async fn what_the_schedule_delivers_after_the_hold_releases_the_role_once() {
    let w = world().await;
    let delivered = w.delivered_after_the_hold().await;

    let (released, ok) = w.run(delivered.clone(), on()).await;
    assert!(ok, "{released:#}");
    assert_eq!(released["outcome"], "released", "{released:#}");
    assert_eq!(released["operation"]["forced"], false);
    assert_eq!(released["operation"]["requestedBy"], delivered["requestedBy"]);
    assert_eq!(w.recorder.writes(), ["DeleteRolePolicy"]);
    assert_eq!(w.account.revocation(&w.role.name).await, None);

    // Scheduler delivers at least once: the second finds nothing to release and writes nothing.
    w.recorder.clear();
    let (again, ok) = w.run(delivered, on()).await;
    assert!(ok, "{again:#}");
    assert_eq!(again["outcome"], "skipped", "{again:#}");
    assert!(w.recorder.writes().is_empty(), "{:?}", w.recorder.writes());
}

#[tokio::test]
async fn a_delivery_before_a_later_revocations_hold_is_over_puts_itself_off_to_then() {
    let w = world().await;
    let contained = w.contained(on()).await;
    let first = contained["autoRelease"]["schedule"].as_str().unwrap().to_owned();
    let delivered = w.delivery(&first).await;
    // Revoked again since, with a later cut-off (a second incident on the role).
    let later = cutoff_at(time(&contained["cutoff"]["at"]) + Duration::minutes(30));
    w.account.put_revocation(&w.role.name, &document(later)).await;
    w.recorder.clear();

    let mut dry = delivered.clone();
    dry["dryRun"] = true.into();
    let (planned, ok) = w.run(dry, on()).await;
    assert!(ok, "{planned:#}");
    assert!(
        planned["outcomeReason"].as_str().unwrap().contains("would be put off"),
        "{planned:#}"
    );
    assert_eq!(planned["autoRelease"]["status"], "planned");
    assert!(w.recorder.writes().is_empty(), "{:?}", w.recorder.writes());

    let (put_off, ok) = w.run(delivered, on()).await;
    assert!(ok, "{put_off:#}");
    assert_eq!(put_off["outcome"], "skipped", "{put_off:#}");
    let reason = put_off["outcomeReason"].as_str().unwrap();
    assert!(
        reason.contains("safe to release from") && reason.contains("put off"),
        "{reason}"
    );
    assert_eq!(w.recorder.writes(), ["CreateSchedule"]);
    assert_eq!(w.account.cutoff_in_force(&w.role.name).await, Some(later));
    let second = put_off["autoRelease"]["schedule"].as_str().unwrap();
    assert_ne!(second, first);
    let at = time(&put_off["autoRelease"]["at"]);
    assert!(at > later + Duration::hours(12), "{at}");
    assert_eq!(w.delivery(second).await["schedule"], second);
    assert_eq!(
        w.schedules().await.len(),
        2,
        "moto keeps the first: Scheduler deletes it once it has run"
    );
}

#[tokio::test]
async fn a_schedule_come_before_its_own_time_is_not_mistaken_for_put_off() {
    let w = world().await;
    let contained = w.contained(on()).await;
    let name = contained["autoRelease"]["schedule"].as_str().unwrap().to_owned();
    // Scheduler documents no early firing; were it to, the same cut-off asks for this very
    // schedule, which is then deleted once it has run: say so rather than "put off".
    let (early, ok) = w.run(w.delivery(&name).await, on()).await;
    assert!(ok, "{early:#}");
    assert_eq!(early["outcome"], "skipped", "{early:#}");
    let reason = early["outcomeReason"].as_str().unwrap();
    assert!(reason.contains("NOT put off") && reason.contains("by hand"), "{reason}");
    assert_eq!(early["autoRelease"]["schedule"], name.as_str());
    assert!(w.account.revocation(&w.role.name).await.is_some());
    assert_eq!(w.schedules().await, [name]);
}

#[tokio::test]
async fn with_auto_release_off_a_scheduled_delivery_is_not_acted_on() {
    let w = world().await;
    let delivered = w.delivered_after_the_hold().await;

    let (refused, ok) = w.run(delivered, Config::default()).await;
    assert!(ok, "{refused:#}");
    assert_eq!(refused["outcome"], "skipped", "{refused:#}");
    assert!(
        refused["outcomeReason"]
            .as_str()
            .unwrap()
            .contains("AUTO_RELEASE is off"),
        "{refused:#}"
    );
    assert!(w.recorder.writes().is_empty(), "{:?}", w.recorder.writes());
    assert!(w.account.revocation(&w.role.name).await.is_some());
}

#[tokio::test]
async fn a_dry_run_plans_the_schedule_and_a_schedule_not_made_leaves_the_role_revoked() {
    let w = world().await;
    let instance = w.account.instance(Some(&w.role.profile_arn), &[]).await;
    let event = finding("outside-aws.json", &w.role, Some(&instance));
    let dry = Config { dry_run: true, ..on() };
    let (planned, ok) = w.run(event.clone(), dry).await;
    assert!(ok, "{planned:#}");
    assert_eq!(
        (&planned["outcome"], &planned["autoRelease"]["status"]),
        (&json!("planned"), &json!("planned"))
    );
    assert!(w.recorder.writes().is_empty() && w.schedules().await.is_empty());

    // Outside Lambda with no function to invoke named: contained all the same, and said so.
    let mut unnamed = on();
    unnamed.auto_release.as_mut().unwrap().function_arn = None;
    let (report, ok) = w
        .run(finding("outside-aws.json", &w.role, Some(&instance)), unnamed)
        .await;
    assert!(ok, "{report:#}");
    assert_eq!(
        (&report["outcome"], &report["autoRelease"]["status"]),
        (&json!("remediated"), &json!("failed"))
    );
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("NOT scheduled") && warnings.contains("by hand"),
        "{warnings}"
    );
    assert!(w.account.revocation(&w.role.name).await.is_some());
    assert!(w.schedules().await.is_empty());
}

#[tokio::test]
async fn a_members_release_is_scheduled_at_home_and_released_in_the_member_account() {
    let w = world().await;
    let member = Account::other(&w.moto, MEMBER, MEMBER_REGION).await;
    let role = member.role("WebAppRole", &[]).await;
    member.role(MEMBER_ROLE, &[]).await;
    let instance = member.instance(Some(&role.profile_arn), &[]).await;
    let config = || Config {
        member_role_name: Some(MEMBER_ROLE.into()),
        ..on()
    };
    let event = in_account(
        finding("outside-aws.json", &role, Some(&instance)),
        MEMBER,
        MEMBER_REGION,
    );
    let (contained, ok) = w.run(event, config()).await;
    assert!(ok, "{contained:#}");
    let name = contained["autoRelease"]["schedule"].as_str().unwrap();
    assert!(name.starts_with(&format!("release-{MEMBER}-")), "{name}");
    // In the administrator's own scheduler (the home account's group), naming the member.
    let delivered = w.delivery(name).await;
    assert_eq!(delivered["accountId"], MEMBER);

    member.revoked_hours_ago(&role.name, 13).await;
    let home_role_before = w.account.revocation(&w.role.name).await;
    let (released, ok) = w.run(delivered, config()).await;
    assert!(ok, "{released:#}");
    assert_eq!(released["outcome"], "released", "{released:#}");
    assert_eq!(member.revocation("WebAppRole").await, None);
    assert_eq!(w.account.revocation(&w.role.name).await, home_role_before);
}
