//! What an invocation can carry: one EventBridge event (GuardDuty's, or Security Hub's with one or
//! more findings), an array of them (EventBridge's newer Lambda target batches), Cloud Custodian's
//! `invoke-lambda` envelope, or a manual payload from a responder.

pub mod custodian;
pub mod follow_up;
pub mod readiness;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::finding::{FindingRequest, FindingSummary, Incident, Locator, Subject, Triage, triage_events, typed};
use crate::names::{GuardDutyId, InstanceId, RoleName, is_account_id, is_region};
use crate::operation::{Asked, Operation, Release, Restore, check_asked, check_reason};
use crate::rules::Action;

/// The manual payload. Unknown keys are refused: a typo such as `dryrun` must not go unnoticed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Manual {
    instance_id: Option<String>,
    role_name: Option<String>,
    action: Option<String>,
    dry_run: Option<bool>,
    reason: Option<String>,
}

/// The manual payload that names a GuardDuty finding: fetched from GuardDuty, then handled like
/// its event.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ManualFinding {
    detector_id: String,
    finding_id: String,
    account_id: Option<String>,
    region: Option<String>,
    dry_run: Option<bool>,
    reason: Option<String>,
}

/// The manual payload with an `operation` (see [`crate::operation`]). `contain` is the payload
/// without one.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OperationPayload {
    operation: String,
    role_name: Option<String>,
    instance_id: Option<String>,
    account_id: Option<String>,
    region: Option<String>,
    force: Option<bool>,
    schedule: Option<String>,
    reason: Option<String>,
    requested_by: Option<String>,
    dry_run: Option<bool>,
}

/// The parsed payload: one entry per event, each triaged or a bad-input error of its own.
pub struct Payload {
    pub batch: bool,
    pub items: Vec<Result<Triage>>,
}

/// A Security Hub event can carry several findings (a custom action on a selection): each is an
/// item, and the answer is a batch's.
pub fn parse_payload(payload: Value) -> Result<Payload> {
    match payload {
        Value::Array(items) if items.is_empty() => Err(Error::bad_input("payload", "an empty array holds no event")),
        Value::Array(items) => Ok(Payload {
            batch: true,
            items: (items.into_iter().enumerate())
                .flat_map(|(i, item)| parse_one(item).into_iter().map(move |t| t.map_err(|e| in_item(i, e))))
                .collect(),
        }),
        single @ Value::Object(_) => {
            let items = parse_one(single);
            Ok(Payload {
                batch: items.len() != 1,
                items,
            })
        }
        other => Err(Error::bad_input(
            "payload",
            format!("expected a JSON object or array, got {}", kind(&other)),
        )),
    }
}

fn parse_one(value: Value) -> Vec<Result<Triage>> {
    let Value::Object(map) = &value else {
        return vec![Err(Error::bad_input(
            "payload",
            format!("expected an event object, got {}", kind(&value)),
        ))];
    };
    if ["detail-type", "source", "detail"].iter().any(|k| map.contains_key(*k)) {
        return triage_events(value);
    }
    if custodian::is_envelope(map) {
        return custodian::triage(value);
    }
    vec![parse_manual(value)]
}

fn parse_manual(value: Value) -> Result<Triage> {
    let Some(map) = value.as_object() else {
        return Err(Error::bad_input(
            "payload",
            format!("expected an object, got {}", kind(&value)),
        ));
    };
    if map.contains_key("operation") {
        operation(value)
    } else if map.contains_key("findingId") || map.contains_key("detectorId") {
        manual_finding(value)
    } else if map.contains_key("instanceId") || map.contains_key("roleName") {
        manual(value)
    } else {
        Err(Error::bad_input(
            "payload",
            "expected a GuardDuty EventBridge event, or a manual payload with instanceId, roleName, or detectorId and findingId",
        ))
    }
}

fn manual_finding(value: Value) -> Result<Triage> {
    let m: ManualFinding = typed(value, "")?;
    let id = |field: &str, v: &str| GuardDutyId::parse(v).map_err(|e| Error::bad_input(field, e));
    check_place(m.account_id.as_deref(), m.region.as_deref())?;
    check_reason(m.reason.as_deref())?;
    Ok(Triage::Fetch(FindingRequest {
        source: "manual".into(),
        event_id: None,
        event_time: None,
        attack_sequence: None,
        locator: Locator {
            detector_id: id("detectorId", &m.detector_id)?,
            finding_id: id("findingId", &m.finding_id)?,
        },
        account_id: m.account_id,
        region: m.region,
        dry_run_requested: m.dry_run.unwrap_or(false),
        request_reason: m.reason,
        ocsf: None,
    }))
}

