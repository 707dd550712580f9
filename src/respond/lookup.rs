//! One key's calls (or one call's records) in one account and region: every page of a window,
//! newest first as `LookupEvents` answers
//! (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html), at
//! CloudTrail's rate ([`cloudtrail::Pace`]).
//!
//! There is no cap on the pages: an attacker's script that makes thousands of calls must not hide
//! the one `AssumeRole` among them. What bounds the read is the window (its end settles after the
//! key's revocation, [`crate::plan::chain::until`]) and the invocation's time: the read stops
//! while [`MARGIN`] is still left for what follows it, and says which part of the window it did
//! not read. Newest first, that part is always the window's oldest: from its start to the oldest
//! event read.

use std::time::Duration;

use aws_sdk_cloudtrail::Client;
use chrono::{DateTime, Utc};

use crate::api::ApiCall;
use crate::aws::cloudtrail::{self, Listed, Pace, Span};
use crate::error::Error;
use crate::respond::journal::Journal;

/// What a read leaves before the invocation's reserve, for the actions on what it found and the
/// follow-ups' schedules: two or three AWS calls each.
pub const MARGIN: Duration = Duration::from_secs(20);

/// A key's window in one account and region, and how much of it to read.
pub struct Window<'a> {
    pub span: Span<'a>,
    /// At most this many pages (a read before the write); the walk reads all.
    pub pages: Option<usize>,
}

/// What was read of a window.
pub struct Read {
    pub events: Vec<Listed>,
    pub pages: usize,
    /// The part not read; None: the window was read whole.
    pub unread: Option<Left>,
}

/// The part of a window not read: from `from` to `to`, both included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub why: String,
    /// CloudTrail failed in a way another attempt may not meet (throttled, unavailable, no
    /// answer): not a refusal, nor the time or page budget, which a new attempt meets again.
    pub transient: bool,
}

/// Every page of `window`, until the last or until the invocation's time or CloudTrail stops it.
pub async fn window(client: &Client, pace: &Pace, steps: &Journal, window: Window<'_>) -> Read {
    let mut read = Read {
        events: Vec::new(),
        pages: 0,
        unread: None,
    };
    // An empty window (its end settled before CloudTrail's history begins): nothing to ask for,
    // and CloudTrail refuses a start after the end.
    let span = &window.span;
    if span.since >= span.until {
        return read;
    }
    let mut token = None;
    let (why, transient) = loop {
        if steps.bounded(MARGIN) < MARGIN {
            break ("the invocation's time ran out".to_owned(), false);
        }
        if window.pages.is_some_and(|most| read.pages >= most) {
            break (format!("{} pages read, as many as this read takes", read.pages), false);
        }
        let target = format!("{} in {}", span.lookup, span.region);
        let page = steps.run(
            ApiCall::LookupEvents,
            &target,
            cloudtrail::page(client, pace, span, token.take()),
        );
        match page.await {
            Ok(page) => {
                read.pages += 1;
                read.events.extend(page.events);
                match page.next {
                    Some(next) => token = Some(next),
                    None => return read,
                }
            }
            Err(e) => {
                let refused = e
                    .aws_code()
                    .is_some_and(|c| c.contains("AccessDenied") || c.starts_with("Invalid"));
                let time = matches!(e, Error::DeadlineNear { .. });
                break (format!("LookupEvents failed: {e}"), !refused && !time);
            }
        }
    };
    // Newest first: what is left is older than the oldest event read (the same second may hold
    // more, so it is included).
    let oldest = read.events.iter().filter_map(|e| e.time).min();
    let to = oldest.unwrap_or(span.until).min(span.until);
    read.unread = Some(Left {
        from: span.since,
        to,
        why,
        transient,
    });
    read
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudtrail::operation::lookup_events::LookupEventsOutput;
    use aws_sdk_cloudtrail::primitives::DateTime as AwsDateTime;
    use aws_sdk_cloudtrail::types::Event;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;
    use crate::aws::cloudtrail::Lookup;
    use crate::wait::Deadline;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn window() -> Window<'static> {
        Window {
            span: Span {
                account: "111111111111",
                region: "us-east-1",
                lookup: Lookup::AccessKeyId("ASIAROOTKEY000000001"),
                since: at("2026-12-03T09:45:00Z"),
                until: at("2026-12-03T10:05:00Z"),
            },
            pages: None,
        }
    }

    /// Page `n` of an endless trail, one event a second further back each page.
    fn page(n: i64) -> LookupEventsOutput {
        let time = at("2026-12-03T10:00:00Z") - chrono::Duration::seconds(n);
        LookupEventsOutput::builder()
            .events(
                Event::builder()
                    .event_id(format!("e-{n}"))
                    .event_time(AwsDateTime::from_millis(time.timestamp_millis()))
                    .cloud_trail_event("{}")
                    .build(),
            )
            .next_token(format!("t{n}"))
            .build()
    }

    /// No page cap: the read goes on while time is left, and then names what it did not read.
    #[tokio::test(start_paused = true)]
    async fn every_page_is_read_until_time_runs_out_and_the_rest_is_named() {
        let calls = std::sync::atomic::AtomicI64::new(0);
        let endless = mock!(Client::lookup_events)
            .then_output(move || page(calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
        let client = mock_client!(aws_sdk_cloudtrail, RuleMode::MatchAny, [&endless], |c| {
            c.retry_config(aws_sdk_cloudtrail::config::retry::RetryConfig::disabled())
        });
        // 60 s before the reserve: 40 s of it read at 2 pages a second, the last 20 s kept.
        let steps = Journal::new("f-1", Deadline::after(Duration::from_secs(87), Duration::from_secs(27)));
        let read = super::window(&client, &Pace::default(), &steps, window()).await;
        assert!((80..=82).contains(&read.pages), "{} pages", read.pages);
        assert_eq!(read.events.len(), read.pages);
        let left = read.unread.expect("the rest is named");
        assert_eq!(left.from, window().span.since);
        let oldest = at("2026-12-03T10:00:00Z") - chrono::Duration::seconds(read.pages as i64 - 1);
        assert_eq!(left.to, oldest);
        assert!(left.why.contains("time ran out") && !left.transient, "{left:?}");
        assert!(steps.bounded(MARGIN) >= MARGIN - Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_read_to_its_last_page_leaves_nothing_unread() {
        let first = mock!(Client::lookup_events)
            .match_requests(|r| r.next_token().is_none())
            .then_output(|| page(0));
        let last = mock!(Client::lookup_events)
            .match_requests(|r| r.next_token() == Some("t0"))
            .then_output(|| LookupEventsOutput::builder().build());
        let client = mock_client!(aws_sdk_cloudtrail, RuleMode::MatchAny, [&first, &last], |c| {
            c.retry_config(aws_sdk_cloudtrail::config::retry::RetryConfig::disabled())
        });
        let steps = Journal::new("f-1", Deadline::none());
        let read = super::window(&client, &Pace::default(), &steps, window()).await;
        assert_eq!((read.pages, read.events.len()), (2, 1));
        assert_eq!(read.unread, None);
    }
}
