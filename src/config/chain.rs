//! `CHAIN` and what the walk of a stolen key's trail needs: how far it follows the key, and the
//! follow-up walks it schedules (CloudTrail delivers an event about 5 minutes after the call, so
//! a walk at containment time sees little: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/how-cloudtrail-works.html).

use super::values::{DEFAULT_AUTO_RELEASE_GROUP, bad, is_arn, parse_in_range};
use crate::error::Result;

/// What the walk does with what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainMode {
    /// No walk.
    Off,
    /// Walk and list what was found; change nothing.
    Report,
    /// Walk, revoke the roles the key reached and deactivate the keys it made.
    Contain,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// `CHAIN`: `contain` unless set (the library's `Config::default()` walks no trail).
    pub mode: ChainMode,
    /// `CHAIN_DEPTH`: how many hops of AssumeRole are followed from the stolen key (1 to 5).
    pub depth: usize,
    /// `CHAIN_FOLLOW_UP_MINUTES`: when, after a containment, the trail is walked again
    /// (comma-separated minutes, 5 to 1440; `none` for none).
    pub follow_up_minutes: Vec<u32>,
    /// Where the follow-up schedules go and what they invoke; without it, none are made.
    pub schedules: Option<FollowUps>,
}

/// `CHAIN_SCHEDULER_ROLE_ARN`, `CHAIN_SCHEDULE_GROUP`, `CHAIN_FUNCTION_ARN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUps {
    pub scheduler_role_arn: String,
    pub group: String,
    /// In Lambda, unless set, the invoked function's own ARN.
    pub function_arn: Option<String>,
}

pub const DEFAULT_DEPTH: usize = 3;
pub const DEFAULT_FOLLOW_UP_MINUTES: [u32; 2] = [15, 60];

impl Chain {
    pub fn off() -> Self {
        Self {
            mode: ChainMode::Off,
            depth: DEFAULT_DEPTH,
            follow_up_minutes: DEFAULT_FOLLOW_UP_MINUTES.to_vec(),
            schedules: None,
        }
    }
}

impl std::str::FromStr for ChainMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "off" => Ok(Self::Off),
            "report" => Ok(Self::Report),
            "contain" => Ok(Self::Contain),
            other => Err(format!("{other:?} is not off, report or contain")),
        }
    }
}

pub(super) fn chain(get: &dyn Fn(&str) -> Option<String>) -> Result<Chain> {
    let mode = match get("CHAIN") {
        Some(v) => v.parse().map_err(|e| bad("CHAIN", e))?,
        None => ChainMode::Contain,
    };
    let depth = match get("CHAIN_DEPTH") {
        Some(v) => parse_in_range("CHAIN_DEPTH", &v, 1, 5)? as usize,
        None => DEFAULT_DEPTH,
    };
    let follow_up_minutes = match get("CHAIN_FOLLOW_UP_MINUTES") {
        Some(v) => minutes(&v)?,
        None => DEFAULT_FOLLOW_UP_MINUTES.to_vec(),
    };
    let schedules = match get("CHAIN_SCHEDULER_ROLE_ARN").filter(|r| !r.is_empty()) {
        None => None,
        Some(role) if !is_arn(&role, "iam", ":role/") => {
            return Err(bad(
                "CHAIN_SCHEDULER_ROLE_ARN",
                format!("{role:?} is not an IAM role ARN"),
            ));
        }
        Some(role) => Some(FollowUps {
            scheduler_role_arn: role,
            group: group(get("CHAIN_SCHEDULE_GROUP"))?,
            function_arn: function(get("CHAIN_FUNCTION_ARN"))?,
        }),
    };
    Ok(Chain {
        mode,
        depth,
        follow_up_minutes,
        schedules,
    })
}

fn minutes(value: &str) -> Result<Vec<u32>> {
    if value == "none" {
        return Ok(Vec::new());
    }
    let mut minutes = (value.split(',').map(str::trim).filter(|m| !m.is_empty()))
        .map(|m| parse_in_range("CHAIN_FOLLOW_UP_MINUTES", m, 5, 1440).map(|n| n as u32))
        .collect::<Result<Vec<_>>>()?;
    minutes.sort_unstable();
    minutes.dedup();
    if minutes.len() > 4 {
        return Err(bad("CHAIN_FOLLOW_UP_MINUTES", "at most 4 follow-up walks"));
    }
    Ok(minutes)
}

fn group(value: Option<String>) -> Result<String> {
    let group = value.unwrap_or_else(|| DEFAULT_AUTO_RELEASE_GROUP.to_owned());
    if !crate::plan::auto_release::is_schedule_name(&group) {
        return Err(bad(
            "CHAIN_SCHEDULE_GROUP",
            format!("{group:?} is not a schedule group name (1 to 64 of [0-9A-Za-z-_.])"),
        ));
    }
    Ok(group)
}

fn function(value: Option<String>) -> Result<Option<String>> {
    match value.filter(|v| !v.is_empty()) {
        Some(arn) if !is_arn(&arn, "lambda", ":function:") => Err(bad(
            "CHAIN_FUNCTION_ARN",
            format!("{arn:?} is not a Lambda function ARN"),
        )),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Chain> {
        chain(&|name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn unset_the_walk_contains_three_hops_and_walks_again_at_15_and_60_minutes() {
        let c = from(&[]).unwrap();
        assert_eq!(
            (c.mode, c.depth, c.follow_up_minutes.clone()),
            (ChainMode::Contain, 3, vec![15, 60])
        );
        assert_eq!(c.schedules, None);
        let c = from(&[
            ("CHAIN", "report"),
            ("CHAIN_DEPTH", "1"),
            ("CHAIN_FOLLOW_UP_MINUTES", "60, 15,15"),
            ("CHAIN_SCHEDULER_ROLE_ARN", "arn:aws:iam::111111111111:role/s"),
        ])
        .unwrap();
        assert_eq!(
            (c.mode, c.depth, c.follow_up_minutes),
            (ChainMode::Report, 1, vec![15, 60])
        );
        assert_eq!(c.schedules.unwrap().group, "exfil-responder");
        assert_eq!(
            from(&[("CHAIN_FOLLOW_UP_MINUTES", "none")]).unwrap().follow_up_minutes,
            Vec::<u32>::new()
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("CHAIN", "on"),
            ("CHAIN_DEPTH", "9"),
            ("CHAIN_FOLLOW_UP_MINUTES", "1"),
            ("CHAIN_FOLLOW_UP_MINUTES", "5,6,7,8,9"),
            ("CHAIN_SCHEDULER_ROLE_ARN", "role"),
        ] {
            let err = from(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(var), "{var}={value}: {err}");
        }
    }
}
