//! What AWS does that the emulators do not show on their own: a role whose inline policy quota is
//! full, the organisation's administrator account, every region of an account, a key stolen
//! again, and EC2's request throttling. Each against moto, with the GuardDuty stand-in and the
//! fault proxy where AWS's answer has to be injected (moto enforces neither IAM's inline quota nor
//! EC2's throttling).

mod support;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use exfil_responder::handle;
use exfil_responder::revoked_keys::TAG;
use support::faults::{Fault, Rule, Throttling};
use support::guardduty::GuardDuty;
use support::scene::{Scene, first_seen, patient_config};
use support::*;

#[tokio::test]
async fn a_full_inline_quota_contains_through_the_managed_fallback_which_the_next_delivery_recognises() {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let scene = Scene::new(&moto, &guardduty, &["cycle", "cycle"]).await;
    scene.proxy.add(Rule::always("PutRolePolicy", Fault::LimitExceeded));
    let event = scene.event(&guardduty, "quota-full");

    let first = handle(&scene.app(patient_config()).await, event.clone()).await;
    let report1 = report(&first.response);
    assert!(first.failure.is_none(), "{report1:#}");
    assert_eq!(report1["outcome"], "remediated");
    assert_eq!(report1["cutoff"]["status"], "written");
    let arn = format!(
        "arn:aws:iam::{}:policy/exfil-responder/AWSRevokeOlderSessions-WebAppRole",
        scene.account_id
    );
    assert_eq!(
        report1["cutoff"]["policy"],
        serde_json::json!({"kind": "managed", "arn": arn}),
        "the report says which document holds the revocation"
    );
    assert_eq!(scene.account.revocation("WebAppRole").await, None, "no inline policy");
    assert_eq!(fallback_arns(&scene.account, "WebAppRole").await, vec![arn.clone()]);
    let in_force = scene.account.cutoff_in_force("WebAppRole").await.unwrap();
    assert_eq!(
        report1["cutoff"]["at"],
        in_force.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    // Both instances re-attached after the fallback's cut-off, nothing else changed.
    assert_eq!(scene.violations(&[first_seen(&event)]).await, vec![]);

    let writes = || ["PutRolePolicy", "CreatePolicy", "AttachRolePolicy"].map(|op| scene.proxy.count(op));
    let before = writes();
    let second = handle(&scene.app(patient_config()).await, event.clone()).await;
    let report2 = report(&second.response);
    assert!(second.failure.is_none(), "{report2:#}");
    assert_eq!(report2["outcome"], "already-remediated", "{report2:#}");
    assert_eq!(report2["cutoff"]["status"], "existing");
    assert_eq!(report2["cutoff"]["policy"]["arn"], arn.as_str());
    assert_eq!(
        writes(),
        before,
        "the fallback's cut-off is recognised, not written again"
    );
}

/// The victim in the finding's region, a `cycle` sibling in another: the scene, that region's
/// client, and the sibling.
async fn with_a_sibling_elsewhere(moto: &Moto, guardduty: &GuardDuty) -> (Scene, aws_sdk_ec2::Client, String) {
    let scene = Scene::new(moto, guardduty, &["cycle"]).await;
    let elsewhere = scene.account.in_region(MEMBER_REGION);
    let tags = [("exfil-responder:action", "cycle")];
    let sibling = (scene.account)
        .instance_in(&elsewhere, Some(&scene.role.profile_arn), &tags)
        .await;
    (scene, elsewhere, sibling)
}

#[tokio::test]
async fn the_revocation_is_global_so_siblings_in_another_region_are_cycled_after_the_cutoff() {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let (scene, elsewhere, sibling) = with_a_sibling_elsewhere(&moto, &guardduty).await;
    let (before, _) = scene.account.association_in(&elsewhere, &sibling).await.unwrap();
    let event = scene.event(&guardduty, "two-regions");

    let handled = handle(&scene.app(patient_config()).await, event.clone()).await;
    let report = report(&handled.response);
    assert!(handled.failure.is_none(), "{report:#}");
    assert_eq!(report["outcome"], "remediated");
    let cutoff = scene.account.cutoff_in_force("WebAppRole").await.unwrap();
    assert_eq!(
        scene.violations(&[first_seen(&event)]).await,
        vec![],
        "the named instance"
    );
    // The other region's sibling holds its profile again, through an association made after the
    // cut-off, and the report says where it runs.
    let (after, profile) = scene.account.association_in(&elsewhere, &sibling).await.unwrap();
    assert_eq!(profile, scene.role.profile_arn);
    assert_ne!(after, before, "re-attached through a new association");
    let made = scene.proxy.associated_at(&after).expect("associated through the proxy");
    assert!(made >= cutoff, "associated at {made}, before the cut-off {cutoff}");
    let entry = report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["instanceId"] == sibling.as_str())
        .unwrap_or_else(|| panic!("{sibling} not reported: {report:#}"));
    assert_eq!(entry["region"], MEMBER_REGION);
    assert_eq!(entry["relation"], "sibling");
    assert_eq!(report["instances"][0]["region"], REGION);
    let tags = scene.account.tags_in(&elsewhere, &sibling).await;
    assert!(tags.contains_key("exfil-responder:cycled-at"), "{tags:?}");
}

