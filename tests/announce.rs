//! After a response, what the people are told, against moto and the stand-ins: the finding's
//! workflow in Security Hub (`SECURITY_HUB_UPDATES`; moto has no `BatchUpdateFindings`, so the
//! GuardDuty stand-in answers it, as docs/src/emulator-gaps.md says) and the chat message on the topic
//! (`NOTIFICATION_TOPIC_ARN`), read as AWS's chat integration receives it: moto's SNS delivers
//! every message to an HTTPS-style subscriber, here a loopback endpoint of the test's own.

mod support;

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use exfil_responder::Config;
use serde_json::{Value, json};
use support::runtime_api::read_request;
use support::securityhub::{asff, ocsf, security_hub_event};
use support::*;

const KEY: &str = "exfil-responder:action";

/// A channel's endpoint, subscribed to the topic: every notification SNS delivered to it.
struct Channel {
    topic_arn: String,
    received: Arc<Mutex<Vec<Value>>>,
}

impl Channel {
    async fn subscribed(sdk: &aws_config::SdkConfig) -> Channel {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}/", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                while let Some((_, _, _, body)) = read_request(&mut reader) {
                    if let Ok(delivery) = serde_json::from_slice::<Value>(&body) {
                        kept.lock().unwrap().push(delivery);
                    }
                    let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                }
            }
        });
        let sns = aws_sdk_sns::Client::new(sdk);
        let topic = sns.create_topic().name("security-chat").send().await.unwrap();
        let topic_arn = topic.topic_arn().unwrap().to_owned();
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("http")
            .endpoint(endpoint)
            .send()
            .await
            .unwrap();
        Channel { topic_arn, received }
    }

    /// The chat messages delivered: each notification's `Message`, as JSON.
    fn messages(&self) -> Vec<Value> {
        (self.received.lock().unwrap().iter())
            .filter(|d| d["Type"] == "Notification")
            .map(|d| serde_json::from_str(d["Message"].as_str().unwrap()).unwrap())
            .collect()
    }
}

/// The custom-notification format of AWS's chat integration: `version` 1.0 and `source` custom,
/// `content.description` required, each other field optional and of its documented type, and no
/// field the format does not have.
fn assert_custom_notification(message: &Value) {
    let only = |v: &Value, keys: &[&str]| {
        let extra: Vec<&String> = v
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !keys.contains(&k.as_str()))
            .collect();
        assert!(extra.is_empty(), "fields the format does not have: {extra:?} in {v:#}");
    };
    let strings = |v: &Value| v.as_array().unwrap().iter().all(Value::is_string);
    only(message, &["version", "source", "id", "content", "metadata"]);
    assert_eq!(
        (message["version"].as_str(), message["source"].as_str()),
        (Some("1.0"), Some("custom"))
    );
    assert!(message.get("id").is_none_or(Value::is_string));
    let content = &message["content"];
    only(content, &["textType", "title", "description", "nextSteps", "keywords"]);
    assert!(!content["description"].as_str().unwrap().is_empty());
    assert!(content.get("textType").is_none_or(|t| t == "client-markdown"));
    assert!(content.get("title").is_none_or(Value::is_string));
    for list in ["nextSteps", "keywords"] {
        assert!(content.get(list).is_none_or(strings), "{list}");
    }
    if let Some(metadata) = message.get("metadata") {
        only(
            metadata,
            &[
                "threadId",
                "summary",
                "eventType",
                "relatedResources",
                "additionalContext",
            ],
        );
        for text in ["threadId", "summary", "eventType"] {
            assert!(metadata.get(text).is_none_or(Value::is_string), "{text}");
        }
        assert!(metadata.get("relatedResources").is_none_or(strings));
        let context = metadata["additionalContext"].as_object().unwrap();
        assert!(context.values().all(Value::is_string), "{context:?}");
    }
}

fn announcing(channel: &Channel) -> Config {
    Config {
        security_hub_updates: true,
        notification_topic_arn: Some(channel.topic_arn.clone()),
        ..Config::default()
    }
}

impl World {
    async fn cycled_finding(&self) -> Value {
        let instance = self
            .account
            .instance(Some(&self.role.profile_arn), &[(KEY, "cycle")])
            .await;
        finding("outside-aws.json", &self.role, Some(&instance))
    }
}

