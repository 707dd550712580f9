//! The release decision: whether a role's revocation may be removed, and which documents.
//!
//! Removing `AWSRevokeOlderSessions` revives every token issued before its cut-off that has not
//! expired. Role sessions last at most 12 hours (`MaxSessionDuration`), and AWS documents no
//! maximum for instance credentials (about 6 hours is observed), so a release waits
//! `REVOKE_HOLD_HOURS` past the cut-off unless forced with a reason. Only documents that do nothing
//! but revoke are removed, ours or the IAM console's ([`crate::policy::revocation_only`]); anything
//! more or less stops the release.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::plan::RoleFacts;
use crate::policy::{Holder, iso_millis, revocation_only};
use crate::rules::{RoleIdentity, protection_reason};

/// What IAM holds where a revocation may be, as IAM returns it (URL-encoded documents).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Documents {
    pub inline: Option<String>,
    /// The attached fallback's ARN and its default version's document.
    pub managed: Option<(String, String)>,
}

pub struct ReleaseFacts<'a> {
    /// None: no such role.
    pub role: Option<&'a RoleFacts>,
    pub documents: &'a Documents,
    pub own_role: Option<&'a str>,
    pub protected_roles: &'a [String],
    pub hold: Duration,
    /// The reason, when the release is forced before the hold has passed.
    pub forced: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// One document the release removes, and the cut-off it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Removal {
    pub holder: Holder,
    pub cutoff: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleasePlan {
    /// Nothing is removed, and why (no role, a protected role, no revocation, not ours).
    Refuse(String),
    /// Nothing is removed yet: tokens issued before the latest cut-off may be alive until `safe_at`.
    TooEarly { reason: String, safe_at: DateTime<Utc> },
    /// Remove these (every document of ours on the role); `safe_at` is when every token issued
    /// before the latest cut-off has expired, and `forced` says the release comes before it.
    Remove {
        removals: Vec<Removal>,
        safe_at: DateTime<Utc>,
        forced: bool,
    },
}

pub fn release(facts: &ReleaseFacts<'_>) -> ReleasePlan {
    let Some(role) = facts.role else {
        return ReleasePlan::Refuse("no such role: nothing to release".into());
    };
    let identity = RoleIdentity {
        name: &role.name,
        path: &role.path,
        tags: &role.tags,
    };
    if let Some(why) = protection_reason(&identity, facts.protected_roles, facts.own_role) {
        return ReleasePlan::Refuse(format!("{why}: never changed"));
    }
    let mut found: Vec<(Holder, &str)> = Vec::new();
    if let Some(doc) = &facts.documents.inline {
        found.push((Holder::inline(), doc));
    }
    if let Some((arn, doc)) = &facts.documents.managed {
        found.push((Holder::Managed { arn: arn.clone() }, doc));
    }
    if found.is_empty() {
        return ReleasePlan::Refuse(format!("role {} holds no revocation: nothing to release", role.name));
    }
    let mut removals = Vec::new();
    for (holder, doc) in found {
        match revocation_only(doc) {
            Ok(cutoff) => removals.push(Removal { holder, cutoff }),
            // Removing only ours would leave the other in force: a release in name only.
            Err(why) => {
                return ReleasePlan::Refuse(format!(
                    "role {}'s {} is not a revocation alone: {why}; nothing removed (remove it by hand if intended)",
                    role.name,
                    describe(&holder)
                ));
            }
        }
    }
    let latest = removals.iter().map(|r| r.cutoff).max().expect("at least one document");
    let safe_at = latest + facts.hold;
    if facts.now < safe_at && facts.forced.is_none() {
        let hours = facts.hold.num_hours();
        let reason = format!(
            "role {}'s revocation (cut-off {}) still denies tokens that may be alive: safe to release from {} \
             ({hours} h after the cut-off); force it with a reason to release earlier",
            role.name,
            iso_millis(latest),
            iso_millis(safe_at)
        );
        return ReleasePlan::TooEarly { reason, safe_at };
    }
    ReleasePlan::Remove {
        removals,
        safe_at,
        forced: facts.now < safe_at,
    }
}

