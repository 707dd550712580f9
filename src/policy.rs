//! The session-revocation policy: the document we write, and reading back the cut-off of one
//! already on a role (ours, or the IAM console's "Revoke active sessions"); and the role-side
//! guard against credentials used away from their instance, which `HARDEN=imdsv2` prints.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::Serialize;
use serde_json::{Value, json};

/// The IAM console's name, so the console and this function share, and overwrite, one policy.
pub const POLICY_NAME: &str = "AWSRevokeOlderSessions";

const TOKEN_ISSUE_TIME: &str = "aws:TokenIssueTime";

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Document {
    version: &'static str,
    statement: [Statement; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Statement {
    effect: &'static str,
    action: &'static str,
    resource: &'static str,
    condition: Condition,
}

#[derive(Serialize)]
struct Condition {
    #[serde(rename = "DateLessThan")]
    date_less_than: TokenIssueTime,
}

#[derive(Serialize)]
struct TokenIssueTime {
    #[serde(rename = "aws:TokenIssueTime")]
    cutoff: String,
}

/// Milliseconds (the form the IAM console writes), rounded down, never up: a credential issued
/// after the revocation, such as a re-attached instance's, must never fall before the cut-off.
/// Not whole seconds: a finding first seen earlier in the same second would then be after it.
pub fn cutoff_at(now: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// A time as the revocation and every report write it: ISO 8601 UTC, to the millisecond (the
/// cut-off's own precision, [`cutoff_at`]).
pub fn iso_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Deny everything to sessions whose token was issued before `cutoff`.
pub fn document(cutoff: DateTime<Utc>) -> String {
    let doc = Document {
        version: "2012-10-17",
        statement: [Statement {
            effect: "Deny",
            action: "*",
            resource: "*",
            condition: Condition {
                date_less_than: TokenIssueTime {
                    cutoff: iso_millis(cutoff),
                },
            },
        }],
    };
    serde_json::to_string(&doc).expect("a struct of strings always serialises")
}

/// A policy's size as IAM's quotas count it: characters, white space not counted. An inline
/// document as IAM returns it is URL-encoded; one that does not decode is counted as it stands.
/// <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html>
pub fn quota_chars(encoded: &str) -> usize {
    let decoded = percent_encoding::percent_decode_str(encoded).decode_utf8_lossy();
    decoded.chars().filter(|c| !c.is_whitespace()).count()
}

/// What an existing `AWSRevokeOlderSessions` document says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// Denies every session issued before this instant.
    Cutoff(DateTime<Utc>),
    /// Not the revocation shape we know; the reason says what was off.
    Unrecognised(String),
}

/// Where the managed fallback lives: a path of ours, so that the role's attached policies are
/// listed by it and the permission to attach is scoped to it.
pub const FALLBACK_PATH: &str = "/exfil-responder/";

/// The customer-managed fallback's name for `role`, written when the role's inline quota is full
/// (`PutRolePolicy` answers `LimitExceeded`). Role names are unique in the account regardless of
/// case, so one name per role; at most 64 + 23 characters, under the managed policy limit of 128.
pub fn fallback_name(role: &str) -> String {
    format!("{POLICY_NAME}-{role}")
}

/// The fallback's ARN, in the role's partition and account (read from the role's own ARN).
pub fn fallback_arn(role_arn: &str, role: &str) -> Option<String> {
    let parts: Vec<&str> = role_arn.split(':').collect();
    let [_, partition, "iam", "", account, _] = parts[..] else {
        return None;
    };
    Some(format!(
        "arn:{partition}:iam::{account}:policy{FALLBACK_PATH}{}",
        fallback_name(role)
    ))
}

/// Which document holds the revocation: the inline `AWSRevokeOlderSessions` (the console's), or
/// the managed fallback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Holder {
    Inline { name: &'static str },
    Managed { arn: String },
}

impl Holder {
    pub fn inline() -> Self {
        Self::Inline { name: POLICY_NAME }
    }
}

/// Both places a revocation may be, as read from IAM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InForce {
    pub inline: Option<Existing>,
    /// The attached fallback's ARN and what its default version says.
    pub managed: Option<(String, Existing)>,
}

impl InForce {
    /// What denies the role's old sessions. Both documents deny, so the later recognised cut-off
    /// is the one in force; a recognised one outranks an unrecognised one (which is reported only
    /// when there is nothing else).
    pub fn effective(&self) -> Option<(Existing, Holder)> {
        let inline = self.inline.clone().map(|e| (e, Holder::inline()));
        let managed = self.managed.clone().map(|(arn, e)| (e, Holder::Managed { arn }));
        let cutoff = |c: &Option<(Existing, Holder)>| match c {
            Some((Existing::Cutoff(at), _)) => Some(*at),
            _ => None,
        };
        match (cutoff(&inline), cutoff(&managed)) {
            (Some(i), Some(m)) if m > i => managed,
            (Some(_), _) => inline,
            (None, Some(_)) => managed,
            (None, None) => inline.or(managed),
        }
    }

    pub fn existing(&self) -> Option<Existing> {
        self.effective().map(|(e, _)| e)
    }
}

/// Read the cut-off out of a GetRolePolicy document, which IAM returns URL-encoded.
pub fn read_cutoff(encoded: &str) -> Existing {
    let decoded = match percent_encoding::percent_decode_str(encoded).decode_utf8() {
        Ok(d) => d,
        Err(_) => return Existing::Unrecognised("the document is not valid UTF-8 once URL-decoded".into()),
    };
    let doc: Value = match serde_json::from_str(&decoded) {
        Ok(v) => v,
        Err(e) => return Existing::Unrecognised(format!("the document is not JSON: {e}")),
    };
    let statements = match doc.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => return Existing::Unrecognised("the document has no Statement".into()),
    };
    // Several deny-all statements each deny older tokens, so the latest cut-off is the one in force.
    match statements.into_iter().filter_map(deny_all_cutoff).max() {
        Some(cutoff) => Existing::Cutoff(cutoff),
        None => Existing::Unrecognised("no Deny */* statement with DateLessThan aws:TokenIssueTime".into()),
    }
}

