//! Containment's effects on the role: read its facts (for the [`gate`](crate::gate)), carry out
//! the gate's ruling (write what it permits, with the claim, or record a dry run's plan), record
//! the key it answered, and after cycling read it again in case the cut-off moved under us.

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::api::ApiCall;
use crate::app::App;
use crate::aws::claim::{self, Claimed};
use crate::aws::iam;
use crate::error::{Error, Result};
use crate::gate::{Act, Kept, Permit, Planned, Stolen};
use crate::names::RoleName;
use crate::plan::RoleFacts;
use crate::policy::{Existing, Holder, InForce, iso_millis};
use crate::report::{CutoffReport, CutoffStatus};
use crate::respond::early_claim::EarlyClaim;
use crate::respond::journal::Journal;
use crate::revoked_keys::RevokedKeys;
use crate::wait::poll;

/// How many times one run cycles against a cut-off that moved under it before giving up.
pub const CUTOFF_ROUNDS: usize = 3;

/// A role as IAM has it (`role` is None if it does not exist), and the revocations on it: every
/// fact of the role's that the gate rules on.
pub struct RoleRead {
    pub role: Option<RoleFacts>,
    pub in_force: InForce,
}

/// The role's facts, read together: `GetRole`, `GetRolePolicy`, `ListAttachedRolePolicies`.
pub async fn read_role(iam: &aws_sdk_iam::Client, role_name: &RoleName, steps: &Journal) -> Result<RoleRead> {
    steps.set_role(role_name.as_str());
    let (role, in_force) = tokio::try_join!(
        steps.run(ApiCall::GetRole, role_name.as_str(), iam::get_role(iam, role_name)),
        read_in_force(iam, role_name, steps),
    )?;
    Ok(RoleRead { role, in_force })
}

/// The revocation where it may be: the inline policy and the managed fallback, read together.
async fn read_in_force(iam: &aws_sdk_iam::Client, role_name: &RoleName, steps: &Journal) -> Result<InForce> {
    let role = role_name.as_str();
    let (inline, managed) = tokio::try_join!(
        steps.run(ApiCall::GetRolePolicy, role, iam::get_revocation(iam, role_name)),
        steps.run(
            ApiCall::ListAttachedRolePolicies,
            role,
            iam::get_managed_revocation(iam, role_name)
        ),
    )?;
    Ok(InForce { inline, managed })
}

/// What stands on the role once the gate's ruling is carried out.
#[derive(Debug)]
pub enum Revocation {
    /// A cut-off in force covered the incident: kept, nothing written.
    Kept(Kept),
    /// A dry run: the write the gate would have permitted, recorded as planned.
    Planned(Planned),
    /// The permitted write, carried out.
    Written(Written),
}

/// What became of a permitted write.
#[derive(Debug)]
pub enum Written {
    /// Ours: `PutRolePolicy` (or the fallback) answered at `at`; `unclaimed` says why it was
    /// written without a claim, if it was.
    Ours {
        cutoff: DateTime<Utc>,
        covers_from: DateTime<Utc>,
        at: DateTime<Utc>,
        holder: Holder,
        unclaimed: Option<String>,
    },
    /// Another run's, claimed first and now in IAM: its cut-off, which covers ours.
    Adopted {
        cutoff: DateTime<Utc>,
        covers_from: DateTime<Utc>,
        holder: Holder,
    },
}

impl Revocation {
    /// The cut-off in force: the instances are cycled against it.
    pub fn cutoff(&self) -> DateTime<Utc> {
        match self {
            Self::Kept(k) => k.cutoff,
            Self::Planned(p) => p.cutoff,
            Self::Written(Written::Ours { cutoff, .. } | Written::Adopted { cutoff, .. }) => *cutoff,
        }
    }

    /// What the cut-off in force must still reach when read again after cycling.
    pub fn covers_from(&self) -> DateTime<Utc> {
        match self {
            Self::Kept(k) => k.covers_from,
            Self::Planned(p) => p.covers_from,
            Self::Written(Written::Ours { covers_from, .. } | Written::Adopted { covers_from, .. }) => *covers_from,
        }
    }

