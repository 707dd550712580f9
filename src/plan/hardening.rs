//! `HARDEN=imdsv2`: which instances are made to require IMDSv2. Stolen instance credentials most
//! often leave through IMDSv1, which a server-side request forgery can read; IMDSv2's session
//! token cannot be fetched that way. Opt-in: an application that only speaks IMDSv1 loses its
//! credentials, so the named instance is hardened, and a sibling only where a tag asks for it.

use crate::plan::model::{FleetFacts, HARDEN_TAG, InstanceFacts, Relation};
use crate::rules::{Action, Tags};

/// The value of [`HARDEN_TAG`] that asks for it.
pub const IMDSV2: &str = "imdsv2";

/// Whether the plan for this instance starts by requiring IMDSv2: before a cycle hands it fresh
/// credentials, so the same hole cannot leak them again.
pub fn requires_imdsv2(facts: &FleetFacts<'_>, relation: Relation, inst: &InstanceFacts, action: Action) -> bool {
    let asked = |tags: &Tags| {
        tags.get(HARDEN_TAG)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case(IMDSV2))
    };
    let wanted = relation == Relation::Named || asked(&inst.tags) || asked(facts.role_tags);
    facts.config.require_imdsv2
        && wanted
        // `ignore` leaves the instance as it is, whatever else is configured.
        && action != Action::Ignore
        && matches!(inst.state.as_str(), "running" | "stopped")
        && inst.http_tokens.as_deref() != Some("required")
}
