//! Part 6 of `make bench`: readiness at scale. One account with `BENCH_READINESS_INSTANCES`
//! (1,000) running instances over `BENCH_READINESS_ROLES` (200) roles, spread over four of the
//! 17 default regions that DescribeRegions lists (the other 13 empty, answered by moto as AWS
//! answers an empty region), every answer `latency` late. The release bootstrap runs
//! `readiness --json` as the CLI does (the same code a Lambda invocation runs): the wall time, the
//! requests by operation, EC2's busiest Describe rate, and the process's peak memory.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{IamInstanceProfileSpecification, ResourceType, Tag, TagSpecification};
use futures::StreamExt;
use serde_json::Value;

use crate::support::guardduty::GuardDuty;
use crate::support::measure::{Figures, ms, setting};
use crate::support::scene::Scene;
use crate::support::world::default_regions;
use crate::support::{AMI, Moto};

/// The regions the instances run in.
const WITH_INSTANCES: [&str; 4] = ["us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1"];

/// Each role's action tag, in turn: what the instances' plans differ by.
const ROLE_ACTIONS: [Option<&str>; 4] = [Some("cycle"), None, Some("revoke"), Some("cycle-reboot")];

pub async fn readiness_at_scale(moto: &Moto, guardduty: &GuardDuty, latency: Duration) -> Figures {
    let instances: usize = setting("BENCH_READINESS_INSTANCES", 1000);
    let roles: usize = setting("BENCH_READINESS_ROLES", 200);
    let scene = Scene::new(moto, guardduty, &[]).await;
    scene.proxy.enable_regions(&default_regions());
    // GuardDuty on in every region, as an organisation enables it: a detector to list and ask after.
    for region in default_regions() {
        guardduty.enabled(&scene.account_id, region, "bench0detector0000000000000000000");
    }
    let seeded = Instant::now();
    seed(&scene, instances, roles).await;
    eprintln!(
        "bench: readiness: seeded {instances} instances over {roles} roles in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );
    scene.proxy.set_latency(latency);
    let before = scene.proxy.seen().len();
    let started = Instant::now();
    let (report, peak_mb) = run(&scene);
    let wall = started.elapsed();
    let seen: Vec<_> = scene.proxy.seen().into_iter().skip(before).collect();

    // It did what is measured: every role with an instance, and every instance, assessed.
    let account = &report["readiness"]["accounts"][0];
    assert_eq!(account["unread"], Value::Array(Vec::new()), "{account}");
    let assessed: Vec<&Value> = account["roles"].as_array().unwrap().iter().collect();
    let with_instances = assessed
        .iter()
        .filter(|r| !r["instances"].as_array().unwrap().is_empty());
    assert_eq!(with_instances.count(), roles, "roles assessed");
    let total: usize = assessed.iter().map(|r| r["instances"].as_array().unwrap().len()).sum();
    assert_eq!(total, instances, "instances assessed");

    let over = format!("+{} ms per answer", latency.as_millis());
    let mut out = Figures::default();
    let name = format!("readiness, {instances} instances over {roles} roles in 4 of 17 regions, {over}");
    out.add(
        format!("{name}: wall time"),
        "s",
        "≪ 900 s (Lambda's limit)",
        wall.as_secs_f64(),
    );
    out.add(format!("{name}: requests"), "", "", seen.len() as f64);
    out.add(format!("{name}: peak RSS"), "MB", "", peak_mb);
    let mut by_operation: BTreeMap<&str, usize> = BTreeMap::new();
    let mut describes_by_region: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &seen {
        *by_operation.entry(s.operation.as_str()).or_default() += 1;
        if s.operation.starts_with("Describe") {
            *describes_by_region.entry(s.region.as_str()).or_default() += 1;
        }
    }
    for (operation, n) in by_operation {
        out.add(format!("{name}: {operation}"), "", "", n as f64);
    }
    let busiest = describes_by_region.values().copied().max().unwrap_or(0);
    out.add(
        format!("{name}: EC2 Describe* requests per second, busiest region"),
        "/s",
        "≤ 20/s (EC2's describe refill)",
        busiest as f64 / (ms(wall) / 1000.0),
    );
    out
}

/// The roles (each with its profile) and their instances: `instances / roles` each, the roles
/// spread over the regions in turn. Seeded straight into moto, not through the proxy, one launch
/// per instance: moto associates the profile with only the first instance of a launch of several
/// (AWS, with each).
async fn seed(scene: &Scene, instances: usize, roles: usize) {
    let each = instances / roles;
    let mut launches = Vec::new();
    for r in 0..roles {
        let tags: Vec<(&str, &str)> = ROLE_ACTIONS[r % ROLE_ACTIONS.len()]
            .map(|a| ("exfil-responder:action", a))
            .into_iter()
            .collect();
        let role = scene.account.role(&format!("Service{r:03}Role"), &tags).await;
        let region = WITH_INSTANCES[r % WITH_INSTANCES.len()];
        let count = if r + 1 == roles {
            instances - each * (roles - 1)
        } else {
            each
        };
        launches.extend((0..count).map(|i| (region, role.profile_arn.clone(), format!("team-{}", (r + i) % 7))));
    }
    futures::stream::iter(launches)
        .map(|(region, profile, team)| {
            let ec2 = scene.account.in_region(region);
            async move {
                let tag = Tag::builder().key("team").value(team).build();
                ec2.run_instances()
                    .image_id(AMI)
                    .min_count(1)
                    .max_count(1)
                    .iam_instance_profile(IamInstanceProfileSpecification::builder().arn(profile).build())
                    .tag_specifications(
                        TagSpecification::builder()
                            .resource_type(ResourceType::Instance)
                            .tags(tag)
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
}

/// `bootstrap readiness --json` in the scene's account, through the proxy: its report, and its
/// peak resident set (the kernel's `ru_maxrss` for the exited child, in MB).
fn run(scene: &Scene) -> (Value, f64) {
    let c = &scene.credentials;
    let child = Command::new(crate::support::runtime_api::bootstrap())
        .args(["readiness", "--json"])
        .env_clear()
        .env("AWS_ENDPOINT_URL", &scene.proxy.endpoint)
        .env("AWS_REGION", crate::support::REGION)
        .env("AWS_ACCESS_KEY_ID", c.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", c.secret_access_key())
        .env("AWS_SESSION_TOKEN", c.session_token().unwrap())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the bootstrap's readiness");
    let pid = child.id() as libc::pid_t;
    // Read stdout to its end before reaping: a full pipe would block the child.
    let mut stdout = child.stdout.expect("piped stdout");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid, and both pointers are to locals that outlive the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4");
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    // Exit 0 or 3 (a role not containable): both are a report.
    let code = libc::WEXITSTATUS(status);
    assert!(
        libc::WIFEXITED(status) && (code == 0 || code == 3),
        "exit {code}: {report}"
    );
    (report, usage.ru_maxrss as f64 / 1024.0)
}
