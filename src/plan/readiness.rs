//! Readiness: what a containment would do now to every role an instance uses, and to each of its
//! instances, decided by the very code a containment runs: the gate ([`gate::decide`], as a dry
//! run, so it can plan a write and never permit one), the fleet plan ([`plan::instances`]) and the
//! release decision ([`plan::release`](mod@crate::plan::release)). Nothing here reads or writes.

use std::cmp::Reverse;

use chrono::{DateTime, Duration, Utc};

use crate::config::Config;
use crate::gate::{self, Act, Case, Stolen, Verdict};
use crate::names::RoleName;
use crate::plan::actions::AUTO_SCALING_GROUP_TAG;
use crate::plan::release::{self, Documents, ReleaseFacts, ReleasePlan};
use crate::plan::{
    self, FleetFacts, ISOLATED_AT_TAG, InstanceFacts, InstancePlan, PROFILE_TAG, Profile, RoleFacts, Step,
};
use crate::policy::{self, Existing, Holder, InForce, quota_chars, read_cutoff};
use crate::report::readiness::{
    DARK_HOURS_OBSERVED, Experience, InForceReadiness, InstanceReadiness, Radius, RevocationReadiness, RoleReadiness,
};
use crate::rules::Action;

/// One role that an instance profile holds, as IAM has it.
#[derive(Debug, Clone)]
pub struct RoleInventory {
    pub facts: RoleFacts,
    /// The ARNs of the instance profiles that hold it.
    pub profiles: Vec<String>,
    /// Where a revocation may be (the fallback's document once read).
    pub documents: Documents,
    /// The managed fallback's ARN, where it is attached.
    pub fallback: Option<String>,
    /// Characters of the role's other inline policies, as the quota counts them.
    pub other_inline_chars: usize,
    /// Managed policies attached to it, the fallback included.
    pub attached: usize,
}

/// A role's IAM quotas in the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Every inline policy of a role together (`RolePolicySizeQuota`).
    pub inline_chars: usize,
    /// Managed policies attached to a role (`AttachedPoliciesPerRoleQuota`).
    pub attached: usize,
}

impl Default for Quotas {
    /// IAM's defaults. <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html>
    fn default() -> Self {
        Self {
            inline_chars: 10_240,
            attached: 10,
        }
    }
}

/// Whether GuardDuty watches a region of the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    Enabled,
    /// The detector is there, `DISABLED`: GuardDuty was suspended, and generates no findings.
    Suspended,
    NoDetector,
}

/// Everything read of one account.
pub struct AccountFacts<'a> {
    pub config: &'a Config,
    /// Never revoked: the role this function acts through in the account.
    pub own_role: Option<&'a str>,
    pub member_role: Option<&'a str>,
    pub now: DateTime<Utc>,
    pub quotas: Quotas,
    pub roles: &'a [RoleInventory],
    /// Every instance holding an instance profile, in every region read.
    pub instances: &'a [InstanceFacts],
    /// Each region read, and whether GuardDuty watches there (None: it could not be told).
    pub watched: &'a [(String, Option<Watch>)],
}

/// Each role an instance uses, its readiness, sorted by outage radius; and what is wrong
/// account-wide. A role that only an unused instance profile holds is not among them.
pub fn assess(facts: &AccountFacts<'_>) -> (Vec<RoleReadiness>, Vec<String>) {
    let mut roles: Vec<RoleReadiness> = (facts.roles.iter())
        .map(|r| role(facts, r))
        .filter(|r| !r.instances.is_empty())
        .collect();
    roles.sort_by_key(|r| {
        let radius = &r.radius;
        (
            Reverse(radius.without_credentials),
            Reverse(r.instances.len()),
            r.name.clone(),
        )
    });
    let mut problems = Vec::new();
    for (region, watch) in facts.watched {
        let here = facts.instances.iter().filter(|i| i.region == *region).count();
        let why = match watch {
            _ if here == 0 => continue,
            Some(Watch::NoDetector) => "no GuardDuty detector: no finding will ever arrive from there",
            Some(Watch::Suspended) => {
                "GuardDuty suspended (its detector DISABLED): no finding arrives from there until it is enabled again"
            }
            Some(Watch::Enabled) | None => continue,
        };
        problems.push(format!(
            "region {region} has {here} instance(s) with an instance profile and {why}"
        ));
    }
    (roles, problems)
}

