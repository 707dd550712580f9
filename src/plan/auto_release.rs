//! When a revocation is released on its own (`AUTO_RELEASE=true`): a one-time EventBridge
//! Scheduler schedule that delivers a release payload to this function once every token issued
//! before the cut-off has expired (the cut-off plus `REVOKE_HOLD_HOURS`).
//!
//! The schedule is named for the account, the role and the minute it fires, so the same
//! revocation always asks for the same schedule: a retry, a second finding answered by the same
//! cut-off, or a release put off to the same time finds it there (`ConflictException`) rather
//! than adding another. A later cut-off asks for a later one. A delivery that comes too early (the
//! role was revoked again since) is refused by the release's own rule and puts itself off to
//! the new safe time, so no order of schedules releases a role early or forgets it.

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::names::RoleName;

/// Who a scheduled release says asked for it.
pub const REQUESTED_BY: &str = "exfil-responder AUTO_RELEASE (EventBridge Scheduler)";

/// EventBridge Scheduler's rule for schedule names.
pub fn is_schedule_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// `t` rounded up to a whole minute: the schedules fire at one, and are named by it, and none may
/// fire before the time it is for.
pub fn ceil_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let minute = Duration::minutes(1);
    let floor = t.duration_trunc(minute).unwrap_or(t);
    if floor == t { t } else { floor + minute }
}

/// The schedule that releases `role` in `account` once `safe_at` has passed.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseSchedule {
    pub name: String,
    /// When it fires: a whole minute, after `safe_at` and after now.
    pub at: DateTime<Utc>,
    /// Scheduler's one-time expression for `at`, read in UTC.
    pub expression: String,
    /// What the schedule delivers: a release payload that names the schedule.
    pub payload: Value,
    pub description: String,
}

pub fn schedule(account: &str, role: &RoleName, safe_at: DateTime<Utc>, now: DateTime<Utc>) -> ReleaseSchedule {
    // A whole minute, one past the later of the two: a schedule fires at its second, and the
    // release it delivers must find the hold already over (and an `at()` in the past never fires).
    let at = ceil_minute(safe_at.max(now)) + Duration::minutes(1);
    let name = name(account, role, at);
    let payload = json!({
        "operation": "release",
        "roleName": role.as_str(),
        "accountId": account,
        "schedule": name,
        "requestedBy": REQUESTED_BY,
        "reason": format!(
            "automatic release: every token issued before the revocation's cut-off has expired (safe from {})",
            safe_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ),
    });
    ReleaseSchedule {
        description: format!("exfil-responder: release role {role} in account {account} (AUTO_RELEASE)"),
        expression: format!("at({})", at.format("%Y-%m-%dT%H:%M:%S")),
        name,
        at,
        payload,
    }
}

/// `release-<account>-<minute>-<role, as far as it fits>-<hash of the role name>`: at most 64
/// characters of Scheduler's `[0-9A-Za-z-_.]`. Role names may hold `+=,@`, which schedule names
/// may not, and be 64 characters long: the hash keeps two such roles apart.
fn name(account: &str, role: &RoleName, at: DateTime<Utc>) -> String {
    let digest = Sha256::digest(role.as_str().as_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let readable: String = role
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(19)
        .collect();
    format!("release-{account}-{}-{readable}-{hash}", at.format("%Y%m%dT%H%MZ"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::at;

    fn role(name: &str) -> RoleName {
        RoleName::parse(name).unwrap()
    }

    #[test]
    fn it_fires_on_a_whole_minute_after_the_hold_and_never_in_the_past() {
        let now = at("2026-11-22T10:00:00Z");
        let s = schedule("123456789012", &role("WebAppRole"), at("2026-11-22T22:00:00.250Z"), now);
        assert_eq!(s.at, at("2026-11-22T22:02:00Z"));
        assert_eq!(s.expression, "at(2026-11-22T22:02:00)");
        let exact = schedule("123456789012", &role("WebAppRole"), at("2026-11-22T22:00:00Z"), now);
        assert_eq!(exact.at, at("2026-11-22T22:01:00Z"));
        // A hold already over (a revocation kept from long ago): soon, not at a time gone by.
        let past = schedule("123456789012", &role("WebAppRole"), at("2026-11-20T08:00:00Z"), now);
        assert_eq!(past.at, at("2026-11-22T10:01:00Z"));
    }

    #[test]
    fn the_same_revocation_asks_for_the_same_schedule_and_others_for_their_own() {
        let now = at("2026-11-22T10:00:00Z");
        let safe = at("2026-11-22T22:00:00.250Z");
        let one = schedule("123456789012", &role("WebAppRole"), safe, now);
        // A retry a minute later, for the same cut-off: the same name.
        let again = schedule("123456789012", &role("WebAppRole"), safe, at("2026-11-22T10:01:00Z"));
        assert_eq!(one.name, again.name);
        let (readable, hash) = one.name.rsplit_once('-').unwrap();
        assert_eq!(readable, "release-123456789012-20261122T2202Z-WebAppRole");
        assert_eq!(hash.len(), 8);
        for other in [
            schedule("210987654321", &role("WebAppRole"), safe, now),
            schedule("123456789012", &role("webapprole"), safe, now),
            schedule("123456789012", &role("WebAppRole"), safe + Duration::hours(1), now),
        ] {
            assert_ne!(other.name, one.name);
        }
    }

    #[test]
    fn every_role_name_makes_a_valid_schedule_name_and_similar_ones_stay_apart() {
        let now = at("2026-11-22T10:00:00Z");
        let long = "R".repeat(64);
        let (a, b) = ("Web+App=Role,@x", "Web-App-Role--x");
        let names: Vec<String> = [long.as_str(), a, b, "r"]
            .iter()
            .map(|r| schedule("123456789012", &role(r), now, now).name)
            .collect();
        for n in &names {
            assert!(is_schedule_name(n), "{n} ({} characters)", n.len());
        }
        assert_ne!(names[1], names[2], "{a} and {b} read alike but are two roles");
    }

    #[test]
    fn it_delivers_a_release_that_names_its_schedule() {
        let s = schedule(
            "123456789012",
            &role("WebAppRole"),
            at("2026-11-22T22:00:00Z"),
            at("2026-11-22T10:00:00Z"),
        );
        assert_eq!(s.payload["operation"], "release");
        assert_eq!(s.payload["roleName"], "WebAppRole");
        assert_eq!(s.payload["accountId"], "123456789012");
        assert_eq!(s.payload["schedule"], s.name.as_str());
        assert!(s.payload.get("force").is_none(), "a scheduled release is never forced");
    }
}
