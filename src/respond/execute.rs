//! Execute the fleet plan: each instance's steps in order, through the step executor
//! ([`interpret`]). A concurrent run's fresh association is adopted rather than replaced, and a
//! failure stops that instance only.

use std::sync::Mutex;

use tracing::{info, warn};

use crate::aws::clients::{Target, autoscaling_in, ec2_in};
use crate::error::Error;
use crate::plan::{InstancePlan, Step};
use crate::report::InstanceReport;
use crate::respond::journal::Journal;

mod interpret;
mod round;
use interpret::{Interpreter, describe};
use round::{Attach, attaches};
pub use round::{Counted, Round};

/// What running the plans came to: each instance's report, and the failed ones by id and error kind.
pub struct Executed {
    pub reports: Vec<InstanceReport>,
    pub failures: Vec<String>,
}

/// How the plans are run.
#[derive(Clone, Copy)]
pub struct Running {
    pub dry_run: bool,
    /// Each wait for a detach or attach, at most.
    pub cycle_timeout: std::time::Duration,
}

/// Each plan in its instance's region, with the target's clients moved there.
pub async fn all(
    target: &Target,
    Counted { round, plans }: Counted<'_>,
    running: Running,
    steps: &Journal,
) -> Executed {
    // Every plan starts at once; the round's slots decide which goes ahead (in plan order: tokio's
    // semaphore is fair), the named instance in a place of its own.
    let executed: Vec<(InstanceReport, Option<Error>)> =
        futures::future::join_all(plans.into_iter().map(|p| async move {
            let regional =
                (p.region.as_deref()).map(|r| (ec2_in(&target.ec2, r), autoscaling_in(&target.autoscaling, r)));
            let clients = match &regional {
                Some((ec2, autoscaling)) => (ec2, autoscaling),
                None => (&target.ec2, &target.autoscaling),
            };
            one(clients, p, running, (steps, round)).await
        }))
        .await;
    let failures = executed
        .iter()
        .filter_map(|(r, e)| e.as_ref().map(|e| format!("{} ({})", r.instance_id, e.kind())))
        .collect();
    Executed {
        reports: executed.into_iter().map(|(r, _)| r).collect(),
        failures,
    }
}

/// One plan, in a round of its own.
pub async fn alone(
    target: &Target,
    plan: InstancePlan,
    running: Running,
    steps: &Journal,
) -> (InstanceReport, Option<Error>) {
    let round = Round::new(1);
    let mut counted = round.count(vec![plan]);
    round.all_read();
    let clients = (&target.ec2, &target.autoscaling);
    one(clients, counted.plans.remove(0), running, (steps, &round)).await
}

