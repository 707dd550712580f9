//! Establish what to act on: the finding's account and region, how to reach them (our own
//! credentials or the member role), GuardDuty's own copy of the finding (verification), and the
//! role and instance it is about. The administrator's side of GuardDuty is in `administrator`.

use crate::accounts::{self, Home, Reach};
use crate::api::ApiCall;
use crate::app::App;
use crate::aws::clients::Target;
use crate::aws::guardduty::{self, Fetched};
use crate::aws::{ec2, iam};
use crate::error::{Error, Result};
use crate::finding::asff;
use crate::finding::{
    Finding, FindingRequest, FindingSummary, GUARDDUTY_SOURCE, Incident, Locator, Subject, Triage, triage_finding,
};
use crate::names::{InstanceId, RoleName, profile_name_from_arn};
use crate::report::Verification;
use crate::respond::journal::Journal;
use crate::verify::{self, Comparison};

/// What a request alleges, before anything is checked with AWS: the finding it names (confirmed
/// with GuardDuty's own copy unless `VERIFY_FINDINGS` is off), or, in a manual payload, the role
/// or instance it names, taken as given.
pub enum Alleged {
    /// From an event, or a manual `instanceId` or `roleName` payload.
    Incident(Box<Incident>),
    /// A manual payload naming a GuardDuty finding.
    Fetch(Box<FindingRequest>),
}

/// What the request itself says, as the report shows it until GuardDuty's copy replaces it.
pub struct Request {
    pub summary: FindingSummary,
    pub dry_run_requested: bool,
    pub reason: Option<String>,
    pub warnings: Vec<String>,
}

impl Alleged {
    pub fn finding_id(&self) -> &str {
        match self {
            Self::Incident(i) => i.finding_id(),
            Self::Fetch(r) => r.locator.finding_id.as_str(),
        }
    }

    /// Where GuardDuty keeps the finding, when its copy is to be read: a GuardDuty event (with
    /// verification on) or a manual finding id.
    pub fn guardduty_locator(&self, verify_findings: bool) -> Option<&Locator> {
        match self {
            Self::Incident(i) if is_delivered_finding(i) && verify_findings => i.locator.as_ref(),
            Self::Incident(_) => None,
            Self::Fetch(r) => Some(&r.locator),
        }
    }

    /// The incident as delivered, for an event or a manual payload that is not a finding id.
    pub fn incident(&self) -> Option<&Incident> {
        match self {
            Self::Incident(i) => Some(i),
            Self::Fetch(_) => None,
        }
    }

    /// The finding as delivered, for an event: what GuardDuty's copy is compared with.
    pub fn claimed_finding(&self) -> Option<&Finding> {
        match self {
            Self::Incident(i) => i.finding.as_deref(),
            Self::Fetch(_) => None,
        }
    }

    /// The role it names, if it names one.
    pub fn role(&self) -> Option<&RoleName> {
        match self {
            Self::Incident(i) => i.subject.role(),
            Self::Fetch(_) => None,
        }
    }

    /// A finding of another partition is not ours to act on: its account cannot be reached from
    /// this one. The home partition comes from the function's ARN or STS, never from a region name.
    pub fn check_partition(&self, home: &Home) -> Result<()> {
        let named = match self {
            Self::Incident(i) => i.finding.as_deref().and_then(Finding::partition),
            Self::Fetch(_) => None,
        };
        match named {
            Some(partition) if partition != home.partition => Err(Error::bad_input(
                "detail.arn",
                format!(
                    "the finding is in partition {partition}, and this function runs in {}",
                    home.partition
                ),
            )),
            _ => Ok(()),
        }
    }

