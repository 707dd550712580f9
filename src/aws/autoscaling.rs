//! Amazon EC2 Auto Scaling, for an instance being isolated with `FORENSICS=snapshot` that is a
//! member of a group. Termination protection "doesn't prevent Amazon EC2 Auto Scaling from
//! terminating an instance" (EC2 user guide, "Enable termination protection"): a failed health
//! check (likely, once its profile is gone) or a scale-in would replace it, and its memory and
//! delete-on-termination volumes go with it. An instance on standby stays in its group but is
//! neither health-checked nor chosen for scale-in, and takes no load balancer traffic
//! (Auto Scaling user guide, "Temporarily remove instances from your Auto Scaling group"). The
//! group's desired capacity is kept, so the group launches a replacement and the service keeps
//! serving. `ExitStandby` returns it, for a person to decide after the investigation.

use aws_sdk_autoscaling::Client;

use crate::error::{Error, Result};

/// Where the instance stands with Auto Scaling once asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standby {
    /// Put on standby in this group now.
    Entered(String),
    /// On standby already (an earlier run, or a person).
    Already(String),
    /// In no group: nothing to protect it from.
    NotAMember,
}

/// Put `instance_id` on standby in its group, if it is in one and in service.
pub async fn standby(autoscaling: &Client, instance_id: &str) -> Result<Standby> {
    let Some((group, state)) = membership(autoscaling, instance_id).await? else {
        return Ok(Standby::NotAMember);
    };
    match state.as_str() {
        "Standby" | "EnteringStandby" => Ok(Standby::Already(group)),
        "InService" => {
            let entered = autoscaling
                .enter_standby()
                .auto_scaling_group_name(&group)
                .instance_ids(instance_id)
                .should_decrement_desired_capacity(false)
                .send()
                .await;
            match entered {
                Ok(_) => Ok(Standby::Entered(group)),
                // A retry of a call whose answer was lost finds the instance no longer in service.
                Err(e) => match membership(autoscaling, instance_id).await {
                    Ok(Some((_, now))) if now == "Standby" || now == "EnteringStandby" => Ok(Standby::Entered(group)),
                    _ => Err(Error::aws("autoscaling", "EnterStandby", e)),
                },
            }
        }
        // Pending, terminating, detaching...: EnterStandby takes only an instance in service.
        state => Err(Error::Unexpected(format!(
            "the instance is {state} in Auto Scaling group {group}, which may still terminate it: not put on standby"
        ))),
    }
}

/// The instance's group and lifecycle state, if it is in a group.
async fn membership(autoscaling: &Client, instance_id: &str) -> Result<Option<(String, String)>> {
    let described = autoscaling
        .describe_auto_scaling_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(|e| Error::aws("autoscaling", "DescribeAutoScalingInstances", e))?;
    Ok(described.auto_scaling_instances().first().map(|m| {
        (
            m.auto_scaling_group_name().unwrap_or_default().to_owned(),
            m.lifecycle_state().unwrap_or_default().to_owned(),
        )
    }))
}
