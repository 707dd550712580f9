//! The report: what was found, decided and done, returned to the caller and logged as one JSON line.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clients::Session;
use crate::error::{Error, Result};
use crate::names::InstanceId;
use crate::rules::{Action, ActionSource};
use crate::wait::Deadline;

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
    /// A step failed or the input was bad. Lambda retries.
    Failed,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FindingSummary {
    /// `guardduty` for an EventBridge event, `manual` for a manual payload.
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// When EventBridge published the event: the start of time-to-containment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_time: Option<DateTime<Utc>>,
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub finding_type: Option<String>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub severity: Option<f64>,
    pub event_first_seen: Option<String>,
    /// The stolen key's id (not a secret): what to search CloudTrail for.
    pub access_key_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RoleSummary {
    pub name: String,
    pub arn: Option<String>,
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
}

/// How the finding acted on was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verification {
    /// GuardDuty returned the same finding; its copy was acted on.
    Confirmed,
    /// A manual payload named the finding; GuardDuty's copy was acted on.
    Fetched,
    /// `VERIFY_FINDINGS=false`: the event was acted on as delivered.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    /// The instance the finding (or payload) names.
    Named,
    /// Another instance whose profile holds the revoked role.
    Sibling,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceReport {
    pub instance_id: String,
    pub relation: Relation,
    pub state: Option<String>,
    pub action: Option<Action>,
    pub action_source: Option<ActionSource>,
    /// What happened to it, or in a dry run what would.
    pub result: String,
    pub needs_attention: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepOutcome {
    Ok,
    Failed,
    Planned,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// The AWS operation (or wait) this step is.
    pub step: String,
    pub target: String,
    pub outcome: StepOutcome,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
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
            error: None,
        }
    }

    pub fn fail(&mut self, err: &Error) {
        self.outcome = Outcome::Failed;
        self.outcome_reason = Some(err.to_string());
        self.error = Some(err.into());
    }

    /// Instances a human must look at: failures, and states we could not act in.
    pub fn needing_attention(&self) -> Vec<&str> {
        self.instances
            .iter()
            .filter(|i| i.needs_attention)
            .map(|i| i.instance_id.as_str())
            .collect()
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

/// Collects step records; shared by the concurrent parts of one remediation. Each step is also
/// logged as one line carrying the finding id, the role and the instance, so a line stands alone.
#[derive(Debug)]
pub struct Steps {
    finding_id: String,
    deadline: Deadline,
    role: OnceLock<String>,
    records: Mutex<Vec<StepRecord>>,
}

impl Steps {
    pub fn new(finding_id: &str, deadline: Deadline) -> Self {
        Self {
            finding_id: finding_id.to_owned(),
            deadline,
            role: OnceLock::default(),
            records: Mutex::default(),
        }
    }

    /// A wait of up to `timeout`, shortened to end before the invocation's reserve.
    pub fn bounded(&self, timeout: std::time::Duration) -> std::time::Duration {
        self.deadline.cap(timeout)
    }

    /// The role, once known (a manual `instanceId` payload learns it from the instance).
    pub fn set_role(&self, role: &str) {
        let _ = self.role.set(role.to_owned());
    }

    pub fn role(&self) -> Option<&str> {
        self.role.get().map(String::as_str)
    }

    /// Run one AWS call (or wait), timing it and recording its outcome. It does not start with
    /// the invocation's deadline too close: then it fails with `DeadlineNear`, between steps.
    pub async fn run<T>(
        &self,
        step: &str,
        target: &str,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = match self.deadline.allows_a_step() {
            Ok(()) => call.await,
            Err(left) => Err(Error::DeadlineNear {
                step: step.to_owned(),
                target: target.to_owned(),
                left_ms: left.as_millis(),
                reserve_ms: self.deadline.reserve().as_millis(),
            }),
        };
        let (outcome, detail, error_code) = match &result {
            Ok(_) => (StepOutcome::Ok, None, None),
            Err(e) => (
                StepOutcome::Failed,
                Some(e.to_string()),
                e.aws_code().map(str::to_owned),
            ),
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        let instance = InstanceId::parse(target).ok();
        tracing::info!(
            finding_id = %self.finding_id,
            role = self.role(),
            instance = instance.as_ref().map(InstanceId::as_str),
            step,
            target,
            ?outcome,
            duration_ms,
            error = detail.as_deref(),
            error_code = error_code.as_deref(),
            "step"
        );
        self.push(StepRecord {
            step: step.to_owned(),
            target: target.to_owned(),
            outcome,
            duration_ms,
            detail,
            error_code,
        });
        result
    }

    pub fn planned(&self, step: &str, target: &str, detail: String) {
        self.push(StepRecord {
            step: step.to_owned(),
            target: target.to_owned(),
            outcome: StepOutcome::Planned,
            duration_ms: 0,
            detail: Some(detail),
            error_code: None,
        });
    }

    fn push(&self, record: StepRecord) {
        self.records.lock().unwrap_or_else(|p| p.into_inner()).push(record);
    }

    pub fn into_records(self) -> Vec<StepRecord> {
        self.records.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    /// Did any write succeed? Decides remediated versus already-remediated.
    pub fn wrote_anything(&self) -> bool {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|r| r.outcome == StepOutcome::Ok && is_write(&r.step))
    }
}

/// The operations that change something in the account.
pub fn is_write(step: &str) -> bool {
    matches!(
        step,
        "PutRolePolicy"
            | "CreateTags"
            | "DisassociateIamInstanceProfile"
            | "AssociateIamInstanceProfile"
            | "RebootInstances"
            | "ArchiveFindings"
    )
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
    let line = serde_json::json!({
        "level": level,
        "target": "exfil_responder::report",
        "message": "exfil-responder report",
        "outcome": report.outcome,
        "findingId": report.finding.id,
        "report": report,
    });
    crate::logging::print_json_line(&line);
}
