//! Security Hub, from the function's own account (the Security Hub administrator may update its
//! members' findings): the workflow of a GuardDuty finding after a response, through the API of
//! the format the finding came in: `BatchUpdateFindings` (ASFF) or `BatchUpdateFindingsV2` (OCSF).
//! Both are allowed by `securityhub:BatchUpdateFindings`.
//! <https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_BatchUpdateFindings.html>
//! <https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_BatchUpdateFindingsV2.html>

use aws_sdk_securityhub::Client;
use aws_sdk_securityhub::types::{
    AwsSecurityFindingIdentifier, NoteUpdate, OcsfFindingIdentifier, WorkflowStatus, WorkflowUpdate,
};

use crate::finding::OcsfIdentifier;

use crate::error::{Error, Result};
use crate::plan::workflow;

/// Who a note is by, as Security Hub shows it.
pub const UPDATED_BY: &str = "exfil-responder";

/// Set the finding's workflow and note. Ok(Some) is Security Hub's refusal for the finding
/// (`UnprocessedFindings`: not found, not ours to update), which a retry would not change.
pub async fn update_workflow(securityhub: &Client, update: &workflow::WorkflowUpdate) -> Result<Option<String>> {
    if let Some(ocsf) = &update.ocsf {
        return update_v2(securityhub, update, ocsf).await;
    }
    let finding = AwsSecurityFindingIdentifier::builder()
        .id(&update.finding_arn)
        .product_arn(&update.product_arn)
        .build();
    let note = NoteUpdate::builder().text(&update.note).updated_by(UPDATED_BY).build();
    let answer = securityhub
        .batch_update_findings()
        .finding_identifiers(finding)
        .workflow(
            WorkflowUpdate::builder()
                .status(WorkflowStatus::from(update.status))
                .build(),
        )
        .note(note)
        .send()
        .await
        .map_err(|e| Error::aws("securityhub", "BatchUpdateFindings", e))?;
    Ok(answer.unprocessed_findings().first().map(|u| {
        format!(
            "{}: {}",
            u.error_code().unwrap_or("unprocessed"),
            u.error_message().unwrap_or("no message")
        )
    }))
}

/// As [`update_workflow`], for a finding that came in OCSF: its `status_id` and a comment.
async fn update_v2(
    securityhub: &Client,
    update: &workflow::WorkflowUpdate,
    ocsf: &OcsfIdentifier,
) -> Result<Option<String>> {
    let finding = OcsfFindingIdentifier::builder()
        .cloud_account_uid(&ocsf.cloud_account_uid)
        .finding_info_uid(&ocsf.finding_info_uid)
        .metadata_product_uid(&ocsf.metadata_product_uid)
        .build();
    let answer = securityhub
        .batch_update_findings_v2()
        .finding_identifiers(finding)
        .status_id(update.status_id())
        .comment(&update.note)
        .send()
        .await
        .map_err(|e| Error::aws("securityhub", "BatchUpdateFindingsV2", e))?;
    Ok(answer.unprocessed_findings().first().map(|u| {
        let code = u.error_code().map_or("unprocessed", |c| c.as_str());
        format!("{code}: {}", u.error_message().unwrap_or("no message"))
    }))
}
