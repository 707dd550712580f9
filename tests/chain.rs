//! `CHAIN`: after containment, the stolen key's trail is walked in CloudTrail and what it reached
//! is contained, against moto (IAM, STS, EC2, Scheduler) and CloudTrail's stand-in (moto has no
//! `LookupEvents`): a two-hop chain into a member account, a key the attacker created, a protected
//! role, a cycle, throttling, the follow-up walks, and hostile records.

mod support;

use chrono::{DateTime, Duration, Utc};
use exfil_responder::Config;
use exfil_responder::config::chain::FollowUps;
use exfil_responder::config::{Chain, ChainMode};
use serde_json::{Value, json};
use support::cloudtrail::{Recorded, assume_role, iam_call};
use support::*;

const HOME: &str = "123456789012";
const MEMBER: &str = "210987654321";
const REGION: &str = "us-east-1";
const MEMBER_ROLE: &str = "exfil-responder-member";
const STOLEN: &str = "ASIAQX3EXAMPLEKEY7N2";
const KEY_B: &str = "ASIABSESSION00000001";
const KEY_C: &str = "ASIACSESSION00000001";
const GROUP: &str = "exfil-responder";

fn config(mode: ChainMode) -> Config {
    Config {
        member_role_name: Some(MEMBER_ROLE.into()),
        chain: Chain {
            mode,
            schedules: Some(FollowUps {
                scheduler_role_arn: format!("arn:aws:iam::{HOME}:role/scheduler"),
                group: GROUP.into(),
                function_arn: Some(format!("arn:aws:lambda:{REGION}:{HOME}:function:exfil-responder")),
            }),
            ..Chain::off()
        },
        ..Config::default()
    }
}

struct Scene {
    w: World,
    member: Account,
    b: SeededRole,
    c: SeededRole,
}

async fn scene() -> Scene {
    let w = World::start().await;
    let b = w.account.role("RoleB", &[]).await;
    let member = Account::other(&w.moto, MEMBER, REGION).await;
    member.role(MEMBER_ROLE, &[]).await;
    let c = member.role("RoleC", &[]).await;
    aws_sdk_scheduler::Client::new(&w.sdk)
        .create_schedule_group()
        .name(GROUP)
        .send()
        .await
        .unwrap();
    Scene { w, member, b, c }
}

impl Scene {
    fn record(&self, at: (&str, &str, &str), record: Value) {
        self.record_at(at, record, Utc::now() - Duration::minutes(2));
    }

    /// `record` as CloudTrail holds it for `key` in `account` and `region`, listed at `at`, under
    /// its own `eventID`.
    fn record_at(&self, (account, region, key): (&str, &str, &str), record: Value, at: DateTime<Utc>) {
        let id = record["eventID"].as_str().unwrap_or("raw").to_owned();
        self.w.guardduty.trail().record(
            &Recorded {
                account,
                region,
                key,
                at,
                id: &id,
            },
            &record,
        );
    }

    /// The stolen key assumes RoleB here; RoleB's session assumes RoleC in the member account.
    fn two_hops(&self) {
        let at = Utc::now() - Duration::minutes(3);
        self.record(
            (HOME, REGION, STOLEN),
            assume_role(STOLEN, (HOME, REGION), (&self.b.arn, &self.b.id), KEY_B, at),
        );
        let c = assume_role(KEY_B, (HOME, "eu-west-1"), (&self.c.arn, &self.c.id), KEY_C, at);
        self.record((HOME, "eu-west-1", KEY_B), c);
    }

    async fn contain(&self, config: Config) -> Value {
        let instance = self.w.account.instance(Some(&self.w.role.profile_arn), &[]).await;
        let (report, ok) = self
            .w
            .run(finding("outside-aws.json", &self.w.role, Some(&instance)), config)
            .await;
        assert!(ok, "{report:#}");
        report
    }
}

fn children(node: &Value) -> &Vec<Value> {
    node["children"].as_array().unwrap()
}

