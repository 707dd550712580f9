//! The prefetch: what containment reads before GuardDuty has confirmed the finding, so that the
//! write follows the confirmation by one round trip and the fleet is read beside it.
//!
//! Its contract, which is all a reviewer needs to check of it:
//! - **What it starts before confirmation**: reads, and the revocation claim. The facts of the
//!   role the request names (`GetRole`, `GetRolePolicy`, `ListAttachedRolePolicies`); the fleet
//!   of that role and instance (instance profiles, enabled regions, instances: `fleet`); and,
//!   with `CLAIM_TABLE` and not in a dry run, the claim (a DynamoDB item, never an IAM or EC2
//!   write: [`EarlyClaim`]). A refused or skipped finding has therefore changed nothing.
//! - **Nothing it read is used unless it is about the same role** (and, for the fleet, the same
//!   named instance and region) as the confirmed finding; otherwise it is read again.
//! - **It authorises nothing.** The facts go to the [`gate`](crate::gate) like any others; the
//!   claim can only delay a permitted write or adopt another run's (`revoke::write`), and one the
//!   write did not use is released at the end ([`Prefetch::release_unused`]).
//! - **The cut-off is fixed as of its start** ([`Prefetch::at`]): the gate decides the cut-off of
//!   that moment, so that a write uses the claim taken for it, and the fleet read from then on
//!   misses no instance that took credentials before it.

use std::future::Future;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::app::App;
use crate::aws::clients::Target;
use crate::error::Result;
use crate::finding::Incident;
use crate::names::RoleName;
use crate::policy::cutoff_at;
use crate::respond::early_claim::EarlyClaim;
use crate::respond::establish::Place;
use crate::respond::fleet::{self, Discovery, EarlyFleet};
use crate::respond::journal::Journal;
use crate::respond::revoke::{self, RoleRead};

/// What was started with the first reads, until containment uses or drops it.
pub struct Prefetch {
    /// When the first reads started: the cut-off the gate decides.
    pub at: DateTime<Utc>,
    claim: Option<EarlyClaim>,
    /// The role the request names, and its facts once read.
    role: Option<(RoleName, Option<Result<RoleRead>>)>,
    fleet: Option<EarlyFleet>,
}

/// The fleet being read with the first reads.
pub struct FleetRead(Option<EarlyFleet>);

impl FleetRead {
    /// The fleet being read with the first reads if it is of `role` and `named`, else read now,
    /// with the future that reads it (to run beside what uses it).
    pub fn or_discover<'a>(
        self,
        target: &'a Target,
        role: &'a RoleName,
        named: Option<fleet::Named<'a>>,
        steps: &'a Journal,
    ) -> (Discovery, BoxFuture<'a, ()>) {
        EarlyFleet::or_discover(self.0, (&target.iam, &target.ec2), role, named, steps)
    }
}

impl Prefetch {
    /// Fix the cut-off as of now, and prepare the reads of the role and fleet `incident` names
    /// (none for a manual finding id, which names neither). Returns the fleet's read, to be run
    /// [`beside`] containment.
    pub fn start<'a>(
        app: &App,
        (target, place): (&'a Target, &Place),
        incident: Option<&Incident>,
        dry_run: bool,
        steps: &'a Journal,
    ) -> (Self, impl Future<Output = ()> + use<'a>) {
        let at = cutoff_at(Utc::now());
        let claim = EarlyClaim::new(app, &place.account, incident, (at, dry_run));
        let named = fleet::named_fleet(incident, place);
        let role = named.as_ref().map(|(role, _)| (role.clone(), None));
        let (fleet, read_fleet) = match fleet::early_fleet(target, named, steps) {
            Some((fleet, reading)) => (Some(fleet), reading.boxed()),
            None => (None, futures::future::ready(()).boxed()),
        };
        let prefetch = Self { at, claim, role, fleet };
        (prefetch, read_fleet)
    }

    /// Run `confirming` (GuardDuty's confirmation) and `own_role` with the named role's facts and
    /// the claim: all at once, in that order.
    pub async fn confirm<C: Future, O: Future>(
        &mut self,
        app: &App,
        target: &Target,
        (confirming, own_role): (C, O),
        steps: &Journal,
    ) -> (C::Output, O::Output) {
        let read_named = async {
            match &self.role {
                Some((role, _)) => Some(revoke::read_role(&target.iam, role, steps).await),
                None => None,
            }
        };
        let take_claim = async {
            if let Some(claim) = &self.claim {
                claim.take(app, steps).await;
            }
        };
        let (confirmed, read, own, ()) = tokio::join!(confirming, read_named, own_role, take_claim);
        if let Some((_, facts)) = self.role.as_mut() {
            *facts = read;
        }
        (confirmed, own)
    }

    /// The facts of `role`: those read with the confirmation if it is the role they are of, else
    /// read now.
    pub async fn role(&mut self, role: &RoleName, target: &Target, steps: &Journal) -> Result<RoleRead> {
        match self.role.take() {
            Some((named, Some(read))) if named == *role => {
                steps.set_role(role.as_str());
                read
            }
            _ => {
                steps.set_role(role.as_str());
                revoke::read_role(&target.iam, role, steps).await
            }
        }
    }

    /// The claim taken with the first reads, for the write to use if it answers for it.
    pub fn claim(&self) -> Option<&EarlyClaim> {
        self.claim.as_ref()
    }

    /// The fleet's read, taken out so that the write can use the claim beside it.
    pub fn take_fleet(&mut self) -> FleetRead {
        FleetRead(self.fleet.take())
    }

    /// Release the claim if it was won and no write took it; why it could not be, if it failed.
    pub async fn release_unused(&self, app: &App, steps: &Journal) -> Option<String> {
        self.claim.as_ref()?.release_unused(app, steps).await
    }
}

/// Run `containment` with the fleet's read beside it. A run that ends without the fleet (refused,
/// skipped) does not wait for its reads. Biased: polled in order, as a join would, so that calls
/// go out in a fixed order.
pub async fn beside<T>(read_fleet: impl Future<Output = ()>, containment: impl Future<Output = T>) -> T {
    let mut containment = std::pin::pin!(containment);
    tokio::select! {
        biased;
        ended = &mut containment => ended,
        () = read_fleet => containment.await,
    }
}
