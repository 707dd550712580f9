//! The other doors a finding comes through, end to end against moto and the GuardDuty stand-in:
//! Security Hub's imported findings (ASFF) and custom action, Security Hub v2 (OCSF), GuardDuty's
//! attack sequences, and Cloud Custodian's `invoke-lambda`. Each is verified with GuardDuty's own
//! copy (or fetched from it) and contained by the same rules as GuardDuty's own event.

mod support;

use exfil_responder::Config;
use serde_json::{Value, json};
use support::securityhub::{asff, attack_sequence, custodian, ocsf, security_hub_event};
use support::*;

const IMPORTED: &str = "Security Hub Findings - Imported";
const CUSTOM_ACTION: &str = "Security Hub Findings - Custom Action";
const KEY: &str = "exfil-responder:action";

impl World {
    /// A `cycle` instance of `role` and GuardDuty's finding about it, held by the stand-in.
    async fn held_finding(&self, role: &SeededRole, file: &str, id: &str) -> (String, Value) {
        let instance = self.account.instance(Some(&role.profile_arn), &[(KEY, "cycle")]).await;
        let event = with_id(finding(file, role, Some(&instance)), id);
        self.guardduty.publish(&event);
        (instance, event)
    }
}

fn reports(response: &Value) -> Vec<Value> {
    response["reports"]
        .as_array()
        .unwrap_or_else(|| panic!("not a batch: {response:#}"))
        .clone()
}

#[tokio::test]
async fn an_imported_finding_is_confirmed_by_guardduty_and_contained() {
    let w = World::start().await;
    let (instance, event) = w
        .held_finding(&w.role, "outside-aws.json", "7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b")
        .await;

    let (report, ok) = w
        .run(security_hub_event(IMPORTED, vec![asff(&event)]), Config::default())
        .await;

    assert!(ok, "{report:#}");
    assert_eq!(report["outcome"], "remediated", "{report:#}");
    assert_eq!(report["finding"]["source"], "securityhub");
    assert_eq!(report["verification"], "confirmed");
    assert_eq!(w.recorder.count("GetFindings"), 1);
    assert!(w.account.revocation(&w.role.name).await.is_some());
    let (_, profile) = w.account.association(&instance).await.unwrap();
    assert_eq!(profile, w.role.profile_arn, "cycled, not isolated");
}

#[tokio::test]
async fn with_verification_off_what_asff_carries_is_acted_on_and_guardduty_is_not_asked() {
    let w = World::start().await;
    let instance = w.account.instance(Some(&w.role.profile_arn), &[(KEY, "cycle")]).await;
    let event = finding("outside-aws.json", &w.role, Some(&instance));
    let config = Config {
        verify_findings: false,
        ..Config::default()
    };

    let (report, ok) = w.run(security_hub_event(IMPORTED, vec![asff(&event)]), config).await;

    assert!(ok, "{report:#}");
    assert_eq!(
        (report["outcome"].as_str(), report["verification"].as_str()),
        (Some("remediated"), Some("off"))
    );
    assert_eq!(w.recorder.count("GetFindings"), 0);
    assert_eq!(report["instances"][0]["instanceId"], instance.as_str(), "{report:#}");
}

#[tokio::test]
async fn a_custom_action_on_three_findings_gives_three_reports_and_refuses_the_forged_one() {
    let w = World::start().await;
    let other = w.account.role("OtherRole", &[]).await;
    let (_, first) = w
        .held_finding(&w.role, "outside-aws.json", "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a")
        .await;
    let (_, second) = w
        .held_finding(&other, "inside-aws.json", "2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b")
        .await;
    // Forged: the role is real, GuardDuty holds no such finding.
    let victim = w.account.role("PaymentsRole", &[]).await;
    let forged = with_id(
        finding("outside-aws.json", &victim, None),
        "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c",
    );

    let payload = security_hub_event(CUSTOM_ACTION, vec![asff(&first), asff(&second), asff(&forged)]);
    let (response, ok) = w.run(payload, Config::default()).await;

    assert!(ok, "{response:#}");
    let reports = reports(&response);
    let outcomes: Vec<&str> = reports.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["remediated", "remediated", "refused"], "{response:#}");
    assert!(
        reports[2]["outcomeReason"]
            .as_str()
            .unwrap()
            .contains("GuardDuty has no finding")
    );
    assert!(w.account.revocation(&w.role.name).await.is_some());
    assert!(w.account.revocation(&other.name).await.is_some());
    assert!(
        w.account.revocation(&victim.name).await.is_none(),
        "nothing written for the forged one"
    );
}