/// Run one instance's steps in order; the first failure stops that instance, not the others. A
/// best-effort step's failure ([`Step::best_effort`]) does not stop it: the report says what is
/// left for a person.
async fn one(
    (ec2, autoscaling): (&aws_sdk_ec2::Client, &aws_sdk_autoscaling::Client),
    plan: InstancePlan,
    running: Running,
    (steps, round): (&Journal, &Round),
) -> (InstanceReport, Option<Error>) {
    let mut attach = Attach(attaches(&plan).then_some(round));
    let mut out = as_planned(&plan);
    let id = plan.instance_id.as_str();
    if running.dry_run {
        for step in &plan.steps {
            steps.planned(step.op(), id, describe(step));
        }
        if !plan.steps.is_empty() {
            out.result = format!("planned: {}", plan.result);
        }
        return (out, None);
    }
    let cycle = Interpreter {
        ec2,
        autoscaling,
        plan: &plan,
        replaced: replaced(&plan),
        timeout: running.cycle_timeout,
        steps,
        round,
        taken: Mutex::default(),
    };
    // The place ([`Round`]'s slots): taken at the first step that is not a mark, given up at the attach.
    let takes_place = plan.steps.iter().position(|s| !matches!(s, Step::Tag(_)));
    let mut slot = None;
    // Set when a concurrent run attached the profile first: ours is then not attached again.
    let mut adopted = false;
    let (mut ran, mut left, mut stopped) = (0, Vec::new(), None);
    let mut pending = plan.steps.iter().enumerate().peekable();
    while let Some((i, step)) = pending.next() {
        if Some(i) == takes_place {
            slot = Some(round.place(plan.relation).await);
        }
        // A mark after a wait for an association goes out beside it: it states a fact already
        // true, taken as proof only once that association shows (`plan_cycle`).
        let beside = match step {
            Step::AwaitAssociated(_) => pending.next_if(|(_, next)| matches!(next, Step::Tag(_))),
            _ => None,
        };
        ran = i + 1 + usize::from(beside.is_some());
        let (failed, result) = cycle.run_beside(step, beside.map(|(_, mark)| mark), &mut adopted).await;
        if matches!(step, Step::Associate(_)) {
            attach.release();
            drop(slot.take());
        }
        match result {
            Ok(()) if matches!(step, Step::RequireImdsv2 { .. }) => out.metadata_tokens = Some("required".into()),
            Ok(()) => {}
            Err(e) if failed.best_effort() => {
                warn!(instance = id, role = steps.role(), step = failed.op().name(), error = %e, "best-effort step failed; going on");
                left.push(format!("{} ({e})", describe(failed)));
            }
            Err(e) => {
                stopped = Some((failed, e));
                break;
            }
        }
    }
    out.snapshots = cycle.taken.into_inner().unwrap_or_else(|p| p.into_inner());
    if !left.is_empty() {
        out.needs_attention = true;
        out.result = format!("{}; NOT DONE, finish by hand: {}", out.result, left.join("; "));
    }
    match stopped {
        Some((failed, e)) => failed_at(out, &plan, ran, failed, e, steps.role()),
        None => {
            info!(instance = id, role = steps.role(), result = %out.result, "instance done");
            (out, None)
        }
    }
}

/// The association the plan's cycle replaces: any other current one appeared after our facts.
fn replaced(plan: &InstancePlan) -> Option<&str> {
    plan.steps.iter().find_map(|s| match s {
        Step::Disassociate { association_id } => Some(association_id.as_str()),
        _ => None,
    })
}

/// The instance's report before any step has run.
fn as_planned(plan: &InstancePlan) -> InstanceReport {
    let chosen = plan.chosen.as_ref();
    InstanceReport {
        instance_id: plan.instance_id.clone(),
        region: plan.region.clone(),
        relation: plan.relation,
        state: plan.state.clone(),
        action: chosen.map(|c| c.action),
        action_source: chosen.map(|c| c.source),
        result: plan.result.clone(),
        needs_attention: plan.needs_attention,
        snapshots: Vec::new(),
        metadata_tokens: plan.http_tokens.clone(),
    }
}

/// The instance's report once `failed` stopped its plan, after `ran` of its steps.
fn failed_at(
    mut out: InstanceReport,
    plan: &InstancePlan,
    ran: usize,
    failed: &Step,
    e: Error,
    role: Option<&str>,
) -> (InstanceReport, Option<Error>) {
    let detached = plan.steps[..ran].iter().any(|s| matches!(s, Step::Disassociate { .. }));
    let recovery = if detached && attaches(plan) {
        "its profile may be detached now; the marker tag records the original, and a retry finishes the remaining steps"
    } else {
        "a retry finishes the remaining steps"
    };
    let name = failed.op();
    warn!(instance = %out.instance_id, role, step = name.name(), error = %e, "instance step failed");
    out.result = format!("FAILED at {name}: {e}; {recovery}");
    out.needs_attention = true;
    (out, Some(e))
}