/// The cut-off of a document only if it means exactly "deny everything to sessions issued before
/// T": what [`document`] writes, and the IAM console's own "Revoke active sessions" (arrays
/// where ours has strings), in any key order, with any date form IAM reads. One statement (`Sid`
/// allowed), `Deny`, every action (`"*"` or `["*"]`) on every resource, and the one condition
/// with one date; at the top only `Version` and `Id` beside it. Anything more (another statement,
/// condition or action) or less (a narrower deny) is refused with the reason: a release removes
/// nothing else.
pub fn revocation_only(encoded: &str) -> Result<DateTime<Utc>, String> {
    let decoded = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .map_err(|_| "the document is not valid UTF-8 once URL-decoded".to_owned())?;
    let doc: Value = serde_json::from_str(&decoded).map_err(|e| format!("the document is not JSON: {e}"))?;
    let cutoff = match read_cutoff(encoded) {
        Existing::Cutoff(at) => at,
        Existing::Unrecognised(why) => return Err(why),
    };
    let more = |what: &str| {
        Err(format!(
            "it denies sessions issued before {}, but {what}: more or less than a revocation",
            iso_millis(cutoff)
        ))
    };
    let top = doc.as_object().ok_or("the document is not a JSON object")?;
    if let Some(key) = top
        .keys()
        .find(|k| !["Version", "Id", "Statement"].contains(&k.as_str()))
    {
        return more(&format!("it also has {key}"));
    }
    let statement = match &top["Statement"] {
        Value::Array(list) if list.len() == 1 => &list[0],
        Value::Array(_) => return more("it has more than one statement"),
        single => single,
    };
    let keys = statement
        .as_object()
        .map(|s| s.keys().collect::<Vec<_>>())
        .unwrap_or_default();
    let allowed = ["Sid", "Effect", "Action", "Resource", "Condition"];
    if let Some(key) = keys.iter().find(|k| !allowed.contains(&k.as_str())) {
        return more(&format!("its statement also has {key}"));
    }
    let only_star = |v: &Value| match v {
        Value::String(s) => s == "*",
        Value::Array(items) => items.len() == 1 && items[0] == "*",
        _ => false,
    };
    if !only_star(&statement["Action"]) || !only_star(&statement["Resource"]) {
        return more("it names actions or resources beside *");
    }
    // `read_cutoff` took the statement's one condition; here it must also hold one date.
    let dates = statement["Condition"]["DateLessThan"]
        .as_object()
        .and_then(|k| k.values().next());
    if matches!(dates, Some(Value::Array(items)) if items.len() != 1) {
        return more("its condition holds several dates");
    }
    Ok(cutoff)
}

