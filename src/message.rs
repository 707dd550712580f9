//! What a person reads about a response: one summary line ("Contained WebAppRole at 11:43:31Z;
//! i-1, i-2 re-attached; i-3 left to recover; 0 need attention"), used in Security Hub's note,
//! and the chat message built around it in the custom-notification format of AWS's chat
//! integration for Slack, Microsoft Teams and Amazon Chime
//! (<https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html>). The JSON report
//! stays the machine interface; this is derived from it alone.

use serde_json::{Value, json};

use crate::report::{Outcome, Report};
use crate::rules::Action;

/// Instances named in a line before the rest are counted.
const NAMED_INSTANCES: usize = 5;
const MAX_TITLE_CHARS: usize = 250;
const MAX_DESCRIPTION_CHARS: usize = 4000;

/// `text`, cut to `max` characters with an ellipsis.
pub fn clipped(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The run in one line.
pub fn summary_line(report: &Report) -> String {
    let role = report.role.as_ref().map_or("the role", |r| r.name.as_str());
    let finding = report.finding.id.as_deref().unwrap_or("(manual)");
    let reason = report.outcome_reason.as_deref().unwrap_or("no reason given");
    let verb = match report.outcome {
        Outcome::Remediated => "Contained",
        Outcome::AlreadyRemediated => "Already contained",
        Outcome::Planned => "Would contain",
        Outcome::Failed => return format!("Containing {role} FAILED (finding {finding}): {reason}"),
        Outcome::Refused => return format!("Refused finding {finding}: {reason}"),
        Outcome::Skipped => return format!("Skipped finding {finding}: {reason}"),
        Outcome::Released => {
            let why = report
                .outcome_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            return format!("Released {role}{why}");
        }
        Outcome::Restored => {
            let instance = report.operation.as_ref().map_or("the instance", |o| o.subject.as_str());
            return format!("Restored {instance}'s profile");
        }
        Outcome::Assessed => return readiness_line(report),
    };
    let at = report
        .cutoff
        .as_ref()
        .map(|c| format!(" at {}", clock(&c.at)))
        .unwrap_or_default();
    let mut parts = vec![format!("{verb} {role}{at}")];
    for action in [
        Action::Cycle,
        Action::CycleReboot,
        Action::Isolate,
        Action::Revoke,
        Action::Ignore,
    ] {
        let ids: Vec<&str> = (report.instances.iter())
            .filter(|i| i.action == Some(action) && !i.needs_attention)
            .map(|i| i.instance_id.as_str())
            .collect();
        if !ids.is_empty() {
            parts.push(format!("{} {}", listed(&ids), done(action)));
        }
    }
    parts.push(format!("{} need attention", report.needing_attention().len()));
    parts.join("; ")
}

/// Readiness in one line: what was assessed, and what would go wrong.
fn readiness_line(report: &Report) -> String {
    let Some(r) = &report.readiness else {
        return "Readiness: nothing assessed".into();
    };
    format!(
        "Readiness: {} role(s) in {} account(s); {} cannot be contained; {} instance(s) would be left \
         without credentials until their next rotation; {} part(s) not read",
        r.roles(),
        r.accounts.len(),
        r.not_containable(),
        r.without_credentials(),
        r.unread()
    )
}

/// `10:05:00Z` from `2026-11-22T10:05:00.000Z`.
fn clock(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at).map_or_else(|_| at.to_owned(), |t| t.format("%H:%M:%SZ").to_string())
}

fn listed(ids: &[&str]) -> String {
    let named = ids.iter().take(NAMED_INSTANCES).copied().collect::<Vec<_>>().join(", ");
    match ids.len().saturating_sub(NAMED_INSTANCES) {
        0 => named,
        more => format!("{named} and {more} more"),
    }
}

fn done(action: Action) -> &'static str {
    match action {
        Action::Cycle => "re-attached",
        Action::CycleReboot => "re-attached and rebooted",
        Action::Isolate => "isolated",
        Action::Revoke => "left to recover",
        Action::Ignore => "left alone",
    }
}

