//! GuardDuty Extended Threat Detection: an attack sequence finding (`AttackSequence:IAM/
//! CompromisedCredentials`, `AttackSequence:EC2/CompromisedInstanceGroup`) correlates signals,
//! among them other findings, in `service.detection.sequence`
//! (<https://docs.aws.amazon.com/guardduty/latest/APIReference/API_Sequence.html>). Each signal
//! that is one of our findings (type `FINDING`, its type in `name`, its ARN in `uid`) is fetched
//! from GuardDuty and contained by the same rules as if its own event had come, its report
//! naming the sequence. The sequence adds no trust: each finding is GuardDuty's own copy. An
//! instance's credentials the sequence names without such a finding are not acted on; the skip
//! says which, for a person to contain by hand.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::Value;

use super::identity::{FindingArn, Locator, finding_arn};
use super::model::{FindingRequest, FindingSummary, GUARDDUTY_SOURCE, HANDLED_TYPES, Triage, typed};
use crate::error::{Error, Result};
use crate::names::GuardDutyId;

/// Attack sequences that can carry stolen instance credentials.
pub const TYPES: [&str; 2] = [
    "AttackSequence:IAM/CompromisedCredentials",
    "AttackSequence:EC2/CompromisedInstanceGroup",
];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SequenceFinding {
    id: String,
    #[serde(rename = "type")]
    finding_type: String,
    account_id: String,
    service: SequenceService,
}

#[derive(Debug, Deserialize)]
struct SequenceService {
    detection: Detection,
}

#[derive(Debug, Deserialize)]
struct Detection {
    sequence: Sequence,
}

#[derive(Debug, Deserialize)]
struct Sequence {
    #[serde(default)]
    signals: Vec<Signal>,
    #[serde(default)]
    resources: Vec<SequenceResource>,
}

