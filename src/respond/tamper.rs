//! Tags that decide this function's response, written by the stolen key. Role tags protect a role,
//! choose its instances' actions and record the keys a revocation answered; a key allowed
//! `iam:TagRole` on its own role can tag it `exfil-responder:protected` (or give it an action, or
//! a record naming the key) before the finding arrives, and switch the response off. So a tag the
//! trail shows a key of the incident writing or removing on the role is not honoured for the
//! incident ([`discount`]), and the report says so.
//!
//! Before the gate, for the finding's role: read only when the role carries a tag that could
//! switch the response off ([`checked`]), so that no other containment waits for CloudTrail, and
//! at most [`PAGES`] pages of each call. IAM's calls are logged in the partition's IAM
//! region, in the role's account ([`cloudtrail::iam_region`]); the `TagRole` and `UntagRole`
//! records of the window are read by event name (an account tags its roles seldom, and the
//! attacker's other calls cannot bury them), and those signed with the key and naming the role
//! are kept. CloudTrail delivers a record about 5 minutes after the call: a tag written just
//! before the finding may not be seen yet, which the report says when a protection is honoured.
//! For the roles the walk reaches, the records of the keys walked before them say it
//! (`respond::chain`).

use chrono::{DateTime, Utc};

use crate::app::App;
use crate::aws::clients::{Target, cloudtrail_in};
use crate::aws::cloudtrail::{self, Lookup, Span};
use crate::config::{ChainMode, Config};
use crate::names::RoleName;
use crate::plan::RoleFacts;
use crate::policy::{Existing, InForce};
use crate::respond::journal::Journal;
use crate::respond::lookup::{self, Window};
use crate::respond::revoke::RoleRead;
use crate::revoked_keys::RevokedKeys;
use crate::rules::PROTECTED_TAG;
use crate::trail::{self, Call};

/// Every tag of ours, and the action tag wherever `ACTION_TAG_KEY` puts it. IAM does not tell tag
/// keys apart by case, so neither does this.
pub fn decides_response(tag: &str, config: &Config) -> bool {
    let tag = tag.to_ascii_lowercase();
    tag.starts_with("exfil-responder:") || tag == config.action_tag_key.to_ascii_lowercase()
}

/// A tag a key of the incident wrote or removed on a role, and the record that shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub tag: String,
    pub event_id: String,
}

/// The role's facts without the tags `written` names (whatever their case), and what the report
/// says of each.
pub fn discount(mut role: RoleFacts, written: &[Written]) -> (RoleFacts, Vec<String>) {
    let mut said = Vec::new();
    for w in written {
        let before = role.tags.len();
        role.tags.retain(|k, _| !k.eq_ignore_ascii_case(&w.tag));
        let what = if role.tags.len() < before {
            "is not honoured for this incident"
        } else {
            "was removed by it: its absence is not the business's choice"
        };
        said.push(format!(
            "role {}'s tag {} was written or removed by a key of this incident (CloudTrail event {}): it {what}",
            role.name, w.tag, w.event_id
        ));
    }
    (role, said)
}

/// Where the finding's role is, and the key and window to look for.
pub struct Sought<'a> {
    pub account: &'a str,
    pub partition: &'a str,
    pub key: &'a str,
    pub role: &'a RoleName,
    pub since: DateTime<Utc>,
}

/// Pages of `TagRole` (and of `UntagRole`) read before the write: 200 records each, a second at
/// CloudTrail's rate. An account tags its roles seldom; an attacker who floods more to hide one
/// finds its tags not honoured ([`checked`]).
pub const PAGES: usize = 4;

/// The finding's role's facts, its tags discounted where the stolen key wrote them; and what the
/// report says. Read only where a tag could switch the response off: the role is tagged protected
/// or with an action, or its record of revoked keys answers the finding's key (and would keep a
/// cut-off the key outlived). Otherwise, or where the trail may not be read (`CHAIN=off` gives no
/// permission to: said), the facts as read.
pub async fn checked(
    app: &App,
    target: &Target,
    sought: Sought<'_>,
    read: RoleRead,
    steps: &Journal,
) -> (RoleRead, Vec<String>) {
    let RoleRead { role, in_force } = read;
    let role = match role {
        Some(r) if switches_off(&r, &in_force, sought.key, &app.config) => r,
        other => return (RoleRead { role: other, in_force }, Vec::new()),
    };
    if app.config.chain.mode == ChainMode::Off {
        // Said where it switches the response off; an action tag unchecked is the deployment's choice.
        let said = (role.tags.contains_key(PROTECTED_TAG)).then(|| {
            format!(
                "role {}'s tag {PROTECTED_TAG} was honoured unchecked: with CHAIN=off the function may not read CloudTrail for who wrote it",
                role.name
            )
        });
        return (
            RoleRead {
                role: Some(role),
                in_force,
            },
            said.into_iter().collect(),
        );
    }
    let found = found(app, target, &sought, steps).await;
    let mut said = found.unread.clone();
    let written = if found.tagged && !found.unread.is_empty() {
        // The key tagged the role and not every tag call was read: none of its tags that decide
        // the response is taken as the business's.
        said.push(format!(
            "a key of this incident tagged role {} and not all its tag calls were read: its tags that decide the response are not honoured",
            sought.role
        ));
        (role.tags.keys().filter(|t| decides_response(t, &app.config)))
            .map(|tag| Written {
                tag: tag.clone(),
                event_id: "(not all read)".into(),
            })
            .collect()
    } else {
        found.written
    };
    let (role, discounted) = discount(role, &written);
    said.extend(discounted);
    if role.tags.contains_key(PROTECTED_TAG) {
        said.push(format!(
            "role {}'s tag {PROTECTED_TAG} was honoured: CloudTrail shows no key of this incident writing it, \
             though it delivers a call's record about 5 minutes after it",
            role.name
        ));
    }
    (
        RoleRead {
            role: Some(role),
            in_force,
        },
        said,
    )
}