    pub fn request(&self) -> Request {
        match self {
            Self::Incident(i) => Request {
                summary: i.summary.clone(),
                dry_run_requested: i.dry_run_requested,
                reason: i.request_reason.clone(),
                warnings: i.warnings.clone(),
            },
            Self::Fetch(r) => Request {
                summary: FindingSummary {
                    source: r.source.clone(),
                    event_id: r.event_id.clone(),
                    event_time: r.event_time,
                    attack_sequence: r.attack_sequence.clone(),
                    ocsf: r.ocsf.clone(),
                    id: Some(r.locator.finding_id.to_string()),
                    account_id: r.account_id.clone(),
                    region: r.region.clone(),
                    ..FindingSummary::default()
                },
                dry_run_requested: r.dry_run_requested,
                reason: r.request_reason.clone(),
                warnings: Vec::new(),
            },
        }
    }
}

/// The account and region a finding is acted on in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub account: String,
    pub region: String,
}

/// Where the request says, else the function's own account and configured region.
pub fn place(summary: &FindingSummary, home: &Home, default_region: Option<String>) -> Result<Place> {
    let account = summary.account_id.clone().unwrap_or_else(|| home.account.clone());
    let Some(region) = summary.region.clone().or(default_region) else {
        return Err(Error::bad_input(
            "detail.region",
            "missing, and no default region is configured",
        ));
    };
    Ok(Place { account, region })
}

/// What no finding vouches for (Cloud Custodian's instances) is acted on in the function's own
/// account only, as a manual payload is: another account's instance is GuardDuty's to vouch for,
/// through its finding. Why not, if not.
pub fn unvouched_elsewhere(summary: &FindingSummary, home: &Home, place: &Place) -> Option<String> {
    (summary.source == crate::input::custodian::REPORTED_SOURCE && place.account != home.account).then(|| {
        format!(
            "Cloud Custodian handed over an instance of account {}, not this function's {}: instances no finding \
             names are contained in the function's own account only (send that account's GuardDuty finding instead)",
            place.account, home.account
        )
    })
}

/// How the place is reached: our own credentials, or the member role; or, if the account is not
/// ours to act in (the account lists, or no member role), why not. Decided without a call.
pub fn route(app: &App, home: &Home, place: &Place) -> std::result::Result<Reach, String> {
    accounts::reach(&app.config, &home.account, &home.partition, &place.account)
}

/// The clients for the place: our own, or the member role's. An AssumeRole failure is an error
/// naming the account and role, and nothing has been done in that account yet.
pub async fn reach(app: &App, reach: &Reach, place: &Place, finding_id: &str) -> Result<Target> {
    let external_id = app.config.member_role_external_id.as_deref();
    app.pool
        .target(
            &app.clients,
            reach,
            &place.account,
            &place.region,
            finding_id,
            external_id,
        )
        .await
}

pub enum Established {
    Act(Box<Incident>, Option<Verification>),
    Skip(String),
    /// GuardDuty does not confirm the finding: why.
    Refuse(String),
    /// GuardDuty confirms it, archived since it was published: acted on only if its role's
    /// revocation already covers it (a repeat delivery of a finding this function archived).
    Archived(Box<Incident>, String),
}

