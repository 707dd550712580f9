//! The revocation claim: when several runs for one role start together (duplicate deliveries,
//! several findings about one role), one of them writes the cut-off and the others adopt it.
//!
//! IAM has no conditional write, so two runs that both read "no revocation" would both write one,
//! each later than the last. The claim is a DynamoDB conditional put on the role's ARN: the first
//! run to put it writes the policy; the others wait (bounded) for that policy to show in IAM.
//! It only saves writes: correctness never rests on it. A claim the table cannot take (throttled,
//! denied, unreachable) is skipped with a warning, and the run writes as it would without one.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// A claim older than this whose policy never appeared was abandoned (its run crashed): taken over.
pub const STALE_AFTER: Duration = Duration::from_secs(60);
/// How long a run that lost the claim waits for the winner's policy to show in IAM (the winner
/// writes within a second; IAM may take a few more to show it). After that it writes itself.
pub const ADOPT_WITHIN: Duration = Duration::from_secs(5);
/// Claims are only needed while runs overlap; DynamoDB's TTL removes them after a week.
const KEEP_FOR: i64 = 7 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// Ours: write the policy.
    Won,
    /// Another run claimed a cut-off that covers this finding: adopt it once IAM shows it, or
    /// write after all if it does not show within [`ADOPT_WITHIN`].
    Lost { cutoff: DateTime<Utc> },
    /// The table would not take the claim; the run goes on without one.
    Unavailable(String),
}

/// Claim the revocation of `role_arn` at `cutoff`. An existing claim is overridden only when its
/// cut-off does not cover `first_seen` (an older incident), or it went stale without its policy.
pub async fn claim(
    dynamodb: &Client,
    table: &str,
    role_arn: &str,
    cutoff: DateTime<Utc>,
    first_seen: DateTime<Utc>,
    finding_id: &str,
    now: DateTime<Utc>,
) -> Result<Claimed> {
    let n = |v: i64| AttributeValue::N(v.to_string());
    // Milliseconds, as the cut-off: it covers `first_seen` when not earlier, so compare rounded up.
    let covers_from =
        first_seen.timestamp_millis() + i64::from(!first_seen.timestamp_subsec_nanos().is_multiple_of(1_000_000));
    let put = dynamodb
        .put_item()
        .table_name(table)
        .item("role", AttributeValue::S(role_arn.to_owned()))
        .item("cutoff", n(cutoff.timestamp_millis()))
        .item("claimedAt", n(now.timestamp()))
        .item("findingId", AttributeValue::S(finding_id.to_owned()))
        .item("expiresAt", n(now.timestamp() + KEEP_FOR))
        .condition_expression("attribute_not_exists(#role) OR #cutoff < :covers OR #claimedAt < :stale")
        .expression_attribute_names("#role", "role")
        .expression_attribute_names("#cutoff", "cutoff")
        .expression_attribute_names("#claimedAt", "claimedAt")
        .expression_attribute_values(":covers", n(covers_from))
        .expression_attribute_values(":stale", n(now.timestamp() - STALE_AFTER.as_secs() as i64))
        .send()
        .await;
    match put {
        Ok(_) => Ok(Claimed::Won),
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
        {
            let held = dynamodb
                .get_item()
                .table_name(table)
                .key("role", AttributeValue::S(role_arn.to_owned()))
                .consistent_read(true)
                .send()
                .await;
            match held {
                Ok(out) => match out.item.as_ref().and_then(cutoff_of) {
                    Some(cutoff) => Ok(Claimed::Lost { cutoff }),
                    None => Err(Error::Unexpected(format!(
                        "the revocation claim for {role_arn} in table {table} has no readable cut-off"
                    ))),
                },
                Err(e) => Ok(Claimed::Unavailable(Error::aws("dynamodb", "GetItem", e).to_string())),
            }
        }
        Err(e) => Ok(Claimed::Unavailable(Error::aws("dynamodb", "PutItem", e).to_string())),
    }
}

fn cutoff_of(item: &HashMap<String, AttributeValue>) -> Option<DateTime<Utc>> {
    let millis = item.get("cutoff")?.as_n().ok()?.parse::<i64>().ok()?;
    DateTime::from_timestamp_millis(millis)
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/WebAppRole";

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    async fn claim_at(dynamodb: &Client) -> Result<Claimed> {
        let now = at("2026-11-22T10:00:07.600Z");
        claim(
            dynamodb,
            "claims",
            ROLE,
            at("2026-11-22T10:00:07Z"),
            at("2026-11-22T09:58:00.250Z"),
            "f1",
            now,
        )
        .await
    }

    #[tokio::test]
    async fn the_first_run_wins_and_a_covering_claim_is_not_overridden() {
        let won = mock!(Client::put_item)
            .match_requests(|r| {
                let values = r.expression_attribute_values().unwrap();
                r.table_name() == Some("claims")
                    && r.item().unwrap()["role"] == AttributeValue::S(ROLE.into())
                    && r.item().unwrap()["cutoff"] == AttributeValue::N("1795341607000".into())
                    // First seen, in milliseconds; and a minute before now, in seconds.
                    && values[":covers"] == AttributeValue::N("1795341480250".into())
                    && values[":stale"] == AttributeValue::N("1795341547".into())
            })
            .then_output(|| PutItemOutput::builder().build());
        let dynamodb = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&won]);
        assert_eq!(claim_at(&dynamodb).await.unwrap(), Claimed::Won);

        let taken = mock!(Client::put_item).then_error(|| {
            PutItemError::ConditionalCheckFailedException(ConditionalCheckFailedException::builder().build())
        });
        let held = mock!(Client::get_item)
            .match_requests(|r| r.consistent_read() == Some(true))
            .then_output(|| {
                GetItemOutput::builder()
                    .item("cutoff", AttributeValue::N("1795341600000".into()))
                    .build()
            });
        let dynamodb = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&taken, &held]);
        assert_eq!(
            claim_at(&dynamodb).await.unwrap(),
            Claimed::Lost {
                cutoff: at("2026-11-22T10:00:00Z")
            }
        );
    }

    #[tokio::test]
    async fn a_table_that_fails_leaves_the_run_to_write_without_a_claim() {
        let throttled = mock!(Client::put_item).then_error(|| {
            PutItemError::generic(
                aws_sdk_dynamodb::error::ErrorMetadata::builder()
                    .code("ProvisionedThroughputExceededException")
                    .build(),
            )
        });
        let dynamodb = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&throttled]);
        match claim_at(&dynamodb).await.unwrap() {
            Claimed::Unavailable(why) => assert!(why.contains("ProvisionedThroughputExceeded"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
