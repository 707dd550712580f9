//! exfil-responder: contains GuardDuty EC2 instance-credential exfiltration findings.
//!
//! Where each rule lives:
//! - [`input`], [`finding`]: what an invocation carries, and which findings we act on.
//! - [`verify`]: whether GuardDuty confirms the finding an event claims.
//! - [`accounts`]: which account a finding is acted on in, and through which role;
//!   [`clients`]: the clients and member credentials per account and region.
//! - [`names`]: IAM and EC2 name rules, checked before any call uses a name.
//! - [`rules`]: the tag-driven actions and the protected roles.
//! - [`plan`]: the pure decision, from facts to the steps to take.
//! - [`policy`]: the revocation policy document.
//! - [`iam`], [`ec2`], [`guardduty`]: the AWS effects.
//! - [`respond`]: the handler that ties them together; [`report`]: what it says it did;
//!   [`metrics`]: the figures CloudWatch gets from each report.

pub mod accounts;
pub mod claim;
pub mod cli;
pub mod clients;
pub mod config;
pub mod ec2;
pub mod error;
pub mod finding;
pub mod guardduty;
pub mod iam;
pub mod input;
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod names;
pub mod plan;
pub mod policy;
pub mod report;
pub mod respond;
pub mod rules;
pub mod verify;
pub mod wait;

pub use config::Config;
pub use error::{Error, Result};
pub use respond::{App, Clients, Handled, handle, handle_until};
