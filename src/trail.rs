//! CloudTrail's record of what a stolen key did, as this function reads it: each `LookupEvents`
//! entry's `CloudTrailEvent` (a JSON string, https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html)
//! checked and typed. Anyone who can call AWS with the key writes these records, so nothing in
//! one is trusted beyond what it is checked for: it must be signed with the key looked up, be of
//! the account whose trail holds it, have succeeded, and name exactly the call it claims to be.
//! What fails a check is a skip with its reason, never a write.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::names::{RoleName, is_account_id};

/// A call the walk acts on or reports, read from one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `sts:AssumeRole*` with the key: a session of `role`, whose own key is `session_key`.
    AssumedRole {
        role: RoleArn,
        /// `AROA…`, from `assumedRoleUser.assumedRoleId`: the role as it was then.
        role_id: Option<String>,
        session_key: String,
    },
    /// `iam:CreateAccessKey` with the key: a long-lived key for `user`.
    CreatedKey { user: String, key: String },
    /// `iam:TagRole` or `iam:UntagRole` with the key: the tag keys it wrote or removed on `role`
    /// (of the account whose trail holds it). Listed for a person, as persistence is; a tag that
    /// decides this function's response is then not honoured on that role (`respond::tamper`).
    RoleTags { role: RoleName, keys: Vec<String> },
    /// A call that leaves a way back in, which a person must judge (never changed).
    Persistence,
    /// Anything else: read and counted, nothing to do.
    Other,
}

/// One record, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct TrailEvent {
    pub id: String,
    pub name: String,
    pub source: String,
    pub at: DateTime<Utc>,
    pub region: String,
    pub call: Call,
}

impl TrailEvent {
    /// The latest moment what the call issued (a session, a key) can have been issued. CloudTrail's
    /// `eventTime` is "the date and time the request was completed", to the whole second
    /// (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html):
    /// a session recorded at 10:00:07Z was issued before 10:00:08Z, perhaps after a cut-off at
    /// 10:00:07.500Z. So a time with no fraction is taken as the end of its second, and a cut-off
    /// covers the session only if it is at or after that; a time with one is taken as given.
    pub fn issued_by(&self) -> DateTime<Utc> {
        match self.at.timestamp_subsec_nanos() {
            0 => self.at + chrono::TimeDelta::seconds(1),
            _ => self.at,
        }
    }
}

/// A role ARN: its partition, account and name (the path is not kept: IAM names are unique).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoleArn {
    pub partition: String,
    pub account: String,
    pub name: RoleName,
}

impl RoleArn {
    /// `arn:<partition>:iam::<account>:role/<path/>name`, and nothing else.
    pub fn parse(arn: &str) -> Option<Self> {
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let path_and_name = resource.strip_prefix("role/")?;
        let name = path_and_name.rsplit('/').next()?;
        let known = ["aws", "aws-cn", "aws-us-gov"].contains(&partition);
        (known && is_account_id(account)).then_some(())?;
        Some(Self {
            partition: partition.to_owned(),
            account: account.to_owned(),
            name: RoleName::parse(name).ok()?,
        })
    }

    pub fn arn(&self) -> String {
        format!("arn:{}:iam::{}:role/{}", self.partition, self.account, self.name)
    }
}

/// Only `AssumeRole`: `AssumeRoleWithWebIdentity` and `AssumeRoleWithSAML` are not signed with
/// an access key (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html,
/// "Calling AssumeRoleWithWebIdentity does not require the use of AWS security credentials"), so a
/// stolen key's trail never holds them.
const ASSUME: &str = "AssumeRole";

