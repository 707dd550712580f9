//! The AWS adapters: each turns the SDK's calls into the domain's types and the one error type,
//! and decides nothing. IAM is global; EC2 and GuardDuty are regional ([`clients`] builds them per
//! account and region). EventBridge Scheduler is used only in the function's own account and region;
//! Security Hub and SNS (what is told after a response) from the function's own account.
//! CloudTrail's event history is regional and per account: the walk of a stolen key's trail asks
//! each enabled region of the account whose trail it reads.

pub mod access_keys;
pub mod autoscaling;
pub mod claim;
pub mod clients;
pub mod cloudtrail;
pub mod ec2;
pub mod evidence;
pub mod guardduty;
pub mod iam;
pub mod inventory;
pub mod metadata;
pub mod scheduler;
pub mod securityhub;
pub mod sns;
pub mod sts;