#[tokio::test]
async fn a_two_hop_chain_into_a_member_account_is_contained_after_the_instance_role() {
    let s = scene().await;
    s.two_hops();
    let report = s.contain(config(ChainMode::Contain)).await;
    assert_eq!(report["outcome"], "remediated", "{report:#}");
    let chain = &report["chain"];
    assert_eq!(
        (chain["mode"].as_str(), chain["complete"].as_bool()),
        (Some("contain"), Some(true)),
        "{chain:#}"
    );
    let b = &children(&chain["root"])[0];
    assert_eq!(
        (b["key"].as_str(), b["action"].as_str()),
        (Some(KEY_B), Some("revoked")),
        "{b:#}"
    );
    assert_eq!(b["roleArn"], format!("arn:aws:iam::{HOME}:role/RoleB"));
    let c = &children(b)[0];
    assert_eq!(
        (c["account"].as_str(), c["action"].as_str()),
        (Some(MEMBER), Some("revoked")),
        "{c:#}"
    );
    assert!(s.w.account.revocation("RoleB").await.is_some());
    assert!(s.member.revocation("RoleC").await.is_some());
    // The instance's role first: the walk starts once its revocation is written.
    let calls = s.w.recorder.calls();
    let first_put = calls.iter().position(|c| c.starts_with("PutRolePolicy")).unwrap();
    let first_lookup = calls.iter().position(|c| c.starts_with("LookupEvents")).unwrap();
    assert!(first_put < first_lookup, "{calls:?}");
    // Two follow-ups asked for, at 15 and 60 minutes.
    let follow_ups = chain["followUps"].as_array().unwrap();
    assert_eq!(follow_ups.len(), 2, "{chain:#}");
    assert!(follow_ups.iter().all(|f| f["status"] == "scheduled"), "{follow_ups:?}");
}

#[tokio::test]
async fn a_key_the_attacker_created_is_deactivated_and_persistence_is_listed_for_a_person() {
    let s = scene().await;
    let iam = &s.w.account.iam;
    iam.create_user().user_name("backdoor").send().await.unwrap();
    let made = iam.create_access_key().user_name("backdoor").send().await.unwrap();
    let key = made.access_key.unwrap().access_key_id;
    let created = json!({"accessKey": {"accessKeyId": key, "userName": "backdoor", "status": "Active"}});
    s.record(
        (HOME, REGION, STOLEN),
        iam_call(STOLEN, HOME, "CreateAccessKey", created, Utc::now()),
    );
    s.record(
        (HOME, REGION, STOLEN),
        iam_call(STOLEN, HOME, "CreateLoginProfile", json!(null), Utc::now()),
    );
    let told = Config {
        security_hub_updates: true,
        ..config(ChainMode::Contain)
    };
    let report = s.contain(told).await;
    let chain = &report["chain"];
    let node = &children(&chain["root"])[0];
    assert_eq!(
        (node["key"].as_str(), node["action"].as_str()),
        (Some(key.as_str()), Some("deactivated")),
        "{chain:#}"
    );
    let keys = iam.list_access_keys().user_name("backdoor").send().await.unwrap();
    assert_eq!(
        keys.access_key_metadata()[0].status().map(|s| s.as_str()),
        Some("Inactive")
    );
    let attention = chain["needsAttention"].as_array().unwrap();
    assert_eq!(attention.len(), 1, "{chain:#}");
    assert_eq!(attention[0]["eventName"], "CreateLoginProfile");
    assert_eq!(attention[0]["eventId"], format!("CreateLoginProfile-{STOLEN}"));
    // Never deleted: the user keeps the key, inactive.
    assert_eq!(s.w.recorder.count("DeleteAccessKey"), 0);
    // A person must look at the login profile: Security Hub is told the finding is not resolved.
    let updates = s.w.guardduty.workflow_updates();
    assert_eq!(updates.len(), 1, "{:#}", report["securityHub"]);
    assert_eq!(updates[0].request["Workflow"]["Status"], "NOTIFIED", "{updates:?}");
}

