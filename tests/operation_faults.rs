//! Release and restore under faults: every AWS operation each calls, against each fault the proxy
//! injects, once (transient) and every time (persistent), with up to three runs (the request and
//! two retries). The invariants, checked against the emulator after each case:
//! - a release never removes a document it did not write, and the report says which of its own
//!   it removed: one gone from IAM has its removal in the steps, one still there has no `removedAt`;
//! - a restore never attaches anything but the recorded profile (the instance holds none, the
//!   quarantine profile, or the recorded one), and the isolation mark is gone only once the
//!   recorded profile is attached;
//! - a transient fault is outlasted; a persistent one ends in a failed report.

mod support;

use chrono::{Duration, Utc};
use exfil_responder::policy::{FALLBACK_PATH, document, fallback_name};
use exfil_responder::{Config, handle};
use serde_json::{Value, json};
use support::faults::{Fault, Rule};
use support::guardduty::GuardDuty;
use support::scene::{Scene, test_config};
use support::*;

const RELEASE_OPERATIONS: [&str; 8] = [
    "GetCallerIdentity",
    "GetRole",
    "GetRolePolicy",
    "ListAttachedRolePolicies",
    "GetPolicy",
    "GetPolicyVersion",
    "DeleteRolePolicy",
    "DetachRolePolicy",
];
const RESTORE_OPERATIONS: [&str; 8] = [
    "GetCallerIdentity",
    "DescribeInstances",
    "DescribeIamInstanceProfileAssociations",
    "GetInstanceProfile",
    "GetRole",
    "DisassociateIamInstanceProfile",
    "AssociateIamInstanceProfile",
    "DeleteTags",
];
const QUARANTINE: &str = "QuarantineRoleProfile";

fn config() -> Config {
    Config {
        quarantine_profile: Some(QUARANTINE.into()),
        ..test_config()
    }
}

/// Run `payload` up to three times: every report, and the last one's failure if it still failed.
async fn with_retries(scene: &Scene, payload: &Value) -> (Vec<Value>, Option<String>) {
    let mut reports = Vec::new();
    for _attempt in 0..3 {
        let handled = handle(&scene.app(config()).await, payload.clone()).await;
        let failure = handled.failure.map(|e| e.to_string());
        reports.push(report(&handled.response));
        if failure.is_none() {
            return (reports, None);
        }
        if reports.len() == 3 {
            return (reports, failure);
        }
    }
    unreachable!("three attempts at most")
}

/// The role holding both documents of ours (past the hold), and one of each kind it did not write.
async fn release_scene(moto: &Moto, guardduty: &GuardDuty) -> (Scene, String) {
    let scene = Scene::new(moto, guardduty, &[]).await;
    let (iam, role) = (&scene.account.iam, scene.role.name.as_str());
    let ours = document(Utc::now() - Duration::hours(20));
    let put = |name: &'static str, doc: String| {
        iam.put_role_policy()
            .role_name(role)
            .policy_name(name)
            .policy_document(doc)
            .send()
    };
    put("AWSRevokeOlderSessions", ours.clone()).await.unwrap();
    put(
        "AppPolicy",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#.into(),
    )
    .await
    .unwrap();
    scene
        .account
        .attach_new_policy(role, (&fallback_name(role), FALLBACK_PATH), &ours)
        .await;
    let foreign = scene.account.attach_new_policy(role, ("ReadOnly", "/"), &ours).await;
    (scene, foreign)
}

async fn release_case(
    moto: &Moto,
    guardduty: &GuardDuty,
    op: &str,
    fault: Fault,
    persistent: bool,
) -> Result<(), String> {
    let name = format!("release: {op} × {fault:?} × persistent={persistent}");
    let (scene, foreign) = release_scene(moto, guardduty).await;
    scene.proxy.add(Rule::case(op, fault, persistent));
    let payload = json!({"operation": "release", "roleName": scene.role.name});
    let (reports, failure) = with_retries(&scene, &payload).await;
    hit(&scene, &name, op)?;
    let report = reports.last().unwrap();
    let role = scene.role.name.as_str();
    if scene.account.policy_names(role).await.iter().all(|p| p != "AppPolicy")
        || !attached_arns(&scene.account, role).await.contains(&foreign)
    {
        return Err(format!("{name}: removed a document it did not write\n{report:#}"));
    }
    let inline_gone = scene.account.revocation(role).await.is_none();
    let fallback_gone = fallback_arns(&scene.account, role).await.is_empty();
    // Over every attempt's report: a retry does not repeat what an earlier attempt removed.
    let steps: Vec<&str> = reports
        .iter()
        .flat_map(|r| r["steps"].as_array().into_iter().flatten())
        .filter_map(|s| s["step"].as_str())
        .collect();
    for (gone, kind, step) in [
        (inline_gone, "inline", "DeleteRolePolicy"),
        (fallback_gone, "managed", "DetachRolePolicy"),
    ] {
        let said_removed = reports.iter().any(|r| {
            let listed = r["operation"]["documents"]
                .as_array()
                .and_then(|d| d.iter().find(|d| d["holder"]["kind"] == kind));
            listed.is_some_and(|d| d["removedAt"].is_string())
        });
        if (gone && !steps.contains(&step)) || (!gone && said_removed) {
            return Err(format!(
                "{name}: {kind} gone={gone}, but the report says otherwise\n{report:#}"
            ));
        }
    }
    settled(
        &name,
        report,
        failure,
        persistent,
        inline_gone && fallback_gone,
        "released",
    )
}

