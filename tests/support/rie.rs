//! The release bootstrap under AWS's own Lambda Runtime Interface Emulator, the program that runs
//! inside `sam local invoke`'s container, invoked by boto3's Lambda client: through
//! `scripts/invoke_local.py`, the same path `make invoke-local` gives a user without Docker.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use super::runtime_api::bootstrap;
use super::{REGION, moto_server, repo};

/// What the RIE answered one invocation, as boto3 read it.
#[derive(Debug)]
pub struct Answer {
    pub status: u64,
    /// The `X-Amz-Function-Error` header: Lambda sets it on a function error, the RIE does not.
    pub function_error: Option<String>,
    /// A function error: the header, or an answer in the runtime's error shape.
    pub failed: bool,
    pub payload: Value,
}

/// The venv's python, beside its moto_server, which has boto3 and aws-sam-cli.
fn python() -> PathBuf {
    moto_server().with_file_name("python")
}

/// Start the RIE with the bootstrap, invoke it once per event in order (one warm process), stop
/// it; the function acts on `aws_endpoint` with the credentials of the emulator's default account.
/// Returns the answers and everything the RIE and the function logged.
pub fn invoke(aws_endpoint: &str, env: &[(&str, &str)], events: &[Value]) -> (Vec<Answer>, String) {
    let dir = std::env::temp_dir().join(format!("exfil-responder-rie-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<PathBuf> = events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let file = dir.join(format!("{i}-{:?}.json", std::thread::current().id()).replace(['(', ')'], ""));
            std::fs::write(&file, serde_json::to_vec(event).unwrap()).unwrap();
            file
        })
        .collect();
    let out = Command::new(python())
        .arg(repo().join("scripts/invoke_local.py"))
        .arg("--bootstrap")
        .arg(bootstrap())
        .args(&files)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_REGION", REGION)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "ASIATESTING")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_SESSION_TOKEN", "testing")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_ENDPOINT_URL", aws_endpoint)
        .envs(env.iter().copied())
        .output()
        .expect("run scripts/invoke_local.py with the venv's python");
    for file in files {
        let _ = std::fs::remove_file(file);
    }
    let logs = String::from_utf8_lossy(&out.stderr).into_owned();
    let answers: Vec<Answer> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}\n{logs}"));
            Answer {
                status: v["statusCode"].as_u64().unwrap(),
                function_error: v["functionError"].as_str().map(str::to_owned),
                failed: v["failed"].as_bool().unwrap(),
                payload: v["payload"].clone(),
            }
        })
        .collect();
    assert_eq!(
        answers.len(),
        events.len(),
        "one answer per event; the RIE's log:\n{logs}"
    );
    (answers, logs)
}