/// The chat message for a report worth a person's attention: a containment (done, planned or
/// failed), a refused finding, a release or a restore. Skips and repeat deliveries are not.
pub fn chat_notification(report: &Report) -> Option<Value> {
    let role = report.role.as_ref().map_or("the role", |r| r.name.as_str());
    let (icon, title) = match report.outcome {
        Outcome::Remediated => (":white_check_mark:", format!("Contained {role}")),
        Outcome::Planned => (":memo:", format!("Dry run: would contain {role}")),
        Outcome::Failed => (":rotating_light:", format!("Containing {role} FAILED")),
        Outcome::Refused => (":warning:", "Refused a finding GuardDuty does not confirm".to_owned()),
        Outcome::Released => (":unlock:", format!("Released {role}")),
        Outcome::Restored => (
            ":leftwards_arrow_with_hook:",
            "Restored an isolated instance".to_owned(),
        ),
        Outcome::Assessed => (":clipboard:", "Readiness".to_owned()),
        Outcome::Skipped | Outcome::AlreadyRemediated => return None,
    };
    let f = &report.finding;
    let mut description = format!("{}.", summary_line(report));
    if let (Some(kind), Some(account), Some(region)) = (&f.finding_type, &f.account_id, &f.region) {
        description.push_str(&format!("\n*Finding*: {kind} in {account}, {region}"));
    }
    if let Some(link) = console_link(report) {
        description.push_str(&format!("\n<{link}|The finding in GuardDuty>"));
    }
    // Readiness: the table a person pastes into a ticket, as far as the message holds it.
    if let Some(readiness) = &report.readiness {
        description.push_str(&format!("\n\n{}", readiness.summary));
    }
    let mut related: Vec<Value> = report
        .role
        .iter()
        .filter_map(|r| r.arn.clone())
        .map(Value::from)
        .collect();
    related.extend(report.instances.iter().map(|i| Value::from(i.instance_id.clone())));
    // Strings only, and only those known: the format has no nulls.
    let context: serde_json::Map<String, Value> = [("reportId", &report.id), ("findingId", &f.id)]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), Value::from(v.clone()?))))
        .chain([("source".to_owned(), Value::from(f.source.clone()))])
        .collect();
    let mut message = json!({
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": clipped(&format!("{icon} {title}"), MAX_TITLE_CHARS),
            "description": clipped(&description, MAX_DESCRIPTION_CHARS),
            "nextSteps": next_steps(report),
            "keywords": keywords(report),
        },
        "metadata": {
            "threadId": thread(report),
            "summary": clipped(&summary_line(report), MAX_TITLE_CHARS),
            "eventType": format!("exfil-responder/{}", serde_json::to_value(report.outcome).ok()?.as_str()?),
            "relatedResources": related,
            "additionalContext": context,
        },
    });
    if let Some(id) = &report.id {
        message["id"] = id.clone().into();
    }
    Some(message)
}

/// The outcome, and the account where one is known: the format's keywords are labels, and an empty
/// one (readiness has no finding) shows as an empty label.
fn keywords(report: &Report) -> Vec<String> {
    let outcome = format!("{:?}", report.outcome).to_lowercase();
    std::iter::once(outcome)
        .chain(report.finding.account_id.clone().filter(|a| !a.is_empty()))
        .collect()
}

/// A finding's messages share a thread; without a finding, a role's do; and what has neither
/// (readiness) threads with the messages of its kind.
fn thread(report: &Report) -> String {
    (report.finding.id.clone())
        .or_else(|| report.role.as_ref().map(|r| r.name.clone()))
        .unwrap_or_else(|| format!("exfil-responder/{:?}", report.outcome).to_lowercase())
}

fn next_steps(report: &Report) -> Vec<String> {
    let mut steps: Vec<String> = (report.instances.iter())
        .filter(|i| i.needs_attention)
        .take(NAMED_INSTANCES)
        .map(|i| clipped(&format!("Look at {}: {}", i.instance_id, i.result), 300))
        .collect();
    if let Some(chain) = report.chain.as_ref().filter(|c| !c.attention().is_empty()) {
        let left = chain.attention();
        let named: Vec<&str> = left.iter().take(NAMED_INSTANCES).copied().collect();
        steps.push(clipped(
            &format!(
                "Look at the stolen key's trail (the report's chain): {} left for a person, {}",
                left.len(),
                named.join(", ")
            ),
            300,
        ));
    }
    match report.outcome {
        Outcome::Failed => steps.push("Lambda retries the event; its report says which step failed".into()),
        Outcome::Refused => {
            steps.push("Someone may be sending the function false findings: check who may invoke it".into())
        }
        Outcome::Remediated if report.needing_attention().is_empty() => {
            steps.push("Investigate the stolen key's activity in CloudTrail; release the role after the hold".into())
        }
        _ => {}
    }
    steps
}

