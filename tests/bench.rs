//! `make bench`: the performance figures of the release `bootstrap`, run as Lambda runs it (the
//! Runtime API stand-in serves it events) against moto, reaching AWS only through the proxy that
//! logs every request. A benchmark, not a test: it asserts nothing about time, and `cargo test`
//! leaves it out (`test = false` in Cargo.toml). It does check that every run did what it measures.
//!
//! Six parts, each printed as a table. Parts 1 to 4 run the function with `CHAIN` and
//! `FLEET_CONCURRENCY` from the environment (unset: the product's defaults); part 5 sets `CHAIN`.
//! 1. the process: start-up, CPU, memory, requests, on the bare emulator (`BENCH_RUNS` processes
//!    per scenario);
//! 2. side by side with the Python peer a user would otherwise deploy (`tests/peer/handler.py`,
//!    under `python -m awslambdaric`), each answer `BENCH_LATENCY_MS` late (30 ms) as over a
//!    network: time to the revocation, the named instance's credential outage, the invocation;
//! 3. fleets of 1, 11 and 51 `cycle` instances with that latency;
//! 4. 200 instances with EC2's request throttling injected (a token bucket per mutating action,
//!    `BENCH_THROTTLE=size/refill`), at each `BENCH_THROTTLE_CONCURRENCY`;
//! 5. the walk of a 3-hop chain in CloudTrail's stand-in (`CHAIN`), each answer
//!    `BENCH_CHAIN_LATENCY_MS` late (50 ms), beside the same containment with `CHAIN=off`;
//! 6. readiness over 1,000 instances and 200 roles in 4 of 17 regions, each answer
//!    `BENCH_LATENCY_MS` late (`bench/readiness.rs`; `BENCH_READINESS_RUNS`, 1);
//! 7. the named instance first: the 17 default regions at their distances, the named instance at
//!    home and a sibling in Sydney, cold and warm, beside the same with every region at the home
//!    distance and the Python peer (`bench/regions.rs`; `BENCH_REGIONS_RUNS`, 5).

#[path = "bench/readiness.rs"]
mod readiness;
#[path = "bench/regions.rs"]
mod regions;
mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::faults::{Seen, Throttling, moto_busy_before, round_trips_before, rounds};
use support::guardduty::GuardDuty;
use support::measure::{Figures, cpu, machine, ms, peak_rss_mb, setting};
use support::runtime_api::{Function, RuntimeApi, imds_counter};
use support::scene::{Scene, first_seen, instances};
use support::*;

/// The scenarios whose events are measured one by one.
#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    /// A finding type the function does not handle: parsed, skipped, reported.
    Skip,
    /// A finding about an instance tagged `revoke`: the role's sessions revoked, no instance touched.
    Revoke,
    /// A finding about an instance tagged `cycle`: revoked, and its profile detached and re-attached.
    Cycle,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Revoke => "revoke",
            Self::Cycle => "cycle",
        }
    }

    fn outcome(self) -> &'static str {
        match self {
            Self::Skip => "skipped",
            _ => "remediated",
        }
    }
}

/// Which responder serves the events.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Responder {
    Ours,
    Peer,
}

/// The function with the template's settings (`FLEET_CONCURRENCY` and `CHAIN` from the environment,
/// to compare).
fn start(api: &RuntimeApi, scene: &Scene, imds: &str, concurrency: Option<usize>) -> (Instant, Function) {
    let concurrency = concurrency
        .map(|c| c.to_string())
        .or_else(|| std::env::var("FLEET_CONCURRENCY").ok());
    let chain = std::env::var("CHAIN").ok();
    let extra: Vec<(&str, &str)> = [("FLEET_CONCURRENCY", &concurrency), ("CHAIN", &chain)]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.as_deref()?)))
        .collect();
    let started = Instant::now();
    let function = scene.function(api, imds, &extra);
    (started, function)
}

