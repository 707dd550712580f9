//! The revocation decision: whether a role may be revoked, and whether a cut-off already on it
//! covers the finding (then it is kept: moving it would revoke instances already cycled).

use chrono::{DateTime, Duration, Utc};

use crate::policy::Existing;
use crate::revoked_keys::RevokedKeys;
use crate::rules::{RoleIdentity, Tags, protection_reason};

pub struct RoleFacts {
    pub name: String,
    pub arn: String,
    pub id: String,
    pub path: String,
    pub tags: Tags,
}

pub struct RevocationFacts<'a> {
    pub role: &'a RoleFacts,
    /// The role id from the finding's principal, when it carried one.
    pub expected_role_id: Option<&'a str>,
    /// This function's own execution role, if it runs as a role.
    pub own_role: Option<&'a str>,
    pub protected_roles: &'a [String],
    pub existing: Option<&'a Existing>,
    /// When the stolen key was first used; `None` (manual requests) means now.
    pub first_seen: Option<DateTime<Utc>>,
    /// The key the finding names, and when the finding's latest activity was seen.
    pub key: Option<&'a str>,
    pub last_seen: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Nothing may change: protected role, or not the role whose credentials leaked.
    Refuse(String),
    /// Write a new cut-off.
    Write(DateTime<Utc>),
    /// A cut-off at or after the first sighting is already there: the stolen key is dead.
    Keep(DateTime<Utc>),
    /// A cut-off covers the first sighting, but a key it did not answer was used after it: the
    /// credentials were stolen again. Write a new cut-off, which must reach `covers_from` (the
    /// last use of that key, which was issued no later).
    Again {
        cutoff: DateTime<Utc>,
        covers_from: DateTime<Utc>,
    },
}

pub fn revocation(facts: &RevocationFacts<'_>) -> (Revocation, Vec<String>) {
    let role = facts.role;
    let mut warnings = Vec::new();
    if let Some(expected) = facts.expected_role_id
        && expected != role.id
    {
        // Same name, other id: the role was deleted and re-created, so the leaked sessions
        // (of the old id) are already dead, and this role is not the one that leaked.
        let reason = format!(
            "role {} has id {}, but the finding's principal is {expected}: not the role whose credentials leaked",
            role.name, role.id
        );
        return (Revocation::Refuse(reason), warnings);
    }
    let identity = RoleIdentity {
        name: &role.name,
        path: &role.path,
        tags: &role.tags,
    };
    if let Some(reason) = protection_reason(&identity, facts.protected_roles, facts.own_role) {
        return (Revocation::Refuse(format!("refused: {reason}")), warnings);
    }

    let first_seen = facts.first_seen.unwrap_or(facts.now);
    let existing = match facts.existing {
        Some(Existing::Cutoff(c)) => Some(*c),
        Some(Existing::Unrecognised(why)) => {
            warnings.push(format!(
                "the role's existing AWSRevokeOlderSessions is not a revocation we recognise ({why}); replacing it"
            ));
            None
        }
        None => None,
    };
    // At or after first sighting: the stolen token was issued before it, so it is already denied.
    // Moving the cut-off again would revoke the fresh credentials of instances already cycled.
    match existing {
        Some(cutoff) if cutoff >= first_seen => {
            if cutoff > facts.now + Duration::minutes(5) {
                warnings.push(format!(
                    "the existing cut-off {} is in the future: every session of the role, fresh ones included, is denied until then",
                    cutoff.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                ));
            }
            match stolen_again(facts, cutoff, &mut warnings) {
                Some(last_seen) => {
                    let new = crate::policy::cutoff_at(facts.now);
                    let covers_from = last_seen.min(new);
                    (
                        Revocation::Again {
                            cutoff: new,
                            covers_from,
                        },
                        warnings,
                    )
                }
                None => (Revocation::Keep(cutoff), warnings),
            }
        }
        _ => (Revocation::Write(crate::policy::cutoff_at(facts.now)), warnings),
    }
}

