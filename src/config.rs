//! Configuration from environment variables, read and validated once at start-up.

use std::time::Duration;

pub mod chain;
mod values;

use crate::error::Result;
use crate::names::RoleName;
use crate::rules::Action;
pub use chain::{Chain, ChainMode};
pub use values::DEFAULT_AUTO_RELEASE_GROUP;
use values::{bad, is_arn, parse_in_range};

pub const DEFAULT_ACTION_TAG_KEY: &str = "exfil-responder:action";
pub const DEFAULT_METRICS_NAMESPACE: &str = "ExfilResponder";

/// The shortest `REVOKE_HOLD_HOURS`: a role session's longest life (`MaxSessionDuration`,
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_update-role-settings.html).
pub const MIN_REVOKE_HOLD_HOURS: u64 = 12;

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
    /// `FLEET_CONCURRENCY`: instances between their first step other than a mark and their attach
    /// at once.
    pub fleet_concurrency: usize,
    /// `DRY_RUN`: read and plan, never write.
    pub dry_run: bool,
    /// `REVOKE_HOLD_HOURS`: how long after its cut-off a revocation may be released unforced:
    /// by then every token issued before it has expired. Role sessions last at most 12 hours
    /// (`MaxSessionDuration`), so it is 12 at least: a shorter hold would let a release give a
    /// stolen session its power back. A release sooner is for a person to force, with a reason.
    pub revoke_hold_hours: u32,
    /// `FORENSICS=snapshot`: before isolating an instance, protect it from termination, make a
    /// shutdown stop it, and snapshot its EBS volumes (`off`, the default: none of that).
    pub forensic_snapshots: bool,
    /// `HARDEN=imdsv2`: require IMDSv2 on the named instance (and siblings tagged for it), and
    /// report which instances using the role still allow IMDSv1 (`off`, the default).
    pub require_imdsv2: bool,
    /// `AUTO_RELEASE=true`: after a containment, schedule the role's release for when its hold
    /// is over (`false`, the default: a person releases).
    pub auto_release: Option<AutoRelease>,
    /// `METRICS_NAMESPACE`: the CloudWatch namespace of the metrics logged in Lambda.
    pub metrics_namespace: String,
    /// `MEMBER_ROLE_NAME`: the role assumed in a finding's account when it is not ours. Without
    /// it, findings for other accounts are skipped.
    pub member_role_name: Option<String>,
    /// `MEMBER_ROLE_EXTERNAL_ID`: the external id the member role's trust policy requires, if any.
    pub member_role_external_id: Option<String>,
    /// `ALLOWED_ACCOUNTS`: if set, only findings for these accounts are acted on.
    pub allowed_accounts: Vec<String>,
    /// `DENIED_ACCOUNTS`: findings for these accounts are never acted on; wins over the allow-list.
    pub denied_accounts: Vec<String>,
    /// `VERIFY_FINDINGS`: fetch each finding from GuardDuty and act only on what it confirms.
    pub verify_findings: bool,
    /// `ARCHIVE_FINDINGS`: archive the finding in GuardDuty after a successful remediation.
    pub archive_findings: bool,
    /// `SECURITY_HUB_UPDATES`: after a response, set the finding's Security Hub workflow
    /// (`BatchUpdateFindings`, from this account) and note the outcome.
    pub security_hub_updates: bool,
    /// `NOTIFICATION_TOPIC_ARN`: the SNS topic a person-readable summary of each response goes to,
    /// in the custom-notification format of AWS's chat integration (Slack, Teams, Chime).
    pub notification_topic_arn: Option<String>,
    /// `CLAIM_TABLE`: the DynamoDB table where concurrent runs claim a role's revocation, so that
    /// one run writes it. Without it, concurrent runs for one role may each write a cut-off.
    pub claim_table: Option<String>,
    /// `CONNECT_TIMEOUT_MS`, `ATTEMPT_TIMEOUT_MS`, `OPERATION_TIMEOUT_MS`: bounds on every AWS call.
    pub timeouts: Timeouts,
    /// `CHAIN`: after containment, follow the stolen key's trail in CloudTrail. On (`contain`)
    /// unless the environment says otherwise; `Config::default()`, the library's core alone, is off.
    pub chain: Chain,
}

