//! The report: what was found, decided and done, returned to the caller and logged as one JSON line.

use chrono::{DateTime, Utc};
use serde::Serialize;

pub mod chain;
pub mod readiness;
pub mod schedule;

pub use crate::api::{StepOutcome, StepRecord};
use crate::aws::clients::Session;
use crate::error::Error;
pub use crate::finding::FindingSummary;
use crate::plan::RoleFacts;
pub use crate::plan::model::Relation;
use crate::rules::{Action, ActionSource};
pub use schedule::{ScheduleReport, ScheduleStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Something was written and every step succeeded.
    Remediated,
    /// Everything was already in place; nothing was written.
    AlreadyRemediated,
    /// Not ours to act on, or refused by a safety rule; nothing was written.
    Skipped,
    /// GuardDuty does not confirm the finding (forged, altered, unknown or suppressed); nothing
    /// was written. Worth an alarm: someone may be feeding the function false findings.
    Refused,
    /// Dry run: the plan is reported and nothing was written.
    Planned,
    /// A release removed the role's revocation.
    Released,
    /// A restore gave an isolated instance its recorded profile back.
    Restored,
    /// Readiness: what a containment would do now, read only; nothing was written.
    Assessed,
    /// A step failed or the input was bad. Lambda retries.
    Failed,
}

impl Outcome {
    /// A batch is as good as its best report.
    pub fn of_batch(reports: &[Report]) -> Self {
        let any = |o| reports.iter().any(|r| r.outcome == o);
        [
            Self::Remediated,
            Self::Released,
            Self::Restored,
            Self::Planned,
            Self::AlreadyRemediated,
        ]
        .into_iter()
        .find(|o| any(*o))
        .unwrap_or(Self::Skipped)
    }
}

/// How a run ended, short of failing: its outcome, and why where the report should say.
pub struct Ended {
    pub outcome: Outcome,
    pub reason: Option<String>,
}

impl Ended {
    pub fn with(outcome: Outcome) -> Self {
        Self { outcome, reason: None }
    }

    /// A run that got to its end: planned (a dry run), remediated if it wrote, else already so.
    pub fn finished(dry_run: bool, wrote: bool) -> Self {
        Self::with(match (dry_run, wrote) {
            (true, _) => Outcome::Planned,
            (false, true) => Outcome::Remediated,
            (false, false) => Outcome::AlreadyRemediated,
        })
    }

