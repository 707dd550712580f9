//! Containment: read the role, decide the revocation (`plan::revocation`), claim it, write it,
//! and after cycling read it again in case the cut-off moved under us.

use chrono::{DateTime, SecondsFormat, Utc};
use tracing::{info, warn};

use crate::app::App;
use crate::aws::claim::{self, Claimed};
use crate::aws::iam;
use crate::error::{Error, Result};
use crate::names::RoleName;
use crate::op::Op;
use crate::plan::{Revocation, RevocationFacts, RoleFacts};
use crate::policy::{Existing, Holder, InForce};
use crate::report::{CutoffReport, CutoffStatus};
use crate::respond::early_claim::EarlyClaim;
use crate::respond::steps::Steps;
use crate::revoked_keys::RevokedKeys;
use crate::wait::poll;

/// How many times one run cycles against a cut-off that moved under it before giving up.
pub const CUTOFF_ROUNDS: usize = 3;

/// A role (None if it does not exist), and the revocation on it.
pub type RoleRead = (Option<RoleFacts>, InForce);

/// The only facts that gate the revocation, read together.
pub async fn read_role(iam: &aws_sdk_iam::Client, role_name: &RoleName, steps: &Steps) -> Result<RoleRead> {
    steps.set_role(role_name.as_str());
    tokio::try_join!(
        steps.run(Op::GetRole, role_name.as_str(), iam::get_role(iam, role_name)),
        read_in_force(iam, role_name, steps),
    )
}

/// The revocation where it may be: the inline policy and the managed fallback, read together.
async fn read_in_force(iam: &aws_sdk_iam::Client, role_name: &RoleName, steps: &Steps) -> Result<InForce> {
    let role = role_name.as_str();
    let (inline, managed) = tokio::try_join!(
        steps.run(Op::GetRolePolicy, role, iam::get_revocation(iam, role_name)),
        steps.run(
            Op::ListAttachedRolePolicies,
            role,
            iam::get_managed_revocation(iam, role_name)
        ),
    )?;
    Ok(InForce { inline, managed })
}

/// What the decision needs besides the role's own facts.
pub struct Asked<'a> {
    pub role_name: &'a RoleName,
    pub expected_role_id: Option<&'a str>,
    /// Never revoked.
    pub own_role: Option<&'a str>,
    /// When the stolen key was first used; `None` (manual requests) means now.
    pub first_seen: Option<DateTime<Utc>>,
    /// The key the finding names, and when the finding's latest activity was seen.
    pub key: Option<&'a str>,
    pub last_seen: Option<DateTime<Utc>>,
}

/// A revocation to write, or one already in force to keep.
pub struct Decided {
    /// As the finding (or payload) names it: what the steps and logs name.
    pub role_name: RoleName,
    pub role: RoleFacts,
    pub write: bool,
    pub cutoff: DateTime<Utc>,
    /// What a cut-off must reach to deny the stolen token; a manual request asks for this one.
    pub covers_from: DateTime<Utc>,
    /// Which document holds the cut-off kept (None when one is to be written).
    pub held_by: Option<Holder>,
    /// The finding's key and its last use: recorded on the role as answered once a revocation
    /// after that use holds.
    pub key: Option<String>,
    pub last_seen: Option<DateTime<Utc>>,
    pub warnings: Vec<String>,
}

pub enum Decision {
    Act(Decided),
    /// The role does not exist: why nothing changes.
    Missing(String),
    /// The role may not be revoked (protected, or not the role that leaked): why.
    Refused(RoleFacts, String),
}

