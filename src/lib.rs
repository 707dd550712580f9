//! exfil-responder: contains GuardDuty EC2 instance-credential exfiltration findings.
//!
//! Where each rule lives:
//! - [`input`], [`finding`]: what an invocation carries, and which findings we act on.
//! - [`names`]: IAM and EC2 name rules, checked before any call uses a name.
//! - [`rules`]: the tag-driven actions and the protected roles.
//! - [`plan`]: the pure decision, from facts to the steps to take.
//! - [`policy`]: the revocation policy document.
//! - [`iam`], [`ec2`]: the AWS effects.
//! - [`respond`]: the handler that ties them together; [`report`]: what it says it did;
//!   [`metrics`]: the figures CloudWatch gets from each report.

pub mod cli;
pub mod config;
pub mod ec2;
pub mod error;
pub mod finding;
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

pub use config::Config;
pub use error::{Error, Result};
pub use respond::{App, Clients, Handled, handle};
