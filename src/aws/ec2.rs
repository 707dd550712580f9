//! EC2 effects: instances, their instance-profile associations, tags and reboots.
//!
//! EC2's errors are not modelled in the Rust SDK; they are told apart by `code()`.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{Filter, IamInstanceProfileAssociation, IamInstanceProfileSpecification, Instance, Tag};

use crate::error::{Error, Result};
use crate::plan::model::{Association, InstanceFacts, PROFILE_TAG, Profile};
use crate::rules::Tags;
use crate::wait::poll;

/// EC2 accepts at most 200 values in one filter.
const FILTER_VALUES_MAX: usize = 200;

fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().map(Into::into).collect()))
        .build()
}

fn association(a: IamInstanceProfileAssociation) -> Option<(String, Association)> {
    let state = a.state.map(|s| s.as_str().to_owned()).unwrap_or_default();
    let profile_arn = a.iam_instance_profile.and_then(|p| p.arn)?;
    let since = a
        .timestamp
        .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
    Some((
        a.instance_id?,
        Association {
            id: a.association_id?,
            profile_arn,
            state,
            since,
        },
    ))
}

/// Every instance-profile association in the region, by instance id, in current states only.
///
/// Fleet discovery lists these and matches profile ARNs here, rather than filtering
/// DescribeInstances on `iam-instance-profile.arn`: that filter works on AWS but moto answers
/// it with a 500, and this way works on both at the same cost (one paginated listing).
pub async fn current_associations(ec2: &Client) -> Result<HashMap<String, Association>> {
    let all = associations_where(ec2, None).await?;
    Ok(all.into_iter().filter(|(_, a)| a.is_current()).collect())
}

/// Every association (instance id, association) DescribeIamInstanceProfileAssociations lists
/// under `filter`, in any state, over all pages.
async fn associations_where(ec2: &Client, filter: Option<Filter>) -> Result<Vec<(String, Association)>> {
    let mut pages = ec2
        .describe_iam_instance_profile_associations()
        .set_filters(filter.map(|f| vec![f]))
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::aws("ec2", "DescribeIamInstanceProfileAssociations", e))?;
        found.extend(
            page.iam_instance_profile_associations
                .into_iter()
                .flatten()
                .filter_map(association),
        );
    }
    Ok(found)
}

/// The associations, in any state, of each instance in `ids` (an instance with none is absent;
/// at most one is current, but old ones may linger).
pub async fn associations_of_each(ec2: &Client, ids: &[String]) -> Result<HashMap<String, Vec<Association>>> {
    let mut found: HashMap<String, Vec<Association>> = HashMap::new();
    for chunk in ids.chunks(FILTER_VALUES_MAX) {
        let listed = associations_where(ec2, Some(filter("instance-id", chunk.iter().cloned()))).await?;
        for (instance, assoc) in listed {
            found.entry(instance).or_default().push(assoc);
        }
    }
    Ok(found)
}

async fn associations_of(ec2: &Client, instance_id: &str) -> Result<Vec<Association>> {
    let mut each = associations_of_each(ec2, &[instance_id.to_owned()]).await?;
    Ok(each.remove(instance_id).unwrap_or_default())
}

pub async fn current_association_of(ec2: &Client, instance_id: &str) -> Result<Option<Association>> {
    Ok(associations_of(ec2, instance_id)
        .await?
        .into_iter()
        .find(Association::is_current))
}

/// Every instance DescribeInstances lists under `filters`, over all pages.
async fn instances_where(ec2: &Client, filters: Vec<Filter>) -> Result<Vec<Instance>> {
    let mut pages = ec2
        .describe_instances()
        .set_filters(Some(filters))
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::aws("ec2", "DescribeInstances", e))?;
        found.extend(
            page.reservations
                .into_iter()
                .flatten()
                .flat_map(|r| r.instances.unwrap_or_default()),
        );
    }
    Ok(found)
}

