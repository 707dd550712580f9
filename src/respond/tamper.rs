//! Tags that decide this function's response, written by the stolen key. Role tags protect a role,
//! choose its instances' actions and record the keys a revocation answered; a key allowed
//! `iam:TagRole` on its own role can tag it `exfil-responder:protected` (or give it an action, or
//! a record naming the key) before the finding arrives, and switch the response off. So a tag the
//! trail shows a key of the incident writing or removing on the role is not honoured for the
//! incident ([`discount`]), and the report says so.
//!
//! Before the gate, for the finding's role: read only when the role carries such a tag, so that
//! no other containment waits for CloudTrail. IAM's calls are logged in the partition's IAM
//! region, in the role's account ([`cloudtrail::iam_region`]); the `TagRole` and `UntagRole`
//! records of the window are read by event name (an account tags its roles seldom, and the
//! attacker's other calls cannot bury them), and those signed with the key and naming the role
//! are kept. CloudTrail delivers a record about 5 minutes after the call: a tag written just
//! before the finding may not be seen yet, which the report says when a tag is honoured.
//! For the roles the walk reaches, the walk's own records say it (`respond::chain`).

use chrono::{DateTime, Utc};

use crate::app::App;
use crate::aws::clients::{Target, cloudtrail_in};
use crate::aws::cloudtrail::{self, Lookup};
use crate::config::{ChainMode, Config};
use crate::names::RoleName;
use crate::plan::RoleFacts;
use crate::respond::journal::Journal;
use crate::respond::lookup::{self, Window};
use crate::respond::revoke::RoleRead;
use crate::rules::PROTECTED_TAG;
use crate::trail::{self, Call};

/// Every tag of ours, and the action tag wherever `ACTION_TAG_KEY` puts it.
pub fn decides_response(tag: &str, config: &Config) -> bool {
    tag.starts_with("exfil-responder:") || tag == config.action_tag_key
}

/// A tag a key of the incident wrote or removed on a role, and the record that shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub tag: String,
    pub event_id: String,
}

/// The role's facts without the tags `written` names, and what the report says of each.
pub fn discount(mut role: RoleFacts, written: &[Written]) -> (RoleFacts, Vec<String>) {
    let mut said = Vec::new();
    for w in written {
        let held = role.tags.remove(&w.tag).is_some();
        let what = if held {
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

/// The finding's role's facts, its tags discounted where the stolen key wrote them; and what the
/// report says. The facts as read where the role carries no tag that decides the response, or
/// the trail cannot be read (`CHAIN=off` gives no permission to: said).
pub async fn checked(
    app: &App,
    target: &Target,
    sought: Sought<'_>,
    read: RoleRead,
    steps: &Journal,
) -> (RoleRead, Vec<String>) {
    let RoleRead { role, in_force } = read;
    let Some(role) = role else {
        return (RoleRead { role: None, in_force }, Vec::new());
    };
    if !role.tags.keys().any(|t| decides_response(t, &app.config)) {
        return (
            RoleRead {
                role: Some(role),
                in_force,
            },
            Vec::new(),
        );
    }
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
    let (written, mut said) = written(app, target, &sought, steps).await;
    let (role, discounted) = discount(role, &written);
    said.extend(discounted);
    (
        RoleRead {
            role: Some(role),
            in_force,
        },
        said,
    )
}

/// The tags deciding the response that `sought.key` wrote or removed on `sought.role`; and why
/// the trail was not read whole, if it was not.
async fn written(app: &App, target: &Target, sought: &Sought<'_>, steps: &Journal) -> (Vec<Written>, Vec<String>) {
    let region = cloudtrail::iam_region(sought.partition);
    let client = cloudtrail_in(&target.cloudtrail, region);
    let until = Utc::now();
    let mut written = Vec::new();
    let mut said = Vec::new();
    for name in ["TagRole", "UntagRole"] {
        let window = Window {
            account: sought.account,
            region,
            lookup: Lookup::EventName(name),
            since: sought.since,
            until,
        };
        let read = lookup::window(&client, &app.trail_pace, steps, window).await;
        if let Some((from, to, why)) = read.unread {
            said.push(format!(
                "{name} records from {from} to {to} were not read ({why}): role {}'s tags were honoured as they are",
                sought.role
            ));
        }
        for listed in read.events {
            // Anyone's tag calls are listed; only the stolen key's, checked, count.
            let Some(event) = listed
                .record
                .and_then(|r| trail::read(&r, sought.key, sought.account).ok())
            else {
                continue;
            };
            if let Call::RoleTags { role, keys } = event.call
                && role == *sought.role
            {
                written.extend(
                    keys.into_iter()
                        .filter(|t| decides_response(t, &app.config))
                        .map(|tag| Written {
                            tag,
                            event_id: event.id.clone(),
                        }),
                );
            }
        }
    }
    (written, said)
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
        assert!(
            said[0].contains("exfil-responder:protected")
                && said[0].contains("not honoured")
                && said[0].contains("e-1")
        );
        assert!(said[1].contains("removed by it"), "{said:?}");
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
        assert!(!decides_response("team", &config));
        assert!(!decides_response("ir:other", &config));
    }
}
