//! The restore decision: whether an isolated instance gets its profile back, and the steps.
//!
//! Only an instance this function isolated (its `isolated-at` mark) is restored, and only with the
//! profile its `profile` marker recorded, replacing nothing but the quarantine profile. The mark
//! is cleared last, so a restore cut short is finished by its retry, never left half-isolated.

use crate::names::{account_of_arn, profile_name_from_arn};
use crate::plan::RoleFacts;
use crate::plan::model::{Association, ISOLATED_AT_TAG, InstanceFacts, PROFILE_TAG, Profile, Step};
use crate::rules::{RoleIdentity, protection_reason};

/// The recorded profile as IAM has it.
#[derive(Clone, Copy)]
pub enum Recorded<'a> {
    /// GetInstanceProfile: no such profile.
    Missing,
    /// It holds no role.
    Empty,
    /// It holds this role (None: GetRole found no such role).
    Holds(&'a str, Option<&'a RoleFacts>),
}

pub struct RestoreFacts<'a> {
    pub instance: &'a InstanceFacts,
    /// The instance's account: the only one whose profile is taken from its marker.
    pub account: &'a str,
    /// The profile named by the instance's marker, once [`recorded_profile`] allowed the read.
    pub recorded: Recorded<'a>,
    pub quarantine_profile: Option<&'a str>,
    pub own_role: Option<&'a str>,
    pub protected_roles: &'a [String],
}

/// The steps and the result to report, or why nothing is done.
pub type RestorePlan = Result<(Vec<Step>, String), String>;

/// The profile the instance's marker records (its ARN and name), if the instance is one this
/// function isolated and the ARN names a profile of `account`: checked before IAM is asked. The
/// marker is a tag, so nothing else is taken from it.
pub fn recorded_profile<'i>(inst: &'i InstanceFacts, account: &str) -> Result<(&'i str, &'i str), String> {
    let Some(at) = inst.tags.get(ISOLATED_AT_TAG) else {
        return Err(format!(
            "{} carries no {ISOLATED_AT_TAG} mark: not isolated by exfil-responder, nothing to restore",
            inst.id
        ));
    };
    let Some(profile) = inst.tags.get(PROFILE_TAG) else {
        return Err(format!(
            "{} was isolated at {at} with no instance profile recorded ({PROFILE_TAG}): it had none to give back",
            inst.id
        ));
    };
    if !matches!(inst.state.as_str(), "running" | "stopped") {
        return Err(format!(
            "{} is {}: not restored; re-run once it is running or stopped",
            inst.id, inst.state
        ));
    }
    match profile_name_from_arn(profile) {
        Some(name) if account_of_arn(profile) == account => Ok((profile, name)),
        _ => Err(format!(
            "{}'s marker names {profile}, not an instance profile of its account: not restored",
            inst.id
        )),
    }
}

pub fn restore(facts: &RestoreFacts<'_>) -> RestorePlan {
    let inst = facts.instance;
    let (arn, _) = recorded_profile(inst, facts.account)?;
    let role = match facts.recorded {
        Recorded::Missing => return Err(format!("the recorded profile {arn} no longer exists: not restored")),
        Recorded::Empty => return Err(format!("the recorded profile {arn} holds no role: not restored")),
        Recorded::Holds(name, None) => {
            return Err(format!(
                "the recorded profile {arn} holds role {name}, which IAM does not know: not restored"
            ));
        }
        Recorded::Holds(_, Some(role)) => role,
    };
    let identity = RoleIdentity {
        name: &role.name,
        path: &role.path,
        tags: &role.tags,
    };
    if let Some(why) = protection_reason(&identity, facts.protected_roles, facts.own_role) {
        return Err(format!("{why}: its profile {arn} is not attached by this function"));
    }
    let profile = Profile::Arn(arn.to_owned());
    let attach = |mut steps: Vec<Step>| {
        steps.push(Step::Associate(profile.clone()));
        if inst.state != "stopped" {
            steps.push(Step::AwaitAssociated(profile.clone()));
        }
        steps.push(Step::Untag(vec![ISOLATED_AT_TAG]));
        steps
    };
    match inst.association.as_ref().filter(|a| a.is_current()) {
        None => Ok((attach(Vec::new()), format!("restored: re-attached {arn}"))),
        // A retry after the attach, or restored by hand: only the mark is left.
        Some(a) if a.profile_arn == arn => Ok((
            vec![Step::Untag(vec![ISOLATED_AT_TAG])],
            format!("restored: {arn} was already attached; isolation mark cleared"),
        )),
        Some(a) if is_quarantine(a, facts.quarantine_profile) => Ok((
            attach(vec![
                Step::Disassociate {
                    association_id: a.id.clone(),
                },
                Step::AwaitDisassociated,
            ]),
            format!("restored: replaced quarantine profile {} with {arn}", a.profile_arn),
        )),
        Some(a) => Err(format!(
            "{} holds profile {}, neither the recorded {arn} nor the quarantine profile: not replaced",
            inst.id, a.profile_arn
        )),
    }
}

