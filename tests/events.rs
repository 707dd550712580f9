//! Every file in `events/` parses, through the library's own input path, to the decision it
//! is there to show. A file added without an expectation here fails the test.

use exfil_responder::finding::{Subject, Triage};
use exfil_responder::input::parse_payload;
use exfil_responder::operation::Operation;
use exfil_responder::rules::Action;

#[derive(Debug)]
enum Expect {
    /// Act on the finding's role WebAppRole and instance i-0a1b2c3d4e5f60718.
    Finding,
    ManualInstance {
        action: Option<Action>,
        dry_run: bool,
    },
    ManualRole,
    /// Cloud Custodian hands over i-0a1b2c3d4e5f60718, in 123456789012 and us-east-1.
    CustodianInstance,
    /// Fetch GuardDuty's finding 7ec8… (outside-aws.json's) under detector 12abc….
    FetchFinding,
    /// Fetch GuardDuty's finding 5a4b…, under the same detector (the attack sequence's second).
    FetchSequenceSibling,
    /// Skipped, with a reason containing this text.
    Skip(&'static str),
    /// Release WebAppRole (unforced), planned only.
    Release,
    /// What an `AUTO_RELEASE` schedule delivers: Release, naming the schedule and the account.
    ScheduledRelease,
    /// Restore i-0a1b2c3d4e5f60718, planned only.
    Restore,
    /// What a `CHAIN` follow-up schedule delivers: walk outside-aws.json's key again, planned only.
    FollowUp,
    /// Readiness of the function's own account, asked by a person with a reason.
    Readiness,
}

fn expectations(file: &str) -> Option<Vec<Expect>> {
    use Expect::*;
    Some(match file {
        "outside-aws.json"
        | "inside-aws.json"
        | "legacy-type.json"
        | "member-account.json"
        | "securityhub-imported.json" => {
            vec![Finding]
        }
        "securityhub-custom-action.json" => vec![
            Finding,
            Skip("a finding of Inspector in Security Hub, not of GuardDuty"),
        ],
        "sample-finding.json" => vec![Skip("sample finding")],
        "ec2-port-probe.json" => vec![Skip(
            "Recon:EC2/PortProbeUnprotectedPort is not an EC2 instance-credential exfiltration finding",
        )],
        "iam-user-key.json" => vec![Skip(
            "MaliciousIPCaller is not an EC2 instance-credential exfiltration finding",
        )],
        "batch-two-events.json" => vec![Finding, Skip("PortProbeUnprotectedPort")],
        "manual-instance.json" => vec![ManualInstance {
            action: Some(Action::Cycle),
            dry_run: false,
        }],
        "manual-dry-run.json" => vec![ManualInstance {
            action: None,
            dry_run: true,
        }],
        "manual-role.json" => vec![ManualRole],
        "custodian-instances.json" => vec![CustodianInstance],
        "manual-finding.json" | "securityhub-ocsf.json" => vec![FetchFinding],
        "attack-sequence.json" => vec![FetchFinding, FetchSequenceSibling],
        "manual-release.json" => vec![Release],
        "scheduled-release.json" => vec![ScheduledRelease],
        "manual-restore.json" => vec![Restore],
        "chain-follow-up.json" => vec![FollowUp],
        "readiness.json" => vec![Readiness],
        _ => return None,
    })
}

#[test]
fn every_event_file_parses_to_its_expected_decision() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/events");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let expected =
            expectations(&file).unwrap_or_else(|| panic!("events/{file} has no expectation in tests/events.rs"));
        let value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let payload = parse_payload(value).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(payload.batch, expected.len() > 1, "{file}");
        assert_eq!(payload.items.len(), expected.len(), "{file}");