    /// Nothing changed, and why: not ours, refused by a rule, or nothing to do.
    pub fn skipped(reason: String) -> Self {
        tracing::warn!(%reason, "nothing changed");
        Self {
            outcome: Outcome::Skipped,
            reason: Some(reason),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RoleSummary {
    pub name: String,
    pub arn: Option<String>,
}

impl RoleSummary {
    /// By name, before IAM is asked.
    pub fn named(role: &crate::names::RoleName) -> Self {
        Self {
            name: role.to_string(),
            arn: None,
        }
    }

    /// As IAM has it.
    pub fn of(role: &RoleFacts) -> Self {
        Self {
            name: role.name.clone(),
            arn: Some(role.arn.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CutoffStatus {
    /// Written by this run.
    Written,
    /// Already on the role at or after the finding's first sighting; left as it was.
    Existing,
    /// Dry run: would be written.
    Planned,
    /// Writing it failed.
    Failed,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CutoffReport {
    pub at: String,
    pub status: CutoffStatus,
    /// When `PutRolePolicy` returned: from here the stolen credentials are denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_at: Option<DateTime<Utc>>,
    /// Which document holds it: the inline `AWSRevokeOlderSessions`, or the managed fallback
    /// (written when the role's inline quota was full). None when the write failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::policy::Holder>,
}

/// How the finding acted on was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verification {
    /// GuardDuty returned the same finding; its copy was acted on.
    Confirmed,
    /// A manual payload, Security Hub's OCSF or an attack sequence named the finding; GuardDuty's
    /// copy was acted on.
    Fetched,
    /// `VERIFY_FINDINGS=false`: the event was acted on as delivered.
    Off,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceReport {
    pub instance_id: String,
    /// Where it runs (None: found in no region).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub relation: Relation,
    pub state: Option<String>,
    pub action: Option<Action>,
    pub action_source: Option<ActionSource>,
    /// What happened to it, or in a dry run what would.
    pub result: String,
    pub needs_attention: bool,
    /// Evidence snapshots this run took of its volumes (`FORENSICS=snapshot`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<String>,
    /// Its metadata service's `HttpTokens` after the run: `optional` still serves IMDSv1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_tokens: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReport {
    pub kind: String,
    pub message: String,
}

impl From<&Error> for ErrorReport {
    fn from(err: &Error) -> Self {
        Self {
            kind: err.kind(),
            message: err.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// This report among all: the Lambda request id (or the CLI's run) and its place in the
    /// invocation's batch. What Security Hub's note and the chat message name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub outcome: Outcome,
    /// Why it was skipped or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome_reason: Option<String>,
    pub dry_run: bool,
    pub finding: FindingSummary,
    /// The manual payload's free-text `reason`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_reason: Option<String>,
    /// Absent for manual instanceId and roleName payloads, which name no finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// The member role session the work in another account was done through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_session: Option<Session>,
    pub role: Option<RoleSummary>,
    pub cutoff: Option<CutoffReport>,
    pub instances: Vec<InstanceReport>,
    pub steps: Vec<StepRecord>,
    pub warnings: Vec<String>,
    /// A release or restore: what was asked, and what it removed or gave back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationReport>,
    /// `HARDEN=imdsv2`: which instances still allow IMDSv1, and the role-side guard to consider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hardening: Option<HardeningReport>,
    /// `AUTO_RELEASE=true`: the schedule that releases the role once its hold is over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_release: Option<ScheduleReport>,
    /// Readiness: what a containment would do now to every role an instance uses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness: Option<readiness::ReadinessReport>,
    /// `CHAIN`: the stolen key's trail, what it reached and what was done about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<chain::ChainReport>,
    /// `SECURITY_HUB_UPDATES`: the finding's workflow, as set in Security Hub after the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_hub: Option<Announced>,
    /// `NOTIFICATION_TOPIC_ARN`: the summary published for people to read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<Announced>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
}

/// What was told to Security Hub or the chat topic, after the response: best effort, never
/// changing its outcome.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Announced {
    /// `updated` or `published`; `failed` (the warning says why).
    pub status: &'static str,
    /// Security Hub: the workflow status set (`NOTIFIED`, `RESOLVED`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<&'static str>,
    /// SNS's message id, or Security Hub's error for the finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A release or restore, beside the steps it ran.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct OperationReport {
    /// `release` or `restore`.
    pub name: &'static str,
    /// The role released, or the instance restored.
    pub subject: String,
    /// Who asked, as the payload states it (the CLI: its caller's ARN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// A release before every token issued before the cut-off had expired.
    pub forced: bool,
    /// Release: when every such token has expired (the cut-off plus `REVOKE_HOLD_HOURS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safe_at: Option<DateTime<Utc>>,
    /// Release: each document of ours on the role, as it was, and whether it was removed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<ReleasedDocument>,
    /// Restore: the profile given back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// What is left open once the run is done, and how to close it from the role's side.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HardeningReport {
    /// Instances using the role whose metadata service still serves credentials without a token.
    pub still_allow_imdsv1: Vec<String>,
    pub role_guard: RoleGuard,
}

/// A policy that makes instance credentials unusable away from their instance's network: printed
/// for a person to weigh and apply, never applied here (a wrong network perimeter stops every
/// instance using the role).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RoleGuard {
    pub applied: bool,
    pub policy: serde_json::Value,
    pub caveats: Vec<&'static str>,
    pub documentation: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReleasedDocument {
    pub holder: crate::policy::Holder,
    pub cutoff: DateTime<Utc>,
    /// The document itself, as IAM held it.
    pub document: serde_json::Value,
    /// When it was removed (none: in a dry run, or not reached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<DateTime<Utc>>,
}

impl Report {
    pub fn new(finding: FindingSummary, dry_run: bool) -> Self {
        Self {
            outcome: Outcome::Skipped,
            outcome_reason: None,
            dry_run,
            finding,
            request_reason: None,
            verification: None,
            member_session: None,
            role: None,
            cutoff: None,
            instances: Vec::new(),
            steps: Vec::new(),
            warnings: Vec::new(),
            operation: None,
            hardening: None,
            auto_release: None,
            readiness: None,
            chain: None,
            security_hub: None,
            notification: None,
            error: None,
            id: None,
        }
    }

    /// With `HARDEN=imdsv2`, the hardening section, from the instances' reports.
    pub fn harden(&mut self, on: bool) {
        if !on {
            return;
        }
        let open = self
            .instances
            .iter()
            .filter(|i| i.metadata_tokens.as_deref() == Some("optional"));
        self.hardening = Some(HardeningReport {
            still_allow_imdsv1: open.map(|i| i.instance_id.clone()).collect(),
            role_guard: RoleGuard {
                applied: false,
                policy: crate::policy::source_network_guard(),
                caveats: crate::policy::SOURCE_NETWORK_GUARD_CAVEATS.to_vec(),
                documentation: crate::policy::SOURCE_NETWORK_GUARD_DOC,
            },
        });
    }

    /// Failed before anything was established.
    pub fn failed(finding: FindingSummary, dry_run: bool, err: &Error) -> Self {
        let mut report = Self::new(finding, dry_run);
        report.fail(err);
        report
    }

    /// Set the outcome from how the run ended.
    pub fn end(&mut self, ended: std::result::Result<&Ended, &Error>) {
        match ended {
            Ok(ended) => {
                self.outcome = ended.outcome;
                self.outcome_reason = ended.reason.clone();
            }
            Err(e) => self.fail(e),
        }
    }

    pub fn fail(&mut self, err: &Error) {
        self.outcome = Outcome::Failed;
        self.outcome_reason = Some(err.to_string());
        self.error = Some(err.into());
    }

    /// What a human must look at: instances that failed or are in states we could not act in,
    /// and what the stolen key's trail left for a person (`CHAIN`).
    pub fn needing_attention(&self) -> Vec<&str> {
        let instances = (self.instances.iter())
            .filter(|i| i.needs_attention)
            .map(|i| i.instance_id.as_str());
        instances.chain(self.chain.iter().flat_map(|c| c.attention())).collect()
    }
}

/// The answer to one invocation: one report per event.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Response {
    Single(Box<Report>),
    Batch { outcome: Outcome, reports: Vec<Report> },
}

impl Response {
    pub fn reports(&self) -> Vec<&Report> {
        match self {
            Self::Single(report) => vec![report],
            Self::Batch { reports, .. } => reports.iter().collect(),
        }
    }
}

/// Log the report as one JSON line on stdout, where Lambda sends it to CloudWatch Logs,
/// nested rather than escaped into a string field so Logs Insights can query it.
pub fn log_json_line(report: &Report) {
    // Lambda's log-level filter and Logs Insights read `level`: a failure is an error.
    let level = if report.outcome == Outcome::Failed {
        "ERROR"
    } else {
        "INFO"
    };
    let mut line = serde_json::json!({
        "level": level,
        "target": "exfil_responder::report",
        "message": "exfil-responder report",
        "outcome": report.outcome,
        "findingId": report.finding.id,
        "report": report,
    });
    if let Some(r) = &report.readiness {
        // A role per line, the report without its instances: readiness over a thousand instances
        // as one line would pass CloudWatch Logs' 256 KB event limit.
        readiness::log_roles(r);
        readiness::without_instances(&mut line["report"]["readiness"]);
    }
    crate::logging::print_json_line(&line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hardening_section_lists_what_still_serves_imdsv1_and_applies_nothing() {
        let instance = |id: &str, tokens: Option<&str>| InstanceReport {
            instance_id: id.into(),
            region: None,
            relation: Relation::Sibling,
            state: None,
            action: None,
            action_source: None,
            result: String::new(),
            needs_attention: false,
            snapshots: Vec::new(),
            metadata_tokens: tokens.map(str::to_owned),
        };
        let mut report = Report::new(FindingSummary::default(), false);
        report.instances = vec![
            instance("i-1", Some("required")),
            instance("i-2", Some("optional")),
            instance("i-3", None),
        ];
        report.harden(false);
        assert!(report.hardening.is_none(), "HARDEN off: no section");
        report.harden(true);
        let section = serde_json::to_value(&report).unwrap()["hardening"].clone();
        assert_eq!(section["stillAllowImdsv1"], serde_json::json!(["i-2"]));
        assert_eq!(section["roleGuard"]["applied"], false);
        assert_eq!(section["roleGuard"]["caveats"].as_array().unwrap().len(), 5);
    }
}
