//! Cycling the fleet in rounds: each round plans every instance against the cut-off in force,
//! runs the plans, and reads the cut-off again once every new association is made. A cut-off that
//! moved meanwhile (another run, or a person) starts another round against it.

use chrono::{DateTime, Utc};
use tracing::warn;

use crate::app::App;
use crate::aws::clients::Target;
use crate::error::{Error, Result};
use crate::finding::Incident;
use crate::report::InstanceReport;
use crate::respond::establish::About;
use crate::respond::execute::{self, Running};
use crate::respond::fleet::{self, Fleet, RoleOf};
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
    /// Cycle the fleet read beside the write. If it could not be read, nothing was cycled: fail,
    /// so that the retry does it. Returns what was cycled, and the cut-off the fleet was last
    /// cycled against or why cycling failed part-way.
    pub async fn discovered(
        &self,
        fleet: Result<Fleet>,
        cutoff: DateTime<Utc>,
        steps: &Journal,
    ) -> (Cycled, Result<DateTime<Utc>>) {
        let mut cycled = Cycled::default();
        let settled = match fleet {
            Ok(fleet) => self.rounds(fleet, cutoff, steps, &mut cycled).await,
            Err(e) => Err(Error::RemediationFailed(format!(
                "sessions revoked, but the instances using role {} could not be listed ({e}): none was cycled or isolated; a retry does it",
                self.about.role
            ))),
        };
        (cycled, settled)
    }

    /// The cut-off can move while we cycle: a concurrent run for another finding about this role,
    /// or a person, revokes again, and a later cut-off denies the credentials just issued. So after
    /// cycling we read it again, and cycle against any later one, a bounded number of times.
    /// Returns the cut-off the fleet was last cycled against.
    async fn rounds(
        &self,
        fleet: Fleet,
        mut cutoff: DateTime<Utc>,
        steps: &Journal,
        cycled: &mut Cycled,
    ) -> Result<DateTime<Utc>> {
        let (role, config) = (&self.about.role, &self.app.config);
        let named = self.about.instance.as_ref();
        let running = Running {
            dry_run: self.dry_run,
            cycle_timeout: config.cycle_timeout,
        };
        let mut fleet = Some(fleet);
        for round in 1..=CUTOFF_ROUNDS {
            // Facts read before the cut-off was settled (a claim lost to another run) are read again.
            let facts = match fleet.take().filter(|f| f.observed_at >= cutoff) {
                Some(f) => f,
                None => {
                    let named = named_in(self.about, self.named_region);
                    fleet::discover(&self.target.iam, &self.target.ec2, role, named, steps).await?
                }
            };
            let role_of = RoleOf {
                name: role,
                tags: self.role_tags,
            };
            let (plans, warnings) = fleet::plan(config, cutoff, self.incident, role_of, named, &facts);
            for warning in warnings {
                if !cycled.warnings.contains(&warning) {
                    cycled.warnings.push(warning);
                }
            }
            // The cut-off is read again once every new association is made (its credentials are
            // issued from then on), while the waits for them to show and the marks go on.
            let together = execute::Round::of(&plans, config.fleet_concurrency);
            let recheck = !self.dry_run && together.attaches();
            let (against, covers_from) = (cutoff, self.covers_from);
            let reread = async {
                together.all_made().await;
                revoke::recheck(&self.target.iam, role, against, covers_from, round, steps).await
            };
            let execute = execute::all(&self.target.ec2, plans, (running, &together), steps);
            let (executed, moved) = match recheck {
                true => tokio::join!(execute, reread),
                false => (execute.await, Ok(None)),
            };
            execute::merge(&mut cycled.instances, executed.reports);
            if !executed.failures.is_empty() {
                return Err(Error::RemediationFailed(format!(
                    "sessions revoked, but {} instance(s) need attention: {}",
                    executed.failures.len(),
                    executed.failures.join(", ")
                )));
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
}
