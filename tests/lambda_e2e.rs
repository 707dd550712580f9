//! The release `bootstrap`, run exactly as Lambda runs it: a stand-in of the Lambda Runtime API
//! serves it events (`next`) and takes its answers (response, invocation error, init error),
//! while the function acts on the moto emulator. What `sam local invoke` and `cargo lambda invoke`
//! do, without Docker. Checks the answers, the logs and the state left in the emulator.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use support::faults::round_trips_before;
use support::guardduty::GuardDuty;
use support::runtime_api::{Function, Kind, RuntimeApi, imds_counter};
use support::scene::{Scene, instances};
use support::*;

fn report_lines<'a>(logs: &'a [Value], finding_id: &str) -> Vec<&'a Value> {
    logs.iter()
        .filter(|l| l["message"] == "exfil-responder report" && l["findingId"] == finding_id)
        .collect()
}

fn metrics_lines<'a>(logs: &'a [Value], finding_id: &str) -> Vec<&'a Value> {
    logs.iter()
        .filter(|l| l["message"] == "exfil-responder metrics" && l["findingId"] == finding_id)
        .collect()
}

/// An `events/` file with the example ids replaced by the emulator's.
fn event_with_ids(name: &str, role: &SeededRole, instance: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("events").join(name))
        .unwrap()
        .replace("AROAEXAMPLEWEBAPPROLE", &role.id)
        .replace("i-0a1b2c3d4e5f60718", instance);
    serde_json::from_str(&text).unwrap()
}

/// The web app (a `cycle` instance of WebAppRole) and a batch instance of BatchRole tagged `isolate`.
async fn web_and_batch(moto: &Moto) -> (Account, SeededRole, String, SeededRole, String) {
    let (account, role, web) = web_app(moto, "cycle").await;
    let batch_role = account.role("BatchRole", &[]).await;
    let batch = account
        .instance(Some(&batch_role.profile_arn), &[("exfil-responder:action", "isolate")])
        .await;
    (account, role, web, batch_role, batch)
}

