//! The fleet: every instance whose profile holds the revoked role (and the named instance however
//! it stands), read from EC2 and IAM, and the plan for each (`plan::instances`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use futures::{StreamExt, TryStreamExt};

use crate::api::ApiCall;
use crate::aws::clients::{Target, ec2_in, region_of};
use crate::aws::{ec2, iam};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::finding::Incident;
use crate::names::{InstanceId, RoleName};
use crate::plan::{self, Association, FleetFacts, InstanceFacts, InstancePlan};
use crate::respond::establish::Place;
use crate::respond::journal::Journal;
use crate::rules::Tags;

pub struct Fleet {
    /// Taken before the first read: any association made later is newer than this.
    pub observed_at: DateTime<Utc>,
    /// ARNs of the instance profiles that hold the role.
    pub profiles: Vec<String>,
    pub named: Option<InstanceFacts>,
    pub siblings: Vec<InstanceFacts>,
    /// Regions that could not be read, and why: what the report must say was not looked at.
    pub warnings: Vec<String>,
}

/// Regions whose instances are read at once: DescribeRegions lists up to about 30, each costing
/// two reads and a describe. EC2 throttles per account and region, so regions share no bucket:
/// this only bounds the connections open at once.
const REGIONS_AT_ONCE: usize = 32;

/// Where the named instance runs.
pub struct Named<'a> {
    pub id: &'a InstanceId,
    pub region: &'a str,
}

/// The fleet read with the first reads, before the role and instance are established: of the
/// role and instance the request names.
pub struct EarlyFleet {
    role: RoleName,
    named: Option<(InstanceId, String)>,
    read: Result<Fleet>,
}

impl EarlyFleet {
    /// `named`: the instance and its region.
    pub async fn read(
        (iam, ec2): (&aws_sdk_iam::Client, &aws_sdk_ec2::Client),
        role: RoleName,
        named: Option<(InstanceId, String)>,
        steps: &Journal,
    ) -> Self {
        let of = named.as_ref().map(|(id, region)| Named { id, region });
        let read = discover(iam, ec2, &role, of, steps).await;
        Self { role, named, read }
    }

    /// What was read, if it is the fleet of `role` with `named`; else the fleet read now.
    pub async fn or_discover(
        early: Option<Self>,
        (iam, ec2): (&aws_sdk_iam::Client, &aws_sdk_ec2::Client),
        role: &RoleName,
        named: Option<Named<'_>>,
        steps: &Journal,
    ) -> Result<Fleet> {
        match early.and_then(|f| f.of(role, named.as_ref())) {
            Some(read) => read,
            None => discover(iam, ec2, role, named, steps).await,
        }
    }

    fn of(self, role: &RoleName, named: Option<&Named<'_>>) -> Option<Result<Fleet>> {
        let same_named = match (&self.named, named) {
            (Some((id, region)), Some(n)) => id == n.id && region == n.region,
            (None, None) => true,
            _ => false,
        };
        (self.role == *role && same_named).then_some(self.read)
    }
}

/// The role and instance (and its region) the request names, if it names a role.
pub type NamedFleet = (RoleName, Option<(InstanceId, String)>);

pub fn named_fleet(incident: Option<&Incident>, place: &Place) -> Option<NamedFleet> {
    let incident = incident?;
    let instance = incident
        .subject
        .instance()
        .map(|id| (id.clone(), named_region(incident, place)));
    Some((incident.subject.role()?.clone(), instance))
}

/// The fleet the request names, read with the first reads: used if the role and instance
/// established are the same.
pub async fn early_fleet(target: &Target, named: Option<NamedFleet>, steps: &Journal) -> Option<EarlyFleet> {
    let (role, instance) = named?;
    Some(EarlyFleet::read((&target.iam, &target.ec2), role, instance, steps).await)
}

/// The finding's region may not be the named instance's (global-service events): its zone says.
pub fn named_region(incident: &Incident, place: &Place) -> String {
    (incident.finding.as_deref())
        .and_then(crate::finding::Finding::instance_region)
        .unwrap_or_else(|| place.region.clone())
}

