//! Readiness against moto, through the fault proxy: it sends reads only, each containment then
//! does to each instance what readiness said it would, and what cannot be read is named, never a
//! crash or a silent gap. The CLI prints the table and tells by its exit status.

mod support;

use std::collections::HashMap;

use exfil_responder::handle;
use serde_json::{Value, json};
use support::faults::{Fault, Rule};
use support::guardduty::GuardDuty;
use support::scene::{Scene, patient_config};
use support::*;

/// Every operation readiness may send: reads, and the member role's AssumeRole.
const READS: [&str; 11] = [
    "GetCallerIdentity",
    "AssumeRole",
    "GetAccountAuthorizationDetails",
    "GetAccountSummary",
    "GetPolicy",
    "GetPolicyVersion",
    "DescribeRegions",
    "DescribeIamInstanceProfileAssociations",
    "DescribeInstances",
    "ListDetectors",
    "GetDetector",
];

const ACTION: &str = "exfil-responder:action";
const PROFILE: &str = "exfil-responder:profile";
/// A third region, where GuardDuty is suspended.
const SUSPENDED_REGION: &str = "ap-southeast-2";

fn account(report: &Value, i: usize) -> &Value {
    &report["readiness"]["accounts"][i]
}

fn role<'a>(account: &'a Value, name: &str) -> &'a Value {
    (account["roles"].as_array().unwrap().iter())
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("role {name} not in {account:#}"))
}

fn instance<'a>(role: &'a Value, id: &str) -> &'a Value {
    (role["instances"].as_array().unwrap().iter())
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("instance {id} not in {role:#}"))
}

/// What a containment visibly did to an instance's profile: detached, re-attached through a new
/// association, or left as it was.
fn observed(before: Option<&(String, String)>, after: Option<&(String, String)>) -> &'static str {
    match (before, after) {
        (_, None) => "isolated",
        // Stranded by an interrupted cycle, and given its profile back.
        (None, Some(_)) => "cycled",
        (Some((was, _)), Some((now, _))) if was != now => "cycled",
        _ => "unchanged",
    }
}

/// The same, as readiness said it: what it foresees is only ever one of these three.
fn foreseen(experience: &str) -> &'static str {
    match experience {
        "isolated" => "isolated",
        "cycled" => "cycled",
        _ => "unchanged",
    }
}

struct Placed {
    id: String,
    ec2: aws_sdk_ec2::Client,
}

async fn associations(scene: &Scene, all: &[Placed]) -> HashMap<String, (String, String)> {
    let mut found = HashMap::new();
    for p in all {
        if let Some(a) = scene.account.association_in(&p.ec2, &p.id).await {
            found.insert(p.id.clone(), a);
        }
    }
    found
}

