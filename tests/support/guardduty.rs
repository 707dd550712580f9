//! A stand-in for GuardDuty's findings API, which moto does not implement. The real SDK client
//! reaches it through `AWS_ENDPOINT_URL_GUARDDUTY` (or an endpoint override) and speaks GuardDuty's
//! REST-JSON protocol to it: `GetFindings` and `ArchiveFindings`, per region (read from the
//! request's SigV4 credential scope) and detector. It holds only the findings a test publishes.
//! It is this project's emulation, not AWS's: the README says so.

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

#[derive(Default)]
struct State {
    /// (region, detector, finding id) -> the finding, camelCase as GetFindings returns it.
    findings: HashMap<(String, String, String), Value>,
    detectors: HashSet<(String, String)>,
    unavailable: bool,
    seen: Vec<Seen>,
}

pub struct GuardDuty {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
}

impl GuardDuty {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Self { endpoint, state }
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
        state.findings.insert((region, detector, id), finding);
    }

    /// A detector with no findings, so lookups in it answer "no such finding".
    pub fn detector(&self, region: &str, detector: &str) {
        self.state
            .lock()
            .unwrap()
            .detectors
            .insert((region.to_owned(), detector.to_owned()));
    }

    /// GuardDuty answers every request with a 500 until told otherwise.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.state.lock().unwrap().unavailable = unavailable;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
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
        let (access_key_id, region) = match scope.as_slice() {
            [key, _, region, "guardduty", ..] => ((*key).to_owned(), (*region).to_owned()),
            _ => (String::new(), String::new()),
        };
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let finding_ids: Vec<String> = request["findingIds"]
            .as_array()
            .map(|ids| ids.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (status, answer) = match (method.as_str(), parts.as_slice()) {
            ("POST", ["detector", detector, "findings", op @ ("get" | "archive")]) => {
                let mut state = state.lock().unwrap();
                state.seen.push(Seen {
                    operation: if *op == "get" { "GetFindings" } else { "ArchiveFindings" }.into(),
                    region: region.clone(),
                    access_key_id,
                    detector: (*detector).to_owned(),
                    finding_ids: finding_ids.clone(),
                });
                if state.unavailable {
                    error(
                        500,
                        "InternalServerErrorException",
                        "The request is rejected due to an internal error.",
                    )
                } else if !state.detectors.contains(&(region.clone(), (*detector).to_owned())) {
                    error(
                        400,
                        "BadRequestException",
                        "The request is rejected because the input detectorId is not owned by the current account.",
                    )
                } else {
                    let key = |id: &String| (region.clone(), (*detector).to_owned(), id.clone());
                    if *op == "get" {
                        let found: Vec<Value> = finding_ids
                            .iter()
                            .filter_map(|id| state.findings.get(&key(id)).cloned())
                            .collect();
                        (200, json!({ "findings": found }))
                    } else {
                        for id in &finding_ids {
                            if let Some(f) = state.findings.get_mut(&key(id)) {
                                f["service"]["archived"] = true.into();
                            }
                        }
                        (200, json!({}))
                    }
                }
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
        if writer
            .write_all(head.as_bytes())
            .and_then(|()| writer.write_all(body.as_bytes()))
            .is_err()
        {
            return;
        }
    }
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