#[tokio::test]
async fn a_warm_function_answers_each_invocation_and_leaves_the_account_as_reported() {
    let moto = Moto::start();
    let (account, role, web, batch_role, batch) = web_and_batch(&moto).await;
    let guardduty = GuardDuty::start(&moto);
    let mut api = RuntimeApi::start();
    let function = Function::start(
        &api,
        &moto.endpoint,
        &[
            ("QUARANTINE_PROFILE", "MissingProfile"),
            ("AWS_ENDPOINT_URL_GUARDDUTY", &guardduty.endpoint),
            ("AWS_ENDPOINT_URL_CLOUDTRAIL", &guardduty.endpoint),
        ],
    );

    // A handled finding: confirmed by GuardDuty, revoked, and the instance cycled back to its profile.
    let handled = finding("outside-aws.json", &role, Some(&web));
    guardduty.publish(&handled);
    let answer = api.invoke(handled.clone());
    assert_eq!(answer.kind, Kind::Response, "{answer:?}");
    assert_eq!(answer.body["outcome"], "remediated");
    assert_eq!(answer.body["verification"], "confirmed");
    assert_eq!(answer.body["cutoff"]["status"], "written");
    assert!(account.revocation("WebAppRole").await.is_some());
    let (_, profile) = account.association(&web).await.expect("re-associated");
    assert_eq!(profile, role.profile_arn);
    assert!(account.tags(&web).await.contains_key("exfil-responder:cycled-at"));

    // A skipped one: a GuardDuty sample finding, for a role with no revocation.
    let before = account.snapshot("BatchRole", &[&batch]).await;
    let sample = finding("sample-finding.json", &batch_role, Some(&batch));
    let answer = api.invoke(sample.clone());
    assert_eq!(answer.kind, Kind::Response, "{answer:?}");
    assert_eq!(answer.body["outcome"], "skipped");
    assert_eq!(account.snapshot("BatchRole", &[&batch]).await, before);

    // An array payload: one report per event, in order.
    let mut array = event_file("batch-two-events.json");
    array[0] = handled.clone();
    let answer = api.invoke(array);
    assert_eq!(answer.kind, Kind::Response, "{answer:?}");
    let outcomes: Vec<&Value> = answer.body["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["outcome"])
        .collect();
    assert_eq!(outcomes, ["already-remediated", "skipped"]);

    // A failing step: the quarantine profile does not exist. The error reaches the invocation
    // error endpoint; containment happened first all the same.
    let failing = with_id(finding("inside-aws.json", &batch_role, Some(&batch)), "failing-finding");
    guardduty.publish(&failing);
    let answer = api.invoke(failing);
    assert_eq!(answer.kind, Kind::Error, "{answer:?}");
    assert_eq!(answer.body["errorType"], "RemediationFailed");
    assert!(
        answer.body["errorMessage"].as_str().unwrap().contains(&batch),
        "the error names the instance: {}",
        answer.body
    );
    assert!(account.revocation("BatchRole").await.is_some());

    let logs = function.stop();
    let handled_id = handled["detail"]["id"].as_str().unwrap();
    let reports = report_lines(&logs, handled_id);
    assert_eq!(reports.len(), 2, "the finding's report, and again inside the array");
    assert_eq!(reports[0]["report"]["outcome"], "remediated");
    assert_eq!(reports[0]["level"], "INFO");
    let failed = report_lines(&logs, "failing-finding");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["level"], "ERROR", "a failed report is logged as an error");
    assert_eq!(failed[0]["report"]["outcome"], "failed");
    assert_eq!(failed[0]["report"]["instances"][0]["needsAttention"], true);

    // One line per step, standing alone: finding, role and instance as fields.
    let steps: Vec<&Value> = logs
        .iter()
        .filter(|l| l["message"] == "step" && l["finding_id"] == handled_id)
        .collect();
    let put = steps
        .iter()
        .find(|l| l["step"] == "PutRolePolicy")
        .expect("a line for the revocation");
    assert_eq!(put["role"], "WebAppRole");
    let detach = steps
        .iter()
        .find(|l| l["step"] == "DisassociateIamInstanceProfile")
        .expect("a line for the detach");
    assert_eq!(detach["instance"], web.as_str());
    assert_eq!(detach["role"], "WebAppRole");
    assert_eq!(detach["level"], "INFO");

    // The metrics of each report, in embedded metric format.
    let metrics = metrics_lines(&logs, handled_id);
    assert_eq!(metrics.len(), reports.len(), "one metrics line per report");
    let (first, again) = (metrics[0], metrics[1]);
    assert_eq!(first["_aws"]["CloudWatchMetrics"][0]["Namespace"], "ExfilResponder");
    assert_eq!(first["FunctionName"], "exfil-responder");
    assert_eq!(first["RolesRevoked"], 1);
    assert_eq!(first["InstancesCycled"], 1);
    assert!(first["ContainmentLatency"].is_u64(), "{first}");
    assert_eq!(again["RolesRevoked"], 0, "a re-delivery revokes nothing");
    assert!(again.get("ContainmentLatency").is_none());
    let failed_metrics = metrics_lines(&logs, "failing-finding");
    assert_eq!(failed_metrics[0]["Failures"], 1);
    assert_eq!(failed_metrics[0]["InstancesNeedingAttention"], 1);
}

