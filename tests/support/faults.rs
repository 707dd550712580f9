//! A fault-injecting HTTP proxy between the SDK clients and the emulators. It reads each request's
//! service (from the SigV4 credential scope) and operation (query `Action`, `X-Amz-Target`, or
//! GuardDuty's REST path), and either forwards it or answers with a fault: throttling, a 500,
//! AccessDenied (each in the service's own error format), a reset connection, or a hold (before
//! forwarding, or after, with the response withheld) until the test releases it or the client
//! gives up. It logs every request, and the association id of every profile EC2 attached. It
//! sends DynamoDB's requests to moto one at a time (see [`forward`]: moto's conditional writes
//! are not atomic, DynamoDB's are).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::runtime_api::read_request;
use super::world::World;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Throttle,
    ServerError,
    AccessDenied,
    /// A quota is full (IAM's `LimitExceeded`: the role's inline policies, for example).
    LimitExceeded,
    /// Close the connection without an answer.
    Reset,
    /// Hold the request unanswered (and unforwarded) until released, or the client leaves.
    Hold,
    /// Forward the request, then hold its answer: the call took effect, the caller does not know.
    HoldResponse,
}

impl Fault {
    /// What any call can meet, for the fault matrices: all but `LimitExceeded`, a quota's answer
    /// that only the calls filling one give.
    pub const ANY_CALL: [Fault; 6] = [
        Fault::Throttle,
        Fault::ServerError,
        Fault::AccessDenied,
        Fault::Reset,
        Fault::Hold,
        Fault::HoldResponse,
    ];
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub operation: String,
    pub fault: Fault,
    /// Matching requests let through before the fault applies.
    pub skip: usize,
    /// How many times it applies; `None`: every time (persistent).
    pub times: Option<usize>,
    /// Only requests signed for this region; `None`: any.
    pub region: Option<String>,
}

impl Rule {
    pub fn once(operation: &str, fault: Fault) -> Self {
        Self {
            operation: operation.into(),
            fault,
            skip: 0,
            times: Some(1),
            region: None,
        }
    }

    /// Only requests signed for `region` (an SCP denying one region, for example).
    pub fn in_region(self, region: &str) -> Self {
        Self {
            region: Some(region.into()),
            ..self
        }
    }

    pub fn always(operation: &str, fault: Fault) -> Self {
        Self {
            times: None,
            ..Self::once(operation, fault)
        }
    }

    /// A fault matrix's case: every time (`persistent`), or once.
    pub fn case(operation: &str, fault: Fault, persistent: bool) -> Self {
        match persistent {
            true => Self::always(operation, fault),
            false => Self::once(operation, fault),
        }
    }
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub service: String,
    pub operation: String,
    /// The region it was signed for.
    pub region: String,
    pub fault: Option<Fault>,
    /// When the request arrived: anything it created was created no earlier.
    pub at: DateTime<Utc>,
    /// The same moment, for measuring.
    pub arrived: Instant,
    /// What it spent opening a connection before it arrived ([`World`]; zero on a pooled one).
    pub handshake: Duration,
    /// When its answer was handed to the client (None: never answered).
    pub answered: Option<Instant>,
    /// For an AssociateIamInstanceProfile that EC2 answered: the association it made.
    pub association_id: Option<String>,
    /// While moto had it: from forwarding it to moto's answer (None: not forwarded, answered by
    /// the proxy or a stand-in, or moto's answer never came).
    pub with_moto: Option<(Instant, Instant)>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
    /// Requests held right now.
    held: usize,
    /// Bumped by `release`: holds taken before it let go.
    generation: u64,
    closed: bool,
    /// Added before each forwarded answer: a network round trip's time, for the benchmark.
    latency: Duration,
    /// What EC2's DescribeRegions answers, if set (else moto's own list, about 30).
    enabled_regions: Option<Vec<String>>,
    /// EC2's request throttling, if set: a token bucket per action.
    throttling: Option<Throttling>,
    /// The regions' distances, the connections' cost, the empty regions: see [`World`].
    world: Option<World>,
}

/// EC2 throttles each API action per account and region with a token bucket: each request takes
/// a token, a request finding none is answered `RequestLimitExceeded`, and the bucket refills at
/// a steady rate up to its size (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html).
#[derive(Debug, Clone)]
pub struct Throttling {
    pub operations: Vec<String>,
    pub size: f64,
    pub refill_per_second: f64,
    /// Each action's tokens, and when they were counted.
    buckets: std::collections::HashMap<String, (f64, Instant)>,
}