/// Where the release schedules go and what they invoke (`AUTO_RELEASE=true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoRelease {
    /// `AUTO_RELEASE_ROLE_ARN`: the role EventBridge Scheduler assumes to invoke the function.
    pub scheduler_role_arn: String,
    /// `AUTO_RELEASE_GROUP`: the schedule group, in the function's own account and region.
    pub group: String,
    /// `AUTO_RELEASE_FUNCTION_ARN`: the function a schedule invokes. In Lambda, unless set, the
    /// invoked function's own ARN (the template cannot name it without a circular reference).
    pub function_arn: Option<String>,
}

/// Bounds on every AWS call: to connect, per attempt, and over all of an operation's retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub attempt: Duration,
    pub operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        // IAM, EC2 and STS answer in well under a second; three attempts fit in the operation bound.
        Self {
            connect: Duration::from_secs(3),
            attempt: Duration::from_secs(8),
            operation: Duration::from_secs(25),
        }
    }
}

impl Timeouts {
    /// What an invocation keeps in hand: no step starts with less left before Lambda's deadline,
    /// because one call may take the whole operation bound, and the report must still be written.
    pub fn deadline_reserve(&self) -> Duration {
        self.operation + Duration::from_secs(2)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            action_tag_key: DEFAULT_ACTION_TAG_KEY.to_owned(),
            default_action: Action::Revoke,
            protected_roles: Vec::new(),
            quarantine_profile: None,
            cycle_timeout: Duration::from_secs(60),
            // Chosen with make bench: see docs/src/performance.md, Fleet scaling.
            fleet_concurrency: 50,
            dry_run: false,
            revoke_hold_hours: 12,
            forensic_snapshots: false,
            require_imdsv2: false,
            auto_release: None,
            metrics_namespace: DEFAULT_METRICS_NAMESPACE.to_owned(),
            member_role_name: None,
            member_role_external_id: None,
            allowed_accounts: Vec::new(),
            denied_accounts: Vec::new(),
            verify_findings: true,
            archive_findings: false,
            security_hub_updates: false,
            notification_topic_arn: None,
            claim_table: None,
            timeouts: Timeouts::default(),
            chain: Chain::off(),
        }
    }
}

impl Config {
    /// `REVOKE_HOLD_HOURS` as a span: how long after a cut-off every token issued before it has
    /// expired, so its revocation may be released.
    pub fn revoke_hold(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::hours(i64::from(self.revoke_hold_hours))
    }

    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Tests pass a closure instead of mutating the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut config = Self::default();
        config.read_actions(&get)?;
        config.read_reach(&get)?;
        config.auto_release = auto_release(&get)?;
        config.chain = chain::chain(&get)?;
        config.timeouts = timeouts(&get)?;
        config.allowed_accounts = accounts("ALLOWED_ACCOUNTS", get("ALLOWED_ACCOUNTS"))?;
        config.denied_accounts = accounts("DENIED_ACCOUNTS", get("DENIED_ACCOUNTS"))?;
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