/// IAM and STS calls that leave a way back in: reported with their event id, never undone here.
const PERSISTENCE: [&str; 24] = [
    "CreateUser",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "AttachUserPolicy",
    "PutUserPolicy",
    "AddUserToGroup",
    "AttachGroupPolicy",
    "PutGroupPolicy",
    "CreateRole",
    "AttachRolePolicy",
    "PutRolePolicy",
    "UpdateAssumeRolePolicy",
    "CreatePolicy",
    "CreatePolicyVersion",
    "SetDefaultPolicyVersion",
    "CreateServiceSpecificCredential",
    "UploadSSHPublicKey",
    "CreateVirtualMFADevice",
    "EnableMFADevice",
    "CreateOpenIDConnectProvider",
    "CreateSAMLProvider",
    "UpdateAccessKey",
    // What undoes a containment elsewhere: a revocation deleted, a role's policies or trust
    // changed (its tags: `Call::RoleTags`).
    "DeleteRolePolicy",
    "DetachRolePolicy",
];

/// STS calls that hand out credentials a role's revocation does not reach.
const OTHER_CREDENTIALS: [&str; 2] = ["GetFederationToken", "GetSessionToken"];

/// Read `raw`, the record LookupEvents returned for `key` in `account`'s trail. Err: why it is
/// not acted on.
pub fn read(raw: &str, key: &str, account: &str) -> Result<TrailEvent, String> {
    let record: Value = serde_json::from_str(raw).map_err(|e| format!("CloudTrailEvent is not JSON ({e})"))?;
    let text = |path: &str| record.pointer(path).and_then(Value::as_str);
    let id = text("/eventID")
        .ok_or("CloudTrailEvent has no eventID string")?
        .to_owned();
    let within = |why: String| format!("event {id}: {why}");
    let name = text("/eventName").ok_or_else(|| within("no eventName string".into()))?;
    let source = text("/eventSource").ok_or_else(|| within("no eventSource string".into()))?;
    let signed = text("/userIdentity/accessKeyId");
    if signed != Some(key) {
        return Err(within(format!("signed with {signed:?}, not the key looked up ({key})")));
    }
    let recipient = text("/recipientAccountId");
    if let Some(code) = record.get("errorCode").filter(|c| !c.is_null()) {
        return Err(within(format!("{name} failed ({code}): nothing came of it")));
    }
    let at = text("/eventTime")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .ok_or_else(|| within("no eventTime in RFC 3339".into()))?
        .with_timezone(&Utc);
    let region = text("/awsRegion").ok_or_else(|| within("no awsRegion string".into()))?;
    let call = call(&record, (source, name)).map_err(within)?;
    // LookupEvents answers only the account asked (its trail), so a record there is that
    // account's. Its copy of an AssumeRole into another account is recorded for the role's owner
    // (IAM user guide, "Logging IAM and AWS STS API calls with AWS CloudTrail", the cross-account
    // example): that recipient is accepted when it is the account of the role the call names.
    let cross_account = matches!(&call, Call::AssumedRole { role, .. } if Some(role.account.as_str()) == recipient);
    if recipient != Some(account) && !cross_account {
        return Err(within(format!(
            "recorded for account {recipient:?}, not {account} whose trail holds it nor the account of a role it assumed"
        )));
    }
    Ok(TrailEvent {
        id,
        name: name.to_owned(),
        source: source.to_owned(),
        at,
        region: region.to_owned(),
        call,
    })
}

