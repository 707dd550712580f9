//! Which account a finding is acted on in, and as whom: the allow- and deny-lists, and the member
//! role assumed in any account other than the function's own.

use crate::config::Config;
use crate::names::is_account_id;

/// How to reach the finding's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// The function's own account, with its own credentials.
    Home,
    /// Another account, through its member role.
    Member { role_arn: String },
}

/// The account and partition the function runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    pub account: String,
    /// `aws`, `aws-cn` or `aws-us-gov`: member-role ARNs are built in the same partition.
    pub partition: String,
}

impl Home {
    /// From the invoked function's ARN, which Lambda hands every invocation:
    /// `arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]`.
    pub fn from_function_arn(arn: &str) -> Option<Self> {
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            ["arn", partition, "lambda", _, account, "function", _, ..]
                if !partition.is_empty() && is_account_id(account) =>
            {
                Some(Self {
                    account: (*account).to_owned(),
                    partition: (*partition).to_owned(),
                })
            }
            _ => None,
        }
    }
}

/// Decide how to reach `account`, or why not to act there at all (a skip reason).
/// The lists apply to every account, the function's own included.
pub fn reach(config: &Config, home_account: &str, partition: &str, account: &str) -> Result<Reach, String> {
    if !is_account_id(account) {
        // Checked before any name built from it reaches STS.
        return Err(format!("{account:?} is not a 12-digit AWS account id"));
    }
    if config.denied_accounts.iter().any(|a| a == account) {
        return Err(format!("account {account} is in DENIED_ACCOUNTS"));
    }
    if !config.allowed_accounts.is_empty() && !config.allowed_accounts.iter().any(|a| a == account) {
        return Err(format!("account {account} is not in ALLOWED_ACCOUNTS"));
    }
    if account == home_account {
        return Ok(Reach::Home);
    }
    match &config.member_role_name {
        Some(name) => Ok(Reach::Member {
            role_arn: format!("arn:{partition}:iam::{account}:role/{name}"),
        }),
        None => Err(format!(
            "the finding is for account {account}, and this function acts in account {home_account} only \
             (MEMBER_ROLE_NAME is not set): not acting on a role of the same name here"
        )),
    }
}

/// The AssumeRole session name: CloudTrail shows it as `assumed-role/<member role>/<session>`, so
/// it names the finding that opened the session. STS allows 2–64 of `[\w+=,.@-]`.
pub fn session_name(finding_id: &str) -> String {
    let id: String = finding_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c))
        .collect();
    let mut name = format!("exfil-responder-{id}");
    name.truncate(64);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: &str = "111111111111";
    const MEMBER: &str = "222222222222";

    fn config(member_role: Option<&str>, allowed: &[&str], denied: &[&str]) -> Config {
        Config {
            member_role_name: member_role.map(str::to_owned),
            allowed_accounts: allowed.iter().map(|a| a.to_string()).collect(),
            denied_accounts: denied.iter().map(|a| a.to_string()).collect(),
            ..Config::default()
        }
    }

    #[test]
    fn the_home_account_is_read_from_the_invoked_functions_arn() {
        let home = |arn| Home::from_function_arn(arn);
        assert_eq!(
            home("arn:aws-us-gov:lambda:us-gov-west-1:111111111111:function:exfil-responder:live"),
            Some(Home {
                account: HOME.into(),
                partition: "aws-us-gov".into()
            })
        );
        assert_eq!(
            home("arn:aws:lambda:us-east-1:111111111111:function:f").map(|h| h.partition),
            Some("aws".into())
        );
        for bad in [
            "",
            "arn:aws:lambda:us-east-1:1111:function:f",
            "arn:aws:iam::111111111111:role/f",
            "arn::lambda:us-east-1:111111111111:function:f",
            "arn:aws:lambda:us-east-1:111111111111:function",
        ] {
            assert_eq!(home(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_home_account_needs_no_member_role() {
        assert_eq!(reach(&config(None, &[], &[]), HOME, "aws", HOME), Ok(Reach::Home));
    }

    #[test]
    fn another_account_is_reached_through_the_member_role_in_its_partition() {
        let reached = reach(&config(Some("Responder"), &[], &[]), HOME, "aws-cn", MEMBER);
        assert_eq!(
            reached,
            Ok(Reach::Member {
                role_arn: "arn:aws-cn:iam::222222222222:role/Responder".into()
            })
        );
    }

    #[test]
    fn without_a_member_role_another_account_is_skipped_saying_why() {
        let why = reach(&config(None, &[], &[]), HOME, "aws", MEMBER).unwrap_err();
        assert!(why.contains("MEMBER_ROLE_NAME is not set"), "{why}");
    }

    #[test]
    fn the_deny_list_wins_and_the_allow_list_restricts_every_account() {
        let both = config(Some("R"), &[MEMBER], &[MEMBER]);
        assert!(
            reach(&both, HOME, "aws", MEMBER)
                .unwrap_err()
                .contains("DENIED_ACCOUNTS")
        );
        let allowed = config(Some("R"), &[MEMBER], &[]);
        assert!(reach(&allowed, HOME, "aws", MEMBER).is_ok());
        assert!(
            reach(&allowed, HOME, "aws", "333333333333")
                .unwrap_err()
                .contains("not in ALLOWED_ACCOUNTS")
        );
        assert!(
            reach(&allowed, HOME, "aws", HOME)
                .unwrap_err()
                .contains("not in ALLOWED_ACCOUNTS")
        );
    }

    #[test]
    fn a_malformed_account_never_becomes_a_role_arn() {
        for bad in ["12345", "22222222222a", "222222222222:role/x", ""] {
            assert!(
                reach(&config(Some("R"), &[], &[]), HOME, "aws", bad).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn session_names_carry_the_finding_id_within_stss_limits() {
        assert_eq!(
            session_name("7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b"),
            "exfil-responder-7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b"
        );
        assert_eq!(session_name("manual"), "exfil-responder-manual");
        assert_eq!(session_name(&"a".repeat(100)).len(), 64);
        assert_eq!(session_name("a/b c"), "exfil-responder-abc");
    }
}
