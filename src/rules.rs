//! The business rules that instance and role tags express: which action applies to an instance,
//! and which roles must never be touched.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Tag on a role that forbids any change to it (`true`, any case).
pub const PROTECTED_TAG: &str = "exfil-responder:protected";
/// IAM puts every service-linked role under this path; they cannot carry inline policies anyway.
pub const SERVICE_LINKED_PATH: &str = "/aws-service-role/";

pub type Tags = BTreeMap<String, String>;

/// What happens to an instance whose role's sessions are revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Revoke only: the instance fails until its credentials rotate.
    Revoke,
    /// Revoke, then re-attach the same profile so the instance gets fresh credentials now.
    Cycle,
    /// As `Cycle`, then reboot, for applications that cache credentials.
    CycleReboot,
    /// Revoke, then detach the profile (or swap in the quarantine profile). Named instance only.
    Isolate,
    /// Leave the instance alone and report it. The role is still revoked.
    Ignore,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Revoke,
        Action::Cycle,
        Action::CycleReboot,
        Action::Isolate,
        Action::Ignore,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Revoke => "revoke",
            Action::Cycle => "cycle",
            Action::CycleReboot => "cycle-reboot",
            Action::Isolate => "isolate",
            Action::Ignore => "ignore",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let wanted = value.trim().to_ascii_lowercase();
        Action::ALL.into_iter().find(|a| a.as_str() == wanted).ok_or_else(|| {
            let names: Vec<_> = Action::ALL.iter().map(|a| a.as_str()).collect();
            format!("unknown action {value:?} (expected one of {})", names.join(", "))
        })
    }
}

/// Where an instance's action came from, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionSource {
    /// The manual payload's `action`.
    Payload,
    InstanceTag,
    RoleTag,
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenAction {
    pub action: Action,
    pub source: ActionSource,
    /// Set when a tag held a value we don't know and the default was used instead.
    pub warning: Option<String>,
}

/// Payload override first, then the instance's tag, then the role's tag, then the default.
/// An unknown tag value falls back to the default (never to a weaker tag) and says so.
pub fn choose_action(
    tag_key: &str,
    override_action: Option<Action>,
    instance_tags: &Tags,
    role_tags: &Tags,
    default: Action,
) -> ChosenAction {
    if let Some(action) = override_action {
        return ChosenAction {
            action,
            source: ActionSource::Payload,
            warning: None,
        };
    }
    for (tags, source, owner) in [
        (instance_tags, ActionSource::InstanceTag, "instance"),
        (role_tags, ActionSource::RoleTag, "role"),
    ] {
        if let Some(value) = tags.get(tag_key) {
            return match value.parse() {
                Ok(action) => ChosenAction {
                    action,
                    source,
                    warning: None,
                },
                Err(why) => ChosenAction {
                    action: default,
                    source: ActionSource::Default,
                    warning: Some(format!(
                        "{owner} tag {tag_key}: {why}; used the default action {default}"
                    )),
                },
            };
        }
    }
    ChosenAction {
        action: default,
        source: ActionSource::Default,
        warning: None,
    }
}

/// What we know about a role when deciding whether it may be touched.
pub struct RoleIdentity<'a> {
    pub name: &'a str,
    pub path: &'a str,
    pub tags: &'a Tags,
}

