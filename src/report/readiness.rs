//! The readiness report: for each account, each role an instance uses, what a containment would
//! do to it now (`plan::readiness`), as JSON and as the Markdown a person pastes into a ticket.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::policy::{Holder, iso_millis};
use crate::rules::{Action, ActionSource};

/// How long an instance left revoked stays without working credentials: until the metadata
/// service hands it new ones. AWS documents only that new credentials are available at least five
/// minutes before the old expire; about six hours between them is observed, not promised.
/// <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-security-credentials.html>
pub const DARK_HOURS_OBSERVED: u32 = 6;

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessReport {
    pub accounts: Vec<AccountReadiness>,
    /// The Markdown summary (see [`markdown`]).
    pub summary: String,
}

impl ReadinessReport {
    /// Roles a containment could not revoke, over every account.
    pub fn not_containable(&self) -> usize {
        self.accounts.iter().map(AccountReadiness::not_containable).sum()
    }

    /// Roles an instance uses, over every account.
    pub fn roles(&self) -> usize {
        self.accounts.iter().map(|a| a.roles.len()).sum()
    }

    /// Instances a revocation would leave without credentials until their rotation, over every
    /// account.
    pub fn without_credentials(&self) -> usize {
        (self.accounts.iter().flat_map(|a| &a.roles))
            .map(|role| role.radius.without_credentials)
            .sum()
    }

    /// What could not be read, over every account: a gap may hide a role that cannot be contained.
    pub fn unread(&self) -> usize {
        self.accounts.iter().map(|a| a.unread.len()).sum()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AccountReadiness {
    pub account: String,
    /// The regions whose instances were read.
    pub regions: Vec<String>,
    /// Sorted by outage radius: the most instances without credentials first.
    pub roles: Vec<RoleReadiness>,
    /// What is wrong account-wide: regions with instances that GuardDuty does not watch (no
    /// detector, or suspended), and regions EC2 denies (an SCP).
    pub problems: Vec<String>,
    /// What could not be read, and why: the report is partial there.
    pub unread: Vec<String>,
}

impl AccountReadiness {
    /// Nothing could be read: the account is named with why.
    pub fn unread(account: &str, why: String) -> Self {
        Self {
            account: account.to_owned(),
            unread: vec![why],
            ..Self::default()
        }
    }

    pub fn not_containable(&self) -> usize {
        self.roles.iter().filter(|r| !r.containable).count()
    }
}

/// How a containment would revoke the role's sessions now.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RevocationReadiness {
    /// The inline `AWSRevokeOlderSessions`, as the IAM console writes it.
    Inline,
    /// The inline quota is full: the managed fallback would be written and attached.
    ManagedFallback,
    /// A cut-off in force already covers now: kept, nothing written.
    Kept,
    /// The gate refuses the role (protected, service-linked, ours): respond by hand.
    Refused,
    /// Neither the inline policy nor the fallback fits (both quotas full).
    Impossible,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RoleReadiness {
    pub name: String,
    pub arn: String,
    /// A containment would revoke its sessions.
    pub containable: bool,
    pub revocation: RevocationReadiness,
    /// Why, where it is not inline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub radius: Radius,
    pub instances: Vec<InstanceReadiness>,
    /// Revocations on the role now, and whether releasing them is safe yet.
    pub in_force: Vec<InForceReadiness>,
    /// What would go wrong, for the role and its instances.
    pub problems: Vec<String>,
}

/// How far a revocation of the role reaches.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Radius {
    /// Instances left without working credentials until their next rotation.
    pub without_credentials: usize,
    /// About this long, as observed ([`DARK_HOURS_OBSERVED`]); 0 if none is left so.
    pub hours_observed: u32,
    /// The regions they run in.
    pub regions: Vec<String>,
    pub cycled: usize,
    /// Isolated if a finding names them (as siblings they are left revoked).
    pub isolated_if_named: usize,
    pub needs_attention: usize,
}

/// What one instance would experience.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Experience {
    /// Its profile re-attached: fresh credentials within seconds.
    Cycled,
    /// Cut off: its profile detached (or the quarantine profile attached).
    Isolated,
    /// Without working credentials until its next rotation.
    WithoutCredentials,
    /// Stopped: it gets fresh credentials when it starts.
    FreshAtStart,
    /// Not affected (terminated, or its profile does not hold the role).
    Unaffected,
    /// Its role would not be revoked (refused, or no room for the deny): a stolen copy of its
    /// credentials stays valid until it expires.
    RoleNotRevoked,
    /// Not done as asked: a person must look (the result says why).
    NeedsAttention,
}

