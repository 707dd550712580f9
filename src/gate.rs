//! The gate: the one function that decides whether a deny may be written to a role.
//!
//! Every rule that allows a revocation is in [`decide`], and it is pure: the caller reads the
//! facts, the gate rules on them, effects carry the ruling out. A write needs a [`Permit`], which
//! only [`decide`] can make (its fields are private to this module). The IAM calls that write a
//! deny (`PutRolePolicy`, and the managed fallback's `CreatePolicy`/`CreatePolicyVersion` and
//! `AttachRolePolicy`) are sent only from `aws::iam`, whose functions take a `Permit` (`make lint`
//! fails on those SDK calls anywhere else): the compiler proves there is no other route to a deny.
//! The finding's role and every role the stolen key's trail leads to are ruled on alike.
//!
//! What is not here, and why it cannot authorise a write:
//! - whether the finding is real ([`crate::verify`], GuardDuty's copy): a finding that is not
//!   confirmed never reaches the gate;
//! - which accounts may be acted in ([`crate::accounts`]): an account that is not ours to act in
//!   is never reached, so its roles are never read;
//! - the revocation claim ([`crate::aws::claim`]): it may delay a permitted write or adopt another
//!   run's, never make one (it takes a [`Permit`] and can only give it back or hold it).

use chrono::{DateTime, Duration, Utc};

use crate::names::RoleName;
use crate::plan::RoleFacts;
use crate::policy::{Existing, Holder, InForce, cutoff_at, iso_millis};
use crate::revoked_keys::RevokedKeys;
use crate::rules::{RoleIdentity, protection_reason};

/// Every fact a rule needs, for one role.
pub struct Case<'a> {
    /// The role as the finding (or the trail) names it.
    pub role_name: &'a RoleName,
    /// The role as IAM has it (`None`: it does not exist), and the revocations on it.
    pub role: Option<&'a RoleFacts>,
    pub in_force: &'a InForce,
    /// What the confirmed incident says of the stolen credentials.
    pub stolen: Stolen<'a>,
    /// Never revoked: this function's own execution role and the member role it acts through.
    pub own_role: Option<&'a str>,
    pub member_role: Option<&'a str>,
    /// `PROTECTED_ROLES`.
    pub protected_roles: &'a [String],
    /// The cut-off a write would set: when the reads that gate it started (see [`cutoff_at`]).
    pub now: DateTime<Utc>,
    /// A dry run plans the write and is never given a [`Permit`].
    pub dry_run: bool,
}

/// The stolen credentials, as the confirmed finding (or the checked trail record) has them.
#[derive(Clone, Copy, Default)]
pub struct Stolen<'a> {
    /// The role id of the session that leaked, when the finding's principal carried one.
    pub role_id: Option<&'a str>,
    /// When the stolen key was first used; `None` (a manual request) means now.
    pub first_seen: Option<DateTime<Utc>>,
    /// The key, and when its latest activity was seen.
    pub key: Option<&'a str>,
    pub last_seen: Option<DateTime<Utc>>,
    /// A periodic Cloud Custodian policy handed the instance over: its envelope carries no
    /// sighting, nothing that tells a theft after the revocation in force from the one it
    /// answered, so that revocation is kept (see [`decide`]).
    pub periodic: bool,
}

/// The gate's ruling.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// Nothing to revoke: the role does not exist (why).
    Missing(String),
    /// The role may not be revoked (why): protected, service-linked, ours, or not the role whose
    /// credentials leaked.
    Refuse(&'a RoleFacts, String),
    /// The role is contained: as it is, or by a write.
    Act(&'a RoleFacts, Act),
}

impl<'a> Verdict<'a> {
    /// The role ruled on, where IAM has it.
    pub fn role(&self) -> Option<&'a RoleFacts> {
        match self {
            Self::Refuse(role, _) | Self::Act(role, _) => Some(role),
            Self::Missing(_) => None,
        }
    }
}

/// How a role is contained.
#[derive(Debug, PartialEq, Eq)]
pub enum Act {
    /// A cut-off in force already denies the stolen credentials: kept, nothing written.
    Keep(Kept),
    /// A dry run: the write that would be made, and nothing else.
    Plan(Planned),
    /// Write the deny.
    Write(Permit),
}

impl Act {
    /// The cut-off in force once the act is carried out (or would be).
    pub fn cutoff(&self) -> DateTime<Utc> {
        match self {
            Self::Keep(kept) => kept.cutoff,
            Self::Plan(planned) => planned.cutoff,
            Self::Write(permit) => permit.cutoff,
        }
    }
}