#[tokio::test]
async fn another_products_finding_is_skipped_and_nothing_is_written() {
    let w = World::start().await;
    let payload = event_file("securityhub-custom-action.json");
    let inspector_only = security_hub_event(CUSTOM_ACTION, vec![payload["detail"]["findings"][1].clone()]);

    let (report, ok) = w.run(inspector_only, Config::default()).await;

    assert!(ok, "{report:#}");
    assert_eq!(report["outcome"], "skipped", "{report:#}");
    assert!(
        report["outcomeReason"]
            .as_str()
            .unwrap()
            .contains("a finding of Inspector")
    );
    assert_eq!(w.recorder.calls(), Vec::<String>::new(), "not even a read");
}

#[tokio::test]
async fn an_ocsf_finding_is_fetched_from_guardduty_and_contained() {
    let w = World::start().await;
    let (instance, event) = w
        .held_finding(&w.role, "outside-aws.json", "7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b")
        .await;

    let (report, ok) = w
        .run(
            security_hub_event("Findings Imported V2", vec![ocsf(&event)]),
            Config::default(),
        )
        .await;

    assert!(ok, "{report:#}");
    assert_eq!(report["outcome"], "remediated", "{report:#}");
    assert_eq!(
        (report["finding"]["source"].as_str(), report["verification"].as_str()),
        (Some("securityhub"), Some("fetched"))
    );
    assert_eq!(
        report["instances"][0]["instanceId"],
        instance.as_str(),
        "the instance is GuardDuty's to name"
    );
    assert!(w.account.revocation(&w.role.name).await.is_some());
}

#[tokio::test]
async fn an_attack_sequence_naming_two_roles_contains_both_under_the_sequence() {
    let w = World::start().await;
    let batch = w.account.role("BatchRole", &[]).await;
    let (_, web) = w
        .held_finding(&w.role, "outside-aws.json", "4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d")
        .await;
    let (_, jobs) = w
        .held_finding(&batch, "inside-aws.json", "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e")
        .await;

    let (response, ok) = w.run(attack_sequence(&[&web, &jobs]), Config::default()).await;

    assert!(ok, "{response:#}");
    let reports = reports(&response);
    assert_eq!(reports.len(), 2, "{response:#}");
    for (report, role) in reports.iter().zip([&w.role.name, &batch.name]) {
        assert_eq!(report["outcome"], "remediated", "{report:#}");
        assert_eq!(report["role"]["name"], role.as_str(), "{report:#}");
        assert_eq!(report["finding"]["attackSequence"], "a1b2c3d4e5f60718293a4b5c6d7e8f90");
        assert!(w.account.revocation(role).await.is_some(), "{role}");
    }
}

