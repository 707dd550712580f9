//! What Security Hub is told after a response (`SECURITY_HUB_UPDATES`): the finding's workflow
//! status and a note, decided from the report alone. RESOLVED once remediated with nothing left
//! for a person; NOTIFIED while work is pending (an instance needs attention) or the run failed
//! (Lambda retries it). A skip, a refusal or a dry run changes nothing there: a finding that is
//! not ours, or not GuardDuty's, keeps its workflow.
//! <https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_BatchUpdateFindings.html>
//!
//! A finding that came in OCSF (`Findings Imported V2`) is updated through the API of that format,
//! `BatchUpdateFindingsV2`, which names it by [`OcsfIdentifier`] and takes OCSF's `status_id`
//! (<https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_BatchUpdateFindingsV2.html>):
//! the ASFF call may not reach it, and then it stays New and its rule fires on every update.

use crate::finding::OcsfIdentifier;
use crate::finding::{FindingArn, finding_arn as parse_finding_arn};
use crate::message;
use crate::report::{Outcome, Report};

/// Security Hub's limit on a note's text.
pub const MAX_NOTE_CHARS: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowUpdate {
    /// The finding's `Id` in Security Hub: GuardDuty's ARN for it.
    pub finding_arn: String,
    /// `arn:<partition>:securityhub:<region>::product/aws/guardduty`.
    pub product_arn: String,
    /// Where the finding is, which is where Security Hub is asked.
    pub region: String,
    pub status: &'static str,
    pub note: String,
    /// Set when the finding came in OCSF: it is updated by these, with [`Self::status_id`].
    pub ocsf: Option<OcsfIdentifier>,
}

impl WorkflowUpdate {
    /// OCSF's `status_id` for the status: 4 Resolved; 2 In Progress for work a person must finish
    /// (what ASFF's NOTIFIED says).
    pub fn status_id(&self) -> i32 {
        match self.status {
            "RESOLVED" => 4,
            _ => 2,
        }
    }
}

pub fn workflow_update(report: &Report) -> Option<WorkflowUpdate> {
    if report.dry_run {
        return None;
    }
    let status = match report.outcome {
        Outcome::Remediated | Outcome::AlreadyRemediated if report.needing_attention().is_empty() => "RESOLVED",
        Outcome::Remediated | Outcome::AlreadyRemediated | Outcome::Failed => "NOTIFIED",
        _ => return None,
    };
    let finding_arn = report.finding.arn.clone()?;
    let FindingArn { partition, region, .. } = parse_finding_arn(&finding_arn)?;
    let product_arn = format!("arn:{partition}:securityhub:{region}::product/aws/guardduty");
    let note = format!(
        "exfil-responder: {}. Report {}.",
        message::summary_line(report),
        report.id.as_deref().unwrap_or("(unnamed)")
    );
    Some(WorkflowUpdate {
        region: region.to_owned(),
        finding_arn,
        product_arn,
        status,
        note: message::clipped(&note, MAX_NOTE_CHARS),
        ocsf: report.finding.ocsf.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{FindingSummary, InstanceReport, Relation};

    const ARN: &str = "arn:aws:guardduty:eu-west-1:210987654321:detector/d1/finding/f1";

    fn report(outcome: Outcome) -> Report {
        let mut report = Report::new(
            FindingSummary {
                id: Some("f1".into()),
                arn: Some(ARN.into()),
                ..FindingSummary::default()
            },
            false,
        );
        report.outcome = outcome;
        report.id = Some("req-1#0".into());
        report
    }

    fn attention() -> InstanceReport {
        InstanceReport {
            instance_id: "i-0123456789abcdef0".into(),
            region: None,
            relation: Relation::Named,
            state: None,
            action: None,
            action_source: None,
            result: "FAILED at AssociateIamInstanceProfile".into(),
            needs_attention: true,
            snapshots: Vec::new(),
            metadata_tokens: None,
        }
    }

    #[test]
    fn remediated_is_resolved_and_pending_or_failed_work_is_notified() {
        let update = workflow_update(&report(Outcome::Remediated)).unwrap();
        assert_eq!(update.status, "RESOLVED");
        assert_eq!(update.finding_arn, ARN);
        assert_eq!(
            update.product_arn,
            "arn:aws:securityhub:eu-west-1::product/aws/guardduty"
        );
        assert_eq!(update.region, "eu-west-1");
        assert!(update.note.starts_with("exfil-responder: ") && update.note.ends_with("Report req-1#0."));
        let mut pending = report(Outcome::Remediated);
        pending.instances.push(attention());
        assert_eq!(workflow_update(&pending).unwrap().status, "NOTIFIED");
        // OCSF's status: Resolved (4), or In Progress (2) while a person has work.
        assert_eq!(
            (update.status_id(), workflow_update(&pending).unwrap().status_id()),
            (4, 2)
        );
        assert_eq!(update.ocsf, None, "a finding that came in ASFF");
        assert_eq!(workflow_update(&report(Outcome::Failed)).unwrap().status, "NOTIFIED");
        assert_eq!(
            workflow_update(&report(Outcome::AlreadyRemediated)).unwrap().status,
            "RESOLVED"
        );
    }

    #[test]
    fn skips_refusals_dry_runs_and_findings_without_an_arn_change_nothing() {
        for outcome in [Outcome::Skipped, Outcome::Refused, Outcome::Planned, Outcome::Released] {
            assert_eq!(workflow_update(&report(outcome)), None, "{outcome:?}");
        }
        let mut dry = report(Outcome::Remediated);
        dry.dry_run = true;
        assert_eq!(workflow_update(&dry), None);
        let mut manual = report(Outcome::Remediated);
        manual.finding.arn = None;
        assert_eq!(workflow_update(&manual), None);
    }

    #[test]
    fn the_note_fits_security_hubs_limit() {
        let mut many = report(Outcome::Remediated);
        many.instances = (0..200).map(|_| attention()).collect();
        assert!(workflow_update(&many).unwrap().note.chars().count() <= MAX_NOTE_CHARS);
    }
}
