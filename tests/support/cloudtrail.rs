//! A stand-in for CloudTrail's event history (`LookupEvents`), which moto does not implement,
//! served beside GuardDuty's stand-in (the SDK client reaches it through
//! `AWS_ENDPOINT_URL_CLOUDTRAIL` or an endpoint override, speaking CloudTrail's JSON 1.1 protocol).
//! It holds the events a test records, per account (the one that signed the request, as moto's
//! STS says) and region (the request's SigV4 scope), and answers as CloudTrail does: the events of
//! the one lookup attribute asked for (`AccessKeyId` or `EventName`), newest first, within the
//! time range, in pages of at most 50
//! with a `NextToken`, each with its record as the JSON string `CloudTrailEvent`. It can answer
//! `ThrottlingException` to the next requests, and keeps when each request came. It is this
//! project's emulation, not AWS's: docs/src/testing.md says so.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
struct Held {
    account: String,
    region: String,
    key: String,
    at: DateTime<Utc>,
    /// The record as CloudTrail keeps it, or a raw string a test wants served as it is.
    record: String,
    id: String,
}

#[derive(Default, Debug)]
struct State {
    events: Vec<Held>,
    throttle_next: usize,
    /// (account, region, when) of each LookupEvents.
    asked: Vec<(String, String, Instant)>,
}

#[derive(Clone, Default, Debug)]
pub struct Trail(Arc<Mutex<State>>);

/// One call made with a key, as CloudTrail records it.
pub struct Recorded<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub key: &'a str,
    pub at: DateTime<Utc>,
    pub id: &'a str,
}

impl Trail {
    /// Record `record` (a CloudTrail record's JSON) as made with `r.key`.
    pub fn record(&self, r: &Recorded<'_>, record: &Value) {
        self.record_raw(r, &record.to_string());
    }

    /// Record a raw `CloudTrailEvent` string (a hostile one, say).
    pub fn record_raw(&self, r: &Recorded<'_>, raw: &str) {
        self.0.lock().unwrap().events.push(Held {
            account: r.account.to_owned(),
            region: r.region.to_owned(),
            key: r.key.to_owned(),
            at: r.at,
            record: raw.to_owned(),
            id: r.id.to_owned(),
        });
    }

    /// Answer `ThrottlingException` to the next `n` requests.
    pub fn throttle(&self, n: usize) {
        self.0.lock().unwrap().throttle_next = n;
    }

    /// When each LookupEvents came, per (account, region).
    pub fn asked(&self) -> Vec<(String, String, Instant)> {
        self.0.lock().unwrap().asked.clone()
    }

    pub(super) fn answer(&self, region: &str, caller: Option<&str>, request: &Value) -> (u16, Value) {
        let mut state = self.0.lock().unwrap();
        let account = caller.unwrap_or_default().to_owned();
        state.asked.push((account.clone(), region.to_owned(), Instant::now()));
        if state.throttle_next > 0 {
            state.throttle_next -= 1;
            return (
                400,
                json!({"__type": "ThrottlingException", "message": "Rate exceeded"}),
            );
        }
        let attributes = request["LookupAttributes"].as_array().cloned().unwrap_or_default();
        // One attribute per request: the key that signed, or the event's name.
        let (attribute, value) = match attributes.as_slice() {
            [a] if a["AttributeKey"] == "AccessKeyId" || a["AttributeKey"] == "EventName" => (
                a["AttributeKey"].as_str().unwrap_or_default().to_owned(),
                a["AttributeValue"].as_str().unwrap_or_default().to_owned(),
            ),
            _ => {
                return (
                    400,
                    json!({"__type": "InvalidLookupAttributesException", "message": "one AccessKeyId or EventName"}),
                );
            }
        };
        let named = |e: &Held| match attribute.as_str() {
            "AccessKeyId" => e.key == value,
            _ => serde_json::from_str::<Value>(&e.record).is_ok_and(|r| r["eventName"] == value.as_str()),
        };
        let time = |field: &str| {
            request[field]
                .as_f64()
                .and_then(|s| DateTime::from_timestamp_millis((s * 1000.0) as i64))
        };
        let (since, until) = (time("StartTime"), time("EndTime"));
        let page = request["MaxResults"].as_u64().unwrap_or(50).min(50) as usize;
        let offset: usize = request["NextToken"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
        let mut matching: Vec<&Held> = (state.events.iter())
            .filter(|e| e.account == account && e.region == region && named(e))
            .filter(|e| since.is_none_or(|s| e.at >= s) && until.is_none_or(|u| e.at <= u))
            .collect();
        matching.sort_by_key(|e| std::cmp::Reverse(e.at));
        let events: Vec<Value> = (matching.iter().skip(offset).take(page))
            .map(|e| {
                json!({
                    "EventId": e.id,
                    "EventName": "as recorded",
                    "AccessKeyId": e.key,
                    "EventTime": e.at.timestamp_millis() as f64 / 1000.0,
                    "CloudTrailEvent": e.record,
                })
            })
            .collect();
        let mut answer = json!({ "Events": events });
        if offset + page < matching.len() {
            answer["NextToken"] = json!((offset + page).to_string());
        }
        (200, answer)
    }
}

/// CloudTrail's record of an `AssumeRole` made with `key` in `account`, answering `session_key`
/// for `role_arn` (whose id is `role_id`), as the caller's account keeps it.
pub fn assume_role(
    key: &str,
    (account, region): (&str, &str),
    (role_arn, role_id): (&str, &str),
    session_key: &str,
    at: DateTime<Utc>,
) -> Value {
    let (role_account, role_name) = {
        let parts: Vec<&str> = role_arn.split(':').collect();
        (parts[4].to_owned(), parts[5].rsplit('/').next().unwrap().to_owned())
    };
    json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "AssumedRole", "accessKeyId": key, "accountId": account},
        "eventTime": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "eventSource": "sts.amazonaws.com",
        "eventName": "AssumeRole",
        "awsRegion": region,
        "sourceIPAddress": "198.51.100.7",
        "requestParameters": {"roleArn": role_arn, "roleSessionName": "x"},
        "responseElements": {
            "credentials": {"accessKeyId": session_key, "sessionToken": "t", "expiration": "Dec 3, 2026, 11:00:00 AM"},
            "assumedRoleUser": {
                "assumedRoleId": format!("{role_id}:x"),
                "arn": format!("arn:aws:sts::{role_account}:assumed-role/{role_name}/x")
            }
        },
        "eventID": format!("assume-{session_key}"),
        "eventType": "AwsApiCall",
        // The caller's copy of a cross-account AssumeRole is recorded for the role's owner (IAM
        // user guide, "Logging IAM and AWS STS API calls with AWS CloudTrail").
        "recipientAccountId": role_account
    })
}

/// CloudTrail's record of an IAM call made with `key` in `account` (us-east-1, as IAM's are).
pub fn iam_call(key: &str, account: &str, name: &str, response: Value, at: DateTime<Utc>) -> Value {
    json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "AssumedRole", "accessKeyId": key, "accountId": account},
        "eventTime": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "eventSource": "iam.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "requestParameters": {},
        "responseElements": response,
        "eventID": format!("{name}-{key}"),
        "eventType": "AwsApiCall",
        "recipientAccountId": account
    })
}