pub fn decide(app: &App, read: RoleRead, asked: &Asked<'_>, now: DateTime<Utc>) -> Decision {
    let (role, in_force) = read;
    let effective = in_force.effective();
    let existing = effective.as_ref().map(|(e, _)| e.clone());
    let role_name = asked.role_name;
    let Some(role) = role else {
        return Decision::Missing(format!(
            "role {role_name} does not exist (deleted?): there is no role to revoke; check CloudTrail for what it did"
        ));
    };
    let (decision, warnings) = crate::plan::revocation(&RevocationFacts {
        role: &role,
        expected_role_id: asked.expected_role_id,
        own_role: asked.own_role,
        protected_roles: &app.config.protected_roles,
        existing: existing.as_ref(),
        first_seen: asked.first_seen,
        key: asked.key,
        last_seen: asked.last_seen,
        now,
    });
    let (write, cutoff, covers_from) = match decision {
        Revocation::Refuse(reason) => {
            return Decision::Refused(
                role,
                format!("{reason}. Its sessions were NOT revoked: respond by hand"),
            );
        }
        Revocation::Write(c) => (true, c, asked.first_seen.unwrap_or(c)),
        Revocation::Again { cutoff, covers_from } => (true, cutoff, covers_from),
        Revocation::Keep(c) => (false, c, asked.first_seen.unwrap_or(c)),
    };
    let held_by = effective.filter(|_| !write).map(|(_, holder)| holder);
    Decision::Act(Decided {
        role_name: role_name.clone(),
        role,
        write,
        cutoff,
        covers_from,
        held_by,
        key: asked.key.map(str::to_owned),
        last_seen: asked.last_seen,
        warnings,
    })
}

/// What became of the revocation write.
pub enum Written {
    Nothing,
    /// Ours, written at this time, to this document.
    At(DateTime<Utc>, Holder),
    /// Ours, written without a claim because the table would not take one (why).
    Unclaimed(DateTime<Utc>, Holder, String),
    /// Another run's, claimed first and now in IAM.
    Adopted(DateTime<Utc>, Holder),
}

impl Written {
    /// The cut-off in force after it: another run's if adopted, else the one decided.
    fn cutoff(&self, decided: &Decided) -> DateTime<Utc> {
        match self {
            Self::Adopted(theirs, _) => *theirs,
            _ => decided.cutoff,
        }
    }
}

/// Write the decided revocation (a dry run only records it as planned), using the claim taken
/// with the first reads if it answers for this write.
pub async fn write(
    app: &App,
    iam: &aws_sdk_iam::Client,
    decided: &Decided,
    (finding_id, early): (&str, Option<&EarlyClaim>),
    dry_run: bool,
    steps: &Steps,
) -> Result<Written> {
    let role_name = &decided.role_name;
    match (decided.write, dry_run) {
        (false, _) => Ok(Written::Nothing),
        (true, true) => {
            let at = decided.cutoff.to_rfc3339_opts(SecondsFormat::Millis, true);
            steps.planned(
                Op::PutRolePolicy,
                role_name.as_str(),
                format!("deny sessions issued before {at}"),
            );
            Ok(Written::Nothing)
        }
        (true, false) => claim_and_put(app, iam, decided, (finding_id, early), steps).await,
    }
}

/// Record on the role the key the write answered. A record that fails is a warning (why), never
/// a failed run: the revocation holds, and without the record a later delivery naming the key
/// revokes once more than needed. Nothing waits for it: the instances are cycled meanwhile.
pub async fn record(
    iam: &aws_sdk_iam::Client,
    decided: &Decided,
    written: &Written,
    dry_run: bool,
    steps: &Steps,
) -> Option<String> {
    let held = RevokedKeys::of(&decided.role.tags);
    let record =
        answered(decided, written).and_then(|(key, in_force)| RevokedKeys::with(held.as_ref(), in_force, key))?;
    let role = &decided.role_name;
    if dry_run {
        steps.planned(Op::TagRole, role.as_str(), format!("record {}", record.value()));
        return None;
    }
    let put = iam::put_revoked_keys(iam, role, &record);
    let e = steps.run(Op::TagRole, role.as_str(), put).await.err()?;
    Some(format!(
        "the revocation holds, but the key it answered could not be recorded on role {role} ({e}): a later delivery naming that key, with activity after the cut-off, revokes again"
    ))
}

/// The finding's key and the cut-off in force after the write, if that cut-off is known to deny
/// the key: it is after the key's last use (one written now is after every use so far).
fn answered<'d>(decided: &'d Decided, written: &Written) -> Option<(&'d str, DateTime<Utc>)> {
    let in_force = written.cutoff(decided);
    let written_now = match written {
        Written::At(..) | Written::Unclaimed(..) => true,
        Written::Adopted(..) => false,
        // Kept; or planned, in a dry run.
        Written::Nothing => decided.write,
    };
    let after_last_use = decided.last_seen.map_or(written_now, |last| last <= in_force);
    let key = decided.key.as_deref().filter(|_| after_last_use)?;
    Some((key, in_force))
}

