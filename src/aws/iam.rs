//! IAM effects: the role, its revocation policy, and its instance profiles. IAM is global: one
//! client serves every region.

use aws_sdk_iam::Client;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::names::RoleName;
use crate::plan::revocation::RoleFacts;
use crate::policy::{self, Existing, POLICY_NAME};

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
    match iam
        .get_role_policy()
        .role_name(role.as_str())
        .policy_name(POLICY_NAME)
        .send()
        .await
    {
        // IAM returns the document URL-encoded, and the Rust SDK does not decode it.
        Ok(out) => Ok(Some(policy::read_cutoff(&out.policy_document))),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(None),
        Err(e) => Err(Error::aws("iam", "GetRolePolicy", e)),
    }
}

/// Write (or overwrite) the revocation. The role's other policies are never touched.
pub async fn put_revocation(iam: &Client, role: &RoleName, cutoff: DateTime<Utc>) -> Result<()> {
    iam.put_role_policy()
        .role_name(role.as_str())
        .policy_name(POLICY_NAME)
        .policy_document(policy::document(cutoff))
        .send()
        .await
        .map_err(|e| Error::aws("iam", "PutRolePolicy", e))?;
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
    let out = iam
        .get_instance_profile()
        .instance_profile_name(profile_name)
        .send()
        .await
        .map_err(|e| Error::aws("iam", "GetInstanceProfile", e))?;
    Ok(out
        .instance_profile
        .and_then(|p| p.roles.into_iter().next())
        .map(|r| r.role_name))
}

#[cfg(test)]
mod tests {
    use aws_sdk_iam::error::ErrorMetadata;
    use aws_sdk_iam::operation::get_role::GetRoleError;
    use aws_sdk_iam::operation::get_role_policy::{GetRolePolicyError, GetRolePolicyOutput};
    use aws_sdk_iam::operation::put_role_policy::{PutRolePolicyError, PutRolePolicyOutput};
    use aws_sdk_iam::types::error::{LimitExceededException, NoSuchEntityException};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    fn role() -> RoleName {
        RoleName::parse("WebAppRole").unwrap()
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
        put_revocation(&iam, &role(), cutoff).await.unwrap();
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
        let err = put_revocation(&iam, &role(), cutoff).await.unwrap_err();
        assert_eq!(err.aws_code(), Some("LimitExceeded"));
        assert_eq!(err.kind(), "Aws.iam.PutRolePolicy.LimitExceeded");
        assert!(err.to_string().contains("10240"), "{err}");
    }
}
