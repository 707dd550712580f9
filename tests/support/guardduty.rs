//! A stand-in for GuardDuty's findings API, which moto does not implement. The real SDK client
//! reaches it through `AWS_ENDPOINT_URL_GUARDDUTY` (or an endpoint override) and speaks GuardDuty's
//! REST-JSON protocol to it: `GetFindings` and `ArchiveFindings`, per region (read from the
//! request's SigV4 credential scope) and detector, `ListDetectors`, and `GetDetector` (its status:
//! `ENABLED`, or `DISABLED` once [`GuardDuty::suspend`]ed). It holds only the findings a
//! test publishes. Each detector belongs to the account of the findings it holds, and a request
//! is answered for the account that signed it (asked of moto, whose STS knows every key it
//! issued): a detector of another account is refused, as GuardDuty refuses it. An organisation's
//! administrator (set by [`GuardDuty::administrator`]) reads every finding in its region with its
//! own detector, and only it may archive them. It is this project's emulation, not AWS's:
//! docs/src/testing.md says so.
//!
//! It also serves CloudTrail's `LookupEvents` (moto has none): see [`super::cloudtrail`].
//!
//! It also answers Security Hub's `BatchUpdateFindings` (moto's Security Hub has
//! `BatchImportFindings` and `GetFindings`, not this): a GuardDuty finding it holds is in Security
//! Hub too, and may be updated by its own account or by the region's administrator; any other is
//! an `UnprocessedFindings` entry, as Security Hub answers. So is `BatchUpdateFindingsV2`, for the
//! same finding in OCSF, named as the API reference names it (`CloudAccountUid`, `FindingInfoUid`,
//! `MetadataProductUid`: GuardDuty's `productv2` in the region), with an OCSF `StatusId` of 0 to 5
//! or 99 (else `ValidationException`); an unknown one is `ResourceNotFoundException`. Each update
//! is kept for the tests.

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::runtime_api::read_request;

/// One request as the stand-in saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub operation: String,
    pub region: String,
    /// The access key that signed it: whose credentials asked.
    pub access_key_id: String,
    pub detector: String,
    pub finding_ids: Vec<String>,
}

/// One `BatchUpdateFindings` or `BatchUpdateFindingsV2` as Security Hub's stand-in took it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowUpdate {
    pub operation: &'static str,
    pub region: String,
    pub access_key_id: String,
    /// The request as sent (PascalCase): `FindingIdentifiers`, `Workflow`, `Note`.
    pub request: Value,
    /// Whether the finding was updated (else it was answered unprocessed).
    pub processed: bool,
}

#[derive(Default)]
struct State {
    /// (region, detector, finding id) -> the finding, camelCase as GetFindings returns it.
    findings: HashMap<(String, String, String), Value>,
    detectors: HashSet<(String, String)>,
    /// (region, detector, account): the detector is that account's. The tests give every account
    /// the same detector id, so one id may belong to several accounts here.
    owners: HashSet<(String, String, String)>,
    /// region -> the organisation's administrator there: (account, its detector).
    administrators: HashMap<String, (String, String)>,
    /// (region, detector) suspended: GetDetector answers `DISABLED`, as for a suspended GuardDuty.
    suspended: HashSet<(String, String)>,
    /// Access key -> the account moto says it belongs to.
    callers: HashMap<String, String>,
    moto: String,
    unavailable: bool,
    seen: Vec<Seen>,
    updates: Vec<WorkflowUpdate>,
    trail: super::cloudtrail::Trail,
}

pub struct GuardDuty {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
}

