//! Release: read the role and where its revocation may be, decide (`plan::release`), remove each
//! document of ours, and read again. A containment that writes a new cut-off meanwhile keeps it:
//! its own re-check finds a revocation removed under it and fails, and Lambda's retry revokes
//! again; the release's read-back reports a revocation written after it.

use chrono::{DateTime, Utc};

use crate::api::ApiCall;
use crate::app::App;
use crate::aws::iam;
use crate::error::Result;
use crate::operation::Release;
use crate::plan::release::{self as plan, Documents, ReleaseFacts, Removal, describe};
use crate::policy::Holder;
use crate::report::{Ended, Outcome, ReleasedDocument, RoleSummary};
use crate::respond::auto_release;
use crate::respond::undo::{Undoing, Undone};

pub async fn release(app: &App, reached: &Undoing<'_>, request: &Release, done: &mut Undone) -> Result<Ended> {
    let (iam_client, steps) = (&reached.target.iam, reached.steps);
    let role = &request.role;
    steps.set_role(role.as_str());
    done.role = Some(RoleSummary {
        name: role.to_string(),
        arn: None,
    });
    if let (Some(schedule), None) = (&request.schedule, &app.config.auto_release) {
        return Ok(Ended::skipped(format!(
            "delivered by release schedule {schedule}, but AUTO_RELEASE is off here: not acted on; release role {role} by hand"
        )));
    }
    let (facts, documents) = tokio::try_join!(
        steps.run(ApiCall::GetRole, role.as_str(), iam::get_role(iam_client, role)),
        read_documents(iam_client, role, steps),
    )?;
    if let Some(facts) = &facts {
        done.role = Some(RoleSummary::of(facts));
    }
    let decided = plan::release(&ReleaseFacts {
        role: facts.as_ref(),
        documents: &documents,
        own_role: reached.own_role,
        protected_roles: &app.config.protected_roles,
        hold: app.config.revoke_hold(),
        forced: request.force.then_some(request.asked.reason.as_deref()).flatten(),
        now: Utc::now(),
    });
    let (removals, safe_at, forced) = match decided {
        plan::ReleasePlan::Refuse(why) => return Ok(Ended::skipped(why)),
        plan::ReleasePlan::TooEarly { reason, safe_at } => {
            return put_off(app, reached, request, (reason, safe_at), done).await;
        }
        plan::ReleasePlan::Remove {
            removals,
            safe_at,
            forced,
        } => (removals, safe_at, forced),
    };
    done.operation.safe_at = Some(safe_at);
    done.operation.forced = forced;
    done.operation.documents = removals.iter().map(|r| as_found(r, &documents)).collect();
    if reached.dry_run {
        for r in &removals {
            steps.planned(
                op_of(&r.holder),
                role.as_str(),
                format!("remove {}", describe(&r.holder)),
            );
        }
        return Ok(Ended::with(Outcome::Planned));
    }
    for (i, r) in removals.iter().enumerate() {
        let remove = async {
            match &r.holder {
                Holder::Inline { .. } => iam::delete_revocation(iam_client, role).await,
                Holder::Managed { arn } => iam::detach_fallback(iam_client, role, arn).await,
            }
        };
        if let Err(e) = steps.run(op_of(&r.holder), role.as_str(), remove).await {
            if i > 0 {
                done.warnings.push(format!(
                    "role {role} is partly released: {} was removed before this failed; a retry finishes",
                    describe(&removals[0].holder)
                ));
            }
            return Err(e);
        }
        done.operation.documents[i].removed_at = Some(Utc::now());
    }
    let after = read_documents(iam_client, role, steps).await?;
    if after.inline.is_some() || after.managed.is_some() {
        done.warnings.push(format!(
            "a revocation was written on role {role} while it was being released: left in place, so the role is revoked again"
        ));
    }
    Ok(Ended::with(Outcome::Released))
}

/// Too early: a scheduled release asks again for when the hold is over (the role was revoked
/// again since it was scheduled); one asked by hand is refused with when it may be.
async fn put_off(
    app: &App,
    reached: &Undoing<'_>,
    request: &Release,
    (reason, safe_at): (String, DateTime<Utc>),
    done: &mut Undone,
) -> Result<Ended> {
    if request.schedule.is_none() {
        return Ok(Ended::skipped(reason));
    }
    let role = (reached.account, &request.role);
    done.auto_release = auto_release::schedule(app, role, safe_at, reached.dry_run, reached.steps).await;
    let asked = match &done.auto_release {
        // The same revocation asks for the same schedule: this one, come before its time.
        Some((scheduled, None)) if request.schedule.as_ref() == Some(&scheduled.schedule) => {
            "and NOT put off: it came before its own time; release it by hand".to_owned()
        }
        Some((scheduled, None)) if reached.dry_run => format!("would be put off to schedule {}", scheduled.schedule),
        Some((scheduled, None)) => format!("put off: released by schedule {} instead", scheduled.schedule),
        _ => "and NOT put off: release it by hand".to_owned(),
    };
    Ok(Ended::skipped(format!("{reason}; {asked}")))
}

/// Both places a revocation may be, as IAM holds them, read together.
async fn read_documents(
    iam_client: &aws_sdk_iam::Client,
    role: &crate::names::RoleName,
    steps: &crate::respond::journal::Journal,
) -> Result<Documents> {
    let (inline, managed) = tokio::try_join!(
        steps.run(
            ApiCall::GetRolePolicy,
            role.as_str(),
            iam::get_revocation_document(iam_client, role)
        ),
        steps.run(
            ApiCall::ListAttachedRolePolicies,
            role.as_str(),
            iam::get_managed_document(iam_client, role)
        ),
    )?;
    Ok(Documents { inline, managed })
}