/// What one event cost, seen from outside the process.
struct Event {
    delivered: Instant,
    wall: Duration,
    cpu: Duration,
    answered_at: Instant,
    seen: Vec<Seen>,
}

impl Event {
    fn arrival(&self, operation: &str) -> Option<Instant> {
        self.seen.iter().find(|s| s.operation == operation).map(|s| s.arrived)
    }

    /// From the event's delivery to the moment the proxy received PutRolePolicy.
    fn to_revocation(&self) -> Duration {
        self.arrival("PutRolePolicy").expect("PutRolePolicy was sent") - self.delivered
    }

    /// The named instance's credential outage: from the revocation reaching IAM to the request
    /// that makes its new association reaching EC2.
    fn outage(&self) -> Duration {
        let attached = self
            .arrival("AssociateIamInstanceProfile")
            .expect("a profile was attached");
        attached - self.arrival("PutRolePolicy").expect("PutRolePolicy was sent")
    }

    /// The longest chain of requests each sent after the one before it was answered.
    fn round_trips(&self) -> usize {
        rounds(&self.seen).into_iter().max().map_or(0, |r| r + 1)
    }
}

/// Deliver `event` to a function idle at its `n`th `next`, and measure until it is idle again.
fn deliver(api: &mut RuntimeApi, function: &Function, scene: &Scene, n: usize, event: Value, expect: &str) -> Event {
    api.wait_for_next(n);
    let before_cpu = cpu(function.pid());
    let delivered = Instant::now();
    let (answer, seen) = scene.invoke(api, event, expect);
    // Idle again: the answer is posted, the logs written, and the next event asked for.
    api.wait_for_next(n + 1);
    Event {
        delivered,
        wall: answer.at - delivered,
        cpu: cpu(function.pid()) - before_cpu,
        answered_at: answer.at,
        seen,
    }
}

/// A finding about `instance` (of `role`), published in GuardDuty; or, to skip, a port probe.
fn event_for(
    scene: &Scene,
    guardduty: &GuardDuty,
    scenario: Scenario,
    role: &SeededRole,
    instance: &str,
    id: &str,
) -> Value {
    match scenario {
        Scenario::Skip => in_account(
            with_id(event_file("ec2-port-probe.json"), id),
            &scene.account_id,
            REGION,
        ),
        _ => scene.event_for(guardduty, id, role, instance),
    }
}

/// Part 1: one process for one scenario, on the bare emulator: a cold event (the process's
/// first), then a warm one about another role, each measured; plus start-up and peak RSS.
async fn run_scenario(moto: &Moto, guardduty: &GuardDuty, scenario: Scenario, run: usize, out: &mut Figures) {
    let action = if scenario == Scenario::Cycle { "cycle" } else { "revoke" };
    let scene = Scene::new(moto, guardduty, &[action]).await;
    let other = scene.account.role("OtherAppRole", &[]).await;
    let other_instance = instances(&scene.account, &other, &[action]).await.remove(0).id;
    let (imds_endpoint, imds_connections) = imds_counter();
    let mut api = RuntimeApi::start_in(&scene.account_id);
    let (started, function) = start(&api, &scene, &imds_endpoint, None);
    let first_next = api.wait_for_next(1);
    let at_init = scene.proxy.seen().len();
    let name = scenario.name();
    let id = |when: &str| format!("bench-{name}-{run}-{when}");
    let first = event_for(
        &scene,
        guardduty,
        scenario,
        &scene.role,
        &scene.expects[0].id,
        &id("cold"),
    );
    let second = event_for(&scene, guardduty, scenario, &other, &other_instance, &id("warm"));
    let cold = deliver(&mut api, &function, &scene, 1, first, scenario.outcome());
    let warm = deliver(&mut api, &function, &scene, 2, second, scenario.outcome());
    if scenario == Scenario::Cycle {
        out.add(
            "peak RSS, cycle (cold + warm)".into(),
            "MB",
            "≤ 25 MB",
            peak_rss_mb(function.pid()),
        );
    }
    if scenario == Scenario::Skip {
        out.add(
            "init: exec to first `next`".into(),
            "ms",
            "≤ 15 ms",
            ms(first_next - started),
        );
        // Delivered the moment it asked: the time Lambda's first invocation of a cold start takes.
        let first_response = ms(cold.answered_at - started);
        out.add(
            "cold start: exec to first response (skip)".into(),
            "ms",
            "",
            first_response,
        );
        out.add("AWS requests during init".into(), "", "0", at_init as f64);
    }
    for (when, e) in [("cold", &cold), ("warm", &warm)] {
        out.add(format!("handler CPU, {name}, {when}"), "ms", "≤ 2 ms", ms(e.cpu));
        out.add(format!("wall, {name}, {when}"), "ms", "(moto-bound)", ms(e.wall));
        if scenario != Scenario::Skip {
            out.add(format!("AWS requests, {name}, {when}"), "", "", e.seen.len() as f64);
        }
    }
    let logs = function.stop();
    assert!(!logs.is_empty());
    out.add(
        "IMDS connections, whole run".into(),
        "",
        "0",
        imds_connections.load(Ordering::SeqCst) as f64,
    );
}