/// What to act on. A GuardDuty event is checked against GuardDuty's own copy of the finding
/// (unless `verify_findings` is off), and that copy is then acted on; a manual finding id is
/// fetched; manual `instanceId` and `roleName` payloads name no finding and are taken as given.
/// GuardDuty's copy is `read` already when the administrator read it; else the finding's own
/// account is asked, with the detector the event names.
pub async fn establish(
    verify_findings: bool,
    target: &Target,
    alleged: Alleged,
    (place, read): (&Place, Option<Finding>),
    steps: &Journal,
) -> Result<Established> {
    let act = |i: Incident, v| Ok(Established::Act(Box::new(i), v));
    match alleged {
        Alleged::Incident(incident) if !is_delivered_finding(&incident) => act(*incident, None),
        Alleged::Incident(incident) if !verify_findings => act(*incident, Some(Verification::Off)),
        Alleged::Incident(incident) => {
            let (Some(locator), Some(claimed)) = (&incident.locator, incident.finding.as_deref()) else {
                return Ok(Established::Refuse(
                    "the finding names no detector (detail.service.detectorId or detail.arn), so GuardDuty cannot confirm it".into(),
                ));
            };
            let actual = match fetch(target, locator, (place, read), steps).await? {
                Ok(actual) => actual,
                Err(reason) => return Ok(Established::Refuse(reason)),
            };
            // Security Hub's ASFF carries less than GuardDuty's event: what it carries must agree.
            let comparison = match incident.summary.source == asff::REPORTED_SOURCE {
                true => verify::compare_carried(claimed, &actual),
                false => verify::compare(claimed, &actual),
            };
            if let Comparison::Refused(reason) = comparison {
                return Ok(Established::Refuse(reason));
            }
            let summary = FindingSummary {
                source: incident.summary.source.clone(),
                event_id: incident.summary.event_id.clone(),
                event_time: incident.summary.event_time,
                ..FindingSummary::default()
            };
            let established = from_triage(triage_finding(actual, summary)?, Verification::Confirmed)?;
            Ok(match (comparison, established) {
                (Comparison::Archived(reason), Established::Act(incident, _)) => {
                    Established::Archived(incident, reason)
                }
                (_, established) => established,
            })
        }
        Alleged::Fetch(request) => fetched(target, *request, (place, read), steps).await,
    }
}

/// A finding delivered by GuardDuty's event or Security Hub's, which GuardDuty can confirm; not a
/// manual payload.
fn is_delivered_finding(incident: &Incident) -> bool {
    [GUARDDUTY_SOURCE, asff::REPORTED_SOURCE].contains(&incident.summary.source.as_str())
}

/// A manual payload's finding, fetched from GuardDuty and triaged like its event.
async fn fetched(
    target: &Target,
    request: FindingRequest,
    (place, read): (&Place, Option<Finding>),
    steps: &Journal,
) -> Result<Established> {
    let actual = match fetch(target, &request.locator, (place, read), steps).await? {
        Ok(actual) => actual,
        Err(reason) => return Ok(Established::Refuse(reason)),
    };
    // The request said where to look; the finding itself must say it lives there.
    let actual = match in_place(actual, place) {
        Ok(actual) => actual,
        Err(reason) => return Ok(Established::Refuse(reason)),
    };
    let summary = FindingSummary {
        source: request.source.clone(),
        event_id: request.event_id.clone(),
        event_time: request.event_time,
        attack_sequence: request.attack_sequence.clone(),
        ocsf: request.ocsf.clone(),
        ..FindingSummary::default()
    };
    let mut established = from_triage(triage_finding(actual, summary)?, Verification::Fetched)?;
    if let Established::Act(fetched, _) = &mut established {
        fetched.dry_run_requested = request.dry_run_requested;
        fetched.request_reason = request.request_reason;
    }
    Ok(established)
}

/// A finding is acted on only in the account and region GuardDuty itself places it.
pub fn in_place(finding: Finding, place: &Place) -> std::result::Result<Finding, String> {
    let (account, region) = (finding.account_id.as_deref(), finding.region.as_deref());
    if account == Some(place.account.as_str()) && region == Some(place.region.as_str()) {
        return Ok(finding);
    }
    Err(format!(
        "GuardDuty's finding {} is for account {} in {}, not {} in {}",
        finding.id,
        account.unwrap_or("(none)"),
        region.unwrap_or("(none)"),
        place.account,
        place.region
    ))
}

/// GuardDuty's own copy, triaged: acted on as `verification` says, or skipped like its event.
fn from_triage(triage: Triage, verification: Verification) -> Result<Established> {
    match triage {
        Triage::Act(incident) => Ok(Established::Act(Box::new(incident), Some(verification))),
        Triage::Skip { reason, .. } => Ok(Established::Skip(reason)),
        Triage::Fetch(_) | Triage::Operate(_) => Err(Error::Unexpected(
            "GuardDuty's copy of a finding triaged into a request".into(),
        )),
    }
}

