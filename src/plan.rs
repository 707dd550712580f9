//! The decision, as pure functions from facts to a plan; `respond` gathers the facts and executes.
//!
//! Two decisions, so that containment never waits for fleet discovery:
//! - [`revocation`]: needs only the role and its current policy.
//! - [`instances`]: what each instance using the role needs, given the cut-off in force.
//!
//! Every instance plan is idempotent against the marker tags it writes: a retry after a crash
//! finishes what is left and never repeats a finished step.

use chrono::{DateTime, Duration, Utc};

use crate::config::Config;
use crate::names::profile_name_from_arn;
use crate::policy::Existing;
use crate::report::Relation;
use crate::rules::{Action, ChosenAction, RoleIdentity, Tags, choose_action, protection_reason};

/// Written before a profile is detached: the profile ARN, so nothing can strand the instance.
pub const PROFILE_TAG: &str = "exfil-responder:profile";
/// A time (ISO 8601 UTC, milliseconds) no later than the instance's current association was made:
/// at or after the cut-off, it proves the association's credentials fresh (see `plan_cycle`).
pub const CYCLED_AT_TAG: &str = "exfil-responder:cycled-at";
pub const REBOOTED_AT_TAG: &str = "exfil-responder:rebooted-at";
/// Set before an isolating detach; an instance with it is never re-attached automatically.
pub const ISOLATED_AT_TAG: &str = "exfil-responder:isolated-at";
/// The finding (or `manual`) that made the last change.
pub const FINDING_TAG: &str = "exfil-responder:finding";

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
                    rfc3339(cutoff)
                ));
            }
            (Revocation::Keep(cutoff), warnings)
        }
        _ => (Revocation::Write(crate::policy::cutoff_at(facts.now)), warnings),
    }
}

/// An instance-profile association as EC2 reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Association {
    pub id: String,
    pub profile_arn: String,
    pub state: String,
    /// When it was made, where EC2 says (AWS does; moto does not).
    pub since: Option<DateTime<Utc>>,
}