fn op_of(holder: &Holder) -> ApiCall {
    match holder {
        Holder::Inline { .. } => ApiCall::DeleteRolePolicy,
        Holder::Managed { .. } => ApiCall::DetachRolePolicy,
    }
}

/// The document a removal is of, for the record (decoded: IAM returns it URL-encoded).
fn as_found(removal: &Removal, documents: &Documents) -> ReleasedDocument {
    let encoded = match &removal.holder {
        Holder::Inline { .. } => documents.inline.as_deref(),
        Holder::Managed { .. } => documents.managed.as_ref().map(|(_, d)| d.as_str()),
    };
    let document = encoded
        .and_then(|e| percent_encoding::percent_decode_str(e).decode_utf8().ok())
        .and_then(|d| serde_json::from_str(&d).ok())
        .unwrap_or_default();
    ReleasedDocument {
        holder: removal.holder.clone(),
        cutoff: removal.cutoff,
        document,
        removed_at: None,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_iam::Client;
    use aws_sdk_iam::operation::delete_role_policy::DeleteRolePolicyOutput;
    use aws_sdk_iam::operation::detach_role_policy::DetachRolePolicyError;
    use aws_sdk_iam::operation::get_policy::GetPolicyOutput;
    use aws_sdk_iam::operation::get_policy_version::GetPolicyVersionOutput;
    use aws_sdk_iam::operation::get_role::GetRoleOutput;
    use aws_sdk_iam::operation::get_role_policy::GetRolePolicyOutput;
    use aws_sdk_iam::operation::list_attached_role_policies::ListAttachedRolePoliciesOutput;
    use aws_sdk_iam::types::error::ServiceFailureException;
    use aws_sdk_iam::types::{AttachedPolicy, Policy, PolicyVersion, Role};
    use aws_smithy_mocks::mock;
    use chrono::Duration;

    use super::*;
    use crate::api::StepOutcome;
    use crate::config::Config;
    use crate::names::RoleName;
    use crate::operation::Asked;
    use crate::policy::{document, fallback_arn};
    use crate::respond::journal::Journal;
    use crate::respond::mocks::Rules;
    use crate::wait::Deadline;

    const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/WebAppRole";

    #[tokio::test]
    async fn a_failure_between_the_two_documents_fails_saying_the_role_is_partly_released() {
        let old = document(Utc::now() - Duration::hours(20));
        let fallback = fallback_arn(ROLE_ARN, "WebAppRole").unwrap();
        let role = mock!(Client::get_role).then_output(|| {
            let role = Role::builder()
                .role_name("WebAppRole")
                .arn(ROLE_ARN)
                .role_id("AROAEXAMPLE")
                .path("/")
                .create_date(aws_sdk_iam::primitives::DateTime::from_secs(0))
                .build()
                .unwrap();
            GetRoleOutput::builder().role(role).build()
        });
        let inline_doc = old.clone();
        let inline = mock!(Client::get_role_policy).then_output(move || {
            GetRolePolicyOutput::builder()
                .role_name("WebAppRole")
                .policy_name("AWSRevokeOlderSessions")
                .policy_document(inline_doc.clone())
                .build()
                .unwrap()
        });
        let (arn, name) = (fallback.clone(), crate::policy::fallback_name("WebAppRole"));
        let attached = mock!(Client::list_attached_role_policies).then_output(move || {
            let p = AttachedPolicy::builder().policy_arn(&arn).policy_name(&name).build();
            ListAttachedRolePoliciesOutput::builder().attached_policies(p).build()
        });
        let policy = mock!(Client::get_policy).then_output(|| {
            GetPolicyOutput::builder()
                .policy(Policy::builder().default_version_id("v1").build())
                .build()
        });
        let version = mock!(Client::get_policy_version).then_output(move || {
            GetPolicyVersionOutput::builder()
                .policy_version(PolicyVersion::builder().document(old.clone()).build())
                .build()
        });
        let deleted = mock!(Client::delete_role_policy)
            .match_requests(|r| r.policy_name() == Some("AWSRevokeOlderSessions"))
            .then_output(|| DeleteRolePolicyOutput::builder().build());
        let detach = mock!(Client::detach_role_policy)
            .then_error(|| DetachRolePolicyError::ServiceFailureException(ServiceFailureException::builder().build()));
        let rules = Rules {
            iam: vec![&role, &inline, &attached, &policy, &version, &deleted, &detach],
            ..Rules::default()
        };
        let app = rules.app(Config::default());
        let target = rules.target();
        let steps = Journal::new("release-WebAppRole", Deadline::none());
        let reached = Undoing {
            target: &target,
            account: "123456789012",
            own_role: None,
            dry_run: false,
            steps: &steps,
        };
        let request = Release {
            role: RoleName::parse("WebAppRole").unwrap(),
            force: false,
            schedule: None,
            asked: Asked::default(),
        };
        let mut done = Undone::default();
        let err = release(&app, &reached, &request, &mut done).await.err().expect("fails");
        assert_eq!(err.kind(), "Aws.iam.DetachRolePolicy.NoCode");
        assert_eq!(deleted.num_calls(), 1);
        assert!(done.warnings[0].contains("partly released"), "{:?}", done.warnings);
        assert!(done.operation.documents[0].removed_at.is_some());
        assert!(done.operation.documents[1].removed_at.is_none());
        let records = steps.into_records();
        let last = records.last().unwrap();
        assert_eq!(
            (last.step, last.outcome),
            (ApiCall::DetachRolePolicy, StepOutcome::Failed)
        );
    }
}