/// Why a role must not be changed, if it must not.
pub fn protection_reason(
    role: &RoleIdentity<'_>,
    protected_roles: &[String],
    own_role: Option<&str>,
) -> Option<String> {
    if role.path.starts_with(SERVICE_LINKED_PATH) {
        return Some(format!(
            "role {} is a service-linked role (path {})",
            role.name, role.path
        ));
    }
    // IAM role names are unique regardless of case: `breakglass` is the role listed as `BreakGlass`.
    if own_role.is_some_and(|own| own.eq_ignore_ascii_case(role.name)) {
        return Some(format!("role {} is this function's own execution role", role.name));
    }
    if protected_roles.iter().any(|p| p.eq_ignore_ascii_case(role.name)) {
        return Some(format!("role {} is listed in PROTECTED_ROLES", role.name));
    }
    if role
        .tags
        .get(PROTECTED_TAG)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return Some(format!("role {} is tagged {PROTECTED_TAG}=true", role.name));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "exfil-responder:action";

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn precedence_is_payload_then_instance_then_role_then_default() {
        let inst = tags(&[(KEY, "cycle")]);
        let role = tags(&[(KEY, "isolate")]);
        let none = Tags::new();
        let pick = |o, i, r| choose_action(KEY, o, i, r, Action::Revoke);

        assert_eq!(pick(Some(Action::Ignore), &inst, &role).source, ActionSource::Payload);
        assert_eq!(pick(Some(Action::Ignore), &inst, &role).action, Action::Ignore);
        assert_eq!(
            (pick(None, &inst, &role).action, pick(None, &inst, &role).source),
            (Action::Cycle, ActionSource::InstanceTag)
        );
        assert_eq!(
            (pick(None, &none, &role).action, pick(None, &none, &role).source),
            (Action::Isolate, ActionSource::RoleTag)
        );
        assert_eq!(
            (pick(None, &none, &none).action, pick(None, &none, &none).source),
            (Action::Revoke, ActionSource::Default)
        );
    }

    #[test]
    fn every_action_value_parses_case_and_space_insensitively() {
        for a in Action::ALL {
            assert_eq!(format!(" {} ", a.as_str().to_uppercase()).parse::<Action>(), Ok(a));
        }
    }

    #[test]
    fn unknown_values_fall_back_to_the_default_with_a_warning() {
        // An unknown instance value must not silently defer to the role tag either.
        let chosen = choose_action(
            KEY,
            None,
            &tags(&[(KEY, "reboot-please")]),
            &tags(&[(KEY, "cycle")]),
            Action::Ignore,
        );
        assert_eq!((chosen.action, chosen.source), (Action::Ignore, ActionSource::Default));
        let warning = chosen.warning.unwrap();
        assert!(
            warning.contains("instance tag") && warning.contains("reboot-please"),
            "{warning}"
        );

        let chosen = choose_action(KEY, None, &Tags::new(), &tags(&[(KEY, "")]), Action::Revoke);
        assert_eq!(chosen.action, Action::Revoke);
        assert!(chosen.warning.unwrap().contains("role tag"));
    }

    #[test]
    fn the_tag_key_is_configurable() {
        let chosen = choose_action(
            "ir:mode",
            None,
            &tags(&[("ir:mode", "cycle"), (KEY, "isolate")]),
            &Tags::new(),
            Action::Revoke,
        );
        assert_eq!(chosen.action, Action::Cycle);
    }

    #[test]
    fn protected_roles_are_recognised_for_each_reason() {
        let none = Tags::new();
        let role = |name, path, tags| RoleIdentity { name, path, tags };
        let listed = vec!["BreakGlass".to_string()];

        let slr = protection_reason(
            &role("AWSServiceRoleForX", "/aws-service-role/x.amazonaws.com/", &none),
            &[],
            None,
        );
        assert!(slr.unwrap().contains("service-linked"));
        assert!(
            protection_reason(&role("BreakGlass", "/", &none), &listed, None)
                .unwrap()
                .contains("PROTECTED_ROLES")
        );
        assert!(
            protection_reason(&role("Fn", "/", &none), &[], Some("Fn"))
                .unwrap()
                .contains("own execution role")
        );
        let tagged = tags(&[(PROTECTED_TAG, "TRUE")]);
        assert!(
            protection_reason(&role("Web", "/", &tagged), &[], None)
                .unwrap()
                .contains("tagged")
        );

        // Near misses are not protected.
        let not_true = tags(&[(PROTECTED_TAG, "yes")]);
        assert_eq!(
            protection_reason(&role("Web", "/", &not_true), &listed, Some("Fn")),
            None
        );
        // IAM role names are unique regardless of case: another case names the same role.
        assert!(
            protection_reason(&role("breakglass", "/service-role/", &none), &listed, None)
                .unwrap()
                .contains("PROTECTED_ROLES")
        );
        assert!(
            protection_reason(&role("FN", "/", &none), &[], Some("Fn"))
                .unwrap()
                .contains("own execution role")
        );
    }
}