#[tokio::test]
async fn readiness_sends_only_reads_and_each_containment_then_does_what_it_said() {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    // WebAppRole: the instance to be named (isolate), siblings to cycle, to revoke, and with a
    // tag value nobody knows; one more far away, to cycle.
    let scene = Scene::new(&moto, &guardduty, &["isolate", "cycle", "revoke", "bogus"]).await;
    let (home, far) = (scene.account.ec2.clone(), scene.account.in_region(MEMBER_REGION));
    let sydney = scene.account.in_region(SUSPENDED_REGION);
    scene.proxy.enable_regions(&[REGION, MEMBER_REGION, SUSPENDED_REGION]);
    let web = &scene.role;
    let far_sibling = (scene.account)
        .instance_in(&far, Some(&web.profile_arn), &[(ACTION, "cycle")])
        .await;
    // Stranded by an interrupted cycle: our marker names its profile, and it holds none.
    let stranded = (scene.account)
        .instance(
            Some(&web.profile_arn),
            &[(ACTION, "cycle"), (PROFILE, &web.profile_arn)],
        )
        .await;
    let (association, _) = scene.account.association(&stranded).await.unwrap();
    (home.disassociate_iam_instance_profile())
        .association_id(association)
        .send()
        .await
        .unwrap();
    // BatchRole: cycled as its role tag says; one of its instances stopped.
    let batch = scene.account.role("BatchRole", &[(ACTION, "cycle")]).await;
    let batch_running = scene.account.instance(Some(&batch.profile_arn), &[]).await;
    let batch_stopped = scene.account.instance(Some(&batch.profile_arn), &[]).await;
    home.stop_instances().instance_ids(&batch_stopped).send().await.unwrap();
    let batch_far = (scene.account)
        .instance_in(&sydney, Some(&batch.profile_arn), &[])
        .await;
    // VaultRole: protected, so never revoked.
    let vault = (scene.account)
        .role("VaultRole", &[("exfil-responder:protected", "true")])
        .await;
    let vault_instance = scene.account.instance(Some(&vault.profile_arn), &[]).await;
    // The findings each containment answers, held by GuardDuty: its detector in the home region.
    let named = scene.expects[0].id.clone();
    let events = [
        (scene.event(&guardduty, "web"), "WebAppRole", named.clone()),
        (
            scene.event_for(&guardduty, "batch", &batch, &batch_running),
            "BatchRole",
            batch_running.clone(),
        ),
        (
            scene.event_for(&guardduty, "vault", &vault, &vault_instance),
            "VaultRole",
            vault_instance.clone(),
        ),
    ];

    // GuardDuty watches the home region; the far one has no detector; in Sydney it is suspended.
    let detector = events[0].0["detail"]["service"]["detectorId"]
        .as_str()
        .unwrap()
        .to_owned();
    guardduty.enabled(&scene.account_id, SUSPENDED_REGION, &detector);
    guardduty.suspend(SUSPENDED_REGION, &detector);

    let app = scene.app(patient_config()).await;
    let handled = handle(&app, json!({"operation": "readiness"})).await;
    let ready = report(&handled.response);
    assert!(handled.failure.is_none(), "{ready:#}");
    assert_eq!(ready["outcome"], "assessed", "{ready:#}");
    let sent: Vec<String> = scene.proxy.seen().into_iter().map(|s| s.operation).collect();
    assert!(sent.iter().any(|op| op == "GetAccountAuthorizationDetails"), "{sent:?}");
    let not_reads: Vec<&String> = sent.iter().filter(|op| !READS.contains(&op.as_str())).collect();
    assert!(not_reads.is_empty(), "readiness sent {not_reads:?}");

    let acct = account(&ready, 0);
    assert_eq!(acct["account"], scene.account_id.as_str());
    assert_eq!(acct["unread"], json!([]), "{acct:#}");
    // Sorted by outage radius: WebAppRole leaves three instances dark, for up to six hours.
    assert_eq!(acct["roles"][0]["name"], "WebAppRole", "{acct:#}");
    let w = role(acct, "WebAppRole");
    assert_eq!(
        (w["containable"].as_bool(), w["revocation"].as_str()),
        (Some(true), Some("inline"))
    );
    assert_eq!(w["radius"]["withoutCredentials"], 3, "{w:#}");
    assert_eq!(w["radius"]["hoursObserved"], 6);
    assert_eq!(w["radius"]["regions"], json!([REGION]));
    assert_eq!(w["radius"]["cycled"], 3);
    let healed = instance(w, &stranded);
    assert_eq!(healed["experience"], "cycled", "{healed:#}");
    let named_entry = instance(w, &named);
    assert_eq!(
        (&named_entry["experience"], &named_entry["ifNamed"]),
        (&json!("without-credentials"), &json!("isolated"))
    );
    assert_eq!(named_entry["source"], "instance-tag");
    assert_eq!(instance(w, &scene.expects[1].id)["experience"], "cycled");
    assert_eq!(instance(w, &scene.expects[2].id)["experience"], "without-credentials");
    let unknown = &scene.expects[3].id;
    assert_eq!(instance(w, unknown)["source"], "default");
    assert!(w["problems"].to_string().contains("\\\"bogus\\\""), "{w:#}");
    let far_entry = instance(w, &far_sibling);
    assert_eq!(
        (far_entry["region"].as_str(), far_entry["experience"].as_str()),
        (Some(MEMBER_REGION), Some("cycled"))
    );
    let b = role(acct, "BatchRole");
    assert_eq!(instance(b, &batch_running)["experience"], "cycled");
    assert_eq!(instance(b, &batch_running)["source"], "role-tag");
    assert_eq!(instance(b, &batch_stopped)["experience"], "fresh-at-start");
    assert_eq!(instance(b, &batch_far)["region"], SUSPENDED_REGION);
    let v = role(acct, "VaultRole");
    assert_eq!(
        (v["containable"].as_bool(), v["revocation"].as_str()),
        (Some(false), Some("refused"))
    );
    assert!(v["reason"].as_str().unwrap().contains("protected"), "{v:#}");
    // GuardDuty watches the home region only: the others' instances would never be reported
    // (regions in name order).
    let problems: Vec<&str> = acct["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[1].starts_with(&format!("region {MEMBER_REGION} has 1 instance(s)"))
            && problems[1].contains("no GuardDuty detector"),
        "{problems:?}"
    );
    assert!(
        problems[0].starts_with(&format!("region {SUSPENDED_REGION} has 1 instance(s)"))
            && problems[0].contains("suspended"),
        "{problems:?}"
    );
    let summary = ready["readiness"]["summary"].as_str().unwrap();
    assert!(summary.contains("| WebAppRole | inline | 3 (6) |"), "{summary}");
    assert!(summary.contains("| VaultRole | **REFUSED** |"), "{summary}");

    // Each containment does to each instance of its role what readiness said.
    let placed = |ids: &[&String], ec2: &aws_sdk_ec2::Client| -> Vec<Placed> {
        ids.iter()
            .map(|id| Placed {
                id: (*id).clone(),
                ec2: ec2.clone(),
            })
            .collect()
    };
    let mut everyone = placed(&scene.expects.iter().map(|e| &e.id).collect::<Vec<_>>(), &home);
    everyone.extend(placed(&[&batch_running, &batch_stopped, &vault_instance], &home));
    everyone.extend(placed(&[&far_sibling], &far));
    everyone.extend(placed(&[&stranded], &home));
    everyone.extend(placed(&[&batch_far], &sydney));
    for (event, role_name, named) in events {
        let before = associations(&scene, &everyone).await;
        let handled = handle(&app, event).await;
        let contained = report(&handled.response);
        assert!(handled.failure.is_none(), "{contained:#}");
        let after = associations(&scene, &everyone).await;
        let said = role(acct, role_name);
        // The role revoked where readiness said it could be, and refused where it said not.
        let containable = said["containable"].as_bool().unwrap();
        let outcome = if containable { "remediated" } else { "skipped" };
        assert_eq!(contained["outcome"], outcome, "{role_name}: {contained:#}");
        let revoked = scene.account.revocation(role_name).await.is_some();
        assert_eq!(revoked, containable, "{role_name}'s AWSRevokeOlderSessions");
        for entry in said["instances"].as_array().unwrap() {
            let id = entry["id"].as_str().unwrap();
            let experience = match id == named {
                true => entry["ifNamed"].as_str().or(entry["experience"].as_str()),
                false => entry["experience"].as_str(),
            };
            assert_eq!(
                observed(before.get(id), after.get(id)),
                foreseen(experience.unwrap()),
                "{role_name}'s instance {id}: readiness said {entry:#}, the containment reported {contained:#}"
            );
        }
    }
}

