//! IAM effects: the role, its revocation policy and record of revoked keys, and its instance
//! profiles. IAM is global: one client serves every region.

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;

use crate::error::{Error, Result};
use crate::gate::Permit;
use crate::names::RoleName;
use crate::plan::RoleFacts;
use crate::policy::{self, Existing, FALLBACK_PATH, POLICY_NAME};
use crate::revoked_keys::{self, RevokedKeys};

/// The role, or `None` if it does not exist.
pub async fn get_role(iam: &Client, name: &RoleName) -> Result<Option<RoleFacts>> {
    let out = match iam.get_role().role_name(name.as_str()).send().await {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => return Ok(None),
        Err(e) => return Err(Error::aws("iam", "GetRole", e)),
    };
    let role = out
        .role
        .ok_or_else(|| Error::Unexpected("GetRole answered without a role".into()))?;
    // GetRole returns the role's tags, so no ListRoleTags call is needed.
    let tags = role
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    Ok(Some(RoleFacts {
        name: role.role_name,
        arn: role.arn,
        id: role.role_id,
        path: role.path,
        tags,
    }))
}

/// What the role's `AWSRevokeOlderSessions` says, or `None` if it has none.
pub async fn get_revocation(iam: &Client, role: &RoleName) -> Result<Option<Existing>> {
    Ok(get_revocation_document(iam, role)
        .await?
        .map(|d| policy::read_cutoff(&d)))
}

/// The role's `AWSRevokeOlderSessions` as IAM returns it (URL-encoded), or `None` if it has none.
pub async fn get_revocation_document(iam: &Client, role: &RoleName) -> Result<Option<String>> {
    match iam
        .get_role_policy()
        .role_name(role.as_str())
        .policy_name(POLICY_NAME)
        .send()
        .await
    {
        // IAM returns the document URL-encoded, and the Rust SDK does not decode it.
        Ok(out) => Ok(Some(out.policy_document)),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(None),
        Err(e) => Err(Error::aws("iam", "GetRolePolicy", e)),
    }
}

/// Remove the role's `AWSRevokeOlderSessions` (a release). Already gone is done.
pub async fn delete_revocation(iam: &Client, role: &RoleName) -> Result<()> {
    match iam
        .delete_role_policy()
        .role_name(role.as_str())
        .policy_name(POLICY_NAME)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(()),
        Err(e) => Err(Error::aws("iam", "DeleteRolePolicy", e)),
    }
}

/// Detach the managed fallback from the role (a release). The policy itself is kept, as the
/// record of what was in force; detached already is done.
pub async fn detach_fallback(iam: &Client, role: &RoleName, arn: &str) -> Result<()> {
    match iam
        .detach_role_policy()
        .role_name(role.as_str())
        .policy_arn(arn)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(()),
        Err(e) => Err(Error::aws("iam", "DetachRolePolicy", e)),
    }
}

/// Record on the role which stolen keys its revocation answered (only that one tag is written).
pub async fn put_revoked_keys(iam: &Client, role: &RoleName, record: &RevokedKeys) -> Result<()> {
    let tag = Tag::builder()
        .key(revoked_keys::TAG)
        .value(record.value())
        .build()
        .map_err(|e| Error::Unexpected(format!("a tag with a key and a value failed to build: {e}")))?;
    iam.tag_role()
        .role_name(role.as_str())
        .tags(tag)
        .send()
        .await
        .map_err(|e| Error::aws("iam", "TagRole", e))?;
    Ok(())
}

/// Write (or overwrite) the revocation the gate permitted. The role's other policies are never
/// touched.
pub async fn put_revocation(iam: &Client, permit: &Permit) -> Result<()> {
    iam.put_role_policy()
        .role_name(permit.role().as_str())
        .policy_name(POLICY_NAME)
        .policy_document(policy::document(permit.cutoff()))
        .send()
        .await
        .map_err(|e| Error::aws("iam", "PutRolePolicy", e))?;
    Ok(())
}

/// The managed fallback attached to the role (see [`policy::fallback_name`]): its ARN and what its
/// default version says, or `None` if none is attached. Only our path is listed.
pub async fn get_managed_revocation(iam: &Client, role: &RoleName) -> Result<Option<(String, Existing)>> {
    let found = get_managed_document(iam, role).await?;
    Ok(found.map(|(arn, document)| (arn, policy::read_cutoff(&document))))
}

