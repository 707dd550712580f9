//! The binary as Lambda runs it: with `AWS_LAMBDA_RUNTIME_API` set it serves invocations from
//! the Runtime API. A minimal stand-in of that API hands it one event and captures the answer.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::*;

/// What the function posted back for the one invocation.
struct Answer {
    path: String,
    body: Value,
}

/// Serve `event` once on `listener`; return what the function posts for it.
fn serve_one(listener: TcpListener, event: &Value) -> Answer {
    listener.set_nonblocking(false).unwrap();
    let (stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let (method, path, body) = read_request(&mut reader);
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let payload = event.to_string();
            write!(
                writer,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-1\r\n\
                 Lambda-Runtime-Deadline-Ms: 4102444800000\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:exfil-responder\r\n\
                 Content-Length: {}\r\n\r\n{payload}",
                payload.len()
            )
            .unwrap();
        } else if method == "POST" && path.contains("/runtime/invocation/req-1/") {
            writer
                .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
                .unwrap();
            return Answer {
                path,
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            };
        } else {
            panic!("unexpected request {method} {path}");
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> (String, String, Vec<u8>) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    );
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (method, path, body)
}

fn start_function(endpoint: &str, runtime_api: &str, env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_exfil-responder"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "exfil-responder")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the function")
}

/// Run one invocation; return the answer and the function's log lines.
fn invoke(endpoint: &str, event: &Value, env: &[(&str, &str)]) -> (Answer, Vec<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let api = listener.local_addr().unwrap().to_string();
    let mut function = start_function(endpoint, &api, env);
    let answer = serve_one(listener, event);
    // The function now waits for its next event forever, as in Lambda: stop it by PID.
    function.kill().unwrap();
    let output = function.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {l}")))
        .collect();
    (answer, logs)
}

/// The stand-in serves with blocking sockets, so it runs off the async runtime.
async fn invoke_off_runtime(
    moto: &Moto,
    event: Value,
    env: &'static [(&'static str, &'static str)],
) -> (Answer, Vec<Value>) {
    let endpoint = moto.endpoint.clone();
    tokio::task::spawn_blocking(move || invoke(&endpoint, &event, env))
        .await
        .unwrap()
}

fn report_line(logs: &[Value]) -> &Value {
    logs.iter()
        .find(|l| l["message"] == "exfil-responder report")
        .expect("the report is logged")
}

#[tokio::test]
async fn a_finding_is_answered_with_the_report_and_logged_as_json() {
    let moto = Moto::start();
    let (account, role, named) = web_app(&moto, "cycle").await;
    let event = finding("outside-aws.json", &role, Some(&named));

    let (answer, logs) = invoke_off_runtime(&moto, event, &[]).await;

    assert!(answer.path.ends_with("/req-1/response"), "{}", answer.path);
    assert_eq!(answer.body["outcome"], "remediated");
    assert!(account.revocation("WebAppRole").await.is_some());
    let logged = report_line(&logs);
    assert_eq!(logged["report"]["outcome"], "remediated");
    assert!(
        logs.iter().any(|l| l["step"] == "PutRolePolicy"),
        "one log line per step"
    );
}

#[tokio::test]
async fn a_failure_reaches_the_error_endpoint_with_its_type() {
    let moto = Moto::start();
    let (account, role, named) = web_app(&moto, "isolate").await;
    let event = finding("outside-aws.json", &role, Some(&named));

    let (answer, logs) = invoke_off_runtime(&moto, event, &[("QUARANTINE_PROFILE", "Missing")]).await;

    assert!(answer.path.ends_with("/req-1/error"), "{}", answer.path);
    assert_eq!(answer.body["errorType"], "RemediationFailed");
    let logged = report_line(&logs);
    assert_eq!(logged["report"]["outcome"], "failed");
    // The failure came after containment: the sessions are revoked all the same.
    assert!(account.revocation("WebAppRole").await.is_some());
}