    /// What the report says of it, and its warning.
    pub fn report(&self) -> (CutoffReport, Option<String>) {
        let (status, written_at, policy) = match self {
            Self::Kept(k) => (CutoffStatus::Existing, None, Some(k.holder.clone())),
            // A dry run plans the inline write.
            Self::Planned(_) => (CutoffStatus::Planned, None, Some(Holder::inline())),
            Self::Written(Written::Ours { at, holder, .. }) => (CutoffStatus::Written, Some(*at), Some(holder.clone())),
            Self::Written(Written::Adopted { holder, .. }) => (CutoffStatus::Existing, None, Some(holder.clone())),
        };
        let warning = match self {
            Self::Written(Written::Ours {
                unclaimed: Some(why), ..
            }) => Some(format!(
                "the revocation was written without a claim ({why}), so a concurrent run may write another"
            )),
            _ => None,
        };
        let report = CutoffReport {
            at: iso_millis(self.cutoff()),
            status,
            written_at,
            policy,
        };
        (report, warning)
    }

    /// Whether this run put this cut-off on the role (or, in a dry run, would have).
    fn ours(&self) -> bool {
        matches!(self, Self::Written(Written::Ours { .. }) | Self::Planned(_))
    }
}

/// What the report says of a write that failed: the cut-off it was to set, and in neither document.
pub fn failed(cutoff: DateTime<Utc>) -> CutoffReport {
    CutoffReport {
        at: iso_millis(cutoff),
        status: CutoffStatus::Failed,
        written_at: None,
        policy: None,
    }
}

/// Carry out how the gate ruled the role is contained: keep the cut-off in force, record a dry
/// run's plan, or write what it permitted.
pub async fn carry_out(
    app: &App,
    iam: &aws_sdk_iam::Client,
    (role, act): (&RoleName, Act),
    claim: (&str, Option<&EarlyClaim>),
    steps: &Journal,
) -> Result<Revocation> {
    match act {
        Act::Keep(kept) => Ok(Revocation::Kept(kept)),
        Act::Plan(planned) => Ok(plan(role, planned, steps)),
        Act::Write(permit) => write(app, iam, permit, claim, steps).await.map(Revocation::Written),
    }
}

/// Record a dry run's write as planned: nothing is sent.
pub fn plan(role: &RoleName, planned: Planned, steps: &Journal) -> Revocation {
    steps.planned(
        ApiCall::PutRolePolicy,
        role.as_str(),
        format!("deny sessions issued before {}", iso_millis(planned.cutoff)),
    );
    Revocation::Planned(planned)
}

/// Carry out the gate's permit: write the deny, or adopt the one a concurrent run claimed first
/// (with `CLAIM_TABLE`), using the claim taken with the first reads if it answers for this write.
pub async fn write(
    app: &App,
    iam: &aws_sdk_iam::Client,
    permit: Permit,
    (finding_id, early): (&str, Option<&EarlyClaim>),
    steps: &Journal,
) -> Result<Written> {
    let covers_from = permit.covers_from();
    match claim(app, permit, (finding_id, early), steps).await? {
        Turn::Write { permit, unclaimed } => put(iam, &permit, unclaimed, steps).await,
        Turn::Adopt { permit, theirs } => {
            let role = permit.role();
            info!(%role, cutoff = %theirs, "another run claimed the revocation; adopting it");
            let wait = await_revocation(iam, role, covers_from, steps.bounded(claim::ADOPT_WITHIN));
            match steps.run(ApiCall::AwaitClaimedRevocation, role.as_str(), wait).await {
                Ok((cutoff, holder)) => Ok(Written::Adopted {
                    cutoff,
                    covers_from,
                    holder,
                }),
                // The claim's run failed or died before writing: containment must not wait on
                // it, so write (a second write costs nothing but the write).
                Err(Error::Timeout { seconds, .. }) => {
                    let why = format!(
                        "the run that claimed the revocation ({}) did not write it within {seconds} s",
                        iso_millis(theirs)
                    );
                    warn!(%role, %why, "taking over the revocation");
                    put(iam, &permit, Some(why), steps).await
                }
                Err(e) => Err(e),
            }
        }
    }
}

/// The claim's answer to a permitted write. It is handed the gate's [`Permit`] and can only give
/// it back: write now, or hold it while another run's write is awaited. It cannot make one.
enum Turn {
    /// Write; `unclaimed` says why without a claim, if so.
    Write { permit: Permit, unclaimed: Option<String> },
    /// Another run claimed a cut-off (`theirs`) that covers ours: await it in IAM.
    Adopt { permit: Permit, theirs: DateTime<Utc> },
}