/// A cut-off in force that covers the incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub cutoff: DateTime<Utc>,
    /// What it must still cover when read again after cycling (the first sighting).
    pub covers_from: DateTime<Utc>,
    pub holder: Holder,
}

/// The write a dry run would make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub cutoff: DateTime<Utc>,
    pub covers_from: DateTime<Utc>,
}

/// Leave to deny `role`'s sessions issued before `cutoff`: only [`decide`] makes one.
#[derive(Debug, PartialEq, Eq)]
pub struct Permit {
    role: RoleName,
    role_arn: String,
    cutoff: DateTime<Utc>,
    covers_from: DateTime<Utc>,
}

impl Permit {
    pub fn role(&self) -> &RoleName {
        &self.role
    }

    /// The role's ARN as IAM gave it (the managed fallback is created in its account).
    pub fn role_arn(&self) -> &str {
        &self.role_arn
    }

    pub fn cutoff(&self) -> DateTime<Utc> {
        self.cutoff
    }

    /// What the cut-off must reach to deny the stolen token: a cut-off another run claimed is
    /// adopted only if it reaches this far.
    pub fn covers_from(&self) -> DateTime<Utc> {
        self.covers_from
    }
}

/// Whether a deny may be written to the role, and the warnings the ruling raised. The rules, in
/// the order they are applied:
/// 1. the role must exist;
/// 2. it must be the role whose credentials leaked (same role id: a role deleted and re-created
///    under the same name is another role, and the leaked sessions died with the old one);
/// 3. it must not be service-linked, this function's own role, listed in `PROTECTED_ROLES`,
///    tagged protected, or the member role this function acts through;
/// 4. a cut-off in force at or after the first sighting already denies the stolen token: keep it
///    (moving it would revoke the fresh credentials of instances already cycled), unless the
///    finding's key was used after it and no revocation answered that key (stolen again); a
///    periodic Cloud Custodian delivery, which has no sighting, keeps any cut-off in force;
/// 5. otherwise write a cut-off of `now`; a dry run only plans it.
pub fn decide<'a>(case: &Case<'a>) -> (Verdict<'a>, Vec<String>) {
    let mut warnings = Vec::new();
    let name = case.role_name;
    let Some(role) = case.role else {
        let why = format!(
            "role {name} does not exist (deleted?): there is no role to revoke; check CloudTrail for what it did"
        );
        return (Verdict::Missing(why), warnings);
    };
    if let Some(why) = refusal(case, role) {
        let why = format!("{why}. Its sessions were NOT revoked: respond by hand");
        return (Verdict::Refuse(role, why), warnings);
    }
    let stolen = case.stolen;
    let first_seen = stolen.first_seen.unwrap_or(case.now);
    let effective = case.in_force.effective();
    let existing = match &effective {
        Some((Existing::Cutoff(c), holder)) => Some((*c, holder)),
        Some((Existing::Unrecognised(why), _)) => {
            warnings.push(format!(
                "the role's existing AWSRevokeOlderSessions is not a revocation we recognise ({why}); replacing it"
            ));
            None
        }
        None => None,
    };
    let new = cutoff_at(case.now);
    let (cutoff, covers_from) = match existing {
        // At or after first sighting: the stolen token was issued before it, so it is denied. A
        // periodic policy's delivery has no sighting: each run would otherwise write a fresh
        // cut-off and kill the credentials the last run's cycle handed out. A later theft comes
        // as a finding, with its own first sighting.
        Some((cutoff, holder)) if cutoff >= first_seen || stolen.periodic => {
            if stolen.periodic {
                warnings.push(format!(
                    "a periodic Cloud Custodian delivery carries no sighting: role {name}'s revocation in force \
                     (cut-off {}) is kept, and the instance handled against it; send a manual payload to revoke again",
                    iso_millis(cutoff)
                ));
            }
            if cutoff > case.now + Duration::minutes(5) {
                warnings.push(format!(
                    "the existing cut-off {} is in the future: every session of the role, fresh ones included, is denied until then",
                    iso_millis(cutoff)
                ));
            }
            match stolen_again(stolen, role, cutoff, &mut warnings) {
                // The new cut-off must reach the key's last use, which was issued no later.
                Some(last_seen) => (new, last_seen.min(new)),
                None => {
                    let kept = Kept {
                        cutoff,
                        covers_from: stolen.first_seen.unwrap_or(cutoff),
                        holder: holder.clone(),
                    };
                    return (Verdict::Act(role, Act::Keep(kept)), warnings);
                }
            }
        }
        _ => (new, stolen.first_seen.unwrap_or(new)),
    };
    let act = if case.dry_run {
        Act::Plan(Planned { cutoff, covers_from })
    } else {
        Act::Write(Permit {
            role: name.clone(),
            role_arn: role.arn.clone(),
            cutoff,
            covers_from,
        })
    };
    (Verdict::Act(role, act), warnings)
}

