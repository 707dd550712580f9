//! The AWS clients. The function's own are built once per process. Those for the account and
//! region a finding takes us to are built on first use and kept for later invocations of a warm
//! Lambda; in another account they carry the member role's credentials, cached per account.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_sdk_iam::config::{Credentials, IdentityCache, Region};
use chrono::{DateTime, Utc};
use serde::Serialize;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use crate::accounts::{Reach, session_name};
use crate::config::Timeouts;
use crate::error::{Error, Result, code_and_message};

/// The function's own clients, in its own account and region.
#[derive(Clone, Debug)]
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub sts: aws_sdk_sts::Client,
    pub guardduty: aws_sdk_guardduty::Client,
    /// The revocation claims (`CLAIM_TABLE`), in our own account and region.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// The release schedules (`AUTO_RELEASE`), in our own account and region.
    pub scheduler: aws_sdk_scheduler::Client,
    /// The findings' workflow (`SECURITY_HUB_UPDATES`), from our own account, in their regions.
    pub securityhub: aws_sdk_securityhub::Client,
    /// The chat topic (`NOTIFICATION_TOPIC_ARN`), in its region.
    pub sns: aws_sdk_sns::Client,
    /// The stolen key's trail (`CHAIN`), in our own account; other accounts' through [`Target`].
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    /// An isolated instance's Auto Scaling group (`FORENSICS=snapshot`); through [`Target`].
    pub autoscaling: aws_sdk_autoscaling::Client,
}

impl Clients {
    /// Every client bounded by `timeouts`; member-account clients inherit them.
    pub fn new(sdk: &SdkConfig, timeouts: &Timeouts) -> Self {
        let sdk = sdk.to_builder().timeout_config(timeout_config(timeouts)).build();
        Self {
            iam: aws_sdk_iam::Client::new(&sdk),
            ec2: aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&sdk)
                    .retry_config(ec2_retries())
                    .build(),
            ),
            sts: aws_sdk_sts::Client::new(&sdk),
            guardduty: aws_sdk_guardduty::Client::new(&sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            scheduler: aws_sdk_scheduler::Client::new(&sdk),
            securityhub: aws_sdk_securityhub::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            cloudtrail: aws_sdk_cloudtrail::Client::from_conf(
                aws_sdk_cloudtrail::config::Builder::from(&sdk)
                    .retry_config(RetryConfig::disabled())
                    .build(),
            ),
            autoscaling: aws_sdk_autoscaling::Client::new(&sdk),
        }
    }

    pub fn region(&self) -> Option<String> {
        self.ec2.config().region().map(|r| r.to_string())
    }
}

/// EC2 throttles each action per account and Region with a token bucket, and a fleet's cycle
/// spends its mutating tokens (two `CreateTags`, a detach and an attach per instance) faster than
/// they refill. The adaptive mode slows this client's sending once EC2 answers
/// `RequestLimitExceeded` (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html),
/// and more attempts let a throttled call wait for tokens instead of failing the instance; each
/// call stays bounded by the operation timeout.
fn ec2_retries() -> RetryConfig {
    RetryConfig::adaptive()
        .with_max_attempts(EC2_ATTEMPTS)
        .with_max_backoff(Duration::from_secs(5))
}

/// Attempts per EC2 call (the SDK's default is 3), chosen with `make bench`'s throttled fleet.
const EC2_ATTEMPTS: u32 = 10;

/// The region an EC2 client is in (empty if it has none).
pub fn region_of(ec2: &aws_sdk_ec2::Client) -> String {
    ec2.config().region().map(|r| r.to_string()).unwrap_or_default()
}

/// `$name(client, region)`: the same client (credentials, endpoint, interceptors, retries) for
/// another region, or the client itself if it is there already. One function per service: each
/// SDK's client is a type of its own.
macro_rules! in_region {
    ($($(#[$doc:meta])* $name:ident: $sdk:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(client: &$sdk::Client, region: &str) -> $sdk::Client {
            if client.config().region().is_some_and(|r| r.as_ref() == region) {
                return client.clone();
            }
            let conf = client.config().to_builder().region(Region::new(region.to_owned())).build();
            $sdk::Client::from_conf(conf)
        }
    )*};
}