/// Whether the role carries a tag that could switch the response off for `key`.
fn switches_off(role: &RoleFacts, in_force: &InForce, key: &str, config: &Config) -> bool {
    let tagged = |wanted: &str| role.tags.keys().any(|t| t.eq_ignore_ascii_case(wanted));
    let record_answers = match in_force.existing() {
        Some(Existing::Cutoff(cutoff)) => RevokedKeys::of(&role.tags).is_some_and(|r| r.answers(key, cutoff)),
        _ => false,
    };
    tagged(PROTECTED_TAG) || tagged(&config.action_tag_key) || record_answers
}

/// What the trail shows of the key and the role's tags.
struct Found {
    /// The tags deciding the response it wrote or removed.
    written: Vec<Written>,
    /// It tagged or untagged the role at all.
    tagged: bool,
    /// What was not read, and why.
    unread: Vec<String>,
}

/// The `TagRole` and `UntagRole` records of the window, [`PAGES`] of each at most: those signed
/// with `sought.key` on `sought.role` (IAM does not tell role names apart by case).
async fn found(app: &App, target: &Target, sought: &Sought<'_>, steps: &Journal) -> Found {
    let region = cloudtrail::iam_region(sought.partition);
    let client = cloudtrail_in(&target.cloudtrail, region);
    let until = Utc::now();
    let mut found = Found {
        written: Vec::new(),
        tagged: false,
        unread: Vec::new(),
    };
    for name in ["TagRole", "UntagRole"] {
        let span = Span {
            account: sought.account,
            region,
            lookup: Lookup::EventName(name),
            since: sought.since,
            until,
        };
        let window = Window {
            span,
            pages: Some(PAGES),
        };
        let read = lookup::window(&client, &app.trail_pace, steps, window).await;
        if let Some(left) = read.unread {
            let (from, to, why) = (left.from, left.to, left.why);
            found
                .unread
                .push(format!("{name} records from {from} to {to} were not read ({why})"));
        }
        for listed in read.events {
            // Anyone's tag calls are listed; only the stolen key's, checked, count.
            let Some(event) = (listed.record).and_then(|r| trail::read(&r, sought.key, sought.account).ok()) else {
                continue;
            };
            if let Call::RoleTags { role, keys } = event.call
                && role.as_str().eq_ignore_ascii_case(sought.role.as_str())
            {
                found.tagged = true;
                let ours = keys.into_iter().filter(|t| decides_response(t, &app.config));
                found.written.extend(ours.map(|tag| Written {
                    tag,
                    event_id: event.id.clone(),
                }));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::web_app_role;

    #[test]
    fn a_tag_the_key_wrote_is_not_honoured_and_the_report_says_so() {
        let role = web_app_role(&[(PROTECTED_TAG, "true"), ("team", "web")]);
        let written = [
            Written {
                tag: PROTECTED_TAG.into(),
                event_id: "e-1".into(),
            },
            Written {
                tag: "exfil-responder:action".into(),
                event_id: "e-2".into(),
            },
        ];
        let (role, said) = discount(role, &written);
        assert_eq!(role.tags.keys().collect::<Vec<_>>(), ["team"]);
        // IAM does not tell tag keys apart by case.
        let shouted = web_app_role(&[("EXFIL-RESPONDER:PROTECTED", "true")]);
        assert!(discount(shouted, &written[..1]).0.tags.is_empty());
        assert!(
            said[0].contains("exfil-responder:protected")
                && said[0].contains("not honoured")
                && said[0].contains("e-1")
        );
        assert!(said[1].contains("removed by it"), "{said:?}");
    }

    /// Only a tag that could switch the response off is worth a read before the write.
    #[test]
    fn a_read_is_made_only_for_a_tag_that_could_switch_the_response_off() {
        use crate::plan::testing::at;
        let config = Config::default();
        let key = "ASIAROOTKEY000000001";
        let cutoff = at("2026-12-03T10:00:00Z");
        let in_force = InForce {
            inline: Some(Existing::Cutoff(cutoff)),
            managed: None,
        };
        let off = |tags: &[(&str, &str)], in_force: &InForce| switches_off(&web_app_role(tags), in_force, key, &config);
        assert!(off(&[(PROTECTED_TAG, "true")], &InForce::default()));
        assert!(off(&[("Exfil-Responder:Action", "ignore")], &InForce::default()));
        assert!(!off(
            &[("exfil-responder:harden", "imdsv2"), ("team", "web")],
            &in_force
        ));
        let record = format!("2026-12-03T10:00:00.000Z {key}");
        assert!(
            off(&[(crate::revoked_keys::TAG, &record)], &in_force),
            "the record answers the key"
        );
        let other = "2026-12-03T10:00:00.000Z ASIAOTHERKEY00000001";
        assert!(
            !off(&[(crate::revoked_keys::TAG, other)], &in_force),
            "it answers another key"
        );
    }

    #[test]
    fn only_our_tags_and_the_action_tag_decide_the_response() {
        let config = Config {
            action_tag_key: "ir:action".into(),
            ..Config::default()
        };
        assert!(decides_response("exfil-responder:protected", &config));
        assert!(decides_response("exfil-responder:revoked-keys", &config));
        assert!(decides_response("ir:action", &config));
        assert!(decides_response("IR:Action", &config));
        assert!(!decides_response("team", &config));
        assert!(!decides_response("ir:other", &config));
    }
}