fn tags_of(instance: &Instance) -> Tags {
    instance
        .tags
        .iter()
        .flatten()
        .filter_map(|t| Some((t.key.clone()?, t.value.clone().unwrap_or_default())))
        .collect()
}

/// State and tags of the given instances; ids that do not exist are simply absent.
/// A filter rather than `InstanceIds`, which fails the whole call on one unknown id.
pub async fn describe_instances(
    ec2: &Client,
    (region, ids): (&str, &[String]),
    associations: &HashMap<String, Association>,
) -> Result<Vec<InstanceFacts>> {
    let mut facts = Vec::new();
    for chunk in ids.chunks(FILTER_VALUES_MAX) {
        for instance in instances_where(ec2, vec![filter("instance-id", chunk.iter().cloned())]).await? {
            let tags = tags_of(&instance);
            let Some(id) = instance.instance_id else { continue };
            let state = instance
                .state
                .and_then(|s| s.name)
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default();
            let association = associations.get(&id).cloned();
            let spot = instance
                .instance_lifecycle
                .as_ref()
                .is_some_and(|l| l.as_str() == "spot");
            let metadata = instance.metadata_options;
            let hop_limit = metadata.as_ref().and_then(|m| m.http_put_response_hop_limit);
            let http_tokens = metadata.and_then(|m| m.http_tokens);
            facts.push(InstanceFacts {
                id,
                region: region.to_owned(),
                state,
                tags,
                association,
                http_tokens: http_tokens.map(|t| t.as_str().to_owned()),
                hop_limit,
                spot,
            });
        }
    }
    Ok(facts)
}

/// The account's enabled regions (DescribeRegions without `AllRegions`: opt-in regions that are
/// not opted in are left out, and nothing can run there).
pub async fn enabled_regions(ec2: &Client) -> Result<Vec<String>> {
    let out = ec2
        .describe_regions()
        .send()
        .await
        .map_err(|e| Error::aws("ec2", "DescribeRegions", e))?;
    let mut regions: Vec<String> = out
        .regions
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r.region_name)
        .collect();
    regions.sort();
    Ok(regions)
}

/// Instances still carrying our profile marker, with the profile it names. One whose current
/// association is gone was stranded by an interrupted cycle: no association lists it any more.
pub async fn marked_instances(ec2: &Client) -> Result<Vec<(String, String)>> {
    let filters = vec![
        filter("tag-key", [PROFILE_TAG]),
        filter("instance-state-name", ["pending", "running", "stopping", "stopped"]),
    ];
    Ok(instances_where(ec2, filters)
        .await?
        .into_iter()
        .filter_map(|instance| {
            let profile = tags_of(&instance).remove(PROFILE_TAG)?;
            Some((instance.instance_id?, profile))
        })
        .collect())
}

/// The same tags on every instance in `ids`: one call per [`FILTER_VALUES_MAX`] of them.
pub async fn create_tags(ec2: &Client, ids: &[String], tags: &[(String, String)]) -> Result<()> {
    for chunk in ids.chunks(FILTER_VALUES_MAX) {
        let tags = tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build());
        ec2.create_tags()
            .set_resources(Some(chunk.to_vec()))
            .set_tags(Some(tags.collect()))
            .send()
            .await
            .map_err(|e| Error::aws("ec2", "CreateTags", e))?;
    }
    Ok(())
}

/// Remove the tag keys from the instance (whatever their values): a restore clears the isolation
/// mark. Removing a tag it does not have is no error on EC2.
pub async fn delete_tags(ec2: &Client, instance_id: &str, keys: &[&str]) -> Result<()> {
    let tags = keys.iter().map(|k| Tag::builder().key(*k).build());
    ec2.delete_tags()
        .resources(instance_id)
        .set_tags(Some(tags.collect()))
        .send()
        .await
        .map_err(|e| Error::aws("ec2", "DeleteTags", e))?;
    Ok(())
}

