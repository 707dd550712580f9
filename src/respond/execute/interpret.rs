//! One instance's steps as AWS calls: the step executor [`one`](super) runs each step through.

use std::sync::Mutex;

use chrono::{SecondsFormat, Utc};
use tracing::info;

use crate::api::ApiCall;
use crate::aws::autoscaling;
use crate::aws::clients::region_of;
use crate::aws::ec2::{self, Attached};
use crate::aws::{evidence, metadata};
use crate::error::{Error, Result};
use crate::plan::{
    Association, EVIDENCE_OF_TAG, Evidence, FINDING_TAG, InstancePlan, Profile, SNAPSHOTTED_AT_TAG, Step, TagValue,
};
use crate::respond::execute::round::Round;
use crate::respond::journal::Journal;

/// One instance's plan being run.
pub(super) struct Interpreter<'a> {
    pub(super) ec2: &'a aws_sdk_ec2::Client,
    /// For an isolated member of an Auto Scaling group.
    pub(super) autoscaling: &'a aws_sdk_autoscaling::Client,
    pub(super) plan: &'a InstancePlan,
    pub(super) replaced: Option<&'a str>,
    pub(super) timeout: std::time::Duration,
    pub(super) steps: &'a Journal,
    /// Shared with the round's other instances.
    pub(super) round: &'a Round,
    /// The ids of the evidence snapshots taken.
    pub(super) taken: Mutex<Vec<String>>,
}

impl Interpreter<'_> {
    /// Run `step`, and `mark` beside it if one goes there: the step that failed (else `step`),
    /// and the result. Each step's future is boxed: one for every kind of step, inline,
    /// overflowed a debug build's stack.
    pub(super) async fn run_beside<'s>(
        &self,
        step: &'s Step,
        mark: Option<&'s Step>,
        adopted: &mut bool,
    ) -> (&'s Step, Result<()>) {
        match (step, mark) {
            (Step::Associate(_), _) if *adopted => (step, Ok(())),
            (_, Some(mark)) => match tokio::join!(Box::pin(self.run(step)), Box::pin(self.run(mark))) {
                (Err(e), _) => (step, Err(e)),
                (_, Err(e)) => (mark, Err(e)),
                _ => (step, Ok(())),
            },
            _ => (
                step,
                Box::pin(self.run(step)).await.map(|adopting| *adopted |= adopting),
            ),
        }
    }

    /// Run one step; true if it found a concurrent run's association to adopt.
    async fn run(&self, step: &Step) -> Result<bool> {
        let (ec2, id, steps) = (self.ec2, self.plan.instance_id.as_str(), self.steps);
        let op = step.op();
        match step {
            Step::Tag(tags) => {
                let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
                let values: Vec<(String, String)> = tags
                    .iter()
                    .map(|(k, v)| match v {
                        TagValue::Text(t) => (k.to_string(), t.clone()),
                        TagValue::Now => (k.to_string(), now.clone()),
                    })
                    .collect();
                steps.run(op, id, self.mark(values)).await.map(|()| false)
            }
            Step::Disassociate { association_id } => steps
                .run(op, id, ec2::disassociate(ec2, association_id))
                .await
                .map(|()| false),
            Step::AwaitDisassociated => {
                let read = || self.associations();
                let wait = ec2::await_disassociated(read, id, self.replaced, steps.bounded(self.timeout));
                match steps.run(op, id, wait).await? {
                    Some(newer) => self.adopt(&newer).map(|()| true),
                    None => Ok(false),
                }
            }
            Step::Associate(profile) => match steps.run(op, id, ec2::associate(ec2, id, profile)).await? {
                Attached::Made(_) => Ok(false),
                Attached::Found(found) => self.adopt(&found).map(|()| false),
            },
            Step::AwaitAssociated(profile) => {
                let wait = ec2::await_associated(|| self.associations(), id, profile, steps.bounded(self.timeout));
                steps.run(op, id, wait).await.map(|()| false)
            }
            Step::Reboot => steps.run(op, id, ec2::reboot(ec2, id)).await.map(|()| false),
            Step::Untag(keys) => steps.run(op, id, ec2::delete_tags(ec2, id, keys)).await.map(|()| false),
            Step::Preserve(Evidence::TerminationProtection) => steps
                .run(op, id, evidence::protect_from_termination(ec2, id))
                .await
                .map(|()| false),
            Step::Preserve(Evidence::StopOnShutdown) => steps
                .run(op, id, evidence::stop_on_shutdown(ec2, id))
                .await
                .map(|()| false),
            Step::Preserve(Evidence::Snapshots { finding_id }) => self.snapshot(finding_id).await.map(|()| false),
            Step::Preserve(Evidence::Standby) => {
                let standby = steps.run(op, id, autoscaling::standby(self.autoscaling, id)).await?;
                info!(instance = id, ?standby, "Auto Scaling standby");
                Ok(false)
            }
            Step::RequireImdsv2 { hop_limit } => steps
                .run(op, id, metadata::require_imdsv2(ec2, id, *hop_limit))
                .await
                .map(|()| false),
        }
    }

    /// Snapshot the instance's volumes, then mark it so that a retry does not take them again.
    async fn snapshot(&self, finding_id: &str) -> Result<()> {
        let (ec2, id, steps) = (self.ec2, self.plan.instance_id.as_str(), self.steps);
        let tags = [(FINDING_TAG, finding_id.to_owned()), (EVIDENCE_OF_TAG, id.to_owned())];
        let description = format!("exfil-responder: evidence of {id} for finding {finding_id}, before isolation");
        let taken = evidence::snapshot_volumes(ec2, id, &description, &tags);
        let taken = steps.run(ApiCall::CreateSnapshots, id, taken).await?;
        self.taken.lock().unwrap_or_else(|p| p.into_inner()).extend(taken);
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let mark = self.mark(vec![(SNAPSHOTTED_AT_TAG.to_owned(), now)]);
        steps.run(ApiCall::CreateTags, id, mark).await
    }

    /// Write `tags` on this instance: with the round's other instances writing the same, at once.
    async fn mark(&self, tags: Vec<(String, String)>) -> Result<()> {
        let (ec2, id) = (self.ec2, self.plan.instance_id.as_str());
        let send = |ids: Vec<String>| {
            let tags = &tags;
            async move {
                ec2::create_tags(ec2, &ids, tags).await?;
                Ok(ids.into_iter().map(|i| (i, ())).collect())
            }
        };
        self.round.marks.ask((region_of(ec2), tags.clone()), id, (), send).await
    }

    /// This instance's associations in any state: read with the round's other instances waiting.
    async fn associations(&self) -> Result<Vec<Association>> {
        let (ec2, id) = (self.ec2, self.plan.instance_id.as_str());
        let send = |ids: Vec<String>| async move { ec2::associations_of_each(ec2, &ids).await };
        self.round.reads.ask(region_of(ec2), id, Vec::new(), send).await
    }

    /// A profile another run attached after our facts were read is as fresh as ours would be: take
    /// it if it is the one this plan attaches. Any other profile is not ours to replace.
    fn adopt(&self, found: &Association) -> Result<()> {
        let id = self.plan.instance_id.as_str();
        let wanted = self.plan.steps.iter().find_map(|s| match s {
            Step::Associate(p) => Some(p),
            _ => None,
        });
        match wanted {
            Some(p) if ec2::matches_profile(&found.profile_arn, p) && Some(found.id.as_str()) != self.replaced => {
                info!(instance = id, association = %found.id, "a concurrent run attached the profile first; adopting it");
                Ok(())
            }
            _ => Err(Error::Unexpected(format!(
                "{id} holds profile {} (association {}), which this cycle did not attach and cannot take as fresh; not changed further",
                found.profile_arn, found.id
            ))),
        }
    }
}