impl Throttling {
    pub fn new(operations: &[&str], size: u32, refill_per_second: u32) -> Self {
        Self {
            operations: operations.iter().map(|o| o.to_string()).collect(),
            size: f64::from(size),
            refill_per_second: f64::from(refill_per_second),
            buckets: Default::default(),
        }
    }

    /// Whether a request for `operation` now finds a token (taking it).
    fn admits(&mut self, operation: &str) -> bool {
        if !self.operations.iter().any(|o| o == operation) {
            return true;
        }
        let now = Instant::now();
        let (tokens, counted) = self.buckets.entry(operation.to_owned()).or_insert((self.size, now));
        *tokens = (*tokens + (now - *counted).as_secs_f64() * self.refill_per_second).min(self.size);
        *counted = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    routes: Vec<(String, String)>,
    upstream: String,
    /// Held while a DynamoDB request is with moto: see [`forward`].
    dynamodb: Mutex<()>,
}

pub struct Proxy {
    pub endpoint: String,
    shared: Arc<Shared>,
}

impl Proxy {
    /// A proxy to `upstream` (host:port or http://host:port); requests for the services in
    /// `routes` go to their own upstream instead (GuardDuty's stand-in).
    pub fn start(upstream: &str, routes: &[(&str, &str)]) -> Self {
        let host = |u: &str| u.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            routes: routes.iter().map(|(s, u)| (s.to_string(), host(u))).collect(),
            upstream: host(upstream),
            dynamodb: Mutex::new(()),
        });
        let serving = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                if serving.state.lock().unwrap().closed {
                    break;
                }
                let shared = serving.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Self { endpoint, shared }
    }

    pub fn add(&self, rule: Rule) {
        self.shared.state.lock().unwrap().rules.push(rule);
    }

    /// Drop every rule and let every held request go.
    pub fn heal(&self) {
        let mut state = self.shared.state.lock().unwrap();
        state.rules.clear();
        state.generation += 1;
        self.shared.changed.notify_all();
    }

    /// The account's enabled regions, as DescribeRegions answers them here. moto builds each
    /// region's backend for an account on its first request there, and the reliability tests,
    /// an account per case, would otherwise pay that for every region in every case.
    pub fn enable_regions(&self, regions: &[&str]) {
        self.shared.state.lock().unwrap().enabled_regions = Some(regions.iter().map(|r| r.to_string()).collect());
    }

    /// Throttle the actions `throttling` names, as EC2 does.
    pub fn throttle(&self, throttling: Throttling) {
        self.shared.state.lock().unwrap().throttling = Some(throttling);
    }

    /// Delay every forwarded answer by `latency`, as a network between caller and AWS would.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.state.lock().unwrap().latency = latency;
    }

    /// Give every region its distance, connections their cost, and empty regions AWS's empty
    /// answers ([`World`]); the enabled regions are the world's.
    pub fn place(&self, world: World) {
        self.enable_regions(&world.regions());
        self.shared.state.lock().unwrap().world = Some(world);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.state.lock().unwrap().seen.clone()
    }

    /// Whether a fault was injected into a call of `operation`: else a fault case tested nothing.
    pub fn faulted(&self, operation: &str) -> bool {
        self.seen()
            .iter()
            .any(|s| s.operation == operation && s.fault.is_some())
    }

    pub fn count(&self, operation: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.operation == operation && s.fault.is_none())
            .count()
    }

    /// When the request that made `association_id` arrived, if it came through here.
    pub fn associated_at(&self, association_id: &str) -> Option<DateTime<Utc>> {
        self.seen()
            .into_iter()
            .find(|s| s.association_id.as_deref() == Some(association_id))
            .map(|s| s.at)
    }

    /// Block until a request for `operation` signed for `region` has arrived (the proxy's own
    /// signal, not a guess), for at most 60 s.
    pub fn wait_for(&self, operation: &str, region: &str) {
        let arrived = |s: &State| s.seen.iter().any(|r| r.operation == operation && r.region == region);
        let state = self.shared.state.lock().unwrap();
        let (state, timeout) = self
            .shared
            .changed
            .wait_timeout_while(state, Duration::from_secs(60), |s| !arrived(s))
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "no {operation} in {region} within 60 s: {:?}",
            state.seen.iter().map(|s| (&s.operation, &s.region)).collect::<Vec<_>>()
        );
    }

    /// Block until a request is held (the proxy's own signal, not a guess), for at most 60 s.
    pub fn wait_until_held(&self) {
        let state = self.shared.state.lock().unwrap();
        let (state, timeout) = self
            .shared
            .changed
            .wait_timeout_while(state, Duration::from_secs(60), |s| s.held == 0)
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "no request was held within 60 s: {:?}",
            state.seen
        );
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock().unwrap();
        state.closed = true;
        state.generation += 1;
        self.shared.changed.notify_all();
    }
}