/// Start detaching. Asynchronous on AWS: follow with [`await_disassociated`].
pub async fn disassociate(ec2: &Client, association_id: &str) -> Result<()> {
    match once_tags_show(|| {
        ec2.disassociate_iam_instance_profile()
            .association_id(association_id)
            .send()
    })
    .await
    {
        Ok(_) => Ok(()),
        // Already gone (a concurrent or earlier run finished it): the goal is reached.
        Err(e) if e.code() == Some("InvalidAssociationID.NotFound") => Ok(()),
        Err(e) => Err(Error::aws("ec2", "DisassociateIamInstanceProfile", e)),
    }
}

/// What attaching a profile came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attached {
    /// Our association, by id.
    Made(String),
    /// The instance already had this one (EC2's `IncorrectState`): a concurrent run, or a retried
    /// attempt of ours whose answer was lost, attached it first.
    Found(Association),
}

pub async fn associate(ec2: &Client, instance_id: &str, profile: &Profile) -> Result<Attached> {
    let spec = match profile {
        Profile::Arn(arn) => IamInstanceProfileSpecification::builder().arn(arn),
        Profile::Name(name) => IamInstanceProfileSpecification::builder().name(name),
    };
    let spec = spec.build();
    let out = match once_tags_show(|| {
        ec2.associate_iam_instance_profile()
            .instance_id(instance_id)
            .iam_instance_profile(spec.clone())
            .send()
    })
    .await
    {
        Ok(out) => out,
        Err(e) if e.code() == Some("IncorrectState") => {
            return match current_association_of(ec2, instance_id).await? {
                Some(found) => Ok(Attached::Found(found)),
                None => Err(Error::aws("ec2", "AssociateIamInstanceProfile", e)),
            };
        }
        Err(e) => return Err(Error::aws("ec2", "AssociateIamInstanceProfile", e)),
    };
    out.iam_instance_profile_association
        .and_then(|a| a.association_id)
        .map(Attached::Made)
        .ok_or_else(|| Error::Unexpected("AssociateIamInstanceProfile answered without an association id".into()))
}

pub async fn reboot(ec2: &Client, instance_id: &str) -> Result<()> {
    once_tags_show(|| ec2.reboot_instances().instance_ids(instance_id).send())
        .await
        .map_err(|e| Error::aws("ec2", "RebootInstances", e))?;
    Ok(())
}

/// How long after our `CreateTags` a refusal is taken for a tag not yet visible: the pauses
/// between attempts (3 s in all).
const TAG_VISIBLE_WITHIN: [Duration; 4] = [
    Duration::from_millis(200),
    Duration::from_millis(400),
    Duration::from_millis(800),
    Duration::from_millis(1600),
];

/// The role may detach, attach and reboot only instances carrying our markers (the template's
/// `ec2:ResourceTag` conditions), and the marker is written just before. EC2's API is eventually
/// consistent (<https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html>): for a
/// moment IAM may not see the new tag and EC2 answers `UnauthorizedOperation`. So that answer is
/// retried, bounded, before it fails the step; any other answer is final here.
pub(crate) async fn once_tags_show<T, E, R, F, Fut>(mut call: F) -> std::result::Result<T, SdkError<E, R>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata,
{
    for pause in TAG_VISIBLE_WITHIN {
        match call().await {
            Err(e) if e.code() == Some("UnauthorizedOperation") => tokio::time::sleep(pause).await,
            other => return other,
        }
    }
    call().await
}

/// Wait until the instance holds no profile (`read` lists its associations in any state). If,
/// meanwhile, another run attached a new one (any current association but the one being
/// replaced), that one is returned instead.
pub async fn await_disassociated<R, F>(
    read: R,
    instance_id: &str,
    replaced: Option<&str>,
    timeout: Duration,
) -> Result<Option<Association>>
where
    R: Fn() -> F,
    F: Future<Output = Result<Vec<Association>>>,
{
    let what = format!("{instance_id}'s instance profile to detach");
    poll(timeout, what, || async {
        let all = read().await?;
        let newer = all
            .iter()
            .find(|a| a.is_current() && Some(a.id.as_str()) != replaced)
            .cloned();
        Ok(match newer {
            Some(a) => Some(Some(a)),
            None if all.iter().all(|a| a.state == "disassociated") => Some(None),
            None => None,
        })
    })
    .await
}

