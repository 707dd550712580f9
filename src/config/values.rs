//! The rules the variables' values share, and what a bad one is.

use crate::error::{Error, Result};

/// The schedule group of the release and follow-up schedules, unless set.
pub const DEFAULT_AUTO_RELEASE_GROUP: &str = "exfil-responder";

pub fn bad(var: &'static str, message: impl Into<String>) -> Error {
    Error::Config {
        var,
        message: message.into(),
    }
}

/// `arn:<partition>:<service>:…` holding `resource` (`:role/`, `:function:`), with no blank.
pub fn is_arn(value: &str, service: &str, resource: &str) -> bool {
    let mut parts = value.splitn(4, ':');
    parts.next() == Some("arn")
        && parts.next().is_some_and(|p| p.starts_with("aws"))
        && parts.next() == Some(service)
        && value.contains(resource)
        && !value.contains(char::is_whitespace)
        && value.len() <= 2048
}

pub fn parse_in_range(var: &'static str, value: &str, min: u64, max: u64) -> Result<u64> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(bad(var, format!("{value:?} is not a whole number from {min} to {max}"))),
    }
}