/// The attached fallback's ARN and its default version's document as IAM returns it (URL-encoded).
pub async fn get_managed_document(iam: &Client, role: &RoleName) -> Result<Option<(String, String)>> {
    let name = policy::fallback_name(role.as_str());
    let mut pages = iam
        .list_attached_role_policies()
        .role_name(role.as_str())
        .path_prefix(FALLBACK_PATH)
        .into_paginator()
        .send();
    let mut arn = None;
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            // No role: GetRole, read alongside, says so.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => return Ok(None),
            Err(e) => return Err(Error::aws("iam", "ListAttachedRolePolicies", e)),
        };
        arn = arn.or_else(|| {
            page.attached_policies
                .unwrap_or_default()
                .into_iter()
                .find(|p| p.policy_name.as_deref() == Some(name.as_str()))
                .and_then(|p| p.policy_arn)
        });
    }
    let Some(arn) = arn else { return Ok(None) };
    let document = policy_document(iam, &arn).await?;
    Ok(Some((arn, document)))
}

/// A managed policy's default version's document, as IAM returns it (URL-encoded, as
/// GetRolePolicy's).
pub async fn policy_document(iam: &Client, arn: &str) -> Result<String> {
    let default_version = iam
        .get_policy()
        .policy_arn(arn)
        .send()
        .await
        .map_err(|e| Error::aws("iam", "GetPolicy", e))?
        .policy
        .and_then(|p| p.default_version_id)
        .ok_or_else(|| Error::Unexpected(format!("GetPolicy answered without a default version for {arn}")))?;
    iam.get_policy_version()
        .policy_arn(arn)
        .version_id(default_version)
        .send()
        .await
        .map_err(|e| Error::aws("iam", "GetPolicyVersion", e))?
        .policy_version
        .and_then(|v| v.document)
        .ok_or_else(|| Error::Unexpected(format!("GetPolicyVersion answered without a document for {arn}")))
}

/// The managed fallback written for a permit: only [`put_managed_revocation`] makes one, so that
/// [`attach_fallback`] attaches nothing else.
#[derive(Debug)]
pub struct Fallback {
    arn: String,
}

impl Fallback {
    pub fn arn(&self) -> &str {
        &self.arn
    }
}

/// Write the revocation as the managed fallback, for a role whose inline quota is full: create it,
/// or, if it exists, make the new document its default version (pruning our old versions when
/// its five are used). Returns its ARN, for [`attach_fallback`]. Only the gate's permit makes one.
pub async fn put_managed_revocation(iam: &Client, permit: &Permit) -> Result<Fallback> {
    let (role_arn, role) = (permit.role_arn(), permit.role());
    let document = policy::document(permit.cutoff());
    let arn = policy::fallback_arn(role_arn, role.as_str())
        .ok_or_else(|| Error::Unexpected(format!("cannot read a partition and account from {role_arn}")))?;
    let created = iam
        .create_policy()
        .policy_name(policy::fallback_name(role.as_str()))
        .path(FALLBACK_PATH)
        .policy_document(&document)
        .description(
            "exfil-responder: denies sessions issued before the cut-off (the role's inline policy quota was full)",
        )
        .send()
        .await;
    match created {
        Ok(_) => return Ok(Fallback { arn }),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_entity_already_exists_exception()) => {}
        Err(e) => return Err(Error::aws("iam", "CreatePolicy", e)),
    }
    if let Err(e) = new_default_version(iam, &arn, &document).await {
        let full = e.as_service_error().is_some_and(|s| s.is_limit_exceeded_exception());
        if !full {
            return Err(Error::aws("iam", "CreatePolicyVersion", e));
        }
        prune_versions(iam, &arn).await?;
        new_default_version(iam, &arn, &document)
            .await
            .map_err(|e| Error::aws("iam", "CreatePolicyVersion", e))?;
    }
    Ok(Fallback { arn })
}

async fn new_default_version(
    iam: &Client,
    arn: &str,
    document: &str,
) -> std::result::Result<
    (),
    aws_sdk_iam::error::SdkError<aws_sdk_iam::operation::create_policy_version::CreatePolicyVersionError>,
> {
    iam.create_policy_version()
        .policy_arn(arn)
        .policy_document(document)
        .set_as_default(true)
        .send()
        .await
        .map(|_| ())
}