/// Every instance whose current profile holds the role, in every enabled region of the account
/// (IAM is global: the revocation cuts them all off), plus the named instance however it stands.
/// `ec2` is in the finding's region. The role's profiles, the enabled regions and the finding's
/// region (the named instance described with it) are read at once; then each other region;
/// then the instances found, where any are left to describe.
pub async fn discover(
    iam: &aws_sdk_iam::Client,
    ec2: &aws_sdk_ec2::Client,
    role: &RoleName,
    named: Option<Named<'_>>,
    steps: &Journal,
) -> Result<Fleet> {
    let observed_at = Utc::now();
    let here = region_of(ec2);
    let named_in = |region: &str| named.as_ref().filter(|n| n.region == region).map(|n| n.id);
    let read_in = |region: String| async move {
        let read = read_region(&ec2_in(ec2, &region), &region, named_in(&region), steps).await;
        read.map_err(|e| (region, e))
    };
    let others = async {
        let enabled = steps.run(ApiCall::DescribeRegions, "enabled regions", ec2::enabled_regions(ec2));
        let others = other_regions(enabled.await?, &here, named.as_ref());
        let reads = futures::stream::iter(others)
            .map(read_in)
            .buffer_unordered(REGIONS_AT_ONCE);
        Ok::<_, Error>(reads.collect::<Vec<_>>().await)
    };
    let profiles = steps.run(
        ApiCall::ListInstanceProfilesForRole,
        role.as_str(),
        iam::instance_profiles_for_role(iam, role),
    );
    let (profiles, others, here_read) = tokio::join!(profiles, others, read_in(here.clone()));
    let (profiles, mut reads) = (profiles?, others?);
    reads.push(here_read);
    let (read, warnings) = denied_regions(reads, role, (&here, named.as_ref()))?;
    let found: Vec<Vec<InstanceFacts>> = futures::stream::iter(read)
        .map(|read| describe_region(ec2, &profiles, read, steps))
        .buffer_unordered(REGIONS_AT_ONCE)
        .try_collect()
        .await?;
    let (named_facts, siblings): (Vec<_>, Vec<_>) = found.into_iter().flatten().partition(|f| {
        named
            .as_ref()
            .is_some_and(|n| n.id.as_str() == f.id && n.region == f.region)
    });
    Ok(Fleet {
        observed_at,
        profiles,
        named: named_facts.into_iter().next(),
        siblings,
        warnings,
    })
}

/// The enabled regions other than `here`, and the named instance's even if not listed as enabled:
/// the finding places it there, so look anyway.
fn other_regions(enabled: Vec<String>, here: &str, named: Option<&Named<'_>>) -> Vec<String> {
    let mut others: Vec<String> = enabled.into_iter().filter(|r| r != here).collect();
    if let Some(n) = named
        && n.region != here
        && !others.iter().any(|r| r == n.region)
    {
        others.push(n.region.to_owned());
    }
    others
}