in_region! {
    /// The same EC2 client for another region.
    ec2_in: aws_sdk_ec2;
    /// The same GuardDuty client for another region.
    guardduty_in: aws_sdk_guardduty;
    /// The same Security Hub client for another region.
    securityhub_in: aws_sdk_securityhub;
    /// The same CloudTrail client for another region. Its retries are off: `aws::cloudtrail`
    /// retries within CloudTrail's rate.
    cloudtrail_in: aws_sdk_cloudtrail;
    /// The same SNS client for another region.
    sns_in: aws_sdk_sns;
    /// The same Auto Scaling client for another region.
    autoscaling_in: aws_sdk_autoscaling;
}

/// A call that hangs (a dropped connection, an unanswered request) fails and is retried instead.
pub fn timeout_config(t: &Timeouts) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(t.connect)
        .operation_attempt_timeout(t.attempt)
        .operation_timeout(t.operation)
        .build()
}

/// The member-role session a target's clients act through.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub role_arn: String,
    /// CloudTrail records the member account's calls as `assumed-role/<role>/<session name>`.
    pub session_name: String,
    pub expires: DateTime<Utc>,
}

/// The clients one finding is worked with: IAM (global), and EC2 and GuardDuty in the finding's region.
#[derive(Clone, Debug)]
pub struct Target {
    pub iam: aws_sdk_iam::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub guardduty: aws_sdk_guardduty::Client,
    /// The account's trail in this region (the walk asks every enabled region: `cloudtrail_in`).
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    /// Auto Scaling in this region (an instance's own region: `autoscaling_in`).
    pub autoscaling: aws_sdk_autoscaling::Client,
    /// Set when the finding's account is not ours.
    pub session: Option<Session>,
}

/// Member-role sessions last an hour: the most STS grants when one role assumes another.
const SESSION_SECONDS: i32 = 3600;
/// An invocation runs for at most 15 minutes, so credentials with more left than this cannot
/// expire during one; older ones are replaced before the invocation starts work.
const REFRESH_BEFORE: Duration = Duration::from_secs(15 * 60);

struct Cached {
    credentials: Credentials,
    session: Session,
}

/// The credentials per member account and the clients per (account, region), kept across
/// invocations of a warm Lambda.
#[derive(Default)]
pub struct Pool {
    sessions: tokio::sync::Mutex<HashMap<String, Cached>>,
    targets: Mutex<HashMap<(String, String), Target>>,
}

impl Pool {
    /// The clients for `account` and `region`, reached as `reach` says. An AssumeRole failure is
    /// an error naming the account and role, and nothing has been done in that account yet.
    pub async fn target(
        &self,
        home: &Clients,
        reach: &Reach,
        account: &str,
        region: &str,
        finding_id: &str,
        external_id: Option<&str>,
    ) -> Result<Target> {
        let key = (account.to_owned(), region.to_owned());
        let role_arn = match reach {
            Reach::Home => {
                let mut targets = self.targets.lock().unwrap_or_else(|p| p.into_inner());
                let target = targets.entry(key).or_insert_with(|| Target {
                    iam: home.iam.clone(),
                    ec2: ec2_in(&home.ec2, region),
                    guardduty: guardduty_in(&home.guardduty, region),
                    cloudtrail: cloudtrail_in(&home.cloudtrail, region),
                    autoscaling: autoscaling_in(&home.autoscaling, region),
                    session: None,
                });
                return Ok(target.clone());
            }
            Reach::Member { role_arn } => role_arn,
        };
        // Held across AssumeRole, so that concurrent callers for one account assume it once.
        let mut sessions = self.sessions.lock().await;
        let fresh = |c: &Cached| SystemTime::from(c.session.expires) > SystemTime::now() + REFRESH_BEFORE;
        let reusable = sessions
            .get(account)
            .is_some_and(|c| fresh(c) && c.session.role_arn == *role_arn);
        if !reusable {
            let assumed = assume(&home.sts, account, role_arn, finding_id, external_id).await?;
            tracing::info!(
                account,
                role_arn = %assumed.session.role_arn,
                session_name = %assumed.session.session_name,
                expires = %assumed.session.expires,
                "assumed the member role"
            );
            // Clients built on the replaced credentials must not be handed out again.
            self.targets
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|(a, _), _| a != account);
            sessions.insert(account.to_owned(), assumed);
        }
        let cached = &sessions[account];
        let mut targets = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        let target = targets
            .entry(key)
            .or_insert_with(|| member_target(home, cached, region));
        Ok(target.clone())
    }
}

