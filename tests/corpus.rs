//! Hostile and malformed input: every payload in tests/corpus/ (made by scripts/make_corpus.py),
//! plus multi-MB and deeply nested ones made here, must end in a clear error or a skip, with no
//! panic and not one write, even with verification off. The payloads are pointed at a seeded
//! role and instance first, so that a payload the parser wrongly accepted would be acted on.

mod support;

use exfil_responder::{Config, cli, handle};
use serde_json::{Value, json};
use support::faults::Proxy;
use support::guardduty::GuardDuty;
use support::*;

struct World {
    // Kept only to stay up (each stops when dropped): requests reach them through the proxy.
    _moto: Moto,
    _guardduty: GuardDuty,
    proxy: Proxy,
    role: SeededRole,
    instance: String,
}

async fn world() -> World {
    let moto = Moto::start();
    let guardduty = GuardDuty::start(&moto);
    let account = Account::new(&moto.sdk().await);
    let role = account.role("WebAppRole", &[]).await;
    let instance = account
        .instance(Some(&role.profile_arn), &[("exfil-responder:action", "cycle")])
        .await;
    let proxy = Proxy::start(&moto.endpoint, &[("guardduty", &guardduty.endpoint)]);
    World {
        _moto: moto,
        _guardduty: guardduty,
        proxy,
        role,
        instance,
    }
}

impl World {
    /// The corpus names the example role id and instance of events/outside-aws.json.
    fn aimed(&self, text: &str) -> String {
        text.replace("AROAEXAMPLEWEBAPPROLE", &self.role.id)
            .replace("i-0a1b2c3d4e5f60718", &self.instance)
    }

    async fn handle(&self, payload: Value, verify: bool) -> Value {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.proxy.endpoint)
            .region(aws_sdk_iam::config::Region::new(REGION))
            .credentials_provider(aws_sdk_iam::config::Credentials::new(
                "testing", "testing", None, None, "t",
            ))
            .load()
            .await;
        // AUTO_RELEASE on: a payload wrongly accepted would also ask for a schedule (a write).
        let auto_release = exfil_responder::config::AutoRelease {
            scheduler_role_arn: format!("arn:aws:iam::{ACCOUNT}:role/scheduler"),
            group: "releases".into(),
            function_arn: Some(format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:exfil-responder")),
        };
        let config = Config {
            verify_findings: verify,
            auto_release: Some(auto_release),
            ..Config::default()
        };
        let app = app_at(&sdk, config, &Recorder::default(), &self.proxy.endpoint);
        report(&handle(&app, payload).await.response)
    }

    fn writes(&self) -> Vec<String> {
        self.proxy
            .seen()
            .into_iter()
            .filter(|s| WRITES.contains(&s.operation.as_str()))
            .map(|s| s.operation)
            .collect()
    }
}