/// GuardDuty's copy of the finding, or why it has none (Ok(Err)): the copy `read` already (by the
/// administrator), else asked of the finding's own account. GuardDuty unreachable, throttling or
/// denying us is an Err: retried, never taken as a pass.
async fn fetch(
    target: &Target,
    locator: &Locator,
    (place, read): (&Place, Option<Finding>),
    steps: &Journal,
) -> Result<std::result::Result<Finding, String>> {
    if let Some(read) = read {
        return Ok(Ok(read));
    }
    let (detector, id) = (&locator.detector_id, &locator.finding_id);
    let fetched = steps
        .run(
            ApiCall::GetFindings,
            id.as_str(),
            guardduty::get_finding(&target.guardduty, detector, id),
        )
        .await?;
    let Place { account, region } = place;
    Ok(match fetched {
        Fetched::Found(finding) => Ok(*finding),
        Fetched::Missing => Err(format!(
            "GuardDuty has no finding {id} under detector {detector} in account {account}, {region}: forged, or deleted"
        )),
        Fetched::Rejected(why) => Err(format!(
            "GuardDuty would not look up finding {id} under detector {detector} in account {account}, {region} \
             (forged, or the wrong account or region): {why}"
        )),
    })
}

/// The role whose sessions are revoked, the role id the finding's principal carried, and the
/// instance named (for a manual `instanceId`, the role its current profile holds).
pub struct About {
    pub role: RoleName,
    pub role_id: Option<String>,
    pub instance: Option<InstanceId>,
}

pub async fn about(target: &Target, subject: &Subject, region: &str, steps: &Journal) -> Result<About> {
    Ok(match subject {
        Subject::Finding {
            role,
            role_id,
            instance,
        } => About {
            role: role.clone(),
            role_id: role_id.clone(),
            instance: instance.clone(),
        },
        Subject::Role(role) => About {
            role: role.clone(),
            role_id: None,
            instance: None,
        },
        Subject::Instance(id) => About {
            role: role_of_instance(target, id.as_str(), region, steps).await?,
            role_id: None,
            instance: Some(id.clone()),
        },
    })
}