/// Part 2: one fresh process of `responder`, with `latency` on every AWS answer: a cold `cycle`
/// event, then a warm one about another role. Returns the cold event's requests.
async fn compare(
    moto: &Moto,
    guardduty: &GuardDuty,
    responder: Responder,
    (run, latency): (usize, Duration),
    out: &mut Figures,
) -> Vec<Seen> {
    let scene = Scene::new(moto, guardduty, &["cycle"]).await;
    let other = scene.account.role("OtherAppRole", &[]).await;
    let other_instance = instances(&scene.account, &other, &["cycle"]).await.remove(0).id;
    let (imds_endpoint, _) = imds_counter();
    let mut api = RuntimeApi::start_in(&scene.account_id);
    let (started, function) = match responder {
        Responder::Ours => start(&api, &scene, &imds_endpoint, None),
        Responder::Peer => (Instant::now(), scene.peer(&api, &imds_endpoint)),
    };
    let first_next = api.wait_for_next(1);
    scene.proxy.set_latency(latency);
    let id = |when: &str| format!("bench-{responder:?}-{run}-{when}");
    let first = scene.event_for(guardduty, &id("cold"), &scene.role, &scene.expects[0].id);
    let second = scene.event_for(guardduty, &id("warm"), &other, &other_instance);
    let cold = deliver(&mut api, &function, &scene, 1, first.clone(), "remediated");
    let warm = deliver(&mut api, &function, &scene, 2, second, "remediated");
    // Both did the job: the named instance holds its profile through an association made after
    // the cut-off (invariant 2), the role one cut-off covering the finding (invariant 1).
    let violations = scene.violations(&[first_seen(&first)]).await;
    assert_eq!(violations, Vec::<(String, String)>::new(), "{responder:?}");
    let who = match responder {
        Responder::Ours => "ours",
        Responder::Peer => "peer",
    };
    out.add(
        format!("{who}: init, exec to first `next`"),
        "ms",
        "",
        ms(first_next - started),
    );
    for (when, e) in [("cold", &cold), ("warm", &warm)] {
        out.add(
            format!("{who}: to PutRolePolicy, {when}"),
            "ms",
            "",
            ms(e.to_revocation()),
        );
        let busy = moto_busy_before(&e.seen, "PutRolePolicy").expect("PutRolePolicy was sent");
        out.add(
            format!("{who}: moto busy before PutRolePolicy, {when}"),
            "ms",
            "",
            ms(busy),
        );
        out.add(format!("{who}: outage, {when}"), "ms", "", ms(e.outage()));
        out.add(format!("{who}: invocation, {when}"), "ms", "", ms(e.wall));
        out.add(format!("{who}: requests, {when}"), "", "", e.seen.len() as f64);
        let before = round_trips_before(&e.seen, "PutRolePolicy").unwrap() as f64;
        out.add(
            format!("{who}: round trips before PutRolePolicy, {when}"),
            "",
            "",
            before,
        );
        out.add(format!("{who}: round trips, {when}"), "", "", e.round_trips() as f64);
    }
    cold.seen
}