        for (item, want) in payload.items.into_iter().zip(expected) {
            let triage = item.unwrap_or_else(|e| panic!("{file}: {e}"));
            match (triage, want) {
                (Triage::Act(incident), Expect::Finding) => {
                    let Subject::Finding {
                        role,
                        role_id,
                        instance,
                    } = &incident.subject
                    else {
                        panic!("{file}: {:?}", incident.subject)
                    };
                    assert_eq!(role.as_str(), "WebAppRole", "{file}");
                    assert_eq!(role_id.as_deref(), Some("AROAEXAMPLEWEBAPPROLE"), "{file}");
                    assert_eq!(
                        instance.as_ref().map(|i| i.as_str()),
                        Some("i-0a1b2c3d4e5f60718"),
                        "{file}"
                    );
                    assert!(incident.first_seen.is_some(), "{file}");
                    assert!(incident.summary.severity.is_some(), "{file}");
                    let source = if file.starts_with("securityhub") {
                        "securityhub"
                    } else {
                        "guardduty"
                    };
                    assert_eq!(incident.summary.source, source, "{file}");
                    assert!(
                        incident.locator.is_some(),
                        "{file}: GuardDuty can be asked to confirm it"
                    );
                }
                (Triage::Act(incident), Expect::ManualInstance { action, dry_run }) => {
                    assert!(
                        matches!(&incident.subject, Subject::Instance(i) if i.as_str() == "i-0a1b2c3d4e5f60718"),
                        "{file}"
                    );
                    assert_eq!(
                        (incident.action_override, incident.dry_run_requested),
                        (action, dry_run),
                        "{file}"
                    );
                    assert!(incident.request_reason.is_some(), "{file}");
                }
                (Triage::Act(incident), Expect::CustodianInstance) => {
                    assert!(
                        matches!(&incident.subject, Subject::Instance(i) if i.as_str() == "i-0a1b2c3d4e5f60718"),
                        "{file}"
                    );
                    let place = (
                        incident.summary.account_id.as_deref(),
                        incident.summary.region.as_deref(),
                    );
                    assert_eq!(place, (Some("123456789012"), Some("us-east-1")), "{file}");
                    assert_eq!(incident.summary.source, "custodian", "{file}");
                }
                (Triage::Act(incident), Expect::ManualRole) => {
                    assert!(
                        matches!(&incident.subject, Subject::Role(r) if r.as_str() == "WebAppRole"),
                        "{file}"
                    );
                }
                (Triage::Fetch(request), want @ (Expect::FetchFinding | Expect::FetchSequenceSibling)) => {
                    let id = match want {
                        Expect::FetchFinding => "7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b",
                        _ => "5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d",
                    };
                    assert_eq!(request.locator.detector_id.as_str(), "12abc34d567e8fa901bc2d34e56789f0");
                    assert_eq!(request.locator.finding_id.as_str(), id, "{file}");
                    assert_eq!(
                        request.attack_sequence.is_some(),
                        file == "attack-sequence.json",
                        "{file}"
                    );
                    let (manual, sequence) = (file.starts_with("manual"), file == "attack-sequence.json");
                    assert_eq!(request.request_reason.is_some(), manual || sequence, "{file}");
                    let source = match (manual, sequence) {
                        (true, _) => "manual",
                        (_, true) => "guardduty",
                        _ => "securityhub",
                    };
                    assert_eq!(request.source, source, "{file}");
                }
                (Triage::Operate(Operation::Release(r)), Expect::Release) => {
                    assert_eq!((r.role.as_str(), r.force), ("WebAppRole", false), "{file}");
                    assert!(r.asked.dry_run && r.asked.reason.is_some(), "{file}");
                    assert_eq!(r.schedule, None, "{file}");
                }
                (Triage::Operate(Operation::Release(r)), Expect::ScheduledRelease) => {
                    assert_eq!((r.role.as_str(), r.force), ("WebAppRole", false), "{file}");
                    assert!(r.asked.dry_run, "{file}");
                    assert_eq!(r.asked.account_id.as_deref(), Some("123456789012"), "{file}");
                    let schedule = r.schedule.as_deref().unwrap_or_default();
                    assert!(schedule.starts_with("release-123456789012-"), "{file}: {schedule}");
                }
                (Triage::Operate(Operation::Restore(r)), Expect::Restore) => {
                    assert_eq!(r.instance.as_str(), "i-0a1b2c3d4e5f60718", "{file}");
                    assert!(r.asked.dry_run && r.asked.requested_by.is_some(), "{file}");
                }
                (Triage::Operate(Operation::FollowUp(f)), Expect::FollowUp) => {
                    assert_eq!(
                        (f.finding_id.as_str(), f.key.as_str()),
                        ("7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b", "ASIAQX3EXAMPLEKEY7N2"),
                        "{file}"
                    );
                    assert_eq!(f.role.as_ref().map(|r| r.as_str()), Some("WebAppRole"), "{file}");
                    assert!(f.asked.dry_run && f.schedule.is_some(), "{file}");
                }
                (Triage::Operate(Operation::Readiness(r)), Expect::Readiness) => {
                    assert!(r.accounts.is_empty(), "{file}: the function's own account");
                    assert!(
                        r.asked.reason.as_deref().is_some_and(|why| why.starts_with("CHG-")),
                        "{file}"
                    );
                }
                (Triage::Skip { reason, .. }, Expect::Skip(text)) => assert!(reason.contains(text), "{file}: {reason}"),
                (got, want) => panic!("{file}: expected {want:?}, got {got:?}"),
            }
        }
        seen += 1;
    }
    assert_eq!(seen, 22, "every scenario file is checked");
}
