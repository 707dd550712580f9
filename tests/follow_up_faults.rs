//! The inputs that come after a containment, under faults: a `CHAIN` follow-up walk and a periodic
//! Cloud Custodian policy's next delivery. Each operation they call, against each fault the proxy
//! injects, once (transient) and every time (persistent), with up to three runs (the delivery and
//! Lambda's two retries). The invariants, checked against the emulator after each case:
//! - neither touches what the containment settled: the instance's role keeps its cut-off, and no
//!   instance is changed;
//! - the follow-up revokes the role the stolen key reached once CloudTrail shows it (within the
//!   retries, for a transient fault other than a refusal of the trail, which another delivery would
//!   meet again); where a fault stops it, the run fails or its report says the walk was not
//!   complete: never a finished walk that left the role as it was;
//! - the Custodian delivery writes nothing, whatever it meets.

mod support;

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use exfil_responder::config::{Chain, ChainMode};
use exfil_responder::{Config, handle};
use serde_json::{Value, json};
use support::cloudtrail::{Recorded, assume_role};
use support::faults::{Fault, Rule};
use support::guardduty::GuardDuty;
use support::scene::{Scene, test_config};
use support::securityhub::custodian;
use support::*;

/// Every operation a follow-up calls: the role it names, the regions, the trail, and the role the
/// key reached, read and revoked (with the claim).
const FOLLOW_UP: [&str; 8] = [
    "GetRole",
    "GetRolePolicy",
    "ListAttachedRolePolicies",
    "DescribeRegions",
    "LookupEvents",
    "GetCallerIdentity",
    "PutItem",
    "PutRolePolicy",
];
/// Every operation a periodic Custodian delivery calls once its instance is handled.
const CUSTODIAN: [&str; 9] = [
    "GetCallerIdentity",
    "DescribeInstances",
    "GetInstanceProfile",
    "DescribeRegions",
    "GetRole",
    "GetRolePolicy",
    "ListAttachedRolePolicies",
    "ListInstanceProfilesForRole",
    "DescribeIamInstanceProfileAssociations",
];

fn config() -> Config {
    Config {
        chain: Chain {
            mode: ChainMode::Contain,
            ..Chain::off()
        },
        ..test_config()
    }
}

