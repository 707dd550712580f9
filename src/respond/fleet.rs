//! The fleet: every instance whose profile holds the revoked role (and the named instance however
//! it stands), read from EC2 and IAM region by region, and the plan for each (`plan::instances`).
//! Each region is given to the rounds as soon as it is read, so that its instances' cycles wait
//! on no other region's reads: the named instance's region is not held up by the far side of the
//! world.

use std::collections::HashMap;
use std::pin::pin;

use chrono::{DateTime, Utc};

use futures::channel::mpsc;
use futures::{FutureExt, SinkExt, StreamExt};

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

/// The fleet being read, region by region: each as it answers, then the end.
pub struct Discovery {
    /// Taken before the first read: any association made later is newer than this.
    pub observed_at: DateTime<Utc>,
    pub regions: mpsc::UnboundedReceiver<RegionRead>,
}

/// What one region answered.
pub enum RegionRead {
    Instances(Box<RegionFleet>),
    /// Skipped (an SCP denies it), and the warning that says what was not looked at.
    Denied(String),
    /// Not read: what (a region, or the list of regions), and why. The run fails, so that a
    /// retry reads it.
    Unread(String, Error),
}

/// One region's instances: the role's holders and the stranded, and the named instance if it was
/// looked for here.
pub struct RegionFleet {
    pub region: String,
    /// ARNs of the instance profiles that hold the role.
    pub profiles: Vec<String>,
    /// `Some` where the named instance was looked for: its facts, or `None` if EC2 has no such
    /// instance here.
    pub named: Option<Option<InstanceFacts>>,
    pub siblings: Vec<InstanceFacts>,
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
    read: Discovery,
}

impl EarlyFleet {
    /// The fleet of `role` with `named` (the instance and its region), and the future that reads
    /// it: to be run beside whatever uses it.
    pub fn read<'a>(
        (iam, ec2): (&'a aws_sdk_iam::Client, &'a aws_sdk_ec2::Client),
        role: RoleName,
        named: Option<(InstanceId, String)>,
        steps: &'a Journal,
    ) -> (Self, impl Future<Output = ()> + Send + 'a) {
        let (role_read, named_read) = (role.clone(), named.clone());
        let (read, sender) = channel();
        let reading = async move {
            let of = named_read.as_ref().map(|(id, region)| Named { id, region });
            forward(discover(iam, ec2, &role_read, of, steps), sender).await;
        };
        (Self { role, named, read }, reading)
    }

    /// What is being read, if it is the fleet of `role` with `named`; else the fleet read now,
    /// with the future that reads it.
    pub fn or_discover<'a>(
        early: Option<Self>,
        (iam, ec2): (&'a aws_sdk_iam::Client, &'a aws_sdk_ec2::Client),
        role: &'a RoleName,
        named: Option<Named<'a>>,
        steps: &'a Journal,
    ) -> (Discovery, futures::future::BoxFuture<'a, ()>) {
        match early.and_then(|f| f.of(role, named.as_ref())) {
            Some(read) => (read, futures::future::ready(()).boxed()),
            None => {
                let (read, reading) = self::read((iam, ec2), role, named, steps);
                (read, reading.boxed())
            }
        }
    }

    fn of(self, role: &RoleName, named: Option<&Named<'_>>) -> Option<Discovery> {
        let same_named = match (&self.named, named) {
            (Some((id, region)), Some(n)) => id == n.id && region == n.region,
            (None, None) => true,
            _ => false,
        };
        (self.role == *role && same_named).then_some(self.read)
    }
}

/// The fleet of `role` (and `named`), and the future that reads it region by region into it: to
/// be run beside whatever uses it.
pub fn read<'a>(
    (iam, ec2): (&'a aws_sdk_iam::Client, &'a aws_sdk_ec2::Client),
    role: &'a RoleName,
    named: Option<Named<'a>>,
    steps: &'a Journal,
) -> (Discovery, impl Future<Output = ()> + Send + 'a) {
    let (read, sender) = channel();
    (read, forward(discover(iam, ec2, role, named, steps), sender))
}