/// Delete the fallback's versions other than the default (each an older cut-off of ours).
async fn prune_versions(iam: &Client, arn: &str) -> Result<()> {
    let versions = iam
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .map_err(|e| Error::aws("iam", "ListPolicyVersions", e))?
        .versions
        .unwrap_or_default();
    for old in versions.into_iter().filter(|v| !v.is_default_version) {
        let Some(id) = old.version_id else { continue };
        iam.delete_policy_version()
            .policy_arn(arn)
            .version_id(id)
            .send()
            .await
            .map_err(|e| Error::aws("iam", "DeletePolicyVersion", e))?;
    }
    Ok(())
}

/// Attach the fallback to the role the gate permitted a deny on (attaching an attached policy is
/// a no-op).
pub async fn attach_fallback(iam: &Client, permit: &Permit, fallback: &Fallback) -> Result<()> {
    iam.attach_role_policy()
        .role_name(permit.role().as_str())
        .policy_arn(fallback.arn())
        .send()
        .await
        .map_err(|e| Error::aws("iam", "AttachRolePolicy", e))?;
    Ok(())
}

/// ARNs of every instance profile that holds the role.
pub async fn instance_profiles_for_role(iam: &Client, role: &RoleName) -> Result<Vec<String>> {
    let mut pages = iam
        .list_instance_profiles_for_role()
        .role_name(role.as_str())
        .into_paginator()
        .send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::aws("iam", "ListInstanceProfilesForRole", e))?;
        arns.extend(page.instance_profiles.into_iter().map(|p| p.arn));
    }
    Ok(arns)
}

/// The role an instance profile holds (a profile holds at most one).
pub async fn role_of_instance_profile(iam: &Client, profile_name: &str) -> Result<Option<String>> {
    instance_profile_role(iam, profile_name)
        .await?
        .ok_or_else(|| Error::Aws {
            service: "iam",
            operation: "GetInstanceProfile",
            code: Some("NoSuchEntity".into()),
            message: format!("instance profile {profile_name} not found"),
        })
}

/// The role an instance profile holds: `None` if there is no such profile, `Some(None)` if it
/// holds no role.
pub async fn instance_profile_role(iam: &Client, profile_name: &str) -> Result<Option<Option<String>>> {
    let out = match iam
        .get_instance_profile()
        .instance_profile_name(profile_name)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => return Ok(None),
        Err(e) => return Err(Error::aws("iam", "GetInstanceProfile", e)),
    };
    Ok(Some(
        out.instance_profile
            .and_then(|p| p.roles.into_iter().next())
            .map(|r| r.role_name),
    ))
}

#[cfg(test)]
mod tests {
    use aws_sdk_iam::error::ErrorMetadata;
    use aws_sdk_iam::operation::get_role::GetRoleError;
    use aws_sdk_iam::operation::get_role_policy::{GetRolePolicyError, GetRolePolicyOutput};
    use aws_sdk_iam::operation::put_role_policy::{PutRolePolicyError, PutRolePolicyOutput};
    use aws_sdk_iam::types::error::{LimitExceededException, NoSuchEntityException};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use chrono::{DateTime, Utc};

    use super::*;

    fn role() -> RoleName {
        RoleName::parse("WebAppRole").unwrap()
    }

    /// The gate's permit to write a cut-off of `cutoff` to WebAppRole.
    fn permit(cutoff: DateTime<Utc>) -> Permit {
        crate::gate::permit_for(&crate::plan::testing::web_app_role(&[]), cutoff)
    }

