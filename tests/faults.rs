//! Reliability under faults: every AWS operation the handler calls, against each fault the proxy
//! injects, once (transient) and every time (persistent). Each case gets an account of its own in
//! one moto server, runs the handler up to three times (the delivery and Lambda's two retries),
//! and then checks the invariants against the emulator (see `support::invariants`).

mod support;

use std::collections::BTreeSet;

use exfil_responder::handle;
use serde_json::Value;
use support::faults::{Fault, Rule};
use support::guardduty::GuardDuty;
use support::scene::{Scene, first_seen, test_config};
use support::*;

/// Every operation one remediation calls: a GuardDuty event, verified, with a claim and archiving,
/// over a named `cycle-reboot` instance and `cycle` and `revoke` siblings.
const OPERATIONS: [&str; 17] = [
    "GetCallerIdentity",
    "GetFindings",
    "GetRole",
    "GetRolePolicy",
    "ListAttachedRolePolicies",
    "PutItem",
    "PutRolePolicy",
    "TagRole",
    "ListInstanceProfilesForRole",
    "DescribeRegions",
    "DescribeIamInstanceProfileAssociations",
    "DescribeInstances",
    "CreateTags",
    "DisassociateIamInstanceProfile",
    "AssociateIamInstanceProfile",
    "RebootInstances",
    "ArchiveFindings",
];

const LAYOUT: [&str; 3] = ["cycle-reboot", "cycle", "revoke"];

/// Run one case; Err says what went wrong, for the matrix to collect.
async fn case(moto: &Moto, guardduty: &GuardDuty, op: &str, fault: Fault, persistent: bool) -> Result<(), String> {
    let name = format!(
        "{op} × {fault:?} × {}",
        if persistent { "persistent" } else { "transient" }
    );
    let scene = Scene::new(moto, guardduty, &LAYOUT).await;
    let event = scene.event(guardduty, &format!("fault-{}", scene.account_id));
    scene.proxy.add(Rule::case(op, fault, persistent));
    let mut last: Option<(Value, Option<String>)> = None;
    for _attempt in 0..3 {
        // A fresh execution environment each time, as a retry may get.
        let app = scene.app(test_config()).await;
        let handled = handle(&app, event.clone()).await;
        let failure = handled.failure.map(|e| e.to_string());
        let done = failure.is_none();
        last = Some((report(&handled.response), failure));
        if done {
            break;
        }
    }
    let (report, failure) = last.unwrap();
    let hit = scene.proxy.faulted(op);
    if !hit {
        return Err(format!(
            "{name}: the fault never applied; the handler did not call {op}"
        ));
    }
    let violations = scene.violations(&[first_seen(&event)]).await;
    let Some(failure) = failure else {
        // Done within the retries: every invariant holds.
        return if violations.is_empty() {
            Ok(())
        } else {
            Err(format!("{name}: succeeded, but {violations:?}\n{report:#}"))
        };
    };
    if !persistent {
        return Err(format!(
            "{name}: a single fault outlasted two retries: {failure}\n{report:#}"
        ));
    }
    if report["outcome"] != "failed" {
        return Err(format!(
            "{name}: failed ({failure}) but the report says {}",
            report["outcome"]
        ));
    }
    // The fault outlasted the retries. If nothing was revoked, nothing at all may have changed.
    if scene.account.revocation(&scene.role.name).await.is_none() {
        return scene
            .baseline
            .unchanged(&scene.account)
            .await
            .map_err(|e| format!("{name}: no revocation, yet {e}"));
    }
    // Otherwise the report names exactly the instances left needing attention.
    let attention: BTreeSet<String> = report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["needsAttention"] == true)
        .map(|i| i["instanceId"].as_str().unwrap().to_owned())
        .collect();
    let unlisted = report["instances"].as_array().unwrap().is_empty();
    for (who, what) in &violations {
        if who == "role" {
            return Err(format!("{name}: the role is wrong: {what}"));
        }
        // When the fleet cannot even be listed, the report says that instead of naming them.
        let said = if unlisted {
            failure.contains("could not be listed")
        } else {
            attention.contains(who)
        };
        if !said {
            return Err(format!(
                "{name}: {who} {what}, but the report does not say so\n{report:#}"
            ));
        }
    }
    for i in report["instances"].as_array().unwrap() {
        if i["needsAttention"] == true && !i["result"].as_str().unwrap().contains("FAILED") {
            return Err(format!(
                "{name}: {} flagged without a failed step\n{report:#}",
                i["instanceId"]
            ));
        }
    }
    Ok(())
}

/// Every case of one fault, a few at a time; panics listing every case that failed.
async fn matrix(fault: Fault, persistent: bool) {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let cases = OPERATIONS
        .into_iter()
        .map(|op| case(&moto, &guardduty, op, fault, persistent));
    support::faults::assert_every_case_holds(cases, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_matrix_covers_every_operation_the_handler_calls() {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let scene = Scene::new(&moto, &guardduty, &LAYOUT).await;
    let event = scene.event(&guardduty, "clean");
    let app = scene.app(test_config()).await;
    let handled = handle(&app, event.clone()).await;
    assert!(handled.failure.is_none(), "{:#}", report(&handled.response));
    let called: BTreeSet<String> = scene.proxy.seen().into_iter().map(|s| s.operation).collect();
    let covered: BTreeSet<String> = OPERATIONS.iter().map(|s| s.to_string()).collect();
    assert_eq!(called, covered);
    assert_eq!(scene.violations(&[first_seen(&event)]).await, vec![]);
}

macro_rules! matrix_tests {
    ($($name:ident: $fault:expr, $persistent:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            matrix($fault, $persistent).await;
        }
    )*};
}

matrix_tests! {
    transient_throttling: Fault::Throttle, false;
    transient_server_error: Fault::ServerError, false;
    transient_access_denied: Fault::AccessDenied, false;
    transient_reset: Fault::Reset, false;
    transient_hold_past_the_timeout: Fault::Hold, false;
    persistent_throttling: Fault::Throttle, true;
    persistent_server_error: Fault::ServerError, true;
    persistent_access_denied: Fault::AccessDenied, true;
    persistent_reset: Fault::Reset, true;
    persistent_hold_past_the_timeout: Fault::Hold, true;
}