fn channel() -> (Discovery, mpsc::UnboundedSender<RegionRead>) {
    let (sender, regions) = mpsc::unbounded();
    let observed_at = Utc::now();
    (Discovery { observed_at, regions }, sender)
}

/// Send each region `regions` reads as it is read.
async fn forward(
    regions: impl futures::Stream<Item = RegionRead> + Send,
    mut sender: mpsc::UnboundedSender<RegionRead>,
) {
    let mut regions = pin!(regions);
    while let Some(read) = regions.next().await {
        // The receiver gone: what it was read for ended without it (the run was refused or
        // skipped, or the fleet was not of the role established, or read before the cut-off).
        if sender.send(read).await.is_err() {
            break;
        }
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
/// established are the same. With the future that reads it.
pub fn early_fleet<'a>(
    target: &'a Target,
    named: Option<NamedFleet>,
    steps: &'a Journal,
) -> Option<(EarlyFleet, impl Future<Output = ()> + Send + 'a)> {
    let (role, instance) = named?;
    Some(EarlyFleet::read((&target.iam, &target.ec2), role, instance, steps))
}

/// The finding's region may not be the named instance's (global-service events): its zone says.
pub fn named_region(incident: &Incident, place: &Place) -> String {
    (incident.finding.as_deref())
        .and_then(crate::finding::Finding::instance_region)
        .unwrap_or_else(|| place.region.clone())
}

/// Every instance whose current profile holds the role, in every enabled region of the account
/// (IAM is global: the revocation cuts them all off), plus the named instance however it stands:
/// a region at a time, each as soon as it is read. `ec2` is in the finding's region. The role's
/// profiles, the enabled regions and the finding's region (the named instance described with it)
/// are read at once; each other region once the enabled regions are known; a region's instances,
/// where any are left to describe, once it and the profiles are read. A region that fails is
/// [`RegionRead::Unread`], that region only.
pub fn discover<'a>(
    iam: &'a aws_sdk_iam::Client,
    ec2: &'a aws_sdk_ec2::Client,
    role: &'a RoleName,
    named: Option<Named<'a>>,
    steps: &'a Journal,
) -> impl futures::Stream<Item = RegionRead> + Send + 'a {
    let here = region_of(ec2);
    let named_region = named.as_ref().map(|n| n.region.to_owned());
    let named_id = named.as_ref().map(|n| n.id);
    let profiles = steps
        .run(
            ApiCall::ListInstanceProfilesForRole,
            role.as_str(),
            iam::instance_profiles_for_role(iam, role),
        )
        .shared();
    let (here_at, named_at) = (here.clone(), named_region.clone());
    let one = move |region: String| {
        let (profiles, here, named_region) = (profiles.clone(), here_at.clone(), named_at.clone());
        async move {
            let looked_for = named_id.filter(|_| named_region.as_deref() == Some(region.as_str()));
            let regional = ec2_in(ec2, &region);
            let (read, profiles) = tokio::join!(read_region(&regional, &region, looked_for, steps), profiles);
            let read = match (read, profiles) {
                (Ok(read), Ok(profiles)) => describe_region(&regional, profiles, read, steps).await,
                (Err(e), _) => return denied(e, region, role, (&here, named_region.as_deref())),
                (_, Err(e)) => Err(e),
            };
            match read {
                Ok(fleet) => RegionRead::Instances(Box::new(fleet)),
                Err(e) => RegionRead::Unread(region, e),
            }
        }
    };
    let here_read = futures::stream::once(one(here.clone()));
    let others = futures::stream::once(async move {
        let enabled = steps.run(ApiCall::DescribeRegions, "enabled regions", ec2::enabled_regions(ec2));
        enabled
            .await
            .map(|enabled| other_regions(enabled, &here, named_region.as_deref()))
    })
    .flat_map(move |listed| match listed {
        Ok(regions) => futures::stream::iter(regions)
            .map(one.clone())
            .buffer_unordered(REGIONS_AT_ONCE)
            .boxed(),
        Err(e) => futures::stream::once(futures::future::ready(RegionRead::Unread(
            "the enabled regions".into(),
            e,
        )))
        .boxed(),
    });
    futures::stream::select(here_read, others)
}

