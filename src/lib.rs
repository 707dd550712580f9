//! exfil-responder: contains GuardDuty EC2 instance-credential exfiltration findings.
//!
//! Where each rule lives:
//! - [`input`], [`finding`]: what an invocation carries, and which findings we act on.
//! - [`verify`]: whether GuardDuty's copy of a finding matches the one an event claims.
//! - [`accounts`]: which account a finding is acted on in, and through which role.
//! - [`names`]: IAM, EC2 and account name rules, checked before any call uses a name.
//! - [`rules`]: the tag-driven actions and the protected roles.
//! - [`gate`]: the one decision to write a deny, and the [`gate::Permit`] every such write needs.
//! - [`plan`]: the pure decisions after it, from facts to what to do: each instance's steps.
//! - [`policy`]: the revocation policy document; [`revoked_keys`]: the role's record of the
//!   stolen keys its revocation answered (a key used after the cut-off and not in it: revoke again).
//! - [`respond`]: the remediation as phases (establish, revoke, fleet, execute) and the step
//!   executor; [`api`]: every AWS call a step runs, and whether it writes.
//! - [`aws`]: the adapters (clients per account and region, IAM, EC2, GuardDuty, STS, the claim).
//! - [`report`]: what a run says it did; [`metrics`]: the figures CloudWatch gets from each report;
//!   [`message`]: what a person reads of it (Security Hub's note, the chat message).
//! - [`operation`]: after containment, a role's release and an isolated instance's restore
//!   (decided in [`plan`], run in [`respond`]).
//! - [`trail`]: CloudTrail's records of what a stolen key did, checked (`CHAIN`: the walk is
//!   decided in [`plan`] and run in [`respond`]).
//! - [`lambda`] and [`cli`]: the two doors; [`app`]: what a process keeps between invocations.

pub mod accounts;
pub mod api;
pub mod app;
pub mod aws;
pub mod cli;
pub mod config;
pub mod error;
pub mod finding;
pub mod gate;
pub mod input;
pub mod lambda;
pub mod logging;
pub mod message;
pub mod metrics;
pub mod names;
pub mod operation;
pub mod plan;
pub mod policy;
pub mod report;
pub mod respond;
pub mod revoked_keys;
pub mod rules;
pub mod trail;
pub mod verify;
pub mod wait;

pub use app::App;
pub use aws::clients::Clients;
pub use config::Config;
pub use error::{Error, Result};
pub use respond::{Handled, handle, handle_until};
