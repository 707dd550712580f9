//! One round of the fleet's plans: what its instances share in every region (the count of
//! attaches still to be made, the slots, the marks and reads sent together).

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Semaphore, watch};

use crate::plan::{Association, InstancePlan, Relation, Step};
use crate::respond::batch::Batches;

/// What the instances of one round share, in every region: the count of new associations still
/// to be made (one for each instance with an attach step, counted before its steps start, and let
/// go once its attach step is done or known never to be: the instance failed or stopped earlier;
/// plus one more until every region has been read), the slots of the instances being worked on,
/// and the marks and association reads sent for several at once
/// ([`batch`](crate::respond::batch)). What reads the cut-off again waits for
/// [`Round::all_made`], not for the marks after.
pub struct Round {
    /// New associations still to be made, plus one while regions are still being read.
    pub(super) pending: watch::Sender<usize>,
    /// Whether any plan counted attaches a profile.
    pub(super) attaching: AtomicBool,
    /// `FLEET_CONCURRENCY` of them, across every region: an instance holds one from its first
    /// step other than a mark to its attach (to its last step, if it attaches nothing). So at most
    /// that many are between detach and attach at once, and the next instance starts while the one
    /// before waits for its new association to show and is marked, rather than after. Marks take
    /// none: they change no credentials, and the marks of instances waiting for a place go out as
    /// one request with the marks of those starting (the profile marker of a region's fleet at
    /// once), so an instance that gets its place later begins at its detach. The named instance
    /// has a place of its own, one of them, whenever there are two or more: regions are read in
    /// any order, and its own must not wait for a place behind another region's siblings.
    pub(super) slots: Semaphore,
    /// The named instance's place, if it has one of its own.
    pub(super) named_slot: Option<Semaphore>,
    /// By region and tags.
    pub(super) marks: Batches<(String, Vec<(String, String)>), ()>,
    /// By region.
    pub(super) reads: Batches<String, Vec<Association>>,
}

/// Plans counted in a [`Round`], which [`all`] runs in that round and no other.
pub struct Counted<'r> {
    pub(super) round: &'r Round,
    pub(super) plans: Vec<InstancePlan>,
}

impl Round {
    /// A round whose regions are still being read, `concurrency` instances worked on at once.
    pub fn new(concurrency: usize) -> Self {
        let own = usize::from(concurrency >= 2);
        Self {
            pending: watch::Sender::new(1),
            attaching: AtomicBool::new(false),
            slots: Semaphore::new(concurrency.max(1) - own),
            named_slot: (own == 1).then(|| Semaphore::new(1)),
            marks: Batches::default(),
            reads: Batches::default(),
        }
    }

    /// Count `plans` in: their attaches are waited for by [`Round::all_made`].
    pub fn count(&self, plans: Vec<InstancePlan>) -> Counted<'_> {
        let attaching = plans.iter().filter(|p| attaches(p)).count();
        if attaching > 0 {
            self.attaching.store(true, Ordering::SeqCst);
            self.pending.send_modify(|n| *n += attaching);
        }
        Counted { round: self, plans }
    }

    /// Every region has been read: no more plans are counted.
    pub fn all_read(&self) {
        self.made_one();
    }

    /// Whether any plan counted attaches a profile.
    pub fn attaches(&self) -> bool {
        self.attaching.load(Ordering::SeqCst)
    }

    /// Once every region has been read and every attach step counted has been answered (or will
    /// never be sent).
    pub async fn all_made(&self) {
        // The sender lives as long as the round, so the wait only ends at zero.
        let _ = self.pending.subscribe().wait_for(|n| *n == 0).await;
    }

    /// A place to work on an instance: the named instance's own if it has one.
    pub(super) async fn place(&self, relation: Relation) -> tokio::sync::SemaphorePermit<'_> {
        let own = self.named_slot.as_ref().filter(|_| relation == Relation::Named);
        own.unwrap_or(&self.slots)
            .acquire()
            .await
            .expect("the slots are never closed")
    }

    fn made_one(&self) {
        self.pending
            .send_modify(|n| *n = n.checked_sub(1).expect("only what was counted is let go"));
    }
}

/// One instance's place in [`Round`]'s count: let go when released, or when dropped.
pub(super) struct Attach<'a>(pub(super) Option<&'a Round>);

impl Attach<'_> {
    pub(super) fn release(&mut self) {
        if let Some(round) = self.0.take() {
            round.made_one();
        }
    }
}

impl Drop for Attach<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// Whether the plan attaches a profile.
pub(super) fn attaches(plan: &InstancePlan) -> bool {
    plan.steps.iter().any(|s| matches!(s, Step::Associate(_)))
}