/// What the call was, by its exact source and name; a look-alike of ours is `Other`.
fn call(record: &Value, (source, name): (&str, &str)) -> Result<Call, String> {
    let text = |path: &str| record.pointer(path).and_then(Value::as_str);
    match (source, name) {
        ("sts.amazonaws.com", name) if name == ASSUME => {
            let asked = text("/requestParameters/roleArn").ok_or(format!("{name} names no roleArn string"))?;
            let role = RoleArn::parse(asked).ok_or(format!("{name}'s roleArn {asked:?} is not a role ARN"))?;
            let session_key = text("/responseElements/credentials/accessKeyId")
                .filter(|k| is_key_id(k))
                .ok_or(format!("{name} answered no session key"))?;
            // The session it answered must be of the role asked for.
            let session = text("/responseElements/assumedRoleUser/arn").unwrap_or_default();
            let expected = format!(
                "arn:{}:sts::{}:assumed-role/{}/",
                role.partition, role.account, role.name
            );
            if !session.starts_with(&expected) {
                return Err(format!(
                    "{name} asked for {asked} but answered a session of {session:?}"
                ));
            }
            let role_id = text("/responseElements/assumedRoleUser/assumedRoleId")
                .and_then(|id| id.split(':').next())
                .filter(|id| id.starts_with("AROA"))
                .map(str::to_owned);
            Ok(Call::AssumedRole {
                role,
                role_id,
                session_key: session_key.to_owned(),
            })
        }
        ("iam.amazonaws.com", "CreateAccessKey") => {
            let key = text("/responseElements/accessKey/accessKeyId")
                .filter(|k| is_key_id(k) && k.starts_with("AKIA"))
                .ok_or("CreateAccessKey answered no access key id")?;
            let user = text("/responseElements/accessKey/userName")
                .filter(|u| is_user_name(u))
                .ok_or("CreateAccessKey answered no user name")?;
            Ok(Call::CreatedKey {
                user: user.to_owned(),
                key: key.to_owned(),
            })
        }
        ("iam.amazonaws.com", name @ ("TagRole" | "UntagRole")) => {
            // TagRole names `tags: [{key, value}]`, UntagRole `tagKeys: [key]`
            // (https://docs.aws.amazon.com/IAM/latest/APIReference/API_TagRole.html).
            let role = text("/requestParameters/roleName")
                .and_then(|r| RoleName::parse(r).ok())
                .ok_or(format!("{name} names no role"))?;
            let keys: Option<Vec<String>> = match name {
                "TagRole" => record
                    .pointer("/requestParameters/tags")
                    .and_then(Value::as_array)
                    .map(|tags| {
                        (tags.iter())
                            .filter_map(|t| t.get("key").and_then(Value::as_str).map(str::to_owned))
                            .collect()
                    }),
                _ => record
                    .pointer("/requestParameters/tagKeys")
                    .and_then(Value::as_array)
                    .map(|keys| keys.iter().filter_map(|k| k.as_str().map(str::to_owned)).collect()),
            };
            let keys = keys.ok_or(format!("{name} names no tag keys"))?;
            Ok(Call::RoleTags { role, keys })
        }
        ("iam.amazonaws.com", name) if PERSISTENCE.contains(&name) => Ok(Call::Persistence),
        ("sts.amazonaws.com", name) if OTHER_CREDENTIALS.contains(&name) => Ok(Call::Persistence),
        _ => Ok(Call::Other),
    }
}

