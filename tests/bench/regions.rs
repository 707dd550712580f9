//! Part 7 of `make bench`: the named instance first, in a world of the account's shape. The 17
//! default regions at their distances from a function in us-east-1 (`support::world`: each answer
//! one round trip late, that region's; a new connection two more; the 15 regions without
//! instances answered as AWS answers an empty region). The finding's instance in us-east-1 tagged
//! `cycle`, one sibling in ap-southeast-2 (Sydney, about 200 ms away) tagged `cycle`, `CHAIN=off`;
//! a cold event (the process's first), then a warm one about another role of the same shape.
//! Beside it, the same with every region at the home distance, and the Python peer.

use std::time::{Duration, Instant};

use crate::support::faults::{Seen, covered};
use crate::support::guardduty::GuardDuty;
use crate::support::measure::{Figures, ms, setting};
use crate::support::runtime_api::{RuntimeApi, imds_counter};
use crate::support::scene::{Scene, first_seen, instances};
use crate::support::world::World;
use crate::support::{Moto, REGION, SeededRole};
use crate::{Event, Responder, deliver};

/// Where the far sibling runs.
const FAR: &str = "ap-southeast-2";

/// How the regions are placed.
#[derive(Clone, Copy, PartialEq)]
pub enum Shape {
    /// Each at its distance.
    Apart,
    /// Every region at the home region's distance: what the named instance's outage is held to.
    AtHome,
}

/// The runs measured, each a fresh process: who, and in what world.
pub const RUNS: [(Responder, Shape); 3] = [
    (Responder::Ours, Shape::Apart),
    (Responder::Ours, Shape::AtHome),
    (Responder::Peer, Shape::Apart),
];

fn label(responder: Responder, shape: Shape) -> &'static str {
    match (responder, shape) {
        (Responder::Ours, Shape::Apart) => "ours, apart",
        (Responder::Ours, Shape::AtHome) => "ours, at home",
        (Responder::Peer, Shape::Apart) => "peer, apart",
        (Responder::Peer, Shape::AtHome) => "peer, at home",
    }
}

/// A running instance in [`FAR`] holding `role`'s profile, tagged `cycle`.
async fn far_sibling(scene: &Scene, role: &SeededRole) -> String {
    let ec2 = scene.account.in_region(FAR);
    let tags = [("exfil-responder:action", "cycle"), ("team", "web")];
    scene.account.instance_in(&ec2, Some(&role.profile_arn), &tags).await
}

/// One fresh process of `responder` in a world of `shape`: a cold event, then a warm one. Returns
/// the cold event's requests.
pub async fn named_first(
    moto: &Moto,
    guardduty: &GuardDuty,
    (responder, shape): (Responder, Shape),
    run: usize,
    out: &mut Figures,
) -> Vec<Seen> {
    let scene = Scene::new(moto, guardduty, &["cycle"]).await;
    let far = far_sibling(&scene, &scene.role).await;
    let other = scene.account.role("OtherAppRole", &[]).await;
    let other_named = instances(&scene.account, &other, &["cycle"]).await.remove(0).id;
    let other_far = far_sibling(&scene, &other).await;
    let handshake = setting("BENCH_HANDSHAKE_ROUND_TRIPS", 2);
    scene.proxy.place(World::default_regions(
        &[REGION, FAR],
        shape == Shape::AtHome,
        handshake,
    ));
    let (imds_endpoint, _) = imds_counter();
    let mut api = RuntimeApi::start_in(&scene.account_id);
    let function = match responder {
        Responder::Ours => scene.function(&api, &imds_endpoint, &[("CHAIN", "off")]),
        Responder::Peer => scene.peer(&api, &imds_endpoint),
    };
    let who = label(responder, shape);
    let id = |when: &str| format!("bench-regions-{}-{run}-{when}", who.replace([',', ' '], ""));
    let first = scene.event_for(guardduty, &id("cold"), &scene.role, &scene.expects[0].id);
    let second = scene.event_for(guardduty, &id("warm"), &other, &other_named);
    let cold = deliver(&mut api, &function, &scene, 1, first.clone(), "remediated");
    let warm = deliver(&mut api, &function, &scene, 2, second, "remediated");
    // It did what is measured: the named instance holds its profile through an association made
    // after the cut-off, and (ours) so does the far sibling.
    let violations = scene.violations(&[first_seen(&first)]).await;
    assert_eq!(violations, Vec::<(String, String)>::new(), "{who}");
    for (when, e, far) in [("cold", &cold, &far), ("warm", &warm, &other_far)] {
        if responder == Responder::Ours {
            assert_far_cycled(&scene, e, far).await;
        }
        add(out, who, when, e);
    }
    cold.seen
}

