//! The step executor: every AWS call and wait of a remediation runs through [`Journal::run`], which
//! keeps the invocation's deadline, times the call, logs it as one line and records it for the
//! report. Shared by the concurrent parts of one remediation.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use crate::api::{ApiCall, StepOutcome, StepRecord};
use crate::error::{Error, Result};
use crate::names::InstanceId;
use crate::wait::Deadline;

#[derive(Debug)]
pub struct Journal {
    finding_id: String,
    deadline: Deadline,
    role: OnceLock<String>,
    records: Mutex<Vec<StepRecord>>,
}

impl Journal {
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

    /// The role, once known (a manual `instanceId` payload learns it from the instance); every
    /// step's log line names it, so that a line stands alone.
    pub fn set_role(&self, role: &str) {
        let _ = self.role.set(role.to_owned());
    }

    pub fn role(&self) -> Option<&str> {
        self.role.get().map(String::as_str)
    }

    /// Run one AWS call (or wait), timing it and recording its outcome. It does not start with
    /// the invocation's deadline too close: then it fails with `DeadlineNear`, between steps.
    pub async fn run<T>(&self, op: ApiCall, target: &str, call: impl Future<Output = Result<T>>) -> Result<T> {
        let started = Instant::now();
        let result = match self.deadline.allows_a_step() {
            Ok(()) => call.await,
            Err(left) => Err(Error::DeadlineNear {
                step: op.name().to_owned(),
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
            step = op.name(),
            target,
            ?outcome,
            duration_ms,
            error = detail.as_deref(),
            error_code = error_code.as_deref(),
            "step"
        );
        self.push(StepRecord {
            step: op,
            target: target.to_owned(),
            outcome,
            duration_ms,
            detail,
            error_code,
        });
        result
    }

    /// A dry run's step: recorded as planned, never run.
    pub fn planned(&self, op: ApiCall, target: &str, detail: String) {
        self.push(StepRecord {
            step: op,
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
            .any(StepRecord::wrote)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_step_is_recorded_and_only_a_successful_write_counts() {
        let steps = Journal::new("f-1", Deadline::none());
        let read: Result<()> = steps.run(ApiCall::GetRole, "WebAppRole", async { Ok(()) }).await;
        read.unwrap();
        assert!(!steps.wrote_anything(), "a read is not a write");
        steps.planned(ApiCall::PutRolePolicy, "WebAppRole", "deny".into());
        assert!(!steps.wrote_anything(), "a planned write is not a write");
        let failed: Result<()> = steps
            .run(ApiCall::CreateTags, "i-0123456789abcdef0", async {
                Err(Error::Unexpected("no".into()))
            })
            .await;
        assert!(failed.is_err());
        assert!(!steps.wrote_anything(), "a failed write is not a write");
        steps
            .run(ApiCall::PutRolePolicy, "WebAppRole", async { Ok(()) })
            .await
            .unwrap();
        assert!(steps.wrote_anything());
        let records = steps.into_records();
        let shown: Vec<(ApiCall, StepOutcome)> = records.iter().map(|r| (r.step, r.outcome)).collect();
        assert_eq!(
            shown,
            [
                (ApiCall::GetRole, StepOutcome::Ok),
                (ApiCall::PutRolePolicy, StepOutcome::Planned),
                (ApiCall::CreateTags, StepOutcome::Failed),
                (ApiCall::PutRolePolicy, StepOutcome::Ok),
            ]
        );
        assert_eq!(records[2].detail.as_deref(), Some("no"));
    }

    #[tokio::test]
    async fn no_step_starts_inside_the_deadline_reserve() {
        let steps = Journal::new(
            "f-1",
            Deadline::after(Duration::from_millis(100), Duration::from_secs(1)),
        );
        let mut ran = false;
        let result = steps
            .run(ApiCall::PutRolePolicy, "WebAppRole", async {
                ran = true;
                Ok(())
            })
            .await;
        assert!(!ran, "the call must not start");
        assert!(matches!(result, Err(Error::DeadlineNear { ref step, .. }) if step == "PutRolePolicy"));
        assert_eq!(steps.into_records()[0].outcome, StepOutcome::Failed);
    }
}
