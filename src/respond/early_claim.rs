//! The revocation claim, taken with the first reads rather than after them, so that the write
//! follows them by one round trip (without it, two: the reads, then the claim).
//!
//! It is taken before the decision, for the role the request names and a cut-off of the moment
//! the reads start; the decision is then made at that moment, so that a write decides the same
//! cut-off and uses the claim. A claim the write cannot use (the finding was refused, the
//! revocation kept, another role or cut-off decided) is released at the end of the run, so that a
//! concurrent run never waits on a write that will not come. The claim only saves writes (see
//! [`claim`](crate::aws::claim)): a release that fails costs a concurrent run at most
//! [`ADOPT_WITHIN`](claim::ADOPT_WITHIN) before it writes itself.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tracing::warn;

use crate::api::ApiCall;
use crate::app::App;
use crate::aws::claim::{self, Claimed};
use crate::finding::Incident;
use crate::names::RoleName;
use crate::respond::journal::Journal;

pub struct EarlyClaim {
    key: String,
    role: RoleName,
    table: String,
    finding_id: String,
    /// The cut-off claimed: the moment the first reads start, to the millisecond.
    pub at: DateTime<Utc>,
    /// What the claim asked a standing claim to cover: the first sighting the request gives.
    covers: DateTime<Utc>,
    /// The claim's answer, until a write takes it.
    answer: Mutex<Option<Claimed>>,
}

impl EarlyClaim {
    /// For a request that names its role, with `CLAIM_TABLE` set, and not a dry run (which never
    /// claims). `account` is the finding's; `at`, when the first reads start.
    pub fn new(
        app: &App,
        account: &str,
        incident: Option<&Incident>,
        (at, dry_run): (DateTime<Utc>, bool),
    ) -> Option<Self> {
        let table = app.config.claim_table.as_ref().filter(|_| !dry_run)?;
        let incident = incident?;
        let role = incident.subject.role()?;
        Some(Self {
            key: claim::key(account, role.as_str()),
            role: role.clone(),
            table: table.clone(),
            finding_id: incident.finding_id().to_owned(),
            at,
            covers: incident.first_seen.unwrap_or(at),
            answer: Mutex::default(),
        })
    }

    /// Claim (a step of the report, as the claim after the reads is).
    pub async fn take(&self, app: &App, steps: &Journal) {
        let put = claim::claim(
            &app.clients.dynamodb,
            &self.table,
            &self.key,
            self.at,
            self.covers,
            &self.finding_id,
            Utc::now(),
        );
        // An unreadable standing claim is left for the write's own claim to report.
        if let Ok(answer) = steps.run(ApiCall::ClaimRevocation, self.role.as_str(), put).await {
            *self.answer.lock().expect("not poisoned") = Some(answer);
        }
    }

    /// The claim's answer, for a write of `cutoff` to the role `key` names that must cover
    /// `covers_from`, if it answers for that write. Won: ours. Lost: only if the standing claim
    /// covers `covers_from` (else the write claims again, and takes it over). Unavailable: the
    /// table's answer stands.
    pub fn answer_for(&self, key: &str, cutoff: DateTime<Utc>, covers_from: DateTime<Utc>) -> Option<Claimed> {
        if key != self.key || cutoff != self.at {
            return None;
        }
        let mut answer = self.answer.lock().expect("not poisoned");
        let usable = match answer.as_ref()? {
            Claimed::Lost { cutoff: theirs } => *theirs >= covers_from,
            Claimed::Won | Claimed::Unavailable(_) => true,
        };
        if usable { answer.take() } else { None }
    }

    /// Release the claim if it was won and no write took it. A failure is a warning.
    pub async fn release_unused(&self, app: &App, steps: &Journal) -> Option<String> {
        let unused = self.answer.lock().expect("not poisoned").take();
        if unused != Some(Claimed::Won) {
            return None;
        }
        let dynamodb = &app.clients.dynamodb;
        let release = claim::release(dynamodb, &self.table, &self.key, self.at, &self.finding_id);
        let e = steps
            .run(ApiCall::ReleaseClaim, self.role.as_str(), release)
            .await
            .err()?;
        warn!(role = %self.role, error = %e, "the unused revocation claim could not be released");
        Some(format!(
            "the revocation claim taken for role {} was not used and could not be released ({e}): a concurrent run for the role may wait up to {} s before writing",
            self.role,
            claim::ADOPT_WITHIN.as_secs()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn early(answer: Claimed) -> EarlyClaim {
        EarlyClaim {
            key: "123456789012/WebAppRole".into(),
            role: RoleName::parse("WebAppRole").unwrap(),
            table: "claims".into(),
            finding_id: "f".into(),
            at: at("2026-11-22T10:00:07Z"),
            covers: at("2026-11-22T09:58:00Z"),
            answer: Mutex::new(Some(answer)),
        }
    }

    #[test]
    fn a_won_claim_answers_once_and_only_for_its_role_and_cutoff() {
        let won = early(Claimed::Won);
        let (cutoff, covers) = (won.at, won.covers);
        assert_eq!(won.answer_for("123456789012/OtherRole", cutoff, covers), None);
        assert_eq!(won.answer_for(&won.key, at("2026-11-22T10:00:08Z"), covers), None);
        assert_eq!(won.answer_for(&won.key, cutoff, covers), Some(Claimed::Won));
        assert_eq!(won.answer_for(&won.key, cutoff, covers), None, "taken by the write");
    }

    #[test]
    fn a_lost_claim_answers_only_if_the_standing_one_covers_what_the_write_must() {
        let theirs = at("2026-11-22T09:59:00Z");
        let lost = early(Claimed::Lost { cutoff: theirs });
        let cutoff = lost.at;
        // Stolen again after theirs: the write must reach later than their cut-off.
        assert_eq!(lost.answer_for(&lost.key, cutoff, at("2026-11-22T09:59:30Z")), None);
        assert_eq!(
            lost.answer_for(&lost.key, cutoff, lost.covers),
            Some(Claimed::Lost { cutoff: theirs })
        );
    }
}
