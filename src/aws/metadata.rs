//! The instance metadata service's settings (`HARDEN=imdsv2`).

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::HttpTokensState;

use crate::error::{Error, Result};

/// `HttpTokens=required`: credentials only through IMDSv2's session tokens, which a server-side
/// request forgery cannot obtain (a PUT, with no `X-Forwarded-For`); with `hop_limit`,
/// `HttpPutResponseHopLimit` in the same call. Other settings stay as they are. On a running
/// instance it applies within moments (state `pending`, then `applied`); on a stopped one, when it
/// starts.
pub async fn require_imdsv2(ec2: &Client, instance_id: &str, hop_limit: Option<i32>) -> Result<()> {
    ec2.modify_instance_metadata_options()
        .instance_id(instance_id)
        .http_tokens(HttpTokensState::Required)
        .set_http_put_response_hop_limit(hop_limit)
        .send()
        .await
        .map_err(|e| Error::aws("ec2", "ModifyInstanceMetadataOptions", e))?;
    Ok(())
}