/// One role: the gate's ruling on a containment now, then each of its instances' plans.
fn role(facts: &AccountFacts<'_>, inv: &RoleInventory) -> RoleReadiness {
    let role = &inv.facts;
    let in_force = InForce {
        inline: inv.documents.inline.as_deref().map(read_cutoff),
        managed: (inv.documents.managed.as_ref()).map(|(arn, doc)| (arn.clone(), read_cutoff(doc))),
    };
    let (ruled, mut problems) = match RoleName::parse(&role.name) {
        Ok(name) => {
            let case = Case {
                role_name: &name,
                role: Some(role),
                in_force: &in_force,
                // A containment now: the key first used now, by a finding naming no key.
                stolen: Stolen::default(),
                own_role: facts.own_role,
                member_role: facts.member_role,
                protected_roles: &facts.config.protected_roles,
                now: facts.now,
                dry_run: true,
            };
            let (verdict, warnings) = gate::decide(&case);
            (ruling(&verdict, inv, facts.quotas), warnings)
        }
        Err(why) => ((RevocationReadiness::Refused, Some(why), None), Vec::new()),
    };
    let (revocation, reason, cutoff) = ruled;
    // The role's holders, and those our marker says an interrupted cycle stranded without one of
    // its profiles, as a containment's fleet finds them.
    let mine: Vec<InstanceFacts> = (facts.instances.iter())
        .filter(|i| match i.association.as_ref().filter(|a| a.is_current()) {
            Some(a) => inv.profiles.contains(&a.profile_arn),
            None => i.tags.get(PROFILE_TAG).is_some_and(|p| inv.profiles.contains(p)),
        })
        .cloned()
        .collect();
    let instances = match cutoff {
        Some(cutoff) => planned(facts, inv, cutoff, &mine, &mut problems),
        None => mine.iter().map(unrevoked).collect(),
    };
    if let Some(why) = reason
        .as_ref()
        .filter(|_| revocation != RevocationReadiness::ManagedFallback)
    {
        problems.insert(0, why.clone());
    }
    RoleReadiness {
        name: role.name.clone(),
        arn: role.arn.clone(),
        containable: matches!(
            revocation,
            RevocationReadiness::Inline | RevocationReadiness::ManagedFallback | RevocationReadiness::Kept
        ),
        revocation,
        reason,
        radius: radius(&instances),
        instances,
        in_force: held(facts, inv, &in_force),
        problems,
    }
}

/// How the gate's ruling would be carried out, why where it is not inline, and the cut-off the
/// fleet would be cycled against (none: the role is not revoked).
fn ruling(
    verdict: &Verdict<'_>,
    inv: &RoleInventory,
    quotas: Quotas,
) -> (RevocationReadiness, Option<String>, Option<DateTime<Utc>>) {
    let act = match verdict {
        Verdict::Missing(why) | Verdict::Refuse(_, why) => {
            let why = format!("a containment now would be refused, as the gate rules: {why}");
            return (RevocationReadiness::Refused, Some(why), None);
        }
        Verdict::Act(_, act) => act,
    };
    let cutoff = act.cutoff();
    if let Act::Keep(kept) = act {
        // Only a cut-off in the future covers a key first used now: it denies fresh credentials
        // too, until then (the gate's warning says so).
        let why = format!(
            "a cut-off in force ({}) already covers now: it is kept and nothing is written, and instances \
             cycled get credentials it still denies until then",
            policy::iso_millis(kept.cutoff)
        );
        return (RevocationReadiness::Kept, Some(why), Some(cutoff));
    }
    let deny = quota_chars(&policy::document(cutoff));
    let used = inv.other_inline_chars;
    if used + deny <= quotas.inline_chars {
        return (RevocationReadiness::Inline, None, Some(cutoff));
    }
    let full = format!(
        "its other inline policies use {used} of the {} characters a role's inline policies may hold, and the deny needs {deny}",
        quotas.inline_chars
    );
    if inv.fallback.is_some() || inv.attached < quotas.attached {
        let why = format!("{full}: the managed fallback would be written and attached instead");
        return (RevocationReadiness::ManagedFallback, Some(why), Some(cutoff));
    }
    let why = format!(
        "{full}, and {} of {} managed policies are attached: neither the deny nor its fallback can be written; \
         make room before an incident",
        inv.attached, quotas.attached
    );
    (RevocationReadiness::Impossible, Some(why), None)
}

