//! What a follow-up schedule delivers (`CHAIN`, see [`crate::plan::chain::follow_ups`]): another
//! walk of a contained finding's stolen key's trail. Anyone allowed to invoke the function can
//! send one, so it only reads unless CloudTrail's own records say what to act on, and it acts only
//! where the role it names is already revoked (`respond::chain::follow_up`).

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::finding::{Triage, typed};
use crate::names::{RoleName, is_account_id};
use crate::operation::{Asked, FollowUp, Operation};
use crate::trail::is_key_id;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FollowUpPayload {
    #[allow(dead_code)]
    operation: String,
    finding_id: String,
    account_id: String,
    region: String,
    access_key_id: String,
    role_name: String,
    since: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    walked: Vec<String>,
    schedule: Option<String>,
    requested_by: Option<String>,
    dry_run: Option<bool>,
}

/// The keys a follow-up may name, at most: more than any bounded walk finds.
const MAX_WALKED: usize = 200;

pub fn parse(value: Value) -> Result<Triage> {
    let p: FollowUpPayload = typed(value, "")?;
    if !is_account_id(&p.account_id) {
        return Err(Error::bad_input("accountId", "not a 12-digit account id"));
    }
    if !crate::names::is_region(&p.region) {
        return Err(Error::bad_input("region", "not a region name"));
    }
    if !is_key_id(&p.access_key_id) {
        return Err(Error::bad_input("accessKeyId", "not an access key id"));
    }
    if (p.finding_id.is_empty() || p.finding_id.len() > 300) || !p.finding_id.is_ascii() {
        return Err(Error::bad_input("findingId", "not a finding id"));
    }
    if p.walked.len() > MAX_WALKED || !p.walked.iter().all(|k| is_key_id(k)) {
        return Err(Error::bad_input(
            "walked",
            format!("at most {MAX_WALKED} access key ids"),
        ));
    }
    if let Some(s) = &p.schedule
        && !crate::plan::auto_release::is_schedule_name(s)
    {
        return Err(Error::bad_input(
            "schedule",
            "not a schedule name (1 to 64 of [0-9A-Za-z-_.])",
        ));
    }
    if p.requested_by
        .as_ref()
        .is_some_and(|r| r.chars().count() > crate::operation::MAX_REQUESTED_BY_CHARS)
    {
        return Err(Error::bad_input("requestedBy", "too long"));
    }
    Ok(Triage::Operate(Operation::FollowUp(FollowUp {
        finding_id: p.finding_id,
        key: p.access_key_id,
        role: Some(RoleName::parse(&p.role_name).map_err(|e| Error::bad_input("roleName", e))?),
        region: p.region,
        since: p.since,
        walked: p.walked,
        schedule: p.schedule,
        asked: Asked {
            account_id: Some(p.account_id),
            reason: None,
            requested_by: p.requested_by,
            dry_run: p.dry_run.unwrap_or(false),
        },
    })))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn payload() -> Value {
        json!({
            "operation": "follow-up", "findingId": "f-1", "accountId": "123456789012", "region": "us-east-1",
            "accessKeyId": "ASIAROOTKEY000000001", "roleName": "WebAppRole", "since": "2026-12-03T09:45:00Z",
            "walked": ["ASIAROOTKEY000000001"], "schedule": "trail-123456789012-20261203T1016Z-0a1b2c3d"
        })
    }

    #[test]
    fn a_follow_up_names_the_finding_its_key_and_role() {
        let Triage::Operate(Operation::FollowUp(f)) = parse(payload()).unwrap() else {
            panic!()
        };
        assert_eq!(
            (f.key.as_str(), f.region.as_str()),
            ("ASIAROOTKEY000000001", "us-east-1")
        );
        assert_eq!(f.asked.account_id.as_deref(), Some("123456789012"));
        assert_eq!(f.role.unwrap().as_str(), "WebAppRole");
    }

    #[test]
    fn a_bad_follow_up_is_refused_naming_the_field() {
        for (field, value) in [
            ("accountId", json!("1")),
            ("region", json!("US EAST")),
            ("accessKeyId", json!("not a key")),
            ("walked", json!(["x"])),
            ("roleName", json!("a/b")),
            ("since", json!("yesterday")),
            ("schedule", json!("a b")),
            ("dryrun", json!(true)),
        ] {
            let mut p = payload();
            p[field] = value;
            let err = parse(p).expect_err(field).to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }
}