/// Why the role may not be revoked at all, if it may not.
fn refusal(case: &Case<'_>, role: &RoleFacts) -> Option<String> {
    if let Some(expected) = case.stolen.role_id
        && expected != role.id
    {
        return Some(format!(
            "role {} has id {}, but the finding's principal is {expected}: not the role whose credentials leaked",
            role.name, role.id
        ));
    }
    let identity = RoleIdentity {
        name: &role.name,
        path: &role.path,
        tags: &role.tags,
    };
    if let Some(why) = protection_reason(&identity, case.protected_roles, case.own_role) {
        return Some(format!("refused: {why}"));
    }
    // IAM role names are unique regardless of case. (In a member account the member role is our
    // own role, refused as such above.)
    case.member_role
        .filter(|m| m.eq_ignore_ascii_case(&role.name))
        .map(|_| {
            format!(
                "refused: role {} is the member role this function acts through",
                role.arn
            )
        })
}

/// When the finding's key was last used, if that was after `cutoff` and no cut-off answered it:
/// a key issued after the cut-off (the instances' fresh credentials) may have been stolen.
fn stolen_again(
    stolen: Stolen<'_>,
    role: &RoleFacts,
    cutoff: DateTime<Utc>,
    warnings: &mut Vec<String>,
) -> Option<DateTime<Utc>> {
    let last_seen = stolen.last_seen.filter(|l| *l > cutoff)?;
    let Some(key) = stolen.key else {
        warnings.push(format!(
            "the finding's activity continued after the cut-off {} (last seen {}) and it names no access key, so a key stolen again cannot be told from the revoked one: check CloudTrail",
            iso_millis(cutoff),
            iso_millis(last_seen)
        ));
        return None;
    };
    if RevokedKeys::of(&role.tags).is_some_and(|r| r.answers(key, cutoff)) {
        return None;
    }
    warnings.push(format!(
        "access key {key} was used after the cut-off {} (last seen {}), and no revocation answered it: the credentials may have been stolen again; revoking again",
        iso_millis(cutoff),
        iso_millis(last_seen)
    ));
    Some(last_seen)
}

