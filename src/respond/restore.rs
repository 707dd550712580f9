//! Restore: read the instance, check it is one we isolated, read the profile its marker recorded
//! and that profile's role, decide (`plan::restore`), and run the steps as a cycle's are run.

use std::collections::HashMap;

use crate::api::ApiCall;
use crate::app::App;
use crate::aws::clients::region_of;
use crate::aws::{ec2, iam};
use crate::error::Result;
use crate::names::RoleName;
use crate::operation::Restore;
use crate::plan::restore::{self as plan, Recorded, RestoreFacts};
use crate::plan::{InstanceFacts, InstancePlan, RoleFacts};
use crate::report::{Ended, Outcome, RoleSummary};
use crate::respond::execute::{self, Running};
use crate::respond::journal::Journal;
use crate::respond::undo::{Undoing, Undone};

pub async fn restore(app: &App, reached: &Undoing<'_>, request: &Restore, done: &mut Undone) -> Result<Ended> {
    let (target, steps) = (reached.target, reached.steps);
    let id = request.instance.as_str();
    let Some(inst) = read_instance(&target.ec2, id, steps).await? else {
        let region = region_of(&target.ec2);
        return Ok(Ended::skipped(format!(
            "no instance {id} in region {region}: nothing to restore"
        )));
    };
    let (arn, name) = match plan::recorded_profile(&inst, reached.account) {
        Ok(recorded) => recorded,
        Err(why) => return Ok(Ended::skipped(why)),
    };
    let held = steps
        .run(
            ApiCall::GetInstanceProfile,
            id,
            iam::instance_profile_role(&target.iam, name),
        )
        .await?;
    let role = match held.as_ref().and_then(|r| r.as_deref()).map(RoleName::parse) {
        Some(Ok(role)) => read_role(&target.iam, &role, steps, done).await?,
        Some(Err(_)) | None => None,
    };
    let recorded = match (&held, &role) {
        (None, _) => Recorded::Missing,
        (Some(None), _) => Recorded::Empty,
        (Some(Some(name)), role) => Recorded::Holds(name, role.as_ref()),
    };
    let decided = plan::restore(&RestoreFacts {
        instance: &inst,
        account: reached.account,
        recorded,
        quarantine_profile: app.config.quarantine_profile.as_deref(),
        own_role: reached.own_role,
        protected_roles: &app.config.protected_roles,
    });
    let (planned, result) = match decided {
        Ok(decided) => decided,
        Err(why) => return Ok(Ended::skipped(why)),
    };
    done.operation.profile = Some(arn.to_owned());
    let plan = InstancePlan::named(&inst, planned, result);
    let running = Running {
        dry_run: reached.dry_run,
        cycle_timeout: app.config.cycle_timeout,
    };
    let (report, failed) = execute::alone(target, plan, running, steps).await;
    done.instances.push(report);
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(Ended {
        outcome: if reached.dry_run {
            Outcome::Planned
        } else {
            Outcome::Restored
        },
        reason: None,
    })
}

/// The instance's state and tags, and its current association, read together.
async fn read_instance(ec2_client: &aws_sdk_ec2::Client, id: &str, steps: &Journal) -> Result<Option<InstanceFacts>> {
    let ids = [id.to_owned()];
    let region = region_of(ec2_client);
    let none = HashMap::new();
    let (listed, associations) = tokio::try_join!(
        steps.run(
            ApiCall::DescribeInstances,
            id,
            ec2::describe_instances(ec2_client, (&region, &ids), &none)
        ),
        steps.run(
            ApiCall::DescribeIamInstanceProfileAssociations,
            id,
            ec2::associations_of_each(ec2_client, &ids)
        ),
    )?;
    let current = associations
        .get(id)
        .and_then(|all| all.iter().find(|a| a.is_current()).cloned());
    Ok(listed.into_iter().next().map(|inst| InstanceFacts {
        association: current,
        ..inst
    }))
}

/// The recorded profile's role as IAM has it (None: no such role).
async fn read_role(
    iam_client: &aws_sdk_iam::Client,
    role: &RoleName,
    steps: &Journal,
    done: &mut Undone,
) -> Result<Option<RoleFacts>> {
    steps.set_role(role.as_str());
    let facts = steps
        .run(ApiCall::GetRole, role.as_str(), iam::get_role(iam_client, role))
        .await?;
    done.role = Some(match &facts {
        Some(f) => RoleSummary::of(f),
        None => RoleSummary {
            name: role.to_string(),
            arn: None,
        },
    });
    Ok(facts)
}
