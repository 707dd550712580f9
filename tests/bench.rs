//! `make bench`: the performance figures of the release `bootstrap`, run as Lambda runs it (the
//! Runtime API stand-in serves it events) against moto, reaching AWS only through the proxy that
//! logs every request. Prints each figure's median, min and max over `BENCH_RUNS` runs, beside its
//! target. A benchmark, not a test: it asserts nothing about time, and `cargo test` leaves it out
//! (`test = false` in Cargo.toml). It does check that every run did what it measures.

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::faults::round_trips_before;
use support::guardduty::GuardDuty;
use support::runtime_api::{Function, RuntimeApi, imds_counter};
use support::scene::{Scene, instances};
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

/// One figure's samples.
struct Figure {
    name: String,
    unit: &'static str,
    values: Vec<f64>,
    target: &'static str,
}

impl Figure {
    fn new(name: impl Into<String>, unit: &'static str, target: &'static str) -> Self {
        Self {
            name: name.into(),
            unit,
            values: Vec::new(),
            target,
        }
    }

    fn median(&self) -> f64 {
        let mut v = self.values.clone();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }

    fn row(&self) -> String {
        let min = self.values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let shown = |v: f64| match self.unit {
            "ms" if v < 10.0 => format!("{v:.2}"),
            "ms" => format!("{v:.1}"),
            "MB" => format!("{v:.1}"),
            _ => format!("{v:.0}"),
        };
        format!(
            "| {} | {} {} | {} | {} | {} | {} |",
            self.name,
            shown(self.median()),
            self.unit,
            shown(min),
            shown(max),
            self.values.len(),
            self.target
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// CPU time (user + system, every thread, exited ones included) the process has used so far.
fn cpu(pid: u32) -> Duration {
    let mut clock: libc::clockid_t = 0;
    let mut time = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: both pointers are to locals that outlive the calls.
    let ok = unsafe {
        libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) == 0 && libc::clock_gettime(clock, &mut time) == 0
    };
    assert!(ok, "cannot read the CPU clock of process {pid}");
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

/// The process's peak resident set so far (VmHWM), in MB.
fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kb / 1024.0
}

fn start(api: &RuntimeApi, scene: &Scene, imds: &str) -> (Instant, Function) {
    // To compare settings: `make bench FLEET_CONCURRENCY=16` runs the function with it.
    let concurrency = std::env::var("FLEET_CONCURRENCY").ok();
    let extra: Vec<(&str, &str)> = concurrency.iter().map(|c| ("FLEET_CONCURRENCY", c.as_str())).collect();
    let started = Instant::now();
    let function = scene.function(api, imds, &extra);
    (started, function)
}

/// What one event cost, seen from outside the process.
struct Event {
    wall: Duration,
    cpu: Duration,
    /// From the event's delivery to the moment the proxy received PutRolePolicy.
    to_revocation: Option<Duration>,
    round_trips: Option<usize>,
    answered_at: Instant,
    requests: usize,
}

/// Deliver `event` to a function idle at its `n`th `next`, and measure until it is idle again.
fn deliver(api: &mut RuntimeApi, function: &Function, scene: &Scene, n: usize, event: Value, expect: &str) -> Event {
    api.wait_for_next(n);
    let before_cpu = cpu(function.pid());
    let delivered = Instant::now();
    let (answer, seen) = scene.invoke(api, event, expect);
    // Idle again: the answer is posted, the logs written, and the next event asked for.
    api.wait_for_next(n + 1);
    let used = cpu(function.pid()) - before_cpu;
    let put = seen.iter().find(|s| s.operation == "PutRolePolicy");
    Event {
        wall: answer.at - delivered,
        cpu: used,
        to_revocation: put.map(|p| p.arrived - delivered),
        round_trips: round_trips_before(&seen, "PutRolePolicy"),
        answered_at: answer.at,
        requests: seen.len(),
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

struct Cold {
    init: Figure,
    first_response: Figure,
    init_requests: Figure,
    imds: Figure,
}

#[derive(Default)]
struct PerEvent {
    figures: Vec<Figure>,
}

impl PerEvent {
    fn add(&mut self, name: String, unit: &'static str, target: &'static str, value: f64) {
        match self.figures.iter_mut().find(|f| f.name == name) {
            Some(f) => f.values.push(value),
            None => {
                let mut f = Figure::new(name, unit, target);
                f.values.push(value);
                self.figures.push(f);
            }
        }
    }
}

/// One process for one scenario: a cold event (the process's first), then a warm one about
/// another role, each measured; plus the process's start-up, and its peak RSS. With `latency`
/// added to every AWS answer, only the round trips and the time to the revocation are taken:
/// without it, moto and the GuardDuty stand-in can answer one request sent with others before
/// the last of them leaves, which would count as one more round trip.
#[allow(clippy::too_many_arguments)]
async fn run_scenario(
    moto: &Moto,
    guardduty: &GuardDuty,
    scenario: Scenario,
    run: usize,
    latency: Duration,
    cold: &mut Cold,
    per: &mut PerEvent,
    rss: &mut Figure,
) {
    let action = if scenario == Scenario::Cycle { "cycle" } else { "revoke" };
    let scene = Scene::new(moto, guardduty, &[action]).await;
    let other = scene.account.role("OtherAppRole", &[]).await;
    let other_instance = instances(&scene.account, &other, &[action]).await.remove(0).id;
    let (imds_endpoint, imds_connections) = imds_counter();
    let mut api = RuntimeApi::start_in(&scene.account_id);
    let (started, function) = start(&api, &scene, &imds_endpoint);
    let first_next = api.wait_for_next(1);
    let at_init = scene.proxy.seen().len();
    scene.proxy.set_latency(latency);
    let timed = latency.is_zero();

    let name = scenario.name();
    let first = event_for(
        &scene,
        guardduty,
        scenario,
        &scene.role,
        &scene.expects[0].id,
        &format!("bench-{name}-{run}-{}-cold", latency.as_millis()),
    );
    let second = event_for(
        &scene,
        guardduty,
        scenario,
        &other,
        &other_instance,
        &format!("bench-{name}-{run}-{}-warm", latency.as_millis()),
    );
    let cold_event = deliver(&mut api, &function, &scene, 1, first, scenario.outcome());
    let warm_event = deliver(&mut api, &function, &scene, 2, second, scenario.outcome());
    if scenario == Scenario::Cycle && timed {
        rss.values.push(peak_rss_mb(function.pid()));
    }
    if scenario == Scenario::Skip && timed {
        cold.init.values.push(ms(first_next - started));
        // Delivered the moment it asked: the time Lambda's first invocation of a cold start takes.
        cold.first_response.values.push(ms(cold_event.answered_at - started));
        cold.init_requests.values.push(at_init as f64);
    }
    for (when, e) in [("cold", &cold_event), ("warm", &warm_event)] {
        if timed {
            per.add(format!("handler CPU, {name}, {when}"), "ms", "≤ 2 ms", ms(e.cpu));
            per.add(format!("wall, {name}, {when}"), "ms", "(moto-bound)", ms(e.wall));
        }
        if scenario == Scenario::Skip {
            continue;
        }
        let to = ms(e.to_revocation.expect("PutRolePolicy was sent"));
        if timed {
            per.add(format!("AWS requests, {name}, {when}"), "", "", e.requests as f64);
            per.add(format!("event to PutRolePolicy sent, {name}, {when}"), "ms", "", to);
        } else {
            let over = format!("+{} ms per round trip", latency.as_millis());
            let trips = e.round_trips.expect("PutRolePolicy was sent") as f64;
            per.add(
                format!("round trips before PutRolePolicy, {name}, {when}"),
                "",
                "≤ 2",
                trips,
            );
            per.add(
                format!("event to PutRolePolicy sent, {name}, {when}, {over}"),
                "ms",
                "",
                to,
            );
        }
    }
    let logs = function.stop();
    assert!(!logs.is_empty());
    cold.imds.values.push(imds_connections.load(Ordering::SeqCst) as f64);
}

/// One process per run: a finding whose role `size` instances use, every one tagged `cycle`,
/// with `latency` added to every AWS round trip. Returns the process's peak RSS.
async fn run_fleet(
    moto: &Moto,
    guardduty: &GuardDuty,
    size: usize,
    latency: Duration,
    run: usize,
    wall: &mut Figure,
) -> f64 {
    let scene = Scene::new(moto, guardduty, &vec!["cycle"; size]).await;
    scene.proxy.set_latency(latency);
    let (imds_endpoint, _) = imds_counter();
    let mut api = RuntimeApi::start_in(&scene.account_id);
    let (_, function) = start(&api, &scene, &imds_endpoint);
    let event = scene.event(guardduty, &format!("bench-fleet-{size}-{}-{run}", latency.as_millis()));
    api.wait_for_next(1);
    let delivered = Instant::now();
    let (answer, _) = scene.invoke(&mut api, event, "remediated");
    let cycled = answer.body["instances"].as_array().unwrap().len();
    assert_eq!(cycled, size, "{}", answer.body);
    wall.values.push(ms(answer.at - delivered));
    api.wait_for_next(2);
    peak_rss_mb(function.pid())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {cores} cores, Linux {}", kernel.trim())
}

fn package(arch: &str) -> Option<(f64, f64)> {
    let dir = std::env::var("BENCH_LAMBDA_DIR").ok()?;
    let zip = std::fs::metadata(format!("{dir}/{arch}/exfil-responder/bootstrap.zip")).ok()?;
    Some((zip.len() as f64 / 1e6, zip.len() as f64))
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let fleet_runs: usize = std::env::var("BENCH_FLEET_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let moto = Moto::start();
        let guardduty = GuardDuty::start(&moto);
        let bootstrap = support::runtime_api::bootstrap();
        let mut cold = Cold {
            init: Figure::new("init: exec to first `next`", "ms", "≤ 15 ms"),
            first_response: Figure::new("cold start: exec to first response (skip)", "ms", ""),
            init_requests: Figure::new("AWS requests during init", "", "0"),
            imds: Figure::new("IMDS connections, whole run", "", "0"),
        };
        let mut per = PerEvent::default();
        let mut rss = Figure::new("peak RSS, cycle (cold + warm)", "MB", "≤ 25 MB");
        eprintln!("bench: {runs} runs of each scenario, {fleet_runs} of each fleet size");
        let latency = Duration::from_millis(
            std::env::var("BENCH_LATENCY_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(50),
        );
        for run in 0..runs {
            for scenario in [Scenario::Skip, Scenario::Revoke, Scenario::Cycle] {
                run_scenario(
                    &moto,
                    &guardduty,
                    scenario,
                    run,
                    Duration::ZERO,
                    &mut cold,
                    &mut per,
                    &mut rss,
                )
                .await;
            }
            for scenario in [Scenario::Revoke, Scenario::Cycle] {
                run_scenario(&moto, &guardduty, scenario, run, latency, &mut cold, &mut per, &mut rss).await;
            }
        }
        let mut fleets = Vec::new();
        let mut fleet_rss = Figure::new("peak RSS, 50-sibling cycle", "MB", "≤ 25 MB");
        let fleet_sizes = [(Duration::ZERO, &[1, 2, 11, 51][..]), (latency, &[1, 11, 51][..])];
        // BENCH_FLEET_RUNS=0 leaves the fleets out (a quicker look at the per-event figures).
        for (delay, sizes) in fleet_sizes.into_iter().filter(|_| fleet_runs > 0) {
            let mut fleet = Vec::new();
            for &size in sizes {
                let over = if delay.is_zero() {
                    String::new()
                } else {
                    format!(", +{} ms per round trip", delay.as_millis())
                };
                let name = match size {
                    1 => format!("fleet cycle, the named instance alone{over}"),
                    n => format!("fleet cycle, named + {} sibling(s){over}", n - 1),
                };
                let mut wall = Figure::new(name, "ms", if size == 51 { "≤ 3× alone" } else { "" });
                for run in 0..fleet_runs {
                    let peak = run_fleet(&moto, &guardduty, size, delay, run, &mut wall).await;
                    if size == 51 && delay.is_zero() {
                        fleet_rss.values.push(peak);
                    }
                }
                fleet.push(wall);
            }
            fleets.push(fleet);
        }

        println!();
        println!("exfil-responder benchmark: {}", machine());
        println!(
            "bootstrap: {} ({} bytes)",
            bootstrap.display(),
            std::fs::metadata(&bootstrap).unwrap().len()
        );
        println!("{runs} runs per scenario ({fleet_runs} per fleet size); each run is a fresh process");
        println!();
        println!("| figure | median | min | max | n | target |");
        println!("|---|---|---|---|---|---|");
        let shown = [
            &cold.init,
            &cold.first_response,
            &cold.init_requests,
            &cold.imds,
            &rss,
            &fleet_rss,
        ];
        for f in shown.into_iter().filter(|f| !f.values.is_empty()) {
            println!("{}", f.row());
        }
        for f in &per.figures {
            println!("{}", f.row());
        }
        for fleet in &fleets {
            for f in fleet {
                println!("{}", f.row());
            }
            let alone = fleet[0].median();
            for f in &fleet[1..] {
                println!("| {}: median ÷ alone | {:.2}× | | | | |", f.name, f.median() / alone);
            }
        }
        for arch in ["arm64", "x86_64"] {
            match package(arch) {
                Some((mb, bytes)) => println!(
                    "| zipped package, {arch} | {mb:.2} MB ({bytes:.0} bytes) | | | 1 | {} |",
                    if arch == "arm64" { "≤ 6 MB" } else { "" }
                ),
                None => println!("| zipped package, {arch} | not built (make bench builds it) | | | | |"),
            }
        }
    });
}