/// The enabled regions other than `here`, and the named instance's even if not listed as enabled:
/// the finding places it there, so look anyway.
fn other_regions(enabled: Vec<String>, here: &str, named: Option<&str>) -> Vec<String> {
    let mut others: Vec<String> = enabled.into_iter().filter(|r| r != here).collect();
    if let Some(n) = named
        && n != here
        && !others.iter().any(|r| r == n)
    {
        others.push(n.to_owned());
    }
    others
}

/// Organisations commonly deny unused regions with an SCP, which DescribeRegions does not show: EC2
/// answers `UnauthorizedOperation` there. Such a region is skipped with a warning rather than
/// failing every delivery. Not the finding's region (`here`), nor the named instance's, nor any
/// other error.
fn denied(e: Error, region: String, role: &RoleName, (here, named): (&str, Option<&str>)) -> RegionRead {
    if e.aws_code() != Some("UnauthorizedOperation") || region == here || named == Some(region.as_str()) {
        return RegionRead::Unread(region, e);
    }
    RegionRead::Denied(format!(
        "region {region} could not be read ({e}; an SCP denying the region?): any instance there using role {role} lost its credentials to the revocation and was neither cycled nor reported; check by hand"
    ))
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
    profiles: Vec<String>,
    read: Regional,
    steps: &Journal,
) -> Result<RegionFleet> {
    let named = read.named.map(|described| described.into_iter().next());
    let is_named = |id: &str| named.as_ref().and_then(Option::as_ref).is_some_and(|n| n.id == id);
    let mut ids = instance_ids(&profiles, &read.associations, read.marked);
    ids.retain(|id| !is_named(id));
    let mut siblings = Vec::new();
    if !ids.is_empty() {
        let what = format!("{} instance(s) in {}", ids.len(), read.region);
        let describe = ec2::describe_instances(ec2, (&read.region, &ids), &read.associations);
        siblings = steps.run(ApiCall::DescribeInstances, &what, describe).await?;
    }
    Ok(RegionFleet {
        region: read.region,
        profiles,
        named,
        siblings,
    })
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

/// Each instance's plan in one region against `cutoff`, and the warnings its chosen actions carry.
/// The named instance is planned in the region it was looked for in.
pub fn plan(
    config: &Config,
    (cutoff, observed_at): (DateTime<Utc>, DateTime<Utc>),
    incident: &Incident,
    role: RoleOf<'_>,
    named: Option<&InstanceId>,
    fleet: &RegionFleet,
) -> (Vec<InstancePlan>, Vec<String>) {
    let looked_for = fleet
        .named
        .as_ref()
        .and_then(|found| Some((named?.as_str(), found.as_ref())));
    let plans = plan::instances(&FleetFacts {
        config,
        cutoff,
        finding_id: incident.finding_id(),
        role_name: role.name.as_str(),
        role_tags: role.tags,
        role_profiles: &fleet.profiles,
        named: looked_for,
        siblings: &fleet.siblings,
        action_override: incident.action_override,
        observed_at,
    });
    let warnings = plans
        .iter()
        .filter_map(|p| p.chosen.as_ref()?.warning.clone())
        .collect();
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
        let read: Vec<_> = discover(&target.iam, &target.ec2, &role, Some(named), &steps)
            .collect()
            .await;
        // One region, read once.
        let [RegionRead::Instances(fleet)] = read.as_slice() else {
            panic!("one region read")
        };
        let named = fleet.named.as_ref().expect("looked for here").as_ref();
        assert_eq!(named.map(|n| n.id.as_str()), Some("i-0000000000000000f"));
        let siblings: Vec<&str> = fleet.siblings.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(siblings, ["i-0000000000000000a"]);
        assert_eq!(named.unwrap().association.as_ref().unwrap().id, "iip-assoc-f");
        let described = (described_named.num_calls(), described_sibling.num_calls());
        assert_eq!((marked.num_calls(), described), (1, (1, 1)));
    }
}