    /// What is done, and how: the action tag, the actions, protection, the waits, the switches.
    fn read_actions(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(key) = get("ACTION_TAG_KEY") {
            // EC2 tag keys: up to 128 characters, not starting with the reserved `aws:` prefix.
            if key.chars().count() > 128 || key.to_ascii_lowercase().starts_with("aws:") {
                return Err(bad("ACTION_TAG_KEY", format!("{key:?} is not a usable EC2 tag key")));
            }
            self.action_tag_key = key;
        }
        if let Some(value) = get("DEFAULT_ACTION") {
            self.default_action = value.parse().map_err(|e| bad("DEFAULT_ACTION", e))?;
        }
        if let Some(value) = get("PROTECTED_ROLES") {
            self.protected_roles = value
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
            self.quarantine_profile = Some(value);
        }
        if let Some(value) = get("CYCLE_TIMEOUT_SECONDS") {
            let secs = parse_in_range("CYCLE_TIMEOUT_SECONDS", &value, 1, 600)?;
            self.cycle_timeout = Duration::from_secs(secs);
        }
        if let Some(value) = get("FLEET_CONCURRENCY") {
            self.fleet_concurrency = parse_in_range("FLEET_CONCURRENCY", &value, 1, 50)? as usize;
        }
        if let Some(value) = get("REVOKE_HOLD_HOURS") {
            self.revoke_hold_hours = parse_in_range("REVOKE_HOLD_HOURS", &value, MIN_REVOKE_HOLD_HOURS, 720)? as u32;
        }
        if let Some(value) = get("FORENSICS") {
            self.forensic_snapshots = parse_switch("FORENSICS", &value, "snapshot")?;
        }
        if let Some(value) = get("HARDEN") {
            self.require_imdsv2 = parse_switch("HARDEN", &value, "imdsv2")?;
        }
        if let Some(value) = get("DRY_RUN") {
            self.dry_run = parse_bool("DRY_RUN", &value)?;
        }
        if let Some(value) = get("VERIFY_FINDINGS") {
            self.verify_findings = parse_bool("VERIFY_FINDINGS", &value)?;
        }
        if let Some(value) = get("ARCHIVE_FINDINGS") {
            self.archive_findings = parse_bool("ARCHIVE_FINDINGS", &value)?;
        }
        if let Some(value) = get("SECURITY_HUB_UPDATES") {
            self.security_hub_updates = parse_bool("SECURITY_HUB_UPDATES", &value)?;
        }
        if let Some(value) = get("NOTIFICATION_TOPIC_ARN") {
            if !is_topic_arn(&value) {
                return Err(bad(
                    "NOTIFICATION_TOPIC_ARN",
                    format!("{value:?} is not an SNS topic ARN"),
                ));
            }
            self.notification_topic_arn = Some(value);
        }
        Ok(())
    }

    /// Where and as whom: the member role, its external id, and the claim table.
    fn read_reach(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(value) = get("MEMBER_ROLE_NAME") {
            RoleName::parse(&value).map_err(|e| bad("MEMBER_ROLE_NAME", e))?;
            self.member_role_name = Some(value);
        }
        if let Some(value) = get("MEMBER_ROLE_EXTERNAL_ID") {
            // STS's rule for ExternalId.
            let allowed = |c: char| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c);
            if !(2..=1224).contains(&value.len()) || !value.chars().all(allowed) {
                return Err(bad(
                    "MEMBER_ROLE_EXTERNAL_ID",
                    "must be 2 to 1224 characters of letters, digits and +=,.@:/-_",
                ));
            }
            self.member_role_external_id = Some(value);
        }
        if let Some(value) = get("CLAIM_TABLE") {
            // DynamoDB's rule for table names.
            let allowed = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
            if !(3..=255).contains(&value.len()) || !value.chars().all(allowed) {
                return Err(bad("CLAIM_TABLE", format!("{value:?} is not a DynamoDB table name")));
            }
            self.claim_table = Some(value);
        }
        Ok(())
    }
}

/// `arn:<partition>:sns:<region>:<account>:<name>`, the name SNS's (letters, digits, `-`, `_`,
/// a `.fifo` suffix).
fn is_topic_arn(value: &str) -> bool {
    let ["arn", partition, "sns", region, account, name] = value.splitn(6, ':').collect::<Vec<_>>()[..] else {
        return false;
    };
    let name = name.strip_suffix(".fifo").unwrap_or(name);
    partition.starts_with("aws")
        && crate::names::is_region(region)
        && crate::names::is_account_id(account)
        && (1..=256).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
}