/// Organisations commonly deny unused regions with an SCP, which DescribeRegions does not show: EC2
/// answers `UnauthorizedOperation` there. Such a region is skipped with a warning rather than
/// failing every delivery. Not the finding's region (`here`), nor the named instance's, nor any
/// other error.
fn denied_regions(
    reads: Vec<std::result::Result<Regional, (String, Error)>>,
    role: &RoleName,
    (here, named): (&str, Option<&Named<'_>>),
) -> Result<(Vec<Regional>, Vec<String>)> {
    let (mut read, mut warnings) = (Vec::new(), Vec::new());
    for result in reads {
        match result {
            Ok(regional) => read.push(regional),
            Err((region, e))
                if e.aws_code() == Some("UnauthorizedOperation")
                    && region != here
                    && named.is_none_or(|n| n.region != region) =>
            {
                warnings.push(format!(
                    "region {region} could not be read ({e}; an SCP denying the region?): any instance there using role {role} lost its credentials to the revocation and was neither cycled nor reported; check by hand"
                ));
            }
            Err((_, e)) => return Err(e),
        }
    }
    Ok((read, warnings))
}

/// One region's current associations, the instances our marker says a cycle stranded, and the
/// named instance if it runs there (described with them: no describe waits for it after).
struct Regional {
    region: String,
    associations: HashMap<String, Association>,
    marked: Vec<(String, String)>,
    /// The named instance's facts, if it was described here (none if EC2 has no such instance).
    named: Option<Vec<InstanceFacts>>,
}

async fn read_region(
    ec2: &aws_sdk_ec2::Client,
    region: &str,
    named: Option<&InstanceId>,
    steps: &Journal,
) -> Result<Regional> {
    let describe_named = async {
        let Some(id) = named else { return Ok(None) };
        let (ids, none) = ([id.to_string()], HashMap::new());
        let describe = ec2::describe_instances(ec2, (region, &ids), &none);
        steps
            .run(ApiCall::DescribeInstances, id.as_str(), describe)
            .await
            .map(Some)
    };
    let (associations, marked, mut named) = tokio::try_join!(
        steps.run(
            ApiCall::DescribeIamInstanceProfileAssociations,
            region,
            ec2::current_associations(ec2)
        ),
        steps.run(ApiCall::DescribeInstances, region, ec2::marked_instances(ec2)),
        describe_named,
    )?;
    for facts in named.iter_mut().flatten() {
        facts.association = associations.get(&facts.id).cloned();
    }
    Ok(Regional {
        region: region.to_owned(),
        associations,
        marked,
        named,
    })
}

/// The facts of one region's instances that matter: the role's holders, the stranded, the named
/// (already described with the region's reads).
async fn describe_region(
    ec2: &aws_sdk_ec2::Client,
    profiles: &[String],
    read: Regional,
    steps: &Journal,
) -> Result<Vec<InstanceFacts>> {
    let mut found = read.named.unwrap_or_default();
    let mut ids = instance_ids(profiles, &read.associations, read.marked);
    ids.retain(|id| !found.iter().any(|f| f.id == *id));
    if ids.is_empty() {
        return Ok(found);
    }
    let regional = ec2_in(ec2, &read.region);
    let what = format!("{} instance(s) in {}", ids.len(), read.region);
    let describe = ec2::describe_instances(&regional, (&read.region, &ids), &read.associations);
    found.extend(steps.run(ApiCall::DescribeInstances, &what, describe).await?);
    Ok(found)
}

/// The instances to describe: those holding one of the role's profiles, those our marker says an
/// interrupted cycle stranded without one.
fn instance_ids(
    profiles: &[String],
    associations: &HashMap<String, Association>,
    marked: Vec<(String, String)>,
) -> Vec<String> {
    let mut ids: Vec<String> = associations
        .iter()
        .filter(|(_, a)| profiles.contains(&a.profile_arn))
        .map(|(id, _)| id.clone())
        .collect();
    // Stranded by an interrupted cycle: no profile now, but our marker names one of the role's.
    ids.extend(
        marked
            .into_iter()
            .filter(|(id, profile)| profiles.contains(profile) && !associations.contains_key(id))
            .map(|(id, _)| id),
    );
    ids.sort();
    ids.dedup();
    ids
}

/// The role, as the fleet plan needs it.
pub struct RoleOf<'a> {
    pub name: &'a RoleName,
    pub tags: &'a Tags,
}

