//! CloudTrail's event history: every event signed with one access key, in one account and region.
//!
//! `LookupEvents` is limited to 2 requests per second per account and Region, and answers at most
//! 50 events a page (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html).
//! Every request of this process, retries included, waits its turn in [`Pace`], and the client's
//! own retries are off (`clients::cloudtrail_retries`): the SDK's jittered backoff may retry
//! sooner than the limit allows. A throttled or failed request is retried here, in turn.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_cloudtrail::Client;
use aws_sdk_cloudtrail::config::http::HttpResponse;
use aws_sdk_cloudtrail::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudtrail::operation::lookup_events::LookupEventsError;
use aws_sdk_cloudtrail::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::error::{Error, Result};

/// CloudTrail's limit per account and Region, as the gap between two requests.
pub const GAP: Duration = Duration::from_millis(500);
/// The largest page LookupEvents answers.
pub const PAGE: i32 = 50;
/// Attempts per page: a throttled one waits its turn and a growing backoff before the next.
const ATTEMPTS: u32 = 4;

/// When each (account, Region) may next be asked, shared by every walk of the process.
#[derive(Default, Debug)]
pub struct Pace(Mutex<HashMap<(String, String), Instant>>);

impl Pace {
    /// Wait until `(account, region)` may be asked, `extra` later at the soonest.
    pub async fn turn(&self, account: &str, region: &str, extra: Duration) {
        let at = {
            let mut next = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let slot = next
                .entry((account.to_owned(), region.to_owned()))
                .or_insert_with(Instant::now);
            let at = (*slot).max(Instant::now() + extra);
            *slot = at + GAP;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// One event as LookupEvents lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub id: String,
    /// `EventTime`: where the event falls in the window (the record's own time is checked apart).
    pub time: Option<DateTime<Utc>>,
    /// `CloudTrailEvent`: the record, the JSON string CloudTrail keeps.
    pub record: Option<String>,
}

/// One page of events, as LookupEvents answered it: newest first.
pub struct Page {
    pub events: Vec<Listed>,
    pub next: Option<String>,
}

/// The one lookup attribute a request takes: the events signed with a key, or those of a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    AccessKeyId(&'a str),
    EventName(&'a str),
}

impl std::fmt::Display for Lookup<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AccessKeyId(key) => f.write_str(key),
            Self::EventName(name) => write!(f, "{name} events"),
        }
    }
}

/// The IAM region of a partition: CloudTrail logs IAM's global calls there
/// (https://docs.aws.amazon.com/IAM/latest/UserGuide/cloudtrail-integration.html).
pub fn iam_region(partition: &str) -> &'static str {
    match partition {
        "aws-cn" => "cn-north-1",
        "aws-us-gov" => "us-gov-west-1",
        _ => "us-east-1",
    }
}

/// The events one lookup asks for, in one account and region: what each of its pages names.
#[derive(Debug, Clone, Copy)]
pub struct Span<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub lookup: Lookup<'a>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// The page of `span` that `token` names (the first without), retried in turn when throttled or
/// failed.
pub async fn page(cloudtrail: &Client, pace: &Pace, span: &Span<'_>, token: Option<String>) -> Result<Page> {
    let (key, value) = match span.lookup {
        Lookup::AccessKeyId(key) => (LookupAttributeKey::AccessKeyId, key),
        Lookup::EventName(name) => (LookupAttributeKey::EventName, name),
    };
    let attribute = LookupAttribute::builder()
        .attribute_key(key)
        .attribute_value(value)
        .build()
        .map_err(|e| Error::Unexpected(format!("a lookup attribute: {e}")))?;
    let mut backoff = Duration::ZERO;
    let mut attempt = 1;
    loop {
        pace.turn(span.account, span.region, backoff).await;
        let sent = cloudtrail
            .lookup_events()
            .lookup_attributes(attribute.clone())
            .start_time(AwsDateTime::from_millis(span.since.timestamp_millis()))
            .end_time(AwsDateTime::from_millis(span.until.timestamp_millis()))
            .max_results(PAGE)
            .set_next_token(token.clone())
            .send()
            .await;
        match sent {
            Ok(out) => {
                let events = out
                    .events()
                    .iter()
                    .map(|e| Listed {
                        id: e.event_id().unwrap_or_default().to_owned(),
                        time: e
                            .event_time()
                            .and_then(|t| DateTime::from_timestamp_millis(t.to_millis().ok()?)),
                        record: e.cloud_trail_event().map(str::to_owned),
                    })
                    .collect();
                return Ok(Page {
                    events,
                    next: out.next_token().map(str::to_owned),
                });
            }
            Err(e) if attempt < ATTEMPTS && retryable(&e) => {
                attempt += 1;
                backoff = GAP * 2u32.pow(attempt - 1);
                tracing::warn!(
                    region = span.region,
                    attempt,
                    "LookupEvents throttled or failed; asking again in turn"
                );
            }
            Err(e) => return Err(Error::aws("cloudtrail", "LookupEvents", e)),
        }
    }
}