/// A contained scene: the named instance's finding handled (its role revoked, the stolen key
/// recorded), then CloudTrail delivers the key's `AssumeRole` of RoleB. Returns the follow-up
/// payload and RoleB's name.
async fn contained(guardduty: &GuardDuty, scene: &Scene) -> (Value, String) {
    let event = scene.event(guardduty, &format!("follow-{}", scene.account_id));
    let handled = handle(&scene.app(config()).await, event.clone()).await;
    assert!(handled.failure.is_none(), "{:#}", report(&handled.response));
    let key = event["detail"]["resource"]["accessKeyDetails"]["accessKeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = scene.account.role("RoleB", &[]).await;
    let at = Utc::now() - Duration::minutes(3);
    let record = assume_role(
        &key,
        (&scene.account_id, REGION),
        (&b.arn, &b.id),
        "ASIABSESSION00000001",
        at,
    );
    let recorded = Recorded {
        account: &scene.account_id,
        region: REGION,
        key: &key,
        at,
        id: "assume-b",
    };
    guardduty.trail().record(&recorded, &record);
    let payload = json!({
        "operation": "follow-up",
        "findingId": event["detail"]["id"],
        "accountId": scene.account_id,
        "region": REGION,
        "accessKeyId": key,
        "roleName": scene.role.name,
        "since": (Utc::now() - Duration::minutes(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "walked": [key],
    });
    (payload, b.name)
}

/// Up to three runs of `payload` (the delivery and Lambda's two retries): the last report, and
/// its failure if every run failed.
async fn with_retries(scene: &Scene, payload: &Value, config: &Config) -> (Value, Option<String>) {
    let mut last = (Value::Null, None);
    for _ in 0..3 {
        let handled = handle(&scene.app(config.clone()).await, payload.clone()).await;
        last = (report(&handled.response), handled.failure.map(|e| e.to_string()));
        if last.1.is_none() {
            break;
        }
    }
    last
}

/// What the containment settled: the instance role's cut-off and the instances, as they are.
async fn settled(scene: &Scene) -> String {
    let ids: Vec<&str> = scene.expects.iter().map(|e| e.id.as_str()).collect();
    scene.account.snapshot(&scene.role.name, &ids).await
}

async fn follow_up_case(
    moto: &Moto,
    guardduty: &GuardDuty,
    op: &str,
    fault: Fault,
    persistent: bool,
) -> Result<(), String> {
    let name = format!("follow-up {op} × {fault:?} × persistent={persistent}");
    let scene = Scene::new(moto, guardduty, &["cycle"]).await;
    let (payload, role_b) = contained(guardduty, &scene).await;
    let before = settled(&scene).await;
    scene.proxy.add(Rule::case(op, fault, persistent));
    let (report, failure) = with_retries(&scene, &payload, &config()).await;
    if !scene.proxy.faulted(op) {
        return Err(format!("{name}: the fault never applied; {op} was not called"));
    }
    if settled(&scene).await != before {
        return Err(format!(
            "{name}: the containment's role or instances changed\n{report:#}"
        ));
    }
    let revoked = scene.account.revocation(&role_b).await.is_some();
    // A refusal is an answer another delivery would meet again: the report says what was not read.
    let final_answer = fault == Fault::AccessDenied && ["DescribeRegions", "LookupEvents"].contains(&op);
    if !persistent && !revoked && !final_answer {
        return Err(format!(
            "{name}: a transient fault left RoleB unrevoked ({failure:?})\n{report:#}"
        ));
    }
    let said = failure.is_some() || report["chain"]["complete"] == false;
    if !revoked && !said {
        return Err(format!(
            "{name}: RoleB left as it was, and the report does not say so\n{report:#}"
        ));
    }
    Ok(())
}

async fn custodian_case(
    moto: &Moto,
    guardduty: &GuardDuty,
    op: &str,
    fault: Fault,
    persistent: bool,
) -> Result<(), String> {
    let name = format!("custodian {op} × {fault:?} × persistent={persistent}");
    let scene = Scene::new(moto, guardduty, &["cycle"]).await;
    let instance = scene.expects[0].id.clone();
    let mut payload = custodian(None, json!([{ "InstanceId": instance }]));
    payload["account_id"] = json!(scene.account_id);
    let first = handle(&scene.app(test_config()).await, payload.clone()).await;
    if first.failure.is_some() {
        return Err(format!(
            "{name}: the first delivery failed\n{:#}",
            report(&first.response)
        ));
    }
    let before = settled(&scene).await;
    let writes_before = writes(&scene);
    scene.proxy.add(Rule::case(op, fault, persistent));
    let (report, failure) = with_retries(&scene, &payload, &test_config()).await;
    if !scene.proxy.faulted(op) {
        return Err(format!("{name}: the fault never applied; {op} was not called"));
    }
    if writes(&scene) != writes_before || settled(&scene).await != before {
        return Err(format!("{name}: the second delivery changed something\n{report:#}"));
    }
    if failure.is_none() && report["outcome"] != "already-remediated" {
        return Err(format!("{name}: finished as {}\n{report:#}", report["outcome"]));
    }
    Ok(())
}

/// The writes the proxy forwarded (a held answer's write took effect).
fn writes(scene: &Scene) -> usize {
    let seen = scene.proxy.seen();
    seen.iter().filter(|s| WRITES.contains(&s.operation.as_str())).count()
}

async fn matrix(persistent: bool) {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let (moto, guardduty) = (&moto, &guardduty);
    let follow_ups = (Fault::ANY_CALL.iter()).flat_map(|f| FOLLOW_UP.iter().map(move |op| (*op, *f)));
    let cases = follow_ups.map(|(op, f)| follow_up_case(moto, guardduty, op, f, persistent));
    support::faults::assert_every_case_holds(cases, 4).await;
    let deliveries = (Fault::ANY_CALL.iter()).flat_map(|f| CUSTODIAN.iter().map(move |op| (*op, *f)));
    let cases = deliveries.map(|(op, f)| custodian_case(moto, guardduty, op, f, persistent));
    support::faults::assert_every_case_holds(cases, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_matrices_cover_every_operation_a_follow_up_and_a_custodian_delivery_call() {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let scene = Scene::new(&moto, &guardduty, &["cycle"]).await;
    let (payload, role_b) = contained(&guardduty, &scene).await;
    let before = scene.proxy.seen().len();
    let handled = handle(&scene.app(config()).await, payload).await;
    assert!(handled.failure.is_none(), "{:#}", report(&handled.response));
    assert!(scene.account.revocation(&role_b).await.is_some());
    let called: BTreeSet<String> = (scene.proxy.seen().into_iter().skip(before))
        .map(|s| s.operation)
        .collect();
    assert_eq!(called, FOLLOW_UP.iter().map(|s| s.to_string()).collect());

    let scene = Scene::new(&moto, &guardduty, &["cycle"]).await;
    let mut payload = custodian(None, json!([{ "InstanceId": scene.expects[0].id }]));
    payload["account_id"] = json!(scene.account_id);
    let first = handle(&scene.app(test_config()).await, payload.clone()).await;
    assert!(first.failure.is_none(), "{:#}", report(&first.response));
    let before = scene.proxy.seen().len();
    let again = handle(&scene.app(test_config()).await, payload).await;
    assert_eq!(report(&again.response)["outcome"], "already-remediated");
    let called: BTreeSet<String> = (scene.proxy.seen().into_iter().skip(before))
        .map(|s| s.operation)
        .collect();
    assert_eq!(called, CUSTODIAN.iter().map(|s| s.to_string()).collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transient_faults_are_outlasted_and_what_was_settled_stays() {
    matrix(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn persistent_faults_are_reported_and_what_was_settled_stays() {
    matrix(true).await;
}
