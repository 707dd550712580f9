//! Bounded waits: polling with backoff, and the invocation's deadline. No wait here is unbounded.

use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio::time::{Instant, sleep};

use crate::error::{Error, Result};

const FIRST_POLL: Duration = Duration::from_millis(250);
const MAX_POLL: Duration = Duration::from_secs(4);

/// Poll with exponential backoff until `check` answers `Some`, for at most `timeout`.
pub async fn poll<T, F, Fut>(timeout: Duration, what: String, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut delay = FIRST_POLL;
    loop {
        if let Some(done) = check().await? {
            return Ok(done);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout {
                what,
                seconds: timeout.as_secs(),
            });
        }
        sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(MAX_POLL);
    }
}

/// The invocation's deadline, as Lambda gives it, and what to keep in hand before it.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Option<Instant>,
    reserve: Duration,
}

impl Deadline {
    /// No deadline: the CLI and the tests that do not exercise one.
    pub fn none() -> Self {
        Self {
            at: None,
            reserve: Duration::ZERO,
        }
    }

    /// Lambda's deadline (wall-clock milliseconds since the epoch), keeping `reserve` in hand.
    pub fn at_epoch_millis(deadline_ms: u64, reserve: Duration) -> Self {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms);
        let left = wall.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
        Self::after(left, reserve)
    }

    pub fn after(left: Duration, reserve: Duration) -> Self {
        Self {
            at: Some(Instant::now() + left),
            reserve,
        }
    }

    /// Time left before the deadline, if there is one.
    pub fn remaining(&self) -> Option<Duration> {
        self.at.map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Whether a step may start: only with more than the reserve left.
    pub fn allows_a_step(&self) -> std::result::Result<(), Duration> {
        match self.remaining() {
            Some(left) if left <= self.reserve => Err(left),
            _ => Ok(()),
        }
    }

    pub fn reserve(&self) -> Duration {
        self.reserve
    }

    /// A wait of up to `timeout`, shortened so that it ends with the reserve still in hand.
    pub fn cap(&self, timeout: Duration) -> Duration {
        match self.remaining() {
            Some(left) => timeout.min(left.saturating_sub(self.reserve)),
            None => timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_deadline_refuses_steps_inside_the_reserve_and_caps_waits() {
        let deadline = Deadline::after(Duration::from_secs(40), Duration::from_secs(27));
        assert!(deadline.allows_a_step().is_ok());
        assert_eq!(deadline.cap(Duration::from_secs(60)), Duration::from_secs(13));
        tokio::time::advance(Duration::from_secs(14)).await;
        assert_eq!(deadline.allows_a_step(), Err(Duration::from_secs(26)));
        assert_eq!(deadline.cap(Duration::from_secs(60)), Duration::ZERO);
        assert!(Deadline::none().allows_a_step().is_ok());
        assert_eq!(Deadline::none().cap(Duration::from_secs(60)), Duration::from_secs(60));
    }

    #[test]
    fn lambdas_epoch_deadline_becomes_time_left() {
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let deadline = Deadline::at_epoch_millis(now_ms + 60_000, Duration::from_secs(27));
        let left = deadline.remaining().unwrap();
        assert!(
            left <= Duration::from_secs(60) && left > Duration::from_secs(55),
            "{left:?}"
        );
        let past = Deadline::at_epoch_millis(now_ms - 1_000, Duration::from_secs(1));
        assert_eq!(past.remaining(), Some(Duration::ZERO));
        assert!(past.allows_a_step().is_err());
    }
}
