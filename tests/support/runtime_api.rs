//! A stand-in for the Lambda Runtime API, the HTTP interface Lambda serves a custom runtime's
//! `bootstrap`: it hands out queued events on `next`, and records each response, invocation error
//! and init error as it arrives. Plus the function process, started with the environment Lambda
//! gives it, its stdout (the logs) collected line by line.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{REGION, repo};

/// How long a test waits for an answer before it fails: a guard, never a synchronisation.
const ANSWER_BOUND: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Response,
    Error,
    InitError,
    /// A request the Runtime API does not serve.
    Unexpected(String),
}

#[derive(Debug, Clone)]
pub struct Answer {
    pub request_id: Option<String>,
    pub kind: Kind,
    /// The `Lambda-Runtime-Function-Error-Type` header, on errors.
    pub error_type_header: Option<String>,
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
}

#[derive(Default)]
struct Queue {
    events: VecDeque<(String, Value)>,
    next_requests: usize,
    /// When each `next` request arrived.
    next_at: Vec<Instant>,
    closed: bool,
}

pub struct RuntimeApi {
    pub address: String,
    queue: Arc<(Mutex<Queue>, Condvar)>,
    answers: Receiver<Answer>,
    pushed: usize,
}

impl RuntimeApi {
    pub fn start() -> Self {
        Self::start_in(super::ACCOUNT)
    }

    /// A Runtime API whose function lives in `account` (its ARN in every invocation says so).
    pub fn start_in(account: &str) -> Self {
        let function_arn: Arc<str> = format!("arn:aws:lambda:{REGION}:{account}:function:exfil-responder").into();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let address = listener.local_addr().unwrap().to_string();
        let queue = Arc::new((Mutex::new(Queue::default()), Condvar::new()));
        let (tx, answers) = channel();
        let shared = queue.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (queue, tx, arn) = (shared.clone(), tx.clone(), function_arn.clone());
                std::thread::spawn(move || serve(stream, &queue, &tx, &arn));
            }
        });
        Self {
            address,
            queue,
            answers,
            pushed: 0,
        }
    }

    /// Queue an invocation; returns its request id.
    pub fn push(&mut self, event: Value) -> String {
        self.pushed += 1;
        let id = format!("req-{}", self.pushed);
        let (lock, ready) = &*self.queue;
        lock.lock().unwrap().events.push_back((id.clone(), event));
        ready.notify_all();
        id
    }

    /// The next answer the function posts.
    pub fn answer(&self) -> Answer {
        self.answers
            .recv_timeout(ANSWER_BOUND)
            .unwrap_or_else(|_| panic!("no answer from the function within {ANSWER_BOUND:?}"))
    }

    /// Invoke once and wait for the answer, which must be for this invocation.
    pub fn invoke(&mut self, event: Value) -> Answer {
        let id = self.push(event);
        let answer = self.answer();
        assert_eq!(answer.request_id.as_deref(), Some(id.as_str()), "{answer:?}");
        answer
    }

    pub fn next_requests(&self) -> usize {
        self.queue.0.lock().unwrap().next_requests
    }

    /// Block until the function has asked for its `n`th event (1-based), and say when it did:
    /// once it asks, it is idle, waiting for that event.
    pub fn wait_for_next(&self, n: usize) -> Instant {
        let (lock, changed) = &*self.queue;
        let state = lock.lock().unwrap();
        let (state, timeout) = changed
            .wait_timeout_while(state, ANSWER_BOUND, |s| s.next_at.len() < n)
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "no `next` request number {n} within {ANSWER_BOUND:?}"
        );
        state.next_at[n - 1]
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        let (lock, ready) = &*self.queue;
        lock.lock().unwrap().closed = true;
        ready.notify_all();
    }
}

fn serve(stream: TcpStream, queue: &(Mutex<Queue>, Condvar), answers: &Sender<Answer>, function_arn: &str) {
    // Each answer goes out whole, at once. With Nagle's algorithm on, an answer written in parts
    // on the kept-alive connection waited for the runtime's delayed ACK: about 40 ms before every
    // event after the first, which the bench measured as the warm event's time.
    stream.set_nodelay(true).ok();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    while let Some((method, path, headers, body)) = read_request(&mut reader) {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let at = Instant::now();
        let body_json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let answer = match (method.as_str(), parts.as_slice()) {
            ("GET", ["2018-06-01", "runtime", "invocation", "next"]) => {
                let (lock, ready) = queue;
                let mut state = lock.lock().unwrap();
                state.next_requests += 1;
                state.next_at.push(Instant::now());
                ready.notify_all();
                while state.events.is_empty() && !state.closed {
                    state = ready.wait(state).unwrap();
                }
                let Some((id, event)) = state.events.pop_front() else {
                    return; // the test is over: the function waits on, as it would in Lambda
                };
                drop(state);
                let payload = event.to_string();
                let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(300);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                     Lambda-Runtime-Aws-Request-Id: {id}\r\n\
                     Lambda-Runtime-Deadline-Ms: {}\r\n\
                     Lambda-Runtime-Invoked-Function-Arn: {function_arn}\r\n\
                     Lambda-Runtime-Trace-Id: Root=1-67a00000-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=0\r\n\
                     Content-Length: {}\r\n\r\n",
                    deadline.as_millis(),
                    payload.len()
                );
                if writer.write_all(format!("{head}{payload}").as_bytes()).is_err() {
                    return;
                }
                continue;
            }
            ("POST", ["2018-06-01", "runtime", "invocation", id, kind @ ("response" | "error")]) => Answer {
                request_id: Some((*id).to_owned()),
                kind: if *kind == "response" {
                    Kind::Response
                } else {
                    Kind::Error
                },
                error_type_header: header("Lambda-Runtime-Function-Error-Type"),
                body: body_json,
                at,
            },
            ("POST", ["2018-06-01", "runtime", "init", "error"]) => Answer {
                request_id: None,
                kind: Kind::InitError,
                error_type_header: header("Lambda-Runtime-Function-Error-Type"),
                body: body_json,
                at,
            },
            _ => Answer {
                request_id: None,
                kind: Kind::Unexpected(format!("{method} {path}")),
                error_type_header: None,
                body: body_json,
                at,
            },
        };
        let status = if matches!(answer.kind, Kind::Unexpected(_)) {
            "404 Not Found"
        } else {
            "202 Accepted"
        };
        let _ = answers.send(answer);
        let ok = r#"{"status":"OK"}"#;
        let accepted = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{ok}",
            ok.len()
        );
        if writer.write_all(accepted.as_bytes()).is_err() {
            return;
        }
    }
}