fn serve(stream: TcpStream, shared: &Shared) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone the socket"));
    let Some((method, path, headers, body)) = read_request(&mut reader) else {
        return;
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    // The credential scope: <key>/<date>/<region>/<service>/aws4_request.
    let scope = |i: usize| {
        header("authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split('/').nth(i))
            .unwrap_or("unknown")
            .to_owned()
    };
    let (region, service) = (scope(2), scope(3));
    let operation = operation_of((&method, &path), header("x-amz-target"), &body);
    // How far its region is; a request that opens a connection arrives only after the handshake.
    let (trip, handshake) = {
        let mut state = shared.state.lock().unwrap();
        let otherwise = state.latency;
        match state.world.as_mut() {
            Some(world) => world.connect(&service, &region, otherwise),
            None => (otherwise, Duration::ZERO),
        }
    };
    if !handshake.is_zero() {
        std::thread::sleep(handshake);
    }
    // The request's place in the log is taken under the same lock that logs it: concurrent
    // requests must not stamp their association or answer time on each other's entries.
    let (fault, index) = {
        let mut state = shared.state.lock().unwrap();
        let rule = state.rules.iter_mut().find(|r| {
            r.operation == operation && r.times != Some(0) && r.region.as_ref().is_none_or(|want| *want == region)
        });
        let fault = match rule {
            Some(r) if r.skip > 0 => {
                r.skip -= 1;
                None
            }
            Some(r) => {
                if let Some(n) = r.times.as_mut() {
                    *n -= 1;
                }
                Some(r.fault)
            }
            None => None,
        };
        let throttled = fault.is_none() && state.throttling.as_mut().is_some_and(|t| !t.admits(&operation));
        let fault = if throttled { Some(Fault::Throttle) } else { fault };
        state.seen.push(Seen {
            service: service.clone(),
            operation: operation.clone(),
            region: region.clone(),
            fault,
            at: Utc::now(),
            arrived: Instant::now(),
            handshake,
            answered: None,
            association_id: None,
            with_moto: None,
        });
        shared.changed.notify_all();
        (fault, state.seen.len() - 1)
    };
    let mut client = stream;
    let answer = |client: &mut TcpStream, response: &[u8]| {
        if !trip.is_zero() {
            std::thread::sleep(trip);
        }
        if client.write_all(response).is_ok() {
            let mut state = shared.state.lock().unwrap();
            state.seen[index].answered = Some(Instant::now());
            if let Some(world) = state.world.as_mut() {
                world.release(&service, &region);
            }
        }
    };
    // The upstream's answer (or the regions the proxy answers itself), logged.
    let relay = || {
        let request = (service.as_str(), region.as_str(), method.as_str(), path.as_str());
        let (response, with_moto) = regions_or_forward(shared, &operation, request, &headers, &body);
        shared.state.lock().unwrap().seen[index].with_moto = with_moto;
        record_association(shared, index, &operation, &response);
        response
    };
    match fault {
        None => {
            let response = relay();
            answer(&mut client, &response);
        }
        Some(Fault::Reset) => {}
        Some(Fault::Hold) => {
            if hold(shared, &client) {
                let response = relay();
                answer(&mut client, &response);
            }
        }
        Some(Fault::HoldResponse) => {
            let response = relay();
            if hold(shared, &client) {
                answer(&mut client, &response);
            }
        }
        Some(f) => {
            answer(&mut client, &error_response(&service, f));
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

/// The enabled regions, if set and asked for; an empty region's empty answer ([`World`]);
/// otherwise the upstream's answer. With the answer, while moto had the request, if moto answered
/// it ([`forward`]).
fn regions_or_forward(
    shared: &Shared,
    operation: &str,
    (service, region, method, path): (&str, &str, &str, &str),
    headers: &[(String, String)],
    body: &[u8],
) -> (Vec<u8>, Option<(Instant, Instant)>) {
    let (regions, empty) = {
        let state = shared.state.lock().unwrap();
        let empty = (state.world.as_ref()).and_then(|w| w.empty_answer(region, operation));
        (state.enabled_regions.clone(), empty)
    };
    if let Some(empty) = empty {
        return (empty, None);
    }
    let (Some(regions), "DescribeRegions") = (regions, operation) else {
        return forward(shared, service, method, path, headers, body);
    };
    let items: String = regions
        .iter()
        .map(|r| {
            format!(
                "<item><regionName>{r}</regionName><regionEndpoint>ec2.{r}.amazonaws.com</regionEndpoint>\
                 <optInStatus>opt-in-not-required</optInStatus></item>"
            )
        })
        .collect();
    let xml = format!(
        "<DescribeRegionsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>proxy</requestId>\
         <regionInfo>{items}</regionInfo></DescribeRegionsResponse>"
    );
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
        xml.len()
    );
    (response.into_bytes(), None)
}

/// Hold until released; false if the client left meanwhile (then nothing more is sent for it).
fn hold(shared: &Shared, client: &TcpStream) -> bool {
    let mut state = shared.state.lock().unwrap();
    let generation = state.generation;
    state.held += 1;
    shared.changed.notify_all();
    let mut state = shared
        .changed
        .wait_while(state, |s| s.generation == generation)
        .unwrap();
    state.held -= 1;
    drop(state);
    // A killed or timed-out client has closed its end: its request must not take effect now.
    client.set_nonblocking(true).ok();
    let gone = matches!(client.peek(&mut [0u8; 1]), Ok(0));
    client.set_nonblocking(false).ok();
    !gone
}

fn operation_of((method, path): (&str, &str), target: Option<&str>, body: &[u8]) -> String {
    if let Some(t) = target {
        return t.rsplit('.').next().unwrap_or(t).to_owned();
    }
    // EventBridge Scheduler's REST paths: only the create is ours to fault.
    if method == "POST" && path.starts_with("/schedules/") {
        return "CreateSchedule".into();
    }
    if path.ends_with("/findings/get") {
        return "GetFindings".into();
    }
    if path.ends_with("/findings/archive") {
        return "ArchiveFindings".into();
    }
    if method == "GET" && path.starts_with("/detector") {
        let detector = path
            .split('?')
            .next()
            .unwrap_or_default()
            .trim_start_matches("/detector");
        return if detector.is_empty() {
            "ListDetectors"
        } else {
            "GetDetector"
        }
        .into();
    }
    String::from_utf8_lossy(body)
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or("unknown")
        .to_owned()
}

/// The upstream's answer; with, if the upstream is moto (not a routed stand-in), when moto had the
/// request: from connecting to it to its answer.
fn forward(
    shared: &Shared,
    service: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (Vec<u8>, Option<(Instant, Instant)>) {
    let routed = shared.routes.iter().find(|(s, _)| s == service);
    let upstream = routed.map_or(shared.upstream.as_str(), |(_, u)| u.as_str());
    // DynamoDB evaluates a write's condition and makes the write as one atomic step ("individual
    // write operations are atomic": developerguide/BestPractices_ImplementingVersionControl.html),
    // and the revocation claim rests on it. moto checks the condition, then writes, on threads
    // that interleave: two conditional PutItems sent together can both succeed (measured: 1 of
    // 200 rounds of 4 at once; under load, 1 run in 40 of races.rs's two-findings test had both
    // of its runs win the claim). So DynamoDB's requests reach moto one at a time, in the order
    // DynamoDB would apply them.
    let _one_at_a_time = (service == "dynamodb").then(|| shared.dynamodb.lock().unwrap());
    let forwarded = Instant::now();
    let failed = || (error_response(service, Fault::ServerError), None);
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return failed();
    };
    let mut request = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
    for (name, value) in headers.iter().filter(|(n, _)| !n.eq_ignore_ascii_case("connection")) {
        request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    request.extend_from_slice(b"Connection: close\r\n\r\n");
    request.extend_from_slice(body);
    if up.write_all(&request).is_err() {
        return failed();
    }
    match read_response(&mut up) {
        Some(response) => (response, routed.is_none().then(|| (forwarded, Instant::now()))),
        None => failed(),
    }
}

/// One response: its head, then Content-Length bytes (or all until close, without one).
fn read_response(up: &mut TcpStream) -> Option<Vec<u8>> {
    let mut up = BufReader::new(up);
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        if up.read_until(b'\n', &mut response).ok()? == 0 {
            return None;
        }
    }
    let head = String::from_utf8_lossy(&response).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match length {
        Some(n) => {
            let mut body = vec![0; n];
            up.read_exact(&mut body).ok()?;
            response.extend(body);
        }
        None => {
            up.read_to_end(&mut response).ok()?;
        }
    }
    Some(response)
}

fn record_association(shared: &Shared, index: usize, operation: &str, response: &[u8]) {
    if operation != "AssociateIamInstanceProfile" {
        return;
    }
    let text = String::from_utf8_lossy(response);
    let id = text
        .split("<associationId>")
        .nth(1)
        .and_then(|rest| rest.split("</associationId>").next())
        .map(str::to_owned);
    shared.state.lock().unwrap().seen[index].association_id = id;
}

/// The fault as the service would say it, in its protocol's error format.
fn error_response(service: &str, fault: Fault) -> Vec<u8> {
    let (status, code) = match (fault, service) {
        (Fault::Throttle, "ec2") => (503, "RequestLimitExceeded"),
        (Fault::Throttle, "guardduty") => (429, "TooManyRequestsException"),
        (Fault::Throttle, "scheduler") => (429, "ThrottlingException"),
        (Fault::Throttle, "dynamodb") => (400, "ThrottlingException"),
        (Fault::Throttle, _) => (400, "Throttling"),
        (Fault::AccessDenied, "ec2") => (403, "UnauthorizedOperation"),
        (Fault::AccessDenied, "guardduty" | "dynamodb" | "scheduler") => (403, "AccessDeniedException"),
        (Fault::AccessDenied, _) => (403, "AccessDenied"),
        (Fault::LimitExceeded, _) => (409, "LimitExceeded"),
        (_, "guardduty") => (500, "InternalServerErrorException"),
        (_, "scheduler") => (500, "InternalServerException"),
        (_, "dynamodb") => (500, "InternalServerError"),
        _ => (500, "InternalError"),
    };
    let message = "injected by the test proxy";
    let (content_type, body) = match service {
        "ec2" => (
            "text/xml",
            format!(
                "<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>fault</RequestID></Response>"
            ),
        ),
        "guardduty" | "scheduler" => ("application/json", format!(r#"{{"message":"{message}"}}"#)),
        "dynamodb" => (
            "application/x-amz-json-1.0",
            format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{message}"}}"#),
        ),
        _ => (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>"
            ),
        ),
    };
    format!(
        "HTTP/1.1 {status} Fault\r\nContent-Type: {content_type}\r\nx-amzn-ErrorType: {code}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// How many sequential round trips the caller waited on before it sent `operation`: the longest
/// chain of requests in `seen` (in arrival order) where each was sent only after the one before
/// it was answered. Requests sent together are one round trip. None if `operation` never came.
pub fn round_trips_before(seen: &[Seen], operation: &str) -> Option<usize> {
    let rounds = rounds(seen);
    seen.iter().position(|s| s.operation == operation).map(|i| rounds[i])
}

/// How long moto was working, on any request, before `operation` arrived: the length of the
/// union of the requests' times with moto. moto serves its requests on one interpreter, so
/// requests sent together queue there; AWS's services would serve them side by side.
pub fn moto_busy_before(seen: &[Seen], operation: &str) -> Option<Duration> {
    let until = seen.iter().find(|s| s.operation == operation)?.arrived;
    let spans = seen
        .iter()
        .filter_map(|s| s.with_moto)
        .filter(|(start, _)| *start < until)
        .map(|(start, end)| (start, end.min(until)));
    Some(covered(spans.collect()))
}

/// The length of the union of `spans`: time covered by at least one of them.
pub fn covered(mut spans: Vec<(Instant, Instant)>) -> Duration {
    spans.sort();
    let mut busy = Duration::ZERO;
    let mut reached: Option<Instant> = None;
    for (start, end) in spans {
        let start = reached.map_or(start, |r| start.max(r));
        if end > start {
            busy += end - start;
            reached = Some(end);
        }
    }
    busy
}

/// Each request's round: how many sequential round trips the caller had waited on when it sent
/// it (0: sent before any answer it could have waited for).
pub fn rounds(seen: &[Seen]) -> Vec<usize> {
    let mut depths: Vec<usize> = Vec::with_capacity(seen.len());
    for request in seen {
        let waited_on = seen[..depths.len()]
            .iter()
            .zip(&depths)
            .filter(|(earlier, _)| earlier.answered.is_some_and(|a| a <= request.arrived))
            .map(|(_, depth)| *depth + 1)
            .max()
            .unwrap_or(0);
        depths.push(waited_on);
    }
    depths
}

/// A fault matrix: run its cases `at_once` at a time, then its verdict: every case held, or each
/// failed one with what went wrong. Pass the cases lazily (an iterator's `map`): a case's future
/// holds a whole run, and an array of them overflows a test thread's stack.
pub async fn assert_every_case_holds<F>(cases: impl IntoIterator<Item = F>, at_once: usize)
where
    F: std::future::Future<Output = Result<(), String>>,
{
    use futures::StreamExt;
    let failures: Vec<String> = futures::stream::iter(cases)
        .buffer_unordered(at_once)
        .filter_map(|r| async move { r.err() })
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
