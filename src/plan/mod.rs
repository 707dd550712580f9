//! The decisions after the gate, as pure functions from facts to a plan; `respond` gathers the
//! facts and executes. Whether a role's sessions are revoked is the gate's alone (`gate.rs`).
//!
//! - [`instances`](mod@instances): what each instance using the role needs, given the cut-off in
//!   force; [`actions`] holds what each tag action does to one instance.
//!
//! Opt-in, beside the actions: [`hardening`] (which instances are made to require IMDSv2); the
//! evidence kept before an isolation is part of the isolate action.
//!
//! And after containment: [`release`](mod@release) (may a role's revocation be removed, and which
//! documents) and [`restore`](mod@restore) (may an isolated instance get its profile back);
//! [`auto_release`] names the schedule that asks for a release once the hold is over; [`chain`]
//! decides the walk of the stolen key's trail and its follow-ups.
//!
//! And before any incident: [`readiness`](mod@readiness), what a containment would do now to every
//! role and instance, through the gate and the plans above.
//!
//! Every instance plan is idempotent against the marker tags it writes ([`model`]): a retry after
//! a crash finishes what is left and never repeats a finished step.

pub mod actions;
pub mod auto_release;
pub mod chain;
pub mod hardening;
pub mod instances;
pub mod model;
pub mod readiness;
pub mod release;
pub mod restore;
pub mod workflow;

pub use instances::instances;
pub use model::*;

/// What the plan's tests share.
#[cfg(test)]
pub(crate) mod testing {
    use chrono::{DateTime, Utc};

    use crate::rules::Tags;

    pub fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    pub fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// WebAppRole in account 123456789012, with these tags.
    pub fn web_app_role(pairs: &[(&str, &str)]) -> crate::plan::RoleFacts {
        crate::plan::RoleFacts {
            name: "WebAppRole".into(),
            arn: "arn:aws:iam::123456789012:role/WebAppRole".into(),
            id: "AROAEXAMPLE".into(),
            path: "/".into(),
            tags: tags(pairs),
        }
    }
}
