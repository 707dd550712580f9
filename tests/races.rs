//! Crashes, duplicates, races, deadlines and a burst, each ending with the invariants checked
//! against the emulator (see `support::invariants`). Separate processes are the real binary (the
//! CLI), killed with SIGKILL; "environments" are separate in-process `App`s, as Lambda runs them.

mod support;

use std::time::{Duration, Instant};

use chrono::Utc;
use exfil_responder::wait::Deadline;
use exfil_responder::{App, Handled, handle, handle_until};
use futures::StreamExt;
use serde_json::Value;
use support::faults::{Fault, Rule};
use support::guardduty::GuardDuty;
use support::invariants::{Baseline, Expect};
use support::scene::{Scene, first_seen, instances, patient_config, test_config};
use support::*;
use tokio::task::JoinHandle;

/// The burst, the twenty processes and the kills each load both cores of a small machine: run
/// one at a time, so that none of them sees the others' load as timeouts.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn invariants_hold(violations: Vec<(String, String)>, context: &str) {
    assert!(violations.is_empty(), "{context}: {violations:#?}");
}

/// Start `app` on `event` in the background, and return once the proxy holds one of its requests.
fn run_until_held(scene: &Scene, app: App, event: &Value, deadline: Deadline) -> JoinHandle<Handled> {
    let event = event.clone();
    let run = tokio::spawn(async move { handle_until(&app, event, deadline).await });
    tokio::task::block_in_place(|| scene.proxy.wait_until_held());
    run
}

/// Run the CLI to completion: Lambda's delivery and its two retries, stopping at the first success.
fn deliver_with_retries(scene: &Scene, payload: &Value) -> Value {
    let mut last = Value::Null;
    for _ in 0..3 {
        let out = scene.spawn(payload, &[]).wait_with_output().unwrap();
        last = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        if out.status.success() {
            return last;
        }
    }
    panic!("three deliveries failed; the last report: {last:#}");
}