async fn assume(
    sts: &aws_sdk_sts::Client,
    account: &str,
    role_arn: &str,
    finding_id: &str,
    external_id: Option<&str>,
) -> Result<Cached> {
    let session_name = session_name(finding_id);
    let failed = |code: Option<String>, message: String| Error::AssumeRole {
        account: account.to_owned(),
        role_arn: role_arn.to_owned(),
        code,
        message,
    };
    let out = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(&session_name)
        .set_external_id(external_id.map(str::to_owned))
        .duration_seconds(SESSION_SECONDS)
        .send()
        .await
        .map_err(|e| {
            let (code, message) = code_and_message(&e);
            failed(code, message)
        })?;
    let c = out
        .credentials
        .ok_or_else(|| failed(None, "AssumeRole answered without credentials".into()))?;
    let expires = SystemTime::try_from(c.expiration)
        .map_err(|_| failed(None, "AssumeRole answered with an unreadable expiry".into()))?;
    Ok(Cached {
        credentials: Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            Some(c.session_token),
            Some(expires),
            "exfil-responder-member-role",
        ),
        session: Session {
            role_arn: role_arn.to_owned(),
            session_name,
            expires: expires.into(),
        },
    })
}

/// The home clients' settings (endpoint, timeouts, interceptors) with the member credentials.
/// No identity cache: the credentials are fixed, and the pool replaces them before they expire.
fn member_target(home: &Clients, cached: &Cached, region: &str) -> Target {
    let region = Region::new(region.to_owned());
    let iam = home
        .iam
        .config()
        .to_builder()
        .credentials_provider(cached.credentials.clone())
        .identity_cache(IdentityCache::no_cache())
        .build();
    let ec2 = home
        .ec2
        .config()
        .to_builder()
        .region(region.clone())
        .credentials_provider(cached.credentials.clone())
        .identity_cache(IdentityCache::no_cache())
        .build();
    let guardduty = home
        .guardduty
        .config()
        .to_builder()
        .region(region.clone())
        .credentials_provider(cached.credentials.clone())
        .identity_cache(IdentityCache::no_cache())
        .build();
    let cloudtrail = home
        .cloudtrail
        .config()
        .to_builder()
        .region(region.clone())
        .credentials_provider(cached.credentials.clone())
        .identity_cache(IdentityCache::no_cache())
        .build();
    let autoscaling = home
        .autoscaling
        .config()
        .to_builder()
        .region(region)
        .credentials_provider(cached.credentials.clone())
        .identity_cache(IdentityCache::no_cache())
        .build();
    Target {
        iam: aws_sdk_iam::Client::from_conf(iam),
        ec2: aws_sdk_ec2::Client::from_conf(ec2),
        guardduty: aws_sdk_guardduty::Client::from_conf(guardduty),
        cloudtrail: aws_sdk_cloudtrail::Client::from_conf(cloudtrail),
        autoscaling: aws_sdk_autoscaling::Client::from_conf(autoscaling),
        session: Some(cached.session.clone()),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sts::operation::assume_role::{AssumeRoleError, AssumeRoleOutput};
    use aws_sdk_sts::types::Credentials as StsCredentials;
    use aws_sdk_sts::types::error::MalformedPolicyDocumentException;
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};

    use super::*;

    const ROLE: &str = "arn:aws:iam::222222222222:role/exfil-responder-member";

    fn assumed(expires_in: Duration) -> Rule {
        mock!(aws_sdk_sts::Client::assume_role)
            .match_requests(|r| {
                r.role_arn() == Some(ROLE)
                    && r.role_session_name() == Some("exfil-responder-f1")
                    && r.external_id() == Some("o-x:exfil")
                    && r.duration_seconds() == Some(SESSION_SECONDS)
            })
            .then_output(move || {
                let expires = SystemTime::now() + expires_in;
                AssumeRoleOutput::builder()
                    .credentials(
                        StsCredentials::builder()
                            .access_key_id("ASIAMEMBER")
                            .secret_access_key("secret")
                            .session_token("token")
                            .expiration(expires.into())
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
    }

    fn home(sts_rules: &[&Rule]) -> Clients {
        Clients {
            iam: mock_client!(aws_sdk_iam, RuleMode::MatchAny, []),
            ec2: mock_client!(aws_sdk_ec2, RuleMode::MatchAny, []),
            sts: mock_client!(aws_sdk_sts, RuleMode::Sequential, sts_rules),
            guardduty: mock_client!(aws_sdk_guardduty, RuleMode::MatchAny, []),
            dynamodb: mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, []),
            scheduler: mock_client!(aws_sdk_scheduler, RuleMode::MatchAny, []),
            securityhub: mock_client!(aws_sdk_securityhub, RuleMode::MatchAny, []),
            sns: mock_client!(aws_sdk_sns, RuleMode::MatchAny, []),
            cloudtrail: mock_client!(aws_sdk_cloudtrail, RuleMode::MatchAny, []),
            autoscaling: mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, []),
        }
    }

    fn member() -> Reach {
        Reach::Member { role_arn: ROLE.into() }
    }

    async fn target(pool: &Pool, home: &Clients, region: &str) -> Result<Target> {
        pool.target(home, &member(), "222222222222", region, "f1", Some("o-x:exfil"))
            .await
    }

    #[tokio::test]
    async fn member_credentials_are_assumed_once_per_account_and_shared_by_regions() {
        let once = assumed(Duration::from_secs(3600));
        let home = home(&[&once]);
        let pool = Pool::default();
        let east = target(&pool, &home, "us-east-1").await.unwrap();
        let west = target(&pool, &home, "eu-west-1").await.unwrap();
        let again = target(&pool, &home, "eu-west-1").await.unwrap();
        assert_eq!(once.num_calls(), 1);
        assert_eq!(west.ec2.config().region().unwrap().as_ref(), "eu-west-1");
        assert_eq!(again.guardduty.config().region().unwrap().as_ref(), "eu-west-1");
        assert_eq!(east.ec2.config().region().unwrap().as_ref(), "us-east-1");
        let session = west.session.unwrap();
        assert_eq!(
            (session.role_arn.as_str(), session.session_name.as_str()),
            (ROLE, "exfil-responder-f1")
        );
    }

    #[tokio::test]
    async fn credentials_too_close_to_expiry_for_a_whole_invocation_are_replaced() {
        let short = assumed(REFRESH_BEFORE - Duration::from_secs(60));
        let long = assumed(Duration::from_secs(3600));
        let home = home(&[&short, &long]);
        let pool = Pool::default();
        let first = target(&pool, &home, "eu-west-1").await.unwrap();
        let second = target(&pool, &home, "eu-west-1").await.unwrap();
        assert_eq!((short.num_calls(), long.num_calls()), (1, 1));
        assert!(second.session.unwrap().expires > first.session.unwrap().expires);
    }

    #[tokio::test]
    async fn an_assume_role_failure_names_the_account_and_role_and_is_retryable() {
        let denied = mock!(aws_sdk_sts::Client::assume_role).then_error(|| {
            AssumeRoleError::MalformedPolicyDocumentException(
                MalformedPolicyDocumentException::builder()
                    .message("not authorized to perform sts:AssumeRole")
                    .build(),
            )
        });
        let home = home(&[&denied]);
        let err = target(&Pool::default(), &home, "eu-west-1").await.unwrap_err();
        assert!(matches!(err, Error::AssumeRole { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("222222222222") && text.contains(ROLE), "{text}");
        assert!(err.kind().starts_with("AssumeRole."), "{}", err.kind());
    }

    #[tokio::test]
    async fn the_home_account_uses_the_functions_own_credentials() {
        let home = home(&[]);
        let target = Pool::default()
            .target(&home, &Reach::Home, "111111111111", "eu-west-1", "f1", None)
            .await
            .unwrap();
        assert!(target.session.is_none());
        assert_eq!(target.ec2.config().region().unwrap().as_ref(), "eu-west-1");
    }
}
