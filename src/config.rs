//! Configuration from environment variables, read and validated once at start-up.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::names::RoleName;
use crate::rules::Action;

pub const DEFAULT_ACTION_TAG_KEY: &str = "exfil-responder:action";
pub const DEFAULT_METRICS_NAMESPACE: &str = "ExfilResponder";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `ACTION_TAG_KEY`: the tag that chooses an instance's action.
    pub action_tag_key: String,
    /// `DEFAULT_ACTION`: the action when neither the instance nor the role is tagged.
    pub default_action: Action,
    /// `PROTECTED_ROLES`: comma-separated role names that are never changed.
    pub protected_roles: Vec<String>,
    /// `QUARANTINE_PROFILE`: instance-profile name attached to isolated instances, if any.
    pub quarantine_profile: Option<String>,
    /// `CYCLE_TIMEOUT_SECONDS`: bound on each wait for an association to settle.
    pub cycle_timeout: Duration,
    /// `FLEET_CONCURRENCY`: instances worked on at once.
    pub fleet_concurrency: usize,
    /// `DRY_RUN`: read and plan, never write.
    pub dry_run: bool,
    /// `METRICS_NAMESPACE`: the CloudWatch namespace of the metrics logged in Lambda.
    pub metrics_namespace: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            action_tag_key: DEFAULT_ACTION_TAG_KEY.to_owned(),
            default_action: Action::Revoke,
            protected_roles: Vec::new(),
            quarantine_profile: None,
            cycle_timeout: Duration::from_secs(60),
            fleet_concurrency: 4,
            dry_run: false,
            metrics_namespace: DEFAULT_METRICS_NAMESPACE.to_owned(),
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Tests pass a closure instead of mutating the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut config = Self::default();

        if let Some(key) = get("ACTION_TAG_KEY") {
            // EC2 tag keys: up to 128 characters, not starting with the reserved `aws:` prefix.
            if key.chars().count() > 128 || key.to_ascii_lowercase().starts_with("aws:") {
                return Err(bad("ACTION_TAG_KEY", format!("{key:?} is not a usable EC2 tag key")));
            }
            config.action_tag_key = key;
        }
        if let Some(value) = get("DEFAULT_ACTION") {
            config.default_action = value.parse().map_err(|e| bad("DEFAULT_ACTION", e))?;
        }
        if let Some(value) = get("PROTECTED_ROLES") {
            config.protected_roles = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| RoleName::parse(s).map(|r| r.as_str().to_owned()))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| bad("PROTECTED_ROLES", e))?;
        }
        if let Some(value) = get("QUARANTINE_PROFILE") {
            // Instance-profile names follow the role-name rules.
            RoleName::parse(&value)
                .map_err(|e| bad("QUARANTINE_PROFILE", e.replace("role name", "instance-profile name")))?;
            config.quarantine_profile = Some(value);
        }
        if let Some(value) = get("CYCLE_TIMEOUT_SECONDS") {
            let secs = parse_in_range("CYCLE_TIMEOUT_SECONDS", &value, 1, 600)?;
            config.cycle_timeout = Duration::from_secs(secs);
        }
        if let Some(value) = get("FLEET_CONCURRENCY") {
            config.fleet_concurrency = parse_in_range("FLEET_CONCURRENCY", &value, 1, 50)? as usize;
        }
        if let Some(value) = get("DRY_RUN") {
            config.dry_run = match value.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => return Err(bad("DRY_RUN", format!("{value:?} is not true or false"))),
            };
        }
        if let Some(value) = get("METRICS_NAMESPACE") {
            // CloudWatch's rule; `AWS/` is reserved for AWS's own namespaces.
            let allowed = |c: char| c.is_ascii_alphanumeric() || " ._/#:-".contains(c);
            if value.len() > 255 || !value.chars().all(allowed) || value.starts_with("AWS/") {
                return Err(bad(
                    "METRICS_NAMESPACE",
                    format!("{value:?} is not a usable CloudWatch namespace"),
                ));
            }
            config.metrics_namespace = value;
        }
        Ok(config)
    }
}

fn bad(var: &'static str, message: impl Into<String>) -> Error {
    Error::Config {
        var,
        message: message.into(),
    }
}

fn parse_in_range(var: &'static str, value: &str, min: u64, max: u64) -> Result<u64> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(bad(var, format!("{value:?} is not a whole number from {min} to {max}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Config> {
        Config::from_lookup(|k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_are_the_safe_ones() {
        let config = from(&[]).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.default_action, Action::Revoke);
        assert!(!config.dry_run);
    }

    #[test]
    fn every_variable_is_read() {
        let config = from(&[
            ("ACTION_TAG_KEY", "ir:action"),
            ("DEFAULT_ACTION", "cycle"),
            ("PROTECTED_ROLES", " BreakGlass, Admin ,"),
            ("QUARANTINE_PROFILE", "Quarantine"),
            ("CYCLE_TIMEOUT_SECONDS", "90"),
            ("FLEET_CONCURRENCY", "8"),
            ("DRY_RUN", "TRUE"),
            ("METRICS_NAMESPACE", "Security/IR"),
        ])
        .unwrap();
        assert_eq!(config.action_tag_key, "ir:action");
        assert_eq!(config.default_action, Action::Cycle);
        assert_eq!(config.protected_roles, ["BreakGlass", "Admin"]);
        assert_eq!(config.quarantine_profile.as_deref(), Some("Quarantine"));
        assert_eq!(config.cycle_timeout, Duration::from_secs(90));
        assert_eq!(config.fleet_concurrency, 8);
        assert!(config.dry_run);
        assert_eq!(config.metrics_namespace, "Security/IR");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("DEFAULT_ACTION", "nuke"),
            ("PROTECTED_ROLES", "ok,bad*name"),
            ("QUARANTINE_PROFILE", "a/b"),
            ("CYCLE_TIMEOUT_SECONDS", "0"),
            ("CYCLE_TIMEOUT_SECONDS", "ten"),
            ("FLEET_CONCURRENCY", "51"),
            ("DRY_RUN", "maybe"),
            ("ACTION_TAG_KEY", "aws:reserved"),
            ("METRICS_NAMESPACE", "AWS/Lambda"),
            ("METRICS_NAMESPACE", "bad{namespace}"),
        ] {
            let err = from(&[(var, value)]).unwrap_err();
            assert!(
                matches!(&err, Error::Config { var: v, .. } if *v == var),
                "{var}={value}: {err}"
            );
            assert!(err.to_string().contains(var), "{err}");
        }
    }
}