/// Wait until the instance's association with `profile` is `associated`. While it holds none, a
/// concurrent run may be between its detach and attach, so that is waited out too (bounded).
pub async fn await_associated<R, F>(read: R, instance_id: &str, profile: &Profile, timeout: Duration) -> Result<()>
where
    R: Fn() -> F,
    F: Future<Output = Result<Vec<Association>>>,
{
    let what = format!("{instance_id}'s instance profile to attach");
    poll(timeout, what, || async {
        match read().await?.into_iter().find(Association::is_current) {
            Some(a) if !matches_profile(&a.profile_arn, profile) => Err(Error::Unexpected(format!(
                "{instance_id} is associated with {}, not the profile we attached",
                a.profile_arn
            ))),
            Some(a) => Ok((a.state == "associated").then_some(())),
            None => Ok(None),
        }
    })
    .await
}

/// Whether `arn` is the profile a step names.
pub fn matches_profile(arn: &str, profile: &Profile) -> bool {
    match profile {
        Profile::Arn(wanted) => arn == wanted,
        Profile::Name(name) => crate::names::profile_name_from_arn(arn) == Some(name.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::error::ErrorMetadata;
    use aws_sdk_ec2::operation::describe_iam_instance_profile_associations::DescribeIamInstanceProfileAssociationsOutput;
    use aws_sdk_ec2::operation::disassociate_iam_instance_profile::DisassociateIamInstanceProfileError;
    use aws_sdk_ec2::types::{IamInstanceProfile, IamInstanceProfileAssociationState};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use tokio::time::Instant;

    use super::*;

    fn listing(state: Option<IamInstanceProfileAssociationState>) -> DescribeIamInstanceProfileAssociationsOutput {
        let assoc = state.map(|s| {
            IamInstanceProfileAssociation::builder()
                .association_id("iip-assoc-1")
                .instance_id("i-1234abcd")
                .state(s)
                .iam_instance_profile(
                    IamInstanceProfile::builder()
                        .arn("arn:aws:iam::1:instance-profile/P")
                        .build(),
                )
                .build()
        });
        DescribeIamInstanceProfileAssociationsOutput::builder()
            .set_iam_instance_profile_associations(Some(assoc.into_iter().collect()))
            .build()
    }

    /// The wait for i-1234abcd's detach, replacing `replaced`, reading its associations from `ec2`.
    async fn detached(ec2: &Client, replaced: &str, timeout: Duration) -> Result<Option<Association>> {
        let read = || associations_of(ec2, "i-1234abcd");
        await_disassociated(read, "i-1234abcd", Some(replaced), timeout).await
    }

    #[tokio::test(start_paused = true)]
    async fn waits_for_an_asynchronous_detach_with_backoff() {
        use IamInstanceProfileAssociationState::*;
        let describe = mock!(Client::describe_iam_instance_profile_associations)
            .sequence()
            .output(|| listing(Some(Disassociating)))
            .times(3)
            .output(|| listing(None))
            .build();
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::Sequential, [&describe]);
        let started = Instant::now();
        let newer = detached(&ec2, "iip-assoc-1", Duration::from_secs(60)).await.unwrap();
        assert_eq!(newer, None);
        assert_eq!(describe.num_calls(), 4);
        // 250 + 500 + 1000 ms of (virtual) backoff.
        assert_eq!(started.elapsed(), Duration::from_millis(1750));
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_is_bounded_by_the_timeout() {
        let describe = mock!(Client::describe_iam_instance_profile_associations)
            .sequence()
            .output(|| listing(Some(IamInstanceProfileAssociationState::Disassociating)))
            .repeatedly()
            .build();
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::Sequential, [&describe]);
        let started = Instant::now();
        let err = detached(&ec2, "other", Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { seconds: 5, .. }), "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_profile_attached_by_another_run_meanwhile_is_handed_back() {
        let newer = mock!(Client::describe_iam_instance_profile_associations)
            .sequence()
            .output(|| listing(Some(IamInstanceProfileAssociationState::Associated)))
            .repeatedly()
            .build();
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::Sequential, [&newer]);
        let found = detached(&ec2, "iip-assoc-0", Duration::from_secs(5)).await.unwrap();
        assert_eq!(found.map(|a| a.id).as_deref(), Some("iip-assoc-1"));
        // Still the association being replaced: not done, and nothing handed back.
        let err = detached(&ec2, "iip-assoc-1", Duration::ZERO).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
    }

    #[tokio::test]
    async fn attaching_where_an_association_already_exists_reports_that_one() {
        use aws_sdk_ec2::operation::associate_iam_instance_profile::AssociateIamInstanceProfileError;
        let taken = mock!(Client::associate_iam_instance_profile).then_error(|| {
            AssociateIamInstanceProfileError::generic(ErrorMetadata::builder().code("IncorrectState").build())
        });
        let listed = mock!(Client::describe_iam_instance_profile_associations)
            .then_output(|| listing(Some(IamInstanceProfileAssociationState::Associated)));
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::Sequential, [&taken, &listed]);
        let attached = associate(
            &ec2,
            "i-1234abcd",
            &Profile::Arn("arn:aws:iam::1:instance-profile/P".into()),
        )
        .await
        .unwrap();
        assert!(matches!(attached, Attached::Found(a) if a.id == "iip-assoc-1"));
    }

    #[tokio::test(start_paused = true)]
    async fn detaching_an_association_that_is_already_gone_succeeds() {
        let gone = mock!(Client::disassociate_iam_instance_profile).then_error(|| {
            DisassociateIamInstanceProfileError::generic(
                ErrorMetadata::builder().code("InvalidAssociationID.NotFound").build(),
            )
        });
        // Refused every time: a real denial, not a tag still on its way.
        let denied = mock!(Client::disassociate_iam_instance_profile)
            .sequence()
            .error(|| {
                DisassociateIamInstanceProfileError::generic(
                    ErrorMetadata::builder().code("UnauthorizedOperation").build(),
                )
            })
            .repeatedly()
            .build();
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::Sequential, [&gone, &denied]);
        disassociate(&ec2, "iip-assoc-1").await.unwrap();
        let err = disassociate(&ec2, "iip-assoc-1").await.unwrap_err();
        assert_eq!(err.aws_code(), Some("UnauthorizedOperation"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_while_our_fresh_marker_is_not_yet_visible_is_retried() {
        use aws_sdk_ec2::operation::reboot_instances::{RebootInstancesError, RebootInstancesOutput};
        let unauthorized =
            || RebootInstancesError::generic(ErrorMetadata::builder().code("UnauthorizedOperation").build());
        let settling = mock!(Client::reboot_instances)
            .sequence()
            .error(unauthorized)
            .times(2)
            .output(|| RebootInstancesOutput::builder().build())
            .build();
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::Sequential, [&settling]);
        let started = Instant::now();
        reboot(&ec2, "i-1234abcd").await.unwrap();
        assert_eq!(settling.num_calls(), 3);
        assert!(started.elapsed() <= Duration::from_secs(1), "{:?}", started.elapsed());

        let denied = mock!(Client::reboot_instances)
            .sequence()
            .error(unauthorized)
            .repeatedly()
            .build();
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::Sequential, [&denied]);
        let started = Instant::now();
        let err = reboot(&ec2, "i-1234abcd").await.unwrap_err();
        assert_eq!(err.aws_code(), Some("UnauthorizedOperation"));
        assert_eq!(denied.num_calls(), TAG_VISIBLE_WITHIN.len() + 1, "bounded");
        let waited = TAG_VISIBLE_WITHIN.iter().sum::<Duration>();
        assert!((waited..waited + Duration::from_secs(1)).contains(&started.elapsed()));
    }
}