fn deny_all_cutoff(statement: &Value) -> Option<DateTime<Utc>> {
    let is_star = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s == "*",
        Some(Value::Array(items)) => items.iter().any(|i| i == "*"),
        _ => false,
    };
    if statement.get("Effect")? != "Deny" || !is_star(statement.get("Action")) || !is_star(statement.get("Resource")) {
        return None;
    }
    // Only the one condition: any other (a `NotIpAddress` someone added, a second key) narrows the
    // deny, so the stolen key may still work where it does not apply. Not a full revocation.
    let condition = statement.get("Condition")?.as_object()?;
    let [(operator, keys)] = condition.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    let keys = keys.as_object().filter(|_| operator == "DateLessThan")?;
    // Condition keys are case-insensitive in IAM; several values mean "any of", so the latest rules.
    let [(key, value)] = keys.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    if !key.eq_ignore_ascii_case(TOKEN_ISSUE_TIME) {
        return None;
    }
    match value {
        Value::Array(items) => items.iter().filter_map(date_value).max(),
        single => date_value(single),
    }
}

/// IAM date values: ISO 8601 (with or without fractional seconds) or epoch seconds.
fn date_value(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .ok()
            .or_else(|| s.parse::<i64>().ok().and_then(|n| Utc.timestamp_opt(n, 0).single())),
        Value::Number(n) => n.as_i64().and_then(|n| Utc.timestamp_opt(n, 0).single()),
        _ => None,
    }
}

/// Where AWS documents the guard below and the condition keys it compares.
pub const SOURCE_NETWORK_GUARD_DOC: &str = "https://aws.amazon.com/blogs/security/how-to-use-policies-to-restrict-where-ec2-instance-credentials-can-be-used-from/";

/// The role-side guard `HARDEN=imdsv2` prints (never applies): instance credentials denied away
/// from the VPC and the private address they were delivered to, the way AWS's guide writes it.
pub fn source_network_guard() -> Value {
    let only_instance_credentials = |key: &str, request_key: &str| {
        json!({
            "StringNotEquals": { key: format!("${{{request_key}}}") },
            "Null": { "ec2:SourceInstanceARN": "false" },
            "BoolIfExists": { "aws:ViaAWSService": "false" },
        })
    };
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InstanceCredentialsOnlyFromTheirVpc",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": only_instance_credentials("aws:ec2InstanceSourceVPC", "aws:SourceVpc"),
            },
            {
                "Sid": "InstanceCredentialsOnlyFromTheirAddress",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": only_instance_credentials("aws:ec2InstanceSourcePrivateIPv4", "aws:VpcSourceIp"),
            },
        ],
    })
}