/// Write the revocation, or adopt the one a concurrent run claimed first (with `CLAIM_TABLE`).
async fn claim_and_put(
    app: &App,
    iam: &aws_sdk_iam::Client,
    decided: &Decided,
    (finding_id, early): (&str, Option<&EarlyClaim>),
    steps: &Steps,
) -> Result<Written> {
    let (role_name, cutoff, covers_from) = (&decided.role_name, decided.cutoff, decided.covers_from);
    let Some(table) = &app.config.claim_table else {
        return put(iam, decided, steps)
            .await
            .map(|(at, holder)| Written::At(at, holder));
    };
    let key = claim::key(crate::names::account_of_arn(&decided.role.arn), role_name.as_str());
    let claimed = match early.and_then(|e| e.answer_for(&key, cutoff, covers_from)) {
        Some(answered) => answered,
        None => {
            let dynamodb = &app.clients.dynamodb;
            let claim = claim::claim(dynamodb, table, &key, cutoff, covers_from, finding_id, Utc::now());
            steps.run(Op::ClaimRevocation, role_name.as_str(), claim).await?
        }
    };
    let theirs = match claimed {
        Claimed::Won => {
            return put(iam, decided, steps)
                .await
                .map(|(at, holder)| Written::At(at, holder));
        }
        Claimed::Unavailable(why) => {
            warn!(role = %role_name, %why, "no revocation claim; writing without one");
            return put(iam, decided, steps)
                .await
                .map(|(at, holder)| Written::Unclaimed(at, holder, why));
        }
        Claimed::Lost { cutoff: theirs } => theirs,
    };
    info!(role = %role_name, cutoff = %theirs, "another run claimed the revocation; adopting it");
    let wait = await_revocation(iam, role_name, covers_from, steps.bounded(claim::ADOPT_WITHIN));
    match steps.run(Op::AwaitClaimedRevocation, role_name.as_str(), wait).await {
        Ok((in_force, holder)) => Ok(Written::Adopted(in_force, holder)),
        // The claim's run failed or died before writing: containment must not wait on it, so
        // write (a second write costs nothing but the write).
        Err(Error::Timeout { seconds, .. }) => {
            let why = format!(
                "the run that claimed the revocation ({}) did not write it within {seconds} s",
                theirs.to_rfc3339_opts(SecondsFormat::Millis, true)
            );
            warn!(role = %role_name, %why, "taking over the revocation");
            put(iam, decided, steps)
                .await
                .map(|(at, holder)| Written::Unclaimed(at, holder, why))
        }
        Err(e) => Err(e),
    }
}