/// A clear error (bad input) or a skip or refusal with its reason; never an action.
fn assert_rejected(name: &str, report: &Value) {
    let outcome = report["outcome"].as_str().unwrap_or_default();
    let reports = match report["reports"].as_array() {
        Some(items) => items.clone(),
        None => vec![report.clone()],
    };
    assert!(
        matches!(outcome, "failed" | "skipped" | "refused"),
        "{name}: acted on ({outcome}): {report:#}"
    );
    for r in &reports {
        let reason = r["outcomeReason"].as_str().unwrap_or_default();
        assert!(!reason.is_empty(), "{name}: no reason given: {r:#}");
        if r["outcome"] == "failed" {
            assert_eq!(r["error"]["kind"], "BadInput", "{name}: {r:#}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_payload_ends_in_an_error_or_a_skip_without_a_write() {
    let w = world().await;
    let mut files: Vec<_> = std::fs::read_dir(repo().join("tests/corpus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 100, "the corpus has {} payloads", files.len());

    let (mut invalid, mut handled) = (0, 0);
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let aimed = std::env::temp_dir().join(format!("exfil-responder-corpus-{}-{name}", std::process::id()));
        let text = w.aimed(&std::fs::read_to_string(path).unwrap_or_default());
        std::fs::write(&aimed, &text).unwrap();
        // What the CLI reads, and what the Lambda runtime (serde_json too) would hand over.
        let read = cli::read_payload(&aimed);
        std::fs::remove_file(&aimed).unwrap();
        match read {
            Err(e) => {
                invalid += 1;
                assert!(matches!(e, exfil_responder::Error::BadInput { .. }), "{name}: {e}");
                assert!(e.to_string().contains("not valid JSON"), "{name}: {e}");
            }
            Ok(payload) => {
                handled += 1;
                for verify in [true, false] {
                    let report = w.handle(payload.clone(), verify).await;
                    assert_rejected(&name, &report);
                }
            }
        }
        assert_eq!(w.writes(), Vec::<String>::new(), "{name} wrote something");
    }
    // Control: the payload the corpus mutates is acted on in this world, so a mutation the parser
    // had let through would have shown up above as a write.
    let base = std::fs::read_to_string(repo().join("events/outside-aws.json")).unwrap();
    let control = w.handle(serde_json::from_str(&w.aimed(&base)).unwrap(), false).await;
    assert_eq!(control["outcome"], "remediated", "{control:#}");
    println!(
        "corpus: {} payloads, {invalid} not JSON, {handled} handled twice",
        files.len()
    );
}

/// The corpus's follow-ups again, once a containment has revoked the role for the events' key:
/// only that key, in that incident's window, stands; every forged one is refused before any read
/// of the trail, and nothing is written.
#[tokio::test]
async fn a_forged_follow_up_on_a_contained_role_is_refused_without_a_write() {
    let w = world().await;
    let base = std::fs::read_to_string(repo().join("events/outside-aws.json")).unwrap();
    let contained = w.handle(serde_json::from_str(&w.aimed(&base)).unwrap(), false).await;
    assert_eq!(contained["outcome"], "remediated", "{contained:#}");
    let written = w.writes().len();
    let mut follow_up = support::event_file("chain-follow-up.json");
    follow_up["dryRun"] = json!(false);
    // Control: the key the containment revoked stands (and then meets CHAIN=off).
    let control = w.handle(follow_up, false).await;
    assert!(
        control["outcomeReason"]
            .as_str()
            .unwrap_or_default()
            .contains("CHAIN is off"),
        "{control:#}"
    );
    let mut forged = 0;
    for entry in std::fs::read_dir(repo().join("tests/corpus")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("follow-up-") {
            continue;
        }
        forged += 1;
        let Ok(payload) = serde_json::from_str::<Value>(&std::fs::read_to_string(&path).unwrap()) else {
            continue;
        };
        let report = w.handle(payload, false).await;
        assert_rejected(&name, &report);
        let reason = report["outcomeReason"].as_str().unwrap_or_default();
        assert!(!reason.contains("CHAIN is off"), "{name} stood: {report:#}");
    }
    assert!(forged >= 10, "{forged} forged follow-ups");
    assert_eq!(w.writes().len(), written, "{:?}", w.writes());
    assert_eq!(w.proxy.count("LookupEvents"), 0);
}

#[tokio::test]
async fn huge_and_deeply_nested_payloads_are_rejected_cleanly() {
    let w = world().await;
    // 10,000 levels: beyond serde_json's recursion limit, for the CLI and the Lambda runtime alike.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let path = std::env::temp_dir().join(format!("exfil-responder-deep-{}.json", std::process::id()));
    std::fs::write(&path, &deep).unwrap();
    let err = cli::read_payload(&path).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(err.to_string().contains("recursion limit"), "{err}");

    // Several MB: a 6 MB role name, and a finding with 200,000 junk fields.
    let base: Value =
        serde_json::from_str(&w.aimed(&std::fs::read_to_string(repo().join("events/outside-aws.json")).unwrap()))
            .unwrap();
    let mut long_name = base.clone();
    long_name["detail"]["resource"]["accessKeyDetails"]["userName"] = "R".repeat(6 << 20).into();
    let mut wide = base.clone();
    let junk: serde_json::Map<String, Value> = (0..200_000).map(|i| (format!("k{i}"), json!(i))).collect();
    wide["detail"]["resource"]["accessKeyDetails"]["userName"] = json!({ "junk": junk });
    // Deep, but within the limit, where a string belongs.
    let mut nested = json!("WebAppRole");
    for _ in 0..100 {
        nested = json!([nested]);
    }
    let mut deep_field = base.clone();
    deep_field["detail"]["resource"]["accessKeyDetails"]["userName"] = nested;
    for (name, payload) in [
        ("6 MB role name", long_name),
        ("200,000 fields", wide),
        ("nested role name", deep_field),
    ] {
        assert!(payload.to_string().len() > 1000);
        let report = w.handle(payload, false).await;
        assert_rejected(name, &report);
    }
    assert_eq!(w.writes(), Vec::<String>::new());
}
