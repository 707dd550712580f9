//! What a containment's phases returned, kept as they came, and the report assembled from them:
//! whether the containment finished or failed part-way, the report shows everything that
//! happened before it stopped.

use chrono::{DateTime, Utc};

use crate::api::StepRecord;
use crate::aws::clients::Session;
use crate::error::{Error, Result};
use crate::finding::{FindingSummary, Incident};
use crate::policy::iso_millis;
use crate::report::chain::ChainReport;
use crate::report::{CutoffReport, Ended, Report, RoleSummary, ScheduleReport, Verification};
use crate::respond::establish::{Place, Request};
use crate::respond::rounds::Cycled;

/// The values the phases returned, in the order they ran; None for a phase not reached.
#[derive(Default)]
pub struct Progress {
    pub place: Option<Place>,
    pub session: Option<Session>,
    /// How the finding was established, and GuardDuty's copy where it was consulted (what is
    /// acted on, so what the report shows).
    pub confirmed: Option<Confirmation>,
    /// The role: by name until IAM answers, then as IAM has it, with the gate's warnings.
    pub role: Option<(RoleSummary, Vec<String>)>,
    /// The revocation as it stands after the write (or the failed write), and its warning.
    pub revocation: Option<(CutoffReport, Option<String>)>,
    /// What followed the write: the rounds, the key's record, the release, the walk.
    pub after: Option<After>,
    pub archive_warning: Option<String>,
    /// Why the claim taken ahead, unused, could not be given up.
    pub claim_warning: Option<String>,
}

/// How the finding was established.
pub struct Confirmation {
    pub verification: Option<Verification>,
    pub verified: Option<(FindingSummary, Vec<String>)>,
}

impl Confirmation {
    /// How `incident` was established: GuardDuty's copy is shown where it was consulted.
    pub fn of(incident: &Incident, verification: Option<Verification>) -> Self {
        Self {
            verification,
            verified: verification.map(|_| (incident.summary.clone(), incident.warnings.clone())),
        }
    }
}

/// What ran once the revocation stood.
#[derive(Default)]
pub struct After {
    /// Why the key the revocation answered could not be recorded on the role.
    pub unrecorded: Option<String>,
    pub cycled: Cycled,
    /// The cut-off the fleet was last cycled against, once every round finished.
    pub settled: Option<DateTime<Utc>>,
    /// The release scheduled for when the hold is over, and why it was not, if it was not.
    pub scheduled: Option<(ScheduleReport, Option<String>)>,
    /// The stolen key's trail (`CHAIN`), and why a follow-up walk was not scheduled.
    pub chain: Option<ChainReport>,
    pub chain_warnings: Vec<String>,
}

impl Progress {
    /// Keep what followed the write, and hand on why it failed, if it did.
    pub fn keep_after(&mut self, (after, failure): (After, Result<()>)) -> Result<()> {
        self.after = Some(after);
        failure
    }

    /// The report, from the request and what the phases returned.
    pub fn assemble(
        self,
        request: Request,
        dry_run: bool,
        steps: Vec<StepRecord>,
        ended: std::result::Result<&Ended, &Error>,
    ) -> Report {
        let (verification, verified) = self.confirmed.map_or((None, None), |c| (c.verification, c.verified));
        let (summary, mut warnings) = verified.unwrap_or((request.summary, request.warnings));
        let finding = with_place(summary, self.place.as_ref());
        let role = self.role.map(|(role, gate_warnings)| {
            warnings.extend(gate_warnings);
            role
        });
        let after = self.after.unwrap_or_default();
        let cutoff = self.revocation.map(|(report, warning)| {
            warnings.extend(warning);
            warnings.extend(after.unrecorded);
            match after.settled {
                Some(at) => CutoffReport {
                    at: iso_millis(at),
                    ..report
                },
                None => report,
            }
        });
        warnings.extend(after.cycled.warnings);
        warnings.extend(after.chain_warnings);
        warnings.extend(self.archive_warning);
        warnings.extend(self.claim_warning);
        let auto_release = after.scheduled.map(|(scheduled, warning)| {
            warnings.extend(warning);
            scheduled
        });
        let mut report = Report {
            request_reason: request.reason,
            verification,
            member_session: self.session,
            role,
            cutoff,
            instances: after.cycled.instances,
            auto_release,
            chain: after.chain,
            steps,
            warnings,
            ..Report::new(finding, dry_run)
        };
        report.end(ended);
        report
    }
}