/// Each instance's plan as the fleet plan makes it, as a sibling of a finding and as the one named.
fn planned(
    facts: &AccountFacts<'_>,
    inv: &RoleInventory,
    cutoff: DateTime<Utc>,
    mine: &[InstanceFacts],
    problems: &mut Vec<String>,
) -> Vec<InstanceReadiness> {
    let fleet = |named: Option<(&'_ str, Option<&'_ InstanceFacts>)>, siblings: &'_ [InstanceFacts]| {
        let fleet = FleetFacts {
            config: facts.config,
            cutoff,
            finding_id: "readiness",
            role_name: &inv.facts.name,
            role_tags: &inv.facts.tags,
            role_profiles: &inv.profiles,
            named,
            siblings,
            action_override: None,
            observed_at: facts.now,
        };
        plan::instances(&fleet)
    };
    let as_siblings = fleet(None, mine);
    let mut out = Vec::new();
    for (inst, plan) in mine.iter().zip(as_siblings) {
        let as_named = fleet(Some((&inst.id, Some(inst))), &[]).pop();
        let holds = inst.association.as_ref().is_some_and(|a| a.is_current());
        let as_sibling = experience(&plan, holds);
        let if_named = (as_named.as_ref())
            .map(|p| experience(p, holds))
            .filter(|e| *e != as_sibling);
        for note in notes(inst, (&plan, as_sibling)) {
            problems.push(format!("instance {} ({}): {note}", inst.id, inst.region));
        }
        let chosen = plan.chosen.as_ref();
        out.push(InstanceReadiness {
            id: inst.id.clone(),
            region: inst.region.clone(),
            state: inst.state.clone(),
            action: chosen.map(|c| c.action),
            source: chosen.map(|c| c.source),
            experience: as_sibling,
            if_named,
            result: plan.result,
        });
    }
    out
}

/// What the instance would experience, read from its plan's steps and whether it holds a profile
/// now (one that holds none loses nothing to the revocation).
pub fn experience(plan: &InstancePlan, holds_profile: bool) -> Experience {
    let state = plan.state.as_deref().unwrap_or_default();
    // An isolation marks the instance isolated, or (marked before) attaches the quarantine
    // profile, which it names; a cycle re-attaches the role's own profile, by its ARN.
    let isolates = plan.steps.iter().any(|s| match s {
        Step::Tag(tags) => tags.iter().any(|(k, _)| *k == ISOLATED_AT_TAG),
        Step::Associate(Profile::Name(_)) => true,
        _ => false,
    });
    let associates = (plan.steps.iter()).any(|s| matches!(s, Step::Associate(Profile::Arn(_))));
    if plan.needs_attention {
        Experience::NeedsAttention
    } else if matches!(state, "terminated" | "shutting-down") {
        Experience::Unaffected
    } else if isolates {
        Experience::Isolated
    } else if associates {
        Experience::Cycled
    } else if !holds_profile {
        Experience::Unaffected
    } else if state == "stopped" {
        Experience::FreshAtStart
    } else {
        Experience::WithoutCredentials
    }
}

/// What would go wrong for the instance that its plan (as a sibling, and what it experiences so)
/// does not already say.
fn notes(inst: &InstanceFacts, (plan, as_sibling): (&InstancePlan, Experience)) -> Vec<String> {
    let mut notes = Vec::new();
    let chosen = plan.chosen.as_ref();
    if let Some(warning) = chosen.and_then(|c| c.warning.clone()) {
        notes.push(warning);
    }
    let asked_cycle = chosen.is_some_and(|c| matches!(c.action, Action::Cycle | Action::CycleReboot));
    let cycled = matches!(as_sibling, Experience::Cycled | Experience::FreshAtStart);
    if asked_cycle && !cycled {
        notes.push(format!("asked to be cycled, but: {}", plan.result));
    }
    if inst.spot {
        notes
            .push("a Spot Instance: EC2 may reclaim it at any time, and its evidence with it if it is isolated".into());
    }
    if let Some(group) = inst.tags.get(AUTO_SCALING_GROUP_TAG) {
        notes.push(format!(
            "in Auto Scaling group {group}: with ELB or custom health checks the group may replace it while it is \
             without credentials, or isolated; with FORENSICS=snapshot an isolation puts it on standby first, \
             otherwise put it in Standby by hand before isolating; scale-in protection does not stop a health-check \
             replacement"
        ));
    }
    notes
}