/// When the finding's key was last used, if that was after `cutoff` and no cut-off answered it:
/// a key issued after the cut-off (the instances' fresh credentials) may have been stolen.
fn stolen_again(
    facts: &RevocationFacts<'_>,
    cutoff: DateTime<Utc>,
    warnings: &mut Vec<String>,
) -> Option<DateTime<Utc>> {
    let last_seen = facts.last_seen.filter(|l| *l > cutoff)?;
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let Some(key) = facts.key else {
        warnings.push(format!(
            "the finding's activity continued after the cut-off {} (last seen {}) and it names no access key, so a key stolen again cannot be told from the revoked one: check CloudTrail",
            at(cutoff),
            at(last_seen)
        ));
        return None;
    };
    if RevokedKeys::of(&facts.role.tags).is_some_and(|r| r.answers(key, cutoff)) {
        return None;
    }
    warnings.push(format!(
        "access key {key} was used after the cut-off {} (last seen {}), and no revocation answered it: the credentials may have been stolen again; revoking again",
        at(cutoff),
        at(last_seen)
    ));
    Some(last_seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::{at, tags};
    use crate::revoked_keys::TAG;

    fn role() -> RoleFacts {
        RoleFacts {
            name: "WebAppRole".into(),
            arn: "arn:aws:iam::123456789012:role/WebAppRole".into(),
            id: "AROAWEBAPPROLE".into(),
            path: "/".into(),
            tags: Tags::new(),
        }
    }

    const FIRST_SEEN: &str = "2026-11-22T09:58:00Z";
    const NOW: &str = "2026-11-22T10:00:07.250Z";

    fn revoke_with(existing: Option<Existing>) -> Revocation {
        let role = role();
        revocation(&RevocationFacts {
            role: &role,
            expected_role_id: Some("AROAWEBAPPROLE"),
            own_role: None,
            protected_roles: &[],
            existing: existing.as_ref(),
            first_seen: Some(at(FIRST_SEEN)),
            key: None,
            last_seen: None,
            now: at(NOW),
        })
        .0
    }

    #[test]
    fn idempotency_rule_at_its_edges() {
        let new_cutoff = Revocation::Write(at(NOW));
        assert_eq!(revoke_with(None), new_cutoff);
        // Before the first sighting: the stolen key may postdate it, so write a new one.
        assert_eq!(
            revoke_with(Some(Existing::Cutoff(at("2026-11-22T09:57:59Z")))),
            new_cutoff
        );
        // Equal to, or after, the first sighting: already dead, keep it.
        assert_eq!(
            revoke_with(Some(Existing::Cutoff(at(FIRST_SEEN)))),
            Revocation::Keep(at(FIRST_SEEN))
        );
        let later = at("2026-11-22T09:59:30Z");
        assert_eq!(revoke_with(Some(Existing::Cutoff(later))), Revocation::Keep(later));
        assert_eq!(revoke_with(Some(Existing::Unrecognised("x".into()))), new_cutoff);
    }

    #[test]
    fn a_key_used_after_the_cutoff_that_no_revocation_answered_is_revoked_again() {
        const KEY: &str = "ASIANEWSTOLENKEY0002";
        const CUTOFF: &str = "2026-11-22T09:59:00Z";
        const AFTER: &str = "2026-11-22T09:59:30Z";
        let decide = |role: &RoleFacts, key: Option<&str>, last_seen: &str| {
            let existing = Existing::Cutoff(at(CUTOFF));
            revocation(&RevocationFacts {
                role,
                expected_role_id: None,
                own_role: None,
                protected_roles: &[],
                existing: Some(&existing),
                first_seen: Some(at(FIRST_SEEN)),
                key,
                last_seen: Some(at(last_seen)),
                now: at(NOW),
            })
        };
        let kept = Revocation::Keep(at(CUTOFF));
        let mut role = role();
        // Used up to the cut-off at the latest: issued before it, so denied.
        assert_eq!(decide(&role, Some(KEY), CUTOFF), (kept.clone(), vec![]));
        // Used after it, and no revocation answered it: again, reaching its last use.
        let (again, warnings) = decide(&role, Some(KEY), AFTER);
        assert_eq!(
            again,
            Revocation::Again {
                cutoff: at(NOW),
                covers_from: at(AFTER)
            }
        );
        assert!(
            warnings[0].contains(KEY) && warnings[0].contains("stolen again"),
            "{warnings:?}"
        );
        // Answered by this cut-off, or an earlier one: denied.
        for answered_at in [CUTOFF, "2026-11-22T09:58:30Z"] {
            role.tags = tags(&[(TAG, &format!("{answered_at} ASIAOLDSTOLENKEY0001 {KEY}"))]);
            assert_eq!(decide(&role, Some(KEY), AFTER).0, kept, "{answered_at}");
        }
        // Answered only by a later cut-off than the one in force (ours was replaced): not known dead.
        role.tags = tags(&[(TAG, &format!("2026-11-22T09:59:00.001Z {KEY}"))]);
        assert!(matches!(decide(&role, Some(KEY), AFTER).0, Revocation::Again { .. }));
        // No key named: nothing to tell keys apart by; kept, and the report says so.
        let (decision, warnings) = decide(&role, None, AFTER);
        assert_eq!(decision, kept);
        assert!(warnings[0].contains("names no access key"), "{warnings:?}");
    }

    #[test]
    fn a_future_cutoff_is_kept_but_flagged() {
        let role = role();
        let future = Existing::Cutoff(at("2027-01-01T00:00:00Z"));
        let (decision, warnings) = revocation(&RevocationFacts {
            role: &role,
            expected_role_id: None,
            own_role: None,
            protected_roles: &[],
            existing: Some(&future),
            first_seen: Some(at(FIRST_SEEN)),
            key: None,
            last_seen: None,
            now: at(NOW),
        });
        assert_eq!(decision, Revocation::Keep(at("2027-01-01T00:00:00Z")));
        assert!(warnings[0].contains("in the future"));
    }

    #[test]
    fn manual_requests_always_write_a_fresh_cutoff() {
        let role = role();
        let old = Existing::Cutoff(at("2026-11-22T10:00:00Z"));
        let facts = RevocationFacts {
            role: &role,
            expected_role_id: None,
            own_role: None,
            protected_roles: &[],
            existing: Some(&old),
            first_seen: None,
            key: None,
            last_seen: None,
            now: at(NOW),
        };
        assert_eq!(revocation(&facts).0, Revocation::Write(at(NOW)));
    }

    #[test]
    fn protected_or_mismatched_roles_are_refused() {
        let mut role = role();
        let facts = |role: &RoleFacts, own: Option<&'static str>, expected: Option<&'static str>| {
            let role = RoleFacts {
                name: role.name.clone(),
                arn: role.arn.clone(),
                id: role.id.clone(),
                path: role.path.clone(),
                tags: role.tags.clone(),
            };
            let protected = ["BreakGlass".to_string()];
            revocation(&RevocationFacts {
                role: &role,
                expected_role_id: expected,
                own_role: own,
                protected_roles: &protected,
                existing: None,
                first_seen: Some(at(FIRST_SEEN)),
                key: None,
                last_seen: None,
                now: at(NOW),
            })
            .0
        };
        let refused = |r: Revocation, needle: &str| matches!(r, Revocation::Refuse(ref why) if why.contains(needle));

        assert!(refused(
            facts(&role, None, Some("AROAOTHER")),
            "not the role whose credentials leaked"
        ));
        assert!(refused(facts(&role, Some("WebAppRole"), None), "own execution role"));
        role.tags = tags(&[(crate::rules::PROTECTED_TAG, "true")]);
        assert!(refused(facts(&role, None, None), "tagged"));
        role.tags.clear();
        role.path = "/aws-service-role/ec2.amazonaws.com/".into();
        assert!(refused(facts(&role, None, None), "service-linked"));
        role.path = "/".into();
        role.name = "BreakGlass".into();
        assert!(refused(facts(&role, None, None), "PROTECTED_ROLES"));
    }
}