/// The far sibling holds a profile through an association made after the revocation was written.
async fn assert_far_cycled(scene: &Scene, e: &Event, far: &str) {
    let written = e.seen.iter().find(|s| s.operation == "PutRolePolicy").unwrap().at;
    let associations = scene
        .account
        .in_region(FAR)
        .describe_iam_instance_profile_associations()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-id")
                .values(far)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let current = associations
        .iam_instance_profile_associations()
        .iter()
        .find(|a| a.state().is_some_and(|s| s.as_str() == "associated"))
        .and_then(|a| a.association_id())
        .expect("the far sibling holds a profile");
    let made = scene.proxy.associated_at(current).expect("made through the proxy");
    assert!(
        made > written,
        "{far}'s association {current} was made before the revocation"
    );
}

fn add(out: &mut Figures, who: &str, when: &str, e: &Event) {
    let put = e.seen.iter().find(|s| s.operation == "PutRolePolicy").unwrap();
    let attached_in = |region: &str| {
        e.seen
            .iter()
            .find(|s| s.operation == "AssociateIamInstanceProfile" && s.region == region)
            .map(|s| s.arrived)
    };
    let named = attached_in(REGION).expect("the named instance was re-attached");
    out.add(
        format!("{who}: to PutRolePolicy, {when}"),
        "ms",
        "",
        ms(e.to_revocation()),
    );
    out.add(
        format!("{who}: named outage, {when}"),
        "ms",
        "",
        ms(named - put.arrived),
    );
    if let Some(far) = attached_in(FAR) {
        out.add(format!("{who}: far outage, {when}"), "ms", "", ms(far - put.arrived));
        let written = put.answered.expect("PutRolePolicy was answered");
        out.add(
            format!("{who}: far waits on others, {when}"),
            "ms",
            "",
            ms(idle(&e.seen, FAR, (written, far))),
        );
    }
    out.add(format!("{who}: invocation, {when}"), "ms", "", ms(e.wall));
    out.add(format!("{who}: requests, {when}"), "", "", e.seen.len() as f64);
}

/// How long, from `from` to `to`, no request to `region` was in flight (its connection being
/// opened counts): the time its instances waited on something other than their own region.
fn idle(seen: &[Seen], region: &str, (from, to): (Instant, Instant)) -> Duration {
    let spans = seen
        .iter()
        .filter(|s| s.region == region)
        .filter_map(|s| Some(((s.arrived - s.handshake).max(from), s.answered?.min(to))));
    (to - from).saturating_sub(covered(spans.collect()))
}

/// The table: each figure's median (min–max) for the three runs, and the targets' ratios.
pub fn print(out: &Figures, runs: usize) {
    if out.figures.is_empty() {
        return;
    }
    println!();
    println!(
        "The named instance first: 17 regions at their distances from us-east-1 (docs/src/performance.md), \
         the named instance at home, a sibling in {FAR}; {runs} fresh processes each; CHAIN=off"
    );
    println!();
    let columns = RUNS.map(|(r, s)| label(r, s));
    println!("| figure | {} |", columns.join(" | "));
    println!("|---|---|---|---|");
    let rows = [
        ("event → PutRolePolicy arrives", "to PutRolePolicy"),
        ("named instance's credential outage", "named outage"),
        ("far sibling's credential outage", "far outage"),
        (
            "far sibling waiting on other regions (after the write)",
            "far waits on others",
        ),
        ("invocation", "invocation"),
        ("AWS requests", "requests"),
    ];
    for when in ["cold", "warm"] {
        for (name, key) in rows {
            let cells: Vec<String> = columns
                .iter()
                .map(|who| {
                    out.get(&format!("{who}: {key}, {when}"))
                        .map_or("—".into(), |f| f.spread())
                })
                .collect();
            println!("| {name}, {when} | {} |", cells.join(" | "));
        }
    }
    println!();
    println!("| target | cold | warm |");
    println!("|---|---|---|");
    let ratio = |a: &str, b: &str, when: &str| {
        let median = |who: &str| out.get(&format!("{who}: named outage, {when}")).map(|f| f.median());
        match (median(a), median(b)) {
            (Some(a), Some(b)) => format!("{:.2}×", a / b),
            _ => "—".into(),
        }
    };
    let both = |a: &str, b: &str| [ratio(a, b, "cold"), ratio(a, b, "warm")];
    let [cold, warm] = both(columns[0], columns[2]);
    println!("| named outage, ours apart ÷ peer apart (≤ 1.00×) | {cold} | {warm} |");
    let [cold, warm] = both(columns[0], columns[1]);
    println!("| named outage, ours apart ÷ ours at home (≤ 1.10×) | {cold} | {warm} |");
    let far_trip = crate::support::world::distance_of(FAR);
    let waits = |when: &str| {
        out.get(&format!("{}: far waits on others, {when}", columns[0]))
            .map_or("—".into(), |f| format!("{:.0} ms", f.median()))
    };
    println!(
        "| far sibling waiting on other regions (≤ one far round trip, {} ms) | {} | {} |",
        far_trip.as_millis(),
        waits("cold"),
        waits("warm")
    );
}

/// How many fresh processes of each run.
pub fn runs() -> usize {
    setting("BENCH_REGIONS_RUNS", 5)
}