#[tokio::test]
async fn report_mode_and_a_dry_run_change_nothing_in_the_chain() {
    let s = scene().await;
    s.two_hops();
    let report = s.contain(config(ChainMode::Report)).await;
    let b = &children(&report["chain"]["root"])[0];
    assert_eq!(b["action"], "found", "{b:#}");
    assert!(s.w.account.revocation("RoleB").await.is_none());
    let s = scene().await;
    s.two_hops();
    let dry = Config {
        dry_run: true,
        ..config(ChainMode::Contain)
    };
    let report = s.contain(dry).await;
    assert_eq!(report["outcome"], "planned");
    let b = &children(&report["chain"]["root"])[0];
    assert_eq!(b["action"], "planned", "{b:#}");
    assert!(
        report["chain"]["followUps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["status"] == "planned")
    );
    assert_eq!(s.w.recorder.writes(), Vec::<String>::new());
    assert_eq!(s.w.recorder.count("CreateSchedule"), 0);
}

#[tokio::test]
async fn a_protected_role_in_the_chain_is_refused_and_reported() {
    let s = scene().await;
    s.two_hops();
    let protected = Config {
        protected_roles: vec!["RoleB".into()],
        ..config(ChainMode::Contain)
    };
    let report = s.contain(protected).await;
    let b = &children(&report["chain"]["root"])[0];
    assert_eq!(b["action"], "refused", "{b:#}");
    assert!(b["detail"].as_str().unwrap().contains("PROTECTED_ROLES"), "{b:#}");
    assert!(s.w.account.revocation("RoleB").await.is_none());
    // The session's own trail is still read: what it reached is contained.
    assert!(s.member.revocation("RoleC").await.is_some());
}

impl Scene {
    /// `key` tags `role` (in HOME) `exfil-responder:protected=true`: IAM has the tag, and
    /// CloudTrail's record of the call is in us-east-1, where IAM's calls are logged.
    async fn protect_with(&self, key: &str, role: &str) {
        (self.w.account.iam.tag_role().role_name(role))
            .tags(
                aws_sdk_iam::types::Tag::builder()
                    .key(PROTECTED)
                    .value("true")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let at = Utc::now() - Duration::minutes(4);
        let mut call = iam_call(key, HOME, "TagRole", json!(null), at);
        call["requestParameters"] = json!({"roleName": role, "tags": [{"key": PROTECTED, "value": "true"}]});
        call["eventID"] = json!(format!("tag-{role}-{key}"));
        self.record_at((HOME, REGION, key), call, at);
    }
}

const PROTECTED: &str = "exfil-responder:protected";

/// The stolen key tagged its own role protected before the finding arrived: the tag is not
/// honoured, the role is contained, and the report names the record. Tagged by anyone else, the
/// role is refused as before.
#[tokio::test]
async fn a_protection_tag_the_stolen_key_wrote_is_not_honoured() {
    let s = scene().await;
    s.protect_with(STOLEN, &s.w.role.name).await;
    let report = s.contain(config(ChainMode::Contain)).await;
    assert_eq!(report["outcome"], "remediated", "{report:#}");
    assert!(s.w.account.revocation(&s.w.role.name).await.is_some());
    let warned = report["warnings"].to_string();
    assert!(
        warned.contains(&format!(
            "tag {PROTECTED} was written or removed by a key of this incident"
        )) && warned.contains(&format!("tag-{}-{STOLEN}", s.w.role.name)),
        "{warned}"
    );
    // The TagRole record is also listed for a person.
    let attention = report["chain"]["needsAttention"].to_string();
    assert!(attention.contains("TagRole"), "{attention}");

    // Another key's tag on RoleB stands: RoleB is protected, the walk refuses it.
    let s = scene().await;
    s.two_hops();
    s.protect_with("ASIAADMINISTRATOR001", "RoleB").await;
    let report = s.contain(config(ChainMode::Contain)).await;
    let b = &children(&report["chain"]["root"])[0];
    assert_eq!(b["action"], "refused", "{b:#}");
    assert!(s.w.account.revocation("RoleB").await.is_none());

    // Another key's tag on the instance's own role stands, and the report says why.
    let s = scene().await;
    s.protect_with("ASIAADMINISTRATOR001", &s.w.role.name).await;
    let instance = s.w.account.instance(Some(&s.w.role.profile_arn), &[]).await;
    let event = finding("outside-aws.json", &s.w.role, Some(&instance));
    let (report, ok) = s.w.run(event, config(ChainMode::Contain)).await;
    assert!(ok, "{report:#}");
    assert_eq!(report["outcome"], "skipped", "{report:#}");
    assert!(s.w.account.revocation(&s.w.role.name).await.is_none());
    let warned = report["warnings"].to_string();
    assert!(
        warned.contains("was honoured: CloudTrail shows no key of this incident writing it"),
        "{warned}"
    );
}

/// The stolen key floods TagRole on its own role (other tags) to push the call that protected it
/// past what is read before the write: once the key is seen tagging the role and not every tag
/// call is read, the role's protection is not honoured.
#[tokio::test]
async fn a_key_that_floods_tag_calls_on_its_role_loses_the_roles_protection() {
    let s = scene().await;
    s.protect_with("ASIAADMINISTRATOR001", &s.w.role.name).await;
    let first = Utc::now() - Duration::minutes(3);
    for n in 0..201 {
        let at = first + Duration::milliseconds(500 * n);
        let mut call = iam_call(STOLEN, HOME, "TagRole", json!(null), at);
        call["requestParameters"] =
            json!({"roleName": s.w.role.name, "tags": [{"key": "noise", "value": n.to_string()}]});
        call["eventID"] = json!(format!("flood-{n}"));
        s.record_at((HOME, REGION, STOLEN), call, at);
    }
    let report = s.contain(config(ChainMode::Contain)).await;
    assert_eq!(report["outcome"], "remediated", "{report:#}");
    assert!(s.w.account.revocation(&s.w.role.name).await.is_some());
    let warned = report["warnings"].to_string();
    assert!(warned.contains("not all its tag calls were read"), "{warned}");
}

/// A key of the chain tagged a role it then assumed: the walk contains it anyway.
#[tokio::test]
async fn a_protection_tag_a_key_of_the_chain_wrote_on_a_role_it_reached_is_not_honoured() {
    let s = scene().await;
    s.two_hops();
    s.protect_with(STOLEN, "RoleB").await;
    let report = s.contain(config(ChainMode::Contain)).await;
    let b = &children(&report["chain"]["root"])[0];
    assert_eq!(b["action"], "revoked", "{b:#}");
    assert!(b["detail"].as_str().unwrap().contains("not honoured"), "{b:#}");
    assert!(s.w.account.revocation("RoleB").await.is_some());
}

/// CloudTrail's `eventTime` is whole seconds: a session recorded at 10:00:07Z may have been issued
/// after a cut-off at 10:00:07.500Z, which therefore does not cover it.
#[tokio::test]
async fn a_cutoff_within_the_second_of_the_assume_role_does_not_cover_its_session() {
    use chrono::SubsecRound;
    let s = scene().await;
    let at = (Utc::now() - Duration::minutes(3)).trunc_subsecs(0);
    s.record(
        (HOME, REGION, STOLEN),
        assume_role(STOLEN, (HOME, REGION), (&s.b.arn, &s.b.id), KEY_B, at),
    );
    let within = exfil_responder::policy::document(at + Duration::milliseconds(500));
    s.w.account.put_revocation("RoleB", &within).await;
    let report = s.contain(config(ChainMode::Contain)).await;
    let b = &children(&report["chain"]["root"])[0];
    assert_eq!(b["action"], "revoked", "{b:#}");
    let in_force = s.w.account.cutoff_in_force("RoleB").await.unwrap();
    assert!(in_force >= at + Duration::seconds(1), "{in_force}");
}

#[tokio::test]
async fn a_cycle_in_the_trail_terminates() {
    let s = scene().await;
    let at = Utc::now() - Duration::minutes(3);
    let role = (s.w.role.arn.as_str(), s.w.role.id.as_str());
    s.record(
        (HOME, REGION, STOLEN),
        assume_role(STOLEN, (HOME, REGION), (&s.b.arn, &s.b.id), KEY_B, at),
    );
    // RoleB's session assumes the instance's role, whose session assumes RoleB with the same key.
    s.record(
        (HOME, REGION, KEY_B),
        assume_role(KEY_B, (HOME, REGION), role, "ASIAAAGAIN0000000001", at),
    );
    s.record(
        (HOME, REGION, "ASIAAAGAIN0000000001"),
        assume_role("ASIAAAGAIN0000000001", (HOME, REGION), (&s.b.arn, &s.b.id), KEY_B, at),
    );
    let report = s.contain(config(ChainMode::Contain)).await;
    let b = &children(&report["chain"]["root"])[0];
    let a = &children(b)[0];
    assert_eq!(a["action"], "already-revoked", "{a:#}");
    let back = &children(a)[0];
    assert_eq!(
        (back["key"].as_str(), back["action"].as_str()),
        (Some(KEY_B), Some("seen")),
        "{back:#}"
    );
    assert!(children(back).is_empty());
}

#[tokio::test]
async fn cloudtrail_throttling_is_retried_within_its_rate() {
    let s = scene().await;
    s.two_hops();
    s.w.guardduty.trail().throttle(3);
    let report = s.contain(config(ChainMode::Contain)).await;
    assert_eq!(report["chain"]["complete"], true, "{:#}", report["chain"]);
    assert!(s.member.revocation("RoleC").await.is_some());
    let mut asked = s.w.guardduty.trail().asked();
    asked.sort_by_key(|(account, region, at)| (account.clone(), region.clone(), *at));
    let mut retried = 0;
    for pair in asked.windows(2) {
        let ((a1, r1, t1), (a2, r2, t2)) = (&pair[0], &pair[1]);
        if (a1, r1) == (a2, r2) {
            retried += 1;
            let gap = t2.duration_since(*t1);
            assert!(
                gap >= std::time::Duration::from_millis(450),
                "{a1} {r1}: {gap:?} between requests"
            );
        }
    }
    assert!(retried >= 3, "{asked:?}");
}

#[tokio::test]
async fn an_empty_trail_at_first_is_found_by_the_follow_up_which_writes_once() {
    let s = scene().await;
    let report = s.contain(config(ChainMode::Contain)).await;
    assert!(children(&report["chain"]["root"]).is_empty(), "{:#}", report["chain"]);
    let name = report["chain"]["followUps"][0]["schedule"].as_str().unwrap().to_owned();
    let schedule = aws_sdk_scheduler::Client::new(&s.w.sdk)
        .get_schedule()
        .group_name(GROUP)
        .name(&name)
        .send()
        .await
        .unwrap();
    let input: Value = serde_json::from_str(schedule.target().unwrap().input().unwrap()).unwrap();
    assert_eq!(
        (input["operation"].as_str(), input["schedule"].as_str()),
        (Some("follow-up"), Some(name.as_str()))
    );
    // CloudTrail delivers the trail since.
    s.two_hops();
    s.w.recorder.clear();
    let (first, ok) = s.w.run(input.clone(), config(ChainMode::Contain)).await;
    assert!(ok, "{first:#}");
    assert_eq!(first["outcome"], "remediated", "{first:#}");
    assert!(s.w.account.revocation("RoleB").await.is_some());
    assert!(s.member.revocation("RoleC").await.is_some());
    let writes = s.w.recorder.writes();
    assert_eq!(
        writes.iter().filter(|w| w.starts_with("PutRolePolicy")).count(),
        2,
        "{writes:?}"
    );
    // Scheduler delivers at least once: the same follow-up again writes nothing.
    s.w.recorder.clear();
    let (again, ok) = s.w.run(input, config(ChainMode::Contain)).await;
    assert!(ok, "{again:#}");
    assert_eq!(again["outcome"], "already-remediated", "{again:#}");
    assert_eq!(s.w.recorder.writes(), Vec::<String>::new());
}

/// A follow-up naming a contained role and a key its containment did not revoke: the key's
/// trail says it assumed RoleB, yet nothing is walked or written.
#[tokio::test]
async fn a_follow_up_for_a_key_the_roles_record_does_not_hold_acts_on_nothing() {
    let s = scene().await;
    s.contain(config(ChainMode::Contain)).await;
    const OTHER: &str = "ASIAOTHERPRINCIPAL01";
    let at = Utc::now() - Duration::minutes(3);
    s.record(
        (HOME, REGION, OTHER),
        assume_role(OTHER, (HOME, REGION), (&s.b.arn, &s.b.id), KEY_B, at),
    );
    let mut payload = support::event_file("chain-follow-up.json");
    payload["accessKeyId"] = json!(OTHER);
    payload["dryRun"] = json!(false);
    s.w.recorder.clear();
    let (report, ok) = s.w.run(payload.clone(), config(ChainMode::Contain)).await;
    assert!(ok, "{report:#}");
    assert_skipped_without_writes(
        &report,
        &s.w.recorder,
        "not in role WebAppRole's record of revoked keys",
    );
    assert!(s.w.account.revocation("RoleB").await.is_none());
    // The key the containment revoked stands: its follow-up walks (and finds nothing of OTHER's).
    payload["accessKeyId"] = json!(STOLEN);
    let (report, ok) = s.w.run(payload, config(ChainMode::Contain)).await;
    assert!(ok, "{report:#}");
    assert!(children(&report["chain"]["root"]).is_empty(), "{report:#}");
}

/// An attacker's script goes on calling: 1,100 calls after the `AssumeRole` it made first, 23
/// pages newest first. The walk reads every page and finds it (it read 20 pages at most before).
#[tokio::test]
async fn an_assume_role_buried_under_a_thousand_later_calls_is_found() {
    let s = scene().await;
    let first = Utc::now() - Duration::minutes(10);
    s.record(
        (HOME, REGION, STOLEN),
        assume_role(STOLEN, (HOME, REGION), (&s.b.arn, &s.b.id), KEY_B, first),
    );
    for n in 0..1_100 {
        let at = first + Duration::milliseconds(400 * (n + 1));
        let mut call = iam_call(STOLEN, HOME, "ListRoles", json!(null), at);
        call["eventID"] = json!(format!("noise-{n}"));
        s.record_at((HOME, REGION, STOLEN), call, at);
    }
    let report = s.contain(config(ChainMode::Contain)).await;
    let chain = &report["chain"];
    assert_eq!(chain["complete"], true, "{:#}", chain["unread"]);
    let b = &children(&chain["root"])[0];
    assert_eq!(
        (b["key"].as_str(), b["action"].as_str()),
        (Some(KEY_B), Some("revoked")),
        "{b:#}"
    );
    assert!(s.w.account.revocation("RoleB").await.is_some());
    let read = &chain["root"]["read"];
    assert_eq!(read["events"], 1_101, "{read:#}");
    // 23 pages here, and one in each other region (RoleB's session key made no call: one page
    // in each region).
    let regions = b["read"]["pages"].as_u64().unwrap();
    assert_eq!(read["pages"].as_u64(), Some(22 + regions), "{read:#}");
}

#[tokio::test]
async fn a_follow_up_for_a_role_never_contained_acts_on_nothing() {
    let s = scene().await;
    s.two_hops();
    let mut payload = support::event_file("chain-follow-up.json");
    payload["accessKeyId"] = json!(STOLEN);
    payload["roleName"] = json!("RoleB");
    let (report, ok) = s.w.run(payload, config(ChainMode::Contain)).await;
    assert!(ok, "{report:#}");
    assert_skipped_without_writes(&report, &s.w.recorder, "holds no revocation");
}

#[tokio::test]
async fn hostile_records_are_skipped_with_the_reason_and_write_nothing() {
    let s = scene().await;
    let at = Utc::now() - Duration::minutes(3);
    let good = assume_role(STOLEN, (HOME, REGION), (&s.b.arn, &s.b.id), KEY_B, at);
    let trail = s.w.guardduty.trail();
    let at_home = |id: &'static str| Recorded {
        account: HOME,
        region: REGION,
        key: STOLEN,
        at,
        id,
    };
    trail.record_raw(&at_home("truncated"), &good.to_string()[..60]);
    let mut wrong_type = good.clone();
    wrong_type["requestParameters"]["roleArn"] = json!(["arn"]);
    wrong_type["eventID"] = json!("wrong-type");
    trail.record(&at_home("wrong-type"), &wrong_type);
    let mut elsewhere = good.clone();
    elsewhere["recipientAccountId"] = json!("333333333333");
    elsewhere["eventID"] = json!("elsewhere");
    trail.record(&at_home("elsewhere"), &elsewhere);
    let mut other_session = good.clone();
    other_session["responseElements"]["assumedRoleUser"]["arn"] =
        json!(format!("arn:aws:sts::{MEMBER}:assumed-role/RoleC/x"));
    other_session["eventID"] = json!("other-session");
    trail.record(&at_home("other-session"), &other_session);
    let mut look_alike = good.clone();
    look_alike["eventSource"] = json!("sts.amazonaws.com.attacker.example");
    look_alike["eventID"] = json!("look-alike");
    trail.record(&at_home("look-alike"), &look_alike);
    let report = s.contain(config(ChainMode::Contain)).await;
    let chain = &report["chain"];
    assert!(children(&chain["root"]).is_empty(), "{chain:#}");
    let skipped: Vec<&str> = chain["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(skipped.len(), 4, "{skipped:#?}");
    for reason in ["not JSON", "no roleArn", "not 123456789012", "answered a session of"] {
        assert!(skipped.iter().any(|s| s.contains(reason)), "{reason}: {skipped:#?}");
    }
    assert!(s.w.account.revocation("RoleB").await.is_none());
    // The instance's role's revocation alone.
    assert_eq!(s.w.recorder.count("PutRolePolicy"), 1, "{:?}", s.w.recorder.writes());
}