#[tokio::test]
async fn custodian_hands_over_a_finding_event_or_instances_and_each_is_contained() {
    let w = World::start().await;
    let (_, event) = w
        .held_finding(&w.role, "outside-aws.json", "6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f")
        .await;
    let (report, ok) = w.run(custodian(Some(&event), json!([])), Config::default()).await;
    assert!(ok, "{report:#}");
    assert_eq!(
        (report["outcome"].as_str(), report["verification"].as_str()),
        (Some("remediated"), Some("confirmed"))
    );

    let other = w.account.role("OtherRole", &[]).await;
    let instance = w.account.instance(Some(&other.profile_arn), &[(KEY, "cycle")]).await;
    let (report, ok) = w
        .run(custodian(None, json!([{"InstanceId": instance}])), Config::default())
        .await;
    assert!(ok, "{report:#}");
    assert_eq!(report["outcome"], "remediated", "{report:#}");
    assert_eq!(report["finding"]["source"], "custodian");
    assert!(
        report["requestReason"]
            .as_str()
            .unwrap()
            .contains("contain-exfiltrated-credentials")
    );
    assert!(w.account.revocation(&other.name).await.is_some());
    // The periodic policy runs again: the instance was cycled against that revocation since, and
    // the envelope carries no sighting of a later theft. Nothing changes, and the report says so.
    let cutoff = w.account.cutoff_in_force(&other.name).await;
    w.recorder.clear();
    let (again, ok) = w
        .run(custodian(None, json!([{"InstanceId": instance}])), Config::default())
        .await;
    assert!(ok, "{again:#}");
    assert_eq!(again["outcome"], "already-remediated", "{again:#}");
    assert_eq!(w.recorder.writes(), Vec::<String>::new());
    assert_eq!(w.account.cutoff_in_force(&other.name).await, cutoff);
    assert!(
        again.to_string().contains("periodic Cloud Custodian delivery"),
        "{again:#}"
    );

    // Another account's instance, which no finding vouches for: not acted on, even reachable.
    let member = Account::other(&w.moto, MEMBER, MEMBER_REGION).await;
    let theirs = member.role("TheirRole", &[]).await;
    member.role(MEMBER_ROLE, &[]).await;
    let elsewhere = member.instance(Some(&theirs.profile_arn), &[(KEY, "cycle")]).await;
    let mut payload = custodian(None, json!([{"InstanceId": elsewhere}]));
    payload["account_id"] = MEMBER.into();
    payload["region"] = MEMBER_REGION.into();
    w.recorder.clear();
    let config = Config {
        member_role_name: Some(MEMBER_ROLE.into()),
        ..Config::default()
    };
    let (report, ok) = w.run(payload, config).await;
    assert!(ok, "{report:#}");
    assert_eq!(report["outcome"], "skipped", "{report:#}");
    assert!(report["outcomeReason"].as_str().unwrap().contains("own account only"));
    assert_eq!(w.recorder.writes(), Vec::<String>::new());
    assert!(member.revocation("TheirRole").await.is_none());
}

#[tokio::test]
async fn a_members_finding_through_security_hub_is_contained_in_the_member_account() {
    let w = World::start().await;
    let member = Account::other(&w.moto, MEMBER, MEMBER_REGION).await;
    let role = member.role("WebAppRole", &[]).await;
    member.role(MEMBER_ROLE, &[]).await;
    let instance = member.instance(Some(&role.profile_arn), &[(KEY, "cycle")]).await;
    let event = in_account(
        finding("outside-aws.json", &role, Some(&instance)),
        MEMBER,
        MEMBER_REGION,
    );
    w.guardduty.publish(&event);
    let config = || Config {
        member_role_name: Some(MEMBER_ROLE.into()),
        ..Config::default()
    };
    let admin_before = w.account.snapshot(&w.role.name, &[]).await;

    for payload in [
        security_hub_event(IMPORTED, vec![asff(&event)]),
        security_hub_event("Findings Imported V2", vec![ocsf(&event)]),
    ] {
        let (report, ok) = w.run(payload, config()).await;
        assert!(ok, "{report:#}");
        assert!(
            ["remediated", "already-remediated"].contains(&report["outcome"].as_str().unwrap()),
            "{report:#}"
        );
        assert_eq!(report["finding"]["accountId"], MEMBER, "{report:#}");
        assert_eq!(
            report["memberSession"]["roleArn"],
            format!("arn:aws:iam::{MEMBER}:role/{MEMBER_ROLE}")
        );
    }
    assert!(member.revocation("WebAppRole").await.is_some());
    assert_eq!(
        w.account.snapshot(&w.role.name, &[]).await,
        admin_before,
        "nothing at home"
    );
}
