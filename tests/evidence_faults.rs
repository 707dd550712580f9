//! Evidence and hardening under faults (`FORENSICS=snapshot`, `HARDEN=imdsv2`): each operation they
//! add, against each fault the proxy injects, once (transient) and every time (persistent), with up
//! to three runs (the delivery and Lambda's two retries). The invariants, checked against the
//! emulator after each case:
//! - containment first: the role is revoked and the instance isolated, whatever these steps met,
//!   and a fault in them never fails the invocation;
//! - what is not done is said: unless the instance is on standby in its Auto Scaling group,
//!   termination protection is on, its snapshots exist and IMDSv2 is required, the instance's
//!   report needs attention and says what is left;
//! - every snapshot the report lists exists, tagged with the finding and the instance;
//! - a transient fault the SDK or the tag-visibility retry absorbs (all but a refusal of the
//!   metadata options or of Auto Scaling, which no retry changes) leaves it all done.
//!
//! moto applies `InstanceInitiatedShutdownBehavior` in no way these tests can read (see docs/src/emulator-gaps.md):
//! the shutdown step's effect is not checked here, only that its failure is reported.

mod support;

use exfil_responder::{Config, handle};
use serde_json::Value;
use support::faults::{Fault, Rule};
use support::guardduty::GuardDuty;
use support::scene::{Scene, test_config};
use support::*;

const OPERATIONS: [&str; 5] = [
    "ModifyInstanceMetadataOptions",
    "DescribeAutoScalingInstances",
    "EnterStandby",
    "ModifyInstanceAttribute",
    "CreateSnapshots",
];

fn config() -> Config {
    Config {
        forensic_snapshots: true,
        require_imdsv2: true,
        ..test_config()
    }
}

/// What the emulator holds of the instance's evidence and hardening.
struct Kept {
    standby: bool,
    protected: bool,
    snapshots: Vec<(String, Option<String>)>,
    imdsv2: bool,
}

async fn kept(account: &Account, autoscaling: &aws_sdk_autoscaling::Client, instance: &str) -> Kept {
    let ec2 = &account.ec2;
    let member = autoscaling
        .describe_auto_scaling_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap();
    let standby = member
        .auto_scaling_instances()
        .first()
        .and_then(|m| m.lifecycle_state())
        == Some("Standby");
    let attribute = ec2
        .describe_instance_attribute()
        .instance_id(instance)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::DisableApiTermination)
        .send()
        .await
        .unwrap();
    let of_instance = aws_sdk_ec2::types::Filter::builder()
        .name("tag:exfil-responder:evidence-of")
        .values(instance)
        .build();
    let listed = ec2.describe_snapshots().filters(of_instance).send().await.unwrap();
    let snapshots = listed.snapshots().iter().map(|s| {
        let finding = s.tags().iter().find(|t| t.key() == Some("exfil-responder:finding"));
        (
            s.snapshot_id().unwrap().to_owned(),
            finding.and_then(|t| t.value()).map(str::to_owned),
        )
    });
    let tokens = account.http_tokens(instance).await;
    Kept {
        standby,
        protected: attribute.disable_api_termination().and_then(|v| v.value()) == Some(true),
        snapshots: snapshots.collect(),
        imdsv2: tokens.as_deref() == Some("required"),
    }
}

