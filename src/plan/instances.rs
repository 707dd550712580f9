//! The fleet decision: for each instance using the revoked role, its action (from tags) and the
//! steps that action needs, given the cut-off in force.

use crate::config::Config;
use crate::names::profile_name_from_arn;
use crate::plan::actions::{left_revoked, plan_cycle, plan_isolate};
use crate::plan::hardening;
use crate::plan::model::{FleetFacts, InstanceFacts, InstancePlan, Relation};
use crate::rules::{Action, choose_action};

pub fn instances(facts: &FleetFacts<'_>) -> Vec<InstancePlan> {
    let named = facts.named.map(|(id, found)| match found {
        Some(inst) => plan_instance(facts, Relation::Named, inst),
        None => InstancePlan {
            instance_id: id.to_owned(),
            region: None,
            relation: Relation::Named,
            state: None,
            chosen: None,
            steps: Vec::new(),
            result: "not found in the account's enabled regions (terminated long ago, or in a region not enabled): \
                     the role is revoked regardless; find the instance and check its credentials by hand"
                .into(),
            needs_attention: true,
            http_tokens: None,
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
        region: Some(inst.region.clone()),
        relation,
        state: Some(inst.state.clone()),
        chosen: Some(chosen.clone()),
        steps: Vec::new(),
        result: String::new(),
        needs_attention: false,
        http_tokens: inst.http_tokens.clone(),
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
    let mut result = format!("{prefix}{result}");
    if let Some((step, said)) = hardening::first_step(facts, relation, inst, action) {
        plan.steps.insert(0, step);
        result.push_str(said);
    }
    note(&mut plan, result, attention);
    plan
}

fn note(plan: &mut InstancePlan, result: String, attention: bool) {
    plan.result = result;
    plan.needs_attention = attention;
}

fn is_quarantine(config: &Config, profile_arn: &str) -> bool {
    config
        .quarantine_profile
        .as_deref()
        .is_some_and(|q| profile_name_from_arn(profile_arn) == Some(q))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::model::*;
    use crate::plan::testing::{at, tags};
    use crate::rules::Tags;

    const PROFILE: &str = "arn:aws:iam::123456789012:instance-profile/app/WebProfile";
    const CUTOFF: &str = "2026-11-22T10:00:07Z";

    fn inst(id: &str, state: &str, tag_pairs: &[(&str, &str)], assoc: Option<&str>) -> InstanceFacts {
        InstanceFacts {
            region: "us-east-1".into(),
            id: id.into(),
            state: state.into(),
            tags: tags(tag_pairs),
            association: assoc.map(|p| Association {
                id: format!("iip-assoc-{id}"),
                profile_arn: p.into(),
                state: "associated".into(),
                since: None,
            }),
            http_tokens: Some("optional".into()),
            hop_limit: None,
            spot: false,
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
    fn a_cycled_at_mark_proves_nothing_until_its_association_shows() {
        let mut marked = inst(
            "i-1",
            "running",
            &[(KEY, "cycle"), (CYCLED_AT_TAG, "2026-11-22T10:00:09Z")],
            Some(PROFILE),
        );
        marked.association.as_mut().unwrap().state = "associating".into();
        let plan = one(&Config::default(), marked, None);
        // Marked beside the wait for its association (a run cut short there): only the wait is left.
        assert_eq!(plan.steps, [Step::AwaitAssociated(Profile::Arn(PROFILE.into()))]);
        assert!(!plan.result.contains("already cycled"), "{}", plan.result);
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
    fn a_stopped_instance_s_new_association_is_not_waited_for() {
        // EC2 may keep it `associating` until the instance starts: waiting would time out.
        let waits = |plan: &InstancePlan| plan.steps.iter().any(|s| matches!(s, Step::AwaitAssociated(_)));
        let stranded = |state| inst("i-1", state, &[(KEY, "cycle"), (PROFILE_TAG, PROFILE)], None);
        let stopped = one(&Config::default(), stranded("stopped"), None);
        assert_eq!(stopped.steps[1], Step::Associate(Profile::Arn(PROFILE.into())));
        assert!(!waits(&stopped), "{:?}", stopped.steps);
        assert!(waits(&one(&Config::default(), stranded("running"), None)));

        let config = Config {
            quarantine_profile: Some("Quarantine".into()),
            ..Config::default()
        };
        let isolate = |state| inst("i-1", state, &[(KEY, "isolate")], Some(PROFILE));
        let stopped = one(&config, isolate("stopped"), None);
        assert_eq!(
            stopped.steps.last(),
            Some(&Step::Associate(Profile::Name("Quarantine".into())))
        );
        assert!(waits(&one(&config, isolate("running"), None)));
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

    fn forensic() -> Config {
        Config {
            forensic_snapshots: true,
            ..Config::default()
        }
    }

    fn kept(finding: &str) -> [Step; 3] {
        [
            Step::Preserve(Evidence::TerminationProtection),
            Step::Preserve(Evidence::StopOnShutdown),
            Step::Preserve(Evidence::Snapshots {
                finding_id: finding.into(),
            }),
        ]
    }

    #[test]
    fn forensics_keeps_evidence_after_the_mark_and_before_the_detach() {
        let plan = one(
            &forensic(),
            inst("i-1", "running", &[(KEY, "isolate")], Some(PROFILE)),
            None,
        );
        assert!(matches!(&plan.steps[0], Step::Tag(t) if t.iter().any(|(k, _)| *k == ISOLATED_AT_TAG)));
        assert_eq!(plan.steps[1..4], kept("f1"));
        assert!(matches!(plan.steps[4], Step::Disassociate { .. }), "{:?}", plan.steps);
        assert!(plan.result.contains("evidence kept first"), "{}", plan.result);
        // Off by default: the same instance, no evidence steps.
        let plain = one(
            &Config::default(),
            inst("i-1", "running", &[(KEY, "isolate")], Some(PROFILE)),
            None,
        );
        assert!(!plain.steps.iter().any(Step::best_effort));
        // Only for isolation: a cycle keeps none.
        let cycled = one(
            &forensic(),
            inst("i-1", "running", &[(KEY, "cycle")], Some(PROFILE)),
            None,
        );
        assert!(!cycled.steps.iter().any(Step::best_effort));
    }

    #[test]
    fn evidence_is_taken_once_per_cut_off() {
        let marked = |at: &str| {
            let tags = [(KEY, "isolate"), (ISOLATED_AT_TAG, CUTOFF), (SNAPSHOTTED_AT_TAG, at)];
            one(&forensic(), inst("i-1", "running", &tags, None), None)
        };
        // Taken for this cut-off (a retry, or a second finding the same revocation answers).
        let again = marked("2026-11-22T10:00:08.000Z");
        assert!(again.steps.is_empty(), "{:?}", again.steps);
        assert!(
            again
                .result
                .contains("evidence snapshots taken at 2026-11-22T10:00:08.000Z")
        );
        // Taken for an earlier revocation: this incident gets its own.
        assert_eq!(marked("2026-11-01T00:00:00.000Z").steps, kept("f1"));
        // A mark later than the facts were read is forged: it does not stop the snapshots.
        assert_eq!(marked("2099-01-01T00:00:00.000Z").steps, kept("f1"));
        // An isolated instance whose evidence was never taken gets it, with no new mark.
        let bare = one(
            &forensic(),
            inst("i-1", "stopped", &[(KEY, "isolate"), (ISOLATED_AT_TAG, CUTOFF)], None),
            None,
        );
        assert_eq!(bare.steps, kept("f1"));
    }

    fn hardened(config: &Config, sibling_tags: &[(&str, &str)], role_tags: &Tags) -> Vec<InstancePlan> {
        let profiles = [PROFILE.to_string()];
        let named = inst("i-1", "running", &[], Some(PROFILE));
        let siblings = [inst("i-2", "running", sibling_tags, Some(PROFILE))];
        instances(&FleetFacts {
            config,
            cutoff: at(CUTOFF),
            finding_id: "f1",
            role_name: "WebAppRole",
            role_tags,
            role_profiles: &profiles,
            named: Some(("i-1", Some(&named))),
            siblings: &siblings,
            action_override: None,
            observed_at: at(OBSERVED),
        })
    }

    #[test]
    fn harden_requires_imdsv2_on_the_named_instance_and_tagged_siblings_first() {
        let on = Config {
            require_imdsv2: true,
            default_action: Action::Cycle,
            ..Config::default()
        };
        let none = Tags::new();
        let plans = hardened(&on, &[], &none);
        assert_eq!(
            plans[0].steps[0],
            Step::RequireImdsv2 { hop_limit: None },
            "before the cycle's fresh credentials"
        );
        assert!(plans[0].steps.len() > 1 && plans[0].result.ends_with("IMDSv2 required first"));
        assert!(
            !plans[1].steps.contains(&Step::RequireImdsv2 { hop_limit: None }),
            "an untagged sibling is left as it is"
        );
        let tagged = hardened(&on, &[(HARDEN_TAG, "IMDSv2")], &none);
        assert_eq!(tagged[1].steps[0], Step::RequireImdsv2 { hop_limit: None });
        let by_role = hardened(&on, &[], &tags(&[(HARDEN_TAG, "imdsv2")]));
        assert_eq!(by_role[1].steps[0], Step::RequireImdsv2 { hop_limit: None });
        // Off by default, even where a tag asks.
        let off = Config {
            default_action: Action::Cycle,
            ..Config::default()
        };
        assert!(
            hardened(&off, &[(HARDEN_TAG, "imdsv2")], &none)
                .iter()
                .all(|p| !p.steps.iter().any(|s| matches!(s, Step::RequireImdsv2 { .. })))
        );
    }

    #[test]
    fn harden_skips_ignored_finished_and_unsettled_instances() {
        let on = Config {
            require_imdsv2: true,
            ..Config::default()
        };
        let with = |state: &str, tags: &[(&str, &str)], tokens: Option<&str>| {
            let facts = InstanceFacts {
                http_tokens: tokens.map(str::to_owned),
                ..inst("i-1", state, tags, Some(PROFILE))
            };
            one(&on, facts, None).steps
        };
        // Revoke only: the one step is the hardening.
        assert_eq!(
            with("running", &[], Some("optional")),
            [Step::RequireImdsv2 { hop_limit: None }]
        );
        assert_eq!(with("stopped", &[], None), [Step::RequireImdsv2 { hop_limit: None }]);
        assert!(with("running", &[], Some("required")).is_empty());
        // A hop limit of 1 is raised to 2 in the same call; any other is left as it is.
        let hops = |limit: Option<i32>| {
            let facts = InstanceFacts {
                http_tokens: Some("optional".into()),
                hop_limit: limit,
                ..inst("i-1", "running", &[], Some(PROFILE))
            };
            one(&on, facts, None).steps
        };
        assert_eq!(hops(Some(1)), [Step::RequireImdsv2 { hop_limit: Some(2) }]);
        assert_eq!(hops(Some(3)), [Step::RequireImdsv2 { hop_limit: None }]);
        assert!(with("running", &[(KEY, "ignore")], Some("optional")).is_empty());
        assert!(with("pending", &[], Some("optional")).is_empty());
    }
}
