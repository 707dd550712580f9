//! Security Hub's, Custodian's and attack sequences' shapes of a GuardDuty finding, built from the
//! `events/` files and pointed at the finding a test seeded (as [`super::finding`] points a
//! GuardDuty event at it). The GuardDuty stand-in holds the GuardDuty finding itself.

use serde_json::{Value, json};

use super::event_file;

/// The ASFF finding Security Hub imports for GuardDuty's `event` (events/securityhub-imported.json,
/// re-pointed).
pub fn asff(event: &Value) -> Value {
    let d = &event["detail"];
    let (region, account) = (d["region"].as_str().unwrap(), d["accountId"].as_str().unwrap());
    let keys = &d["resource"]["accessKeyDetails"];
    let mut f = event_file("securityhub-imported.json")["detail"]["findings"][0].clone();
    f["Id"] = d["arn"].clone();
    f["AwsAccountId"] = account.into();
    f["Region"] = region.into();
    f["ProductArn"] = format!("arn:aws:securityhub:{region}::product/aws/guardduty").into();
    // ASFF writes GuardDuty's type under a namespace, its `/` as `-`.
    let (purpose, rest) = d["type"].as_str().unwrap().split_once(':').unwrap();
    f["Types"] = json!([format!("TTPs/Initial Access/{purpose}:{}", rest.replacen('/', "-", 1))]);
    let fields = &mut f["ProductFields"];
    fields["aws/guardduty/service/detectorId"] = d["service"]["detectorId"].clone();
    fields["aws/guardduty/service/eventFirstSeen"] = d["service"]["eventFirstSeen"].clone();
    fields["aws/guardduty/service/eventLastSeen"] = d["service"]["eventLastSeen"].clone();
    let key = &mut f["Resources"][0];
    key["Id"] = format!("AWS::IAM::AccessKey:{}", keys["accessKeyId"].as_str().unwrap()).into();
    key["Region"] = region.into();
    key["Details"]["AwsIamAccessKey"] = json!({
        "PrincipalId": keys["principalId"], "PrincipalType": keys["userType"], "PrincipalName": keys["userName"],
    });
    match d["resource"]["instanceDetails"]["instanceId"].as_str() {
        Some(instance) => {
            f["Resources"][1]["Id"] = format!("arn:aws:ec2:{region}:{account}:instance/{instance}").into();
            f["Resources"][1]["Region"] = region.into();
        }
        None => {
            f["Resources"].as_array_mut().unwrap().truncate(1);
        }
    }
    f
}

/// Security Hub's event of `detail_type` carrying `findings`, in the first one's account and region.
pub fn security_hub_event(detail_type: &str, findings: Vec<Value>) -> Value {
    let file = match detail_type {
        "Security Hub Findings - Custom Action" => "securityhub-custom-action.json",
        "Findings Imported V2" => "securityhub-ocsf.json",
        _ => "securityhub-imported.json",
    };
    let mut event = event_file(file);
    let first = &findings[0];
    let region = first["Region"]
        .as_str()
        .or(first["cloud"]["region"].as_str())
        .unwrap()
        .to_owned();
    event["region"] = region.into();
    event["detail"]["findings"] = findings.into();
    event
}

/// The OCSF finding Security Hub v2 has for GuardDuty's `event` (events/securityhub-ocsf.json).
pub fn ocsf(event: &Value) -> Value {
    let d = &event["detail"];
    let mut f = event_file("securityhub-ocsf.json")["detail"]["findings"][0].clone();
    f["finding_info"]["uid"] = d["arn"].clone();
    f["finding_info"]["uid_alt"] = d["id"].clone();
    f["cloud"]["account"]["uid"] = d["accountId"].clone();
    f["cloud"]["region"] = d["region"].clone();
    f["resources"][0]["uid"] = d["resource"]["accessKeyDetails"]["accessKeyId"].clone();
    f["resources"][0]["user"]["name"] = d["resource"]["accessKeyDetails"]["userName"].clone();
    f
}

/// GuardDuty's attack sequence (events/attack-sequence.json) whose FINDING signals are `events`.
pub fn attack_sequence(events: &[&Value]) -> Value {
    let mut sequence = event_file("attack-sequence.json");
    let signal = sequence["detail"]["service"]["detection"]["sequence"]["signals"][0].clone();
    let signals: Vec<Value> = (events.iter())
        .map(|e| {
            let mut s = signal.clone();
            s["uid"] = e["detail"]["arn"].clone();
            s["name"] = e["detail"]["type"].clone();
            s["resourceUids"] = json!([e["detail"]["resource"]["accessKeyDetails"]["accessKeyId"]]);
            s
        })
        .collect();
    let seq = &mut sequence["detail"]["service"]["detection"]["sequence"];
    seq["signals"] = signals.into();
    seq["resources"] = json!([]);
    sequence
}

/// Cloud Custodian's `invoke-lambda` envelope, with `event` (or none) and `resources`.
pub fn custodian(event: Option<&Value>, resources: Value) -> Value {
    json!({
        "version": "0.9.40", "event": event, "account_id": "123456789012", "account": "prod",
        "region": "us-east-1", "action": {"type": "invoke-lambda", "function": "exfil-responder"},
        "policy": {"name": "contain-exfiltrated-credentials", "resource": "ec2"}, "resources": resources,
    })
}