/// The side-by-side table: each figure's median (min–max) for both, and ours ÷ the peer's.
fn print_comparison(out: &Figures, runs: usize, latency: Duration) {
    println!();
    println!(
        "Side by side, {runs} fresh processes each, every AWS answer {} ms late; cold: the process's first event",
        latency.as_millis()
    );
    println!();
    println!("| figure | exfil-responder | Python peer | ours ÷ peer |");
    println!("|---|---|---|---|");
    let rows = [
        ("init: exec to first `next`", "init, exec to first `next`".to_owned()),
        ("event → PutRolePolicy arrives, cold", "to PutRolePolicy, cold".into()),
        ("event → PutRolePolicy arrives, warm", "to PutRolePolicy, warm".into()),
        (
            "moto at work before PutRolePolicy arrives, cold",
            "moto busy before PutRolePolicy, cold".into(),
        ),
        (
            "moto at work before PutRolePolicy arrives, warm",
            "moto busy before PutRolePolicy, warm".into(),
        ),
        ("named instance's credential outage, cold", "outage, cold".into()),
        ("named instance's credential outage, warm", "outage, warm".into()),
        ("invocation, one `cycle` instance, cold", "invocation, cold".into()),
        ("invocation, one `cycle` instance, warm", "invocation, warm".into()),
        ("AWS requests, cold", "requests, cold".into()),
        ("AWS requests, warm", "requests, warm".into()),
        (
            "round trips before PutRolePolicy, cold",
            "round trips before PutRolePolicy, cold".into(),
        ),
        (
            "sequential round trips, whole invocation, cold",
            "round trips, cold".into(),
        ),
    ];
    for (label, key) in rows {
        let (Some(ours), Some(peer)) = (out.get(&format!("ours: {key}")), out.get(&format!("peer: {key}"))) else {
            continue;
        };
        let ratio = ours.median() / peer.median();
        println!("| {label} | {} | {} | {ratio:.2}× |", ours.spread(), peer.spread());
    }
}

/// One cold invocation request by request: its round, when it arrived, the operation, where.
fn print_timeline(who: &str, seen: &[Seen]) {
    let Some(first) = seen.first().map(|s| s.arrived) else {
        return;
    };
    println!();
    println!(
        "{who}, one cold `cycle` invocation, request by request (round: sent after that many answers in sequence)"
    );
    println!();
    println!("| round | arrived (ms after the first request) | request | region |");
    println!("|---|---|---|---|");
    for (s, round) in seen.iter().zip(rounds(seen)) {
        println!(
            "| {} | {:.0} | {} {} | {} |",
            round + 1,
            ms(s.arrived - first),
            s.service,
            s.operation,
            s.region
        );
    }
}

/// Parts 3 and 4: one process, one finding whose role `size` instances use, every one tagged
/// `cycle`, with `latency` on every answer and, if set, EC2's throttling. Returns the invocation's
/// wall time, its requests, and how many were throttled.
async fn run_fleet(
    moto: &Moto,
    guardduty: &GuardDuty,
    (size, latency, concurrency): (usize, Duration, Option<usize>),
    throttling: Option<Throttling>,
    run: usize,
) -> (f64, usize, usize, f64) {
    let scene = Scene::new(moto, guardduty, &vec!["cycle"; size]).await;
    scene.proxy.set_latency(latency);
    if let Some(t) = throttling {
        scene.proxy.throttle(t);
    }
    let (imds_endpoint, _) = imds_counter();
    let mut api = RuntimeApi::start_in(&scene.account_id);
    let (_, function) = start(&api, &scene, &imds_endpoint, concurrency);
    let id = format!("bench-fleet-{size}-{}-{run}", concurrency.unwrap_or(0));
    let event = scene.event(guardduty, &id);
    api.wait_for_next(1);
    let delivered = Instant::now();
    let (answer, seen) = scene.invoke(&mut api, event.clone(), "remediated");
    let cycled = answer.body["instances"].as_array().unwrap().len();
    assert_eq!(cycled, size, "{}", answer.body);
    api.wait_for_next(2);
    // Every instance cycled after the final cut-off, none left without its profile.
    let violations = scene.violations(&[first_seen(&event)]).await;
    assert_eq!(violations, Vec::<(String, String)>::new());
    let throttled = seen.iter().filter(|s| s.fault.is_some()).count();
    (
        ms(answer.at - delivered),
        seen.len(),
        throttled,
        peak_rss_mb(function.pid()),
    )
}