impl Experience {
    fn as_str(self) -> &'static str {
        match self {
            Self::Cycled => "cycled",
            Self::Isolated => "isolated",
            Self::WithoutCredentials => "without credentials",
            Self::FreshAtStart => "fresh at start",
            Self::Unaffected => "unaffected",
            Self::RoleNotRevoked => "role not revoked",
            Self::NeedsAttention => "needs attention",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceReadiness {
    pub id: String,
    pub region: String,
    pub state: String,
    pub action: Option<Action>,
    /// Where the action came from: the instance's tag, the role's tag, or the default.
    pub source: Option<ActionSource>,
    /// What it experiences when another instance's finding revokes the role.
    pub experience: Experience,
    /// What it experiences when a finding names it, where that differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub if_named: Option<Experience>,
    /// The containment's own words for it.
    pub result: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InForceReadiness {
    pub holder: Holder,
    /// Its cut-off, where it is a revocation we recognise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cutoff: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_hours: Option<f64>,
    /// Whether a release now would remove it, and what the release decision says.
    pub releasable_now: bool,
    pub release: String,
}

/// Log each role's readiness, its instances included, as a line of its own.
pub fn log_roles(readiness: &ReadinessReport) {
    for account in &readiness.accounts {
        for role in &account.roles {
            crate::logging::print_json_line(&serde_json::json!({
                "level": "INFO",
                "target": "exfil_responder::report",
                "message": "exfil-responder readiness role",
                "account": account.account,
                "role": role,
            }));
        }
    }
}

/// The readiness report as JSON, with each role's instances left out (logged per role).
pub fn without_instances(readiness: &mut serde_json::Value) {
    let roles = (readiness["accounts"].as_array_mut().into_iter().flatten())
        .filter_map(|a| a["roles"].as_array_mut())
        .flatten();
    for role in roles {
        if let Some(role) = role.as_object_mut() {
            role.remove("instances");
        }
    }
}

/// The summary a person reads: per account, a table of roles sorted by outage radius, then what
/// would go wrong and what could not be read.
pub fn markdown(accounts: &[AccountReadiness], at: DateTime<Utc>) -> String {
    let mut out = format!("# Readiness, {}\n", iso_millis(at));
    for account in accounts {
        let _ = write!(
            out,
            "\n## Account {}\n\n{} role(s) used by instances, {} region(s) read; {} cannot be contained.\n",
            account.account,
            account.roles.len(),
            account.regions.len(),
            account.not_containable()
        );
        if !account.roles.is_empty() {
            out.push_str(
                "\n| Role | Revocation | Without credentials (≈ h) | Regions | Cycled | Isolated if named | Needs attention | Problems |\n\
                 |---|---|---|---|---|---|---|---|\n",
            );
        }
        for role in &account.roles {
            let r = &role.radius;
            let _ = writeln!(
                out,
                "| {} | {} | {} ({}) | {} | {} | {} | {} | {} |",
                role.name,
                revocation_cell(role),
                r.without_credentials,
                r.hours_observed,
                cell(&r.regions.join(", ")),
                r.cycled,
                r.isolated_if_named,
                r.needs_attention,
                role.problems.len()
            );
        }
        let problems = (account.problems.iter().cloned()).chain(
            account
                .roles
                .iter()
                .flat_map(|r| r.problems.iter().map(|p| format!("{}: {p}", r.name))),
        );
        list(&mut out, "What would go wrong", problems);
        list(
            &mut out,
            "Not read (this report is partial)",
            account.unread.iter().cloned(),
        );
        let held = account.roles.iter().flat_map(|r| {
            r.in_force
                .iter()
                .map(move |f| format!("{}: {} in force; {}", r.name, holder_name(&f.holder), f.release))
        });
        list(&mut out, "Revocations in force", held);
    }
    out
}

fn revocation_cell(role: &RoleReadiness) -> &'static str {
    match role.revocation {
        RevocationReadiness::Inline => "inline",
        RevocationReadiness::ManagedFallback => "managed fallback",
        RevocationReadiness::Kept => "kept",
        RevocationReadiness::Refused => "**REFUSED**",
        RevocationReadiness::Impossible => "**IMPOSSIBLE**",
    }
}

fn holder_name(holder: &Holder) -> &'static str {
    match holder {
        Holder::Inline { .. } => "AWSRevokeOlderSessions",
        Holder::Managed { .. } => "the managed fallback",
    }
}

/// A table cell: pipes would end it.
fn cell(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.replace('|', "\\|")
    }
}

