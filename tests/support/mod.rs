//! Test harness: the moto server (the local AWS emulator) on a free loopback port, real SDK
//! clients pointed at it, an operation recorder, seeding helpers, and events from `events/`.
#![allow(dead_code)] // each test binary uses part of it

pub mod cloudtrail;
pub mod faults;
pub mod guardduty;
pub mod invariants;
pub mod measure;
pub mod rie;
pub mod runtime_api;
pub mod scene;
pub mod securityhub;
pub mod world;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_ec2::types::{
    IamInstanceProfileSpecification, InstanceStateName, ResourceType, Tag as Ec2Tag, TagSpecification,
};
use aws_sdk_iam::config::{ConfigBag, Credentials, Intercept, Region, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use exfil_responder::{App, Clients, Config};
use serde_json::Value;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
/// The member account and region of the cross-account tests: not the function's.
pub const MEMBER: &str = "210987654321";
pub const MEMBER_REGION: &str = "eu-west-1";
pub const MEMBER_ROLE: &str = "exfil-responder-member";
/// An AMI in moto's built-in catalogue.
pub const AMI: &str = "ami-12c6146b";
pub const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's moto_server (`MOTO_SERVER`, which the Makefile sets); its python is beside it.
pub fn moto_server() -> PathBuf {
    std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/moto_server"))
}

/// A moto server of our own, stopped (by its PID) when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        let server = moto_server();
        assert!(
            server.exists(),
            "moto_server not found at {}: run `make venv` (make test does it for you)",
            server.display()
        );
        // A freed port can be taken before moto binds it; then moto exits and we try another.
        let mut failures = Vec::new();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start moto_server");
            match ready(child.stderr.take().expect("piped stderr")) {
                Ok(()) => {
                    return Moto {
                        child,
                        endpoint: format!("http://127.0.0.1:{port}"),
                    };
                }
                Err(log) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    failures.push(log);
                }
            }
        }
        panic!(
            "moto_server did not start on any of 5 ports:\n{}",
            failures.join("\n---\n")
        );
    }

    pub async fn sdk(&self) -> SdkConfig {
        self.sdk_with(Credentials::new("testing", "testing", None, None, "moto"), REGION)
            .await
    }

    /// Credentials that moto takes as `account`'s: a session of `role` there, assumed from the
    /// default account (moto checks no trust policy, and the role need not exist).
    pub async fn credentials_in(&self, account: &str, role: &str) -> Credentials {
        let sts = aws_sdk_sts::Client::new(&self.sdk().await);
        let c = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/{role}"))
            .role_session_name(role)
            .send()
            .await
            .unwrap()
            .credentials
            .unwrap();
        Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            Some(c.session_token),
            None,
            "moto",
        )
    }

    pub async fn sdk_with(&self, credentials: Credentials, region: &str) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(region.to_owned()))
            .credentials_provider(credentials)
            .load()
            .await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait for the server's own word that it listens: werkzeug prints "Running on" once its socket
/// is bound. A reader thread keeps draining stderr so the server never blocks on a full pipe.
/// Err carries what the server printed, if it exited or stayed silent for 60 s.
fn ready(stderr: std::process::ChildStderr) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut printed = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("Running on") {
                let _ = tx.send(Ok(()));
            } else if printed.len() < 16_384 {
                printed += &line;
                printed.push('\n');
            }
        }
        let _ = tx.send(Err(printed)); // the server exited
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(result) => result,
        Err(_) => Err("no \"Running on\" line within 60 s".into()),
    }
}

/// Records every AWS operation a client sends, in order: independent proof of what was written.
/// (At `read_before_serialization`: earlier hooks run before the operation's name is known.)
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<String>>>);

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "Recorder"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            self.0.lock().unwrap().push(meta.name().to_owned());
        }
        Ok(())
    }
}

pub const WRITES: [&str; 18] = [
    "PutRolePolicy",
    "CreatePolicy",
    "AttachRolePolicy",
    "TagRole",
    "CreateTags",
    "DisassociateIamInstanceProfile",
    "AssociateIamInstanceProfile",
    "RebootInstances",
    "ArchiveFindings",
    "DeleteRolePolicy",
    "DetachRolePolicy",
    "DeleteTags",
    "ModifyInstanceAttribute",
    "CreateSnapshots",
    "ModifyInstanceMetadataOptions",
    "EnterStandby",
    "CreateSchedule",
    "UpdateAccessKey",
];

