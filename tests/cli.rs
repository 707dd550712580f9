//! The binary as a responder runs it: `exfil-responder invoke --event FILE`, pointed at the moto
//! server only through the SDK's standard `AWS_ENDPOINT_URL`, in an otherwise empty environment.

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use support::guardduty::GuardDuty;
use support::*;

/// The emulators the binary is pointed at: moto, and the GuardDuty stand-in.
struct Aws {
    moto: Moto,
    guardduty: GuardDuty,
}

impl Aws {
    fn start() -> Self {
        let moto = Moto::start();
        let guardduty = GuardDuty::start(&moto);
        Self { moto, guardduty }
    }
}

fn exfil_responder(aws: &Aws, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_exfil-responder"));
    cmd.args(args)
        .env_clear() // no real AWS credentials, profiles or endpoints can leak in
        .env("AWS_ENDPOINT_URL", &aws.moto.endpoint)
        // The SDK's per-service endpoint variable: GuardDuty's findings API is not in moto.
        .env("AWS_ENDPOINT_URL_GUARDDUTY", &aws.guardduty.endpoint)
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", &aws.guardduty.endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run exfil-responder");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn write_event(value: &Value) -> tempfile_path::TempFile {
    tempfile_path::TempFile::new(serde_json::to_string_pretty(value).unwrap())
}

/// A uniquely named file removed on drop (no extra crate for one temp file).
mod tempfile_path {
    pub struct TempFile(pub std::path::PathBuf);
    impl TempFile {
        pub fn new(contents: String) -> Self {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("exfil-responder-event-{}-{n}.json", std::process::id()));
            std::fs::write(&path, contents).unwrap();
            Self(path)
        }
        pub fn arg(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[tokio::test]
async fn invoke_remediates_against_the_endpoint_in_aws_endpoint_url() {
    let aws = Aws::start();
    let (account, role, named) = web_app(&aws.moto, "cycle").await;
    let before = account.association(&named).await.unwrap().0;
    let finding = finding("outside-aws.json", &role, Some(&named));
    aws.guardduty.publish(&finding);
    let event = write_event(&finding);

    let out = exfil_responder(&aws, &["invoke", "--event", event.arg()], &[], None);

    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = stdout_json(&out);
    assert_eq!(report["outcome"], "remediated");
    assert_eq!(report["verification"], "confirmed");
    assert_eq!(
        aws.guardduty.seen().len(),
        1,
        "GetFindings through AWS_ENDPOINT_URL_GUARDDUTY"
    );
    assert!(account.revocation("WebAppRole").await.is_some());
    assert_ne!(account.association(&named).await.unwrap().0, before);
    // Logs go to stderr, so stdout stays one JSON document.
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("step"),
        "no step logs on stderr"
    );
}

#[tokio::test]
async fn dry_run_from_stdin_and_by_flag_writes_nothing() {
    let aws = Aws::start();
    let (account, role, named) = web_app(&aws.moto, "cycle").await;
    let before = account.snapshot("WebAppRole", &[&named]).await;

    let payload = json!({"instanceId": named, "dryRun": true}).to_string();
    let out = exfil_responder(&aws, &["invoke", "--event", "-"], &[], Some(&payload));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_json(&out)["outcome"], "planned");

    let finding = finding("outside-aws.json", &role, Some(&named));
    aws.guardduty.publish(&finding);
    let event = write_event(&finding);
    let out = exfil_responder(&aws, &["invoke", "--event", event.arg(), "--dry-run"], &[], None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout_json(&out)["outcome"], "planned");

    assert_eq!(account.snapshot("WebAppRole", &[&named]).await, before);
}

#[tokio::test]
async fn exit_codes_tell_skipped_failed_and_bad_input_apart() {
    let aws = Aws::start();
    let (_account, role, named) = web_app(&aws.moto, "isolate").await;
    let events = repo().join("events");

    let sample = events.join("sample-finding.json");
    let out = exfil_responder(&aws, &["invoke", "--event", sample.to_str().unwrap()], &[], None);
    assert_eq!(out.status.code(), Some(0), "skipped is a success");
    assert_eq!(stdout_json(&out)["outcome"], "skipped");

    let out = exfil_responder(
        &aws,
        &["invoke", "--event", "-"],
        &[],
        Some("{\"instanceId\": \"i-*\"}"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout_json(&out)["error"]["kind"], "BadInput");

    let out = exfil_responder(&aws, &["invoke", "--event", "-"], &[], Some("{not json"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));

    // Attaching a quarantine profile that does not exist fails after the detach.
    let finding = finding("outside-aws.json", &role, Some(&named));
    aws.guardduty.publish(&finding);
    let event = write_event(&finding);
    let out = exfil_responder(
        &aws,
        &["invoke", "--event", event.arg()],
        &[("QUARANTINE_PROFILE", "Missing")],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout_json(&out)["outcome"], "failed");
}

#[tokio::test]
async fn bad_configuration_stops_start_up_naming_the_variable() {
    let aws = Aws::start();
    let sample = repo().join("events/sample-finding.json");
    let out = exfil_responder(
        &aws,
        &["invoke", "--event", sample.to_str().unwrap()],
        &[("DEFAULT_ACTION", "nuke")],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DEFAULT_ACTION") && stderr.contains("nuke"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn readiness_prints_the_table_and_exits_3_once_a_role_cannot_be_contained() {
    let aws = Aws::start();
    let (account, _role, named) = web_app(&aws.moto, "cycle").await;
    let before = account.association(&named).await;

    let out = exfil_responder(&aws, &["readiness"], &[], None);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{table}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(table.contains("## Account 123456789012"), "{table}");
    assert!(
        table.contains("| WebAppRole | inline | 0 (0) | - | 1 | 0 | 0 | 0 |"),
        "{table}"
    );
    // No finding held yet, so the GuardDuty stand-in has no detector for the account.
    assert!(
        table.contains(&format!(
            "region {REGION} has 1 instance(s) with an instance profile and no GuardDuty detector"
        )),
        "{table}"
    );
    assert_eq!(account.association(&named).await, before, "readiness changed nothing");
    assert_eq!(account.revocation("WebAppRole").await, None);

    let vault = account
        .role("VaultRole", &[("exfil-responder:protected", "true")])
        .await;
    account.instance(Some(&vault.profile_arn), &[]).await;
    let out = exfil_responder(&aws, &["readiness", "--json"], &[], None);
    assert_eq!(out.status.code(), Some(3), "a role that cannot be contained");
    let report = stdout_json(&out);
    assert_eq!(report["outcome"], "assessed");
    let roles = &report["readiness"]["accounts"][0]["roles"];
    assert!(roles.to_string().contains("\"revocation\":\"refused\""), "{roles:#}");
}
