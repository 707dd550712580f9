//! Security Hub, from the function's own account (the Security Hub administrator may update its
//! members' findings): the workflow of a GuardDuty finding after a response.
//! <https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_BatchUpdateFindings.html>

use aws_sdk_securityhub::Client;
use aws_sdk_securityhub::types::{AwsSecurityFindingIdentifier, NoteUpdate, WorkflowStatus, WorkflowUpdate};

use crate::error::{Error, Result};
use crate::plan::workflow;

/// Who a note is by, as Security Hub shows it.
pub const UPDATED_BY: &str = "exfil-responder";

/// Set the finding's workflow and note. Ok(Some) is Security Hub's refusal for the finding
/// (`UnprocessedFindings`: not found, not ours to update), which a retry would not change.
pub async fn update_workflow(securityhub: &Client, update: &workflow::WorkflowUpdate) -> Result<Option<String>> {
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
