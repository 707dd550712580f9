//! What each tag action does to one instance: the steps for revoke (none), cycle and isolate,
//! each idempotent against the marker tags it writes.

use chrono::{DateTime, Utc};

use crate::plan::model::{
    Association, CYCLED_AT_TAG, Evidence, FINDING_TAG, FleetFacts, ISOLATED_AT_TAG, InstanceFacts, PROFILE_TAG,
    Profile, REBOOTED_AT_TAG, SNAPSHOTTED_AT_TAG, Step, TagValue,
};
use crate::policy::iso_millis;
use crate::rules::{Action, Tags};

pub(super) fn left_revoked(inst: &InstanceFacts, current: Option<&Association>, action: Action) -> ActionPlan {
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

fn tag_time(tags: &Tags, key: &str) -> Option<DateTime<Utc>> {
    tags.get(key)
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
        .map(|d| d.with_timezone(&Utc))
}

fn finding_tag(facts: &FleetFacts<'_>) -> (&'static str, TagValue) {
    (FINDING_TAG, TagValue::Text(facts.finding_id.to_owned()))
}

/// Waiting for a new association to be `associated`, except on a stopped instance: EC2 may leave
/// its association `associating` until the instance starts, and it gets its credentials then.
fn await_associated(inst: &InstanceFacts, profile: Profile) -> Option<Step> {
    (inst.state != "stopped").then_some(Step::AwaitAssociated(profile))
}

/// The steps, the result to report, and whether a person must look.
pub(super) type ActionPlan = (Vec<Step>, String, bool);

pub(super) fn plan_cycle(
    facts: &FleetFacts<'_>,
    inst: &InstanceFacts,
    current: Option<&Association>,
    reboot: bool,
) -> ActionPlan {
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
    let cycle = InstanceCycle {
        facts,
        inst,
        reboot,
        running,
    };
    match current {
        Some(_) if !running => (
            Vec::new(),
            "instance is stopped: it gets fresh credentials when it starts".into(),
            false,
        ),
        Some(a) => cycle.attached(a),
        None => cycle.detached(),
    }
}

/// One instance's cycle, with what its steps share.
struct InstanceCycle<'a> {
    facts: &'a FleetFacts<'a>,
    inst: &'a InstanceFacts,
    reboot: bool,
    running: bool,
}

