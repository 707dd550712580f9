//! Cycling the fleet in rounds: each round plans every instance against the cut-off in force, a
//! region at a time as each is read, runs the plans at once, and reads the cut-off again once every
//! region is read and every new association made. A cut-off that moved meanwhile (another run, or
//! a person) starts another round against it.

use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use tracing::warn;

use crate::app::App;
use crate::aws::clients::Target;
use crate::error::{Error, Result};
use crate::finding::Incident;
use crate::plan::Relation;
use crate::report::InstanceReport;
use crate::respond::establish::About;
use crate::respond::execute::{self, Counted, Executed, Round, Running};
use crate::respond::fleet::{self, Discovery, RegionRead, RoleOf};
use crate::respond::journal::Journal;
use crate::respond::revoke::{self, CUTOFF_ROUNDS};
use crate::rules::Tags;

/// What the rounds did, however far they got: every instance's report, merged over the rounds,
/// and the rounds' warnings.
#[derive(Default)]
pub struct Cycled {
    pub instances: Vec<InstanceReport>,
    pub warnings: Vec<String>,
}

pub fn named_in<'a>(about: &'a About, region: &'a str) -> Option<fleet::Named<'a>> {
    about.instance.as_ref().map(|id| fleet::Named { id, region })
}

/// What every round of cycling the fleet works with.
pub struct Cycling<'a> {
    pub app: &'a App,
    pub target: &'a Target,
    pub incident: &'a Incident,
    pub about: &'a About,
    pub named_region: &'a str,
    /// The role's tags (its default action), and what the cut-off must still reach when read again.
    pub role_tags: &'a Tags,
    pub covers_from: DateTime<Utc>,
    pub dry_run: bool,
}