/// Each instance's plan against `cutoff`, and the warnings its chosen actions carry.
pub fn plan(
    config: &Config,
    cutoff: DateTime<Utc>,
    incident: &Incident,
    role: RoleOf<'_>,
    named: Option<&InstanceId>,
    fleet: &Fleet,
) -> (Vec<InstancePlan>, Vec<String>) {
    let plans = plan::instances(&FleetFacts {
        config,
        cutoff,
        finding_id: incident.finding_id(),
        role_name: role.name.as_str(),
        role_tags: role.tags,
        role_profiles: &fleet.profiles,
        named: named.map(|id| (id.as_str(), fleet.named.as_ref())),
        siblings: &fleet.siblings,
        action_override: incident.action_override,
        observed_at: fleet.observed_at,
    });
    let chosen = plans.iter().filter_map(|p| p.chosen.as_ref()?.warning.clone());
    let warnings = fleet.warnings.iter().cloned().chain(chosen).collect();
    (plans, warnings)
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
    use aws_sdk_ec2::types::{Instance, InstanceState, InstanceStateName, Reservation};
    use aws_sdk_iam::operation::list_instance_profiles_for_role::ListInstanceProfilesForRoleOutput;
    use aws_sdk_iam::types::InstanceProfile;
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::respond::mocks::{Rules, associations};
    use crate::wait::Deadline;

    const ROLE_PROFILE: &str = "arn:aws:iam::123456789012:instance-profile/WebAppProfile";
    const OTHER_PROFILE: &str = "arn:aws:iam::123456789012:instance-profile/Other";

    fn association(profile: &str) -> Association {
        Association {
            id: "iip-assoc-1".into(),
            profile_arn: profile.into(),
            state: "associated".into(),
            since: None,
        }
    }

    #[test]
    fn the_role_s_holders_the_stranded_and_the_named_instance_are_described() {
        let profiles = vec![ROLE_PROFILE.to_string()];
        let associations = HashMap::from([
            ("i-0000000000000000a".to_string(), association(ROLE_PROFILE)),
            ("i-0000000000000000b".to_string(), association(OTHER_PROFILE)),
        ]);
        let marked = vec![
            // Stranded by an interrupted cycle of this role: described.
            ("i-0000000000000000c".to_string(), ROLE_PROFILE.to_string()),
            // Marked for another role's profile: not ours.
            ("i-0000000000000000d".to_string(), OTHER_PROFILE.to_string()),
            // Marked, and holding the profile again: listed once.
            ("i-0000000000000000a".to_string(), ROLE_PROFILE.to_string()),
        ];
        // The named instance is not among them: it is described with the region's reads.
        let ids = instance_ids(&profiles, &associations, marked);
        assert_eq!(ids, ["i-0000000000000000a", "i-0000000000000000c"]);
    }

    fn instance(id: &str) -> Instance {
        Instance::builder()
            .instance_id(id)
            .state(InstanceState::builder().name(InstanceStateName::Running).build())
            .build()
    }

    #[tokio::test]
    async fn the_named_instance_is_told_apart_from_its_siblings() {
        let listed = mock!(aws_sdk_iam::Client::list_instance_profiles_for_role).then_output(|| {
            let created = aws_sdk_iam::primitives::DateTime::from_secs(1_700_000_000);
            let profile = InstanceProfile::builder()
                .path("/")
                .instance_profile_name("WebAppProfile")
                .instance_profile_id("AIPAEXAMPLE")
                .arn(ROLE_PROFILE)
                .create_date(created)
                .set_roles(Some(Vec::new()))
                .build()
                .unwrap();
            ListInstanceProfilesForRoleOutput::builder()
                .instance_profiles(profile)
                .build()
                .unwrap()
        });
        let held = mock!(aws_sdk_ec2::Client::describe_iam_instance_profile_associations).then_output(|| {
            associations(&[
                ("i-0000000000000000a", "iip-assoc-a", ROLE_PROFILE, "associated"),
                ("i-0000000000000000f", "iip-assoc-f", ROLE_PROFILE, "associated"),
            ])
        });
        let marked = mock!(aws_sdk_ec2::Client::describe_instances)
            .match_requests(|r| r.filters().iter().any(|f| f.name() == Some("tag-key")))
            .then_output(|| DescribeInstancesOutput::builder().build());
        let described = |id: &'static str| {
            mock!(aws_sdk_ec2::Client::describe_instances)
                .match_requests(move |r| {
                    let asked = r.filters().iter().find(|f| f.name() == Some("instance-id"));
                    asked.is_some_and(|f| f.values() == [id])
                })
                .then_output(move || {
                    let reservation = Reservation::builder().instances(instance(id)).build();
                    DescribeInstancesOutput::builder().reservations(reservation).build()
                })
        };
        // The named instance is described with the region's reads; its sibling after them.
        let (described_named, described_sibling) = (described("i-0000000000000000f"), described("i-0000000000000000a"));
        let regions = mock!(aws_sdk_ec2::Client::describe_regions).then_output(|| {
            let region = aws_sdk_ec2::types::Region::builder().region_name("us-east-1").build();
            aws_sdk_ec2::operation::describe_regions::DescribeRegionsOutput::builder()
                .regions(region)
                .build()
        });
        let rules = Rules {
            iam: vec![&listed],
            ec2: vec![&held, &marked, &described_named, &described_sibling, &regions],
            ..Rules::default()
        };
        let target = rules.target();
        let steps = Journal::new("f", Deadline::none());
        let role = RoleName::parse("WebAppRole").unwrap();
        let named = InstanceId::parse("i-0000000000000000f").unwrap();
        let region = target.ec2.config().region().unwrap().to_string();
        assert_eq!(region, "us-east-1");
        let named = Named {
            id: &named,
            region: &region,
        };
        let fleet = discover(&target.iam, &target.ec2, &role, Some(named), &steps)
            .await
            .unwrap();
        assert_eq!(fleet.named.as_ref().map(|n| n.id.as_str()), Some("i-0000000000000000f"));
        let siblings: Vec<&str> = fleet.siblings.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(siblings, ["i-0000000000000000a"]);
        assert_eq!(fleet.named.unwrap().association.unwrap().id, "iip-assoc-f");
        let described = (described_named.num_calls(), described_sibling.num_calls());
        assert_eq!((marked.num_calls(), described), (1, (1, 1)));
    }
}