/// Every step boundary of a cycle (and a reboot), before and after the call took effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_at_any_step_boundary_is_finished_by_the_next_run() {
    let _heavy = HEAVY.lock().await;
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    // (operation, how many of it to let through first)
    let boundaries = [
        ("PutItem", 0),
        ("PutRolePolicy", 0),
        ("CreateTags", 0), // the profile marker, before the detach
        ("DisassociateIamInstanceProfile", 0),
        ("AssociateIamInstanceProfile", 0),
        ("CreateTags", 1), // cycled-at
        ("RebootInstances", 0),
        ("CreateTags", 2), // rebooted-at
    ];
    let mut cases = Vec::new();
    for (op, skip) in boundaries {
        for fault in [Fault::Hold, Fault::HoldResponse] {
            cases.push((op, skip, fault, "cycle-reboot"));
        }
    }
    for fault in [Fault::Hold, Fault::HoldResponse] {
        cases.push(("CreateTags", 0, fault, "isolate"));
        cases.push(("DisassociateIamInstanceProfile", 0, fault, "isolate"));
    }
    for (op, skip, fault, action) in cases {
        let scene = Scene::new(&moto, &guardduty, &[action]).await;
        let event = scene.event(&guardduty, &format!("crash-{}", scene.account_id));
        scene.proxy.add(Rule {
            skip,
            ..Rule::once(op, fault)
        });
        let mut child = scene.spawn(&event, &[]);
        let proxy = &scene.proxy;
        tokio::task::block_in_place(|| proxy.wait_until_held());
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        scene.proxy.heal();
        let report = deliver_with_retries(&scene, &event);
        let context = format!("killed at {op} #{skip} ({fault:?}), {action}: {report:#}");
        invariants_hold(scene.violations(&[first_seen(&event)]).await, &context);
        if action == "isolate" {
            assert_eq!(scene.account.association(&scene.expects[0].id).await, None, "{context}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_deliveries_as_processes_write_one_cutoff_and_leak_no_credentials() {
    let _heavy = HEAVY.lock().await;
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let scene = Scene::new(&moto, &guardduty, &["cycle-reboot", "cycle", "revoke"]).await;
    let event = scene.event(&guardduty, "twenty");
    let started = Instant::now();
    let children: Vec<_> = (0..20).map(|_| scene.spawn(&event, &[("RUST_LOG", "debug")])).collect();
    // Each drained on its own thread: a full log pipe would stall its process.
    let waiting: Vec<_> = children
        .into_iter()
        .map(|child| std::thread::spawn(move || child.wait_with_output().unwrap()))
        .collect();
    let mut outputs = Vec::new();
    let mut failed = 0;
    for waiter in waiting {
        let out = waiter.join().unwrap();
        if !out.status.success() {
            failed += 1;
            let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            println!("a first delivery failed: {}", report["outcomeReason"]);
        }
        outputs.push(out);
    }
    // Lambda retries the deliveries that failed; the retries must finish the work.
    for _ in 0..failed {
        deliver_with_retries(&scene, &event);
    }
    println!(
        "20 concurrent deliveries: {:.1} s, {failed} failed first and were retried",
        started.elapsed().as_secs_f64()
    );
    invariants_hold(scene.violations(&[first_seen(&event)]).await, "20 deliveries");
    assert_eq!(
        scene.proxy.count("PutRolePolicy"),
        1,
        "one run writes; the others adopt its claim"
    );
    // Logs at debug level, and the reports, carry no credential material.
    let secret = scene.credentials.secret_access_key().to_owned();
    let token = scene.credentials.session_token().unwrap().to_owned();
    for out in &outputs {
        for stream in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(stream);
            assert!(!text.is_empty() || stream == &out.stdout);
            assert!(!text.contains(&secret), "the secret key is in the output");
            assert!(!text.contains(&token), "the session token is in the output");
        }
    }
    assert!(
        outputs
            .iter()
            .any(|o| String::from_utf8_lossy(&o.stderr).contains("DEBUG")),
        "debug logging was on, so the check above saw the most verbose logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_findings_for_one_role_arriving_together_write_one_cutoff() {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let scene = Scene::new(&moto, &guardduty, &["cycle", "cycle"]).await;
    let first = scene.event(&guardduty, "together-1");
    let second = scene.event_for(&guardduty, "together-2", &scene.role, &scene.expects[1].id);
    let (a, b) = (scene.app(patient_config()).await, scene.app(patient_config()).await);
    let (ra, rb) = tokio::join!(handle(&a, first.clone()), handle(&b, second.clone()));
    for (handled, event) in [(ra, &first), (rb, &second)] {
        if handled.failure.is_some() {
            let app = scene.app(test_config()).await;
            let retry = handle(&app, event.clone()).await;
            assert!(retry.failure.is_none(), "{:#}", report(&retry.response));
        }
    }
    invariants_hold(
        scene.violations(&[first_seen(&first), first_seen(&second)]).await,
        "two findings",
    );
    assert_eq!(scene.proxy.count("PutRolePolicy"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_republished_finding_after_a_completed_cycle_changes_nothing() {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let scene = Scene::new(&moto, &guardduty, &["cycle-reboot", "cycle"]).await;
    let event = scene.event(&guardduty, "republished");
    let app = scene.app(test_config()).await;
    assert!(handle(&app, event.clone()).await.failure.is_none());
    let done = Baseline::take(
        &scene.account,
        &scene.role.name,
        &scene.expects.iter().collect::<Vec<_>>(),
    )
    .await;
    let writes_before = writes(&scene);

    // GuardDuty publishes the same finding again: same id, a higher count, a later update.
    let mut again = event.clone();
    again["detail"]["service"]["count"] = (event["detail"]["service"]["count"].as_i64().unwrap() + 4).into();
    again["detail"]["updatedAt"] = Utc::now().to_rfc3339().into();
    guardduty.publish(&again);
    let handled = handle(&scene.app(test_config()).await, again).await;
    let report = report(&handled.response);
    assert_eq!(report["outcome"], "already-remediated", "{report:#}");
    assert_eq!(writes(&scene), writes_before, "{report:#}");
    done.unchanged(&scene.account).await.unwrap();
    invariants_hold(scene.violations(&[first_seen(&event)]).await, "re-publication");
}

/// The claim is taken with the first reads, before GuardDuty is asked: a finding GuardDuty does not
/// confirm must give it up, or a genuine finding about the role arriving next would wait for a
/// write that never comes, and then write without a claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_taken_for_a_refused_finding_is_given_up() {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let scene = Scene::new(&moto, &guardduty, &["cycle"]).await;
    let genuine = scene.event(&guardduty, "genuine");
    // The same finding under an id GuardDuty does not have.
    let mut forged = genuine.clone();
    forged["detail"]["id"] = "forged".into();
    let arn = genuine["detail"]["arn"]
        .as_str()
        .unwrap()
        .replace("/genuine", "/forged");
    forged["detail"]["arn"] = arn.into();

    let refused = handle(&scene.app(test_config()).await, forged).await;
    let refused = report(&refused.response);
    assert_eq!(refused["outcome"], "refused", "{refused:#}");
    let steps: Vec<(&str, &str)> = refused["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap(), s["outcome"].as_str().unwrap()))
        .collect();
    assert!(steps.contains(&("ClaimRevocation", "ok")), "{steps:?}");
    assert!(steps.contains(&("ReleaseClaim", "ok")), "{steps:?}");
    assert_eq!(scene.proxy.count("PutRolePolicy"), 0);

    let handled = handle(&scene.app(test_config()).await, genuine.clone()).await;
    let report = report(&handled.response);
    assert!(handled.failure.is_none(), "{report:#}");
    assert_eq!(report["cutoff"]["status"], "written", "{report:#}");
    let waited = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["step"] == "AwaitClaimedRevocation");
    assert!(!waited, "the genuine run waited on the refused one's claim: {report:#}");
    assert!(
        !report["warnings"].to_string().contains("without a claim"),
        "{report:#}"
    );
    invariants_hold(scene.violations(&[first_seen(&genuine)]).await, "after a refused claim");
}

/// Changes to roles and instances (archiving the finding again is GuardDuty bookkeeping).
fn writes(scene: &Scene) -> usize {
    scene
        .proxy
        .seen()
        .iter()
        .filter(|s| s.fault.is_none() && WRITES.contains(&s.operation.as_str()) && s.operation != "ArchiveFindings")
        .count()
}

/// B reads "no revocation" before A writes, and writes a later cut-off after A has cycled (no
/// claim table, so nothing stops B): B's cut-off denies what A's cycle issued, so the instances
/// must be cycled again against it, by B itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_later_cutoff_written_after_a_cycle_is_cycled_against() {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let scene = Scene::new(&moto, &guardduty, &["cycle", "cycle"]).await;
    let event = scene.event(&guardduty, "race");
    let unclaimed = || exfil_responder::Config {
        claim_table: None,
        ..test_config()
    };
    // Hold B's first GetRolePolicy answer ("no revocation") until A is done.
    scene.proxy.add(Rule::once("GetRolePolicy", Fault::HoldResponse));
    let b = run_until_held(&scene, scene.app(unclaimed()).await, &event, Deadline::none());
    let a = handle(&scene.app(unclaimed()).await, event.clone()).await;
    assert!(a.failure.is_none(), "{:#}", report(&a.response));
    let a_cutoff = report(&a.response)["cutoff"]["at"].clone();
    scene.proxy.heal();
    let b = b.await.unwrap();
    let b_report = report(&b.response);
    assert!(b.failure.is_none(), "{b_report:#}");
    assert_ne!(b_report["cutoff"]["at"], a_cutoff, "B wrote its own, later cut-off");
    assert_eq!(scene.proxy.count("PutRolePolicy"), 2);
    invariants_hold(scene.violations(&[first_seen(&event)]).await, "B after A");
}

/// Once A has attached, and before its re-read of the cut-off reaches IAM, B (a new finding,
/// first seen after A's cut-off) writes a later one and cycles. A's re-read sees it moved, and A
/// cycles again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cutoff_that_moves_during_a_cycle_is_caught_by_the_recheck() {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let scene = Scene::new(&moto, &guardduty, &["cycle"]).await;
    let first = scene.event(&guardduty, "moving-1");
    // A's re-read (its second GetRolePolicy, sent once the new association is made) is held.
    scene.proxy.add(Rule {
        skip: 1,
        ..Rule::once("GetRolePolicy", Fault::Hold)
    });
    let a = run_until_held(&scene, scene.app(test_config()).await, &first, Deadline::none());
    let mut second = scene.event(&guardduty, "moving-2");
    second["detail"]["service"]["eventFirstSeen"] = Utc::now().to_rfc3339().into();
    guardduty.publish(&second);
    let b = handle(&scene.app(test_config()).await, second.clone()).await;
    assert!(b.failure.is_none(), "{:#}", report(&b.response));
    scene.proxy.heal();
    let a = report(&a.await.unwrap().response);
    let moved = a["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().starts_with("the cut-off moved"));
    assert!(moved, "A noticed the later cut-off: {a:#}");
    invariants_hold(
        scene.violations(&[first_seen(&first), first_seen(&second)]).await,
        "moved cut-off",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn near_the_deadline_a_run_stops_between_steps_and_the_retry_finishes() {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let scene = Scene::new(&moto, &guardduty, &["cycle"]).await;
    let event = scene.event(&guardduty, "deadline");
    let config = exfil_responder::Config {
        timeouts: exfil_responder::config::Timeouts {
            attempt: Duration::from_secs(20),
            operation: Duration::from_secs(30),
            ..test_config().timeouts
        },
        ..test_config()
    };
    // The detach takes effect, and its answer waits until the invocation is nearly out of time.
    scene
        .proxy
        .add(Rule::once("DisassociateIamInstanceProfile", Fault::HoldResponse));
    let reserve = Duration::from_secs(2);
    let deadline = Deadline::after(Duration::from_secs(3), reserve);
    let run = run_until_held(&scene, scene.app(config.clone()).await, &event, deadline);
    // Let the deadline come within the reserve: the condition under test, not a synchronisation.
    tokio::time::sleep(deadline.remaining().unwrap().saturating_sub(reserve)).await;
    scene.proxy.heal();
    let handled = run.await.unwrap();
    let stopped = report(&handled.response);
    assert_eq!(stopped["outcome"], "failed");
    assert_eq!(stopped["error"]["kind"], "RemediationFailed", "{stopped:#}");
    let instance = &stopped["instances"][0];
    assert_eq!(instance["needsAttention"], true, "{stopped:#}");
    let result = instance["result"].as_str().unwrap();
    assert!(
        result.contains("FAILED at AwaitDisassociation") && result.contains("left"),
        "{result}"
    );
    // Stopped between the detach and the attach: the retry heals it.
    assert_eq!(scene.account.association(&scene.expects[0].id).await, None);
    let retry = handle(&scene.app(config).await, event.clone()).await;
    assert!(retry.failure.is_none(), "{:#}", report(&retry.response));
    invariants_hold(scene.violations(&[first_seen(&event)]).await, "after the deadline");
}

/// 500 events over 20 roles (a named instance and a sibling each): duplicates and distinct
/// findings, interleaved, handled by 20 environments at once (the template reserves no
/// concurrency by default, so Lambda runs one environment per event in flight).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_500_events_over_20_roles_writes_20_cutoffs() {
    let _heavy = HEAVY.lock().await;
    const ROLES: usize = 20;
    const EVENTS: usize = 500;
    const ENVIRONMENTS: usize = 20;
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let scene = Scene::new(&moto, &guardduty, &["cycle", "cycle"]).await;
    let mut roles = vec![(scene.role.clone(), scene.expects.clone())];
    for r in 1..ROLES {
        let role = scene.account.role(&format!("BurstRole{r}"), &[]).await;
        let expects = instances(&scene.account, &role, &["cycle", "cycle"]).await;
        roles.push((role, expects));
    }
    let mut baselines = Vec::new();
    for (role, expects) in &roles {
        baselines.push(Baseline::take(&scene.account, &role.name, &expects.iter().collect::<Vec<_>>()).await);
    }
    // Per role: 5 distinct findings (about either instance), each delivered 5 times.
    let mut events = Vec::new();
    for (r, (role, expects)) in roles.iter().enumerate() {
        for f in 0..EVENTS / ROLES / 5 {
            let instance = &expects[f % 2].id;
            let event = scene.event_for(&guardduty, &format!("burst-{r}-{f}"), role, instance);
            events.extend(std::iter::repeat_n(event, 5));
        }
    }
    // Interleave deterministically, so duplicates and roles overlap in flight.
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|i| (i * 7919) % events.len());
    let environments = futures::future::join_all((0..ENVIRONMENTS).map(|_| scene.app(patient_config()))).await;
    let queue = std::sync::Mutex::new(order.into_iter());
    let started = Instant::now();
    let failed: Vec<usize> = futures::stream::iter(environments.iter())
        .map(|app| async {
            let mut failed = Vec::new();
            loop {
                let next = queue.lock().unwrap().next();
                let Some(i) = next else { break };
                if handle(app, events[i].clone()).await.failure.is_some() {
                    failed.push(i);
                }
            }
            failed
        })
        .buffer_unordered(ENVIRONMENTS)
        .concat()
        .await;
    let first_pass = started.elapsed();
    for i in &failed {
        let retried = handle(&environments[0], events[*i].clone()).await;
        assert!(retried.failure.is_none(), "{:#}", report(&retried.response));
    }
    let total = started.elapsed();
    println!(
        "burst: {EVENTS} events over {ROLES} roles, {ENVIRONMENTS} environments: {:.1} s ({:.1} ms per event), \
         {} failed and were retried ({:.1} s in all); {} policy writes",
        first_pass.as_secs_f64(),
        first_pass.as_secs_f64() * 1000.0 / EVENTS as f64,
        failed.len(),
        total.as_secs_f64(),
        scene.proxy.count("PutRolePolicy"),
    );
    assert_eq!(scene.proxy.count("PutRolePolicy"), ROLES);
    for ((role, expects), baseline) in roles.iter().zip(&baselines) {
        let seen: Vec<_> = events
            .iter()
            .filter(|e| e["detail"]["resource"]["accessKeyDetails"]["userName"] == role.name.as_str())
            .map(first_seen)
            .collect();
        let expects: Vec<&Expect> = expects.iter().collect();
        invariants_hold(
            baseline.violations(&scene.account, &scene.proxy, &expects, &seen).await,
            &role.name,
        );
    }
}