/// Claim the write in `CLAIM_TABLE` (no table: write).
async fn claim(
    app: &App,
    permit: Permit,
    (finding_id, early): (&str, Option<&EarlyClaim>),
    steps: &Journal,
) -> Result<Turn> {
    let Some(table) = &app.config.claim_table else {
        return Ok(Turn::Write {
            permit,
            unclaimed: None,
        });
    };
    let (role, cutoff, covers_from) = (permit.role(), permit.cutoff(), permit.covers_from());
    let key = claim::key(crate::names::account_of_arn(permit.role_arn()), role.as_str());
    let claimed = match early.and_then(|e| e.answer_for(&key, cutoff, covers_from)) {
        Some(answered) => answered,
        None => {
            let dynamodb = &app.clients.dynamodb;
            let claim = claim::claim(dynamodb, table, &key, cutoff, covers_from, finding_id, Utc::now());
            steps.run(ApiCall::ClaimRevocation, role.as_str(), claim).await?
        }
    };
    Ok(match claimed {
        Claimed::Won => Turn::Write {
            permit,
            unclaimed: None,
        },
        Claimed::Unavailable(why) => {
            warn!(%role, %why, "no revocation claim; writing without one");
            Turn::Write {
                permit,
                unclaimed: Some(why),
            }
        }
        Claimed::Lost { cutoff: theirs } => Turn::Adopt { permit, theirs },
    })
}

/// Record on the role the key the revocation answered. A record that fails is a warning (why),
/// never a failed run: the revocation holds, and without the record a later delivery naming the
/// key revokes once more than needed. Nothing waits for it: the instances are cycled meanwhile.
pub async fn record(
    iam: &aws_sdk_iam::Client,
    (role, facts): (&RoleName, &RoleFacts),
    revocation: &Revocation,
    stolen: Stolen<'_>,
    dry_run: bool,
    steps: &Journal,
) -> Option<String> {
    let held = RevokedKeys::of(&facts.tags);
    let record =
        answered(revocation, stolen).and_then(|(key, in_force)| RevokedKeys::with(held.as_ref(), in_force, key))?;
    if dry_run {
        steps.planned(ApiCall::TagRole, role.as_str(), format!("record {}", record.value()));
        return None;
    }
    let put = iam::put_revoked_keys(iam, role, &record);
    let e = steps.run(ApiCall::TagRole, role.as_str(), put).await.err()?;
    Some(format!(
        "the revocation holds, but the key it answered could not be recorded on role {role} ({e}): a later delivery naming that key, with activity after the cut-off, revokes again, and the CHAIN follow-up walks of that key are refused (they stand on this record): walk its trail again by hand"
    ))
}

/// The finding's key and the cut-off in force, if that cut-off is known to deny the key: it is
/// after the key's last use (one written now is after every use so far).
fn answered<'k>(revocation: &Revocation, stolen: Stolen<'k>) -> Option<(&'k str, DateTime<Utc>)> {
    let in_force = revocation.cutoff();
    let after_last_use = stolen.last_seen.map_or(revocation.ours(), |last| last <= in_force);
    let key = stolen.key.filter(|_| after_last_use)?;
    Some((key, in_force))
}

/// Write the revocation inline, as the console does; if the role's inline quota is full
/// (`LimitExceeded`: 10,240 characters of inline policy per role), as the managed fallback, so
/// that a full quota never leaves the stolen key live.
async fn put(
    iam: &aws_sdk_iam::Client,
    permit: &Permit,
    unclaimed: Option<String>,
    steps: &Journal,
) -> Result<Written> {
    let written = |holder| Written::Ours {
        cutoff: permit.cutoff(),
        covers_from: permit.covers_from(),
        at: Utc::now(),
        holder,
        unclaimed,
    };
    let role = permit.role();
    info!(%role, cutoff = %iso_millis(permit.cutoff()), "revoking sessions issued before the cut-off");
    let inline = steps
        .run(ApiCall::PutRolePolicy, role.as_str(), iam::put_revocation(iam, permit))
        .await;
    match inline {
        Ok(()) => return Ok(written(Holder::inline())),
        Err(e) if e.aws_code() == Some("LimitExceeded") => {
            warn!(%role, error = %e, "the role's inline policy quota is full; writing the managed fallback");
        }
        Err(e) => return Err(e),
    }
    let put = iam::put_managed_revocation(iam, permit);
    let fallback = steps.run(ApiCall::CreatePolicy, role.as_str(), put).await?;
    let attach = iam::attach_fallback(iam, permit, &fallback);
    steps.run(ApiCall::AttachRolePolicy, role.as_str(), attach).await?;
    let arn = fallback.arn().to_owned();
    Ok(written(Holder::Managed { arn }))
}

