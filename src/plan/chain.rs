//! The walk of a stolen key's trail (`CHAIN`), decided: from when the trail is read, whether a
//! key found in it is followed, what becomes of a key the attacker created, and the follow-up
//! walks that read it again as CloudTrail delivers more.
//!
//! A follow-up is named for the account, the minute it fires and the finding and key, and that
//! minute is counted from the containment's cut-off, not from now: a retried containment (which
//! keeps the cut-off) asks for the very same schedules, and Scheduler answers that they exist.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::aws::access_keys::KeyState;
use crate::plan::RoleFacts;
use crate::plan::auto_release::ceil_minute;
use crate::policy::Existing;
use crate::revoked_keys::RevokedKeys;

/// Who a follow-up says asked for it.
pub const REQUESTED_BY: &str = "exfil-responder CHAIN follow-up (EventBridge Scheduler)";

/// How long before the finding's first sighting the trail is read from: GuardDuty's first
/// sighting is of the activity it judged, and the attacker may have used the key a little before.
pub const LOOKBACK: Duration = Duration::minutes(15);
/// CloudTrail's event history holds 90 days.
const HISTORY: Duration = Duration::days(90);

/// The start of the window the trail is read in.
pub fn since(first_seen: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    in_history(first_seen.unwrap_or(now) - LOOKBACK, now)
}

/// `since`, or the oldest moment CloudTrail's event history still holds.
pub fn in_history(since: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    since.max(now - HISTORY + Duration::minutes(1))
}

/// How long after a revocation its key's calls are still read: IAM's changes "can take a few
/// minutes to propagate" (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_revoke-sessions.html),
/// and until then a call with the key may still succeed.
pub const SETTLE: Duration = Duration::minutes(5);

/// The end of the window a key's calls are read in: `SETTLE` after the cut-off that denies the
/// key, or now if nothing does (yet). Past it the key's calls are denied, and an attacker's
/// script that goes on calling only adds records of refusals: the window stays the same size
/// for every later walk, however long the script runs.
pub fn until(cutoff: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    cutoff.map_or(now, |c| (c + SETTLE).min(now))
}

/// Whether a follow-up may walk `key`'s trail from `since` on the role it names: only for a key
/// a containment of that role revoked. Anyone allowed to invoke the function can send a
/// follow-up, and a walk revokes every role its key assumed and deactivates every key it made, so
/// the key must be in the role's record of revoked keys ([`RevokedKeys`]) under the cut-off in
/// force, and the window must start before that cut-off (a key revoked then made its calls
/// before it). Ok: the cut-off in force, where the window ends ([`until`]); Err: why not.
///
/// An earlier start reads nothing more: the record names sessions, which live 12 hours at most.
pub fn standing(
    key: &str,
    since: DateTime<Utc>,
    role: Option<&RoleFacts>,
    in_force: Option<&Existing>,
) -> Result<DateTime<Utc>, String> {
    let role = role.ok_or("the role does not exist")?;
    let Some(Existing::Cutoff(cutoff)) = in_force else {
        return Err(format!(
            "role {} holds no revocation of ours or the console's",
            role.name
        ));
    };
    if !RevokedKeys::of(&role.tags).is_some_and(|r| r.answers(key, *cutoff)) {
        return Err(format!(
            "key {key} is not in role {}'s record of revoked keys (tag {}) under the cut-off in force: \
             no containment of this role revoked it",
            role.name,
            crate::revoked_keys::TAG
        ));
    }
    if since >= *cutoff {
        return Err(format!(
            "the window starts at {since}, after the cut-off {cutoff} that revoked key {key}: not that incident's"
        ));
    }
    Ok(*cutoff)
}

/// Whether a key found in the trail is walked in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Walk,
    /// Already in the chain (a cycle, or the same session found twice).
    Seen,
    /// Found at `CHAIN_DEPTH`: acted on, its own trail not read.
    TooDeep,
}

