//! Cloud Custodian's `invoke-lambda` action: `{version, event, account_id, account, region,
//! action, policy, resources[]}` (c7n/actions/invoke.py). In a `guard-duty` or `hub-finding`
//! policy, `event` is the GuardDuty or Security Hub event that started it: that finding is
//! handled as its own event would be (verified against GuardDuty), and `resources` are Custodian's
//! view of what it names. A policy without an event (a periodic one) hands over EC2 instances
//! from DescribeInstances: each is contained as a manual `instanceId` payload would be, in the
//! region Custodian ran in, and (as a manual payload) only in the function's own account: the
//! account is checked once that is known (`respond::establish::unvouched_elsewhere`).

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::finding::{FindingSummary, Incident, Subject, Triage, triage_events, typed};
use crate::names::{InstanceId, is_account_id};

/// What a report's `finding.source` says for an instance Custodian handed over.
pub const REPORTED_SOURCE: &str = "custodian";

#[derive(Debug, Deserialize)]
struct Envelope {
    event: Option<Value>,
    account_id: Option<String>,
    region: Option<String>,
    policy: Policy,
    resources: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct Policy {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Instance {
    instance_id: String,
}

/// Whether `map` is Custodian's envelope: its policy and resources, and no key of ours.
pub fn is_envelope(map: &serde_json::Map<String, Value>) -> bool {
    map.contains_key("policy") && map.contains_key("resources")
}

pub fn triage(value: Value) -> Vec<Result<Triage>> {
    let envelope: Envelope = match typed(value, "") {
        Ok(envelope) => envelope,
        Err(e) => return vec![Err(e)],
    };
    if let Some(event) = envelope.event.filter(|e| !e.is_null()) {
        return triage_events(event)
            .into_iter()
            .map(|t| t.map_err(|e| e.under("event.")))
            .collect();
    }
    if envelope.resources.is_empty() {
        return vec![Err(Error::bad_input(
            "resources",
            "empty, and no event: nothing to act on",
        ))];
    }
    if let Some(account) = envelope.account_id.as_deref().filter(|a| !is_account_id(a)) {
        let why = format!("{account:?} is not a 12-digit AWS account id");
        return vec![Err(Error::bad_input("account_id", why))];
    }
    let Some(region) = envelope.region.filter(|r| crate::names::is_region(r)) else {
        return vec![Err(Error::bad_input(
            "region",
            "missing or not a region name: the instances' region is not guessed",
        ))];
    };
    let reason = format!("Cloud Custodian policy {}", envelope.policy.name);
    (envelope.resources.into_iter().enumerate())
        .map(|(i, resource)| {
            let field = format!("resources[{i}]");
            let instance: Instance = typed(resource, &format!("{field}."))
                .map_err(|_| Error::bad_input(&field, "not an EC2 instance (no InstanceId)"))?;
            let id = InstanceId::parse(&instance.instance_id)
                .map_err(|e| Error::bad_input(format!("{field}.InstanceId"), e))?;
            Ok(Triage::Act(Incident {
                summary: FindingSummary {
                    source: REPORTED_SOURCE.into(),
                    account_id: envelope.account_id.clone(),
                    region: Some(region.clone()),
                    ..FindingSummary::default()
                },
                subject: Subject::Instance(id),
                first_seen: None,
                last_seen: None,
                action_override: None,
                dry_run_requested: false,
                request_reason: Some(reason.clone()),
                warnings: Vec::new(),
                finding: None,
                locator: None,
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn envelope(event: Value, resources: Value) -> Value {
        json!({
            "version": "0.9.40", "event": event, "account_id": "123456789012", "account": "prod",
            "region": "us-east-1", "action": {"type": "invoke-lambda", "function": "exfil-responder"},
            "policy": {"name": "contain-exfiltrated-credentials", "resource": "ec2"},
            "resources": resources,
        })
    }

    #[test]
    fn a_guardduty_policy_s_event_is_handled_as_its_event() {
        let event: Value = serde_json::from_str(include_str!("../../events/outside-aws.json")).unwrap();
        let items = triage(envelope(event, json!([{"InstanceId": "i-0a1b2c3d4e5f60718"}])));
        let [Ok(Triage::Act(incident))] = &items[..] else {
            panic!("{items:?}")
        };
        assert_eq!(incident.summary.source, "guardduty", "verified as GuardDuty's event");
        assert!(incident.finding.is_some() && incident.locator.is_some());
    }

    #[test]
    fn a_periodic_policy_s_instances_are_each_contained_where_custodian_ran() {
        let items = triage(envelope(
            Value::Null,
            json!([{"InstanceId": "i-0a1b2c3d4e5f60718", "State": {"Name": "running"}}, {"InstanceId": "i-0123456789abcdef0"}]),
        ));
        assert_eq!(items.len(), 2);
        for (item, id) in items.into_iter().zip(["i-0a1b2c3d4e5f60718", "i-0123456789abcdef0"]) {
            let Ok(Triage::Act(incident)) = item else { panic!() };
            assert!(matches!(&incident.subject, Subject::Instance(i) if i.as_str() == id));
            assert_eq!(incident.summary.source, REPORTED_SOURCE);
            assert_eq!(incident.summary.account_id.as_deref(), Some("123456789012"));
            assert_eq!(incident.summary.region.as_deref(), Some("us-east-1"));
            assert!(
                incident
                    .request_reason
                    .unwrap()
                    .contains("contain-exfiltrated-credentials")
            );
        }
    }

    #[test]
    fn what_is_not_an_instance_or_a_place_is_refused_naming_the_field() {
        let field = |value: Value| match &triage(value)[..] {
            [Err(Error::BadInput { field, .. })] => field.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(envelope(Value::Null, json!([{"BucketName": "b"}]))),
            "resources[0]"
        );
        assert_eq!(
            field(envelope(Value::Null, json!([{"InstanceId": "i-x"}]))),
            "resources[0].InstanceId"
        );
        assert_eq!(field(envelope(Value::Null, json!([]))), "resources");
        let mut nowhere = envelope(Value::Null, json!([{"InstanceId": "i-0a1b2c3d4e5f60718"}]));
        nowhere["region"] = "all".into();
        assert_eq!(field(nowhere), "region");
        let mut account = envelope(Value::Null, json!([{"InstanceId": "i-0a1b2c3d4e5f60718"}]));
        account["account_id"] = "prod".into();
        assert_eq!(field(account), "account_id");
        let bad_event = envelope(
            json!({"source": "aws.guardduty", "detail-type": "GuardDuty Finding"}),
            json!([]),
        );
        assert!(field(bad_event).starts_with("event."));
    }
}
