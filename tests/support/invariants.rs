//! The five remediation invariants, checked against the emulator's state (not the report):
//! 1. one cut-off, at or after every handled finding's first sighting; nothing else on the role
//!    changed but the record of revoked keys, which names no cut-off later than the one in force;
//! 2. every `cycle`/`cycle-reboot` instance holds its original profile through an association made
//!    after the final cut-off (by the proxy's record of when the attaching request arrived);
//! 3. no instance is without its profile unless its action is `isolate`;
//! 4. on instances, only the project's own marker tags changed;
//! 5. read-only deliveries wrote nothing (see `Baseline::unchanged`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use exfil_responder::revoked_keys::{self, RevokedKeys};

use super::faults::Proxy;
use super::{Account, attached_arns, fallback_arns};

/// The tags the function may write on an instance.
pub const MARKERS: [&str; 5] = [
    "exfil-responder:profile",
    "exfil-responder:cycled-at",
    "exfil-responder:rebooted-at",
    "exfil-responder:isolated-at",
    "exfil-responder:finding",
];

/// An instance under test: its id, the profile it started with, and the action its tags choose.
#[derive(Debug, Clone)]
pub struct Expect {
    pub id: String,
    pub profile: Option<String>,
    pub action: &'static str,
}

/// The state before: what must not change, and what the snapshot compares.
pub struct Baseline {
    pub role: String,
    policies: Vec<String>,
    attached: Vec<String>,
    role_tags: BTreeMap<String, String>,
    instances: Vec<(String, BTreeMap<String, String>, String)>,
    snapshot: String,
}

impl Baseline {
    pub async fn take(account: &Account, role: &str, instances: &[&Expect]) -> Self {
        let mut states = Vec::new();
        for e in instances {
            states.push((e.id.clone(), account.tags(&e.id).await, account.state(&e.id).await));
        }
        let ids: Vec<&str> = instances.iter().map(|e| e.id.as_str()).collect();
        Self {
            role: role.to_owned(),
            policies: account.policy_names(role).await,
            attached: attached(account, role).await,
            role_tags: role_tags(account, role).await,
            instances: states,
            snapshot: account.snapshot(role, &ids).await,
        }
    }

    /// Invariant 5: nothing the function may change has changed.
    pub async fn unchanged(&self, account: &Account) -> Result<(), String> {
        let ids: Vec<&str> = self.instances.iter().map(|(i, ..)| i.as_str()).collect();
        let now = account.snapshot(&self.role, &ids).await;
        if now == self.snapshot {
            Ok(())
        } else {
            Err(format!("state changed:\nbefore {}\nafter  {now}", self.snapshot))
        }
    }

    /// Invariants 1 to 4. Each violation names the instance it concerns, or `role`.
    pub async fn violations(
        &self,
        account: &Account,
        proxy: &Proxy,
        expects: &[&Expect],
        first_seen: &[DateTime<Utc>],
    ) -> Vec<(String, String)> {
        let mut found = Vec::new();
        let role = &self.role;
        let mut v = |who: &str, what: String| found.push((who.to_owned(), what));

        // 1. One cut-off, covering every finding; nothing else on the role changed.
        let mut policies = account.policy_names(role).await;
        policies.retain(|p| p != "AWSRevokeOlderSessions");
        if policies != self.policies {
            v(
                "role",
                format!("inline policies changed: {:?} -> {policies:?}", self.policies),
            );
        }
        if attached(account, role).await != self.attached || role_tags(account, role).await != self.role_tags {
            v("role", "managed policies or tags changed".into());
        }
        // Inline, or the managed fallback when the role's inline quota was full.
        let cutoff = account.cutoff_in_force(role).await;
        if cutoff.is_none() {
            v("role", "no AWSRevokeOlderSessions".into());
        }
        // The record of revoked keys never names a key for a cut-off later than the one in force
        // (it would pass off a key the revocation may not deny as dead).
        let tags = account.role_tags(role).await;
        match (tags.get(revoked_keys::TAG), RevokedKeys::of(&tags), cutoff) {
            (None, ..) => {}
            (Some(_), Some(record), Some(c)) if record.cutoff <= c => {}
            (Some(value), ..) => v(
                "role",
                format!("record of revoked keys {value:?} vs cut-off {cutoff:?}"),
            ),
        }
        if let Some(c) = cutoff
            && let Some(late) = first_seen.iter().find(|f| **f > c)
        {
            v(
                "role",
                format!("cut-off {c} is before a finding's first sighting {late}"),
            );
        }

        for e in expects {
            let now = account.association(&e.id).await;
            // 2. Cycled instances end healthy, through an association made after the cut-off.
            if matches!(e.action, "cycle" | "cycle-reboot") {
                match (&now, &e.profile) {
                    (Some((assoc, profile)), Some(original)) if profile == original => {
                        match (proxy.associated_at(assoc), cutoff) {
                            (Some(at), Some(c)) if at >= c => {}
                            (at, c) => v(
                                &e.id,
                                format!("association {assoc} made at {at:?}, not after the cut-off {c:?}"),
                            ),
                        }
                    }
                    (now, original) => v(&e.id, format!("holds {now:?}, not its original profile {original:?}")),
                }
            }
            // 3. Isolation only where asked.
            if now.is_none() && e.profile.is_some() && e.action != "isolate" {
                v(&e.id, format!("lost its profile, but its action is {}", e.action));
            }
            // 4. No stray changes: only marker tags differ, and the state is as it was.
            if let Some((_, before, state_before)) = self.instances.iter().find(|(i, ..)| *i == e.id) {
                let unmarked = |tags: &BTreeMap<String, String>| {
                    let mut t = tags.clone();
                    t.retain(|k, _| !MARKERS.contains(&k.as_str()));
                    t
                };
                let after = account.tags(&e.id).await;
                if unmarked(&after) != unmarked(before) {
                    v(
                        &e.id,
                        format!("tags other than markers changed: {before:?} -> {after:?}"),
                    );
                }
                let state_after = account.state(&e.id).await;
                if state_after != *state_before {
                    v(&e.id, format!("state changed: {state_before} -> {state_after}"));
                }
            }
        }
        found
    }
}

/// The role's managed policies, other than the revocation's own managed fallback.
async fn attached(account: &Account, role: &str) -> Vec<String> {
    let ours = fallback_arns(account, role).await;
    let mut arns = attached_arns(account, role).await;
    arns.retain(|arn| !ours.contains(arn));
    arns
}

/// The role's tags but the function's record of revoked keys (checked on its own).
async fn role_tags(account: &Account, role: &str) -> BTreeMap<String, String> {
    let mut tags = account.role_tags(role).await;
    tags.remove(revoked_keys::TAG);
    tags
}