async fn case(moto: &Moto, guardduty: &GuardDuty, op: &str, fault: Fault, persistent: bool) -> Result<(), String> {
    let name = format!("{op} × {fault:?} × persistent={persistent}");
    let scene = Scene::new(moto, guardduty, &["isolate"]).await;
    let instance = scene.expects[0].id.clone();
    let autoscaling = in_a_group(moto, &scene, &instance).await;
    let finding_id = format!("evidence-{}", scene.account_id);
    let event = scene.event(guardduty, &finding_id);
    scene.proxy.add(Rule::case(op, fault, persistent));
    let mut reports: Vec<Value> = Vec::new();
    for _attempt in 0..3 {
        let handled = handle(&scene.app(config()).await, event.clone()).await;
        reports.push(report(&handled.response));
        if let Some(failure) = handled.failure {
            if reports.len() < 3 {
                continue;
            }
            return Err(format!(
                "{name}: containment failed: {failure}\n{:#}",
                reports.last().unwrap()
            ));
        }
        break;
    }
    let met = scene.proxy.faulted(op);
    if !met {
        return Err(format!("{name}: the fault never applied; {op} was not called"));
    }
    let report = reports.last().unwrap();
    if scene.account.revocation(&scene.role.name).await.is_none()
        || scene.account.association(&instance).await.is_some()
        || !scene
            .account
            .tags(&instance)
            .await
            .contains_key("exfil-responder:isolated-at")
    {
        return Err(format!("{name}: not contained\n{report:#}"));
    }
    let kept = kept(&scene.account, &autoscaling, &instance).await;
    if let Some((id, finding)) = kept
        .snapshots
        .iter()
        .find(|(_, f)| f.as_deref() != Some(finding_id.as_str()))
    {
        return Err(format!("{name}: snapshot {id} is tagged with finding {finding:?}"));
    }
    let taken: Vec<&str> = kept.snapshots.iter().map(|(id, _)| id.as_str()).collect();
    let named = |r: &Value| {
        r["instances"]
            .as_array()
            .and_then(|all| all.iter().find(|i| i["instanceId"] == instance.as_str()))
            .cloned()
    };
    for listed in reports
        .iter()
        .filter_map(named)
        .flat_map(|i| i["snapshots"].as_array().cloned().unwrap_or_default())
    {
        if !taken.contains(&listed.as_str().unwrap_or_default()) {
            return Err(format!("{name}: the report lists {listed}, which does not exist"));
        }
    }
    let complete = kept.standby && kept.protected && !taken.is_empty() && kept.imdsv2;
    let said = reports
        .iter()
        .filter_map(named)
        .any(|i| i["needsAttention"] == true && i["result"].as_str().unwrap_or_default().contains("NOT DONE"));
    if !complete && !said {
        return Err(format!("{name}: left undone without saying so\n{report:#}"));
    }
    // No retry of ours changes EC2's UnauthorizedOperation on the metadata options, nor Auto
    // Scaling's refusal: neither permission has a condition a tag still being written could meet.
    let final_answer = fault == Fault::AccessDenied
        && [
            "ModifyInstanceMetadataOptions",
            "DescribeAutoScalingInstances",
            "EnterStandby",
        ]
        .contains(&op);
    if !persistent && !final_answer && !complete {
        return Err(format!("{name}: a transient fault left it undone\n{report:#}"));
    }
    Ok(())
}

/// The named instance made a member of an Auto Scaling group (moto's `AttachInstances` tags it, as
/// AWS does); the scene's own Auto Scaling client, past the proxy.
async fn in_a_group(moto: &Moto, scene: &Scene, instance: &str) -> aws_sdk_autoscaling::Client {
    let sdk = moto.sdk_with(scene.credentials.clone(), REGION).await;
    let autoscaling = aws_sdk_autoscaling::Client::new(&sdk);
    let data = aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
        .image_id(AMI)
        .build();
    let template = (scene.account.ec2.create_launch_template())
        .launch_template_name("evidence")
        .launch_template_data(data)
        .send()
        .await
        .unwrap();
    let id = template.launch_template().unwrap().launch_template_id().unwrap();
    let spec = aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
        .launch_template_id(id)
        .build();
    (autoscaling.create_auto_scaling_group())
        .auto_scaling_group_name("evidence")
        .launch_template(spec)
        .min_size(0)
        .max_size(2)
        .desired_capacity(0)
        .availability_zones(format!("{REGION}a"))
        .send()
        .await
        .unwrap();
    (autoscaling.attach_instances())
        .auto_scaling_group_name("evidence")
        .instance_ids(instance)
        .send()
        .await
        .unwrap();
    autoscaling
}

async fn matrix(persistent: bool) {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let cases = Fault::ANY_CALL
        .iter()
        .flat_map(|f| OPERATIONS.iter().map(move |op| (*op, *f)));
    let (moto, guardduty) = (&moto, &guardduty);
    let cases = cases.map(|(op, fault)| case(moto, guardduty, op, fault, persistent));
    support::faults::assert_every_case_holds(cases, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transient_faults_are_outlasted_and_containment_comes_first() {
    matrix(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn persistent_faults_never_stop_containment_and_are_reported() {
    matrix(true).await;
}