/// Each region cycles on its own: the named instance's profile is re-attached while another
/// region (here, one that does not answer until released: as far away as can be) has not even
/// listed its associations; that region's sibling is cycled once it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_named_instance_is_cycled_while_another_region_has_not_answered() {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let (scene, elsewhere, sibling) = with_a_sibling_elsewhere(&moto, &guardduty).await;
    scene
        .proxy
        .add(Rule::always("DescribeIamInstanceProfileAssociations", Fault::Hold).in_region(MEMBER_REGION));
    let event = scene.event(&guardduty, "far-region-held");
    let first = first_seen(&event);
    let app = scene.app(patient_config()).await;
    let running = tokio::spawn(async move { handle(&app, event).await });

    tokio::task::block_in_place(|| scene.proxy.wait_for("AssociateIamInstanceProfile", REGION));
    let unanswered = |s: &support::faults::Seen| {
        s.operation == "DescribeIamInstanceProfileAssociations" && s.region == MEMBER_REGION && s.answered.is_none()
    };
    let seen = scene.proxy.seen();
    assert!(
        seen.iter().any(unanswered),
        "the other region had answered before the named instance was re-attached"
    );
    assert!(
        !seen
            .iter()
            .any(|s| s.operation == "CreateTags" && s.region == MEMBER_REGION),
        "nothing was written in a region not yet read"
    );

    scene.proxy.heal();
    let handled = running.await.unwrap();
    let report = report(&handled.response);
    assert!(handled.failure.is_none(), "{report:#}");
    assert_eq!(report["outcome"], "remediated");
    let cutoff = scene.account.cutoff_in_force("WebAppRole").await.unwrap();
    assert_eq!(scene.violations(&[first]).await, vec![], "the named instance");
    let (after, profile) = scene.account.association_in(&elsewhere, &sibling).await.unwrap();
    assert_eq!(profile, scene.role.profile_arn);
    let made = scene.proxy.associated_at(&after).expect("associated through the proxy");
    assert!(made >= cutoff, "associated at {made}, before the cut-off {cutoff}");
}

#[tokio::test]
async fn a_named_instance_found_in_no_region_needs_attention() {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let scene = Scene::new(&moto, &guardduty, &["cycle"]).await;
    let mut event = scene.event(&guardduty, "missing-instance");
    let gone = "i-0fedcba9876543210";
    event["detail"]["resource"]["instanceDetails"]["instanceId"] = gone.into();
    event["detail"]["resource"]["accessKeyDetails"]["principalId"] = format!("{}:{gone}", scene.role.id).into();
    guardduty.publish(&event);

    let handled = handle(&scene.app(patient_config()).await, event).await;
    let report = report(&handled.response);
    assert_eq!(report["outcome"], "remediated", "{report:#}");
    let named = &report["instances"][0];
    assert_eq!(named["instanceId"], gone);
    assert_eq!(named["needsAttention"], true, "{report:#}");
    assert!(named["result"].as_str().unwrap().contains("enabled regions"), "{named}");
}