/// Merge a round's reports into the run's: a later round's report of an instance replaces its earlier one.
pub fn merge(into: &mut Vec<InstanceReport>, round: Vec<InstanceReport>) {
    for done in round {
        match into.iter_mut().find(|r| r.instance_id == done.instance_id) {
            Some(earlier) => *earlier = done,
            None => into.push(done),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::error::ErrorMetadata;
    use aws_sdk_ec2::operation::associate_iam_instance_profile::{
        AssociateIamInstanceProfileError, AssociateIamInstanceProfileOutput,
    };
    use aws_sdk_ec2::operation::create_snapshots::{CreateSnapshotsError, CreateSnapshotsOutput};
    use aws_sdk_ec2::operation::create_tags::{CreateTagsError, CreateTagsOutput};
    use aws_sdk_ec2::operation::disassociate_iam_instance_profile::DisassociateIamInstanceProfileOutput;
    use aws_sdk_ec2::operation::modify_instance_attribute::ModifyInstanceAttributeOutput;
    use aws_sdk_ec2::operation::modify_instance_metadata_options::{
        ModifyInstanceMetadataOptionsError, ModifyInstanceMetadataOptionsOutput,
    };
    use aws_sdk_ec2::types::{IamInstanceProfileAssociation, SnapshotInfo};
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::api::{ApiCall, StepOutcome};
    use crate::plan::{
        CYCLED_AT_TAG, EVIDENCE_OF_TAG, Evidence, FINDING_TAG, PROFILE_TAG, Profile, Relation, TagValue,
    };
    use crate::respond::mocks::{Rules, associations};
    use crate::wait::Deadline;

    const ID: &str = "i-0a1b2c3d4e5f60718";
    const PROFILE: &str = "arn:aws:iam::123456789012:instance-profile/WebAppProfile";

    fn cycle_plan() -> InstancePlan {
        let profile = Profile::Arn(PROFILE.into());
        InstancePlan {
            instance_id: ID.into(),
            region: None,
            relation: Relation::Named,
            state: Some("running".into()),
            chosen: None,
            steps: vec![
                Step::Tag(vec![(PROFILE_TAG, TagValue::Text(PROFILE.into()))]),
                Step::Disassociate {
                    association_id: "iip-assoc-old".into(),
                },
                Step::AwaitDisassociated,
                Step::Associate(profile.clone()),
                Step::AwaitAssociated(profile),
                Step::Tag(vec![(CYCLED_AT_TAG, TagValue::Now)]),
            ],
            result: "cycled".into(),
            needs_attention: false,
            http_tokens: Some("optional".into()),
        }
    }

    fn running(dry_run: bool) -> Running {
        Running {
            dry_run,
            cycle_timeout: std::time::Duration::from_secs(5),
        }
    }

    fn tags() -> Rule {
        mock!(aws_sdk_ec2::Client::create_tags).then_output(|| CreateTagsOutput::builder().build())
    }

    fn detach() -> Rule {
        mock!(aws_sdk_ec2::Client::disassociate_iam_instance_profile)
            .then_output(|| DisassociateIamInstanceProfileOutput::builder().build())
    }

    fn attach() -> Rule {
        mock!(aws_sdk_ec2::Client::associate_iam_instance_profile).then_output(|| {
            let made = IamInstanceProfileAssociation::builder()
                .association_id("iip-assoc-new")
                .build();
            AssociateIamInstanceProfileOutput::builder()
                .iam_instance_profile_association(made)
                .build()
        })
    }

    /// What EC2 lists for the instance, call after call.
    fn listings(states: &'static [(&'static str, &'static str)]) -> Rule {
        let mut rule = mock!(aws_sdk_ec2::Client::describe_iam_instance_profile_associations).sequence();
        for (id, state) in states {
            rule = rule.output(move || associations(&[(ID, id, PROFILE, state)]));
        }
        rule.build()
    }

    fn ops(steps: Journal) -> Vec<(ApiCall, StepOutcome)> {
        steps.into_records().iter().map(|r| (r.step, r.outcome)).collect()
    }

    /// The old association gone, then the new one associating for two reads before it shows.
    const SHOWS_ON_THE_THIRD_READ: &[(&str, &str)] = &[
        ("iip-assoc-old", "disassociated"),
        ("iip-assoc-new", "associating"),
        ("iip-assoc-new", "associating"),
        ("iip-assoc-new", "associated"),
    ];

    /// Run the cycle plan against EC2 answering with these rules.
    async fn cycled(ec2: Vec<&Rule>) -> (InstanceReport, Option<Error>, Journal) {
        let rules = Rules {
            ec2,
            ..Rules::default()
        };
        let steps = Journal::new("f", Deadline::none());
        let (report, err) = alone(&rules.target(), cycle_plan(), running(false), &steps).await;
        (report, err, steps)
    }

    #[tokio::test(start_paused = true)]
    async fn a_cycle_runs_its_steps_in_order() {
        let (tags, detach, attach) = (tags(), detach(), attach());
        let listed = listings(&[("iip-assoc-old", "disassociated"), ("iip-assoc-new", "associated")]);
        let (report, err, steps) = cycled(vec![&tags, &detach, &attach, &listed]).await;
        assert!(err.is_none(), "{err:?}");
        assert!(!report.needs_attention);
        assert_eq!(report.result, "cycled");
        let ok = StepOutcome::Ok;
        assert_eq!(
            ops(steps),
            [
                (ApiCall::CreateTags, ok),
                (ApiCall::DisassociateIamInstanceProfile, ok),
                (ApiCall::AwaitDisassociation, ok),
                (ApiCall::AssociateIamInstanceProfile, ok),
                // The mark and the wait for the association, side by side (the mark answers first).
                (ApiCall::CreateTags, ok),
                (ApiCall::AwaitAssociation, ok),
            ]
        );
    }

    /// The mark does not wait for the new association to show: it is written beside that wait.
    #[tokio::test(start_paused = true)]
    async fn the_cycled_mark_goes_out_while_the_association_is_awaited() {
        let (tags, detach, attach) = (tags(), detach(), attach());
        let listed = listings(SHOWS_ON_THE_THIRD_READ);
        let (report, err, steps) = cycled(vec![&tags, &detach, &attach, &listed]).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(report.result, "cycled");
        let order: Vec<ApiCall> = ops(steps).into_iter().map(|(op, _)| op).collect();
        let marked = order.iter().rposition(|op| *op == ApiCall::CreateTags).unwrap();
        let shown = order.iter().position(|op| *op == ApiCall::AwaitAssociation).unwrap();
        assert!(marked < shown, "{order:?}");
        assert_eq!(tags.num_calls(), 2);
    }

    /// A mark that fails beside a wait that succeeds is the instance's failure, named as the mark.
    #[tokio::test(start_paused = true)]
    async fn a_failed_mark_beside_the_wait_is_reported_as_the_mark() {
        let (detach, attach) = (detach(), attach());
        let tags = mock!(aws_sdk_ec2::Client::create_tags)
            .sequence()
            .output(|| CreateTagsOutput::builder().build())
            .error(|| CreateTagsError::generic(ErrorMetadata::builder().code("InternalError").build()))
            .build();
        let listed = listings(&[("iip-assoc-old", "disassociated"), ("iip-assoc-new", "associated")]);
        let (report, err, _) = cycled(vec![&tags, &detach, &attach, &listed]).await;
        assert_eq!(err.as_ref().and_then(Error::aws_code), Some("InternalError"));
        assert!(report.result.starts_with("FAILED at CreateTags"), "{}", report.result);
    }

    #[tokio::test(start_paused = true)]
    async fn a_profile_a_concurrent_run_attached_is_adopted_not_attached_again() {
        let (tags, detach, attach) = (tags(), detach(), attach());
        // The old association is gone and another run's, of the same profile, is in its place.
        let listed = listings(&[("iip-assoc-theirs", "associated"), ("iip-assoc-theirs", "associated")]);
        let (report, err, steps) = cycled(vec![&tags, &detach, &attach, &listed]).await;
        assert!(err.is_none(), "{err:?}");
        assert!(!report.needs_attention);
        assert_eq!(attach.num_calls(), 0);
        assert!(
            !ops(steps)
                .iter()
                .any(|(op, _)| *op == ApiCall::AssociateIamInstanceProfile)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_after_the_detach_says_the_profile_may_be_detached() {
        let (tags, detach) = (tags(), detach());
        let refused = mock!(aws_sdk_ec2::Client::associate_iam_instance_profile).then_error(|| {
            AssociateIamInstanceProfileError::generic(ErrorMetadata::builder().code("InternalError").build())
        });
        let listed = listings(&[("iip-assoc-old", "disassociated")]);
        let (report, err, _) = cycled(vec![&tags, &detach, &refused, &listed]).await;
        assert_eq!(err.as_ref().and_then(Error::aws_code), Some("InternalError"));
        assert!(report.needs_attention);
        assert!(
            report.result.starts_with("FAILED at AssociateIamInstanceProfile"),
            "{}",
            report.result
        );
        assert!(
            report.result.contains("its profile may be detached now"),
            "{}",
            report.result
        );
        assert_eq!(tags.num_calls(), 1, "nothing runs after the failed step");
    }

    /// The next instance does not wait for the one before to finish: only for its attach. Its
    /// marker does not wait at all: it goes out with the first's, in one request.
    #[tokio::test(start_paused = true)]
    async fn an_instance_frees_its_slot_once_its_profile_is_attached() {
        const NEXT: &str = "i-0b1c2d3e4f5a60718";
        let (tags, detach, attach) = (tags(), detach(), attach());
        // Both markers in one request: the profile marker of each, and nothing else.
        let markers = mock!(aws_sdk_ec2::Client::create_tags)
            .match_requests(|r| {
                let mut ids = r.resources().to_vec();
                ids.sort();
                ids == [ID, NEXT] && r.tags().iter().all(|t| t.key() == Some(PROFILE_TAG))
            })
            .then_output(|| CreateTagsOutput::builder().build());
        // Only the first instance reads its associations: the new one shows after two reads.
        let listed = listings(SHOWS_ON_THE_THIRD_READ);
        let rules = Rules {
            ec2: vec![&markers, &tags, &detach, &attach, &listed],
            ..Rules::default()
        };
        let next = InstancePlan {
            instance_id: NEXT.into(),
            relation: Relation::Sibling,
            steps: cycle_plan().steps[..2].to_vec(),
            result: "detached".into(),
            ..cycle_plan()
        };
        let steps = Journal::new("f", Deadline::none());
        let round = Round::new(1);
        let plans = round.count(vec![cycle_plan(), next]);
        round.all_read();
        let executed = all(&rules.target(), plans, running(false), &steps).await;
        assert!(executed.failures.is_empty(), "{:?}", executed.failures);
        let order: Vec<(ApiCall, String)> = steps.into_records().into_iter().map(|r| (r.step, r.target)).collect();
        let at = |op: ApiCall, id: &str| order.iter().position(|(o, t)| *o == op && t == id).unwrap();
        let detached = at(ApiCall::DisassociateIamInstanceProfile, NEXT);
        assert!(at(ApiCall::AssociateIamInstanceProfile, ID) < detached, "{order:?}");
        assert!(detached < at(ApiCall::AwaitAssociation, ID), "{order:?}");
        // Both markers in one CreateTags; the only other is the first's cycled-at mark.
        assert_eq!(markers.num_calls(), 1, "{order:?}");
        assert_eq!(tags.num_calls(), 1, "{order:?}");
    }

    /// Regions are read in any order: siblings read first must not keep the named instance from a
    /// place. It has its own, one of `FLEET_CONCURRENCY`; with one alone, it shares it.
    #[test]
    fn the_named_instance_has_a_place_of_its_own() {
        use futures::FutureExt;
        let round = Round::new(2);
        let sibling = round.place(Relation::Sibling).now_or_never().expect("a place");
        assert!(
            round.place(Relation::Sibling).now_or_never().is_none(),
            "one for siblings"
        );
        let named = round.place(Relation::Named).now_or_never();
        assert!(named.is_some(), "the named instance's own");
        drop((sibling, named));
        let alone = Round::new(1);
        let _sibling = alone.place(Relation::Sibling).now_or_never().expect("a place");
        assert!(
            alone.place(Relation::Named).now_or_never().is_none(),
            "shared with one alone"
        );
    }

    /// Regions are read one by one, each counted as it comes: the cut-off is read again only once
    /// the last has been read and every attach counted is done.
    #[tokio::test]
    async fn the_attaches_are_awaited_only_once_every_region_is_read() {
        use futures::FutureExt;
        let (rules, steps) = (Rules::default(), Journal::new("f", Deadline::none()));
        let round = Round::new(4);
        assert!(!round.attaches());
        let first = round.count(vec![cycle_plan()]);
        assert!(round.attaches());
        assert!(round.all_made().now_or_never().is_none(), "its attach is not done");
        all(&rules.target(), first, running(true), &steps).await;
        assert!(
            round.all_made().now_or_never().is_none(),
            "another region may still be read"
        );
        round.all_read();
        assert!(round.all_made().now_or_never().is_some());
    }

    #[tokio::test]
    async fn a_dry_run_records_each_step_as_planned_and_calls_nothing() {
        let tags = tags();
        let rules = Rules {
            ec2: vec![&tags],
            ..Rules::default()
        };
        let steps = Journal::new("f", Deadline::none());
        let round = Round::new(4);
        let plans = round.count(vec![cycle_plan()]);
        round.all_read();
        let executed = all(&rules.target(), plans, running(true), &steps).await;
        assert!(executed.failures.is_empty());
        assert_eq!(executed.reports[0].result, "planned: cycled");
        assert_eq!(tags.num_calls(), 0);
        let records = steps.into_records();
        assert_eq!(records.len(), 6);
        assert!(records.iter().all(|r| r.outcome == StepOutcome::Planned));
        assert_eq!(records[1].detail.as_deref(), Some("detach association iip-assoc-old"));
    }

    fn isolation_keeping_evidence() -> InstancePlan {
        let finding_id = "f1".to_owned();
        InstancePlan {
            steps: vec![
                Step::RequireImdsv2 { hop_limit: None },
                Step::Preserve(Evidence::TerminationProtection),
                Step::Preserve(Evidence::StopOnShutdown),
                Step::Preserve(Evidence::Snapshots { finding_id }),
                Step::Disassociate {
                    association_id: "iip-assoc-old".into(),
                },
            ],
            result: "isolated".into(),
            ..cycle_plan()
        }
    }

    fn protect() -> Rule {
        mock!(aws_sdk_ec2::Client::modify_instance_attribute)
            .then_output(|| ModifyInstanceAttributeOutput::builder().build())
    }

    fn imdsv2() -> Rule {
        mock!(aws_sdk_ec2::Client::modify_instance_metadata_options)
            .then_output(|| ModifyInstanceMetadataOptionsOutput::builder().build())
    }

    async fn isolated(ec2: Vec<&Rule>) -> (InstanceReport, Option<Error>, Vec<(ApiCall, StepOutcome)>) {
        let rules = Rules {
            ec2,
            ..Rules::default()
        };
        let steps = Journal::new("f1", Deadline::none());
        let (report, err) = alone(&rules.target(), isolation_keeping_evidence(), running(false), &steps).await;
        (report, err, ops(steps))
    }

    #[tokio::test(start_paused = true)]
    async fn evidence_is_snapshotted_tagged_and_marked_before_the_detach() {
        let (protect, imdsv2, tags, detach) = (protect(), imdsv2(), tags(), detach());
        let snapshots = mock!(aws_sdk_ec2::Client::create_snapshots)
            .match_requests(|r| {
                let tags = r.tag_specifications().first().map(|t| t.tags()).unwrap_or_default();
                let has = |k: &str, v: &str| tags.iter().any(|t| t.key() == Some(k) && t.value() == Some(v));
                r.instance_specification().and_then(|s| s.instance_id()) == Some(ID)
                    && has(FINDING_TAG, "f1")
                    && has(EVIDENCE_OF_TAG, ID)
            })
            .then_output(|| {
                let taken = ["snap-1", "snap-2"].map(|id| SnapshotInfo::builder().snapshot_id(id).build());
                CreateSnapshotsOutput::builder()
                    .set_snapshots(Some(taken.to_vec()))
                    .build()
            });
        let (report, err, ops) = isolated(vec![&protect, &imdsv2, &snapshots, &tags, &detach]).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(report.snapshots, ["snap-1", "snap-2"]);
        assert_eq!(report.metadata_tokens.as_deref(), Some("required"));
        assert!(!report.needs_attention, "{}", report.result);
        let ok = StepOutcome::Ok;
        assert_eq!(
            ops,
            [
                (ApiCall::ModifyInstanceMetadataOptions, ok),
                (ApiCall::ModifyInstanceAttribute, ok),
                (ApiCall::ModifyInstanceAttribute, ok),
                (ApiCall::CreateSnapshots, ok),
                // The snapshotted-at mark: a retry does not take them again.
                (ApiCall::CreateTags, ok),
                (ApiCall::DisassociateIamInstanceProfile, ok),
            ]
        );
        assert_eq!(protect.num_calls(), 2);
    }

    /// Containment first: evidence that cannot be kept is reported, and the isolation goes on.
    #[tokio::test(start_paused = true)]
    async fn a_failed_snapshot_or_hardening_does_not_stop_the_isolation() {
        let (protect, detach) = (protect(), detach());
        let refused = || ErrorMetadata::builder().code("UnauthorizedOperation").build();
        let snapshots =
            mock!(aws_sdk_ec2::Client::create_snapshots).then_error(move || CreateSnapshotsError::generic(refused()));
        let imdsv2 = mock!(aws_sdk_ec2::Client::modify_instance_metadata_options).then_error(|| {
            ModifyInstanceMetadataOptionsError::generic(ErrorMetadata::builder().code("InternalError").build())
        });
        let (report, err, ops) = isolated(vec![&protect, &imdsv2, &snapshots, &detach]).await;
        assert!(err.is_none(), "{err:?}");
        assert!(report.needs_attention);
        assert!(report.snapshots.is_empty());
        assert_eq!(report.metadata_tokens.as_deref(), Some("optional"), "still as read");
        assert!(
            report.result.starts_with("isolated; NOT DONE, finish by hand: "),
            "{}",
            report.result
        );
        assert!(
            report.result.contains("snapshot every attached EBS volume") && report.result.contains("require IMDSv2")
        );
        assert_eq!(
            ops.last(),
            Some(&(ApiCall::DisassociateIamInstanceProfile, StepOutcome::Ok))
        );
        // No snapshotted-at mark without snapshots.
        assert!(!ops.iter().any(|(op, _)| *op == ApiCall::CreateTags), "{ops:?}");
    }

    #[test]
    fn a_later_round_s_report_replaces_the_earlier_one() {
        let report = |id: &str, result: &str| InstanceReport {
            instance_id: id.into(),
            region: None,
            relation: Relation::Sibling,
            state: None,
            action: None,
            action_source: None,
            result: result.into(),
            needs_attention: false,
            snapshots: Vec::new(),
            metadata_tokens: None,
        };
        let mut all = vec![report("i-1", "first"), report("i-2", "first")];
        merge(&mut all, vec![report("i-2", "second"), report("i-3", "second")]);
        let shown: Vec<(&str, &str)> = all
            .iter()
            .map(|r| (r.instance_id.as_str(), r.result.as_str()))
            .collect();
        assert_eq!(shown, [("i-1", "first"), ("i-2", "second"), ("i-3", "second")]);
    }
}