/// An instance of a role no containment would revoke: its stolen credentials stay valid.
fn unrevoked(inst: &InstanceFacts) -> InstanceReadiness {
    InstanceReadiness {
        id: inst.id.clone(),
        region: inst.region.clone(),
        state: inst.state.clone(),
        action: None,
        source: None,
        experience: Experience::RoleNotRevoked,
        if_named: None,
        result: "the role would not be revoked: a stolen copy of its credentials stays valid until it expires".into(),
    }
}

fn radius(instances: &[InstanceReadiness]) -> Radius {
    let count = |e: Experience| instances.iter().filter(|i| i.experience == e).count();
    let dark: Vec<&InstanceReadiness> = (instances.iter())
        .filter(|i| i.experience == Experience::WithoutCredentials)
        .collect();
    let mut regions: Vec<String> = dark.iter().map(|i| i.region.clone()).collect();
    regions.sort();
    regions.dedup();
    let isolated =
        |i: &&InstanceReadiness| i.experience == Experience::Isolated || i.if_named == Some(Experience::Isolated);
    Radius {
        without_credentials: dark.len(),
        hours_observed: if dark.is_empty() { 0 } else { DARK_HOURS_OBSERVED },
        regions,
        cycled: count(Experience::Cycled),
        isolated_if_named: instances.iter().filter(isolated).count(),
        needs_attention: count(Experience::NeedsAttention),
    }
}

/// The revocations on the role now (`in_force`, read from its documents), and what a release would
/// say of them.
fn held(facts: &AccountFacts<'_>, inv: &RoleInventory, in_force: &InForce) -> Vec<InForceReadiness> {
    let found: Vec<(Holder, &Existing)> = (in_force.inline.iter().map(|e| (Holder::inline(), e)))
        .chain((in_force.managed.iter()).map(|(arn, e)| (Holder::Managed { arn: arn.clone() }, e)))
        .collect();
    if found.is_empty() {
        return Vec::new();
    }
    let decided = release::release(&ReleaseFacts {
        role: Some(&inv.facts),
        documents: &inv.documents,
        own_role: facts.own_role,
        protected_roles: &facts.config.protected_roles,
        hold: facts.config.revoke_hold(),
        forced: None,
        now: facts.now,
    });
    let (releasable_now, release) = match decided {
        ReleasePlan::Remove { .. } => (
            true,
            "safe to release now: every token issued before it has expired".into(),
        ),
        ReleasePlan::TooEarly { reason, .. } | ReleasePlan::Refuse(reason) => (false, reason),
    };
    found
        .into_iter()
        .map(|(holder, existing)| {
            let cutoff = match existing {
                Existing::Cutoff(at) => Some(*at),
                Existing::Unrecognised(_) => None,
            };
            let age = cutoff.map(|c| facts.now.signed_duration_since(c));
            InForceReadiness {
                holder,
                cutoff,
                age_hours: age.map(hours),
                releasable_now,
                release: release.clone(),
            }
        })
        .collect()
}