/// `AUTO_RELEASE` and what it needs: the scheduler's role is required, as a schedule without it
/// could not invoke anything.
fn auto_release(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<AutoRelease>> {
    let on = get("AUTO_RELEASE").map_or(Ok(false), |v| parse_bool("AUTO_RELEASE", &v))?;
    if !on {
        return Ok(None);
    }
    let role = get("AUTO_RELEASE_ROLE_ARN").ok_or_else(|| {
        bad(
            "AUTO_RELEASE_ROLE_ARN",
            "AUTO_RELEASE=true needs the role EventBridge Scheduler assumes to invoke the function",
        )
    })?;
    if !is_arn(&role, "iam", ":role/") {
        return Err(bad("AUTO_RELEASE_ROLE_ARN", format!("{role:?} is not an IAM role ARN")));
    }
    let group = get("AUTO_RELEASE_GROUP").unwrap_or_else(|| DEFAULT_AUTO_RELEASE_GROUP.to_owned());
    if !crate::plan::auto_release::is_schedule_name(&group) {
        return Err(bad(
            "AUTO_RELEASE_GROUP",
            format!("{group:?} is not a schedule group name (1 to 64 of [0-9A-Za-z-_.])"),
        ));
    }
    let function_arn = get("AUTO_RELEASE_FUNCTION_ARN");
    if let Some(arn) = &function_arn
        && !is_arn(arn, "lambda", ":function:")
    {
        return Err(bad(
            "AUTO_RELEASE_FUNCTION_ARN",
            format!("{arn:?} is not a Lambda function ARN"),
        ));
    }
    Ok(Some(AutoRelease {
        scheduler_role_arn: role,
        group,
        function_arn,
    }))
}

fn timeouts(get: &dyn Fn(&str) -> Option<String>) -> Result<Timeouts> {
    let millis = |var: &'static str, default: Duration| -> Result<Duration> {
        get(var).map_or(Ok(default), |v| {
            parse_in_range(var, &v, 50, 120_000).map(Duration::from_millis)
        })
    };
    let defaults = Timeouts::default();
    let timeouts = Timeouts {
        connect: millis("CONNECT_TIMEOUT_MS", defaults.connect)?,
        attempt: millis("ATTEMPT_TIMEOUT_MS", defaults.attempt)?,
        operation: millis("OPERATION_TIMEOUT_MS", defaults.operation)?,
    };
    if timeouts.attempt > timeouts.operation {
        return Err(bad(
            "ATTEMPT_TIMEOUT_MS",
            "must not exceed OPERATION_TIMEOUT_MS (one attempt cannot outlast the operation)",
        ));
    }
    Ok(timeouts)
}

fn parse_bool(var: &'static str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(bad(var, format!("{value:?} is not true or false"))),
    }
}

/// An opt-in feature: `on` turns it on, `off` leaves it off.
fn parse_switch(var: &'static str, value: &str, on: &str) -> Result<bool> {
    match value.to_ascii_lowercase() {
        v if v == on => Ok(true),
        v if v == "off" => Ok(false),
        _ => Err(bad(var, format!("{value:?} is neither {on} nor off"))),
    }
}

