//! Identifiers taken from a finding or a payload, validated before any AWS call uses them.
//!
//! A finding is attacker-influenced input (anyone who can invoke the function can hand it one),
//! so names are checked against the IAM and EC2 rules instead of being passed through.

use std::fmt;

use serde::Serialize;

/// An IAM role name: 1–64 characters of `[A-Za-z0-9+=,.@_-]` (IAM's `[\w+=,.@-]+`), no path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RoleName(String);

impl RoleName {
    pub fn parse(value: &str) -> Result<Self, String> {
        let valid_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
        if value.is_empty() || value.len() > 64 {
            return Err(format!(
                "{value:?} is not a valid IAM role name: it must be 1 to 64 characters"
            ));
        }
        if let Some(bad) = value.chars().find(|c| !valid_char(*c)) {
            return Err(format!(
                "{value:?} is not a valid IAM role name: {bad:?} is not allowed (letters, digits and +=,.@_- only)"
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An EC2 instance id: `i-` and 8 or 17 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct InstanceId(String);

impl InstanceId {
    pub fn parse(value: &str) -> Result<Self, String> {
        let hex = value.strip_prefix("i-").unwrap_or("");
        let hex_ok = hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if (hex.len() == 8 || hex.len() == 17) && hex_ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(format!(
                "{value:?} is not a valid EC2 instance id (i- and 8 or 17 lowercase hex digits)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A GuardDuty detector or finding id. GuardDuty's own are 32 lowercase hex digits; the API allows
/// 1–300 characters, so this takes letters, digits, `-` and `_` only: nothing that could change
/// the request path they go into.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct GuardDutyId(String);

impl GuardDutyId {
    pub fn parse(value: &str) -> Result<Self, String> {
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if (1..=300).contains(&value.len()) && value.chars().all(valid) {
            Ok(Self(value.to_owned()))
        } else {
            Err(format!(
                "{value:?} is not a GuardDuty id (1 to 300 letters, digits, - or _)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GuardDutyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The last path segment of an instance-profile ARN, which is the name GetInstanceProfile takes.
pub fn profile_name_from_arn(arn: &str) -> Option<&str> {
    let resource = arn.split(':').nth(5)?;
    let name = resource.strip_prefix("instance-profile/")?.rsplit('/').next()?;
    (!name.is_empty()).then_some(name)
}

/// The account in an IAM ARN (`arn:partition:iam::account:role/...`, `...:instance-profile/...`);
/// empty if it has none.
pub fn account_of_arn(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

/// Is this an IAM role's unique id (`AROA…`)? Used to cross-check the finding's principal.
pub fn is_role_id(value: &str) -> bool {
    value.len() > 4 && value.starts_with("AROA") && value.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Is this an access key id as IAM defines one (16–128 characters of `[\w]`)? Temporary keys are
/// `ASIA` and 16 more. Only such a value is compared with, or recorded in, the role's record of
/// revoked keys (a tag value, whose characters IAM also limits).
pub fn is_access_key_id(value: &str) -> bool {
    (16..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Is this a 12-digit AWS account id?
pub fn is_account_id(value: &str) -> bool {
    value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
}

/// Region names such as `us-east-1` or `us-gov-west-1`: lowercase letters, digits and dashes.
pub fn is_region(value: &str) -> bool {
    (4..=32).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && value.contains('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_follow_iam_rules() {
        for ok in ["WebAppRole", "a", "svc+role=x,y.z@corp_1-2", &"r".repeat(64)] {
            assert_eq!(RoleName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            &"r".repeat(65),
            "Role*",
            "../Role",
            "role/path",
            "Rôle",
            "role name",
            "Ro\u{0430}le",
            "\"}]",
        ] {
            let err = RoleName::parse(bad).unwrap_err();
            assert!(err.contains("not a valid IAM role name"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn instance_ids_follow_ec2_rules() {
        for ok in ["i-0123456789abcdef0", "i-1234abcd"] {
            assert_eq!(InstanceId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "i-",
            "i-123",
            "i-0123456789ABCDEF0",
            "i-0123456789abcdef",
            "x-1234abcd",
            "i-1234abcg",
            "i-99999999 ",
        ] {
            assert!(InstanceId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn guardduty_ids_are_path_safe() {
        for ok in ["12abc34d567e8fa901bc2d34e56789f0", "failing-finding", "a"] {
            assert_eq!(GuardDutyId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "../findings", "a/b", "id?x=1", "id%2F", &"a".repeat(301), "ıd"] {
            assert!(GuardDutyId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn profile_names_come_from_the_arn_last_segment() {
        assert_eq!(
            profile_name_from_arn("arn:aws:iam::123456789012:instance-profile/app/Web"),
            Some("Web")
        );
        assert_eq!(
            profile_name_from_arn("arn:aws:iam::123456789012:instance-profile/Web"),
            Some("Web")
        );
        assert_eq!(profile_name_from_arn("arn:aws:iam::123456789012:role/Web"), None);
        assert_eq!(
            profile_name_from_arn("arn:aws:iam::123456789012:instance-profile/"),
            None
        );
        assert_eq!(profile_name_from_arn("garbage"), None);
    }

    #[test]
    fn role_ids_are_recognised() {
        assert!(is_role_id("AROAEXAMPLEID1234567"));
        assert!(!is_role_id("AIDAEXAMPLE"));
        assert!(!is_role_id("AROA"));
        assert!(!is_role_id("GeneratedFindingPrincipalId"));
    }

    #[test]
    fn access_key_ids_follow_iam_rules() {
        for ok in [
            "ASIAQX3EXAMPLEKEY7N2",
            "AKIAEXAMPLELONGTERM1",
            "GeneratedFindingAccessKeyId",
            &"A".repeat(128),
        ] {
            assert!(is_access_key_id(ok), "{ok:?} refused");
        }
        for bad in [
            "",
            "ASIASHORT",
            &"A".repeat(129),
            "ASIA EXAMPLE KEY 7N2",
            "ASIAQX3EXAMPLEKEY7N2:x",
            "ASIAQX3EXAMPLEKÉY7N2",
        ] {
            assert!(!is_access_key_id(bad), "{bad:?} accepted");
        }
    }
}