#[tokio::test]
async fn a_containment_is_resolved_in_security_hub_and_told_in_the_chat_channel() {
    let w = World::start().await;
    let channel = Channel::subscribed(&w.sdk).await;
    let event = w.cycled_finding().await;

    let (report, _) = w.run(event.clone(), announcing(&channel)).await;

    assert_eq!(report["outcome"], "remediated", "{report:#}");
    let id = report["id"].as_str().unwrap();
    let updates = w.guardduty.workflow_updates();
    assert_eq!(updates.len(), 1, "{updates:?}");
    let sent = &updates[0].request;
    assert!(updates[0].processed);
    assert_eq!(sent["FindingIdentifiers"][0]["Id"], event["detail"]["arn"]);
    assert_eq!(
        sent["FindingIdentifiers"][0]["ProductArn"],
        "arn:aws:securityhub:us-east-1::product/aws/guardduty"
    );
    assert_eq!(sent["Workflow"]["Status"], "RESOLVED");
    let note = sent["Note"]["Text"].as_str().unwrap();
    assert!(
        note.starts_with("exfil-responder: Contained WebAppRole at ") && note.contains(id),
        "{note}"
    );
    assert!(note.contains("re-attached; 0 need attention"), "{note}");
    assert_eq!(sent["Note"]["UpdatedBy"], "exfil-responder");
    assert_eq!(report["securityHub"]["status"], "updated", "{report:#}");

    let messages = channel.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_custom_notification(&messages[0]);
    let description = messages[0]["content"]["description"].as_str().unwrap();
    assert!(description.starts_with("Contained WebAppRole at "), "{description}");
    assert!(
        description.contains("fId=7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b"),
        "{description}"
    );
    assert_eq!(report["notification"]["status"], "published");

    // A repeat delivery: Security Hub is told again (still resolved), the channel is not.
    let (again, _) = w.run(event, announcing(&channel)).await;
    assert_eq!(again["outcome"], "already-remediated", "{again:#}");
    assert_eq!(
        w.guardduty.workflow_updates()[1].request["Workflow"]["Status"],
        "RESOLVED"
    );
    assert_eq!(channel.messages().len(), 1);
}

/// A finding that came in OCSF is updated through the API of that format: BatchUpdateFindingsV2,
/// named by its OCSF identifiers, with OCSF's status (the ASFF call may not reach it).
#[tokio::test]
async fn an_ocsf_finding_is_resolved_through_batch_update_findings_v2() {
    let w = World::start().await;
    let channel = Channel::subscribed(&w.sdk).await;
    let event = w.cycled_finding().await;
    w.guardduty.publish(&event);
    let delivered = security_hub_event("Findings Imported V2", vec![ocsf(&event)]);

    let (report, _) = w.run(delivered, announcing(&channel)).await;

    assert_eq!(report["outcome"], "remediated", "{report:#}");
    let updates = w.guardduty.workflow_updates();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].operation, "BatchUpdateFindingsV2");
    assert!(updates[0].processed, "{updates:?}");
    let sent = &updates[0].request;
    assert_eq!(
        sent["FindingIdentifiers"],
        json!([{
            "CloudAccountUid": ACCOUNT,
            "FindingInfoUid": event["detail"]["arn"],
            "MetadataProductUid": "arn:aws:securityhub:us-east-1::productv2/aws/guardduty",
        }])
    );
    assert_eq!(sent["StatusId"], 4, "Resolved");
    let comment = sent["Comment"].as_str().unwrap();
    assert!(
        comment.starts_with("exfil-responder: Contained WebAppRole at "),
        "{comment}"
    );
    assert_eq!(report["securityHub"]["status"], "updated", "{report:#}");
    assert_eq!(report["securityHub"]["workflow"], "RESOLVED", "{report:#}");
}