fn list(out: &mut String, title: &str, items: impl Iterator<Item = String>) {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        return;
    }
    let _ = write!(out, "\n### {title}\n\n");
    for item in items {
        let _ = writeln!(out, "- {}", item.replace('\n', " "));
    }
}

impl std::fmt::Display for Experience {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logged_report_leaves_each_role_s_instances_to_the_role_s_own_line() {
        let instance = InstanceReadiness {
            id: "i-1".into(),
            region: "us-east-1".into(),
            state: "running".into(),
            action: None,
            source: None,
            experience: Experience::WithoutCredentials,
            if_named: None,
            result: String::new(),
        };
        let role = RoleReadiness {
            name: "WebAppRole".into(),
            arn: String::new(),
            containable: true,
            revocation: RevocationReadiness::Inline,
            reason: None,
            radius: Radius::default(),
            instances: vec![instance],
            in_force: Vec::new(),
            problems: Vec::new(),
        };
        let report = ReadinessReport {
            accounts: vec![AccountReadiness {
                account: "111122223333".into(),
                roles: vec![role],
                ..AccountReadiness::default()
            }],
            summary: String::new(),
        };
        let mut logged = serde_json::to_value(&report).unwrap();
        assert_eq!(logged["accounts"][0]["roles"][0]["instances"][0]["id"], "i-1");
        without_instances(&mut logged);
        let role = &logged["accounts"][0]["roles"][0];
        assert_eq!(
            (role["name"].as_str(), role.get("instances")),
            (Some("WebAppRole"), None)
        );
    }

    #[test]
    fn the_summary_is_a_table_per_account_then_what_would_go_wrong_and_what_was_not_read() {
        let role = RoleReadiness {
            name: "WebAppRole".into(),
            arn: "arn:aws:iam::123456789012:role/WebAppRole".into(),
            containable: false,
            revocation: RevocationReadiness::Impossible,
            reason: Some("no room".into()),
            radius: Radius {
                without_credentials: 2,
                hours_observed: DARK_HOURS_OBSERVED,
                regions: vec!["eu-west-1".into(), "us-east-1".into()],
                cycled: 1,
                isolated_if_named: 1,
                needs_attention: 0,
            },
            instances: Vec::new(),
            in_force: vec![InForceReadiness {
                holder: Holder::inline(),
                cutoff: None,
                age_hours: None,
                releasable_now: false,
                release: "not ours".into(),
            }],
            problems: vec!["no room".into()],
        };
        let accounts = [
            AccountReadiness {
                account: "111122223333".into(),
                regions: vec!["us-east-1".into()],
                roles: vec![role],
                problems: vec!["region eu-west-1 has no detector".into()],
                unread: Vec::new(),
            },
            AccountReadiness::unread("444455556666", "the member role could not be assumed".into()),
        ];
        let at = DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let text = markdown(&accounts, at);
        let expected = "# Readiness, 2026-12-06T10:00:00.000Z\n\n## Account 111122223333\n\n\
            1 role(s) used by instances, 1 region(s) read; 1 cannot be contained.\n\n\
            | Role | Revocation | Without credentials (≈ h) | Regions | Cycled | Isolated if named | Needs attention | Problems |\n\
            |---|---|---|---|---|---|---|---|\n\
            | WebAppRole | **IMPOSSIBLE** | 2 (6) | eu-west-1, us-east-1 | 1 | 1 | 0 | 1 |\n\n\
            ### What would go wrong\n\n- region eu-west-1 has no detector\n- WebAppRole: no room\n\n\
            ### Revocations in force\n\n- WebAppRole: AWSRevokeOlderSessions in force; not ours\n\n\
            ## Account 444455556666\n\n0 role(s) used by instances, 0 region(s) read; 0 cannot be contained.\n\n\
            ### Not read (this report is partial)\n\n- the member role could not be assumed\n";
        assert_eq!(text, expected);
    }
}
