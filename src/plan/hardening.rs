//! `HARDEN=imdsv2`: which instances are made to require IMDSv2, and how. Stolen instance
//! credentials most often leave through IMDSv1, which a server-side request forgery can read;
//! IMDSv2's session token cannot be fetched that way. Opt-in: an application that only speaks IMDSv1 loses its
//! credentials, so the named instance is hardened, and a sibling only where a tag asks for it.

use crate::plan::model::{FleetFacts, HARDEN_TAG, InstanceFacts, Relation, Step};
use crate::rules::{Action, Tags};

/// The value of [`HARDEN_TAG`] that asks for it.
pub const IMDSV2: &str = "imdsv2";

/// Whether the plan for this instance starts by requiring IMDSv2: before a cycle hands it fresh
/// credentials, so the same hole cannot leak them again.
fn requires_imdsv2(facts: &FleetFacts<'_>, relation: Relation, inst: &InstanceFacts, action: Action) -> bool {
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

/// `HARDEN=imdsv2`'s first step, where it applies, and what the result says of it. A hop limit of
/// 1 keeps IMDSv2's token from containers behind a bridge network, which IMDSv1 served: requiring
/// tokens alone would cut them off, on an instance the business may have asked to keep serving.
/// So it is raised to 2 in the same call, as the EC2 user guide advises for containers ("Configure
/// the instance metadata options",
/// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-options.html).
pub fn first_step(
    facts: &FleetFacts<'_>,
    relation: Relation,
    inst: &InstanceFacts,
    action: Action,
) -> Option<(Step, &'static str)> {
    requires_imdsv2(facts, relation, inst, action).then_some(())?;
    let hop_limit = (inst.hop_limit == Some(1)).then_some(2);
    let said = match hop_limit {
        Some(_) => "; IMDSv2 required first, its hop limit raised from 1 to 2 for containers",
        None => "; IMDSv2 required first",
    };
    Some((Step::RequireImdsv2 { hop_limit }, said))
}