fn check_place(account: Option<&str>, region: Option<&str>) -> Result<()> {
    if let Some(account) = account.filter(|a| !is_account_id(a)) {
        return Err(Error::bad_input(
            "accountId",
            format!("{account:?} is not a 12-digit AWS account id"),
        ));
    }
    if let Some(region) = region.filter(|r| !is_region(r)) {
        return Err(Error::bad_input(
            "region",
            format!("{region:?} is not an AWS region name"),
        ));
    }
    Ok(())
}

/// A release or restore; `contain` is parsed as the payload without `operation`.
fn operation(mut value: Value) -> Result<Triage> {
    if value.get("operation").and_then(Value::as_str) == Some("contain") {
        value.as_object_mut().map(|m| m.remove("operation"));
        return parse_manual(value);
    }
    if value.get("operation").and_then(Value::as_str) == Some("follow-up") {
        return follow_up::parse(value);
    }
    if value.get("operation").and_then(Value::as_str) == Some("readiness") {
        return readiness::parse(value);
    }
    let p: OperationPayload = typed(value, "")?;
    check_place(p.account_id.as_deref(), p.region.as_deref())?;
    check_asked(p.reason.as_deref(), p.requested_by.as_deref())?;
    let asked = Asked {
        account_id: p.account_id.clone(),
        reason: p.reason.clone().filter(|r| !r.trim().is_empty()),
        requested_by: p.requested_by.clone(),
        dry_run: p.dry_run.unwrap_or(false),
    };
    let operation = match p.operation.clone().as_str() {
        "release" => Operation::Release(release(p, asked)?),
        "restore" => {
            only(
                "roleName",
                p.role_name.is_some(),
                "restore (the role is the recorded profile's)",
            )?;
            only("force", p.force.is_some(), "restore")?;
            only("schedule", p.schedule.is_some(), "restore")?;
            let id = p
                .instance_id
                .ok_or_else(|| Error::bad_input("instanceId", "restore names the instance to restore"))?;
            Operation::Restore(Restore {
                instance: InstanceId::parse(&id).map_err(|e| Error::bad_input("instanceId", e))?,
                region: p.region,
                asked,
            })
        }
        other => {
            return Err(Error::bad_input(
                "operation",
                format!("unknown operation {other:?} (expected contain, release, restore, follow-up or readiness)"),
            ));
        }
    };
    Ok(Triage::Operate(operation))
}

fn release(p: OperationPayload, asked: Asked) -> Result<Release> {
    only("instanceId", p.instance_id.is_some(), "release")?;
    only("region", p.region.is_some(), "release (IAM is global)")?;
    let name = p
        .role_name
        .ok_or_else(|| Error::bad_input("roleName", "release names the role to release"))?;
    let force = p.force.unwrap_or(false);
    if force && asked.reason.is_none() {
        return Err(Error::bad_input(
            "reason",
            "a forced release needs a reason: it revives tokens issued before the cut-off",
        ));
    }
    if let Some(schedule) = &p.schedule {
        only("force", force, "a scheduled release")?;
        if !crate::plan::auto_release::is_schedule_name(schedule) {
            return Err(Error::bad_input(
                "schedule",
                "not a schedule name (1 to 64 of [0-9A-Za-z-_.])",
            ));
        }
    }
    Ok(Release {
        role: RoleName::parse(&name).map_err(|e| Error::bad_input("roleName", e))?,
        force,
        schedule: p.schedule,
        asked,
    })
}

/// A field that one operation takes and `op` does not.
fn only(field: &str, present: bool, op: &str) -> Result<()> {
    match present {
        true => Err(Error::bad_input(field, format!("does not apply to {op}"))),
        false => Ok(()),
    }
}

fn manual(value: Value) -> Result<Triage> {
    let m: Manual = typed(value, "")?;
    let action_override = m
        .action
        .as_deref()
        .map(|a| a.parse::<Action>().map_err(|e| Error::bad_input("action", e)))
        .transpose()?;
    let subject = match (m.instance_id, m.role_name) {
        (Some(id), None) => Subject::Instance(InstanceId::parse(&id).map_err(|e| Error::bad_input("instanceId", e))?),
        (None, Some(name)) => {
            if action_override.is_some() {
                return Err(Error::bad_input(
                    "action",
                    "applies to the named instance, and a roleName payload names none",
                ));
            }
            Subject::Role(RoleName::parse(&name).map_err(|e| Error::bad_input("roleName", e))?)
        }
        _ => {
            return Err(Error::bad_input(
                "payload",
                "give exactly one of instanceId and roleName",
            ));
        }
    };
    check_reason(m.reason.as_deref())?;
    Ok(Triage::Act(Incident {
        summary: FindingSummary {
            source: "manual".into(),
            ..FindingSummary::default()
        },
        subject,
        first_seen: None,
        last_seen: None,
        action_override,
        dry_run_requested: m.dry_run.unwrap_or(false),
        request_reason: m.reason,
        warnings: Vec::new(),
        finding: None,
        locator: None,
    }))
}