impl InstanceCycle<'_> {
    /// The association a cycle makes (or finds made by a concurrent run) is newer than the facts,
    /// and the facts were read after the cut-off was decided; so is the one it heals with.
    fn done_tags(&self, associated_since: DateTime<Utc>) -> Step {
        Step::Tag(vec![
            (CYCLED_AT_TAG, TagValue::Text(iso_millis(associated_since))),
            finding_tag(self.facts),
        ])
    }

    /// The reboot is marked after it is sent, so it happens at least once: if the mark fails,
    /// the retry reboots again, as no EC2 API tells whether a reboot happened.
    fn reboot_steps(&self) -> Vec<Step> {
        if self.reboot && self.running {
            vec![Step::Reboot, Step::Tag(vec![(REBOOTED_AT_TAG, TagValue::Now)])]
        } else {
            Vec::new()
        }
    }

    /// A running instance holding one of the role's profiles.
    fn attached(&self, a: &Association) -> ActionPlan {
        let (facts, inst) = (self.facts, self.inst);
        let cycled = tag_time(&inst.tags, CYCLED_AT_TAG).filter(|t| *t >= facts.cutoff);
        let rebooted = tag_time(&inst.tags, REBOOTED_AT_TAG).filter(|t| *t >= facts.cutoff);
        let profile = Profile::Arn(a.profile_arn.clone());
        // The mark goes on beside the wait for the association it follows (`execute`): any
        // association current after it is that one or a later one, but only one that shows has
        // issued credentials. A run cut short in that wait leaves only the wait to do.
        let shows = a.state == "associated";
        if let Some(at) = cycled.filter(|_| !shows) {
            let mut steps = vec![Step::AwaitAssociated(profile)];
            if rebooted.is_none() {
                steps.extend(self.reboot_steps());
            }
            let result = format!("cycled at {}; waited for its association to show", iso_millis(at));
            return (steps, result, false);
        }
        // EC2 says when the association was made (AWS does; the emulator does not). Without
        // that, only our own cycled-at mark proves an association fresh, never a guess.
        let fresh = a.since.filter(|since| *since >= facts.cutoff);
        match (cycled, self.reboot && rebooted.is_none(), fresh) {
            (Some(at), false, _) => (
                Vec::new(),
                format!("already cycled at {}, after the cut-off", iso_millis(at)),
                false,
            ),
            (Some(at), true, _) => (
                self.reboot_steps(),
                format!(
                    "cycled at {}; rebooting so applications drop cached credentials",
                    iso_millis(at)
                ),
                false,
            ),
            (None, _, Some(since)) => {
                let mut steps = vec![Step::AwaitAssociated(profile), self.done_tags(since)];
                steps.extend(self.reboot_steps());
                (
                    steps,
                    format!(
                        "cycled: its association was made at {}, after the cut-off",
                        iso_millis(since)
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
                    self.done_tags(facts.observed_at),
                ]);
                steps.extend(self.reboot_steps());
                let then = if self.reboot { ", then rebooted" } else { "" };
                (
                    steps,
                    format!("cycled: profile re-attached after the cut-off, fresh credentials now{then}"),
                    false,
                )
            }
        }
    }

    /// No profile now: isolated earlier, stranded by an interrupted cycle (healed), or never had one.
    fn detached(&self) -> ActionPlan {
        let (facts, inst) = (self.facts, self.inst);
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
                let mut steps = vec![Step::AwaitDisassociated, Step::Associate(profile.clone())];
                steps.extend(await_associated(inst, profile));
                steps.push(self.done_tags(facts.observed_at));
                steps.extend(self.reboot_steps());
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

/// `FORENSICS=snapshot`: what is kept before the instance loses its profile, once per cut-off (a
/// retry, or another finding answered by the same revocation, finds the snapshots taken), and what
/// the report says of it. Not for an instance about to stop or start: its state must hold still.
fn evidence(facts: &FleetFacts<'_>, inst: &InstanceFacts) -> (Vec<Step>, String) {
    if !facts.config.forensic_snapshots {
        return (Vec::new(), String::new());
    }
    // A mark from the future was not written by us (anyone allowed CreateTags can write one).
    let taken = tag_time(&inst.tags, SNAPSHOTTED_AT_TAG).filter(|t| *t >= facts.cutoff && *t <= facts.observed_at);
    if let Some(at) = taken {
        return (Vec::new(), format!("; evidence snapshots taken at {}", iso_millis(at)));
    }
    // A group's member first: termination protection does not stop Auto Scaling from replacing it.
    let member = inst.tags.contains_key(AUTO_SCALING_GROUP_TAG);
    let mut steps: Vec<Step> = member
        .then_some(Step::Preserve(Evidence::Standby))
        .into_iter()
        .collect();
    // EC2 enables termination protection on no Spot Instance (EC2 user guide, "Enable termination
    // protection"); EC2 may reclaim it at any time whatever is done here.
    if !inst.spot {
        steps.push(Step::Preserve(Evidence::TerminationProtection));
    }
    steps.push(Step::Preserve(Evidence::StopOnShutdown));
    steps.push(Step::Preserve(Evidence::Snapshots {
        finding_id: facts.finding_id.to_owned(),
    }));
    let kept = match (member, inst.spot) {
        (true, false) => "standby in its Auto Scaling group, termination protection, stop on shutdown, EBS snapshots",
        (false, false) => "termination protection, stop on shutdown, EBS snapshots",
        (true, true) => "standby in its Auto Scaling group, stop on shutdown, EBS snapshots",
        (false, true) => "stop on shutdown, EBS snapshots",
    };
    let spot = if inst.spot {
        " (a Spot Instance: EC2 takes no termination protection for it, and may reclaim it at any time)"
    } else {
        ""
    };
    (steps, format!("; evidence kept first: {kept}{spot}"))
}

/// EC2 tags every instance an Auto Scaling group launches with its group's name; `aws:` tags
/// cannot be written by anyone else.
pub const AUTO_SCALING_GROUP_TAG: &str = "aws:autoscaling:groupName";

pub(super) fn plan_isolate(facts: &FleetFacts<'_>, inst: &InstanceFacts, current: Option<&Association>) -> ActionPlan {
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
        let mut steps = vec![Step::AwaitDisassociated, Step::Associate(profile.clone())];
        steps.extend(await_associated(inst, profile));
        steps
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
            // After the mark, which the template's conditions on these calls look for.
            let (kept, evidence) = evidence(facts, inst);
            steps.extend(kept);
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
            (
                steps,
                format!("isolated: detached {}{then}{evidence}", a.profile_arn),
                false,
            )
        }
        None => {
            let mut steps = Vec::new();
            if !inst.tags.contains_key(ISOLATED_AT_TAG) {
                steps.push(Step::Tag(vec![(ISOLATED_AT_TAG, TagValue::Now), finding_tag(facts)]));
            }
            let (kept, evidence) = evidence(facts, inst);
            steps.extend(kept);
            match quarantine {
                Some(q) => {
                    steps.extend(attach_quarantine(q));
                    (
                        steps,
                        format!("isolated: no role profile attached; attached quarantine profile {q}{evidence}"),
                        false,
                    )
                }
                None => (
                    steps,
                    format!("isolated: no instance profile attached{evidence}"),
                    false,
                ),
            }
        }
    }
}
