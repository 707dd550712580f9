//! Mock clients for the phases' unit tests (aws-smithy-mocks): each answers only the rules given,
//! in any order, and fails any other call.

use aws_smithy_mocks::{Rule, RuleMode, mock_client};

use crate::app::App;
use crate::aws::clients::{Clients, Target};
use crate::config::Config;

#[derive(Default)]
pub struct Rules<'a> {
    pub iam: Vec<&'a Rule>,
    pub ec2: Vec<&'a Rule>,
    pub sts: Vec<&'a Rule>,
    pub guardduty: Vec<&'a Rule>,
    pub dynamodb: Vec<&'a Rule>,
    pub scheduler: Vec<&'a Rule>,
    pub securityhub: Vec<&'a Rule>,
    pub sns: Vec<&'a Rule>,
    pub cloudtrail: Vec<&'a Rule>,
    pub autoscaling: Vec<&'a Rule>,
}

impl Rules<'_> {
    pub fn clients(&self) -> Clients {
        Clients {
            iam: mock_client!(aws_sdk_iam, RuleMode::MatchAny, self.iam.iter().copied()),
            ec2: mock_client!(aws_sdk_ec2, RuleMode::MatchAny, self.ec2.iter().copied()),
            sts: mock_client!(aws_sdk_sts, RuleMode::MatchAny, self.sts.iter().copied()),
            guardduty: mock_client!(aws_sdk_guardduty, RuleMode::MatchAny, self.guardduty.iter().copied()),
            dynamodb: mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, self.dynamodb.iter().copied()),
            scheduler: mock_client!(aws_sdk_scheduler, RuleMode::MatchAny, self.scheduler.iter().copied()),
            securityhub: mock_client!(
                aws_sdk_securityhub,
                RuleMode::MatchAny,
                self.securityhub.iter().copied()
            ),
            sns: mock_client!(aws_sdk_sns, RuleMode::MatchAny, self.sns.iter().copied()),
            cloudtrail: mock_client!(aws_sdk_cloudtrail, RuleMode::MatchAny, self.cloudtrail.iter().copied()),
            autoscaling: mock_client!(
                aws_sdk_autoscaling,
                RuleMode::MatchAny,
                self.autoscaling.iter().copied()
            ),
        }
    }

    /// The clients a finding in our own account is worked with.
    pub fn target(&self) -> Target {
        let c = self.clients();
        Target {
            iam: c.iam,
            ec2: c.ec2,
            guardduty: c.guardduty,
            cloudtrail: c.cloudtrail,
            autoscaling: c.autoscaling,
            session: None,
        }
    }

    pub fn app(&self, config: Config) -> App {
        App::new(config, self.clients())
    }
}

/// `DescribeIamInstanceProfileAssociations`' answer: (instance, association id, profile ARN, state).
pub fn associations(
    listed: &[(&str, &str, &str, &str)],
) -> aws_sdk_ec2::operation::describe_iam_instance_profile_associations::DescribeIamInstanceProfileAssociationsOutput {
    use aws_sdk_ec2::types::{IamInstanceProfile, IamInstanceProfileAssociation, IamInstanceProfileAssociationState};
    let listed = listed.iter().map(|(instance, id, profile, state)| {
        IamInstanceProfileAssociation::builder()
            .instance_id(*instance)
            .association_id(*id)
            .state(IamInstanceProfileAssociationState::from(*state))
            .iam_instance_profile(IamInstanceProfile::builder().arn(*profile).build())
            .build()
    });
    aws_sdk_ec2::operation::describe_iam_instance_profile_associations::DescribeIamInstanceProfileAssociationsOutput::builder()
        .set_iam_instance_profile_associations(Some(listed.collect()))
        .build()
}

/// The incident or request an `events/` file claims.
pub fn alleged_of(file: &str) -> crate::respond::establish::Alleged {
    use crate::finding::Triage;
    use crate::respond::establish::Alleged;
    let path = format!("{}/events/{file}", env!("CARGO_MANIFEST_DIR"));
    let value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    match crate::input::parse_payload(value)
        .unwrap()
        .items
        .pop()
        .unwrap()
        .unwrap()
    {
        Triage::Act(incident) => Alleged::Incident(Box::new(incident)),
        Triage::Fetch(request) => Alleged::Fetch(Box::new(request)),
        Triage::Skip { reason, .. } => panic!("{file} is skipped: {reason}"),
        Triage::Operate(op) => panic!("{file} is an operation: {op:?}"),
    }
}