fn in_item(index: usize, err: Error) -> Error {
    err.under(&format!("[{index}]."))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn incident(value: Value) -> Incident {
        match parse_payload(value).unwrap().items.pop().unwrap().unwrap() {
            Triage::Act(i) => i,
            Triage::Skip { reason, .. } => panic!("{reason}"),
            Triage::Fetch(r) => panic!("{r:?}"),
            Triage::Operate(o) => panic!("{o:?}"),
        }
    }

    fn bad(value: Value) -> (String, String) {
        let err = match parse_payload(value) {
            Err(e) => e,
            Ok(mut p) => p.items.pop().unwrap().unwrap_err(),
        };
        match err {
            Error::BadInput { field, message } => (field, message),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn manual_payloads_carry_override_dry_run_and_reason() {
        let i = incident(
            json!({"instanceId": "i-0123456789abcdef0", "action": "isolate", "dryRun": true, "reason": "IR-42"}),
        );
        assert_eq!(
            i.subject,
            Subject::Instance(InstanceId::parse("i-0123456789abcdef0").unwrap())
        );
        assert_eq!(i.action_override, Some(Action::Isolate));
        assert!(i.dry_run_requested);
        assert_eq!(i.request_reason.as_deref(), Some("IR-42"));
        assert_eq!(i.first_seen, None);
        assert_eq!(i.summary.source, "manual");

        let r = incident(json!({"roleName": "WebAppRole"}));
        assert_eq!(r.subject, Subject::Role(RoleName::parse("WebAppRole").unwrap()));
        assert!(!r.dry_run_requested);
    }

    #[test]
    fn bad_manual_payloads_are_refused_naming_the_field() {
        assert_eq!(bad(json!({"instanceId": "i-bad"})).0, "instanceId");
        assert_eq!(bad(json!({"roleName": "a b"})).0, "roleName");
        assert_eq!(bad(json!({"instanceId": "i-1234abcd", "action": "nuke"})).0, "action");
        assert_eq!(bad(json!({"roleName": "R", "action": "cycle"})).0, "action");
        assert_eq!(bad(json!({"roleName": "R", "instanceId": "i-1234abcd"})).0, "payload");
        assert!(
            bad(json!({"roleName": "R", "dryrun": true}))
                .1
                .contains("unknown field `dryrun`")
        );
        assert_eq!(bad(json!({"roleName": "R", "dryRun": "yes"})).0, "dryRun");
        assert_eq!(bad(json!({"roleName": "R", "reason": "x".repeat(1025)})).0, "reason");
    }

    #[test]
    fn a_manual_finding_id_is_a_request_to_fetch_it() {
        let payload = json!({"detectorId": "12abc34d567e8fa901bc2d34e56789f0", "findingId": "7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b",
                             "accountId": "210987654321", "region": "eu-west-1", "dryRun": true, "reason": "IR-7"});
        let Ok(Triage::Fetch(request)) = parse_payload(payload).unwrap().items.pop().unwrap() else {
            panic!("not a fetch")
        };
        assert_eq!(request.locator.finding_id.as_str(), "7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b");
        assert_eq!(request.account_id.as_deref(), Some("210987654321"));
        assert_eq!(request.region.as_deref(), Some("eu-west-1"));
        assert!(request.dry_run_requested);

        assert_eq!(bad(json!({"findingId": "f1"})).0, "payload");
        assert!(bad(json!({"findingId": "f1"})).1.contains("detectorId"));
        assert_eq!(bad(json!({"detectorId": "d", "findingId": "../x"})).0, "findingId");
        assert_eq!(bad(json!({"detectorId": "d/e", "findingId": "f"})).0, "detectorId");
        assert_eq!(
            bad(json!({"detectorId": "d", "findingId": "f", "accountId": "1"})).0,
            "accountId"
        );
        assert_eq!(
            bad(json!({"detectorId": "d", "findingId": "f", "region": "EU/1"})).0,
            "region"
        );
        assert!(
            bad(json!({"detectorId": "d", "findingId": "f", "action": "isolate"}))
                .1
                .contains("unknown field `action`")
        );
    }

    fn operation_of(value: Value) -> Operation {
        match parse_payload(value).unwrap().items.pop().unwrap().unwrap() {
            Triage::Operate(op) => op,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn release_and_restore_are_operations_and_contain_is_the_plain_payload() {
        let Operation::Release(r) = operation_of(json!({"operation": "release", "roleName": "WebAppRole",
            "accountId": "210987654321", "force": true, "reason": "IR-9 closed", "requestedBy": "alice", "dryRun": true}))
        else {
            panic!("not a release")
        };
        assert_eq!((r.role.as_str(), r.force), ("WebAppRole", true));
        assert_eq!(r.asked.account_id.as_deref(), Some("210987654321"));
        assert_eq!(
            (
                r.asked.reason.as_deref(),
                r.asked.requested_by.as_deref(),
                r.asked.dry_run
            ),
            (Some("IR-9 closed"), Some("alice"), true)
        );
        let Operation::Restore(r) =
            operation_of(json!({"operation": "restore", "instanceId": "i-0123456789abcdef0", "region": "eu-west-1"}))
        else {
            panic!("not a restore")
        };
        assert_eq!(
            (r.instance.as_str(), r.region.as_deref()),
            ("i-0123456789abcdef0", Some("eu-west-1"))
        );
        let contained = incident(json!({"operation": "contain", "roleName": "WebAppRole"}));
        assert_eq!(contained.subject, Subject::Role(RoleName::parse("WebAppRole").unwrap()));
    }

    #[test]
    fn what_a_release_schedule_delivers_is_a_release_naming_it() {
        let now = chrono::Utc::now();
        let role = RoleName::parse("Web+App@Role").unwrap();
        let planned = crate::plan::auto_release::schedule("123456789012", &role, now, now);
        let Operation::Release(r) = operation_of(planned.payload) else {
            panic!("not a release")
        };
        assert_eq!((r.role, r.force), (role, false));
        assert_eq!(r.schedule.as_deref(), Some(planned.name.as_str()));
        assert_eq!(r.asked.account_id.as_deref(), Some("123456789012"));
        assert!(r.asked.reason.is_some() && r.asked.requested_by.is_some());
    }

    #[test]
    fn bad_operation_payloads_are_refused_naming_the_field() {
        let cases = [
            (json!({"operation": "delete", "roleName": "R"}), "operation"),
            (json!({"operation": "release"}), "roleName"),
            (
                json!({"operation": "release", "roleName": "R", "force": true}),
                "reason",
            ),
            (
                json!({"operation": "release", "roleName": "R", "force": true, "reason": "  "}),
                "reason",
            ),
            (
                json!({"operation": "release", "roleName": "R", "instanceId": "i-1234abcd"}),
                "instanceId",
            ),
            (
                json!({"operation": "release", "roleName": "R", "region": "eu-west-1"}),
                "region",
            ),
            (json!({"operation": "release", "roleName": "R/x"}), "roleName"),
            (
                json!({"operation": "release", "roleName": "R", "accountId": "12"}),
                "accountId",
            ),
            (
                json!({"operation": "release", "roleName": "R", "force": "yes", "reason": "r"}),
                "force",
            ),
            (json!({"operation": "restore"}), "instanceId"),
            (
                json!({"operation": "restore", "instanceId": "i-1234abcd", "roleName": "R"}),
                "roleName",
            ),
            (
                json!({"operation": "restore", "instanceId": "i-1234abcd", "force": true}),
                "force",
            ),
            (
                json!({"operation": "restore", "instanceId": "i-1234abcd", "region": "EU/1"}),
                "region",
            ),
            (
                json!({"operation": "restore", "instanceId": "i-1234abcd", "requestedBy": "x".repeat(513)}),
                "requestedBy",
            ),
            (json!({"operation": "contain", "roleName": "R", "force": true}), "force"),
            (json!({"operation": 7, "roleName": "R"}), "operation"),
            (
                json!({"operation": "release", "roleName": "R", "schedule": "s", "force": true, "reason": "r"}),
                "force",
            ),
            (
                json!({"operation": "release", "roleName": "R", "schedule": "a/b"}),
                "schedule",
            ),
            (
                json!({"operation": "release", "roleName": "R", "schedule": ""}),
                "schedule",
            ),
            (
                json!({"operation": "restore", "instanceId": "i-1234abcd", "schedule": "s"}),
                "schedule",
            ),
        ];
        for (payload, field) in cases {
            assert_eq!(bad(payload.clone()).0, field, "{payload}");
        }
        assert!(
            bad(json!({"operation": "release", "roleName": "R", "dryrun": true}))
                .1
                .contains("unknown field")
        );
    }

    #[test]
    fn payload_shapes_other_than_object_or_array_are_refused() {
        assert_eq!(bad(json!([])).0, "payload");
        assert_eq!(bad(json!("hello")).0, "payload");
        assert_eq!(bad(json!(null)).0, "payload");
        assert_eq!(bad(json!({"hello": "world"})).0, "payload");
    }

    #[test]
    fn array_items_are_handled_one_by_one_and_errors_say_which() {
        let payload = parse_payload(json!([{"roleName": "Good"}, {"roleName": "b*d"}, 7])).unwrap();
        assert!(payload.batch);
        assert!(payload.items[0].is_ok());
        assert!(matches!(&payload.items[1], Err(Error::BadInput { field, .. }) if field == "[1].roleName"));
        assert!(matches!(&payload.items[2], Err(Error::BadInput { field, .. }) if field == "[2].payload"));
    }
}