/// Throttling, CloudTrail's own failures, and an answer that never came: worth asking again.
/// A request CloudTrail refuses as wrong (bad attribute, time range) is not.
fn retryable(e: &SdkError<LookupEventsError, HttpResponse>) -> bool {
    match e {
        SdkError::ServiceError(s) => {
            s.err().code().is_some_and(|c| c.contains("Throttl")) || s.raw().status().as_u16() >= 500
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudtrail::error::ErrorMetadata;
    use aws_sdk_cloudtrail::operation::lookup_events::LookupEventsOutput;
    use aws_sdk_cloudtrail::types::Event;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    fn span() -> Span<'static> {
        Span {
            account: "111111111111",
            region: "us-east-1",
            lookup: Lookup::AccessKeyId("ASIAROOTKEY000000001"),
            since: Utc::now() - chrono::Duration::hours(1),
            until: Utc::now(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_page_is_asked_again_in_turn_and_a_wrong_request_is_not() {
        let throttled = mock!(Client::lookup_events)
            .then_error(|| LookupEventsError::generic(ErrorMetadata::builder().code("ThrottlingException").build()));
        let page = mock!(Client::lookup_events)
            .match_requests(|r| r.max_results() == Some(PAGE) && r.next_token() == Some("t1"))
            .then_output(|| {
                LookupEventsOutput::builder()
                    .events(Event::builder().event_id("e-1").cloud_trail_event("{}").build())
                    .next_token("t2")
                    .build()
            });
        // As built (`clients::Clients::new`): the SDK's own retries off, this module's in turn.
        let client = mock_client!(aws_sdk_cloudtrail, RuleMode::Sequential, [&throttled, &page], |c| {
            c.retry_config(aws_sdk_cloudtrail::config::retry::RetryConfig::disabled())
        });
        let pace = Pace::default();
        let started = Instant::now();
        let got = super::page(&client, &pace, &span(), Some("t1".into())).await.unwrap();
        let listed = Listed {
            id: "e-1".into(),
            time: None,
            record: Some("{}".into()),
        };
        assert_eq!(got.events, [listed]);
        assert_eq!(got.next.as_deref(), Some("t2"));
        assert_eq!((throttled.num_calls(), page.num_calls()), (1, 1));
        // The retry waited its turn and a backoff: never two requests within CloudTrail's gap.
        assert!(Instant::now() - started >= GAP, "{:?}", Instant::now() - started);

        let wrong = mock!(Client::lookup_events).then_error(|| {
            LookupEventsError::generic(ErrorMetadata::builder().code("InvalidTimeRangeException").build())
        });
        let client = mock_client!(aws_sdk_cloudtrail, RuleMode::Sequential, [&wrong], |c| {
            c.retry_config(aws_sdk_cloudtrail::config::retry::RetryConfig::disabled())
        });
        let err = super::page(&client, &pace, &span(), None)
            .await
            .err()
            .expect("an error");
        assert_eq!(err.aws_code(), Some("InvalidTimeRangeException"));
        assert_eq!(wrong.num_calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn turns_are_kept_per_account_and_region() {
        let pace = Pace::default();
        let started = Instant::now();
        pace.turn("1", "us-east-1", Duration::ZERO).await;
        pace.turn("1", "eu-west-1", Duration::ZERO).await;
        assert_eq!(Instant::now(), started, "another region's turn is its own");
        pace.turn("1", "us-east-1", Duration::ZERO).await;
        assert_eq!(Instant::now() - started, GAP);
    }
}
