//! `CHAIN`: the stolen key's trail as a tree (key → role it assumed → that session's key → …),
//! each node with what was done about it, and what a person must look at.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::ChainMode;

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChainReport {
    pub mode: ChainModeName,
    /// How many hops of AssumeRole were followed at most.
    pub depth: usize,
    /// The trail was read from here; the stolen key's calls until `until` (each key's own end
    /// is in its node's `read`).
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Every key's window was read whole in every region (else `incomplete` and `unread` say
    /// what was not, and why).
    pub complete: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unread: Vec<Unread>,
    /// LookupEvents pages read, in every account and region.
    pub pages: usize,
    pub root: ChainNode,
    /// Calls that leave a way back in: a person must judge them; nothing was changed.
    pub needs_attention: Vec<TrailCall>,
    /// Records not acted on, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// The walks asked for later, as CloudTrail delivers more.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub follow_ups: Vec<crate::report::schedule::ScheduleReport>,
}

impl ChainReport {
    /// The keys in the tree, root first.
    pub fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        self.root.collect_keys(&mut keys);
        keys
    }

    /// What a person must look at: the calls that leave a way back in (by event id), and the
    /// roles and keys left as they were by a refusal or a failure (by key).
    pub fn attention(&self) -> Vec<&str> {
        let mut left = Vec::new();
        self.root.collect_left(&mut left);
        self.needs_attention
            .iter()
            .map(|c| c.event_id.as_str())
            .chain(left)
            .collect()
    }

    /// Nodes whose action failed.
    pub fn failures(&self) -> Vec<String> {
        let mut failed = Vec::new();
        self.root.collect_failures(&mut failed);
        failed
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ChainModeName {
    Report,
    Contain,
}

impl ChainModeName {
    pub fn of(mode: ChainMode) -> Option<Self> {
        match mode {
            ChainMode::Off => None,
            ChainMode::Report => Some(Self::Report),
            ChainMode::Contain => Some(Self::Contain),
        }
    }
}

/// One key of the chain and what it led to.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChainNode {
    pub key: String,
    /// The account whose trail holds the key's calls.
    pub account: String,
    /// The role the key is a session of (a created key: the user it belongs to).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The call that made the key (none for the stolen key itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<TrailCall>,
    pub action: NodeStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// What was read of the key's own calls (none if it was not walked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<KeyRead>,
    pub children: Vec<ChainNode>,
}

impl ChainNode {
    fn collect_keys(&self, keys: &mut Vec<String>) {
        keys.push(self.key.clone());
        self.children.iter().for_each(|c| c.collect_keys(keys));
    }

    fn collect_left<'a>(&'a self, left: &mut Vec<&'a str>) {
        if matches!(self.action, NodeStatus::Refused | NodeStatus::Failed) {
            left.push(&self.key);
        }
        self.children.iter().for_each(|c| c.collect_left(left));
    }

    fn collect_failures(&self, failed: &mut Vec<String>) {
        if self.action == NodeStatus::Failed {
            failed.push(format!("{}: {}", self.key, self.detail.as_deref().unwrap_or("failed")));
        }
        self.children.iter().for_each(|c| c.collect_failures(failed));
    }
}

/// What was read of one key's calls.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyRead {
    /// Records signed with the key, in every region read.
    pub events: usize,
    /// LookupEvents pages read for them.
    pub pages: usize,
    /// The end of the key's window: `SETTLE` after the cut-off that denies it, or when it was
    /// read ([`crate::plan::chain::until`]).
    pub until: DateTime<Utc>,
}

/// A part of a key's window that was not read in one region, and why: the calls from `from` to
/// `to` (both included) may hold what the walk looks for.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Unread {
    pub key: String,
    pub account: String,
    pub region: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub why: String,
    /// Another attempt may read it (CloudTrail throttled or unavailable, not a refusal).
    pub transient: bool,
}

/// What was done about a node.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum NodeStatus {
    /// The stolen key: its role is what this remediation contained.
    Contained,
    /// Its role's sessions revoked (deny before now), by this walk.
    Revoked,
    /// Its role's revocation already covers the session.
    AlreadyRevoked,
    /// A created key deactivated by this walk.
    Deactivated,
    /// A created key already inactive, or gone.
    AlreadyInactive,
    /// Not changed: a safety rule says no (the reason is the detail).
    Refused,
    /// Dry run: what would be done.
    Planned,
    /// `CHAIN=report`: found, not acted on.
    Found,
    /// Its key is already in the chain (a cycle): not walked again.
    Seen,
    /// The role no longer exists: nothing to revoke.
    Gone,
    /// The action failed (the detail says why).
    Failed,
}

/// A call read from the trail.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrailCall {
    pub event_id: String,
    pub event_name: String,
    pub at: DateTime<Utc>,
    pub region: String,
    /// The key that signed it, and the account whose trail holds it.
    pub key: String,
    pub account: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(key: &str, action: NodeStatus, children: Vec<ChainNode>) -> ChainNode {
        ChainNode {
            key: key.into(),
            account: "111111111111".into(),
            role_arn: None,
            user: None,
            via: None,
            action,
            detail: None,
            read: None,
            children,
        }
    }

    #[test]
    fn a_person_is_asked_to_look_at_persistence_and_at_what_was_left_as_it_was() {
        let at = chrono::DateTime::from_timestamp(0, 0).unwrap();
        let tree = node(
            "ASIAROOT",
            NodeStatus::Contained,
            vec![
                node(
                    "ASIAB",
                    NodeStatus::Refused,
                    vec![node("ASIAC", NodeStatus::Revoked, vec![])],
                ),
                node("AKIAD", NodeStatus::Failed, vec![]),
            ],
        );
        let report = ChainReport {
            mode: ChainModeName::Contain,
            depth: 3,
            since: at,
            until: at,
            complete: true,
            incomplete: Vec::new(),
            unread: Vec::new(),
            pages: 0,
            root: tree,
            needs_attention: vec![TrailCall {
                event_id: "e-1".into(),
                event_name: "CreateUser".into(),
                at,
                region: "us-east-1".into(),
                key: "ASIAROOT".into(),
                account: "111111111111".into(),
            }],
            skipped: Vec::new(),
            follow_ups: Vec::new(),
        };
        assert_eq!(report.attention(), ["e-1", "ASIAB", "AKIAD"]);
        assert_eq!(report.keys(), ["ASIAROOT", "ASIAB", "ASIAC", "AKIAD"]);
        assert_eq!(report.failures(), ["AKIAD: failed"]);
    }
}