/// A [`Permit`] for the tests of the effects that take one, made by [`decide`] as any other.
#[cfg(test)]
pub(crate) fn permit_for(role: &RoleFacts, now: DateTime<Utc>) -> Permit {
    let name = RoleName::parse(&role.name).expect("a valid role name");
    let case = Case {
        role_name: &name,
        role: Some(role),
        in_force: &InForce::default(),
        stolen: Stolen::default(),
        own_role: None,
        member_role: None,
        protected_roles: &[],
        now,
        dry_run: false,
    };
    match decide(&case).0 {
        Verdict::Act(_, Act::Write(permit)) => permit,
        other => panic!("the gate did not permit the write: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::{at, tags};
    use crate::revoked_keys::TAG;
    use crate::rules::Tags;

    const FIRST_SEEN: &str = "2026-11-22T09:58:00Z";
    const NOW: &str = "2026-11-22T10:00:07.250Z";

    fn role() -> RoleFacts {
        RoleFacts {
            name: "WebAppRole".into(),
            arn: "arn:aws:iam::123456789012:role/WebAppRole".into(),
            id: "AROAWEBAPPROLE".into(),
            path: "/".into(),
            tags: Tags::new(),
        }
    }

    fn name() -> RoleName {
        RoleName::parse("WebAppRole").unwrap()
    }

    /// The case of the finding's role with `existing` inline, first seen at FIRST_SEEN.
    fn rule(role: Option<&RoleFacts>, existing: Option<Existing>, stolen: Stolen<'_>) -> (String, Vec<String>) {
        let in_force = InForce {
            inline: existing,
            managed: None,
        };
        let name = name();
        let (verdict, warnings) = decide(&Case {
            role_name: &name,
            role,
            in_force: &in_force,
            stolen,
            own_role: None,
            member_role: None,
            protected_roles: &[],
            now: at(NOW),
            dry_run: false,
        });
        (shown(&verdict), warnings)
    }

    /// The ruling as `act cutoff covers-from`, or `missing: why` and `refuse: why`.
    fn shown(verdict: &Verdict<'_>) -> String {
        match verdict {
            Verdict::Missing(why) => format!("missing: {why}"),
            Verdict::Refuse(_, why) => format!("refuse: {why}"),
            Verdict::Act(_, Act::Write(p)) => {
                format!("write {} {}", iso_millis(p.cutoff()), iso_millis(p.covers_from()))
            }
            Verdict::Act(_, Act::Keep(k)) => format!("keep {} {}", iso_millis(k.cutoff), iso_millis(k.covers_from)),
            Verdict::Act(_, Act::Plan(p)) => format!("plan {} {}", iso_millis(p.cutoff), iso_millis(p.covers_from)),
        }
    }

    fn act(name: &str, cutoff: &str, covers_from: &str) -> String {
        format!("{name} {} {}", iso_millis(at(cutoff)), iso_millis(at(covers_from)))
    }

    fn first_seen() -> Stolen<'static> {
        Stolen {
            role_id: Some("AROAWEBAPPROLE"),
            first_seen: Some(at(FIRST_SEEN)),
            ..Stolen::default()
        }
    }

    #[test]
    fn idempotency_rule_at_its_edges() {
        let role = role();
        let revoke_with = |existing| rule(Some(&role), existing, first_seen()).0;
        let new_cutoff = act("write", NOW, FIRST_SEEN);
        assert_eq!(revoke_with(None), new_cutoff);
        // Before the first sighting: the stolen key may postdate it, so write a new one.
        assert_eq!(
            revoke_with(Some(Existing::Cutoff(at("2026-11-22T09:57:59Z")))),
            new_cutoff
        );
        // Equal to, or after, the first sighting: already dead, keep it.
        assert_eq!(
            revoke_with(Some(Existing::Cutoff(at(FIRST_SEEN)))),
            act("keep", FIRST_SEEN, FIRST_SEEN)
        );
        let later = "2026-11-22T09:59:30Z";
        assert_eq!(
            revoke_with(Some(Existing::Cutoff(at(later)))),
            act("keep", later, FIRST_SEEN),
            "a kept cut-off covers from the first sighting"
        );
        assert_eq!(revoke_with(Some(Existing::Unrecognised("x".into()))), new_cutoff);
    }

    /// A periodic Cloud Custodian delivery carries no sighting: any cut-off in force stands (a
    /// fresh one each run would kill the credentials the last run's cycle handed out).
    #[test]
    fn a_periodic_delivery_keeps_the_revocation_in_force_and_writes_only_where_none_is() {
        let periodic = Stolen {
            periodic: true,
            ..Stolen::default()
        };
        let old = "2026-11-01T00:00:00Z";
        let (kept, warnings) = rule(Some(&role()), Some(Existing::Cutoff(at(old))), periodic);
        assert_eq!(kept, act("keep", old, old));
        assert!(
            warnings.iter().any(|w| w.contains("periodic Cloud Custodian")),
            "{warnings:?}"
        );
        // A manual request (no sighting either) means now: it revokes again.
        let manual = rule(Some(&role()), Some(Existing::Cutoff(at(old))), Stolen::default()).0;
        assert_eq!(
            manual,
            act("write", "2026-11-22T10:00:07.250Z", "2026-11-22T10:00:07.250Z")
        );
        let none = rule(Some(&role()), None, periodic).0;
        assert!(none.starts_with("write"), "{none}");
    }

    #[test]
    fn a_key_used_after_the_cutoff_that_no_revocation_answered_is_revoked_again() {
        const KEY: &str = "ASIANEWSTOLENKEY0002";
        const CUTOFF: &str = "2026-11-22T09:59:00Z";
        const AFTER: &str = "2026-11-22T09:59:30Z";
        let decide = |role: &RoleFacts, key: Option<&'static str>, last_seen: &str| {
            let stolen = Stolen {
                role_id: None,
                key,
                last_seen: Some(at(last_seen)),
                ..first_seen()
            };
            rule(Some(role), Some(Existing::Cutoff(at(CUTOFF))), stolen)
        };
        let kept = act("keep", CUTOFF, FIRST_SEEN);
        let mut role = role();
        // Used up to the cut-off at the latest: issued before it, so denied.
        assert_eq!(decide(&role, Some(KEY), CUTOFF), (kept.clone(), vec![]));
        // Used after it, and no revocation answered it: again, reaching its last use.
        let (again, warnings) = decide(&role, Some(KEY), AFTER);
        assert_eq!(again, act("write", NOW, AFTER));
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
        assert!(decide(&role, Some(KEY), AFTER).0.starts_with("write "));
        // No key named: nothing to tell keys apart by; kept, and the report says so.
        let (decision, warnings) = decide(&role, None, AFTER);
        assert_eq!(decision, kept);
        assert!(warnings[0].contains("names no access key"), "{warnings:?}");
    }

    #[test]
    fn a_future_cutoff_is_kept_but_flagged() {
        let role = role();
        let future = Existing::Cutoff(at("2027-01-01T00:00:00Z"));
        let (verdict, warnings) = rule(Some(&role), Some(future), first_seen());
        assert_eq!(verdict, act("keep", "2027-01-01T00:00:00Z", FIRST_SEEN));
        assert!(warnings[0].contains("in the future"));
    }

    #[test]
    fn manual_requests_always_write_a_fresh_cutoff() {
        let role = role();
        let old = Existing::Cutoff(at("2026-11-22T10:00:00Z"));
        let (verdict, _) = rule(Some(&role), Some(old), Stolen::default());
        assert_eq!(verdict, act("write", NOW, NOW));
    }

    #[test]
    fn a_missing_role_is_skipped_and_protected_or_mismatched_roles_are_refused() {
        let missing = rule(None, None, first_seen()).0;
        assert!(
            missing.starts_with("missing: ") && missing.contains("does not exist"),
            "{missing}"
        );
        let mut role = role();
        let name = name();
        let refused = |role: &RoleFacts, own: Option<&str>, expected: Option<&str>, needle: &str| {
            let protected = ["BreakGlass".to_string()];
            let case = Case {
                role_name: &name,
                role: Some(role),
                in_force: &InForce::default(),
                stolen: Stolen {
                    role_id: expected,
                    ..first_seen()
                },
                own_role: own,
                member_role: Some("exfil-responder-member"),
                protected_roles: &protected,
                now: at(NOW),
                dry_run: false,
            };
            let (verdict, _) = decide(&case);
            matches!(verdict, Verdict::Refuse(r, ref why) if r.name == role.name && why.contains(needle) && why.contains("NOT revoked"))
        };
        assert!(refused(
            &role,
            None,
            Some("AROAOTHER"),
            "not the role whose credentials leaked"
        ));
        assert!(refused(&role, Some("WebAppRole"), None, "own execution role"));
        role.tags = tags(&[(crate::rules::PROTECTED_TAG, "true")]);
        assert!(refused(&role, None, None, "tagged"));
        role.tags.clear();
        role.path = "/aws-service-role/ec2.amazonaws.com/".into();
        assert!(refused(&role, None, None, "service-linked"));
        role.path = "/".into();
        role.name = "BreakGlass".into();
        assert!(refused(&role, None, None, "PROTECTED_ROLES"));
        role.name = "Exfil-Responder-Member".into();
        assert!(refused(&role, None, None, "member role this function acts through"));
        role.name = "WebAppRole".into();
        assert!(
            !refused(&role, None, None, ""),
            "the finding's own role, unprotected, is not refused"
        );
    }

    #[test]
    fn a_cutoff_kept_in_the_managed_fallback_is_kept_where_it_is_held() {
        let arn = "arn:aws:iam::123456789012:policy/exfil-responder/AWSRevokeOlderSessions-WebAppRole".to_owned();
        let role = role();
        let in_force = InForce {
            inline: None,
            managed: Some((arn.clone(), Existing::Cutoff(at("2026-11-22T09:59:00Z")))),
        };
        let case = Case {
            role_name: &name(),
            role: Some(&role),
            in_force: &in_force,
            stolen: first_seen(),
            own_role: None,
            member_role: None,
            protected_roles: &[],
            now: at(NOW),
            dry_run: false,
        };
        let (verdict, _) = decide(&case);
        assert!(
            matches!(verdict, Verdict::Act(_, Act::Keep(ref k)) if k.holder == Holder::Managed { arn }),
            "the fallback's cut-off covers the finding: {verdict:?}"
        );
    }

    #[test]
    fn a_dry_run_is_given_a_plan_and_never_a_permit() {
        let (role, name, none) = (role(), name(), InForce::default());
        let case = |dry_run| Case {
            role_name: &name,
            role: Some(&role),
            in_force: &none,
            stolen: first_seen(),
            own_role: None,
            member_role: None,
            protected_roles: &[],
            now: at(NOW),
            dry_run,
        };
        let planned = Planned {
            cutoff: at(NOW),
            covers_from: at(FIRST_SEEN),
        };
        assert_eq!(decide(&case(true)).0, Verdict::Act(&role, Act::Plan(planned)));
        let Verdict::Act(_, Act::Write(permit)) = decide(&case(false)).0 else {
            panic!("not permitted")
        };
        assert_eq!(
            (permit.role().as_str(), permit.role_arn()),
            ("WebAppRole", role.arn.as_str())
        );
    }
}
