//! One scene of the reliability tests: an account of its own in the emulator, a role with its
//! profile, instances tagged with their actions, the claim table, and a fault proxy in front of
//! moto and the GuardDuty stand-in. The function reaches AWS only through the proxy.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_iam::config::Credentials;
use chrono::{DateTime, Utc};
use exfil_responder::config::Timeouts;
use exfil_responder::{App, Config};
use serde_json::Value;

use super::faults::{Proxy, Seen};
use super::guardduty::GuardDuty;
use super::invariants::{Baseline, Expect};
use super::runtime_api::{Answer, Function, Kind, RuntimeApi};
use super::*;

pub const TABLE: &str = "exfil-responder-claims";

pub struct Scene {
    pub account_id: String,
    pub account: Account,
    pub credentials: Credentials,
    pub role: SeededRole,
    /// The named instance first, then its siblings.
    pub expects: Vec<Expect>,
    pub proxy: Proxy,
    pub baseline: Baseline,
}

/// Timeouts generous enough that a loaded machine never turns a slow call into a retried write:
/// for the tests that count writes, and the processes.
pub fn patient_config() -> Config {
    Config {
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            attempt: Duration::from_secs(15),
            operation: Duration::from_secs(30),
        },
        ..test_config()
    }
}

/// Short timeouts, so that held requests fail fast; claims, archiving and verification on.
pub fn test_config() -> Config {
    Config {
        claim_table: Some(TABLE.into()),
        archive_findings: true,
        cycle_timeout: Duration::from_secs(10),
        timeouts: Timeouts {
            connect: Duration::from_millis(1000),
            attempt: Duration::from_millis(1500),
            operation: Duration::from_millis(4000),
        },
        ..Config::default()
    }
}

