//! Readiness's reads of an account's IAM, which decide nothing: every role an instance profile
//! holds, with its tags, inline policies and attached policies, and the account's IAM quotas.
//!
//! One paginated `GetAccountAuthorizationDetails` (filtered to roles) rather than per-role reads:
//! `ListRoles` returns no tags, so each role would cost `GetRole`, `ListRolePolicies`, a
//! `GetRolePolicy` per inline policy and `ListAttachedRolePolicies`, about a thousand calls for
//! 200 roles. Its inline documents are URL-encoded, as `GetRolePolicy`'s are.
//! <https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetAccountAuthorizationDetails.html>

use aws_sdk_iam::Client;
use aws_sdk_iam::types::{EntityType, SummaryKeyType};

use crate::error::{Error, Result};
use crate::plan::RoleFacts;
use crate::plan::readiness::{Quotas, RoleInventory};
use crate::plan::release::Documents;
use crate::policy::{POLICY_NAME, fallback_arn, quota_chars};

/// The most items a page may hold (the API's own default is 100).
const PAGE_ITEMS: i32 = 1000;

/// Every role that an instance profile holds, as IAM has it. A role in no profile cannot be an
/// instance's, so it is left out.
pub async fn instance_roles(iam: &Client) -> Result<Vec<RoleInventory>> {
    let mut pages = iam
        .get_account_authorization_details()
        .filter(EntityType::Role)
        .max_items(PAGE_ITEMS)
        .into_paginator()
        .send();
    let mut roles = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::aws("iam", "GetAccountAuthorizationDetails", e))?;
        roles.extend(page.role_detail_list.into_iter().flatten().filter_map(role_inventory));
    }
    Ok(roles)
}

fn role_inventory(detail: aws_sdk_iam::types::RoleDetail) -> Option<RoleInventory> {
    let profiles: Vec<String> = (detail.instance_profile_list.into_iter().flatten())
        .map(|p| p.arn)
        .collect();
    if profiles.is_empty() {
        return None;
    }
    let facts = RoleFacts {
        name: detail.role_name?,
        arn: detail.arn?,
        id: detail.role_id?,
        path: detail.path.unwrap_or_else(|| "/".into()),
        tags: (detail.tags.into_iter().flatten()).map(|t| (t.key, t.value)).collect(),
    };
    let (mut revocation, mut other_inline_chars) = (None, 0);
    for inline in detail.role_policy_list.into_iter().flatten() {
        let document = inline.policy_document.unwrap_or_default();
        match inline.policy_name.as_deref() {
            // Replaced by the deny: its size does not count against the new one.
            Some(POLICY_NAME) => revocation = Some(document),
            _ => other_inline_chars += quota_chars(&document),
        }
    }
    let attached = detail.attached_managed_policies.unwrap_or_default();
    // Ours: the fallback's own ARN, in the role's account, at our path, by its name.
    let fallback = fallback_arn(&facts.arn, &facts.name)
        .filter(|ours| attached.iter().any(|p| p.policy_arn.as_deref() == Some(ours.as_str())));
    Some(RoleInventory {
        facts,
        profiles,
        documents: Documents {
            inline: revocation,
            managed: None,
        },
        fallback,
        other_inline_chars,
        attached: attached.len(),
    })
}

/// The account's quotas for a role's inline policies and attached managed policies
/// (`GetAccountSummary`); IAM's documented defaults where it does not say.
pub async fn quotas(iam: &Client) -> Result<Quotas> {
    let summary = iam
        .get_account_summary()
        .send()
        .await
        .map_err(|e| Error::aws("iam", "GetAccountSummary", e))?
        .summary_map
        .unwrap_or_default();
    let quota = |key: SummaryKeyType, default: usize| {
        summary
            .get(&key)
            .and_then(|v| usize::try_from(*v).ok())
            .unwrap_or(default)
    };
    let defaults = Quotas::default();
    Ok(Quotas {
        inline_chars: quota(SummaryKeyType::RolePolicySizeQuota, defaults.inline_chars),
        attached: quota(SummaryKeyType::AttachedPoliciesPerRoleQuota, defaults.attached),
    })
}