/// The finding in its partition's GuardDuty console.
fn console_link(report: &Report) -> Option<String> {
    let (id, region) = (report.finding.id.as_deref()?, report.finding.region.as_deref()?);
    let host = match crate::finding::finding_arn(report.finding.arn.as_deref()?)?.partition {
        "aws" => "console.aws.amazon.com",
        "aws-cn" => "console.amazonaws.cn",
        "aws-us-gov" => "console.amazonaws-us-gov.com",
        _ => return None,
    };
    Some(format!(
        "https://{region}.{host}/guardduty/home?region={region}#/findings?macros=current&fId={id}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CutoffReport, CutoffStatus, FindingSummary, InstanceReport, Relation, RoleSummary};

    fn instance(id: &str, action: Action, attention: bool) -> InstanceReport {
        InstanceReport {
            instance_id: id.into(),
            region: Some("us-east-1".into()),
            relation: Relation::Sibling,
            state: Some("running".into()),
            action: Some(action),
            action_source: None,
            result: if attention {
                "FAILED at AssociateIamInstanceProfile: throttled".into()
            } else {
                "cycled".into()
            },
            needs_attention: attention,
            snapshots: Vec::new(),
            metadata_tokens: None,
        }
    }

    fn contained() -> Report {
        let mut report = Report::new(
            FindingSummary {
                source: "guardduty".into(),
                id: Some("f1".into()),
                arn: Some("arn:aws:guardduty:us-east-1:123456789012:detector/d1/finding/f1".into()),
                finding_type: Some(crate::finding::OUTSIDE_AWS.into()),
                account_id: Some("123456789012".into()),
                region: Some("us-east-1".into()),
                ..FindingSummary::default()
            },
            false,
        );
        report.id = Some("req-1#0".into());
        report.outcome = Outcome::Remediated;
        report.role = Some(RoleSummary {
            name: "WebAppRole".into(),
            arn: Some("arn:aws:iam::123456789012:role/WebAppRole".into()),
        });
        report.cutoff = Some(CutoffReport {
            at: "2026-11-22T11:43:31.000Z".into(),
            status: CutoffStatus::Written,
            written_at: None,
            policy: None,
        });
        report.instances = vec![
            instance("i-web1", Action::Cycle, false),
            instance("i-web2", Action::Cycle, false),
            instance("i-batch", Action::Revoke, false),
        ];
        report
    }

    #[test]
    fn the_line_says_what_was_done_to_whom_and_what_is_left() {
        assert_eq!(
            summary_line(&contained()),
            "Contained WebAppRole at 11:43:31Z; i-web1, i-web2 re-attached; i-batch left to recover; 0 need attention"
        );
        let mut failed = contained();
        failed.instances.push(instance("i-stuck", Action::Cycle, true));
        assert!(summary_line(&failed).ends_with("; 1 need attention"));
        let mut many = contained();
        many.instances = (0..8)
            .map(|i| instance(&format!("i-{i}"), Action::Isolate, false))
            .collect();
        assert!(summary_line(&many).contains("i-0, i-1, i-2, i-3, i-4 and 3 more isolated"));
    }

    #[test]
    fn the_chat_message_links_the_finding_and_names_what_needs_a_person() {
        let mut report = contained();
        report.instances.push(instance("i-stuck", Action::Cycle, true));
        let message = chat_notification(&report).unwrap();
        assert_eq!(
            (message["version"].as_str(), message["source"].as_str()),
            (Some("1.0"), Some("custom"))
        );
        let description = message["content"]["description"].as_str().unwrap();
        assert!(description.contains(
            "https://us-east-1.console.aws.amazon.com/guardduty/home?region=us-east-1#/findings?macros=current&fId=f1"
        ));
        assert!(
            message["content"]["title"]
                .as_str()
                .unwrap()
                .contains("Contained WebAppRole")
        );
        assert!(
            message["content"]["nextSteps"][0]
                .as_str()
                .unwrap()
                .starts_with("Look at i-stuck: FAILED")
        );
        assert_eq!(message["metadata"]["eventType"], "exfil-responder/remediated");
        assert_eq!(message["metadata"]["additionalContext"]["reportId"], "req-1#0");
    }

    #[test]
    fn a_message_without_a_finding_or_a_role_has_no_empty_keyword_and_a_thread_of_its_kind() {
        let mut readiness = contained();
        (readiness.outcome, readiness.role) = (Outcome::Assessed, None);
        (readiness.finding.id, readiness.finding.account_id) = (None, None);
        let message = chat_notification(&readiness).unwrap();
        assert_eq!(message["content"]["keywords"], json!(["assessed"]));
        assert_eq!(message["metadata"]["threadId"], "exfil-responder/assessed");
        let mut release = contained();
        (release.outcome, release.finding.id) = (Outcome::Released, None);
        let message = chat_notification(&release).unwrap();
        assert_eq!(message["metadata"]["threadId"], "WebAppRole");
    }

    #[test]
    fn skips_and_repeat_deliveries_are_not_worth_a_message() {
        for outcome in [Outcome::Skipped, Outcome::AlreadyRemediated] {
            let mut report = contained();
            report.outcome = outcome;
            assert_eq!(chat_notification(&report), None, "{outcome:?}");
        }
        let mut refused = contained();
        refused.outcome = Outcome::Refused;
        refused.outcome_reason = Some("the event does not match GuardDuty's finding".into());
        let message = chat_notification(&refused).unwrap();
        assert!(
            message["content"]["description"]
                .as_str()
                .unwrap()
                .contains("does not match")
        );
    }

    #[test]
    fn long_text_is_clipped_to_its_limit() {
        assert_eq!(clipped("abcdef", 4), "abc…");
        assert_eq!(clipped("abc", 4), "abc");
    }
}