/// The fault must have met its operation, or the case tested nothing.
fn hit(scene: &Scene, name: &str, op: &str) -> Result<(), String> {
    let met = scene.proxy.faulted(op);
    met.then_some(())
        .ok_or_else(|| format!("{name}: the fault never applied; {op} was not called"))
}

/// Done within the retries (and then complete), or, for a persistent fault, a failed report. A
/// retry of an attempt whose last answer was lost finds nothing left to do, and says so (skipped).
fn settled(
    name: &str,
    report: &Value,
    failure: Option<String>,
    persistent: bool,
    complete: bool,
    outcome: &str,
) -> Result<(), String> {
    match failure {
        None if (report["outcome"] == outcome || report["outcome"] == "skipped") && complete => Ok(()),
        None => Err(format!("{name}: succeeded without finishing\n{report:#}")),
        Some(f) if !persistent => Err(format!("{name}: a single fault outlasted two retries: {f}\n{report:#}")),
        Some(_) if report["outcome"] == "failed" => Ok(()),
        Some(f) => Err(format!(
            "{name}: failed ({f}) but the report says {}",
            report["outcome"]
        )),
    }
}

async fn restore_case(
    moto: &Moto,
    guardduty: &GuardDuty,
    op: &str,
    fault: Fault,
    persistent: bool,
) -> Result<(), String> {
    let name = format!("restore: {op} × {fault:?} × persistent={persistent}");
    let scene = Scene::new(moto, guardduty, &["isolate"]).await;
    let quarantine = scene.account.role("QuarantineRole", &[]).await.profile_arn;
    let instance = scene.expects[0].id.clone();
    let contained = handle(
        &scene.app(config()).await,
        scene.event(guardduty, &format!("iso-{}", scene.account_id)),
    )
    .await;
    if contained.failure.is_some()
        || scene.account.association(&instance).await.map(|(_, p)| p) != Some(quarantine.clone())
    {
        return Err(format!(
            "{name}: the instance was not isolated first\n{:#}",
            report(&contained.response)
        ));
    }
    scene.proxy.add(Rule::case(op, fault, persistent));
    let (reports, failure) = with_retries(&scene, &json!({"operation": "restore", "instanceId": instance})).await;
    hit(&scene, &name, op)?;
    let report = reports.last().unwrap();
    let attached = scene.account.association(&instance).await.map(|(_, p)| p);
    let recorded = Some(scene.role.profile_arn.clone());
    if attached.is_some() && attached != recorded && attached != Some(quarantine) {
        return Err(format!(
            "{name}: holds {attached:?}, neither recorded nor quarantine\n{report:#}"
        ));
    }
    let marked = scene
        .account
        .tags(&instance)
        .await
        .contains_key("exfil-responder:isolated-at");
    if !marked && attached != recorded {
        return Err(format!("{name}: mark cleared, but holds {attached:?}\n{report:#}"));
    }
    settled(
        &name,
        report,
        failure,
        persistent,
        !marked && attached == recorded,
        "restored",
    )
}

async fn matrix(persistent: bool) {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let cases = Fault::ANY_CALL.iter().flat_map(|f| {
        let release = RELEASE_OPERATIONS.iter().map(move |op| (true, *op, *f));
        release.chain(RESTORE_OPERATIONS.iter().map(move |op| (false, *op, *f)))
    });
    let (moto, guardduty) = (&moto, &guardduty);
    let cases = cases.map(|(release, op, fault)| async move {
        match release {
            true => release_case(moto, guardduty, op, fault, persistent).await,
            false => restore_case(moto, guardduty, op, fault, persistent).await,
        }
    });
    support::faults::assert_every_case_holds(cases, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transient_faults_are_outlasted_and_every_invariant_holds() {
    matrix(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn persistent_faults_fail_the_report_and_every_invariant_holds() {
    matrix(true).await;
}