fn hours(d: Duration) -> f64 {
    (d.num_minutes() as f64 / 6.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Association;
    use crate::plan::testing::{at, tags, web_app_role};
    use crate::policy::{FALLBACK_PATH, document, fallback_name};

    const NOW: &str = "2026-12-06T10:00:00Z";
    const PROFILE: &str = "arn:aws:iam::123456789012:instance-profile/WebAppProfile";

    fn inventory(role_tags: &[(&str, &str)]) -> RoleInventory {
        RoleInventory {
            facts: web_app_role(role_tags),
            profiles: vec![PROFILE.into()],
            documents: Documents::default(),
            fallback: None,
            other_inline_chars: 0,
            attached: 0,
        }
    }

    fn instance(id: &str, state: &str, instance_tags: &[(&str, &str)]) -> InstanceFacts {
        InstanceFacts {
            id: id.into(),
            region: "us-east-1".into(),
            state: state.into(),
            tags: tags(instance_tags),
            association: Some(Association {
                id: format!("iip-assoc-{id}"),
                profile_arn: PROFILE.into(),
                state: "associated".into(),
                since: None,
            }),
            http_tokens: Some("optional".into()),
            hop_limit: Some(2),
            spot: false,
        }
    }

    fn assessed(config: &Config, roles: &[RoleInventory], instances: &[InstanceFacts]) -> Vec<RoleReadiness> {
        let facts = AccountFacts {
            config,
            own_role: Some("exfil-responder-role"),
            member_role: None,
            now: at(NOW),
            quotas: Quotas::default(),
            roles,
            instances,
            watched: &[("us-east-1".into(), Some(Watch::Enabled))],
        };
        assess(&facts).0
    }

    #[test]
    fn a_full_inline_quota_needs_the_fallback_and_a_full_attachment_quota_makes_it_impossible() {
        let config = Config::default();
        let full = RoleInventory {
            other_inline_chars: 10_100,
            attached: 9,
            ..inventory(&[])
        };
        let one = &assessed(&config, std::slice::from_ref(&full), &[instance("i-1", "running", &[])])[0];
        assert_eq!(
            (one.revocation, one.containable),
            (RevocationReadiness::ManagedFallback, true)
        );
        assert!(one.reason.as_deref().unwrap().contains("10100 of the 10240"), "{one:?}");
        let no_room = RoleInventory {
            attached: 10,
            ..full.clone()
        };
        let none = &assessed(
            &config,
            std::slice::from_ref(&no_room),
            &[instance("i-1", "running", &[])],
        )[0];
        assert_eq!(
            (none.revocation, none.containable),
            (RevocationReadiness::Impossible, false)
        );
        assert!(none.problems[0].contains("10 of 10 managed policies"), "{none:?}");
        assert_eq!(none.instances[0].experience, Experience::RoleNotRevoked);
        // The fallback already attached takes a new version: no attachment needed.
        let arn = format!(
            "arn:aws:iam::123456789012:policy{FALLBACK_PATH}{}",
            fallback_name("WebAppRole")
        );
        let attached = RoleInventory {
            fallback: Some(arn),
            ..no_room
        };
        assert_eq!(
            assessed(&config, &[attached], &[instance("i-1", "running", &[])])[0].revocation,
            RevocationReadiness::ManagedFallback
        );
        // Just room: the deny's own size counts, white space not.
        let deny = quota_chars(&document(at(NOW)));
        let fits = RoleInventory {
            other_inline_chars: 10_240 - deny,
            ..full
        };
        assert_eq!(
            assessed(&config, &[fits], &[instance("i-1", "running", &[])])[0].revocation,
            RevocationReadiness::Inline
        );
    }

    #[test]
    fn each_instance_is_planned_as_a_containment_plans_it_as_sibling_and_as_the_one_named() {
        let config = Config::default();
        let roles = [inventory(&[])];
        let instances = [
            instance("i-cycle", "running", &[("exfil-responder:action", "cycle")]),
            instance("i-isolate", "running", &[("exfil-responder:action", "isolate")]),
            instance("i-default", "running", &[]),
            instance("i-stopped", "stopped", &[("exfil-responder:action", "cycle")]),
            instance("i-pending", "pending", &[("exfil-responder:action", "cycle")]),
        ];
        let role = &assessed(&config, &roles, &instances)[0];
        let said: Vec<(&str, Experience, Option<Experience>)> = (role.instances.iter())
            .map(|i| (i.id.as_str(), i.experience, i.if_named))
            .collect();
        assert_eq!(
            said,
            [
                ("i-cycle", Experience::Cycled, None),
                ("i-isolate", Experience::WithoutCredentials, Some(Experience::Isolated)),
                ("i-default", Experience::WithoutCredentials, None),
                ("i-stopped", Experience::FreshAtStart, None),
                ("i-pending", Experience::NeedsAttention, None),
            ]
        );
        let r = &role.radius;
        assert_eq!(
            (
                r.without_credentials,
                r.hours_observed,
                r.cycled,
                r.isolated_if_named,
                r.needs_attention
            ),
            (2, 6, 1, 1, 1)
        );
        assert!(
            role.problems
                .iter()
                .any(|p| p.starts_with("instance i-pending (us-east-1): asked to be cycled, but")),
            "{:?}",
            role.problems
        );
    }

    #[test]
    fn spot_and_auto_scaling_are_named_and_a_hop_limit_of_one_is_no_problem_to_harden() {
        let config = Config {
            require_imdsv2: true,
            ..Config::default()
        };
        let spot = InstanceFacts {
            spot: true,
            ..instance("i-spot", "running", &[])
        };
        let grouped = instance("i-asg", "running", &[("aws:autoscaling:groupName", "web-asg")]);
        let one_hop = InstanceFacts {
            hop_limit: Some(1),
            ..instance("i-hop", "running", &[])
        };
        let hardened = InstanceFacts {
            http_tokens: Some("required".into()),
            hop_limit: Some(1),
            ..instance("i-v2", "running", &[])
        };
        let role = &assessed(&config, &[inventory(&[])], &[spot, grouped, one_hop, hardened])[0];
        let about = |id: &str| {
            role.problems
                .iter()
                .filter(|p| p.contains(id))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert!(about("i-spot")[0].contains("Spot Instance"), "{:?}", role.problems);
        assert!(
            about("i-asg")[0].contains("Auto Scaling group web-asg"),
            "{:?}",
            role.problems
        );
        // HARDEN requires IMDSv2 of the named instance and raises a hop limit of 1 to 2 with it:
        // its containers keep their way to a token.
        assert_eq!(about("i-hop"), Vec::<String>::new());
        // Already IMDSv2 only: nothing changes, nothing breaks.
        assert_eq!(about("i-v2"), Vec::<String>::new());
        let off = &assessed(
            &Config::default(),
            &[inventory(&[])],
            &[InstanceFacts {
                hop_limit: Some(1),
                ..instance("i-hop", "running", &[])
            }],
        )[0];
        assert!(off.problems.is_empty(), "HARDEN off: {:?}", off.problems);
    }

    #[test]
    fn a_protected_role_is_refused_and_its_instances_keep_their_stolen_credentials() {
        let config = Config::default();
        let roles = [inventory(&[("exfil-responder:protected", "true")])];
        let role = &assessed(
            &config,
            &roles,
            &[instance("i-1", "running", &[("exfil-responder:action", "cycle")])],
        )[0];
        assert_eq!(
            (role.revocation, role.containable),
            (RevocationReadiness::Refused, false)
        );
        assert!(role.problems[0].contains("protected"), "{:?}", role.problems);
        assert_eq!(role.instances[0].experience, Experience::RoleNotRevoked);
        assert_eq!(role.radius, Radius::default());
    }

    #[test]
    fn revocations_in_force_say_their_age_and_whether_releasing_them_is_safe() {
        let config = Config::default();
        let encoded = |hours_ago: i64| document(at(NOW) - Duration::hours(hours_ago));
        let old = RoleInventory {
            documents: Documents {
                inline: Some(encoded(30)),
                managed: None,
            },
            ..inventory(&[])
        };
        let young = RoleInventory {
            facts: RoleFacts {
                name: "YoungRole".into(),
                arn: "arn:aws:iam::123456789012:role/YoungRole".into(),
                ..web_app_role(&[])
            },
            documents: Documents {
                inline: Some(encoded(2)),
                managed: None,
            },
            ..inventory(&[])
        };
        let roles = assessed(&config, &[old, young], &[instance("i-1", "running", &[])]);
        let held = |name: &str| roles.iter().find(|r| r.name == name).unwrap().in_force[0].clone();
        let (old, young) = (held("WebAppRole"), held("YoungRole"));
        assert_eq!((old.age_hours, old.releasable_now), (Some(30.0), true));
        assert_eq!((young.age_hours, young.releasable_now), (Some(2.0), false));
        assert!(young.release.contains("safe to release from"), "{young:?}");
    }

    #[test]
    fn a_stranded_instance_is_the_role_s_and_a_role_no_instance_uses_is_left_out() {
        let config = Config::default();
        // An interrupted cycle detached its profile and left our marker naming it.
        let stranded = InstanceFacts {
            association: None,
            ..instance(
                "i-stranded",
                "running",
                &[("exfil-responder:action", "cycle"), (PROFILE_TAG, PROFILE)],
            )
        };
        let unused = RoleInventory {
            facts: RoleFacts {
                name: "IdleRole".into(),
                ..web_app_role(&[])
            },
            profiles: vec!["arn:aws:iam::123456789012:instance-profile/Idle".into()],
            ..inventory(&[])
        };
        let roles = assessed(&config, &[inventory(&[]), unused], &[stranded]);
        let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["WebAppRole"]);
        let healed = &roles[0].instances[0];
        assert_eq!(healed.experience, Experience::Cycled, "{healed:?}");
        assert!(healed.result.starts_with("healed"), "{healed:?}");
    }

    #[test]
    fn an_isolation_that_attaches_the_quarantine_profile_is_an_isolation() {
        let config = Config {
            quarantine_profile: Some("Quarantine".into()),
            ..Config::default()
        };
        // Marked isolated by an earlier run that stopped before the quarantine profile went on.
        let marked = InstanceFacts {
            association: None,
            ..instance(
                "i-marked",
                "running",
                &[
                    ("exfil-responder:action", "isolate"),
                    (PROFILE_TAG, PROFILE),
                    (ISOLATED_AT_TAG, "2026-12-06T09:00:00.000Z"),
                ],
            )
        };
        let attached = instance("i-attached", "running", &[("exfil-responder:action", "isolate")]);
        let role = &assessed(&config, &[inventory(&[])], &[marked, attached])[0];
        let said: Vec<(&str, Experience, Option<Experience>)> = (role.instances.iter())
            .map(|i| (i.id.as_str(), i.experience, i.if_named))
            .collect();
        assert_eq!(
            said,
            [
                // It holds no profile: the revocation takes nothing from it.
                ("i-marked", Experience::Unaffected, Some(Experience::Isolated)),
                ("i-attached", Experience::WithoutCredentials, Some(Experience::Isolated)),
            ]
        );
        assert_eq!(role.radius.without_credentials, 1);
    }

    #[test]
    fn regions_guardduty_does_not_watch_are_named_where_instances_run() {
        let config = Config::default();
        let far = |id: &str, region: &str| InstanceFacts {
            region: region.into(),
            ..instance(id, "running", &[])
        };
        let instances = [
            far("i-1", "eu-west-1"),
            far("i-2", "sa-east-1"),
            far("i-3", "us-east-1"),
        ];
        let watched = [
            ("eu-west-1".to_owned(), Some(Watch::NoDetector)),
            ("sa-east-1".to_owned(), Some(Watch::Suspended)),
            ("us-east-1".to_owned(), Some(Watch::Enabled)),
            // No instance there: nothing to miss.
            ("ap-south-1".to_owned(), Some(Watch::NoDetector)),
        ];
        let roles = [inventory(&[])];
        let facts = AccountFacts {
            config: &config,
            own_role: None,
            member_role: None,
            now: at(NOW),
            quotas: Quotas::default(),
            roles: &roles,
            instances: &instances,
            watched: &watched,
        };
        let problems = assess(&facts).1;
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("region eu-west-1 has 1 instance(s)")
                && problems[0].contains("no GuardDuty detector")
        );
        assert!(problems[1].starts_with("region sa-east-1 has 1 instance(s)") && problems[1].contains("suspended"));
    }

    #[test]
    fn roles_are_sorted_by_how_many_instances_go_dark() {
        let config = Config::default();
        let other = RoleInventory {
            facts: RoleFacts {
                name: "AaaRole".into(),
                ..web_app_role(&[])
            },
            profiles: vec!["arn:aws:iam::123456789012:instance-profile/Aaa".into()],
            ..inventory(&[])
        };
        let cycled = InstanceFacts {
            association: Some(Association {
                profile_arn: "arn:aws:iam::123456789012:instance-profile/Aaa".into(),
                ..instance("i-2", "running", &[]).association.unwrap()
            }),
            ..instance("i-2", "running", &[("exfil-responder:action", "cycle")])
        };
        let roles = assessed(
            &config,
            &[other, inventory(&[])],
            &[instance("i-1", "running", &[]), cycled],
        );
        let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["WebAppRole", "AaaRole"]);
    }
}