#[tokio::test]
async fn what_cannot_be_read_is_named_and_the_rest_is_still_assessed() {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let scene = Scene::new(&moto, &guardduty, &["cycle"]).await;
    scene.proxy.enable_regions(&[REGION, MEMBER_REGION, SUSPENDED_REGION]);
    // EC2 fails in the far region; an SCP denies a third (nothing can run there, so nothing is
    // missing); IAM's quotas are refused; GuardDuty throttles every ask in the home region; and
    // the member account's role cannot be assumed.
    for rule in [
        Rule::always("DescribeIamInstanceProfileAssociations", Fault::ServerError).in_region(MEMBER_REGION),
        Rule::always("DescribeIamInstanceProfileAssociations", Fault::AccessDenied).in_region(SUSPENDED_REGION),
        Rule::always("GetAccountSummary", Fault::AccessDenied),
        Rule::always("ListDetectors", Fault::Throttle).in_region(REGION),
        Rule::always("AssumeRole", Fault::AccessDenied),
    ] {
        scene.proxy.add(rule);
    }
    let config = exfil_responder::Config {
        member_role_name: Some("exfil-responder-member".into()),
        ..patient_config()
    };
    let payload = json!({"operation": "readiness", "accountIds": [scene.account_id, "999999999999"]});
    let handled = handle(&scene.app(config).await, payload).await;
    let partial = report(&handled.response);
    assert!(handled.failure.is_none(), "{partial:#}");
    assert_eq!(partial["outcome"], "assessed");

    let own = account(&partial, 0);
    let unread = own["unread"].to_string();
    for said in [
        format!("region {MEMBER_REGION}: its instances could not be read"),
        "IAM's quotas could not be read".into(),
        format!("region {REGION}: whether GuardDuty watches it could not be read"),
    ] {
        assert!(unread.contains(&said), "{said:?} not in {unread}");
    }
    assert_eq!(own["unread"].as_array().unwrap().len(), 3, "{unread}");
    let denied = own["problems"].to_string();
    assert!(
        denied.contains(&format!("region {SUSPENDED_REGION} is denied to this account"))
            && !unread.contains(SUSPENDED_REGION),
        "{denied}"
    );
    // What could be read is assessed all the same, with IAM's default quotas.
    let web = role(own, "WebAppRole");
    assert_eq!(instance(web, &scene.expects[0].id)["experience"], "cycled");
    assert_eq!(web["revocation"], "inline");
    assert_eq!(own["regions"], json!([REGION]));

    let member = account(&partial, 1);
    assert_eq!(member["account"], "999999999999");
    assert_eq!(member["roles"], json!([]));
    assert!(
        member["unread"][0]
            .as_str()
            .unwrap()
            .contains("the member role could not be assumed"),
        "{member:#}"
    );
    let summary = partial["readiness"]["summary"].as_str().unwrap();
    assert!(summary.contains("### Not read (this report is partial)"), "{summary}");
}