impl Scene {
    /// `actions[0]` tags the named instance, the rest its siblings.
    pub async fn new(moto: &Moto, guardduty: &GuardDuty, actions: &[&'static str]) -> Scene {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let account_id = format!("{}", 300_000_000_000u64 + n as u64);
        let credentials = moto.credentials_in(&account_id, "exfil-responder").await;
        guardduty.knows(credentials.access_key_id(), &account_id);
        let sdk = moto.sdk_with(credentials.clone(), REGION).await;
        let account = Account::new(&sdk);
        aws_sdk_dynamodb::Client::new(&sdk)
            .create_table()
            .table_name(TABLE)
            .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
            .key_schema(
                aws_sdk_dynamodb::types::KeySchemaElement::builder()
                    .attribute_name("role")
                    .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                aws_sdk_dynamodb::types::AttributeDefinition::builder()
                    .attribute_name("role")
                    .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let role = account.role("WebAppRole", &[]).await;
        let expects = instances(&account, &role, actions).await;
        let baseline = Baseline::take(&account, &role.name, &expects.iter().collect::<Vec<_>>()).await;
        // moto builds an account's EC2 backend for a region on its first request there (tens of
        // ms, holding its one interpreter), which AWS has no counterpart for: built here, as the
        // finding's region was by seeding, so no measured run pays for it.
        let other = aws_sdk_ec2::config::Builder::from(&sdk)
            .region(aws_sdk_ec2::config::Region::new(MEMBER_REGION))
            .build();
        aws_sdk_ec2::Client::from_conf(other)
            .describe_instances()
            .send()
            .await
            .unwrap();
        let proxy = Proxy::start(
            &moto.endpoint,
            &[("guardduty", &guardduty.endpoint), ("cloudtrail", &guardduty.endpoint)],
        );
        // Two enabled regions, not moto's thirty: see `Proxy::enable_regions`.
        proxy.enable_regions(&[REGION, MEMBER_REGION]);
        Scene {
            account_id,
            account,
            credentials,
            role,
            expects,
            proxy,
            baseline,
        }
    }

    /// A GuardDuty finding about the named instance, held by GuardDuty, with its own id.
    pub fn event(&self, guardduty: &GuardDuty, finding_id: &str) -> Value {
        self.event_for(guardduty, finding_id, &self.role, &self.expects[0].id)
    }

    pub fn event_for(&self, guardduty: &GuardDuty, finding_id: &str, role: &SeededRole, instance: &str) -> Value {
        let mut event = in_account(
            finding("outside-aws.json", role, Some(instance)),
            &self.account_id,
            REGION,
        );
        event["detail"]["id"] = finding_id.into();
        let detector = event["detail"]["service"]["detectorId"].as_str().unwrap().to_owned();
        event["detail"]["arn"] = format!(
            "arn:aws:guardduty:{REGION}:{}:detector/{detector}/finding/{finding_id}",
            self.account_id
        )
        .into();
        guardduty.publish(&event);
        event
    }

    /// The function in-process, as one Lambda execution environment, through the proxy.
    pub async fn app(&self, config: Config) -> App {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.proxy.endpoint)
            .region(aws_sdk_iam::config::Region::new(REGION))
            .credentials_provider(self.credentials.clone())
            .load()
            .await;
        app_at(&sdk, config, &Recorder::default(), &self.proxy.endpoint)
    }

    /// The release bootstrap as Lambda starts it in this scene's account, reaching AWS through the
    /// proxy: the template's defaults (verification and the claim table on, archiving off),
    /// credentials from the environment, the instance metadata service at `imds` (see
    /// `runtime_api::imds_counter`), and `extra` on top.
    pub fn function(&self, api: &RuntimeApi, imds: &str, extra: &[(&str, &str)]) -> Function {
        let mut env = self.lambda_env(imds);
        env.push(("CLAIM_TABLE", TABLE));
        env.extend_from_slice(extra);
        Function::start(api, &self.proxy.endpoint, &env)
    }

    /// What Lambda gives any runtime in this scene: the scene's credentials, and the instance
    /// metadata service at `imds`.
    fn lambda_env<'a>(&'a self, imds: &'a str) -> Vec<(&'a str, &'a str)> {
        let c = &self.credentials;
        vec![
            ("AWS_ACCESS_KEY_ID", c.access_key_id()),
            ("AWS_SECRET_ACCESS_KEY", c.secret_access_key()),
            ("AWS_SESSION_TOKEN", c.session_token().unwrap()),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds),
        ]
    }

    /// The reference peer (`tests/peer/handler.py`: the Python/boto3 responder a user would
    /// otherwise deploy) as Lambda's Python runtime runs it, `python -m awslambdaric
    /// handler.handler`, in this scene's account behind the same Runtime API and proxy, with the
    /// same credentials and instance metadata endpoint as [`Scene::function`].
    pub fn peer(&self, api: &RuntimeApi, imds: &str) -> Function {
        // The venv's python, beside its moto_server: awslambdaric and boto3 are installed there.
        let root = repo().join("tests/peer");
        let mut python = Command::new(moto_server().with_file_name("python"));
        python
            .args(["-m", "awslambdaric", "handler.handler"])
            .current_dir(&root);
        let mut env = self.lambda_env(imds);
        env.extend([
            ("_HANDLER", "handler.handler"),
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
        ]);
        Function::start_program(python, api, &self.proxy.endpoint, &env)
    }

    /// Invoke the function once; it must answer with a response of `outcome`. Returns the answer
    /// and the AWS requests the proxy saw meanwhile.
    pub fn invoke(&self, api: &mut RuntimeApi, event: Value, outcome: &str) -> (Answer, Vec<Seen>) {
        let before = self.proxy.seen().len();
        let answer = api.invoke(event);
        assert_eq!(answer.kind, Kind::Response, "{answer:?}");
        assert_eq!(answer.body["outcome"], outcome, "{}", answer.body);
        let seen = self.proxy.seen().into_iter().skip(before).collect();
        (answer, seen)
    }

    /// The function as its own process (the CLI on `payload`, through the proxy), not waited for.
    pub fn spawn(&self, payload: &Value, env: &[(&str, &str)]) -> Child {
        let timeouts = patient_config().timeouts;
        let mut child = Command::new(env!("CARGO_BIN_EXE_exfil-responder"))
            .args(["invoke", "--event", "-"])
            .env_clear()
            .env("AWS_ENDPOINT_URL", &self.proxy.endpoint)
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", self.credentials.access_key_id())
            .env("AWS_SECRET_ACCESS_KEY", self.credentials.secret_access_key())
            .env("AWS_SESSION_TOKEN", self.credentials.session_token().unwrap())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("CLAIM_TABLE", TABLE)
            .env("CYCLE_TIMEOUT_SECONDS", "10")
            .env("CONNECT_TIMEOUT_MS", timeouts.connect.as_millis().to_string())
            .env("ATTEMPT_TIMEOUT_MS", timeouts.attempt.as_millis().to_string())
            .env("OPERATION_TIMEOUT_MS", timeouts.operation.as_millis().to_string())
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run exfil-responder");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(payload.to_string().as_bytes()).unwrap();
        drop(stdin);
        child
    }

    pub async fn violations(&self, first_seen: &[DateTime<Utc>]) -> Vec<(String, String)> {
        let expects: Vec<&Expect> = self.expects.iter().collect();
        self.baseline
            .violations(&self.account, &self.proxy, &expects, first_seen)
            .await
    }
}

/// Instances holding `role`'s profile, tagged with `actions`.
pub async fn instances(account: &Account, role: &SeededRole, actions: &[&'static str]) -> Vec<Expect> {
    let mut out = Vec::new();
    for action in actions {
        let id = account
            .instance(
                Some(&role.profile_arn),
                &[("exfil-responder:action", action), ("team", "web")],
            )
            .await;
        out.push(Expect {
            id,
            profile: Some(role.profile_arn.clone()),
            action,
        });
    }
    out
}

/// The finding's first sighting.
pub fn first_seen(event: &Value) -> DateTime<Utc> {
    let text = event["detail"]["service"]["eventFirstSeen"].as_str().unwrap();
    DateTime::parse_from_rfc3339(text).unwrap().into()
}