/// What a dry run says a step would do.
pub(super) fn describe(step: &Step) -> String {
    match step {
        Step::Tag(tags) => {
            let shown: Vec<String> = tags
                .iter()
                .map(|(k, v)| match v {
                    TagValue::Text(t) => format!("{k}={t}"),
                    TagValue::Now => format!("{k}=<time of writing>"),
                })
                .collect();
            shown.join(", ")
        }
        Step::Disassociate { association_id } => format!("detach association {association_id}"),
        Step::AwaitDisassociated => "wait until no profile is attached".into(),
        Step::Associate(Profile::Arn(p)) | Step::Associate(Profile::Name(p)) => format!("attach {p}"),
        Step::AwaitAssociated(_) => "wait until the new association is associated".into(),
        Step::Reboot => "reboot".into(),
        Step::Untag(keys) => format!("remove tags {}", keys.join(", ")),
        Step::Preserve(Evidence::TerminationProtection) => "enable termination protection".into(),
        Step::Preserve(Evidence::Standby) => {
            "put it on standby in its Auto Scaling group (not health-checked nor scaled in)".into()
        }
        Step::Preserve(Evidence::StopOnShutdown) => "make a shutdown from inside stop the instance".into(),
        Step::Preserve(Evidence::Snapshots { finding_id }) => {
            format!("snapshot every attached EBS volume, tagged with finding {finding_id}")
        }
        Step::RequireImdsv2 { hop_limit: None } => "require IMDSv2 (HttpTokens=required)".into(),
        Step::RequireImdsv2 { hop_limit: Some(n) } => {
            format!("require IMDSv2 (HttpTokens=required), hop limit {n} (HttpPutResponseHopLimit)")
        }
    }
}