impl Recorder {
    pub fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub fn writes(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| WRITES.contains(&c.as_str()))
            .collect()
    }

    pub fn count(&self, op: &str) -> usize {
        self.calls().iter().filter(|c| *c == op).count()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// Skipped: the reason says `why`, and not one write was sent.
pub fn assert_skipped_without_writes(report: &Value, recorder: &Recorder, why: &str) {
    assert_eq!(report["outcome"], "skipped", "{report:#}");
    let reason = report["outcomeReason"].as_str().unwrap_or_default();
    assert!(reason.contains(why), "reason {reason:?} does not say {why:?}");
    assert!(recorder.writes().is_empty(), "{:?}", recorder.writes());
}

/// One account with WebAppRole seeded, the GuardDuty stand-in beside the emulator, and the
/// handler's calls recorded: what the tests of the operations after containment start from.
pub struct World {
    pub moto: Moto,
    pub sdk: SdkConfig,
    pub account: Account,
    pub recorder: Recorder,
    pub role: SeededRole,
    pub guardduty: guardduty::GuardDuty,
}

impl World {
    pub async fn start() -> World {
        let moto = Moto::start();
        let sdk = moto.sdk().await;
        let account = Account::new(&sdk);
        let role = account.role("WebAppRole", &[]).await;
        let guardduty = guardduty::GuardDuty::start(&moto);
        World {
            moto,
            sdk,
            account,
            recorder: Recorder::default(),
            role,
            guardduty,
        }
    }

    /// Handle `payload`, each GuardDuty event in it a finding GuardDuty holds: the report, and
    /// whether the invocation succeeded.
    pub async fn run(&self, payload: Value, config: Config) -> (Value, bool) {
        self.guardduty.publish(&payload);
        let handled = exfil_responder::handle(&app(&self.sdk, config, &self.recorder, &self.guardduty), payload).await;
        (report(&handled.response), handled.failure.is_none())
    }
}

/// The function under test: real SDK clients against moto (GuardDuty against the stand-in), recorded.
pub fn app(sdk: &SdkConfig, config: Config, recorder: &Recorder, guardduty: &guardduty::GuardDuty) -> App {
    app_at(sdk, config, recorder, &guardduty.endpoint)
}

/// As [`app`], with GuardDuty at `guardduty_endpoint`, and the SDK timeouts the config sets.
pub fn app_at(sdk: &SdkConfig, config: Config, recorder: &Recorder, guardduty_endpoint: &str) -> App {
    let sdk = &sdk
        .to_builder()
        .timeout_config(exfil_responder::aws::clients::timeout_config(&config.timeouts))
        .build();
    let iam = aws_sdk_iam::config::Builder::from(sdk)
        .interceptor(recorder.clone())
        .build();
    let ec2 = aws_sdk_ec2::config::Builder::from(sdk)
        .interceptor(recorder.clone())
        .build();
    let sts = aws_sdk_sts::config::Builder::from(sdk)
        .interceptor(recorder.clone())
        .build();
    let gd = aws_sdk_guardduty::config::Builder::from(sdk)
        .endpoint_url(guardduty_endpoint)
        .interceptor(recorder.clone())
        .build();
    let ddb = aws_sdk_dynamodb::config::Builder::from(sdk)
        .interceptor(recorder.clone())
        .build();
    let scheduler = aws_sdk_scheduler::config::Builder::from(sdk)
        .interceptor(recorder.clone())
        .build();
    // moto has no BatchUpdateFindings: Security Hub's stand-in answers it, beside GuardDuty's.
    let securityhub = aws_sdk_securityhub::config::Builder::from(sdk)
        .endpoint_url(guardduty_endpoint)
        .interceptor(recorder.clone())
        .build();
    let sns = aws_sdk_sns::config::Builder::from(sdk)
        .interceptor(recorder.clone())
        .build();
    // moto has no LookupEvents: CloudTrail's stand-in answers it, beside GuardDuty's. Its retries
    // are off, as the function's own client's are (it retries within CloudTrail's rate).
    let cloudtrail = aws_sdk_cloudtrail::config::Builder::from(sdk)
        .endpoint_url(guardduty_endpoint)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .interceptor(recorder.clone())
        .build();
    let autoscaling = aws_sdk_autoscaling::config::Builder::from(sdk)
        .interceptor(recorder.clone())
        .build();
    App::new(
        config,
        Clients {
            iam: aws_sdk_iam::Client::from_conf(iam),
            ec2: aws_sdk_ec2::Client::from_conf(ec2),
            sts: aws_sdk_sts::Client::from_conf(sts),
            guardduty: aws_sdk_guardduty::Client::from_conf(gd),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(ddb),
            scheduler: aws_sdk_scheduler::Client::from_conf(scheduler),
            securityhub: aws_sdk_securityhub::Client::from_conf(securityhub),
            sns: aws_sdk_sns::Client::from_conf(sns),
            cloudtrail: aws_sdk_cloudtrail::Client::from_conf(cloudtrail),
            autoscaling: aws_sdk_autoscaling::Client::from_conf(autoscaling),
        },
    )
}

/// Seeds and inspects the emulator, with clients the function under test does not share.
pub struct Account {
    pub iam: aws_sdk_iam::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub sts: aws_sdk_sts::Client,
}

#[derive(Clone)]
pub struct SeededRole {
    pub name: String,
    pub id: String,
    pub arn: String,
    pub profile_arn: String,
}

impl Account {
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            iam: aws_sdk_iam::Client::new(sdk),
            ec2: aws_sdk_ec2::Client::new(sdk),
            sts: aws_sdk_sts::Client::new(sdk),
        }
    }

    /// Another account in the emulator: moto keeps each account apart by the credentials' account,
    /// so the seeding clients assume a role there (moto checks no trust policy).
    pub async fn other(moto: &Moto, account: &str, region: &str) -> Self {
        let credentials = moto.credentials_in(account, "test-seeder").await;
        Self::new(&moto.sdk_with(credentials, region).await)
    }

    pub fn in_region(&self, region: &str) -> aws_sdk_ec2::Client {
        exfil_responder::aws::clients::ec2_in(&self.ec2, region)
    }

    /// A role with tags, and an instance profile (same name + "Profile") holding it.
    pub async fn role(&self, name: &str, tags: &[(&str, &str)]) -> SeededRole {
        let tags: Vec<_> = tags
            .iter()
            .map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(*k).value(*v).build().unwrap())
            .collect();
        let role = self
            .iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(TRUST)
            .set_tags(Some(tags))
            .send()
            .await
            .unwrap()
            .role
            .unwrap();
        let profile_arn = self.profile(&format!("{name}Profile"), name).await;
        SeededRole {
            name: name.into(),
            id: role.role_id,
            arn: role.arn,
            profile_arn,
        }
    }

    pub async fn profile(&self, profile: &str, role: &str) -> String {
        let arn = self
            .iam
            .create_instance_profile()
            .instance_profile_name(profile)
            .send()
            .await
            .unwrap()
            .instance_profile
            .unwrap()
            .arn;
        self.iam
            .add_role_to_instance_profile()
            .instance_profile_name(profile)
            .role_name(role)
            .send()
            .await
            .unwrap();
        arn
    }

    /// A running instance with the given profile (if any) and tags; returns its id.
    pub async fn instance(&self, profile_arn: Option<&str>, tags: &[(&str, &str)]) -> String {
        self.instance_in(&self.ec2, profile_arn, tags).await
    }

    pub async fn instance_in(
        &self,
        ec2: &aws_sdk_ec2::Client,
        profile_arn: Option<&str>,
        tags: &[(&str, &str)],
    ) -> String {
        let mut run = ec2.run_instances().image_id(AMI).min_count(1).max_count(1);
        if let Some(arn) = profile_arn {
            run = run.iam_instance_profile(IamInstanceProfileSpecification::builder().arn(arn).build());
        }
        if !tags.is_empty() {
            let tags = tags.iter().map(|(k, v)| Ec2Tag::builder().key(*k).value(*v).build());
            run = run.tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .set_tags(Some(tags.collect()))
                    .build(),
            );
        }
        run.send()
            .await
            .unwrap()
            .instances
            .unwrap()
            .remove(0)
            .instance_id
            .unwrap()
    }

    /// A new managed policy at `path` with `document`, attached to `role`; returns its ARN.
    pub async fn attach_new_policy(&self, role: &str, (name, path): (&str, &str), document: &str) -> String {
        let arn = self
            .iam
            .create_policy()
            .policy_name(name)
            .path(path)
            .policy_document(document)
            .send()
            .await
            .unwrap()
            .policy
            .unwrap()
            .arn
            .unwrap();
        self.iam
            .attach_role_policy()
            .role_name(role)
            .policy_arn(&arn)
            .send()
            .await
            .unwrap();
        arn
    }

    pub async fn policy_names(&self, role: &str) -> Vec<String> {
        self.iam
            .list_role_policies()
            .role_name(role)
            .send()
            .await
            .unwrap()
            .policy_names
    }

    /// The role's tags, as IAM lists them.
    pub async fn role_tags(&self, role: &str) -> BTreeMap<String, String> {
        let out = self.iam.list_role_tags().role_name(role).send().await.unwrap();
        out.tags.into_iter().map(|t| (t.key, t.value)).collect()
    }

    /// Write `document` as the role's AWSRevokeOlderSessions, as the function does.
    pub async fn put_revocation(&self, role: &str, document: &str) {
        self.iam
            .put_role_policy()
            .role_name(role)
            .policy_name("AWSRevokeOlderSessions")
            .policy_document(document)
            .send()
            .await
            .unwrap();
    }

    /// Our exact revocation document, with a cut-off `hours_ago`, written inline; returned.
    pub async fn revoked_hours_ago(&self, role: &str, hours_ago: i64) -> String {
        let cutoff = exfil_responder::policy::cutoff_at(chrono::Utc::now() - chrono::Duration::hours(hours_ago));
        let document = exfil_responder::policy::document(cutoff);
        self.put_revocation(role, &document).await;
        document
    }

    /// The decoded AWSRevokeOlderSessions document, if the role has one.
    pub async fn revocation(&self, role: &str) -> Option<String> {
        let out = self
            .iam
            .get_role_policy()
            .role_name(role)
            .policy_name("AWSRevokeOlderSessions")
            .send()
            .await
            .ok()?;
        Some(percent_decode(&out.policy_document))
    }

    /// The decoded document of the managed fallback attached to the role (written when its
    /// inline quota is full), if one is.
    pub async fn fallback_revocation(&self, role: &str) -> Option<String> {
        let arn = fallback_arns(self, role).await.into_iter().next()?;
        let policy = self.iam.get_policy().policy_arn(&arn).send().await.unwrap().policy?;
        let version = self
            .iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(policy.default_version_id?)
            .send()
            .await
            .unwrap()
            .policy_version?;
        Some(percent_decode(&version.document?))
    }

    /// The cut-off in force on the role: the later of the inline revocation and the fallback.
    pub async fn cutoff_in_force(&self, role: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        let inline = self.revocation(role).await.map(|d| cutoff_of(&d));
        let managed = self.fallback_revocation(role).await.map(|d| cutoff_of(&d));
        inline.max(managed)
    }

    /// The current (associated or associating) association: (association id, profile ARN).
    pub async fn association(&self, instance: &str) -> Option<(String, String)> {
        self.association_in(&self.ec2, instance).await
    }

    pub async fn association_in(&self, ec2: &aws_sdk_ec2::Client, instance: &str) -> Option<(String, String)> {
        let filter = aws_sdk_ec2::types::Filter::builder()
            .name("instance-id")
            .values(instance)
            .build();
        let out = ec2
            .describe_iam_instance_profile_associations()
            .filters(filter)
            .send()
            .await
            .unwrap();
        out.iam_instance_profile_associations
            .unwrap_or_default()
            .into_iter()
            .find_map(|a| {
                let state = a.state.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
                matches!(state.as_str(), "associated" | "associating").then(|| {
                    (
                        a.association_id.unwrap(),
                        a.iam_instance_profile.and_then(|p| p.arn).unwrap(),
                    )
                })
            })
    }

    /// Tag an instance (as a person, or what launched it, would).
    pub async fn tag(&self, instance: &str, tags: &[(&str, &str)]) {
        let tags = tags.iter().map(|(k, v)| Ec2Tag::builder().key(*k).value(*v).build());
        (self.ec2.create_tags().resources(instance))
            .set_tags(Some(tags.collect()))
            .send()
            .await
            .unwrap();
    }

    pub async fn tags(&self, instance: &str) -> BTreeMap<String, String> {
        self.tags_in(&self.ec2, instance).await
    }

    pub async fn tags_in(&self, ec2: &aws_sdk_ec2::Client, instance: &str) -> BTreeMap<String, String> {
        let out = ec2.describe_instances().instance_ids(instance).send().await.unwrap();
        let inst = out.reservations.unwrap().remove(0).instances.unwrap().remove(0);
        inst.tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.key.unwrap(), t.value.unwrap_or_default()))
            .collect()
    }

    pub async fn terminate(&self, instance: &str) {
        self.ec2
            .terminate_instances()
            .instance_ids(instance)
            .send()
            .await
            .unwrap();
        assert_eq!(self.state(instance).await, InstanceStateName::Terminated.as_str());
    }

    /// The instance as EC2 describes it.
    pub async fn described(&self, instance: &str) -> aws_sdk_ec2::types::Instance {
        let out = self
            .ec2
            .describe_instances()
            .instance_ids(instance)
            .send()
            .await
            .unwrap();
        out.reservations()[0].instances()[0].clone()
    }

    /// The instance's metadata `HttpTokens` (`required`: IMDSv2 only).
    pub async fn http_tokens(&self, instance: &str) -> Option<String> {
        let inst = self.described(instance).await;
        inst.metadata_options()?.http_tokens().map(|t| t.as_str().to_owned())
    }

    /// The instance's metadata `HttpPutResponseHopLimit`.
    pub async fn hop_limit(&self, instance: &str) -> Option<i32> {
        let inst = self.described(instance).await;
        inst.metadata_options()?.http_put_response_hop_limit()
    }

    /// Set the instance's metadata `HttpPutResponseHopLimit`, straight in the emulator.
    pub async fn set_hop_limit(&self, instance: &str, hops: i32) {
        self.ec2
            .modify_instance_metadata_options()
            .instance_id(instance)
            .http_put_response_hop_limit(hops)
            .send()
            .await
            .unwrap();
    }

    /// The instance's state name (`running`, `terminated`, ...).
    pub async fn state(&self, instance: &str) -> String {
        let inst = self.described(instance).await;
        inst.state().and_then(|s| s.name()).unwrap().as_str().to_owned()
    }

    /// Everything the function may change, to compare before and after.
    pub async fn snapshot(&self, role: &str, instances: &[&str]) -> String {
        let mut out = format!(
            "policies={:?} revocation={:?}\n",
            self.policy_names(role).await,
            self.revocation(role).await
        );
        for i in instances {
            out += &format!(
                "{i}: assoc={:?} tags={:?}\n",
                self.association(i).await,
                self.tags(i).await
            );
        }
        out
    }
}

