//! SNS: the person-readable message about a response, published to the chat topic
//! (`NOTIFICATION_TOPIC_ARN`), in the topic's own region.

use aws_sdk_sns::Client;

use crate::error::{Error, Result};

/// Publish `message`; SNS's message id.
pub async fn publish(sns: &Client, topic_arn: &str, message: String) -> Result<String> {
    let answer = sns
        .publish()
        .topic_arn(topic_arn)
        .message(message)
        .send()
        .await
        .map_err(|e| Error::aws("sns", "Publish", e))?;
    Ok(answer.message_id().unwrap_or_default().to_owned())
}