/// Access key ids: `AKIA`/`ASIA` and upper-case letters and digits, 16 to 128 in all.
pub fn is_key_id(key: &str) -> bool {
    (16..=128).contains(&key.len())
        && (key.starts_with("AKIA") || key.starts_with("ASIA"))
        && key.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// IAM user names: 1 to 64 of letters, digits and `+=,.@_-`.
fn is_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const KEY: &str = "ASIAROOTKEY000000001";

    fn assume(role_arn: &str, session_arn: &str) -> Value {
        json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "accessKeyId": KEY, "accountId": "111111111111"},
            "eventTime": "2026-12-03T10:00:00Z",
            "eventSource": "sts.amazonaws.com",
            "eventName": "AssumeRole",
            "awsRegion": "us-east-1",
            "requestParameters": {"roleArn": role_arn, "roleSessionName": "x"},
            "responseElements": {
                "credentials": {"accessKeyId": "ASIASESSIONKEY000001", "expiration": "Dec 3, 2026, 11:00:00 AM"},
                "assumedRoleUser": {"assumedRoleId": "AROAB000000000000001:x", "arn": session_arn}
            },
            "eventID": "e-1",
            "recipientAccountId": "111111111111"
        })
    }

    fn read_it(record: &Value) -> Result<TrailEvent, String> {
        read(&record.to_string(), KEY, "111111111111")
    }

    #[test]
    fn an_assume_role_with_the_key_is_a_session_of_the_role_it_named() {
        let record = assume(
            "arn:aws:iam::222222222222:role/ops/RoleC",
            "arn:aws:sts::222222222222:assumed-role/RoleC/x",
        );
        let event = read_it(&record).unwrap();
        let Call::AssumedRole {
            role,
            role_id,
            session_key,
        } = event.call
        else {
            panic!("{event:?}")
        };
        assert_eq!((role.account.as_str(), role.name.as_str()), ("222222222222", "RoleC"));
        assert_eq!(role.arn(), "arn:aws:iam::222222222222:role/RoleC");
        assert_eq!(role_id.as_deref(), Some("AROAB000000000000001"));
        assert_eq!(session_key, "ASIASESSIONKEY000001");
        assert_eq!(event.id, "e-1");
    }

    /// The caller's copy of a cross-account AssumeRole is recorded for the role's owner.
    #[test]
    fn a_cross_account_assume_role_is_recorded_for_the_roles_account() {
        let mut record = assume(
            "arn:aws:iam::222222222222:role/RoleC",
            "arn:aws:sts::222222222222:assumed-role/RoleC/x",
        );
        record["recipientAccountId"] = json!("222222222222");
        let event = read_it(&record).unwrap();
        assert!(matches!(event.call, Call::AssumedRole { ref role, .. } if role.account == "222222222222"));
    }

    /// CloudTrail records whole seconds: what the call issued may be from any moment of that
    /// second. A time with a fraction is taken as given.
    #[test]
    fn a_whole_second_is_taken_as_its_end() {
        let mut record = assume(
            "arn:aws:iam::111111111111:role/RoleB",
            "arn:aws:sts::111111111111:assumed-role/RoleB/x",
        );
        let event = read_it(&record).unwrap();
        assert_eq!(event.issued_by(), event.at + chrono::TimeDelta::seconds(1));
        record["eventTime"] = json!("2026-12-03T10:00:00.250Z");
        let event = read_it(&record).unwrap();
        assert_eq!(event.issued_by(), event.at);
    }

    /// Not signed with a key, so never in a key's trail: one claiming to be is nothing to act on.
    #[test]
    fn web_identity_and_saml_are_not_taken_as_sessions_of_the_key() {
        for name in ["AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"] {
            let mut record = assume(
                "arn:aws:iam::111111111111:role/RoleB",
                "arn:aws:sts::111111111111:assumed-role/RoleB/x",
            );
            record["eventName"] = json!(name);
            assert!(matches!(read_it(&record).unwrap().call, Call::Other), "{name}");
        }
    }

    #[test]
    fn hostile_records_are_skipped_with_the_reason() {
        let good = assume(
            "arn:aws:iam::111111111111:role/RoleB",
            "arn:aws:sts::111111111111:assumed-role/RoleB/x",
        );
        let with = |path: &str, value: Value| {
            let mut record = good.clone();
            *record.pointer_mut(path).unwrap() = value;
            read_it(&record).unwrap_err()
        };
        let truncated = &good.to_string()[..40];
        assert!(read(truncated, KEY, "111111111111").unwrap_err().contains("not JSON"));
        assert!(with("/userIdentity/accessKeyId", json!("ASIAOTHER00000000001")).contains("not the key"));
        assert!(with("/recipientAccountId", json!("333333333333")).contains("not 111111111111"));
        // Only an AssumeRole may be recorded for another account, and only for the role's.
        let mut created = good.clone();
        created["eventSource"] = json!("iam.amazonaws.com");
        created["eventName"] = json!("CreateAccessKey");
        created["responseElements"] = json!({"accessKey": {"accessKeyId": "AKIANEWKEY0000000001", "userName": "u"}});
        created["recipientAccountId"] = json!("222222222222");
        assert!(read_it(&created).unwrap_err().contains("not 111111111111"));
        assert!(with("/requestParameters/roleArn", json!(7)).contains("no roleArn"));
        assert!(with("/requestParameters/roleArn", json!("arn:aws:iam::1:role/B")).contains("not a role ARN"));
        assert!(
            with(
                "/responseElements/assumedRoleUser/arn",
                json!("arn:aws:sts::333333333333:assumed-role/RoleB/x")
            )
            .contains("answered a session of")
        );
        assert!(with("/responseElements/credentials/accessKeyId", json!("not-a-key")).contains("no session key"));
        assert!(with("/eventTime", json!("yesterday")).contains("eventTime"));
        let mut failed = good.clone();
        failed["errorCode"] = json!("AccessDenied");
        assert!(read_it(&failed).unwrap_err().contains("failed"));
    }

    #[test]
    fn look_alike_names_and_sources_are_other_calls() {
        for (source, name) in [
            ("sts.amazonaws.com", "assumerole"),
            ("sts.amazonaws.com.example.com", "AssumeRole"),
            ("iam.amazonaws.com", "CreateAccessKey "),
            ("sts.amazonaws.com", "CreateAccessKey"),
        ] {
            let mut record = assume(
                "arn:aws:iam::111111111111:role/RoleB",
                "arn:aws:sts::111111111111:assumed-role/RoleB/x",
            );
            record["eventSource"] = json!(source);
            record["eventName"] = json!(name);
            assert_eq!(read_it(&record).unwrap().call, Call::Other, "{source} {name}");
        }
    }

    #[test]
    fn a_created_key_and_persistence_calls_are_read_by_their_exact_names() {
        let mut record = assume("x", "y");
        record["eventSource"] = json!("iam.amazonaws.com");
        record["eventName"] = json!("CreateAccessKey");
        record["responseElements"] =
            json!({"accessKey": {"accessKeyId": "AKIANEWKEY0000000001", "userName": "backdoor", "status": "Active"}});
        assert_eq!(
            read_it(&record).unwrap().call,
            Call::CreatedKey {
                user: "backdoor".into(),
                key: "AKIANEWKEY0000000001".into()
            }
        );
        record["responseElements"]["accessKey"]["userName"] = json!("a/b");
        assert!(read_it(&record).unwrap_err().contains("no user name"));
        record["eventName"] = json!("CreateLoginProfile");
        assert_eq!(read_it(&record).unwrap().call, Call::Persistence);
        record["eventSource"] = json!("sts.amazonaws.com");
        record["eventName"] = json!("GetFederationToken");
        assert_eq!(read_it(&record).unwrap().call, Call::Persistence);
    }

    #[test]
    fn tags_written_or_removed_on_a_role_are_read_with_their_keys() {
        let mut record = assume("x", "y");
        record["eventSource"] = json!("iam.amazonaws.com");
        record["eventName"] = json!("TagRole");
        record["requestParameters"] =
            json!({"roleName": "WebAppRole", "tags": [{"key": "exfil-responder:protected", "value": "true"}]});
        let role = RoleName::parse("WebAppRole").unwrap();
        let tagged = Call::RoleTags {
            role: role.clone(),
            keys: vec!["exfil-responder:protected".into()],
        };
        assert_eq!(read_it(&record).unwrap().call, tagged);
        record["eventName"] = json!("UntagRole");
        record["requestParameters"] = json!({"roleName": "WebAppRole", "tagKeys": ["exfil-responder:action"]});
        let untagged = Call::RoleTags {
            role,
            keys: vec!["exfil-responder:action".into()],
        };
        assert_eq!(read_it(&record).unwrap().call, untagged);
        record["requestParameters"] = json!({"roleName": "a/b", "tagKeys": []});
        assert!(read_it(&record).unwrap_err().contains("names no role"));
    }

    #[test]
    fn role_arns_are_checked_whole() {
        assert!(RoleArn::parse("arn:aws:iam::111111111111:role/a/b/Name").is_some());
        for bad in [
            "arn:aws:iam::111111111111:user/Name",
            "arn:aws:sts::111111111111:role/Name",
            "arn:evil:iam::111111111111:role/Name",
            "arn:aws:iam:us-east-1:111111111111:role/Name",
            "arn:aws:iam::111111111111:role/",
        ] {
            assert_eq!(RoleArn::parse(bad), None, "{bad}");
        }
    }
}