#[tokio::test]
async fn what_security_hub_refuses_or_cannot_take_is_a_warning_and_the_containment_stands() {
    let w = World::start().await;
    let channel = Channel::subscribed(&w.sdk).await;
    // A member's finding, and this account is not the region's administrator: unprocessed.
    let member = Account::other(&w.moto, MEMBER, MEMBER_REGION).await;
    let role = member.role("WebAppRole", &[]).await;
    member.role(MEMBER_ROLE, &[]).await;
    let event = in_account(finding("outside-aws.json", &role, None), MEMBER, MEMBER_REGION);
    let config = Config {
        member_role_name: Some(MEMBER_ROLE.into()),
        ..announcing(&channel)
    };

    let (report, _) = w.run(event.clone(), config.clone()).await;

    assert_eq!(report["outcome"], "remediated", "{report:#}");
    assert!(member.revocation("WebAppRole").await.is_some());
    assert_eq!(report["securityHub"]["status"], "failed", "{report:#}");
    assert!(
        report["securityHub"]["detail"]
            .as_str()
            .unwrap()
            .contains("FindingNotFound")
    );
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("Security Hub's workflow") && warnings.contains("RESOLVED"),
        "{warnings}"
    );
    assert_eq!(
        w.guardduty.workflow_updates()[0].region,
        MEMBER_REGION,
        "asked where the finding is"
    );

    // As the region's administrator, the same update is taken.
    w.guardduty
        .administrator(ACCOUNT, MEMBER_REGION, "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
    let (again, _) = w.run(event.clone(), config.clone()).await;
    assert_eq!(again["securityHub"]["status"], "updated", "{again:#}");

    // Security Hub down: a warning too, never a failed run.
    w.guardduty.set_unavailable(true);
    let verify_off = Config {
        verify_findings: false,
        ..config
    };
    let (down, _) = w.run(event, verify_off).await;
    assert_eq!(down["outcome"], "already-remediated", "{down:#}");
    assert_eq!(down["securityHub"]["status"], "failed", "{down:#}");
}

#[tokio::test]
async fn a_refused_finding_alerts_the_channel_and_a_dry_run_or_a_skip_tells_no_one() {
    let w = World::start().await;
    let channel = Channel::subscribed(&w.sdk).await;
    let event = w.cycled_finding().await;
    let mut forged = event.clone();
    forged["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = "ASIAFORGEDFORGED0000".into();
    w.guardduty.publish(&event);
    let app = app(&w.sdk, announcing(&channel), &w.recorder, &w.guardduty);

    let refused = report(&exfil_responder::handle(&app, forged).await.response);

    assert_eq!(refused["outcome"], "refused", "{refused:#}");
    assert!(
        w.guardduty.workflow_updates().is_empty(),
        "a finding GuardDuty denies keeps its workflow"
    );
    let messages = channel.messages();
    assert_eq!(messages.len(), 1);
    assert_custom_notification(&messages[0]);
    assert!(messages[0]["content"]["title"].as_str().unwrap().contains("Refused"));

    let dry_run = Config {
        dry_run: true,
        ..announcing(&channel)
    };
    let (planned, _) = w.run(event, dry_run).await;
    assert_eq!(planned["outcome"], "planned", "{planned:#}");
    let (skipped, _) = w.run(event_file("ec2-port-probe.json"), announcing(&channel)).await;
    assert_eq!(skipped["outcome"], "skipped", "{skipped:#}");
    assert!(w.guardduty.workflow_updates().is_empty());
    assert_eq!(channel.messages().len(), 1, "nothing more");
    assert!(planned.get("notification").is_none() && planned.get("securityHub").is_none());
}

#[tokio::test]
async fn each_finding_of_a_custom_action_is_its_own_update_and_message() {
    let w = World::start().await;
    let channel = Channel::subscribed(&w.sdk).await;
    let other = w.account.role("OtherRole", &[]).await;
    let first = w.cycled_finding().await;
    let second = with_id(
        finding("inside-aws.json", &other, None),
        "2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b",
    );
    w.guardduty.publish(&first);
    w.guardduty.publish(&second);
    let payload = security_hub_event(
        "Security Hub Findings - Custom Action",
        vec![asff(&first), asff(&second)],
    );

    let (response, _) = w.run(payload, announcing(&channel)).await;

    let reports = response["reports"].as_array().unwrap();
    let ids: Vec<&str> = reports.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(
        ids[0].ends_with("#0") && ids[1].ends_with("#1") && ids[0][..ids[0].len() - 2] == ids[1][..ids[1].len() - 2]
    );
    let updated: Vec<Value> = (w.guardduty.workflow_updates().iter())
        .map(|u| u.request["FindingIdentifiers"][0]["Id"].clone())
        .collect();
    assert_eq!(
        updated,
        [first["detail"]["arn"].clone(), second["detail"]["arn"].clone()]
    );
    let messages = channel.messages();
    assert_eq!(messages.len(), 2);
    for (message, id) in messages.iter().zip(&ids) {
        assert_custom_notification(message);
        assert_eq!(message["id"], *id);
    }
}