fn is_quarantine(a: &Association, quarantine: Option<&str>) -> bool {
    quarantine.is_some_and(|q| profile_name_from_arn(&a.profile_arn) == Some(q))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::{tags, web_app_role as role};

    const RECORDED: &str = "arn:aws:iam::123456789012:instance-profile/WebAppProfile";
    const QUARANTINE: &str = "arn:aws:iam::123456789012:instance-profile/Quarantine";

    fn instance(marks: &[(&str, &str)], state: &str, attached: Option<&str>) -> InstanceFacts {
        InstanceFacts {
            id: "i-0123456789abcdef0".into(),
            region: "us-east-1".into(),
            state: state.into(),
            tags: tags(marks),
            association: attached.map(|arn| Association {
                id: "iip-assoc-q".into(),
                profile_arn: arn.into(),
                state: "associated".into(),
                since: None,
            }),
            http_tokens: None,
            hop_limit: None,
            spot: false,
        }
    }

    fn isolated() -> Vec<(&'static str, &'static str)> {
        vec![(ISOLATED_AT_TAG, "2026-11-22T10:00:00.000Z"), (PROFILE_TAG, RECORDED)]
    }

    fn decide(inst: &InstanceFacts, recorded: Recorded<'_>) -> RestorePlan {
        restore(&RestoreFacts {
            instance: inst,
            account: "123456789012",
            recorded,
            quarantine_profile: Some("Quarantine"),
            own_role: Some("exfil-responder-ResponderRole"),
            protected_roles: &[],
        })
    }

    #[test]
    fn the_recorded_profile_goes_back_and_the_mark_is_cleared_last() {
        let web = role(&[]);
        let held = Recorded::Holds("WebAppRole", Some(&web));
        let profile = Profile::Arn(RECORDED.into());
        let (steps, _) = decide(&instance(&isolated(), "running", None), held).unwrap();
        assert_eq!(
            steps,
            [
                Step::Associate(profile.clone()),
                Step::AwaitAssociated(profile.clone()),
                Step::Untag(vec![ISOLATED_AT_TAG])
            ]
        );
        let (steps, result) = decide(&instance(&isolated(), "stopped", Some(QUARANTINE)), held).unwrap();
        assert_eq!(
            steps,
            [
                Step::Disassociate {
                    association_id: "iip-assoc-q".into()
                },
                Step::AwaitDisassociated,
                Step::Associate(profile),
                Step::Untag(vec![ISOLATED_AT_TAG])
            ]
        );
        assert!(result.contains("replaced quarantine profile"), "{result}");
        let (steps, _) = decide(&instance(&isolated(), "running", Some(RECORDED)), held).unwrap();
        assert_eq!(
            steps,
            [Step::Untag(vec![ISOLATED_AT_TAG])],
            "a retry only clears the mark"
        );
    }

    #[test]
    fn anything_but_an_instance_we_isolated_with_a_live_unprotected_profile_is_refused() {
        let web = role(&[]);
        let protected = role(&[("exfil-responder:protected", "true")]);
        let held = Recorded::Holds("WebAppRole", Some(&web));
        let other = "arn:aws:iam::123456789012:instance-profile/Other";
        let cases: [(InstanceFacts, Recorded<'_>, &str); 9] = [
            (
                instance(&[(PROFILE_TAG, RECORDED)], "running", None),
                held,
                "not isolated by exfil-responder",
            ),
            (
                instance(&[(ISOLATED_AT_TAG, "2026-11-22T10:00:00.000Z")], "running", None),
                held,
                "no instance profile recorded",
            ),
            (instance(&isolated(), "pending", None), held, "re-run once"),
            (
                instance(&isolated(), "running", None),
                Recorded::Missing,
                "no longer exists",
            ),
            (instance(&isolated(), "running", None), Recorded::Empty, "holds no role"),
            (
                instance(&isolated(), "running", None),
                Recorded::Holds("Gone", None),
                "does not know",
            ),
            (
                instance(&isolated(), "running", None),
                Recorded::Holds("WebAppRole", Some(&protected)),
                "protected",
            ),
            (instance(&isolated(), "running", Some(other)), held, "not replaced"),
            (
                instance(
                    &[
                        (ISOLATED_AT_TAG, "t"),
                        (PROFILE_TAG, "arn:aws:iam::999999999999:instance-profile/Admin"),
                    ],
                    "running",
                    None,
                ),
                held,
                "not an instance profile of its account",
            ),
        ];
        for (inst, recorded, why) in cases {
            let refused = decide(&inst, recorded).unwrap_err();
            assert!(refused.contains(why), "{refused:?} does not say {why:?}");
        }
    }
}