type Request = (String, String, Vec<(String, String)>, Vec<u8>);

/// One HTTP/1.1 request, or None when the client closed the connection.
pub fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, headers, body))
}

/// The release `bootstrap`, built the way `sam build` builds it (`make bootstrap`; `make test`
/// builds it first). A stale one would test old code, so it must be newer than the sources.
pub fn bootstrap() -> PathBuf {
    let path = std::env::var_os("EXFIL_RESPONDER_BOOTSTRAP")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo().join("target"));
            target.join("lambda/host/exfil-responder/bootstrap")
        });
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).unwrap_or_else(|_| {
        panic!(
            "no release bootstrap at {}: run `make bootstrap` (make test does)",
            path.display()
        )
    });
    let mut sources = vec![repo().join("Cargo.toml"), repo().join("Cargo.lock")];
    sources.extend(
        std::fs::read_dir(repo().join("src"))
            .unwrap()
            .map(|e| e.unwrap().path()),
    );
    for source in sources {
        let changed = std::fs::metadata(&source).and_then(|m| m.modified()).unwrap();
        assert!(
            changed <= built,
            "{} is older than {}: run `make bootstrap` (make test does)",
            path.display(),
            source.display()
        );
    }
    path
}

/// The function, as Lambda starts it: the bootstrap with Lambda's environment and nothing else.
pub struct Function {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    stdout_closed: Receiver<()>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Function {
    pub fn start(api: &RuntimeApi, aws_endpoint: &str, env: &[(&str, &str)]) -> Self {
        Self::start_program(Command::new(bootstrap()), api, aws_endpoint, env)
    }

    /// Another runtime behind the same API, with the same environment (`_HANDLER` in `env` for one
    /// that reads it): the Python peer the benchmark compares with.
    pub fn start_program(mut program: Command, api: &RuntimeApi, aws_endpoint: &str, env: &[(&str, &str)]) -> Self {
        let mut child = program
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", "exfil-responder")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/exfil-responder")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/22/[$LATEST]0123456789abcdef")
            .env("_HANDLER", "bootstrap")
            .env("AWS_REGION", REGION)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "ASIATESTING")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_SESSION_TOKEN", "testing")
            // The one thing Lambda would not set: the emulator instead of AWS.
            .env("AWS_ENDPOINT_URL", aws_endpoint)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the bootstrap");
        let (logs, stdout_closed) = collect(child.stdout.take().unwrap());
        let (stderr, _) = collect(child.stderr.take().unwrap());
        Self {
            child,
            logs,
            stdout_closed,
            stderr,
        }
    }

    /// Stop the function as Lambda would, and return every line it logged on stdout, each parsed:
    /// in Lambda each line must be one JSON object. Stopping first means no line is still in the pipe.
    pub fn stop(mut self) -> Vec<Value> {
        let _ = self.child.kill();
        self.exit_status();
        self.logs
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {l}")))
            .collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Wait (bounded) for the process to exit by itself: its stdout closes when it does.
    pub fn exit_status(&mut self) -> ExitStatus {
        self.stdout_closed
            .recv_timeout(ANSWER_BOUND)
            .unwrap_or_else(|_| panic!("the function still runs after {ANSWER_BOUND:?}"));
        self.child.wait().unwrap()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        // In Lambda the process waits for its next event forever: stop it by PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A listener standing in for the instance metadata service: it only counts who connects.
pub fn imds_counter() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    std::thread::spawn(move || {
        for _ in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (endpoint, connections)
}

/// Collect a stream's lines as they come; the receiver hears when the stream closes.
fn collect(stream: impl Read + Send + 'static) -> (Arc<Mutex<Vec<String>>>, Receiver<()>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (closed, on_close) = channel();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
        let _ = closed.send(());
    });
    (lines, on_close)
}