/// Wait until IAM shows a revocation on `role` that covers `covers_from` (the claim winner's).
async fn await_revocation(
    iam: &aws_sdk_iam::Client,
    role: &RoleName,
    covers_from: DateTime<Utc>,
    timeout: std::time::Duration,
) -> Result<(DateTime<Utc>, Holder)> {
    let what = format!("the revocation another run claimed to show on role {role}");
    poll(timeout, what, || async {
        let (inline, managed) =
            tokio::try_join!(iam::get_revocation(iam, role), iam::get_managed_revocation(iam, role))?;
        Ok(match (InForce { inline, managed }).effective() {
            Some((Existing::Cutoff(c), holder)) if c >= covers_from => Some((c, holder)),
            _ => None,
        })
    })
    .await
}

/// After cycling against `cutoff`, read the revocation again: None if what was issued stands,
/// or the later cut-off to cycle against (up to [`CUTOFF_ROUNDS`]).
pub async fn recheck(
    iam: &aws_sdk_iam::Client,
    role_name: &RoleName,
    cutoff: DateTime<Utc>,
    covers_from: DateTime<Utc>,
    round: usize,
    steps: &Journal,
) -> Result<Option<DateTime<Utc>>> {
    let in_force = read_in_force(iam, role_name, steps).await?;
    moved(role_name, in_force.existing(), cutoff, covers_from, round)
}