pub fn describe(holder: &Holder) -> String {
    match holder {
        Holder::Inline { name } => format!("inline policy {name}"),
        Holder::Managed { arn } => format!("managed policy {arn}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::{at, web_app_role as role};
    use crate::policy::document;

    const ARN: &str = "arn:aws:iam::123456789012:policy/exfil-responder/AWSRevokeOlderSessions-WebAppRole";

    fn decide(role: Option<&RoleFacts>, documents: &Documents, now: &str, forced: Option<&str>) -> ReleasePlan {
        release(&ReleaseFacts {
            role,
            documents,
            own_role: Some("exfil-responder-ResponderRole"),
            protected_roles: &["BreakGlass".to_owned()],
            hold: Duration::hours(12),
            forced,
            now: at(now),
        })
    }

    fn ours(cutoff: &str) -> String {
        document(at(cutoff))
    }

    #[test]
    fn after_the_hold_every_document_of_ours_is_removed() {
        let docs = Documents {
            inline: Some(ours("2026-11-22T10:00:00Z")),
            managed: Some((ARN.into(), ours("2026-11-22T11:00:00Z"))),
        };
        let ReleasePlan::Remove {
            removals,
            safe_at,
            forced,
        } = decide(Some(&role(&[])), &docs, "2026-11-22T23:00:00Z", None)
        else {
            panic!("not removed")
        };
        assert_eq!(
            removals.iter().map(|r| r.holder.clone()).collect::<Vec<_>>(),
            [Holder::inline(), Holder::Managed { arn: ARN.into() }]
        );
        // Twelve hours after the later cut-off.
        assert_eq!(safe_at, at("2026-11-22T23:00:00Z"));
        assert!(!forced);
    }

    #[test]
    fn before_the_hold_it_is_refused_with_the_time_it_becomes_safe_unless_forced() {
        let docs = Documents {
            inline: Some(ours("2026-11-22T10:00:00Z")),
            managed: None,
        };
        let ReleasePlan::TooEarly { reason, safe_at } = decide(Some(&role(&[])), &docs, "2026-11-22T21:59:59Z", None)
        else {
            panic!("released early")
        };
        assert!(
            reason.contains("safe to release from 2026-11-22T22:00:00.000Z"),
            "{reason}"
        );
        assert_eq!(safe_at, at("2026-11-22T22:00:00Z"));
        let forced = decide(
            Some(&role(&[])),
            &docs,
            "2026-11-22T10:05:00Z",
            Some("IR-9: wrong role"),
        );
        assert!(matches!(forced, ReleasePlan::Remove { forced: true, .. }), "{forced:?}");
    }

    #[test]
    fn the_console_s_revocation_is_released_like_ours() {
        let console = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-22T10:00:00.000Z"}}}]}"#;
        let docs = Documents {
            inline: Some(console.into()),
            managed: None,
        };
        let got = decide(Some(&role(&[])), &docs, "2026-11-24T00:00:00Z", None);
        let ReleasePlan::Remove { removals, forced, .. } = got else {
            panic!("{got:?}")
        };
        assert!(!forced);
        assert_eq!(removals[0].cutoff, at("2026-11-22T10:00:00Z"));
    }

    #[test]
    fn a_document_that_is_more_than_a_revocation_stops_the_whole_release() {
        let more = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-22T10:00:00.000Z"}}},{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#;
        for docs in [
            Documents {
                inline: Some(more.into()),
                managed: None,
            },
            Documents {
                inline: Some(more.into()),
                managed: Some((ARN.into(), ours("2026-11-22T09:00:00Z"))),
            },
            Documents {
                inline: Some(ours("2026-11-22T09:00:00Z")),
                managed: Some((ARN.into(), r#"{"Statement":[]}"#.into())),
            },
        ] {
            let got = decide(Some(&role(&[])), &docs, "2026-11-24T00:00:00Z", Some("forced"));
            let ReleasePlan::Refuse(why) = got else {
                panic!("{docs:?}")
            };
            assert!(why.contains("is not a revocation alone"), "{why}");
        }
    }

    #[test]
    fn no_role_no_revocation_and_protected_roles_are_refused() {
        let docs = Documents {
            inline: Some(ours("2026-11-22T10:00:00Z")),
            managed: None,
        };
        let late = "2026-11-24T00:00:00Z";
        let refused = |r: ReleasePlan| match r {
            ReleasePlan::Refuse(why) => why,
            other => panic!("{other:?}"),
        };
        assert!(refused(decide(None, &docs, late, None)).contains("no such role"));
        assert!(refused(decide(Some(&role(&[])), &Documents::default(), late, None)).contains("holds no revocation"));
        let tagged = role(&[("exfil-responder:protected", "true")]);
        assert!(refused(decide(Some(&tagged), &docs, late, Some("r"))).contains("protected"));
        let own = RoleFacts {
            name: "exfil-responder-ResponderRole".into(),
            ..role(&[])
        };
        assert!(refused(decide(Some(&own), &docs, late, None)).contains("own execution role"));
    }
}