    #[tokio::test]
    async fn a_missing_role_or_policy_is_none_not_an_error() {
        let no_role = mock!(Client::get_role)
            .then_error(|| GetRoleError::NoSuchEntityException(NoSuchEntityException::builder().build()));
        let no_policy = mock!(Client::get_role_policy)
            .then_error(|| GetRolePolicyError::NoSuchEntityException(NoSuchEntityException::builder().build()));
        let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&no_role, &no_policy]);
        assert!(get_role(&iam, &role()).await.unwrap().is_none());
        assert!(get_revocation(&iam, &role()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_stored_document_is_url_decoded_before_reading() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Deny%22%2C%22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22%2A%22%2C%22Condition%22%3A%7B%22DateLessThan%22%3A%7B%22aws%3ATokenIssueTime%22%3A%222026-11-22T10%3A00%3A07Z%22%7D%7D%7D%5D%7D";
        let get_policy = mock!(Client::get_role_policy)
            .match_requests(|r| r.role_name() == Some("WebAppRole") && r.policy_name() == Some(POLICY_NAME))
            .then_output(move || {
                GetRolePolicyOutput::builder()
                    .role_name("WebAppRole")
                    .policy_name(POLICY_NAME)
                    .policy_document(encoded)
                    .build()
                    .unwrap()
            });
        let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&get_policy]);
        let expected = DateTime::parse_from_rfc3339("2026-11-22T10:00:07Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            get_revocation(&iam, &role()).await.unwrap(),
            Some(Existing::Cutoff(expected))
        );
    }

    #[tokio::test]
    async fn put_sends_the_document_and_keeps_the_aws_error_code() {
        let cutoff = DateTime::parse_from_rfc3339("2026-11-22T10:00:07Z")
            .unwrap()
            .with_timezone(&Utc);
        let doc = policy::document(cutoff);
        let ok = mock!(Client::put_role_policy)
            .match_requests(move |r| r.policy_name() == Some(POLICY_NAME) && r.policy_document() == Some(doc.as_str()))
            .then_output(|| PutRolePolicyOutput::builder().build());
        let iam = mock_client!(aws_sdk_iam, RuleMode::Sequential, [&ok]);
        put_revocation(&iam, &permit(cutoff)).await.unwrap();
        assert_eq!(ok.num_calls(), 1);

        let full = mock!(Client::put_role_policy).then_error(|| {
            PutRolePolicyError::LimitExceededException(
                LimitExceededException::builder()
                    .message("Maximum policy size of 10240 bytes exceeded")
                    .meta(
                        ErrorMetadata::builder()
                            .code("LimitExceeded")
                            .message("Maximum policy size of 10240 bytes exceeded")
                            .build(),
                    )
                    .build(),
            )
        });
        let iam = mock_client!(aws_sdk_iam, RuleMode::Sequential, [&full]);
        let err = put_revocation(&iam, &permit(cutoff)).await.unwrap_err();
        assert_eq!(err.aws_code(), Some("LimitExceeded"));
        assert_eq!(err.kind(), "Aws.iam.PutRolePolicy.LimitExceeded");
        assert!(err.to_string().contains("10240"), "{err}");
    }

    #[tokio::test]
    async fn an_existing_fallback_gets_a_new_default_version_and_old_ones_are_pruned_when_full() {
        use aws_sdk_iam::operation::create_policy::CreatePolicyError;
        use aws_sdk_iam::operation::create_policy_version::{CreatePolicyVersionError, CreatePolicyVersionOutput};
        use aws_sdk_iam::operation::delete_policy_version::DeletePolicyVersionOutput;
        use aws_sdk_iam::operation::list_policy_versions::ListPolicyVersionsOutput;
        use aws_sdk_iam::types::PolicyVersion;
        use aws_sdk_iam::types::error::EntityAlreadyExistsException;
        let arn = "arn:aws:iam::123456789012:policy/exfil-responder/AWSRevokeOlderSessions-WebAppRole";
        let exists = mock!(Client::create_policy).then_error(|| {
            CreatePolicyError::EntityAlreadyExistsException(EntityAlreadyExistsException::builder().build())
        });
        let five = mock!(Client::create_policy_version)
            .then_error(|| CreatePolicyVersionError::LimitExceededException(LimitExceededException::builder().build()));
        let versions = mock!(Client::list_policy_versions).then_output(|| {
            let version = |id: &str, default| {
                PolicyVersion::builder()
                    .version_id(id)
                    .is_default_version(default)
                    .build()
            };
            ListPolicyVersionsOutput::builder()
                .versions(version("v1", false))
                .versions(version("v2", true))
                .build()
        });
        let delete = mock!(Client::delete_policy_version)
            .match_requests(move |r| r.policy_arn() == Some(arn) && r.version_id() == Some("v1"))
            .then_output(|| DeletePolicyVersionOutput::builder().build());
        let created = mock!(Client::create_policy_version)
            .match_requests(|r| r.set_as_default() == Some(true))
            .then_output(|| CreatePolicyVersionOutput::builder().build());
        let iam = mock_client!(
            aws_sdk_iam,
            RuleMode::Sequential,
            [&exists, &five, &versions, &delete, &created]
        );
        let cutoff = DateTime::parse_from_rfc3339("2026-11-22T10:00:07Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(put_managed_revocation(&iam, &permit(cutoff)).await.unwrap().arn(), arn);
        assert_eq!(
            (delete.num_calls(), created.num_calls()),
            (1, 1),
            "only the non-default version deleted"
        );
    }
}