/// Write the revocation inline, as the console does; if the role's inline quota is full
/// (`LimitExceeded`: 10,240 characters of inline policy per role), as the managed fallback, so
/// that a full quota never leaves the stolen key live.
async fn put(iam: &aws_sdk_iam::Client, decided: &Decided, steps: &Steps) -> Result<(DateTime<Utc>, Holder)> {
    let (role, cutoff) = (&decided.role_name, decided.cutoff);
    let at = cutoff.to_rfc3339_opts(SecondsFormat::Millis, true);
    info!(role = %role, cutoff = %at, "revoking sessions issued before the cut-off");
    let inline = steps
        .run(Op::PutRolePolicy, role.as_str(), iam::put_revocation(iam, role, cutoff))
        .await;
    match inline {
        Ok(()) => return Ok((Utc::now(), Holder::inline())),
        Err(e) if e.aws_code() == Some("LimitExceeded") => {
            warn!(role = %role, error = %e, "the role's inline policy quota is full; writing the managed fallback");
        }
        Err(e) => return Err(e),
    }
    let put = iam::put_managed_revocation(iam, &decided.role.arn, role, cutoff);
    let arn = steps.run(Op::CreatePolicy, role.as_str(), put).await?;
    steps
        .run(
            Op::AttachRolePolicy,
            role.as_str(),
            iam::attach_fallback(iam, role, &arn),
        )
        .await?;
    Ok((Utc::now(), Holder::Managed { arn }))
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

/// The revocation as it stands after the write: what the report says of it, the cut-off the
/// instances are cycled against (another run's, if adopted), and any warning.
pub struct Contained {
    pub report: CutoffReport,
    pub cutoff: DateTime<Utc>,
    pub warnings: Vec<String>,
}

pub fn settle(decided: &Decided, dry_run: bool, written: &Result<Written>) -> Contained {
    let status = match (decided.write, dry_run, written) {
        (false, ..) => CutoffStatus::Existing,
        (_, true, _) => CutoffStatus::Planned,
        (_, false, Ok(Written::Adopted(..))) => CutoffStatus::Existing,
        (_, false, Ok(_)) => CutoffStatus::Written,
        (_, false, Err(_)) => CutoffStatus::Failed,
    };
    let cutoff = written.as_ref().map_or(decided.cutoff, |w| w.cutoff(decided));
    let (written_at, warning) = match written {
        Ok(Written::At(at, _)) => (Some(*at), None),
        Ok(Written::Unclaimed(at, _, why)) => (
            Some(*at),
            Some(format!(
                "the revocation was written without a claim ({why}), so a concurrent run may write another"
            )),
        ),
        Ok(Written::Adopted(..) | Written::Nothing) | Err(_) => (None, None),
    };
    let policy = match written {
        Ok(Written::At(_, holder) | Written::Unclaimed(_, holder, _) | Written::Adopted(_, holder)) => {
            Some(holder.clone())
        }
        // A dry run plans the inline write; a failed one may have been either.
        Ok(Written::Nothing) if decided.write => Some(Holder::inline()),
        Ok(Written::Nothing) => decided.held_by.clone(),
        Err(_) => None,
    };
    Contained {
        report: CutoffReport {
            at: cutoff.to_rfc3339_opts(SecondsFormat::Millis, true),
            status,
            written_at,
            policy,
        },
        cutoff,
        warnings: warning.into_iter().collect(),
    }
}

/// After cycling against `cutoff`, read the revocation again: None if what was issued stands,
/// or the later cut-off to cycle against (up to [`CUTOFF_ROUNDS`]).
pub async fn recheck(
    iam: &aws_sdk_iam::Client,
    role_name: &RoleName,
    cutoff: DateTime<Utc>,
    covers_from: DateTime<Utc>,
    round: usize,
    steps: &Steps,
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
            c.to_rfc3339_opts(SecondsFormat::Millis, true)
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
    use crate::config::Config;
    use crate::op::StepOutcome;
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

    fn decided(app: &App, existing: Option<Existing>) -> Decision {
        let name = name();
        let asked = Asked {
            role_name: &name,
            expected_role_id: Some("AROAEXAMPLE"),
            own_role: Some("exfil-responder-role"),
            first_seen: Some(at(FIRST_SEEN)),
            key: None,
            last_seen: None,
        };
        let in_force = InForce {
            inline: existing,
            managed: None,
        };
        decide(app, (Some(role()), in_force), &asked, at(NOW))
    }

    fn app(config: Config) -> App {
        Rules::default().app(config)
    }

    #[test]
    fn a_missing_role_and_a_protected_one_are_skipped_with_the_reason() {
        let name = name();
        let asked = Asked {
            role_name: &name,
            expected_role_id: None,
            own_role: None,
            first_seen: None,
            key: None,
            last_seen: None,
        };
        let missing = decide(&app(Config::default()), (None, InForce::default()), &asked, at(NOW));
        assert!(matches!(missing, Decision::Missing(ref why) if why.contains("does not exist")));
        let protected = app(Config {
            protected_roles: vec!["WebAppRole".into()],
            ..Config::default()
        });
        let Decision::Refused(role, why) = decided(&protected, None) else {
            panic!("a protected role was not refused")
        };
        assert_eq!(role.name, "WebAppRole", "the report names the role it refused");
        assert!(why.contains("NOT revoked"), "{why}");
    }

    #[test]
    fn a_cutoff_covering_the_finding_is_kept_and_covers_from_the_first_sighting() {
        let kept = decided(
            &app(Config::default()),
            Some(Existing::Cutoff(at("2026-11-22T09:59:00Z"))),
        );
        let Decision::Act(kept) = kept else {
            panic!("not acted on")
        };
        assert!(!kept.write);
        assert_eq!(kept.cutoff, at("2026-11-22T09:59:00Z"));
        assert_eq!(kept.covers_from, at(FIRST_SEEN));
        let Decision::Act(new) = decided(&app(Config::default()), None) else {
            panic!("not acted on")
        };
        assert!(new.write);
        assert_eq!(new.cutoff, crate::policy::cutoff_at(at(NOW)));
    }

    fn to_write(app: &App) -> Decided {
        match decided(app, None) {
            Decision::Act(d) => d,
            _ => panic!("not acted on"),
        }
    }

    #[tokio::test]
    async fn a_dry_run_plans_the_write_and_calls_nothing() {
        let put = mock!(aws_sdk_iam::Client::put_role_policy).then_output(|| PutRolePolicyOutput::builder().build());
        let rules = Rules {
            iam: vec![&put],
            ..Rules::default()
        };
        let (app, steps) = (rules.app(Config::default()), Steps::new("f", Deadline::none()));
        let decided = to_write(&app);
        let written = write(&app, &app.clients.iam, &decided, ("f", None), true, &steps)
            .await
            .unwrap();
        assert!(matches!(written, Written::Nothing));
        assert_eq!(put.num_calls(), 0);
        assert_eq!(
            settle(&decided, true, &Ok(written)).report.status,
            CutoffStatus::Planned
        );
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
        let steps = Steps::new("f", Deadline::none());
        let decided = to_write(&app);
        let written = write(&app, &app.clients.iam, &decided, ("f", None), false, &steps).await;
        assert_eq!(put.num_calls(), 0, "the winner writes, not us");
        let contained = settle(&decided, false, &written);
        assert_eq!(contained.cutoff, at(theirs));
        assert_eq!(contained.report.status, CutoffStatus::Existing);
        assert_eq!(contained.report.written_at, None);
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
        let decided = to_write(&app);
        let steps = Steps::new("f", Deadline::none());
        let written = write(&app, &app.clients.iam, &decided, ("f", None), false, &steps).await;
        assert_eq!(written.as_ref().err().and_then(Error::aws_code), Some("ServiceFailure"));
        assert_eq!(settle(&decided, false, &written).report.status, CutoffStatus::Failed);
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
        let decided = to_write(&app);
        let steps = Steps::new("f", Deadline::none());
        let written = write(&app, &app.clients.iam, &decided, ("f", None), false, &steps).await;
        assert_eq!((create.num_calls(), attach.num_calls()), (1, 1));
        let contained = settle(&decided, false, &written);
        assert_eq!(contained.report.status, CutoffStatus::Written);
        assert_eq!(contained.report.policy, Some(Holder::Managed { arn: arn.into() }));
        let steps: Vec<_> = steps.into_records().into_iter().map(|r| (r.step, r.outcome)).collect();
        assert_eq!(
            steps,
            [
                (Op::PutRolePolicy, StepOutcome::Failed),
                (Op::CreatePolicy, StepOutcome::Ok),
                (Op::AttachRolePolicy, StepOutcome::Ok)
            ],
            "the report shows the failed inline write and the fallback"
        );
    }

    #[test]
    fn a_cutoff_kept_in_the_managed_fallback_is_reported_as_held_there() {
        let arn = "arn:aws:iam::123456789012:policy/exfil-responder/AWSRevokeOlderSessions-WebAppRole".to_owned();
        let name = name();
        let asked = Asked {
            role_name: &name,
            expected_role_id: Some("AROAEXAMPLE"),
            own_role: None,
            first_seen: Some(at(FIRST_SEEN)),
            key: None,
            last_seen: None,
        };
        let in_force = InForce {
            inline: None,
            managed: Some((arn.clone(), Existing::Cutoff(at("2026-11-22T09:59:00Z")))),
        };
        let Decision::Act(kept) = decide(&app(Config::default()), (Some(role()), in_force), &asked, at(NOW)) else {
            panic!("not acted on")
        };
        assert!(!kept.write, "the fallback's cut-off covers the finding");
        let report = settle(&kept, false, &Ok(Written::Nothing)).report;
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
