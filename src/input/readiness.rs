//! The readiness payload: `{"operation": "readiness"}`, optionally naming the accounts to assess
//! (`accountIds`; none: the function's own). Read only: it takes no `dryRun`, having nothing to
//! plan, and no role or instance, assessing every one.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::finding::{Triage, typed};
use crate::names::is_account_id;
use crate::operation::{Asked, Operation, Readiness, check_asked};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReadinessPayload {
    #[allow(dead_code)]
    operation: String,
    #[serde(default)]
    account_ids: Vec<String>,
    reason: Option<String>,
    requested_by: Option<String>,
}

/// More accounts than one invocation reads within Lambda's 15 minutes at scale: assess an
/// organisation in several invocations.
pub const MAX_ACCOUNTS: usize = 50;

pub fn parse(value: Value) -> Result<Triage> {
    let p: ReadinessPayload = typed(value, "")?;
    if p.account_ids.len() > MAX_ACCOUNTS {
        return Err(Error::bad_input(
            "accountIds",
            format!("at most {MAX_ACCOUNTS} accounts per invocation"),
        ));
    }
    if let Some(bad) = p.account_ids.iter().find(|a| !is_account_id(a)) {
        return Err(Error::bad_input(
            "accountIds",
            format!("{bad:?} is not a 12-digit account id"),
        ));
    }
    check_asked(p.reason.as_deref(), p.requested_by.as_deref())?;
    let mut seen = std::collections::HashSet::new();
    let mut accounts = p.account_ids;
    accounts.retain(|a| seen.insert(a.clone()));
    Ok(Triage::Operate(Operation::Readiness(Readiness {
        accounts,
        asked: Asked {
            account_id: None,
            reason: p.reason.filter(|r| !r.trim().is_empty()),
            requested_by: p.requested_by,
            dry_run: false,
        },
    })))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parsed(value: Value) -> Result<Readiness> {
        match parse(value)? {
            Triage::Operate(Operation::Readiness(r)) => Ok(r),
            _ => panic!("not a readiness operation"),
        }
    }

    #[test]
    fn readiness_names_its_accounts_or_none() {
        let own = parsed(json!({"operation": "readiness"})).unwrap();
        assert!(own.accounts.is_empty());
        let two = parsed(
            json!({"operation": "readiness", "accountIds": ["111122223333", "444455556666"],
                                "requestedBy": "arn:aws:iam::111122223333:user/alice"}),
        )
        .unwrap();
        assert_eq!(two.accounts, ["111122223333", "444455556666"]);
        assert_eq!(
            two.asked.requested_by.as_deref(),
            Some("arn:aws:iam::111122223333:user/alice")
        );
    }

    #[test]
    fn bad_readiness_payloads_are_refused_naming_the_field() {
        for (payload, field) in [
            (json!({"operation": "readiness", "accountIds": ["1234"]}), "accountIds"),
            (json!({"operation": "readiness", "roleName": "R"}), "roleName"),
            (json!({"operation": "readiness", "dryRun": true}), "dryRun"),
            (
                json!({"operation": "readiness", "accountIds": vec!["111122223333"; MAX_ACCOUNTS + 1]}),
                "accountIds",
            ),
        ] {
            let err = parse(payload.clone()).unwrap_err().to_string();
            assert!(err.contains(field), "{payload}: {err}");
        }
    }
}