/// A comma-separated list of 12-digit account ids.
fn accounts(var: &'static str, value: Option<String>) -> Result<Vec<String>> {
    let Some(value) = value else { return Ok(Vec::new()) };
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            if crate::names::is_account_id(s) {
                Ok(s.to_owned())
            } else {
                Err(bad(var, format!("{s:?} is not a 12-digit AWS account id")))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn from(pairs: &[(&str, &str)]) -> Result<Config> {
        Config::from_lookup(|k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_are_the_safe_ones() {
        let config = from(&[]).unwrap();
        // Deployed, the stolen key's trail is walked; the library's default is the core alone.
        let walking = Chain {
            mode: ChainMode::Contain,
            ..Chain::off()
        };
        assert_eq!(
            config,
            Config {
                chain: walking,
                ..Config::default()
            }
        );
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
            ("MEMBER_ROLE_NAME", "exfil-responder-member"),
            ("MEMBER_ROLE_EXTERNAL_ID", "o-abc123:exfil"),
            ("ALLOWED_ACCOUNTS", "111122223333, 444455556666"),
            ("DENIED_ACCOUNTS", "777788889999"),
            ("VERIFY_FINDINGS", "false"),
            ("ARCHIVE_FINDINGS", "yes"),
            ("CLAIM_TABLE", "stack-ClaimTable-1AB2"),
            ("CONNECT_TIMEOUT_MS", "500"),
            ("ATTEMPT_TIMEOUT_MS", "2000"),
            ("OPERATION_TIMEOUT_MS", "6000"),
            ("REVOKE_HOLD_HOURS", "24"),
            ("FORENSICS", "Snapshot"),
            ("HARDEN", "imdsv2"),
            ("SECURITY_HUB_UPDATES", "true"),
            (
                "NOTIFICATION_TOPIC_ARN",
                "arn:aws:sns:eu-west-1:111122223333:security-chat",
            ),
        ])
        .unwrap();
        assert!(config.security_hub_updates);
        assert_eq!(
            config.notification_topic_arn.as_deref(),
            Some("arn:aws:sns:eu-west-1:111122223333:security-chat")
        );
        assert_eq!(config.revoke_hold_hours, 24);
        assert!(config.forensic_snapshots && config.require_imdsv2);
        assert_eq!(config.action_tag_key, "ir:action");
        assert_eq!(config.default_action, Action::Cycle);
        assert_eq!(config.protected_roles, ["BreakGlass", "Admin"]);
        assert_eq!(config.quarantine_profile.as_deref(), Some("Quarantine"));
        assert_eq!(config.cycle_timeout, Duration::from_secs(90));
        assert_eq!(config.fleet_concurrency, 8);
        assert!(config.dry_run);
        assert_eq!(config.metrics_namespace, "Security/IR");
        assert_eq!(config.member_role_name.as_deref(), Some("exfil-responder-member"));
        assert_eq!(config.member_role_external_id.as_deref(), Some("o-abc123:exfil"));
        assert_eq!(config.allowed_accounts, ["111122223333", "444455556666"]);
        assert_eq!(config.denied_accounts, ["777788889999"]);
        assert!(!config.verify_findings);
        assert!(config.archive_findings);
        assert_eq!(config.claim_table.as_deref(), Some("stack-ClaimTable-1AB2"));
        let t = config.timeouts;
        assert_eq!(
            (t.connect, t.attempt, t.operation),
            (
                Duration::from_millis(500),
                Duration::from_secs(2),
                Duration::from_secs(6)
            )
        );
        assert_eq!(t.deadline_reserve(), Duration::from_secs(8));
    }

    #[test]
    fn findings_are_verified_unless_turned_off() {
        assert!(Config::default().verify_findings);
        assert_eq!(Config::default().revoke_hold_hours, 12);
        assert!(!Config::default().archive_findings);
        assert!(!Config::default().security_hub_updates && Config::default().notification_topic_arn.is_none());
        // Both change instances beyond what the action tags say: opt-in only.
        assert!(!Config::default().forensic_snapshots && !Config::default().require_imdsv2);
        let off = from(&[("FORENSICS", "off"), ("HARDEN", "OFF")]).unwrap();
        assert!(!off.forensic_snapshots && !off.require_imdsv2);
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
            ("REVOKE_HOLD_HOURS", "0"),
            ("REVOKE_HOLD_HOURS", "11"),
            ("REVOKE_HOLD_HOURS", "721"),
            ("DRY_RUN", "maybe"),
            ("FORENSICS", "true"),
            ("HARDEN", "imdsv1"),
            ("ACTION_TAG_KEY", "aws:reserved"),
            ("METRICS_NAMESPACE", "AWS/Lambda"),
            ("METRICS_NAMESPACE", "bad{namespace}"),
            ("MEMBER_ROLE_NAME", "role/with/path"),
            ("MEMBER_ROLE_EXTERNAL_ID", "x"),
            ("MEMBER_ROLE_EXTERNAL_ID", "has space"),
            ("ALLOWED_ACCOUNTS", "111122223333,12345"),
            ("DENIED_ACCOUNTS", "abcdefghijkl"),
            ("VERIFY_FINDINGS", "sometimes"),
            ("ARCHIVE_FINDINGS", "2"),
            ("SECURITY_HUB_UPDATES", "on"),
            ("NOTIFICATION_TOPIC_ARN", "security-chat"),
            ("NOTIFICATION_TOPIC_ARN", "arn:aws:sqs:us-east-1:111122223333:queue"),
            ("NOTIFICATION_TOPIC_ARN", "arn:aws:sns:us-east-1:1111:chat"),
            ("NOTIFICATION_TOPIC_ARN", "arn:aws:sns:us-east-1:111122223333:chat/../x"),
            ("CLAIM_TABLE", "no spaces"),
            ("CONNECT_TIMEOUT_MS", "10"),
            ("OPERATION_TIMEOUT_MS", "forever"),
            ("ATTEMPT_TIMEOUT_MS", "30000"),
        ] {
            let err = from(&[(var, value)]).unwrap_err();
            assert!(
                matches!(&err, Error::Config { var: v, .. } if *v == var),
                "{var}={value}: {err}"
            );
            assert!(err.to_string().contains(var), "{err}");
        }
    }

    #[test]
    fn auto_release_is_off_unless_asked_and_then_needs_the_schedulers_role() {
        assert_eq!(
            from(&[("AUTO_RELEASE_ROLE_ARN", "arn:aws:iam::1:role/x")])
                .unwrap()
                .auto_release,
            None
        );
        assert_eq!(from(&[("AUTO_RELEASE", "false")]).unwrap().auto_release, None);
        let role = "arn:aws:iam::123456789012:role/exfil-responder-ReleaseSchedulerRole-1AB";
        let on = from(&[("AUTO_RELEASE", "true"), ("AUTO_RELEASE_ROLE_ARN", role)]).unwrap();
        assert_eq!(
            on.auto_release,
            Some(AutoRelease {
                scheduler_role_arn: role.into(),
                group: DEFAULT_AUTO_RELEASE_GROUP.into(),
                function_arn: None,
            })
        );
        let function = "arn:aws:lambda:us-east-1:123456789012:function:exfil-responder:live";
        let named = from(&[
            ("AUTO_RELEASE", "yes"),
            ("AUTO_RELEASE_ROLE_ARN", role),
            ("AUTO_RELEASE_GROUP", "stack-releases"),
            ("AUTO_RELEASE_FUNCTION_ARN", function),
        ])
        .unwrap()
        .auto_release
        .unwrap();
        assert_eq!(
            (named.group.as_str(), named.function_arn.as_deref()),
            ("stack-releases", Some(function))
        );
        for (var, pairs) in [
            ("AUTO_RELEASE_ROLE_ARN", vec![("AUTO_RELEASE", "true")]),
            (
                "AUTO_RELEASE_ROLE_ARN",
                vec![("AUTO_RELEASE", "true"), ("AUTO_RELEASE_ROLE_ARN", "ReleaseRole")],
            ),
            (
                "AUTO_RELEASE",
                vec![("AUTO_RELEASE", "later"), ("AUTO_RELEASE_ROLE_ARN", role)],
            ),
            (
                "AUTO_RELEASE_GROUP",
                vec![
                    ("AUTO_RELEASE", "true"),
                    ("AUTO_RELEASE_ROLE_ARN", role),
                    ("AUTO_RELEASE_GROUP", "a/b"),
                ],
            ),
            (
                "AUTO_RELEASE_FUNCTION_ARN",
                vec![
                    ("AUTO_RELEASE", "true"),
                    ("AUTO_RELEASE_ROLE_ARN", role),
                    ("AUTO_RELEASE_FUNCTION_ARN", role),
                ],
            ),
        ] {
            let err = from(&pairs).unwrap_err();
            assert!(
                matches!(&err, Error::Config { var: v, .. } if *v == var),
                "{pairs:?}: {err}"
            );
        }
    }
}