#[tokio::test]
async fn a_key_stolen_again_after_the_revocation_is_revoked_again_and_a_dead_one_is_not() {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let scene = Scene::new(&moto, &guardduty, &["cycle", "cycle"]).await;
    let event = scene.event(&guardduty, "stolen-again");
    let stolen = event["detail"]["resource"]["accessKeyDetails"]["accessKeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let millis = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let run = |event: serde_json::Value| {
        guardduty.publish(&event);
        let scene = &scene;
        async move {
            let handled = handle(&scene.app(patient_config()).await, event).await;
            let report = report(&handled.response);
            assert!(handled.failure.is_none(), "{report:#}");
            report
        }
    };
    let record = || async { scene.account.role_tags("WebAppRole").await.remove(TAG) };

    let first = run(event.clone()).await;
    assert_eq!(first["outcome"], "remediated", "{first:#}");
    let cutoff1 = scene.account.cutoff_in_force("WebAppRole").await.unwrap();
    assert_eq!(record().await, Some(format!("{} {stolen}", millis(cutoff1))));

    // GuardDuty folds a second key, used after the cut-off (the instances' fresh credentials,
    // stolen again), into the same finding: its first sighting is still covered.
    let again_key = "ASIANEWSTOLENKEY0002";
    let mut again = event.clone();
    again["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = again_key.into();
    again["detail"]["service"]["eventLastSeen"] = millis(cutoff1 + Duration::milliseconds(1)).into();
    let second = run(again.clone()).await;
    assert_eq!(second["outcome"], "remediated", "{second:#}");
    assert_eq!(second["cutoff"]["status"], "written");
    let cutoff2 = scene.account.cutoff_in_force("WebAppRole").await.unwrap();
    assert!(cutoff2 > cutoff1, "{cutoff2} is not after {cutoff1}");
    let warnings = second["warnings"].to_string();
    assert!(
        warnings.contains(again_key) && warnings.contains("stolen again"),
        "{warnings}"
    );
    assert_eq!(
        record().await,
        Some(format!("{} {stolen} {again_key}", millis(cutoff2)))
    );
    // Both instances cycled again: each holds its profile through an association after the new cut-off.
    assert_eq!(scene.violations(&[first_seen(&event)]).await, vec![]);

    // The attacker keeps trying both keys after the new cut-off: each is recorded as revoked, so
    // the deliveries change nothing.
    let writes = || ["PutRolePolicy", "TagRole", "AssociateIamInstanceProfile"].map(|op| scene.proxy.count(op));
    let before = writes();
    for key in [stolen.as_str(), again_key] {
        let mut retried = again.clone();
        retried["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = key.into();
        retried["detail"]["service"]["eventLastSeen"] = millis(cutoff2 + Duration::seconds(1)).into();
        let report = run(retried).await;
        assert_eq!(report["outcome"], "already-remediated", "{key}: {report:#}");
        assert_eq!(report["cutoff"]["at"], millis(cutoff2).as_str());
    }
    assert_eq!(writes(), before, "nothing written for keys already revoked");
    assert_eq!(scene.account.cutoff_in_force("WebAppRole").await, Some(cutoff2));
}

#[tokio::test]
async fn a_region_an_scp_denies_is_reported_not_fatal_but_the_findings_own_region_is() {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    // DescribeRegions lists a region that an SCP denies: EC2 answers UnauthorizedOperation there.
    let scene = Scene::new(&moto, &guardduty, &["cycle"]).await;
    scene
        .proxy
        .add(Rule::always("DescribeIamInstanceProfileAssociations", Fault::AccessDenied).in_region(MEMBER_REGION));
    let event = scene.event(&guardduty, "denied-region");

    let handled = handle(&scene.app(patient_config()).await, event.clone()).await;
    let spared = report(&handled.response);
    assert!(handled.failure.is_none(), "{spared:#}");
    assert_eq!(spared["outcome"], "remediated");
    assert_eq!(scene.violations(&[first_seen(&event)]).await, vec![]);
    let warnings = spared["warnings"].to_string();
    assert!(
        warnings.contains(&format!("region {MEMBER_REGION} could not be read"))
            && warnings.contains("UnauthorizedOperation"),
        "{warnings}"
    );

    // Denied in the finding's own region: the fleet there cannot be read, so the run fails.
    let scene = Scene::new(&moto, &guardduty, &["cycle"]).await;
    scene
        .proxy
        .add(Rule::always("DescribeIamInstanceProfileAssociations", Fault::AccessDenied).in_region(REGION));
    let event = scene.event(&guardduty, "denied-home-region");
    let handled = handle(&scene.app(patient_config()).await, event).await;
    let denied = report(&handled.response);
    assert_eq!(denied["outcome"], "failed", "{denied:#}");
    assert!(
        handled.failure.unwrap().to_string().contains("could not be listed"),
        "{denied:#}"
    );
}

/// EC2 throttles each action per account and Region (a token bucket; moto does not). A fleet
/// cycled under it is cycled whole: throttled calls wait and are sent again, and the marks and
/// waits of instances worked on together go as one request.
#[tokio::test]
async fn a_fleet_under_ec2_throttling_is_cycled_whole_with_its_marks_sent_together() {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let fleet = ["cycle"; 12];
    let scene = Scene::new(&moto, &guardduty, &fleet).await;
    let mutating = [
        "CreateTags",
        "DisassociateIamInstanceProfile",
        "AssociateIamInstanceProfile",
    ];
    // A small bucket: twelve detaches at once cannot all find a token.
    scene.proxy.throttle(Throttling::new(&mutating, 4, 20));
    let event = scene.event(&guardduty, "throttled-fleet");

    let handled = handle(&scene.app(patient_config()).await, event.clone()).await;

    let report = report(&handled.response);
    assert!(handled.failure.is_none(), "{report:#}");
    assert_eq!(report["instances"].as_array().unwrap().len(), fleet.len());
    assert_eq!(scene.violations(&[first_seen(&event)]).await, vec![]);
    let seen = scene.proxy.seen();
    let throttled = seen.iter().filter(|s| s.fault.is_some()).count();
    assert!(throttled > 0, "the bucket ran dry: {throttled} throttled answers");
    // Two marks per instance, written for the fleet at once rather than one call each.
    let marks = scene.proxy.count("CreateTags");
    assert!(
        marks < 2 * fleet.len(),
        "{marks} CreateTags for {} instances",
        fleet.len()
    );
}