/// `depth`: hops from the stolen key of the node that made the key (the stolen key is 0).
pub fn follow(key: &str, depth: usize, max_depth: usize, seen: &[String]) -> Follow {
    if seen.iter().any(|k| k == key) {
        Follow::Seen
    } else if depth + 1 >= max_depth {
        Follow::TooDeep
    } else {
        Follow::Walk
    }
}

/// What to do with a key the attacker created, as IAM has it now.
pub fn deactivate(state: KeyState) -> bool {
    state == KeyState::Active
}

/// One follow-up walk to ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUpWalk {
    pub name: String,
    pub at: DateTime<Utc>,
    /// Scheduler's one-time expression for `at`, read in UTC.
    pub expression: String,
    pub payload: Value,
    pub description: String,
}

/// What a follow-up names: the finding, its account and region, the stolen key and its role,
/// the window's start and the keys walked so far.
pub struct Walked<'a> {
    pub finding_id: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub key: &'a str,
    pub role: Option<&'a str>,
    pub since: DateTime<Utc>,
    pub keys: &'a [String],
}

/// The follow-ups at each of `minutes` after `cutoff` (whole minutes, none in the past).
pub fn follow_ups(
    walked: &Walked<'_>,
    cutoff: DateTime<Utc>,
    minutes: &[u32],
    now: DateTime<Utc>,
) -> Vec<FollowUpWalk> {
    let digest = Sha256::digest(format!("{}\n{}", walked.finding_id, walked.key).as_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    minutes
        .iter()
        .map(|m| {
            let at =
                ceil_minute(cutoff + Duration::minutes(i64::from(*m))).max(ceil_minute(now) + Duration::minutes(1));
            let name = format!("trail-{}-{}-{hash}", walked.account, at.format("%Y%m%dT%H%MZ"));
            let payload = json!({
                "operation": "follow-up",
                "findingId": walked.finding_id,
                "accountId": walked.account,
                "region": walked.region,
                "accessKeyId": walked.key,
                "roleName": walked.role,
                "since": walked.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "walked": walked.keys,
                "schedule": name,
                "requestedBy": REQUESTED_BY,
            });
            FollowUpWalk {
                description: format!(
                    "exfil-responder: walk key {}'s trail again, {m} minutes after finding {}'s containment",
                    walked.key, walked.finding_id
                ),
                expression: format!("at({})", at.format("%Y-%m-%dT%H:%M:%S")),
                name,
                at,
                payload,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::auto_release::is_schedule_name;
    use crate::plan::testing::at;

    fn walked(keys: &[String]) -> Walked<'_> {
        Walked {
            finding_id: "f-1",
            account: "123456789012",
            region: "us-east-1",
            key: "ASIAROOT",
            role: Some("WebAppRole"),
            since: at("2026-12-03T09:45:00Z"),
            keys,
        }
    }

    #[test]
    fn a_follow_up_stands_only_for_a_key_the_roles_record_holds_within_its_window() {
        let cutoff = at("2026-12-03T10:00:00.500Z");
        let held = |keys: &str| crate::plan::testing::web_app_role(&[(crate::revoked_keys::TAG, keys)]);
        let role = held("2026-12-03T10:00:00.500Z ASIAROOTKEY000000001");
        let in_force = Existing::Cutoff(cutoff);
        let since = at("2026-12-03T09:45:00Z");
        let key = "ASIAROOTKEY000000001";
        assert_eq!(standing(key, since, Some(&role), Some(&in_force)), Ok(cutoff));
        let refused =
            |key, since, role: Option<&RoleFacts>, in_force| standing(key, since, role, in_force).unwrap_err();
        assert!(refused("ASIAOTHERKEY00000001", since, Some(&role), Some(&in_force)).contains("not in role"));
        assert!(refused(key, at("2026-12-03T10:01:00Z"), Some(&role), Some(&in_force)).contains("after the cut-off"));
        assert!(refused(key, since, None, Some(&in_force)).contains("does not exist"));
        assert!(refused(key, since, Some(&role), None).contains("no revocation"));
        let unknown = Existing::Unrecognised("x".into());
        assert!(refused(key, since, Some(&role), Some(&unknown)).contains("no revocation"));
        // A cut-off in force earlier than the record's may not deny the key.
        let earlier = Existing::Cutoff(at("2026-12-03T09:59:00Z"));
        assert!(refused(key, since, Some(&role), Some(&earlier)).contains("not in role"));
        assert!(refused(key, since, Some(&held("junk")), Some(&in_force)).contains("not in role"));
    }

    #[test]
    fn a_keys_window_ends_once_its_revocation_has_settled() {
        let cutoff = at("2026-12-03T10:00:00.500Z");
        assert_eq!(
            until(Some(cutoff), at("2026-12-03T10:00:02Z")),
            at("2026-12-03T10:00:02Z")
        );
        assert_eq!(
            until(Some(cutoff), at("2026-12-03T11:00:00Z")),
            at("2026-12-03T10:05:00.500Z")
        );
        assert_eq!(until(None, at("2026-12-03T11:00:00Z")), at("2026-12-03T11:00:00Z"));
    }

    #[test]
    fn follow_ups_fire_after_the_cutoff_and_a_retry_asks_for_the_same_ones() {
        let keys = vec!["ASIAROOT".to_owned()];
        let cutoff = at("2026-12-03T10:00:00.500Z");
        let first = follow_ups(&walked(&keys), cutoff, &[15, 60], at("2026-12-03T10:00:01Z"));
        assert_eq!(
            first.iter().map(|f| f.at).collect::<Vec<_>>(),
            [at("2026-12-03T10:16:00Z"), at("2026-12-03T11:01:00Z")]
        );
        assert!(first.iter().all(|f| is_schedule_name(&f.name)), "{first:?}");
        assert_eq!(first[0].expression, "at(2026-12-03T10:16:00)");
        assert_eq!(first[0].payload["operation"], "follow-up");
        assert_eq!(first[0].payload["schedule"], first[0].name.as_str());
        assert_eq!(first[0].payload["walked"], json!(["ASIAROOT"]));
        let retried = follow_ups(&walked(&keys), cutoff, &[15, 60], at("2026-12-03T10:03:00Z"));
        assert_eq!(
            first.iter().map(|f| &f.name).collect::<Vec<_>>(),
            retried.iter().map(|f| &f.name).collect::<Vec<_>>()
        );
        // Long after (a kept cut-off of yesterday): soon, never in the past.
        let late = follow_ups(&walked(&keys), cutoff, &[15], at("2026-12-04T10:00:00Z"));
        assert_eq!(late[0].at, at("2026-12-04T10:01:00Z"));
    }

    #[test]
    fn a_key_is_walked_once_and_no_deeper_than_the_depth() {
        let seen = vec!["ASIAA".to_owned()];
        assert_eq!(follow("ASIAA", 0, 3, &seen), Follow::Seen);
        assert_eq!(follow("ASIAB", 0, 3, &seen), Follow::Walk);
        assert_eq!(follow("ASIAB", 1, 3, &seen), Follow::Walk);
        assert_eq!(follow("ASIAB", 2, 3, &seen), Follow::TooDeep);
        assert_eq!(follow("ASIAB", 0, 1, &seen), Follow::TooDeep);
    }

    #[test]
    fn the_window_opens_before_the_first_sighting_within_the_history() {
        let now = at("2026-12-03T10:00:00Z");
        assert_eq!(since(Some(at("2026-12-03T09:00:00Z")), now), at("2026-12-03T08:45:00Z"));
        assert_eq!(since(None, now), at("2026-12-03T09:45:00Z"));
        assert!(since(Some(at("2026-01-01T00:00:00Z")), now) > now - Duration::days(90));
        assert!(deactivate(KeyState::Active) && !deactivate(KeyState::Inactive) && !deactivate(KeyState::Gone));
    }
}