#[tokio::test]
async fn every_events_file_is_accepted_and_a_dry_run_writes_nothing() {
    let moto = Moto::start();
    let (account, role, web) = web_app(&moto, "cycle").await;
    let before = account.snapshot("WebAppRole", &[&web]).await;
    let guardduty = GuardDuty::start(&moto);
    let mut api = RuntimeApi::start();
    // WARN as Lambda's log level: the step lines go, the reports and metrics stay.
    let function = Function::start(
        &api,
        &moto.endpoint,
        &[
            ("DRY_RUN", "true"),
            ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
            ("AWS_ENDPOINT_URL_GUARDDUTY", &guardduty.endpoint),
            ("AWS_ENDPOINT_URL_CLOUDTRAIL", &guardduty.endpoint),
        ],
    );

    let mut files: Vec<String> = std::fs::read_dir(repo().join("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    // Their findings are real to GuardDuty; manual-finding.json names outside-aws.json's.
    for name in &files {
        guardduty.publish(&event_with_ids(name, &role, &web));
    }
    for name in &files {
        let answer = api.invoke(event_with_ids(name, &role, &web));
        assert_eq!(answer.kind, Kind::Response, "{name}: {answer:?}");
        let outcome = answer.body["outcome"].as_str().unwrap();
        // Readiness only reads, dry run or not: it assesses.
        let expected: &[&str] = match name.as_str() {
            "readiness.json" => &["assessed"],
            _ => &["planned", "skipped"],
        };
        assert!(
            expected.contains(&outcome),
            "{name}: a dry run plans or skips, got {outcome}: {}",
            answer.body
        );
    }
    assert_eq!(account.snapshot("WebAppRole", &[&web]).await, before);

    let logs = function.stop();
    assert!(
        logs.iter().all(|l| l["message"] != "step"),
        "INFO step lines under AWS_LAMBDA_LOG_LEVEL=WARN"
    );
    let reports = logs.iter().filter(|l| l["message"] == "exfil-responder report").count();
    let metrics = logs
        .iter()
        .filter(|l| l["message"] == "exfil-responder metrics")
        .count();
    assert_eq!(reports, metrics);
    assert!(reports > files.len(), "one report per event, arrays included");
}

/// One deployment in the administrator account: a member account's finding, in a region other than
/// the function's, is confirmed with GuardDuty there and remediated there, through the member role.
#[tokio::test]
async fn a_member_accounts_finding_in_another_region_is_verified_and_remediated_in_that_account() {
    let moto = Moto::start();
    let admin = Account::new(&moto.sdk().await);
    let member = Account::other(&moto, MEMBER, MEMBER_REGION).await;
    let role = member.role("WebAppRole", &[]).await;
    member.role(MEMBER_ROLE, &[]).await;
    let web = member
        .instance(Some(&role.profile_arn), &[("exfil-responder:action", "cycle")])
        .await;
    let guardduty = GuardDuty::start(&moto);
    let mut api = RuntimeApi::start();
    let function = Function::start(
        &api,
        &moto.endpoint,
        &[
            ("AWS_ENDPOINT_URL_GUARDDUTY", &guardduty.endpoint),
            ("AWS_ENDPOINT_URL_CLOUDTRAIL", &guardduty.endpoint),
            ("MEMBER_ROLE_NAME", MEMBER_ROLE),
            ("MEMBER_ROLE_EXTERNAL_ID", "o-example:exfil-responder"),
        ],
    );
    let event = in_account(finding("outside-aws.json", &role, Some(&web)), MEMBER, MEMBER_REGION);
    let detector = event["detail"]["service"]["detectorId"].as_str().unwrap().to_owned();
    let before = member.snapshot("WebAppRole", &[&web]).await;

    // Forged: GuardDuty has the detector but no such finding. Refused, nothing written.
    guardduty.detector(MEMBER_REGION, &detector);
    let answer = api.invoke(event.clone());
    assert_eq!(answer.kind, Kind::Response, "{answer:?}");
    assert_eq!(answer.body["outcome"], "refused", "{}", answer.body);
    assert!(
        answer.body["outcomeReason"]
            .as_str()
            .unwrap()
            .contains("GuardDuty has no finding"),
        "{}",
        answer.body
    );
    assert_eq!(member.snapshot("WebAppRole", &[&web]).await, before);

    // The real finding: remediated in the member account, in its region.
    guardduty.publish(&event);
    let answer = api.invoke(event.clone());
    assert_eq!(answer.kind, Kind::Response, "{answer:?}");
    let report = &answer.body;
    assert_eq!(report["outcome"], "remediated", "{report:#}");
    assert_eq!(report["verification"], "confirmed");
    assert_eq!(
        (
            report["finding"]["accountId"].as_str(),
            report["finding"]["region"].as_str()
        ),
        (Some(MEMBER), Some(MEMBER_REGION))
    );
    let session = &report["memberSession"];
    assert_eq!(session["roleArn"], format!("arn:aws:iam::{MEMBER}:role/{MEMBER_ROLE}"));
    let finding_id = event["detail"]["id"].as_str().unwrap();
    assert_eq!(session["sessionName"], format!("exfil-responder-{finding_id}"));
    assert!(member.revocation("WebAppRole").await.is_some());
    let (_, profile) = member.association(&web).await.expect("re-associated");
    assert_eq!(profile, role.profile_arn);
    assert!(member.tags(&web).await.contains_key("exfil-responder:cycled-at"));

    // Nothing in the administrator's own account, in either region.
    let admin_roles = admin.iam.list_roles().send().await.unwrap().roles;
    assert!(
        admin_roles.iter().all(|r| r.role_name != "WebAppRole"),
        "{admin_roles:?}"
    );
    for region in [REGION, MEMBER_REGION] {
        let out = admin.in_region(region).describe_instances().send().await.unwrap();
        assert!(out.reservations.unwrap_or_default().is_empty(), "instances in {region}");
    }
    // GuardDuty was asked in the finding's region: first the administrator (this account), once
    // per process, for its own detector; it has none there, so the findings were read with the
    // member role's credentials and the event's detector.
    let mut seen = guardduty.seen();
    let asked_admin = seen.remove(0);
    assert_eq!(
        (
            asked_admin.operation.as_str(),
            asked_admin.region.as_str(),
            asked_admin.access_key_id.as_str()
        ),
        ("ListDetectors", MEMBER_REGION, "ASIATESTING"),
        "{seen:?}"
    );
    assert_eq!(seen.len(), 2, "{seen:?}");
    for request in &seen {
        assert_eq!(request.region, MEMBER_REGION);
        assert!(
            request.access_key_id.starts_with("ASIA") && request.access_key_id != "ASIATESTING",
            "signed with {}",
            request.access_key_id
        );
        assert_eq!(request.detector, detector);
    }

    // The warm process kept the member credentials: one AssumeRole for both invocations.
    let logs = function.stop();
    let assumed = logs
        .iter()
        .filter(|l| l["message"] == "assumed the member role")
        .count();
    assert_eq!(assumed, 1, "AssumeRole once per account while the credentials last");
}

#[tokio::test]
async fn a_bad_configuration_is_reported_as_an_init_error() {
    let moto = Moto::start();
    let api = RuntimeApi::start();
    let mut function = Function::start(&api, &moto.endpoint, &[("FLEET_CONCURRENCY", "0")]);

    let answer = api.answer();
    assert_eq!(answer.kind, Kind::InitError, "{answer:?}");
    assert_eq!(answer.error_type_header.as_deref(), Some("Runtime.InitError"));
    assert_eq!(answer.body["errorType"], "BadConfig");
    assert!(
        answer.body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("FLEET_CONCURRENCY"),
        "{}",
        answer.body
    );
    let status = function.exit_status();
    assert!(!status.success(), "{status}");
    assert_eq!(api.next_requests(), 0, "no invocation was asked for");
    assert!(function.stderr().contains("FLEET_CONCURRENCY"));
}

/// Start-up asks AWS nothing (credentials from the environment: no instance metadata probe), and
/// the revocation is sent after one round trip, cold start or warm: GuardDuty's confirmation, our
/// own identity (cold), the role's facts and the claim, at once. Counted from the
/// requests the proxy saw, each answered 100 ms late as over a slow network, so that requests
/// sent together cannot pass for one waiting on another.
#[tokio::test]
async fn start_up_asks_aws_nothing_and_the_revocation_waits_on_one_round_trip() {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let scene = Scene::new(&moto, &guardduty, &["revoke"]).await;
    let other = scene.account.role("OtherAppRole", &[]).await;
    let other_instance = instances(&scene.account, &other, &["revoke"]).await.remove(0).id;
    let (imds, imds_connections) = imds_counter();
    let mut api = RuntimeApi::start_in(&scene.account_id);
    let function = scene.function(&api, &imds, &[]);
    api.wait_for_next(1);
    assert!(
        scene.proxy.seen().is_empty(),
        "start-up asked AWS: {:?}",
        scene.proxy.seen()
    );

    scene.proxy.set_latency(Duration::from_millis(100));
    let cold = scene.event(&guardduty, "cold-start-finding");
    let warm = scene.event_for(&guardduty, "warm-start-finding", &other, &other_instance);
    for event in [cold, warm] {
        let (_, seen) = scene.invoke(&mut api, event, "remediated");
        let order: Vec<&str> = seen.iter().map(|s| s.operation.as_str()).collect();
        assert_eq!(round_trips_before(&seen, "PutRolePolicy"), Some(1), "{order:?}");
    }
    assert_eq!(
        round_trips_before(&scene.proxy.seen(), "GetCallerIdentity"),
        Some(0),
        "a cold start asks STS alongside its first reads"
    );
    drop(function);
    assert_eq!(
        imds_connections.load(Ordering::SeqCst),
        0,
        "the instance metadata service was asked"
    );
}

/// `sam local invoke`'s path without Docker: the release bootstrap under AWS's own Runtime
/// Interface Emulator (from the pinned aws-sam-cli), invoked by boto3's Lambda client. The RIE
/// hands the function a placeholder account in its ARN; the function must act on the credentials'
/// account, where the finding is.
#[tokio::test]
async fn under_aws_s_runtime_interface_emulator_the_function_acts_in_the_credentials_account() {
    let moto = Moto::start();
    let (account, role, web, batch_role, batch) = web_and_batch(&moto).await;
    let guardduty = GuardDuty::start(&moto);
    let handled = finding("outside-aws.json", &role, Some(&web));
    guardduty.publish(&handled);
    let sample = finding("sample-finding.json", &batch_role, Some(&batch));
    let mut array = event_file("batch-two-events.json");
    array[0] = handled.clone();
    let failing = with_id(finding("inside-aws.json", &batch_role, Some(&batch)), "failing-finding");
    guardduty.publish(&failing);
    let env = [
        ("QUARANTINE_PROFILE", "MissingProfile"),
        ("AWS_ENDPOINT_URL_GUARDDUTY", guardduty.endpoint.as_str()),
        ("AWS_ENDPOINT_URL_CLOUDTRAIL", guardduty.endpoint.as_str()),
    ];
    let events = [sample, handled, array, failing];
    let (answers, logs) = support::rie::invoke(&moto.endpoint, &env, &events);

    let [skipped, remediated, batch_answer, failed] = &answers[..] else {
        unreachable!("one answer per event")
    };
    assert!(!skipped.failed, "{skipped:?}");
    assert_eq!(skipped.payload["outcome"], "skipped", "{skipped:?}");
    assert!(
        skipped.payload["outcomeReason"].as_str().unwrap().contains("sample"),
        "skipped as a sample, not for its account: {skipped:?}"
    );
    assert_eq!(
        skipped.payload["steps"],
        serde_json::json!([]),
        "a skip calls nothing: {skipped:?}"
    );

    assert_eq!(
        (remediated.status, remediated.failed),
        (200, false),
        "{remediated:?}\n{logs}"
    );
    assert_eq!(remediated.payload["outcome"], "remediated", "{remediated:?}");
    assert_eq!(remediated.payload["finding"]["accountId"], ACCOUNT);
    assert_eq!(remediated.payload["verification"], "confirmed");
    assert!(account.revocation("WebAppRole").await.is_some());
    let (_, profile) = account.association(&web).await.expect("re-associated");
    assert_eq!(profile, role.profile_arn);

    let outcomes: Vec<&Value> = batch_answer.payload["reports"]
        .as_array()
        .unwrap_or_else(|| panic!("{batch_answer:?}"))
        .iter()
        .map(|r| &r["outcome"])
        .collect();
    assert_eq!(outcomes, ["already-remediated", "skipped"]);

    // A failing step is the invocation's error, as Lambda would retry it; containment came first.
    // (The RIE answers it without Lambda's X-Amz-Function-Error header: the body says it.)
    assert!(failed.failed, "{failed:?}");
    assert_eq!(failed.payload["errorType"], "RemediationFailed", "{failed:?}");
    assert!(account.revocation("BatchRole").await.is_some());
}

/// `AUTO_RELEASE` on `sam local invoke`'s path: the Runtime Interface Emulator invokes the function
/// as a placeholder account's, so a schedule made from that ARN would invoke nothing and leave the
/// role revoked. The function contains, makes no schedule and says why; with the function named
/// (`AUTO_RELEASE_FUNCTION_ARN`), the schedule invokes that one.
#[tokio::test]
async fn under_the_emulator_a_release_schedule_invokes_the_named_function_never_the_placeholder() {
    let moto = Moto::start();
    let (account, role, web) = web_app(&moto, "cycle").await;
    let scheduler = aws_sdk_scheduler::Client::new(&moto.sdk().await);
    scheduler.create_schedule_group().name("releases").send().await.unwrap();
    let guardduty = GuardDuty::start(&moto);
    let first = finding("outside-aws.json", &role, Some(&web));
    guardduty.publish(&first);
    let second = with_id(finding("inside-aws.json", &role, Some(&web)), "second-finding");
    guardduty.publish(&second);
    let function = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:exfil-responder");
    let scheduler_role = format!("arn:aws:iam::{ACCOUNT}:role/exfil-responder-ReleaseSchedulerRole");
    let mut env = vec![
        ("AWS_ENDPOINT_URL_GUARDDUTY", guardduty.endpoint.as_str()),
        ("AWS_ENDPOINT_URL_CLOUDTRAIL", guardduty.endpoint.as_str()),
        ("AUTO_RELEASE", "true"),
        ("AUTO_RELEASE_ROLE_ARN", scheduler_role.as_str()),
        ("AUTO_RELEASE_GROUP", "releases"),
    ];

    let (answers, logs) = support::rie::invoke(&moto.endpoint, &env, &[first]);
    let unscheduled = &answers[0].payload;
    assert_eq!(unscheduled["outcome"], "remediated", "{unscheduled:#}\n{logs}");
    assert_eq!(unscheduled["autoRelease"]["status"], "failed", "{unscheduled:#}");
    let warnings = unscheduled["warnings"].to_string();
    assert!(
        warnings.contains("012345678912") && warnings.contains("AUTO_RELEASE_FUNCTION_ARN"),
        "{warnings}"
    );
    assert!(account.revocation("WebAppRole").await.is_some());
    let listed = scheduler.list_schedules().group_name("releases").send().await.unwrap();
    assert!(listed.schedules().is_empty(), "{listed:?}");

    env.push(("AUTO_RELEASE_FUNCTION_ARN", function.as_str()));
    let (answers, logs) = support::rie::invoke(&moto.endpoint, &env, &[second]);
    let scheduled = &answers[0].payload;
    assert_eq!(scheduled["outcome"], "already-remediated", "{scheduled:#}\n{logs}");
    assert_eq!(scheduled["autoRelease"]["status"], "scheduled", "{scheduled:#}");
    let name = scheduled["autoRelease"]["schedule"].as_str().unwrap();
    let got = scheduler
        .get_schedule()
        .group_name("releases")
        .name(name)
        .send()
        .await
        .unwrap();
    let target = got.target().unwrap();
    assert_eq!(
        (target.arn(), target.role_arn()),
        (function.as_str(), scheduler_role.as_str())
    );
}
