//! The revocation decision: whether a role may be revoked, and whether a cut-off already on it
//! covers the finding (then it is kept: moving it would revoke instances already cycled).

use chrono::{DateTime, Duration, Utc};

use crate::policy::Existing;
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
            (Revocation::Keep(cutoff), warnings)
        }
        _ => (Revocation::Write(crate::policy::cutoff_at(facts.now)), warnings),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::{at, tags};

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