/// Part 5: a `revoke` finding whose stolen key assumed RoleB, whose session assumed RoleC, whose
/// session assumed RoleD (all recorded in the stand-in's trail), with `latency` on every answer;
/// and the same with `CHAIN=off`, to show the containment is not delayed by the walk.
async fn chain_walk(moto: &Moto, guardduty: &GuardDuty, latency: Duration, run: usize, out: &mut Figures) {
    use support::cloudtrail::{Recorded, assume_role};
    let over = format!("+{} ms per answer", latency.as_millis());
    let mut requests = [0.0; 2];
    for (i, chain) in ["off", "contain"].into_iter().enumerate() {
        let scene = Scene::new(moto, guardduty, &["revoke"]).await;
        let account = scene.account_id.as_str();
        let mut key = "ASIAQX3EXAMPLEKEY7N2".to_owned();
        for hop in ["RoleB", "RoleC", "RoleD"] {
            let role = scene.account.role(hop, &[]).await;
            let session = format!("ASIA{}SESSION0000001", hop.to_uppercase());
            let at = chrono::Utc::now() - chrono::Duration::minutes(2);
            let record = assume_role(&key, (account, support::REGION), (&role.arn, &role.id), &session, at);
            let id = format!("{hop}-{run}");
            let place = Recorded {
                account,
                region: support::REGION,
                key: &key,
                at,
                id: &id,
            };
            guardduty.trail().record(&place, &record);
            key = session;
        }
        let (imds_endpoint, _) = imds_counter();
        let mut api = RuntimeApi::start_in(&scene.account_id);
        let function = scene.function(&api, &imds_endpoint, &[("CHAIN", chain)]);
        api.wait_for_next(1);
        scene.proxy.set_latency(latency);
        let event = scene.event(guardduty, &format!("bench-chain-{chain}-{run}"));
        let e = deliver(&mut api, &function, &scene, 1, event, "remediated");
        let puts: Vec<Instant> = e
            .seen
            .iter()
            .filter(|s| s.operation == "PutRolePolicy")
            .map(|s| s.arrived)
            .collect();
        out.add(
            format!("CHAIN={chain}: to PutRolePolicy, {over}"),
            "ms",
            "",
            ms(e.to_revocation()),
        );
        out.add(format!("CHAIN={chain}: invocation, {over}"), "ms", "", ms(e.wall));
        requests[i] = e.seen.len() as f64;
        if chain == "contain" {
            // It did what it measures: the three hops revoked, after the instance's role.
            assert_eq!(
                puts.len(),
                4,
                "{:?}",
                e.seen.iter().map(|s| &s.operation).collect::<Vec<_>>()
            );
            for hop in ["RoleB", "RoleC", "RoleD"] {
                assert!(scene.account.revocation(hop).await.is_some(), "{hop}");
            }
            let lookups = e.seen.iter().filter(|s| s.operation == "LookupEvents").count();
            out.add(
                format!("CHAIN=contain: 3 hops revoked, from the first PutRolePolicy, {over}"),
                "ms",
                "",
                ms(puts[3] - puts[0]),
            );
            out.add(
                "CHAIN=contain: LookupEvents sent (3 keys, 2 regions)".into(),
                "",
                "",
                lookups as f64,
            );
            out.add(
                "CHAIN=contain: the walk's requests (on − off)".into(),
                "",
                "",
                requests[1] - requests[0],
            );
        }
    }
}