impl GuardDuty {
    /// The stand-in, answering for the accounts of `moto`'s credentials.
    pub fn start(moto: &super::Moto) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            moto: moto.endpoint.clone(),
            ..State::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Self { endpoint, state }
    }

    /// CloudTrail's event history, which this stand-in also serves (`LookupEvents`).
    pub fn trail(&self) -> super::cloudtrail::Trail {
        self.state.lock().unwrap().trail.clone()
    }

    /// `access_key_id` belongs to `account`: what moto's STS would say, known without asking it.
    /// A test that made the key says so, and the stand-in's lookup sends moto nothing that
    /// GuardDuty would not (in the bench, a request on the revocation's path).
    pub fn knows(&self, access_key_id: &str, account: &str) {
        self.state
            .lock()
            .unwrap()
            .callers
            .insert(access_key_id.to_owned(), account.to_owned());
    }

    /// GuardDuty holds this finding: every GuardDuty event in `payload` (one event or an array)
    /// is a finding GuardDuty really has, in its region and under its detector.
    pub fn publish(&self, payload: &Value) {
        let events = match payload {
            Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        for event in events.into_iter().filter(|e| e["source"] == "aws.guardduty") {
            self.hold(event["detail"].clone());
        }
    }

    /// Hold one finding. GetFindings returns the event's `detail`, except that its model types
    /// `asn` as a string where EventBridge has been seen to send a number (events/legacy-type.json).
    pub fn hold(&self, mut finding: Value) {
        asn_as_string(&mut finding);
        let region = finding["region"].as_str().expect("a finding has a region").to_owned();
        let detector = finding["service"]["detectorId"]
            .as_str()
            .expect("a finding has a detector")
            .to_owned();
        let id = finding["id"].as_str().expect("a finding has an id").to_owned();
        let mut state = self.state.lock().unwrap();
        state.detectors.insert((region.clone(), detector.clone()));
        if let Some(account) = finding["accountId"].as_str() {
            state
                .owners
                .insert((region.clone(), detector.clone(), account.to_owned()));
        }
        state.findings.insert((region, detector, id), finding);
    }

    /// `account` is the organisation's GuardDuty administrator in `region`, with `detector`: it
    /// reads every finding held in the region with that detector, and alone archives them.
    pub fn administrator(&self, account: &str, region: &str, detector: &str) {
        let mut state = self.state.lock().unwrap();
        state.detectors.insert((region.to_owned(), detector.to_owned()));
        state
            .owners
            .insert((region.to_owned(), detector.to_owned(), account.to_owned()));
        state
            .administrators
            .insert(region.to_owned(), (account.to_owned(), detector.to_owned()));
    }

    /// A detector with no findings, so lookups in it answer "no such finding".
    pub fn detector(&self, region: &str, detector: &str) {
        self.state
            .lock()
            .unwrap()
            .detectors
            .insert((region.to_owned(), detector.to_owned()));
    }

    /// `account`'s detector in `region`, with no findings: GuardDuty enabled there.
    pub fn enabled(&self, account: &str, region: &str, detector: &str) {
        let mut state = self.state.lock().unwrap();
        state.detectors.insert((region.to_owned(), detector.to_owned()));
        (state.owners).insert((region.to_owned(), detector.to_owned(), account.to_owned()));
    }

    /// GuardDuty suspended in `region`: the detector is still listed, and GetDetector says `DISABLED`.
    pub fn suspend(&self, region: &str, detector: &str) {
        (self.state.lock().unwrap().suspended).insert((region.to_owned(), detector.to_owned()));
    }

    /// GuardDuty answers every request with a 500 until told otherwise.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.state.lock().unwrap().unavailable = unavailable;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Every `BatchUpdateFindings` Security Hub's stand-in took, in order.
    pub fn workflow_updates(&self) -> Vec<WorkflowUpdate> {
        self.state.lock().unwrap().updates.clone()
    }

    pub fn is_archived(&self, region: &str, detector: &str, id: &str) -> bool {
        let key = (region.to_owned(), detector.to_owned(), id.to_owned());
        self.state
            .lock()
            .unwrap()
            .findings
            .get(&key)
            .map(|f| f["service"]["archived"] == true)
            == Some(true)
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    // Each answer goes out whole, at once (see the Runtime API stand-in's `serve`: Nagle's
    // algorithm and a delayed ACK held an answer written in parts for about 40 ms).
    stream.set_nodelay(true).ok();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    while let Some((method, path, headers, body)) = read_request(&mut reader) {
        let authorization = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        // `Credential=<key id>/<date>/<region>/guardduty/aws4_request`
        let scope: Vec<&str> = authorization
            .split("Credential=")
            .nth(1)
            .and_then(|c| c.split(',').next())
            .map(|c| c.split('/').collect())
            .unwrap_or_default();
        let (access_key_id, region, service) = match scope.as_slice() {
            [
                key,
                _,
                region,
                service @ ("guardduty" | "securityhub" | "cloudtrail"),
                ..,
            ] => ((*key).to_owned(), (*region).to_owned(), *service),
            _ => (String::new(), String::new(), ""),
        };
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let finding_ids: Vec<String> = request["findingIds"]
            .as_array()
            .map(|ids| ids.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let caller = caller_account(state, &access_key_id);
        let path = path.split('?').next().unwrap_or_default();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (status, answer) = match (method.as_str(), parts.as_slice()) {
            _ if service == "cloudtrail" => {
                let trail = state.lock().unwrap().trail.clone();
                trail.answer(&region, caller.as_deref(), &request)
            }
            ("GET", ["detector"]) => {
                let mut state = state.lock().unwrap();
                state.seen.push(Seen {
                    operation: "ListDetectors".into(),
                    region: region.clone(),
                    access_key_id,
                    detector: String::new(),
                    finding_ids: Vec::new(),
                });
                if state.unavailable {
                    unavailable()
                } else {
                    let mut ids: Vec<String> = state
                        .owners
                        .iter()
                        .filter(|(r, _, owner)| *r == region && Some(owner.as_str()) == caller.as_deref())
                        .map(|(_, d, _)| d.clone())
                        .collect();
                    ids.sort();
                    ids.dedup();
                    (200, json!({ "detectorIds": ids }))
                }
            }
            ("GET", ["detector", detector]) => {
                let mut state = state.lock().unwrap();
                state.seen.push(Seen {
                    operation: "GetDetector".into(),
                    region: region.clone(),
                    access_key_id,
                    detector: (*detector).to_owned(),
                    finding_ids: Vec::new(),
                });
                let key = (region.clone(), (*detector).to_owned());
                let owned = (caller.as_ref())
                    .is_some_and(|c| state.owners.contains(&(key.0.clone(), key.1.clone(), c.clone())));
                match (state.unavailable, owned) {
                    (true, _) => unavailable(),
                    (false, false) => error(
                        400,
                        "BadRequestException",
                        "The request is rejected because the input detectorId is not owned by the current account.",
                    ),
                    (false, true) => {
                        let status = if state.suspended.contains(&key) {
                            "DISABLED"
                        } else {
                            "ENABLED"
                        };
                        let role = format!(
                            "arn:aws:iam::{}:role/aws-service-role/guardduty.amazonaws.com/AWSServiceRoleForAmazonGuardDuty",
                            caller.as_deref().unwrap_or_default()
                        );
                        (
                            200,
                            json!({"createdAt": "2026-01-01T00:00:00.000Z", "findingPublishingFrequency": "SIX_HOURS",
                                     "serviceRole": role, "status": status, "updatedAt": "2026-01-01T00:00:00.000Z"}),
                        )
                    }
                }
            }
            ("POST", ["detector", detector, "findings", op @ ("get" | "archive")]) => {
                let mut state = state.lock().unwrap();
                state.seen.push(Seen {
                    operation: if *op == "get" { "GetFindings" } else { "ArchiveFindings" }.into(),
                    region: region.clone(),
                    access_key_id,
                    detector: (*detector).to_owned(),
                    finding_ids: finding_ids.clone(),
                });
                findings(&mut state, (&region, detector, op), caller.as_deref(), &finding_ids)
            }
            ("PATCH", ["findings", "batchupdate"]) => {
                let mut state = state.lock().unwrap();
                batch_update(&mut state, (&region, &access_key_id), caller.as_deref(), request)
            }
            ("PATCH", ["findingsv2", "batchupdatev2"]) => {
                let mut state = state.lock().unwrap();
                batch_update_v2(&mut state, (&region, &access_key_id), caller.as_deref(), request)
            }
            _ => error(404, "NotFound", &format!("the stand-in does not serve {method} {path}")),
        };
        let body = answer.to_string();
        let error_type = answer["__type"]
            .as_str()
            .map(|t| format!("X-Amzn-ErrorType: {t}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\n{error_type}Content-Length: {}\r\n\r\n",
            if status == 200 { "OK" } else { "Error" },
            body.len()
        );
        if writer.write_all(format!("{head}{body}").as_bytes()).is_err() {
            return;
        }
    }
}

/// Security Hub's BatchUpdateFindings of GuardDuty findings: updated when held here and the
/// caller's, or the caller is the region's administrator; otherwise unprocessed.
fn batch_update(state: &mut State, (region, key): (&str, &str), caller: Option<&str>, request: Value) -> (u16, Value) {
    if state.unavailable {
        return unavailable();
    }
    let identifiers = request["FindingIdentifiers"].as_array().cloned().unwrap_or_default();
    let (mut processed, mut unprocessed) = (Vec::new(), Vec::new());
    for identifier in identifiers {
        let arn = identifier["Id"].as_str().unwrap_or_default();
        let allowed = updatable(state, region, arn, caller).is_some();
        let product = format!("arn:aws:securityhub:{region}::product/aws/guardduty");
        if allowed && identifier["ProductArn"] == product.as_str() {
            processed.push(identifier);
        } else {
            unprocessed.push(json!({"FindingIdentifier": identifier, "ErrorCode": "FindingNotFound",
                                    "ErrorMessage": "Finding Not Found"}));
        }
    }
    answered(
        state,
        "BatchUpdateFindings",
        (region, key),
        request,
        (processed, unprocessed),
    )
}

/// Record a workflow update as asked, and answer it with what was and was not processed.
fn answered(
    state: &mut State,
    operation: &'static str,
    (region, key): (&str, &str),
    request: Value,
    (processed, unprocessed): (Vec<Value>, Vec<Value>),
) -> (u16, Value) {
    state.updates.push(WorkflowUpdate {
        operation,
        region: region.to_owned(),
        access_key_id: key.to_owned(),
        request,
        processed: unprocessed.is_empty(),
    });
    (
        200,
        json!({"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}),
    )
}

/// Whether the caller may update the GuardDuty finding `arn` in `region`: held here, and the
/// caller's own or the region's administrator's; Some(its account).
fn updatable(state: &State, region: &str, arn: &str, caller: Option<&str>) -> Option<String> {
    let parts: Vec<&str> = arn.split([':', '/']).collect();
    // arn:aws:guardduty:<region>:<account>:detector/<d>/finding/<id>
    let held = match parts.as_slice() {
        ["arn", _, "guardduty", r, account, "detector", d, "finding", id] if *r == region => state
            .findings
            .contains_key(&(r.to_string(), d.to_string(), id.to_string()))
            .then_some(*account),
        _ => None,
    };
    let admin = state.administrators.get(region).map(|(account, _)| account.as_str());
    held.filter(|account| caller.is_none_or(|c| c == *account || admin == Some(c)))
        .map(str::to_owned)
}

/// Security Hub's BatchUpdateFindingsV2 of GuardDuty's OCSF findings, as [`batch_update`].
fn batch_update_v2(
    state: &mut State,
    (region, key): (&str, &str),
    caller: Option<&str>,
    request: Value,
) -> (u16, Value) {
    if state.unavailable {
        return unavailable();
    }
    let status = request["StatusId"].as_i64();
    if status.is_some_and(|s| !matches!(s, 0..=5 | 99)) {
        return error(
            400,
            "ValidationException",
            "StatusId must be one of 0, 1, 2, 3, 4, 5, 99",
        );
    }
    let product = format!("arn:aws:securityhub:{region}::productv2/aws/guardduty");
    let (mut processed, mut unprocessed) = (Vec::new(), Vec::new());
    for identifier in request["FindingIdentifiers"].as_array().cloned().unwrap_or_default() {
        let arn = identifier["FindingInfoUid"].as_str().unwrap_or_default();
        let account = updatable(state, region, arn, caller);
        let named = account.is_some_and(|a| identifier["CloudAccountUid"] == a.as_str())
            && identifier["MetadataProductUid"] == product.as_str();
        if named {
            processed.push(json!({"FindingIdentifier": identifier}));
        } else {
            unprocessed.push(
                json!({"FindingIdentifier": identifier, "ErrorCode": "ResourceNotFoundException",
                                    "ErrorMessage": "Finding not found"}),
            );
        }
    }
    answered(
        state,
        "BatchUpdateFindingsV2",
        (region, key),
        request,
        (processed, unprocessed),
    )
}

/// GetFindings or ArchiveFindings with `detector`, for the `caller`'s account.
fn findings(
    state: &mut State,
    (region, detector, op): (&str, &str, &str),
    caller: Option<&str>,
    ids: &[String],
) -> (u16, Value) {
    let key = (region.to_owned(), detector.to_owned());
    let owned = |account: &str| {
        state
            .owners
            .contains(&(region.to_owned(), detector.to_owned(), account.to_owned()))
    };
    let unowned = state
        .owners
        .iter()
        .all(|(r, d, _)| (r.as_str(), d.as_str()) != (region, detector));
    let callers_own = caller.is_none_or(|c| unowned || owned(c));
    let admin = state.administrators.get(region).cloned();
    let is_admin_detector = admin.as_ref().is_some_and(|(_, d)| d == detector);
    if state.unavailable {
        return unavailable();
    }
    // A detector of another account is not the caller's to use.
    if !state.detectors.contains(&key) || !callers_own {
        return error(
            400,
            "BadRequestException",
            "The request is rejected because the input detectorId is not owned by the current account.",
        );
    }
    if op == "archive" && admin.is_some() && !is_admin_detector {
        return error(
            400,
            "BadRequestException",
            "The request is rejected because member accounts cannot archive findings.",
        );
    }
    // The administrator's detector sees every finding in its region; any other, its own.
    let keys: Vec<(String, String, String)> = state
        .findings
        .keys()
        .filter(|(r, d, id)| r == region && (is_admin_detector || d == detector) && ids.contains(id))
        // Under a detector shared by several accounts here, each sees its own findings.
        .filter(|k| is_admin_detector || unowned || caller.is_none_or(|c| state.findings[*k]["accountId"] == c))
        .cloned()
        .collect();
    if op == "get" {
        let found: Vec<Value> = keys.iter().filter_map(|k| state.findings.get(k).cloned()).collect();
        return (200, json!({ "findings": found }));
    }
    for k in keys {
        if let Some(f) = state.findings.get_mut(&k) {
            f["service"]["archived"] = true.into();
        }
    }
    (200, json!({}))
}

/// The account an access key belongs to, as moto's STS says (GetCallerIdentity, signed with the
/// key: moto reads the key and checks no signature). None if moto cannot say.
fn caller_account(state: &Mutex<State>, access_key_id: &str) -> Option<String> {
    let moto = {
        let state = state.lock().unwrap();
        if let Some(known) = state.callers.get(access_key_id) {
            return Some(known.clone());
        }
        state.moto.clone()
    };
    let host = moto.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).ok()?;
    let body = "Action=GetCallerIdentity&Version=2011-06-15";
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential={access_key_id}/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).ok()?;
    let account = answer.split("<Account>").nth(1)?.split("</Account>").next()?.to_owned();
    state
        .lock()
        .unwrap()
        .callers
        .insert(access_key_id.to_owned(), account.clone());
    Some(account)
}

fn unavailable() -> (u16, Value) {
    error(
        500,
        "InternalServerErrorException",
        "The request is rejected due to an internal error.",
    )
}

fn asn_as_string(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "asn" && v.is_number() {
                    *v = Value::String(v.to_string());
                } else {
                    asn_as_string(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(asn_as_string),
        _ => {}
    }
}

fn error(status: u16, kind: &str, message: &str) -> (u16, Value) {
    (status, json!({ "__type": kind, "message": message }))
}
