//! Which stolen keys a revocation answered: a tag on the role, beside the cut-off it qualifies.
//!
//! GuardDuty folds repeated activity into one finding id. If an instance's fresh credentials are
//! stolen again after the revocation, the redelivery's first sighting is still covered by the
//! cut-off, and the cut-off alone cannot tell the dead key from the new one. This record can: a
//! key named here was issued before the recorded cut-off, so any cut-off at or after that one
//! denies it. A key used after the cut-off that is not named here may be live: revoke again.
//!
//! It is a tag because it must last as long as the cut-off does and go with the role (a role
//! re-created under the same name starts with neither), and because `GetRole`, which every run
//! makes, returns it: no extra read before containment. The claim table is no place for it: it is
//! optional, and its items expire. A record that is missing, unreadable or trimmed costs at most
//! one revocation too many, never one too few.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::names::is_access_key_id;
use crate::rules::Tags;

pub const TAG: &str = "exfil-responder:revoked-keys";
/// IAM's limit on a tag value's length.
const MAX_VALUE: usize = 256;

/// `<cut-off> <key> <key> …`: every key named was issued before the cut-off, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedKeys {
    pub cutoff: DateTime<Utc>,
    pub keys: Vec<String>,
}

impl RevokedKeys {
    /// The role's record, if its tag holds one; anything else is no record.
    pub fn of(tags: &Tags) -> Option<Self> {
        let mut words = tags.get(TAG)?.split(' ');
        let cutoff = DateTime::parse_from_rfc3339(words.next()?).ok()?.with_timezone(&Utc);
        let keys: Vec<String> = words.map(str::to_owned).collect();
        keys.iter()
            .all(|k| is_access_key_id(k))
            .then_some(Self { cutoff, keys })
    }

    /// Whether this record says `key` is denied by a cut-off at `in_force`.
    pub fn answers(&self, key: &str, in_force: DateTime<Utc>) -> bool {
        self.cutoff <= in_force && self.keys.iter().any(|k| k == key)
    }

    /// The record once `key` is known to be denied by the cut-off `in_force`, or None if the
    /// current one already says so. The keys held carry over when their cut-off is not after
    /// `in_force` (they are denied by it too); the oldest are dropped to fit IAM's limit.
    pub fn with(held: Option<&Self>, in_force: DateTime<Utc>, key: &str) -> Option<Self> {
        if !is_access_key_id(key) || held.is_some_and(|h| h.answers(key, in_force)) {
            return None;
        }
        let mut keys: Vec<String> = held
            .filter(|h| h.cutoff <= in_force)
            .map(|h| h.keys.iter().filter(|k| *k != key).cloned().collect())
            .unwrap_or_default();
        keys.push(key.to_owned());
        let mut next = Self { cutoff: in_force, keys };
        while next.value().len() > MAX_VALUE && next.keys.len() > 1 {
            next.keys.remove(0);
        }
        Some(next)
    }

    /// The tag's value.
    pub fn value(&self) -> String {
        let mut value = self.cutoff.to_rfc3339_opts(SecondsFormat::Millis, true);
        for key in &self.keys {
            value.push(' ');
            value.push_str(key);
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::{at, tags};

    const OLD: &str = "ASIAOLDSTOLENKEY0001";
    const NEW: &str = "ASIANEWSTOLENKEY0002";

    fn record(cutoff: &str, keys: &[&str]) -> RevokedKeys {
        RevokedKeys {
            cutoff: at(cutoff),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        }
    }

    #[test]
    fn the_tag_round_trips_and_anything_else_is_no_record() {
        let held = record("2026-11-22T10:00:07Z", &[OLD, NEW]);
        assert_eq!(held.value(), format!("2026-11-22T10:00:07.000Z {OLD} {NEW}"));
        assert_eq!(RevokedKeys::of(&tags(&[(TAG, &held.value())])), Some(held));
        for junk in ["", "yesterday ASIAOLDSTOLENKEY0001", "2026-11-22T10:00:07.000Z bad!key"] {
            assert_eq!(RevokedKeys::of(&tags(&[(TAG, junk)])), None, "{junk:?}");
        }
        assert_eq!(RevokedKeys::of(&tags(&[("other", "x")])), None);
    }

    #[test]
    fn a_key_is_answered_only_under_a_cutoff_at_or_after_its_own() {
        let held = record("2026-11-22T10:00:07Z", &[OLD]);
        assert!(held.answers(OLD, at("2026-11-22T10:00:07Z")));
        assert!(held.answers(OLD, at("2026-11-22T12:00:00Z")));
        // An earlier cut-off in force (someone replaced ours) may not deny it.
        assert!(!held.answers(OLD, at("2026-11-22T10:00:06.999Z")));
        assert!(!held.answers(NEW, at("2026-11-22T12:00:00Z")));
    }

    #[test]
    fn adding_a_key_carries_the_older_ones_forward_under_the_later_cutoff() {
        let held = record("2026-11-22T10:00:07Z", &[OLD]);
        let later = at("2026-11-22T12:00:00Z");
        assert_eq!(
            RevokedKeys::with(Some(&held), later, NEW),
            Some(record("2026-11-22T12:00:00Z", &[OLD, NEW]))
        );
        assert_eq!(RevokedKeys::with(Some(&held), later, OLD), None, "already answered");
        // Held under a later cut-off than the one in force: those keys are not known dead.
        let earlier = at("2026-11-22T09:00:00Z");
        assert_eq!(
            RevokedKeys::with(Some(&held), earlier, OLD),
            Some(record("2026-11-22T09:00:00Z", &[OLD]))
        );
        assert_eq!(RevokedKeys::with(None, later, "not a key"), None);
    }

    #[test]
    fn the_oldest_keys_are_dropped_to_fit_the_tag() {
        let many: Vec<String> = (0..20).map(|i| format!("ASIAKEY{i:013}")).collect();
        let held = RevokedKeys {
            cutoff: at("2026-11-22T10:00:07Z"),
            keys: many[..19].to_vec(),
        };
        let next = RevokedKeys::with(Some(&held), at("2026-11-22T10:00:07Z"), &many[19]).unwrap();
        assert!(next.value().len() <= MAX_VALUE, "{}", next.value().len());
        assert_eq!(next.keys.last(), Some(&many[19]));
        assert_eq!(next.keys.len(), 11, "24 + 11 × 21 characters fit in 256");
        assert_eq!(next.keys[0], many[9]);
    }
}
