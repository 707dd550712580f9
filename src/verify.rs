//! Trust, but verify. An event is only a claim: anyone allowed to invoke the function can write
//! one, and a forged finding would get a role of their choosing revoked, or an instance isolated.
//! So the finding is fetched from GuardDuty and compared here; the remediation then works from
//! GuardDuty's copy, never from the event's.

use crate::finding::Finding;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// GuardDuty holds the same finding.
    Confirmed,
    /// Not acted on: why.
    Refused(String),
    /// GuardDuty holds the same finding, archived since the event was published (by a person, or
    /// by this function after remediating it): why it is not acted on, unless already contained.
    Archived(String),
}

/// The fields that say which credentials leaked and what to act on. Counts and timestamps move
/// on as GuardDuty re-publishes a finding, so they are not compared; GuardDuty's copy is used.
fn identity(f: &Finding) -> [(&'static str, Option<&str>); 8] {
    let keys = f.resource.as_ref().and_then(|r| r.access_key_details.as_ref());
    [
        ("id", Some(f.id.as_str())),
        ("type", Some(f.finding_type.as_str())),
        ("accountId", f.account_id.as_deref()),
        ("region", f.region.as_deref()),
        ("accessKeyId", keys.and_then(|k| k.access_key_id.as_deref())),
        ("userName (the role)", keys.and_then(|k| k.user_name.as_deref())),
        ("principalId", keys.and_then(|k| k.principal_id.as_deref())),
        (
            "instanceId",
            f.resource
                .as_ref()
                .and_then(|r| r.instance_details.as_ref())
                .and_then(|d| d.instance_id.as_deref()),
        ),
    ]
}

/// Compare the delivered finding with GuardDuty's copy.
pub fn compare(claimed: &Finding, actual: &Finding) -> Comparison {
    compare_with(claimed, actual, false)
}

/// Compare a finding that carries less than GuardDuty's event (Security Hub's ASFF names no
/// instance, for one) with GuardDuty's copy: what it carries must agree, and GuardDuty's copy is
/// what is acted on.
pub fn compare_carried(claimed: &Finding, actual: &Finding) -> Comparison {
    compare_with(claimed, actual, true)
}

fn compare_with(claimed: &Finding, actual: &Finding, carried_only: bool) -> Comparison {
    let differences: Vec<String> = identity(claimed)
        .into_iter()
        .zip(identity(actual))
        .filter(|((_, said), _)| !(carried_only && said.is_none()))
        .filter(|((_, said), (_, is))| said != is)
        .map(|((field, said), (_, is))| {
            format!("{field} is {} in the event but {} in GuardDuty", shown(said), shown(is))
        })
        .collect();
    if !differences.is_empty() {
        return Comparison::Refused(format!(
            "the event does not match GuardDuty's finding {} (forged or altered?): {}",
            actual.id,
            differences.join("; ")
        ));
    }
    let archived = |f: &Finding| f.service.as_ref().and_then(|s| s.archived) == Some(true);
    // GuardDuty never publishes a finding a suppression rule archived, while a finding archived
    // by hand keeps publishing, marked archived. So "archived now, not in the event" means a
    // suppression rule, or someone archived it since: a decision not to act. Or this function
    // archived it after containing it, and this is a repeat delivery: the caller tells them apart
    // by whether the role's revocation covers the finding.
    if archived(actual) && !archived(claimed) {
        return Comparison::Archived(format!(
            "GuardDuty reports finding {} archived (by a suppression rule, or by hand since it was published): \
             not acting; send a roleName or instanceId payload to act regardless",
            actual.id
        ));
    }
    Comparison::Confirmed
}

fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "missing".to_owned(), |v| format!("{v:?}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn finding() -> Finding {
        serde_json::from_value(json!({
            "id": "f1", "type": "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
            "accountId": "210987654321", "region": "eu-west-1", "severity": 8,
            "resource": {"accessKeyDetails": {"accessKeyId": "ASIAREAL", "principalId": "AROAREAL:i-0123456789abcdef0",
                                              "userType": "AssumedRole", "userName": "WebAppRole"},
                         "instanceDetails": {"instanceId": "i-0123456789abcdef0"}},
            "service": {"detectorId": "det1", "eventFirstSeen": "2026-11-22T09:58:31Z", "archived": false, "count": 1}
        }))
        .unwrap()
    }

    fn refused(claimed: &Finding, actual: &Finding) -> String {
        match compare(claimed, actual) {
            Comparison::Refused(why) | Comparison::Archived(why) => why,
            Comparison::Confirmed => panic!("confirmed"),
        }
    }

    #[test]
    fn what_a_finding_does_not_carry_is_not_compared_and_what_it_carries_must_agree() {
        let mut asff = finding();
        asff.resource.as_mut().unwrap().instance_details = None;
        assert_eq!(compare_carried(&asff, &finding()), Comparison::Confirmed);
        assert!(
            matches!(compare(&asff, &finding()), Comparison::Refused(why) if why.contains("instanceId is missing"))
        );
        let keys = asff.resource.as_mut().unwrap().access_key_details.as_mut().unwrap();
        keys.access_key_id = Some("ASIAFORGED".into());
        assert!(matches!(compare_carried(&asff, &finding()), Comparison::Refused(why) if why.contains("accessKeyId")));
    }

    #[test]
    fn the_same_finding_is_confirmed_even_as_it_is_republished() {
        let mut later = finding();
        later.service.as_mut().unwrap().event_first_seen = Some("2026-11-22T09:58:31.000Z".into());
        later.severity = Some(5.0);
        assert_eq!(compare(&finding(), &later), Comparison::Confirmed);
    }

    #[test]
    fn a_different_key_role_principal_or_instance_is_refused_naming_the_field() {
        fn keys(f: &mut Finding) -> &mut crate::finding::AccessKeyDetails {
            f.resource.as_mut().unwrap().access_key_details.as_mut().unwrap()
        }
        type Alter = fn(&mut Finding);
        let cases: [(&str, Alter); 5] = [
            ("accessKeyId", |f| keys(f).access_key_id = Some("ASIAFORGED".into())),
            ("userName (the role)", |f| keys(f).user_name = Some("AdminRole".into())),
            ("principalId", |f| keys(f).principal_id = Some("AROAOTHER:x".into())),
            ("instanceId", |f| {
                f.resource
                    .as_mut()
                    .unwrap()
                    .instance_details
                    .as_mut()
                    .unwrap()
                    .instance_id = Some("i-0fffffffffffffff0".into())
            }),
            ("type", |f| f.finding_type = "Recon:EC2/PortProbeUnprotectedPort".into()),
        ];
        for (field, alter) in cases {
            let mut forged = finding();
            alter(&mut forged);
            let why = refused(&forged, &finding());
            assert!(
                why.contains(field) && why.contains("forged or altered"),
                "{field}: {why}"
            );
        }
    }

    #[test]
    fn a_field_the_event_adds_or_drops_is_a_mismatch_too() {
        let mut no_instance = finding();
        no_instance.resource.as_mut().unwrap().instance_details = None;
        assert!(refused(&no_instance, &finding()).contains("instanceId is missing in the event"));
        assert!(refused(&finding(), &no_instance).contains("but missing in GuardDuty"));
    }

    #[test]
    fn archived_since_publication_is_refused_but_archived_by_hand_before_it_is_not() {
        let mut archived = finding();
        archived.service.as_mut().unwrap().archived = Some(true);
        assert!(refused(&finding(), &archived).contains("suppression rule"));
        assert!(matches!(compare(&finding(), &archived), Comparison::Archived(_)));
        assert_eq!(compare(&archived, &archived), Comparison::Confirmed);
    }
}
