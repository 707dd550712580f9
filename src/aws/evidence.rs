//! EC2 effects that keep evidence before an instance is isolated (`FORENSICS=snapshot`): termination
//! protection, stop on shutdown, and snapshots of its EBS volumes.
//!
//! The role may do these only on instances already carrying our isolation mark (the template's
//! `ec2:ResourceTag` conditions), written just before: so a refusal is retried while the new tag
//! may not be visible yet ([`once_tags_show`]).

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, AttributeValue, InstanceSpecification, ResourceType, Tag, TagSpecification,
};

use crate::aws::ec2::once_tags_show;
use crate::error::{Error, Result};

/// Termination protection on. Each attribute is a call of its own: EC2 modifies one at a time.
/// The named member, not `Attribute`/`Value`: IAM's `ec2:Attribute/DisableApiTermination`
/// condition is on it.
pub async fn protect_from_termination(ec2: &Client, instance_id: &str) -> Result<()> {
    let on = AttributeBooleanValue::builder().value(true).build();
    once_tags_show(|| {
        ec2.modify_instance_attribute()
            .instance_id(instance_id)
            .disable_api_termination(on.clone())
            .send()
    })
    .await
    .map_err(|e| Error::aws("ec2", "ModifyInstanceAttribute", e))?;
    Ok(())
}

/// A shutdown from inside the instance (an attacker's `shutdown -h`) stops it, keeping its
/// volumes, rather than terminating it.
pub async fn stop_on_shutdown(ec2: &Client, instance_id: &str) -> Result<()> {
    let stop = AttributeValue::builder().value("stop").build();
    once_tags_show(|| {
        ec2.modify_instance_attribute()
            .instance_id(instance_id)
            .instance_initiated_shutdown_behavior(stop.clone())
            .send()
    })
    .await
    .map_err(|e| Error::aws("ec2", "ModifyInstanceAttribute", e))?;
    Ok(())
}

/// Crash-consistent snapshots of every EBS volume attached to the instance, taken together
/// (`CreateSnapshots`), each tagged as given. Returns their ids. The point in time is the call:
/// the snapshots complete in the background.
pub async fn snapshot_volumes(
    ec2: &Client,
    instance_id: &str,
    description: &str,
    tags: &[(&str, String)],
) -> Result<Vec<String>> {
    let tags = TagSpecification::builder()
        .resource_type(ResourceType::Snapshot)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(v).build())
                .collect(),
        ))
        .build();
    let spec = InstanceSpecification::builder()
        .instance_id(instance_id)
        .exclude_boot_volume(false)
        .build();
    let out = once_tags_show(|| {
        ec2.create_snapshots()
            .instance_specification(spec.clone())
            .description(description)
            .tag_specifications(tags.clone())
            .send()
    })
    .await
    .map_err(|e| Error::aws("ec2", "CreateSnapshots", e))?;
    let ids: Vec<String> = out
        .snapshots
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| s.snapshot_id)
        .collect();
    if ids.is_empty() {
        // An instance-store-only instance has no EBS volume: nothing was kept.
        return Err(Error::Unexpected(format!(
            "CreateSnapshots took no snapshot of {instance_id}: it has no EBS volume attached"
        )));
    }
    Ok(ids)
}