#[derive(Debug, Deserialize)]
struct Signal {
    uid: String,
    #[serde(rename = "type")]
    signal_type: String,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SequenceResource {
    uid: String,
    resource_type: String,
    data: Option<ResourceData>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceData {
    access_key: Option<AccessKey>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccessKey {
    principal_id: Option<String>,
    user_name: Option<String>,
    user_type: Option<String>,
}

pub fn is_attack_sequence(event: &EventBridgeEvent<Value>) -> bool {
    event.source == "aws.guardduty"
        && event.detail_type == "GuardDuty Finding"
        && event.detail["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("AttackSequence:"))
}

pub fn triage_event(event: EventBridgeEvent<Value>) -> Vec<Result<Triage>> {
    let mut summary = FindingSummary {
        finding_type: event.detail["type"].as_str().map(str::to_owned),
        ..FindingSummary::of_event(GUARDDUTY_SOURCE, &event)
    };
    if !summary.finding_type.as_deref().is_some_and(|t| TYPES.contains(&t)) {
        let reason = format!(
            "attack sequence {} is not one that carries stolen instance credentials",
            summary.finding_type.as_deref().unwrap_or_default()
        );
        return vec![Ok(Triage::Skip { summary, reason })];
    }
    let finding: SequenceFinding = match typed(event.detail, "detail.") {
        Ok(finding) => finding,
        Err(e) => return vec![Err(e)],
    };
    summary.id = Some(finding.id.clone());
    summary.attack_sequence = Some(finding.id.clone());
    let sequence = &finding.service.detection.sequence;
    let ours: Vec<(usize, &Signal)> = (sequence.signals.iter().enumerate())
        .filter(|(_, s)| s.signal_type == "FINDING" && s.name.as_deref().is_some_and(|n| HANDLED_TYPES.contains(&n)))
        .collect();
    let mut items: Vec<Result<Triage>> = (ours.iter())
        .map(|(i, signal)| request(&finding, signal, &summary, *i))
        .collect();
    if let Some(reason) = unnamed_instance_credentials(sequence, &items) {
        items.push(Ok(Triage::Skip {
            summary: summary.clone(),
            reason,
        }));
    }
    if items.is_empty() {
        let reason = format!(
            "attack sequence {} ({}) has no EC2 instance-credential exfiltration finding among its signals",
            finding.id, finding.finding_type
        );
        items.push(Ok(Triage::Skip { summary, reason }));
    }
    items
}

/// GuardDuty's copy of the signal's finding, to fetch. It must be in the sequence's account.
fn request(finding: &SequenceFinding, signal: &Signal, summary: &FindingSummary, index: usize) -> Result<Triage> {
    let field = format!("detail.service.detection.sequence.signals[{index}].uid");
    let bad = |why: String| Error::bad_input(&field, why);
    let Some(FindingArn {
        region,
        account,
        detector,
        id,
        ..
    }) = finding_arn(&signal.uid)
    else {
        return Err(bad(format!("{:?} is not a GuardDuty finding's ARN", signal.uid)));
    };
    if account != finding.account_id {
        return Err(bad(format!(
            "{:?} is in account {account}, and the sequence in {}",
            signal.uid, finding.account_id
        )));
    }
    let id_of = |v: &str| GuardDutyId::parse(v).map_err(|e| bad(e.to_string()));
    Ok(Triage::Fetch(FindingRequest {
        source: summary.source.clone(),
        event_id: summary.event_id.clone(),
        event_time: summary.event_time,
        attack_sequence: summary.attack_sequence.clone(),
        locator: Locator {
            detector_id: id_of(detector)?,
            finding_id: id_of(id)?,
        },
        account_id: Some(account.to_owned()),
        region: Some(region.to_owned()),
        dry_run_requested: false,
        request_reason: Some(format!("named by GuardDuty attack sequence {}", finding.id)),
        ocsf: None,
    }))
}

/// The instance credentials (an assumed role's key whose session is an instance) the sequence
/// names: listed when there are more of them than exfiltration findings to contain them by.
fn unnamed_instance_credentials(sequence: &Sequence, items: &[Result<Triage>]) -> Option<String> {
    let keys: Vec<String> = (sequence.resources.iter())
        .filter(|r| r.resource_type == "ACCESS_KEY")
        .filter_map(|r| {
            let key = r.data.as_ref()?.access_key.as_ref()?;
            let session = key.principal_id.as_deref()?.split_once(':')?.1;
            (key.user_type.as_deref() == Some("AssumedRole") && session.starts_with("i-"))
                .then(|| format!("{} (role {})", r.uid, key.user_name.as_deref().unwrap_or("?")))
        })
        .collect();
    let requested = items.iter().filter(|i| matches!(i, Ok(Triage::Fetch(_)))).count();
    (keys.len() > requested).then(|| {
        format!(
            "the attack sequence names instance credentials {} and {requested} exfiltration finding(s): each finding's \
             role is contained; a key no finding names is not acted on from the sequence alone (contain its role by hand \
             with a roleName payload)",
            keys.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event() -> Value {
        serde_json::from_str(include_str!("../../events/attack-sequence.json")).unwrap()
    }

    fn triage(value: Value) -> Vec<Result<Triage>> {
        let event: EventBridgeEvent<Value> = serde_json::from_value(value).unwrap();
        assert!(is_attack_sequence(&event));
        triage_event(event)
    }

    fn fetched(items: &[Result<Triage>]) -> Vec<String> {
        (items.iter())
            .filter_map(|i| match i {
                Ok(Triage::Fetch(r)) => Some(r.locator.finding_id.to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn each_exfiltration_finding_of_the_sequence_is_fetched_under_the_sequence() {
        let items = triage(event());
        assert_eq!(
            fetched(&items),
            ["7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b", "5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d"]
        );
        for item in &items {
            let Ok(Triage::Fetch(r)) = item else { panic!("{item:?}") };
            assert_eq!(r.attack_sequence.as_deref(), Some("a1b2c3d4e5f60718293a4b5c6d7e8f90"));
            assert_eq!(r.source, "guardduty");
            assert_eq!(
                (r.account_id.as_deref(), r.region.as_deref()),
                (Some("123456789012"), Some("us-east-1"))
            );
        }
    }

    #[test]
    fn a_sequence_without_our_findings_is_skipped_and_unnamed_keys_are_listed() {
        let mut none = event();
        none["detail"]["service"]["detection"]["sequence"]["signals"]
            .as_array_mut()
            .unwrap()
            .retain(|s| s["type"] != "FINDING");
        let items = triage(none);
        assert!(fetched(&items).is_empty());
        let reasons: Vec<&str> = (items.iter())
            .map(|i| match i {
                Ok(Triage::Skip { reason, .. }) => reason.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(reasons.len(), 1);
        assert!(
            reasons[0].contains("ASIAQX3EXAMPLEKEY7N2 (role WebAppRole)"),
            "{}",
            reasons[0]
        );
        let mut other = event();
        other["detail"]["type"] = "AttackSequence:S3/CompromisedData".into();
        assert!(matches!(&triage(other)[..], [Ok(Triage::Skip { reason, .. })] if reason.contains("not one that")));
    }

    #[test]
    fn a_signal_that_names_no_finding_of_the_sequence_s_account_is_refused() {
        let mut elsewhere = event();
        elsewhere["detail"]["service"]["detection"]["sequence"]["signals"][0]["uid"] =
            "arn:aws:guardduty:us-east-1:210987654321:detector/12abc34d567e8fa901bc2d34e56789f0/finding/x1".into();
        let items = triage(elsewhere);
        assert!(matches!(&items[0], Err(Error::BadInput { field, .. })
            if field == "detail.service.detection.sequence.signals[0].uid"));
        assert_eq!(fetched(&items).len(), 1, "the other signal still counts");
        let mut garbled = event();
        garbled["detail"]["service"]["detection"]["sequence"]["signals"][0]["uid"] = json!("not-an-arn");
        assert!(triage(garbled)[0].is_err());
        let mut untyped = event();
        untyped["detail"]["service"]["detection"] = json!({});
        assert!(matches!(&triage(untyped)[..], [Err(Error::BadInput { field, message })]
            if field == "detail.service.detection" && message.contains("sequence")));
    }
}