/// For `{"instanceId"}`: the role its current profile holds.
async fn role_of_instance(target: &Target, id: &str, region: &str, steps: &Journal) -> Result<RoleName> {
    let assoc = steps
        .run(
            ApiCall::DescribeIamInstanceProfileAssociations,
            id,
            ec2::current_association_of(&target.ec2, id),
        )
        .await?
        .ok_or_else(|| {
            let why = format!("{id} has no instance profile attached in {region} (or does not exist there); name the role with roleName instead");
            Error::bad_input("instanceId", why)
        })?;
    let profile = profile_name_from_arn(&assoc.profile_arn)
        .ok_or_else(|| Error::Unexpected(format!("{} is not an instance-profile ARN", assoc.profile_arn)))?;
    let role = steps
        .run(
            ApiCall::GetInstanceProfile,
            profile,
            iam::role_of_instance_profile(&target.iam, profile),
        )
        .await?;
    let role =
        role.ok_or_else(|| Error::bad_input("instanceId", format!("{id}'s instance profile {profile} holds no role")))?;
    RoleName::parse(&role).map_err(Error::Unexpected)
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::operation::describe_iam_instance_profile_associations::DescribeIamInstanceProfileAssociationsOutput;
    use aws_sdk_guardduty::error::ErrorMetadata;
    use aws_sdk_guardduty::operation::get_findings::{GetFindingsError, GetFindingsOutput};
    use aws_sdk_guardduty::types as gd;
    use aws_sdk_iam::operation::get_instance_profile::GetInstanceProfileOutput;
    use aws_sdk_iam::types::{InstanceProfile, Role};
    use aws_sdk_sts::operation::assume_role::AssumeRoleOutput;
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::config::Config;
    use crate::respond::mocks::{Rules, alleged_of, associations};
    use crate::wait::Deadline;

    const INSTANCE: &str = "i-0a1b2c3d4e5f60718";
    const PROFILE: &str = "arn:aws:iam::123456789012:instance-profile/WebAppProfile";

    fn here() -> Place {
        Place {
            account: "123456789012".into(),
            region: "us-east-1".into(),
        }
    }

    fn steps() -> Journal {
        Journal::new("f", Deadline::none())
    }

    /// Establish what an `events/` file claims, with GuardDuty answering `get`.
    async fn established(get: &aws_smithy_mocks::Rule, verify: bool, file: &str) -> Result<Established> {
        let rules = Rules {
            guardduty: vec![get],
            ..Rules::default()
        };
        establish(verify, &rules.target(), alleged_of(file), (&here(), None), &steps()).await
    }

    fn holding_no_finding() -> aws_smithy_mocks::Rule {
        mock!(aws_sdk_guardduty::Client::get_findings).then_output(|| GetFindingsOutput::builder().build())
    }

    #[tokio::test]
    async fn an_event_guardduty_does_not_hold_is_refused() {
        let get = holding_no_finding();
        let established = established(&get, true, "outside-aws.json").await.unwrap();
        assert!(matches!(established, Established::Refuse(ref why) if why.contains("forged, or deleted")));
        assert_eq!(get.num_calls(), 1);
    }

    #[tokio::test]
    async fn guardduty_throttling_is_an_error_to_retry_never_a_pass() {
        let get = mock!(aws_sdk_guardduty::Client::get_findings)
            .then_error(|| GetFindingsError::generic(ErrorMetadata::builder().code("ThrottlingException").build()));
        let err = established(&get, true, "outside-aws.json").await.err().unwrap();
        assert_eq!(err.aws_code(), Some("ThrottlingException"));
    }

    #[tokio::test]
    async fn with_verification_off_the_event_is_taken_as_delivered_without_asking() {
        let get = holding_no_finding();
        let established = established(&get, false, "outside-aws.json").await.unwrap();
        assert!(matches!(established, Established::Act(_, Some(Verification::Off))));
        assert_eq!(get.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_manual_finding_guardduty_places_elsewhere_is_refused() {
        let get = mock!(aws_sdk_guardduty::Client::get_findings).then_output(|| {
            let elsewhere = gd::Finding::builder()
                .id("7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b")
                .r#type(crate::finding::OUTSIDE_AWS)
                .account_id("123456789012")
                .region("eu-west-1")
                .build();
            GetFindingsOutput::builder().findings(elsewhere).build()
        });
        let established = established(&get, true, "manual-finding.json").await.unwrap();
        let Established::Refuse(why) = established else {
            panic!("acted on a finding GuardDuty places in another region")
        };
        assert!(
            why.contains("is for account 123456789012 in eu-west-1, not 123456789012 in us-east-1"),
            "{why}"
        );
    }

    #[test]
    fn the_place_defaults_to_our_account_and_region_and_needs_a_region() {
        let home = Home {
            account: "111111111111".into(),
            partition: "aws".into(),
        };
        let unplaced = FindingSummary::default();
        let placed = place(&unplaced, &home, Some("eu-west-1".into())).unwrap();
        assert_eq!(
            (placed.account.as_str(), placed.region.as_str()),
            ("111111111111", "eu-west-1")
        );
        let err = place(&unplaced, &home, None).unwrap_err();
        assert!(
            matches!(err, Error::BadInput { ref field, .. } if field == "detail.region"),
            "{err}"
        );
    }

    #[test]
    fn a_finding_of_another_partition_is_bad_input_and_the_home_partition_is_acted_in() {
        let home = |partition: &str| Home {
            account: "123456789012".into(),
            partition: partition.into(),
        };
        let alleged = alleged_of("outside-aws.json"); // arn:aws:guardduty:…
        alleged.check_partition(&home("aws")).unwrap();
        let err = alleged.check_partition(&home("aws-eusc")).unwrap_err();
        assert!(
            matches!(err, Error::BadInput { ref field, .. } if field == "detail.arn"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("partition aws, and this function runs in aws-eusc"),
            "{err}"
        );
        // A manual payload names no partition: the function's own.
        alleged_of("manual-role.json")
            .check_partition(&home("aws-iso-b"))
            .unwrap();
    }

    #[tokio::test]
    async fn a_denied_account_is_skipped_before_any_credentials_are_sought() {
        let assume = mock!(aws_sdk_sts::Client::assume_role).then_output(|| AssumeRoleOutput::builder().build());
        let rules = Rules {
            sts: vec![&assume],
            ..Rules::default()
        };
        let app = rules.app(Config {
            member_role_name: Some("ExfilResponderMember".into()),
            denied_accounts: vec!["222222222222".into()],
            ..Config::default()
        });
        let home = Home {
            account: "111111111111".into(),
            partition: "aws".into(),
        };
        let there = Place {
            account: "222222222222".into(),
            region: "us-east-1".into(),
        };
        let routed = route(&app, &home, &there);
        assert!(matches!(routed, Err(ref why) if why.contains("DENIED_ACCOUNTS")));
        assert_eq!(assume.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_manual_instance_is_about_the_role_its_profile_holds() {
        let listed = mock!(aws_sdk_ec2::Client::describe_iam_instance_profile_associations)
            .then_output(|| associations(&[(INSTANCE, "iip-assoc-1", PROFILE, "associated")]));
        let profile = mock!(aws_sdk_iam::Client::get_instance_profile)
            .match_requests(|r| r.instance_profile_name() == Some("WebAppProfile"))
            .then_output(|| {
                let created = aws_sdk_iam::primitives::DateTime::from_secs(1_700_000_000);
                let role = Role::builder()
                    .path("/")
                    .role_name("WebAppRole")
                    .role_id("AROAEXAMPLE")
                    .arn("arn:aws:iam::123456789012:role/WebAppRole")
                    .create_date(created)
                    .build()
                    .unwrap();
                let profile = InstanceProfile::builder()
                    .path("/")
                    .instance_profile_name("WebAppProfile")
                    .instance_profile_id("AIPAEXAMPLE")
                    .arn(PROFILE)
                    .create_date(created)
                    .roles(role)
                    .build()
                    .unwrap();
                GetInstanceProfileOutput::builder().instance_profile(profile).build()
            });
        let rules = Rules {
            iam: vec![&profile],
            ec2: vec![&listed],
            ..Rules::default()
        };
        let subject = Subject::Instance(InstanceId::parse(INSTANCE).unwrap());
        let about = about(&rules.target(), &subject, "us-east-1", &steps()).await.unwrap();
        assert_eq!(about.role.as_str(), "WebAppRole");
        assert_eq!(about.instance.as_ref().map(InstanceId::as_str), Some(INSTANCE));
    }

    #[tokio::test]
    async fn a_manual_instance_without_a_profile_is_bad_input() {
        let none = mock!(aws_sdk_ec2::Client::describe_iam_instance_profile_associations)
            .then_output(|| DescribeIamInstanceProfileAssociationsOutput::builder().build());
        let rules = Rules {
            ec2: vec![&none],
            ..Rules::default()
        };
        let subject = Subject::Instance(InstanceId::parse(INSTANCE).unwrap());
        let err = about(&rules.target(), &subject, "us-east-1", &steps())
            .await
            .err()
            .unwrap();
        assert!(
            matches!(err, Error::BadInput { ref field, .. } if field == "instanceId"),
            "{err}"
        );
    }
}