/// The common case: role WebAppRole (with its profile) and one instance tagged with `action`.
pub async fn web_app(moto: &Moto, action: &str) -> (Account, SeededRole, String) {
    let account = Account::new(&moto.sdk().await);
    let role = account.role("WebAppRole", &[]).await;
    let named = account
        .instance(Some(&role.profile_arn), &[("exfil-responder:action", action)])
        .await;
    (account, role, named)
}

pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

/// The cut-off in a revocation document.
pub fn cutoff_of(document: &str) -> chrono::DateTime<chrono::Utc> {
    let doc: Value = serde_json::from_str(document).unwrap();
    let text = doc["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
        .as_str()
        .unwrap();
    chrono::DateTime::parse_from_rfc3339(text).unwrap().into()
}

pub fn event_file(name: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("events").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// An `events/` finding pointed at seeded resources (the emulator makes its own ids).
pub fn finding(name: &str, role: &SeededRole, instance: Option<&str>) -> Value {
    let mut event = event_file(name);
    let detail = &mut event["detail"];
    let keys = &mut detail["resource"]["accessKeyDetails"];
    keys["userName"] = role.name.clone().into();
    let session = instance.unwrap_or("some-session");
    keys["principalId"] = format!("{}:{session}", role.id).into();
    match instance {
        Some(id) => detail["resource"]["instanceDetails"]["instanceId"] = id.into(),
        None => {
            detail["resource"].as_object_mut().unwrap().remove("instanceDetails");
        }
    }
    event
}

/// The same event about another finding id (its ARN names the id too).
pub fn with_id(mut event: Value, id: &str) -> Value {
    let old = event["detail"]["id"].as_str().unwrap().to_owned();
    let arn = event["detail"]["arn"]
        .as_str()
        .unwrap()
        .replace(&format!("/finding/{old}"), &format!("/finding/{id}"));
    event["detail"]["id"] = id.into();
    event["detail"]["arn"] = arn.into();
    event
}

/// The event as the administrator account receives it for a finding in `account` and `region`.
pub fn in_account(mut event: Value, account: &str, region: &str) -> Value {
    let detail = &mut event["detail"];
    let detector = detail["service"]["detectorId"].as_str().unwrap().to_owned();
    let id = detail["id"].as_str().unwrap().to_owned();
    detail["accountId"] = account.into();
    detail["region"] = region.into();
    detail["arn"] = format!("arn:aws:guardduty:{region}:{account}:detector/{detector}/finding/{id}").into();
    event["region"] = region.into();
    event
}

pub fn report(response: &exfil_responder::report::Response) -> Value {
    serde_json::to_value(response).unwrap()
}

/// ARNs of the managed policies attached to `role`.
pub async fn attached_arns(account: &Account, role: &str) -> Vec<String> {
    let out = account
        .iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap();
    out.attached_policies
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.policy_arn)
        .collect()
}

/// ARNs of the managed revocation fallbacks attached to `role`.
pub async fn fallback_arns(account: &Account, role: &str) -> Vec<String> {
    let mut arns = attached_arns(account, role).await;
    arns.retain(|arn| arn.contains(":policy/exfil-responder/AWSRevokeOlderSessions-"));
    arns
}