impl Cycling<'_> {
    /// Cycle the fleet as it is read beside the write: each region as soon as it is read. Returns
    /// what was cycled, and the cut-off the fleet was last cycled against or why cycling failed
    /// part-way.
    pub async fn discovered(
        &self,
        fleet: Discovery,
        cutoff: DateTime<Utc>,
        steps: &Journal,
    ) -> (Cycled, Result<DateTime<Utc>>) {
        let mut cycled = Cycled::default();
        let settled = self.rounds(fleet, cutoff, steps, &mut cycled).await;
        (cycled, settled)
    }

    /// The cut-off can move while we cycle: a concurrent run for another finding about this role,
    /// or a person, revokes again, and a later cut-off denies the credentials just issued. So after
    /// cycling we read it again, and cycle against any later one, a bounded number of times.
    /// Returns the cut-off the fleet was last cycled against.
    async fn rounds(
        &self,
        fleet: Discovery,
        mut cutoff: DateTime<Utc>,
        steps: &Journal,
        cycled: &mut Cycled,
    ) -> Result<DateTime<Utc>> {
        let role = &self.about.role;
        let mut fleet = Some(fleet);
        for round in 1..=CUTOFF_ROUNDS {
            // Facts read before the cut-off was settled (a claim lost to another run) are read again.
            let (discovery, reading) = match fleet.take().filter(|f| f.observed_at >= cutoff) {
                Some(f) => (f, futures::future::ready(()).boxed()),
                None => {
                    let named = named_in(self.about, self.named_region);
                    let (discovery, reading) = fleet::read((&self.target.iam, &self.target.ec2), role, named, steps);
                    (discovery, reading.boxed())
                }
            };
            let ((), (parts, moved)) = tokio::join!(reading, self.round(discovery, cutoff, round, steps));
            if let Some(failure) = self.gather(parts, cycled) {
                return Err(failure);
            }
            match moved? {
                None => break,
                Some(later) => {
                    let moved = format!(
                        "the cut-off moved from {} to {} while instances were cycled (another run or a person revoked again); cycled against the later one",
                        cutoff.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        later.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    );
                    warn!(role = %role, %moved, "cut-off moved");
                    cycled.warnings.push(moved);
                    cutoff = later;
                }
            }
        }
        Ok(cutoff)
    }

    /// One round: each region planned against `cutoff` and run as soon as it is read, all sharing
    /// the round's slots; the cut-off read again once every region is read and every new
    /// association is made (its credentials are issued from then on), while the waits for them
    /// to show and the marks go on. Returns each region's part, and a later cut-off if it moved.
    async fn round(
        &self,
        discovery: Discovery,
        cutoff: DateTime<Utc>,
        round: usize,
        steps: &Journal,
    ) -> (Vec<Part>, Result<Option<DateTime<Utc>>>) {
        let (role, config) = (&self.about.role, &self.app.config);
        let running = Running {
            dry_run: self.dry_run,
            cycle_timeout: config.cycle_timeout,
        };
        let together = Round::new(config.fleet_concurrency);
        let together = &together;
        let observed_at = discovery.observed_at;
        // The end of the regions is an item too: once every region before it has been counted.
        let regions = discovery.regions.map(Some).chain(futures::stream::once(async { None }));
        let parts = regions
            .map(|read| {
                // Counted here, as it comes, before any of its steps run.
                let part = self.count(read, (cutoff, observed_at), together);
                async move {
                    match part {
                        Counting::Counted(plans, warnings) => {
                            let executed = execute::all(self.target, plans, running, steps);
                            Part::Executed(executed.await, warnings)
                        }
                        Counting::Done(part) => part,
                    }
                }
            })
            .buffer_unordered(usize::MAX)
            .collect::<Vec<Part>>();
        let (against, covers_from) = (cutoff, self.covers_from);
        let reread = async {
            together.all_made().await;
            match !self.dry_run && together.attaches() {
                true => revoke::recheck(&self.target.iam, role, against, covers_from, round, steps).await,
                false => Ok(None),
            }
        };
        tokio::join!(parts, reread)
    }

    /// One region's read, planned and counted in `together`; or what it came to without plans.
    fn count<'r>(
        &self,
        read: Option<RegionRead>,
        (cutoff, observed_at): (DateTime<Utc>, DateTime<Utc>),
        together: &'r Round,
    ) -> Counting<'r> {
        let fleet = match read {
            None => {
                together.all_read();
                return Counting::Done(Part::Nothing);
            }
            Some(RegionRead::Unread(what, e)) => return Counting::Done(Part::Unread(what, e)),
            Some(RegionRead::Denied(warning)) => return Counting::Done(Part::Warned(warning)),
            Some(RegionRead::Instances(fleet)) => fleet,
        };
        let role_of = RoleOf {
            name: &self.about.role,
            tags: self.role_tags,
        };
        let named = self.about.instance.as_ref();
        let config = &self.app.config;
        let (plans, warnings) = fleet::plan(config, (cutoff, observed_at), self.incident, role_of, named, &fleet);
        Counting::Counted(together.count(plans), warnings)
    }

    /// Merge the round's parts into what was cycled (a later round's report of an instance
    /// replaces an earlier one's); the failure, if any instance failed or any region was not read.
    fn gather(&self, parts: Vec<Part>, cycled: &mut Cycled) -> Option<Error> {
        let (mut reports, mut failures, mut unread) = (Vec::new(), Vec::new(), Vec::new());
        for part in parts {
            let warnings = match part {
                Part::Executed(executed, warnings) => {
                    reports.extend(executed.reports);
                    failures.extend(executed.failures);
                    warnings
                }
                Part::Warned(warning) => vec![warning],
                Part::Unread(what, e) => {
                    unread.push(format!("{what} ({e})"));
                    Vec::new()
                }
                Part::Nothing => Vec::new(),
            };
            for warning in warnings {
                if !cycled.warnings.contains(&warning) {
                    cycled.warnings.push(warning);
                }
            }
        }
        // The named instance first, then by region and id: regions finish in any order.
        let key = |r: &InstanceReport| (r.relation != Relation::Named, r.region.clone(), r.instance_id.clone());
        reports.sort_by_key(key);
        execute::merge(&mut cycled.instances, reports);
        let mut said = Vec::new();
        if !failures.is_empty() {
            let failed = failures.join(", ");
            said.push(format!("{} instance(s) need attention: {failed}", failures.len()));
        }
        if !unread.is_empty() {
            said.push(format!(
                "the instances using role {} could not be listed in {}: none there was cycled or isolated; a retry does it",
                self.about.role,
                unread.join(", ")
            ));
        }
        (!said.is_empty()).then(|| Error::RemediationFailed(format!("sessions revoked, but {}", said.join("; "))))
    }
}

/// A region's read, counted in the round or done without plans.
enum Counting<'r> {
    Counted(Counted<'r>, Vec<String>),
    Done(Part),
}

/// What one region came to in a round.
enum Part {
    Executed(Executed, Vec<String>),
    /// Skipped, with the warning saying so.
    Warned(String),
    /// Not read: what, and why.
    Unread(String, Error),
    /// The end of the regions.
    Nothing,
}