/// None if what was issued stands (the cut-off in force is the same, or an earlier one that
/// still covers the finding), or the later cut-off to cycle against.
fn moved(
    role_name: &RoleName,
    in_force: Option<Existing>,
    cutoff: DateTime<Utc>,
    covers_from: DateTime<Utc>,
    round: usize,
) -> Result<Option<DateTime<Utc>>> {
    let what = match in_force {
        Some(Existing::Cutoff(c)) if c <= cutoff && c >= covers_from => return Ok(None),
        Some(Existing::Cutoff(later)) if later > cutoff && round < CUTOFF_ROUNDS => return Ok(Some(later)),
        Some(Existing::Cutoff(later)) if later > cutoff => {
            return Err(Error::RemediationFailed(format!(
                "the cut-off on role {role_name} kept moving ({CUTOFF_ROUNDS} rounds); its cycled instances may hold revoked credentials: a retry cycles them against the latest"
            )));
        }
        None => "was removed".to_owned(),
        Some(Existing::Cutoff(c)) => format!(
            "now has a cut-off ({}) before the finding's first sighting",
            iso_millis(c)
        ),
        Some(Existing::Unrecognised(why)) => format!("was replaced by something else ({why})"),
    };
    Err(Error::RemediationFailed(format!(
        "the revocation on role {role_name} {what} while we worked, so the stolen credentials may work again: a retry revokes again"
    )))
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_sdk_iam::operation::get_role_policy::GetRolePolicyOutput;
    use aws_sdk_iam::operation::put_role_policy::PutRolePolicyOutput;
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::api::StepOutcome;
    use crate::config::Config;
    use crate::gate::{Case, Verdict};
    use crate::respond::mocks::Rules;
    use crate::rules::Tags;
    use crate::wait::Deadline;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const FIRST_SEEN: &str = "2026-11-22T09:58:31Z";
    const NOW: &str = "2026-11-22T10:00:07Z";

    fn name() -> RoleName {
        RoleName::parse("WebAppRole").unwrap()
    }

    fn role() -> RoleFacts {
        RoleFacts {
            name: "WebAppRole".into(),
            arn: "arn:aws:iam::123456789012:role/WebAppRole".into(),
            id: "AROAEXAMPLE".into(),
            path: "/".into(),
            tags: Tags::new(),
        }
    }

    /// How the gate rules WebAppRole contained, with no revocation on it, first seen at FIRST_SEEN.
    fn ruled(dry_run: bool) -> Act {
        let (role, name, in_force) = (role(), name(), InForce::default());
        let (verdict, _) = crate::gate::decide(&Case {
            role_name: &name,
            role: Some(&role),
            in_force: &in_force,
            stolen: Stolen {
                role_id: Some("AROAEXAMPLE"),
                first_seen: Some(at(FIRST_SEEN)),
                ..Stolen::default()
            },
            own_role: Some("exfil-responder-role"),
            member_role: None,
            protected_roles: &[],
            now: at(NOW),
            dry_run,
        });
        match verdict {
            Verdict::Act(_, act) => act,
            other => panic!("not contained: {other:?}"),
        }
    }

    fn to_write() -> Permit {
        match ruled(false) {
            Act::Write(permit) => permit,
            other => panic!("not permitted: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_dry_run_plans_the_write_and_calls_nothing() {
        let put = mock!(aws_sdk_iam::Client::put_role_policy).then_output(|| PutRolePolicyOutput::builder().build());
        let rules = Rules {
            iam: vec![&put],
            ..Rules::default()
        };
        let _app = rules.app(Config::default());
        let steps = Journal::new("f", Deadline::none());
        let Act::Plan(planned) = ruled(true) else {
            panic!("a dry run is not planned")
        };
        let planned = plan(&name(), planned, &steps);
        assert!(matches!(planned, Revocation::Planned(_)));
        assert_eq!(put.num_calls(), 0);
        assert_eq!(planned.report().0.status, CutoffStatus::Planned);
        assert_eq!(steps.into_records()[0].outcome, StepOutcome::Planned);
    }

    #[tokio::test]
    async fn a_claim_lost_to_another_run_adopts_its_cutoff_without_writing() {
        let theirs = "2026-11-22T10:00:05Z";
        let lost = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
            PutItemError::ConditionalCheckFailedException(ConditionalCheckFailedException::builder().build())
        });
        let held = mock!(aws_sdk_dynamodb::Client::get_item).then_output(move || {
            let millis = at(theirs).timestamp_millis().to_string();
            GetItemOutput::builder()
                .item("cutoff", AttributeValue::N(millis))
                .build()
        });
        let in_iam = mock!(aws_sdk_iam::Client::get_role_policy).then_output(move || {
            let doc = crate::policy::document(at(theirs));
            let encoded = percent_encoding::utf8_percent_encode(&doc, percent_encoding::NON_ALPHANUMERIC).to_string();
            GetRolePolicyOutput::builder()
                .role_name("WebAppRole")
                .policy_name(crate::policy::POLICY_NAME)
                .policy_document(encoded)
                .build()
                .unwrap()
        });
        let put = mock!(aws_sdk_iam::Client::put_role_policy).then_output(|| PutRolePolicyOutput::builder().build());
        let no_fallback = mock!(aws_sdk_iam::Client::list_attached_role_policies).then_output(|| {
            aws_sdk_iam::operation::list_attached_role_policies::ListAttachedRolePoliciesOutput::builder().build()
        });
        let rules = Rules {
            iam: vec![&in_iam, &put, &no_fallback],
            dynamodb: vec![&lost, &held],
            ..Rules::default()
        };
        let app = rules.app(Config {
            claim_table: Some("claims".into()),
            ..Config::default()
        });
        let steps = Journal::new("f", Deadline::none());
        let written = write(&app, &app.clients.iam, to_write(), ("f", None), &steps)
            .await
            .unwrap();
        assert_eq!(put.num_calls(), 0, "the winner writes, not us");
        let written = Revocation::Written(written);
        assert_eq!(written.cutoff(), at(theirs));
        let (report, _) = written.report();
        assert_eq!(report.status, CutoffStatus::Existing);
        assert_eq!(report.written_at, None);
    }

    #[tokio::test]
    async fn a_failed_write_is_reported_as_failed() {
        use aws_sdk_iam::operation::put_role_policy::PutRolePolicyError;
        let put = mock!(aws_sdk_iam::Client::put_role_policy).then_error(|| {
            PutRolePolicyError::generic(
                aws_sdk_iam::error::ErrorMetadata::builder()
                    .code("ServiceFailure")
                    .build(),
            )
        });
        let rules = Rules {
            iam: vec![&put],
            ..Rules::default()
        };
        let app = rules.app(Config::default());
        let steps = Journal::new("f", Deadline::none());
        let permit = to_write();
        let intended = permit.cutoff();
        let written = write(&app, &app.clients.iam, permit, ("f", None), &steps).await;
        assert_eq!(written.as_ref().err().and_then(Error::aws_code), Some("ServiceFailure"));
        assert_eq!(failed(intended).status, CutoffStatus::Failed);
    }

    #[tokio::test]
    async fn a_full_inline_quota_writes_the_managed_fallback_and_the_report_names_it() {
        use aws_sdk_iam::operation::attach_role_policy::AttachRolePolicyOutput;
        use aws_sdk_iam::operation::create_policy::CreatePolicyOutput;
        use aws_sdk_iam::operation::put_role_policy::PutRolePolicyError;
        use aws_sdk_iam::types::error::LimitExceededException;
        let full = mock!(aws_sdk_iam::Client::put_role_policy).then_error(|| {
            PutRolePolicyError::LimitExceededException(
                LimitExceededException::builder()
                    .meta(
                        aws_sdk_iam::error::ErrorMetadata::builder()
                            .code("LimitExceeded")
                            .build(),
                    )
                    .build(),
            )
        });
        let arn = "arn:aws:iam::123456789012:policy/exfil-responder/AWSRevokeOlderSessions-WebAppRole";
        let doc = crate::policy::document(crate::policy::cutoff_at(at(NOW)));
        let create = mock!(aws_sdk_iam::Client::create_policy)
            .match_requests(move |r| {
                r.policy_name() == Some("AWSRevokeOlderSessions-WebAppRole")
                    && r.path() == Some("/exfil-responder/")
                    && r.policy_document() == Some(doc.as_str())
            })
            .then_output(|| CreatePolicyOutput::builder().build());
        let attach = mock!(aws_sdk_iam::Client::attach_role_policy)
            .match_requests(move |r| r.role_name() == Some("WebAppRole") && r.policy_arn() == Some(arn))
            .then_output(|| AttachRolePolicyOutput::builder().build());
        let rules = Rules {
            iam: vec![&full, &create, &attach],
            ..Rules::default()
        };
        let app = rules.app(Config::default());
        let steps = Journal::new("f", Deadline::none());
        let written = write(&app, &app.clients.iam, to_write(), ("f", None), &steps)
            .await
            .unwrap();
        assert_eq!((create.num_calls(), attach.num_calls()), (1, 1));
        let (report, _) = Revocation::Written(written).report();
        assert_eq!(report.status, CutoffStatus::Written);
        assert_eq!(report.policy, Some(Holder::Managed { arn: arn.into() }));
        let steps: Vec<_> = steps.into_records().into_iter().map(|r| (r.step, r.outcome)).collect();
        assert_eq!(
            steps,
            [
                (ApiCall::PutRolePolicy, StepOutcome::Failed),
                (ApiCall::CreatePolicy, StepOutcome::Ok),
                (ApiCall::AttachRolePolicy, StepOutcome::Ok)
            ],
            "the report shows the failed inline write and the fallback"
        );
    }

    #[test]
    fn a_cutoff_kept_in_the_managed_fallback_is_reported_as_held_there() {
        let arn = "arn:aws:iam::123456789012:policy/exfil-responder/AWSRevokeOlderSessions-WebAppRole".to_owned();
        let kept = Revocation::Kept(Kept {
            cutoff: at("2026-11-22T09:59:00Z"),
            covers_from: at(FIRST_SEEN),
            holder: Holder::Managed { arn: arn.clone() },
        });
        let (report, _) = kept.report();
        assert_eq!(
            (report.status, report.policy),
            (CutoffStatus::Existing, Some(Holder::Managed { arn }))
        );
    }

    #[test]
    fn after_cycling_a_moved_cutoff_is_followed_a_bounded_number_of_times() {
        let (cutoff, covers) = (at(NOW), at(FIRST_SEEN));
        let later = at("2026-11-22T10:05:00Z");
        let same = moved(&name(), Some(Existing::Cutoff(cutoff)), cutoff, covers, 1).unwrap();
        assert_eq!(same, None);
        let followed = moved(&name(), Some(Existing::Cutoff(later)), cutoff, covers, 1).unwrap();
        assert_eq!(followed, Some(later));
        let kept_moving = moved(&name(), Some(Existing::Cutoff(later)), cutoff, covers, CUTOFF_ROUNDS);
        assert!(kept_moving.unwrap_err().to_string().contains("kept moving"));
        let removed = moved(&name(), None, cutoff, covers, 1).unwrap_err();
        assert!(removed.to_string().contains("was removed"), "{removed}");
        let too_early = Existing::Cutoff(at("2026-11-22T09:00:00Z"));
        let err = moved(&name(), Some(too_early), cutoff, covers, 1).unwrap_err();
        assert!(err.to_string().contains("before the finding's first sighting"), "{err}");
    }
}