impl Association {
    /// `associating` and `associated` hold the profile; the other states are on their way out.
    pub fn is_current(&self) -> bool {
        matches!(self.state.as_str(), "associated" | "associating")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceFacts {
    pub id: String,
    pub state: String,
    pub tags: Tags,
    pub association: Option<Association>,
}

pub struct FleetFacts<'a> {
    pub config: &'a Config,
    pub cutoff: DateTime<Utc>,
    pub finding_id: &'a str,
    pub role_name: &'a str,
    pub role_tags: &'a Tags,
    /// ARNs of the instance profiles that hold the role.
    pub role_profiles: &'a [String],
    /// The instance the finding names: its id and facts (`None`: not found).
    pub named: Option<(&'a str, Option<&'a InstanceFacts>)>,
    pub siblings: &'a [InstanceFacts],
    pub action_override: Option<Action>,
    /// When the instances' facts were read, no earlier than the cut-off was decided: any
    /// association made after it is newer than the cut-off.
    pub observed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    Arn(String),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagValue {
    Text(String),
    /// The time the tag is written.
    Now,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Tag(Vec<(&'static str, TagValue)>),
    Disassociate { association_id: String },
    AwaitDisassociated,
    Associate(Profile),
    AwaitAssociated(Profile),
    Reboot,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePlan {
    pub instance_id: String,
    pub relation: Relation,
    pub state: Option<String>,
    pub chosen: Option<ChosenAction>,
    pub steps: Vec<Step>,
    /// What the instance's situation will be once the steps are done.
    pub result: String,
    pub needs_attention: bool,
}

pub fn instances(facts: &FleetFacts<'_>) -> Vec<InstancePlan> {
    let named = facts.named.map(|(id, found)| match found {
        Some(inst) => plan_instance(facts, Relation::Named, inst),
        None => InstancePlan {
            instance_id: id.to_owned(),
            relation: Relation::Named,
            state: None,
            chosen: None,
            steps: Vec::new(),
            result: "not found (terminated, or in no region we can see); the role is revoked regardless".into(),
            needs_attention: false,
        },
    });
    named
        .into_iter()
        .chain(
            facts
                .siblings
                .iter()
                .map(|s| plan_instance(facts, Relation::Sibling, s)),
        )
        .collect()
}

fn plan_instance(facts: &FleetFacts<'_>, relation: Relation, inst: &InstanceFacts) -> InstancePlan {
    let override_action = if relation == Relation::Named {
        facts.action_override
    } else {
        None
    };
    let chosen = choose_action(
        &facts.config.action_tag_key,
        override_action,
        &inst.tags,
        facts.role_tags,
        facts.config.default_action,
    );
    let mut plan = InstancePlan {
        instance_id: inst.id.clone(),
        relation,
        state: Some(inst.state.clone()),
        chosen: Some(chosen.clone()),
        steps: Vec::new(),
        result: String::new(),
        needs_attention: false,
    };
    if matches!(inst.state.as_str(), "terminated" | "shutting-down") {
        note(&mut plan, format!("instance is {}: nothing to do", inst.state), false);
        return plan;
    }
    let mut action = chosen.action;
    let mut prefix = String::new();
    if action == Action::Isolate && relation == Relation::Sibling {
        action = Action::Revoke;
        prefix = "isolate applies only to the instance named in the finding, so revoke only: ".into();
    }
    let current = inst.association.as_ref().filter(|a| a.is_current());
    if let Some(a) = current {
        let (result, attention) = if is_quarantine(facts.config, &a.profile_arn) {
            match action {
                Action::Isolate => ("already isolated: the quarantine profile is attached".to_owned(), false),
                _ => (
                    "holds the quarantine profile: isolated earlier; not changed".to_owned(),
                    true,
                ),
            }
        } else if !facts.role_profiles.contains(&a.profile_arn) {
            let result = format!(
                "its profile {} does not hold role {}: the revocation does not affect it; not changed",
                a.profile_arn, facts.role_name
            );
            (result, relation == Relation::Named)
        } else {
            (String::new(), false)
        };
        if !result.is_empty() {
            note(&mut plan, result, attention);
            return plan;
        }
    }

    let (steps, result, attention) = match action {
        Action::Revoke | Action::Ignore => left_revoked(inst, current, action),
        Action::Isolate => plan_isolate(facts, inst, current),
        Action::Cycle | Action::CycleReboot => plan_cycle(facts, inst, current, action == Action::CycleReboot),
    };
    plan.steps = steps;
    note(&mut plan, format!("{prefix}{result}"), attention);
    plan
}

fn note(plan: &mut InstancePlan, result: String, attention: bool) {
    plan.result = result;
    plan.needs_attention = attention;
}

fn left_revoked(inst: &InstanceFacts, current: Option<&Association>, action: Action) -> Decision {
    let lead = if action == Action::Ignore {
        "ignored as its action says: not changed; "
    } else {
        ""
    };
    if current.is_none() {
        // Without a profile it has no credentials to recover: if our marker says it had one and
        // was not isolated, an interrupted cycle left it so, and a person should decide.
        return match inst
            .tags
            .get(PROFILE_TAG)
            .filter(|_| !inst.tags.contains_key(ISOLATED_AT_TAG))
        {
            Some(p) => {
                let result = format!(
                    "{lead}has no instance profile; its marker names {p}: re-attach it by hand, or tag it cycle"
                );
                (Vec::new(), result, true)
            }
            None => (
                Vec::new(),
                format!("{lead}has no instance profile: nothing to revoke on it"),
                false,
            ),
        };
    }
    let result = match inst.state.as_str() {
        "stopped" | "stopping" => format!(
            "{lead}instance is {}: it gets fresh credentials when it starts",
            inst.state
        ),
        _ => format!("{lead}credentials revoked, recovers at next rotation"),
    };
    (Vec::new(), result, false)
}

fn is_quarantine(config: &Config, profile_arn: &str) -> bool {
    config
        .quarantine_profile
        .as_deref()
        .is_some_and(|q| profile_name_from_arn(profile_arn) == Some(q))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn tag_time(tags: &Tags, key: &str) -> Option<DateTime<Utc>> {
    tags.get(key)
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
        .map(|d| d.with_timezone(&Utc))
}

fn finding_tag(facts: &FleetFacts<'_>) -> (&'static str, TagValue) {
    (FINDING_TAG, TagValue::Text(facts.finding_id.to_owned()))
}

type Decision = (Vec<Step>, String, bool);

fn plan_cycle(facts: &FleetFacts<'_>, inst: &InstanceFacts, current: Option<&Association>, reboot: bool) -> Decision {
    let running = inst.state == "running";
    if !running && inst.state != "stopped" {
        return (
            Vec::new(),
            format!(
                "instance is {}: not cycled; re-run once it is running or stopped",
                inst.state
            ),
            true,
        );
    }
    // The association a cycle makes (or finds made by a concurrent run) is newer than the facts,
    // and the facts were read after the cut-off was decided; so is the one it heals with.
    let done_tags = |associated_since: DateTime<Utc>| {
        Step::Tag(vec![
            (CYCLED_AT_TAG, TagValue::Text(rfc3339(associated_since))),
            finding_tag(facts),
        ])
    };
    // The reboot is marked after it is sent, so it happens at least once: if the mark fails,
    // the retry reboots again, as no EC2 API tells whether a reboot happened.
    let reboot_steps = || {
        if reboot && running {
            vec![Step::Reboot, Step::Tag(vec![(REBOOTED_AT_TAG, TagValue::Now)])]
        } else {
            Vec::new()
        }
    };

    match current {
        Some(_) if !running => (
            Vec::new(),
            "instance is stopped: it gets fresh credentials when it starts".into(),
            false,
        ),
        Some(a) => {
            let cycled = tag_time(&inst.tags, CYCLED_AT_TAG).filter(|t| *t >= facts.cutoff);
            let rebooted = tag_time(&inst.tags, REBOOTED_AT_TAG).filter(|t| *t >= facts.cutoff);
            // EC2 says when the association was made (AWS does; the emulator does not). Without
            // that, only our own cycled-at mark proves an association fresh, never a guess.
            let fresh = a.since.filter(|since| *since >= facts.cutoff);
            let profile = Profile::Arn(a.profile_arn.clone());
            match (cycled, reboot && rebooted.is_none(), fresh) {
                (Some(at), false, _) => (
                    Vec::new(),
                    format!("already cycled at {}, after the cut-off", rfc3339(at)),
                    false,
                ),
                (Some(at), true, _) => (
                    reboot_steps(),
                    format!(
                        "cycled at {}; rebooting so applications drop cached credentials",
                        rfc3339(at)
                    ),
                    false,
                ),
                (None, _, Some(since)) => {
                    let mut steps = vec![Step::AwaitAssociated(profile), done_tags(since)];
                    steps.extend(reboot_steps());
                    (
                        steps,
                        format!(
                            "cycled: its association was made at {}, after the cut-off",
                            rfc3339(since)
                        ),
                        false,
                    )
                }
                (None, _, None) => {
                    // A retry finds the marker already written; it is not written twice.
                    let marked = inst.tags.get(PROFILE_TAG) == Some(&a.profile_arn);
                    let mark = Step::Tag(vec![(PROFILE_TAG, TagValue::Text(a.profile_arn.clone()))]);
                    let mut steps: Vec<Step> = (!marked).then_some(mark).into_iter().collect();
                    steps.extend([
                        Step::Disassociate {
                            association_id: a.id.clone(),
                        },
                        Step::AwaitDisassociated,
                        Step::Associate(profile.clone()),
                        Step::AwaitAssociated(profile),
                        done_tags(facts.observed_at),
                    ]);
                    steps.extend(reboot_steps());
                    let then = if reboot { ", then rebooted" } else { "" };
                    (
                        steps,
                        format!("cycled: profile re-attached after the cut-off, fresh credentials now{then}"),
                        false,
                    )
                }
            }
        }
        None => {
            if let Some(at) = inst.tags.get(ISOLATED_AT_TAG) {
                let result = format!(
                    "isolated at {at} by an earlier response: not re-attached; restore it by hand once investigated"
                );
                return (Vec::new(), result, true);
            }
            match inst.tags.get(PROFILE_TAG) {
                Some(p) if facts.role_profiles.contains(p) => {
                    // An earlier run detached the profile and stopped before re-attaching it.
                    let profile = Profile::Arn(p.clone());
                    let mut steps = vec![
                        Step::AwaitDisassociated,
                        Step::Associate(profile.clone()),
                        Step::AwaitAssociated(profile),
                        done_tags(facts.observed_at),
                    ];
                    steps.extend(reboot_steps());
                    (
                        steps,
                        format!("healed: re-attached {p}, recorded before an interrupted cycle"),
                        false,
                    )
                }
                Some(p) => {
                    let result = format!(
                        "has no profile; its marker names {p}, which does not hold role {}: not re-attached",
                        facts.role_name
                    );
                    (Vec::new(), result, true)
                }
                None => (Vec::new(), "has no instance profile: nothing to cycle".into(), false),
            }
        }
    }
}

fn plan_isolate(facts: &FleetFacts<'_>, inst: &InstanceFacts, current: Option<&Association>) -> Decision {
    if !matches!(inst.state.as_str(), "running" | "stopped") {
        return (
            Vec::new(),
            format!(
                "instance is {}: not isolated; re-run once it is running or stopped",
                inst.state
            ),
            true,
        );
    }
    let quarantine = facts.config.quarantine_profile.as_deref();
    let attach_quarantine = |q: &str| {
        let profile = Profile::Name(q.to_owned());
        vec![
            Step::AwaitDisassociated,
            Step::Associate(profile.clone()),
            Step::AwaitAssociated(profile),
        ]
    };
    match current {
        Some(a) => {
            // The isolation mark goes on first, so no later run re-attaches the profile;
            // a retry that finds it already there does not write it again.
            let marked = inst.tags.get(PROFILE_TAG) == Some(&a.profile_arn) && inst.tags.contains_key(ISOLATED_AT_TAG);
            let mark = Step::Tag(vec![
                (PROFILE_TAG, TagValue::Text(a.profile_arn.clone())),
                (ISOLATED_AT_TAG, TagValue::Now),
                finding_tag(facts),
            ]);
            let mut steps: Vec<Step> = (!marked).then_some(mark).into_iter().collect();
            steps.push(Step::Disassociate {
                association_id: a.id.clone(),
            });
            match quarantine {
                Some(q) => steps.extend(attach_quarantine(q)),
                None => steps.push(Step::AwaitDisassociated),
            }
            let then = quarantine
                .map(|q| format!(" and attached quarantine profile {q}"))
                .unwrap_or_default();
            (steps, format!("isolated: detached {}{then}", a.profile_arn), false)
        }
        None => {
            let mut steps = Vec::new();
            if !inst.tags.contains_key(ISOLATED_AT_TAG) {
                steps.push(Step::Tag(vec![(ISOLATED_AT_TAG, TagValue::Now), finding_tag(facts)]));
            }
            match quarantine {
                Some(q) => {
                    steps.extend(attach_quarantine(q));
                    (
                        steps,
                        format!("isolated: no role profile attached; attached quarantine profile {q}"),
                        false,
                    )
                }
                None => (steps, "isolated: no instance profile attached".into(), false),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

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

    const PROFILE: &str = "arn:aws:iam::123456789012:instance-profile/app/WebProfile";
    const CUTOFF: &str = "2026-11-22T10:00:07Z";

    fn inst(id: &str, state: &str, tag_pairs: &[(&str, &str)], assoc: Option<&str>) -> InstanceFacts {
        InstanceFacts {
            id: id.into(),
            state: state.into(),
            tags: tags(tag_pairs),
            association: assoc.map(|p| Association {
                id: format!("iip-assoc-{id}"),
                profile_arn: p.into(),
                state: "associated".into(),
                since: None,
            }),
        }
    }

    fn plan_for(
        config: &Config,
        named: Option<&InstanceFacts>,
        siblings: &[InstanceFacts],
        over: Option<Action>,
    ) -> Vec<InstancePlan> {
        let profiles = [PROFILE.to_string()];
        let role_tags = Tags::new();
        instances(&FleetFacts {
            config,
            cutoff: at(CUTOFF),
            finding_id: "f1",
            role_name: "WebAppRole",
            role_tags: &role_tags,
            role_profiles: &profiles,
            named: named.map(|n| (n.id.as_str(), Some(n))),
            siblings,
            action_override: over,
            observed_at: at(OBSERVED),
        })
    }

    /// When the tests' fleet facts were read: after the cut-off.
    const OBSERVED: &str = "2026-11-22T10:00:08.400Z";

    fn one(config: &Config, named: InstanceFacts, over: Option<Action>) -> InstancePlan {
        plan_for(config, Some(&named), &[], over).remove(0)
    }

    const KEY: &str = "exfil-responder:action";

    #[test]
    fn cycle_detaches_and_reattaches_the_same_profile_with_markers_around_it() {
        let plan = one(
            &Config::default(),
            inst("i-1", "running", &[(KEY, "cycle")], Some(PROFILE)),
            None,
        );
        let profile = Profile::Arn(PROFILE.into());
        assert_eq!(
            plan.steps,
            vec![
                Step::Tag(vec![(PROFILE_TAG, TagValue::Text(PROFILE.into()))]),
                Step::Disassociate {
                    association_id: "iip-assoc-i-1".into()
                },
                Step::AwaitDisassociated,
                Step::Associate(profile.clone()),
                Step::AwaitAssociated(profile),
                // When the facts were read: a bound the association cannot precede.
                Step::Tag(vec![
                    (CYCLED_AT_TAG, TagValue::Text("2026-11-22T10:00:08.400Z".into())),
                    (FINDING_TAG, TagValue::Text("f1".into())),
                ]),
            ]
        );
        assert!(!plan.needs_attention);
    }

    #[test]
    fn cycle_reboot_reboots_after_the_cycle_and_marks_it() {
        let plan = one(
            &Config::default(),
            inst("i-1", "running", &[(KEY, "cycle-reboot")], Some(PROFILE)),
            None,
        );
        assert_eq!(
            &plan.steps[6..],
            &[Step::Reboot, Step::Tag(vec![(REBOOTED_AT_TAG, TagValue::Now)])]
        );
        // Cycled after the cut-off but not yet rebooted (a crash in between): only the reboot is left.
        let half = inst(
            "i-1",
            "running",
            &[(KEY, "cycle-reboot"), (CYCLED_AT_TAG, "2026-11-22T10:00:09Z")],
            Some(PROFILE),
        );
        assert_eq!(
            one(&Config::default(), half, None).steps,
            vec![Step::Reboot, Step::Tag(vec![(REBOOTED_AT_TAG, TagValue::Now)])]
        );
    }

    #[test]
    fn an_instance_cycled_at_or_after_the_cutoff_is_not_cycled_again() {
        for when in [CUTOFF, "2026-11-22T10:05:00Z"] {
            let plan = one(
                &Config::default(),
                inst(
                    "i-1",
                    "running",
                    &[(KEY, "cycle"), (CYCLED_AT_TAG, when)],
                    Some(PROFILE),
                ),
                None,
            );
            assert!(plan.steps.is_empty(), "{when}");
            assert!(plan.result.contains("already cycled"));
        }
        let stale = inst(
            "i-1",
            "running",
            &[(KEY, "cycle"), (CYCLED_AT_TAG, "2026-11-22T10:00:06Z")],
            Some(PROFILE),
        );
        assert_eq!(one(&Config::default(), stale, None).steps.len(), 6);
    }

    #[test]
    fn an_association_made_after_the_cutoff_is_finished_not_cycled_again() {
        // By EC2's timestamp...
        let mut made = inst("i-1", "running", &[(KEY, "cycle")], Some(PROFILE));
        made.association.as_mut().unwrap().since = Some(at("2026-11-22T10:00:09Z"));
        let plan = one(&Config::default(), made.clone(), None);
        assert_eq!(plan.steps[0], Step::AwaitAssociated(Profile::Arn(PROFILE.into())));
        assert_eq!(plan.steps.len(), 2);
        made.association.as_mut().unwrap().since = Some(at("2026-11-22T10:00:06Z"));
        assert_eq!(
            one(&Config::default(), made, None).steps.len(),
            6,
            "an older association is cycled"
        );
        // Without a timestamp (the emulator) nothing proves it fresh, not even our own marker
        // naming another association: a concurrent run's may predate a later cut-off.
        let unknown = inst(
            "i-1",
            "running",
            &[(KEY, "cycle"), (PROFILE_TAG, PROFILE)],
            Some(PROFILE),
        );
        assert_eq!(one(&Config::default(), unknown, None).steps.len(), 5);
    }

    #[test]
    fn a_finished_cycle_is_tagged_with_when_its_association_was_made() {
        let mut made = inst("i-1", "running", &[(KEY, "cycle")], Some(PROFILE));
        made.association.as_mut().unwrap().since = Some(at("2026-11-22T10:00:09Z"));
        let plan = one(&Config::default(), made, None);
        assert_eq!(
            plan.steps[1],
            Step::Tag(vec![
                (CYCLED_AT_TAG, TagValue::Text("2026-11-22T10:00:09.000Z".into())),
                (FINDING_TAG, TagValue::Text("f1".into())),
            ])
        );
    }

    #[test]
    fn a_retry_does_not_rewrite_a_marker_that_is_already_there() {
        let marked = inst(
            "i-1",
            "running",
            &[(KEY, "cycle"), (PROFILE_TAG, PROFILE)],
            Some(PROFILE),
        );
        let plan = one(&Config::default(), marked, None);
        assert_eq!(
            plan.steps[0],
            Step::Disassociate {
                association_id: "iip-assoc-i-1".into()
            }
        );
        let marked = inst(
            "i-1",
            "running",
            &[(KEY, "isolate"), (PROFILE_TAG, PROFILE), (ISOLATED_AT_TAG, CUTOFF)],
            Some(PROFILE),
        );
        assert_eq!(
            one(&Config::default(), marked, None).steps[0],
            Step::Disassociate {
                association_id: "iip-assoc-i-1".into()
            }
        );
    }

    #[test]
    fn a_stranded_instance_is_healed_from_its_marker() {
        let stranded = inst("i-1", "running", &[(KEY, "cycle"), (PROFILE_TAG, PROFILE)], None);
        let plan = one(&Config::default(), stranded, None);
        assert_eq!(
            plan.steps[..2],
            [Step::AwaitDisassociated, Step::Associate(Profile::Arn(PROFILE.into()))]
        );
        assert!(plan.result.starts_with("healed"));

        // Never for an isolated instance, nor from a marker naming a profile that isn't the role's.
        let isolated = inst(
            "i-1",
            "running",
            &[(KEY, "cycle"), (PROFILE_TAG, PROFILE), (ISOLATED_AT_TAG, CUTOFF)],
            None,
        );
        let plan = one(&Config::default(), isolated, None);
        assert!(plan.steps.is_empty() && plan.needs_attention);
        let foreign = inst(
            "i-1",
            "running",
            &[(KEY, "cycle"), (PROFILE_TAG, "arn:aws:iam::1:instance-profile/Other")],
            None,
        );
        let plan = one(&Config::default(), foreign, None);
        assert!(plan.steps.is_empty() && plan.needs_attention);
    }

    #[test]
    fn isolate_marks_first_then_detaches_and_optionally_quarantines() {
        let plan = one(
            &Config::default(),
            inst("i-1", "running", &[(KEY, "isolate")], Some(PROFILE)),
            None,
        );
        assert!(matches!(&plan.steps[0], Step::Tag(t) if t.iter().any(|(k, _)| *k == ISOLATED_AT_TAG)));
        assert_eq!(
            plan.steps[1..],
            [
                Step::Disassociate {
                    association_id: "iip-assoc-i-1".into()
                },
                Step::AwaitDisassociated
            ]
        );

        let config = Config {
            quarantine_profile: Some("Quarantine".into()),
            ..Config::default()
        };
        let plan = one(
            &config,
            inst("i-1", "stopped", &[(KEY, "isolate")], Some(PROFILE)),
            None,
        );
        assert_eq!(plan.steps[3], Step::Associate(Profile::Name("Quarantine".into())));
        let done = inst(
            "i-1",
            "running",
            &[(KEY, "isolate")],
            Some("arn:aws:iam::123456789012:instance-profile/Quarantine"),
        );
        assert!(one(&config, done, None).steps.is_empty());
    }

    #[test]
    fn isolate_applies_only_to_the_named_instance() {
        let named = inst("i-1", "running", &[], Some(PROFILE));
        let sibling = inst("i-2", "running", &[(KEY, "isolate")], Some(PROFILE));
        let plans = plan_for(&Config::default(), Some(&named), &[sibling], None);
        assert!(plans[1].steps.is_empty());
        assert!(
            plans[1]
                .result
                .starts_with("isolate applies only to the instance named")
        );
        assert_eq!(plans[1].relation, Relation::Sibling);
    }

    #[test]
    fn the_payload_override_applies_to_the_named_instance_only() {
        let named = inst("i-1", "running", &[(KEY, "revoke")], Some(PROFILE));
        let sibling = inst("i-2", "running", &[], Some(PROFILE));
        let plans = plan_for(&Config::default(), Some(&named), &[sibling], Some(Action::Cycle));
        assert_eq!(plans[0].steps.len(), 6);
        assert!(plans[1].steps.is_empty());
    }

    #[test]
    fn revoke_ignore_and_states_that_need_no_or_no_safe_action() {
        let config = Config::default();
        let revoke = one(&config, inst("i-1", "running", &[], Some(PROFILE)), None);
        assert_eq!(
            (revoke.steps.len(), revoke.result.as_str()),
            (0, "credentials revoked, recovers at next rotation")
        );
        let ignore = one(&config, inst("i-1", "running", &[(KEY, "ignore")], Some(PROFILE)), None);
        assert!(ignore.steps.is_empty() && ignore.result.starts_with("ignored"));
        let stopped = one(&config, inst("i-1", "stopped", &[(KEY, "cycle")], Some(PROFILE)), None);
        assert!(stopped.steps.is_empty() && stopped.result.contains("when it starts"));
        let pending = one(&config, inst("i-1", "pending", &[(KEY, "cycle")], Some(PROFILE)), None);
        assert!(pending.steps.is_empty() && pending.needs_attention);
        let gone = one(&config, inst("i-1", "terminated", &[(KEY, "cycle")], None), None);
        assert!(gone.steps.is_empty() && !gone.needs_attention);
        let other = one(
            &config,
            inst(
                "i-1",
                "running",
                &[(KEY, "cycle")],
                Some("arn:aws:iam::1:instance-profile/Other"),
            ),
            None,
        );
        assert!(other.steps.is_empty() && other.result.contains("does not hold role"));
    }

    #[test]
    fn without_a_profile_a_revoked_instance_does_not_recover_and_a_marker_asks_for_a_person() {
        let bare = one(&Config::default(), inst("i-1", "running", &[], None), None);
        assert!(bare.steps.is_empty() && !bare.needs_attention);
        assert!(bare.result.contains("has no instance profile"), "{}", bare.result);
        let stranded = one(
            &Config::default(),
            inst("i-1", "running", &[(PROFILE_TAG, PROFILE)], None),
            None,
        );
        assert!(
            stranded.steps.is_empty() && stranded.needs_attention,
            "{}",
            stranded.result
        );
        let isolated = inst(
            "i-1",
            "running",
            &[(PROFILE_TAG, PROFILE), (ISOLATED_AT_TAG, CUTOFF)],
            None,
        );
        assert!(!one(&Config::default(), isolated, None).needs_attention);
    }

    #[test]
    fn an_instance_holding_the_quarantine_profile_is_left_alone_whatever_its_action() {
        let config = Config {
            quarantine_profile: Some("Quarantine".into()),
            ..Config::default()
        };
        let quarantined = |action: &str| {
            let arn = "arn:aws:iam::123456789012:instance-profile/Quarantine";
            one(&config, inst("i-1", "running", &[(KEY, action)], Some(arn)), None)
        };
        for action in ["revoke", "cycle", "cycle-reboot", "ignore"] {
            let plan = quarantined(action);
            assert!(
                plan.steps.is_empty() && plan.needs_attention,
                "{action}: {}",
                plan.result
            );
        }
        let plan = quarantined("isolate");
        assert!(plan.steps.is_empty() && !plan.needs_attention && plan.result.starts_with("already isolated"));
    }

    #[test]
    fn a_missing_named_instance_is_reported_and_siblings_still_planned() {
        let profiles = [PROFILE.to_string()];
        let sibling = [inst("i-2", "running", &[(KEY, "cycle")], Some(PROFILE))];
        let config = Config::default();
        let role_tags = Tags::new();
        let plans = instances(&FleetFacts {
            config: &config,
            cutoff: at(CUTOFF),
            finding_id: "f1",
            role_name: "WebAppRole",
            role_tags: &role_tags,
            role_profiles: &profiles,
            named: Some(("i-0123456789abcdef0", None)),
            siblings: &sibling,
            action_override: None,
            observed_at: at(OBSERVED),
        });
        assert!(plans[0].result.starts_with("not found"));
        assert_eq!(plans[1].steps.len(), 6);
    }
}