/// What AWS's guide says must hold before the guard is applied, and what it does not cover.
pub const SOURCE_NETWORK_GUARD_CAVEATS: [&str; 5] = [
    "aws:SourceVpc and aws:VpcSourceIp are in a request only when it reaches AWS through a VPC endpoint: \
     calls the instances make through a NAT or internet gateway are denied too, so every service they call \
     needs a VPC endpoint first (or the statements an exception for those paths)",
    "calls AWS services make on the role's behalf (aws:ViaAWSService) are left alone, but some service paths \
     still need exceptions (AWS's own example gained one so that instances can attach encrypted EBS volumes): \
     try it with the role's workload in a test account first",
    "only credentials delivered to an EC2 instance carry ec2:SourceInstanceARN: the role's other sessions \
     are unaffected",
    "the address statement pins credentials to the instance's primary private IPv4 address: calls from \
     another interface or address of the instance are denied",
    "as an inline policy it counts against the role's 10,240-character inline quota and a release leaves it \
     in place; as a service control policy it covers every instance role in the accounts it is attached to",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_quota_counts_decoded_characters_without_white_space() {
        assert_eq!(quota_chars("%7B%22a%22%3A%20%22b%22%7D"), "{\"a\":\"b\"}".len());
        assert_eq!(quota_chars("{ \"a\" :\n\t\"b\" }"), 9);
        let deny = document(at("2026-11-22T10:00:07.250Z"));
        assert_eq!(
            quota_chars(&deny),
            deny.len(),
            "the deny is written without white space"
        );
    }

    #[test]
    fn the_document_is_exactly_the_documented_shape() {
        assert_eq!(
            document(at("2026-11-22T10:00:07Z")),
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-22T10:00:07.000Z"}}}]}"#
        );
    }

    #[test]
    fn cutoffs_are_milliseconds_rounded_down() {
        assert_eq!(
            cutoff_at(at("2026-11-22T10:00:07.999999Z")),
            at("2026-11-22T10:00:07.999Z")
        );
        assert!(document(cutoff_at(at("2026-11-22T10:00:07.5Z"))).contains("\"2026-11-22T10:00:07.500Z\""));
    }

    #[test]
    fn our_own_document_reads_back_after_url_encoding() {
        let cutoff = at("2026-11-22T10:00:07Z");
        let encoded: String =
            percent_encoding::utf8_percent_encode(&document(cutoff), percent_encoding::NON_ALPHANUMERIC).to_string();
        assert!(encoded.starts_with("%7B%22Version%22"));
        assert_eq!(read_cutoff(&encoded), Existing::Cutoff(cutoff));
    }

    #[test]
    fn console_and_hand_written_variants_are_understood() {
        // The console's capture: arrays, milliseconds. The doc's: a single statement object.
        let console = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{"DateLessThan":{"aws:TokenIssueTime":"2025-07-22T02:08:07.810Z"}}}]}"#;
        assert_eq!(read_cutoff(console), Existing::Cutoff(at("2025-07-22T02:08:07.810Z")));
        let single = "{\n \"Version\": \"2012-10-17\",\n \"Statement\": {\"Effect\": \"Deny\", \"Action\": \"*\", \"Resource\": \"*\",\n  \"Condition\": {\"DateLessThan\": {\"aws:tokenissuetime\": \"2014-05-07T23:47:00Z\"}}}}";
        assert_eq!(read_cutoff(single), Existing::Cutoff(at("2014-05-07T23:47:00Z")));
        let epoch = r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":1700000000}}}]}"#;
        assert_eq!(read_cutoff(epoch), Existing::Cutoff(at("2023-11-14T22:13:20Z")));
    }

    #[test]
    fn the_latest_of_several_cutoffs_is_in_force() {
        let doc = r#"{"Statement":[
            {"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-01-01T00:00:00Z"}}},
            {"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":["2026-03-01T00:00:00Z","2026-02-01T00:00:00Z"]}}}]}"#;
        assert_eq!(read_cutoff(doc), Existing::Cutoff(at("2026-03-01T00:00:00Z")));
    }

    #[test]
    fn anything_else_is_unrecognised_not_guessed() {
        for doc in [
            "%ZZ not json",
            r#"{"Version":"2012-10-17"}"#,
            // Allow, narrower action or resource, another operator, or an unparseable date: not a revocation.
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-01-01T00:00:00Z"}}}]}"#,
            r#"{"Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-01-01T00:00:00Z"}}}]}"#,
            r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"arn:aws:s3:::b","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-01-01T00:00:00Z"}}}]}"#,
            r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateGreaterThan":{"aws:TokenIssueTime":"2026-01-01T00:00:00Z"}}}]}"#,
            r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"yesterday"}}}]}"#,
        ] {
            assert!(matches!(read_cutoff(doc), Existing::Unrecognised(_)), "{doc}");
        }
    }

    #[test]
    fn a_deny_narrowed_by_any_other_condition_is_not_a_full_revocation() {
        // A stolen key used from inside the excepted network would still work under these.
        for doc in [
            r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-01-01T00:00:00Z"},"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}"#,
            r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-01-01T00:00:00Z","aws:CurrentTime":"2030-01-01T00:00:00Z"}}}]}"#,
        ] {
            assert!(matches!(read_cutoff(doc), Existing::Unrecognised(_)), "{doc}");
        }
    }

    #[test]
    fn every_document_that_only_revokes_is_recognised_and_nothing_more_or_less() {
        let cutoff = at("2026-11-22T10:00:07.250Z");
        let encoded: String =
            percent_encoding::utf8_percent_encode(&document(cutoff), percent_encoding::NON_ALPHANUMERIC).to_string();
        for same in [
            encoded.as_str(),
            // Ours, its keys in another order.
            r#"{"Statement":[{"Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-22T10:00:07.250Z"}},"Resource":"*","Action":"*","Effect":"Deny"}], "Version":"2012-10-17"}"#,
            // The IAM console's "Revoke active sessions": arrays, its own date form.
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-22T10:00:07.25Z"}}}]}"#,
            // A single statement object, a Sid, the key in another case, the date in an array of one.
            r#"{"Version":"2012-10-17","Statement":{"Sid":"Revoke","Effect":"Deny","Action":"*","Resource":["*"],"Condition":{"DateLessThan":{"AWS:TokenIssueTime":["2026-11-22T10:00:07.250Z"]}}}}"#,
        ] {
            assert_eq!(revocation_only(same), Ok(cutoff), "{same}");
        }
        for more_or_less in [
            // A statement added.
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-22T10:00:07.250Z"}}},{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
            // Two revocations in one document: not what any revocation writes.
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-22T10:00:07.250Z"}}},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-21T10:00:07.250Z"}}}]}"#,
            // An action or a resource beside *.
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*","s3:GetObject"],"Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-22T10:00:07.250Z"}}}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":["*","arn:aws:s3:::b"],"Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-22T10:00:07.250Z"}}}]}"#,
            // A principal, several dates, a narrower condition, no condition at all, an allow.
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-22T10:00:07.250Z"}}}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":["2026-11-22T10:00:07.250Z","2026-11-21T10:00:07.250Z"]}}}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-22T10:00:07.250Z"},"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        ] {
            assert!(revocation_only(more_or_less).is_err(), "{more_or_less}");
        }
    }

    #[test]
    fn the_fallback_is_named_for_the_role_in_its_partition_and_account() {
        assert_eq!(
            fallback_arn("arn:aws-us-gov:iam::123456789012:role/app/WebAppRole", "WebAppRole").as_deref(),
            Some("arn:aws-us-gov:iam::123456789012:policy/exfil-responder/AWSRevokeOlderSessions-WebAppRole")
        );
        assert_eq!(fallback_arn("not an arn", "WebAppRole"), None);
    }

    #[test]
    fn the_later_recognised_cutoff_of_the_two_documents_is_in_force() {
        let (early, late) = (at("2026-11-22T10:00:00Z"), at("2026-11-22T11:00:00Z"));
        let arn = "arn:aws:iam::123456789012:policy/exfil-responder/AWSRevokeOlderSessions-R".to_owned();
        let managed = Holder::Managed { arn: arn.clone() };
        let both = |inline, m: Option<Existing>| InForce {
            inline,
            managed: m.map(|e| (arn.clone(), e)),
        };
        let odd = || Existing::Unrecognised("narrowed".into());
        let cases = [
            (
                both(Some(Existing::Cutoff(early)), Some(Existing::Cutoff(late))),
                Some((Existing::Cutoff(late), managed.clone())),
            ),
            (
                both(Some(Existing::Cutoff(late)), Some(Existing::Cutoff(early))),
                Some((Existing::Cutoff(late), Holder::inline())),
            ),
            (
                both(Some(odd()), Some(Existing::Cutoff(early))),
                Some((Existing::Cutoff(early), managed.clone())),
            ),
            (
                both(Some(Existing::Cutoff(early)), Some(odd())),
                Some((Existing::Cutoff(early), Holder::inline())),
            ),
            (both(Some(odd()), None), Some((odd(), Holder::inline()))),
            (
                both(None, Some(Existing::Cutoff(early))),
                Some((Existing::Cutoff(early), managed)),
            ),
            (both(None, None), None),
        ];
        for (read, expected) in cases {
            assert_eq!(read.effective(), expected, "{read:?}");
        }
    }

    #[test]
    fn the_printed_guard_only_denies_instance_credentials_away_from_their_network() {
        let guard = source_network_guard();
        let statements = guard["Statement"].as_array().unwrap();
        let compared: Vec<(&str, &str)> = statements
            .iter()
            .map(|st| {
                assert_eq!(
                    (st["Effect"].as_str(), st["Action"].as_str()),
                    (Some("Deny"), Some("*"))
                );
                // Only credentials EC2 delivered to an instance, and not a service acting for the role.
                assert_eq!(st["Condition"]["Null"]["ec2:SourceInstanceARN"], "false");
                assert_eq!(st["Condition"]["BoolIfExists"]["aws:ViaAWSService"], "false");
                let (key, value) = st["Condition"]["StringNotEquals"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .next()
                    .unwrap();
                (key.as_str(), value.as_str().unwrap())
            })
            .collect();
        assert_eq!(
            compared,
            [
                ("aws:ec2InstanceSourceVPC", "${aws:SourceVpc}"),
                ("aws:ec2InstanceSourcePrivateIPv4", "${aws:VpcSourceIp}"),
            ]
        );
        // Never the revocation document, which this function does write.
        assert!(revocation_only(&guard.to_string()).is_err());
    }
}
