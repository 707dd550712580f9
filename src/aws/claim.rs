//! The revocation claim: when several runs for one role start together (duplicate deliveries,
//! several findings about one role), one of them writes the cut-off and the others adopt it.
//!
//! IAM has no conditional write, so two runs that both read "no revocation" would both write one,
//! each later than the last. The claim is a DynamoDB conditional put on the role ([`key`]): the first
//! run to put it writes the policy; the others wait (bounded) for that policy to show in IAM.
//! It only saves writes: correctness never rests on it. A claim the table cannot take (throttled,
//! denied, unreachable) is skipped with a warning, and the run writes as it would without one.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
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

/// The claim's key for a role: its account and name. IAM role names are unique in an account
/// whatever their path, and both are known from the finding, before IAM is asked.
pub fn key(account: &str, role: &str) -> String {
    format!("{account}/{role}")
}

/// Claim the revocation of the role `key` names at `cutoff`. An existing claim is overridden only when its
/// cut-off does not cover `first_seen` (an older incident), or it went stale without its policy.
pub async fn claim(
    dynamodb: &Client,
    table: &str,
    key: &str,
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
        .item("role", AttributeValue::S(key.to_owned()))
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
        // The claim that stands comes back with the refusal: no second read.
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match put {
        Ok(_) => Ok(Claimed::Won),
        Err(ref e) if let Some(PutItemError::ConditionalCheckFailedException(failed)) = e.as_service_error() => {
            if let Some(cutoff) = failed.item.as_ref().and_then(cutoff_of) {
                return Ok(Claimed::Lost { cutoff });
            }
            let held = dynamodb
                .get_item()
                .table_name(table)
                .key("role", AttributeValue::S(key.to_owned()))
                .consistent_read(true)
                .send()
                .await;
            match held {
                Ok(out) => match out.item.as_ref().and_then(cutoff_of) {
                    Some(cutoff) => Ok(Claimed::Lost { cutoff }),
                    None => Err(Error::Unexpected(format!(
                        "the revocation claim for {key} in table {table} has no readable cut-off"
                    ))),
                },
                Err(e) => Ok(Claimed::Unavailable(Error::aws("dynamodb", "GetItem", e).to_string())),
            }
        }
        Err(e) => Ok(Claimed::Unavailable(Error::aws("dynamodb", "PutItem", e).to_string())),
    }
}

/// Give up a claim this run took but will not write (its finding was refused, or the revocation
/// was kept): a concurrent run would otherwise wait for a write that never comes. Only if it is
/// still ours, as taken: a claim another run took over since is left alone.
pub async fn release(dynamodb: &Client, table: &str, key: &str, cutoff: DateTime<Utc>, finding_id: &str) -> Result<()> {
    let deleted = dynamodb
        .delete_item()
        .table_name(table)
        .key("role", AttributeValue::S(key.to_owned()))
        .condition_expression("#cutoff = :cutoff AND #findingId = :findingId")
        .expression_attribute_names("#cutoff", "cutoff")
        .expression_attribute_names("#findingId", "findingId")
        .expression_attribute_values(":cutoff", AttributeValue::N(cutoff.timestamp_millis().to_string()))
        .expression_attribute_values(":findingId", AttributeValue::S(finding_id.to_owned()))
        .send()
        .await;
    match deleted {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(Error::aws("dynamodb", "DeleteItem", e)),
    }
}

fn cutoff_of(item: &HashMap<String, AttributeValue>) -> Option<DateTime<Utc>> {
    let millis = item.get("cutoff")?.as_n().ok()?.parse::<i64>().ok()?;
    DateTime::from_timestamp_millis(millis)
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    const ROLE: &str = "123456789012/WebAppRole";

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
    async fn a_refusal_that_returns_the_standing_claim_needs_no_second_read() {
        let taken = mock!(Client::put_item)
            .match_requests(|r| {
                r.return_values_on_condition_check_failure() == Some(&ReturnValuesOnConditionCheckFailure::AllOld)
            })
            .then_error(|| {
                let standing = HashMap::from([("cutoff".to_owned(), AttributeValue::N("1795341600000".into()))]);
                PutItemError::ConditionalCheckFailedException(
                    ConditionalCheckFailedException::builder()
                        .set_item(Some(standing))
                        .build(),
                )
            });
        let never = mock!(Client::get_item).then_output(|| GetItemOutput::builder().build());
        let dynamodb = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&taken, &never]);
        assert_eq!(
            claim_at(&dynamodb).await.unwrap(),
            Claimed::Lost {
                cutoff: at("2026-11-22T10:00:00Z")
            }
        );
        assert_eq!((taken.num_calls(), never.num_calls()), (1, 0));
    }

    #[test]
    fn a_role_is_claimed_by_account_and_name_whatever_its_path() {
        let arn = "arn:aws:iam::123456789012:role/service/WebAppRole";
        assert_eq!(key(crate::names::account_of_arn(arn), "WebAppRole"), ROLE);
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