fn package(arch: &str) -> Option<f64> {
    let dir = std::env::var("BENCH_LAMBDA_DIR").ok()?;
    let zip = std::fs::metadata(format!("{dir}/{arch}/exfil-responder/bootstrap.zip")).ok()?;
    Some(zip.len() as f64)
}

/// The EC2 actions a cycle sends that EC2 counts as mutating, each with its own bucket.
const MUTATING: [&str; 4] = [
    "CreateTags",
    "DisassociateIamInstanceProfile",
    "AssociateIamInstanceProfile",
    "RebootInstances",
];

fn main() {
    let runs: usize = setting("BENCH_RUNS", 10);
    let fleet_runs: usize = setting("BENCH_FLEET_RUNS", 3);
    let latency = Duration::from_millis(setting("BENCH_LATENCY_MS", 30));
    let throttle: String = setting("BENCH_THROTTLE", "50/5".to_owned());
    let (size, refill) = throttle
        .split_once('/')
        .and_then(|(s, r)| Some((s.parse().ok()?, r.parse().ok()?)))
        .expect("BENCH_THROTTLE is size/refill per second, as 50/5");
    let concurrencies: Vec<usize> = setting("BENCH_THROTTLE_CONCURRENCY", "4,8,16,32,50".to_owned())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let moto = Moto::start();
        let guardduty = GuardDuty::start(&moto);
        let bootstrap = support::runtime_api::bootstrap();
        eprintln!("bench: {runs} runs of each scenario, {fleet_runs} of each fleet size");
        let mut process = Figures::default();
        let mut side = Figures::default();
        let mut timelines = Vec::new();
        for run in 0..runs {
            for scenario in [Scenario::Skip, Scenario::Revoke, Scenario::Cycle] {
                run_scenario(&moto, &guardduty, scenario, run, &mut process).await;
            }
            // Alternate who goes first, so that neither always meets a busier emulator.
            let order = if run % 2 == 0 {
                [Responder::Ours, Responder::Peer]
            } else {
                [Responder::Peer, Responder::Ours]
            };
            for responder in order {
                let seen = compare(&moto, &guardduty, responder, (run, latency), &mut side).await;
                if run == 0 {
                    timelines.push((responder, seen));
                }
            }
        }
        let mut fleet = Figures::default();
        let over = format!("+{} ms per answer", latency.as_millis());
        for size in [1, 11, 51].into_iter().filter(|_| fleet_runs > 0) {
            let name = match size {
                1 => format!("fleet cycle, the named instance alone, {over}"),
                n => format!("fleet cycle, named + {} siblings, {over}", n - 1),
            };
            for run in 0..fleet_runs {
                let (wall, _, _, rss) = run_fleet(&moto, &guardduty, (size, latency, None), None, run).await;
                fleet.add(name.clone(), "ms", if size == 51 { "≤ 3× alone" } else { "" }, wall);
                if size == 51 {
                    process.add("peak RSS, 51-instance cycle".into(), "MB", "≤ 25 MB", rss);
                }
            }
        }
        let mut throttled = Figures::default();
        for &concurrency in concurrencies.iter().filter(|_| fleet_runs > 0) {
            let throttling = Throttling::new(&MUTATING, size, refill);
            let (wall, requests, faults, _) = run_fleet(
                &moto,
                &guardduty,
                (200, latency, Some(concurrency)),
                Some(throttling),
                0,
            )
            .await;
            let at = format!("FLEET_CONCURRENCY={concurrency}");
            throttled.add(format!("200 instances, {at}: invocation"), "s", "", wall / 1000.0);
            throttled.add(format!("200 instances, {at}: requests"), "", "", requests as f64);
            throttled.add(format!("200 instances, {at}: throttled answers"), "", "", faults as f64);
        }

        println!();
        println!("exfil-responder benchmark: {}", machine());
        println!(
            "bootstrap: {} ({} bytes)",
            bootstrap.display(),
            std::fs::metadata(&bootstrap).unwrap().len()
        );
        println!("{runs} runs per scenario ({fleet_runs} per fleet size); each run is a fresh process");
        let chain = std::env::var("CHAIN").unwrap_or_else(|_| "the default (contain)".into());
        println!(
            "CHAIN: {chain}, but for the runs of the trail's table and the regions' table, which set it themselves"
        );
        print_table("figure", &process);
        for arch in ["arm64", "x86_64"] {
            match package(arch) {
                Some(bytes) => println!(
                    "| zipped package, {arch} | {:.2} MB ({bytes:.0} bytes) | | | 1 | {} |",
                    bytes / 1e6,
                    if arch == "arm64" { "≤ 6 MB" } else { "" }
                ),
                None => println!("| zipped package, {arch} | not built (make bench builds it) | | | | |"),
            }
        }
        print_comparison(&side, runs, latency);
        for (responder, seen) in &timelines {
            let who = match responder {
                Responder::Ours => "exfil-responder",
                Responder::Peer => "Python peer",
            };
            print_timeline(who, seen);
        }
        print_fleets(&fleet, &throttled, (size, refill));
        let chain_latency = Duration::from_millis(setting("BENCH_CHAIN_LATENCY_MS", 50));
        let mut chain = Figures::default();
        for run in 0..setting("BENCH_CHAIN_RUNS", 3) {
            chain_walk(&moto, &guardduty, chain_latency, run, &mut chain).await;
        }
        print_table("the stolen key's trail (CHAIN)", &chain);
        let mut ready = Figures::default();
        for _ in 0..setting("BENCH_READINESS_RUNS", 1) {
            let run = readiness::readiness_at_scale(&moto, &guardduty, latency).await;
            for f in run.figures {
                for v in f.values {
                    ready.add(f.name.clone(), f.unit, f.target, v);
                }
            }
        }
        if !ready.figures.is_empty() {
            print_table("readiness at scale", &ready);
        }
        let mut apart = Figures::default();
        let mut timeline = None;
        for run in 0..regions::runs() {
            // Rotate who goes first, so that none always meets a busier emulator.
            for i in 0..regions::RUNS.len() {
                let measured = regions::RUNS[(run + i) % regions::RUNS.len()];
                let seen = regions::named_first(&moto, &guardduty, measured, run, &mut apart).await;
                if run == 0 && measured == regions::RUNS[0] {
                    timeline = Some(seen);
                }
            }
        }
        regions::print(&apart, regions::runs());
        if let Some(seen) = timeline {
            print_timeline("exfil-responder, regions apart", &seen);
        }
    });
}

/// A table of figures under `heading`: each one's median, min, max, count and target.
fn print_table(heading: &str, figures: &Figures) {
    println!();
    println!("| {heading} | median | min | max | n | target |");
    println!("|---|---|---|---|---|---|");
    for f in &figures.figures {
        println!("{}", f.row());
    }
}

fn print_fleets(fleet: &Figures, throttled: &Figures, (size, refill): (u32, u32)) {
    if fleet.figures.is_empty() {
        return;
    }
    print_table("fleet", fleet);
    let alone = fleet.figures[0].median();
    for f in &fleet.figures[1..] {
        println!("| {}: median ÷ alone | {:.2}× | | | | |", f.name, f.median() / alone);
    }
    println!();
    println!(
        "200 `cycle` instances, EC2 throttling each mutating action with a bucket of {size} tokens refilled at {refill} per second"
    );
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    for f in &throttled.figures {
        println!("| {} | {} |", f.name, f.spread());
    }
}