fn with_place(summary: FindingSummary, place: Option<&Place>) -> FindingSummary {
    match place {
        Some(place) => FindingSummary {
            account_id: Some(place.account.clone()),
            region: Some(place.region.clone()),
            ..summary
        },
        None => summary,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::names::RoleName;
    use crate::report::{CutoffStatus, Outcome};

    fn request() -> Request {
        Request {
            summary: FindingSummary {
                source: "guardduty".into(),
                id: Some("f-1".into()),
                ..FindingSummary::default()
            },
            dry_run_requested: false,
            reason: None,
            warnings: vec!["as delivered".into()],
        }
    }

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, minute, 0).unwrap()
    }

    fn written(cutoff: DateTime<Utc>) -> (CutoffReport, Option<String>) {
        let report = CutoffReport {
            at: iso_millis(cutoff),
            status: CutoffStatus::Written,
            written_at: Some(cutoff),
            policy: Some(crate::policy::Holder::inline()),
        };
        (report, Some("unclaimed".into()))
    }

    fn phases() -> Progress {
        Progress {
            place: Some(Place {
                account: "123456789012".into(),
                region: "us-east-1".into(),
            }),
            confirmed: Some(Confirmation {
                verification: Some(Verification::Confirmed),
                verified: Some((
                    FindingSummary {
                        source: "guardduty".into(),
                        id: Some("f-1".into()),
                        finding_type: Some(crate::finding::OUTSIDE_AWS.into()),
                        ..FindingSummary::default()
                    },
                    vec!["as GuardDuty has it".into()],
                )),
            }),
            role: Some((
                RoleSummary {
                    name: "WebAppRole".into(),
                    arn: Some("arn:aws:iam::123456789012:role/WebAppRole".into()),
                },
                vec!["decided".into()],
            )),
            revocation: Some(written(at(0))),
            after: Some(After {
                cycled: Cycled {
                    instances: Vec::new(),
                    warnings: vec!["round".into()],
                },
                ..After::default()
            }),
            ..Progress::default()
        }
    }

    #[test]
    fn a_failure_part_way_reports_what_the_phases_returned_before_it() {
        let err = Error::RemediationFailed("sessions revoked, but 1 instance(s) need attention".into());
        let report = phases().assemble(request(), false, Vec::new(), Err(&err));
        assert_eq!(report.outcome, Outcome::Failed);
        assert_eq!(
            report.error.as_ref().map(|e| e.kind.as_str()),
            Some("RemediationFailed")
        );
        // GuardDuty's copy is what was acted on, placed where it was acted on.
        assert_eq!(
            report.finding.finding_type.as_deref(),
            Some(crate::finding::OUTSIDE_AWS)
        );
        assert_eq!(report.finding.account_id.as_deref(), Some("123456789012"));
        assert_eq!(report.finding.region.as_deref(), Some("us-east-1"));
        assert_eq!(report.cutoff.as_ref().map(|c| c.status), Some(CutoffStatus::Written));
        assert!(report.role.as_ref().is_some_and(|r| r.arn.is_some()));
        assert_eq!(
            report.warnings,
            ["as GuardDuty has it", "decided", "unclaimed", "round"]
        );
    }

    #[test]
    fn before_iam_answers_the_role_is_reported_by_name_and_the_request_as_it_came() {
        let role = RoleName::parse("WebAppRole").unwrap();
        let progress = Progress {
            confirmed: None,
            role: Some((RoleSummary::named(&role), Vec::new())),
            revocation: None,
            ..phases()
        };
        let err = Error::Unexpected("GetRole failed".into());
        let report = progress.assemble(request(), false, Vec::new(), Err(&err));
        assert_eq!(
            report.role.as_ref().map(|r| (r.name.as_str(), r.arn.is_none())),
            Some(("WebAppRole", true))
        );
        assert_eq!(report.warnings, ["as delivered", "round"]);
        assert_eq!(report.finding.finding_type, None);
        assert_eq!(report.cutoff, None);
    }

    #[test]
    fn the_cutoff_shown_is_the_one_the_fleet_was_last_cycled_against() {
        let mut progress = phases();
        if let Some(after) = progress.after.as_mut() {
            after.settled = Some(at(5));
        }
        let ended = Ended {
            outcome: Outcome::Remediated,
            reason: None,
        };
        let report = progress.assemble(request(), false, Vec::new(), Ok(&ended));
        assert_eq!(report.outcome, Outcome::Remediated);
        assert_eq!(report.cutoff.map(|c| c.at).as_deref(), Some("2026-11-22T10:05:00.000Z"));
    }
}
