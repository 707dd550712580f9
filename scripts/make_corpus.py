#!/usr/bin/env python3
"""Writes tests/corpus/: bad payloads, each of which must end in a clear error or a skip, with no
panic and no write (tests/corpus.rs). Built from events/outside-aws.json (and the other doors'
files in events/) by one mutation each; re-run after changing those events. The multi-MB and deeply nested payloads are made by the test
itself, to keep the repository small."""

import copy
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "corpus"
BASE = json.loads((ROOT / "events" / "outside-aws.json").read_text())
TEXT = json.dumps(BASE, indent=2)

files: dict[str, str] = {}


def raw(name: str, text: str) -> None:
    files[name] = text


def mutated(name: str, path: list, value=None, delete: bool = False) -> None:
    event = copy.deepcopy(BASE)
    node = event
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    files[name] = json.dumps(event, indent=2, ensure_ascii=False)


D = ["detail"]
KEYS = D + ["resource", "accessKeyDetails"]
INSTANCE = D + ["resource", "instanceDetails", "instanceId"]

# Truncated and invalid JSON.
for cut in (1, 17, 64, 200, 512, 1024, len(TEXT) // 2, len(TEXT) - 40, len(TEXT) - 2, len(TEXT) - 1):
    raw(f"truncated-at-{cut}", TEXT[:cut])
for name, text in {
    "empty": "",
    "whitespace": "   \n",
    "trailing-comma": TEXT[:-2] + ",\n}",
    "single-quotes": TEXT.replace('"', "'"),
    "nan": '{"detail": NaN}',
    "bare-word": "finding",
    "two-documents": TEXT + TEXT,
    "bom-and-garbage": "\ufeff{]",
    "unterminated-string": '{"detail": "abc',
    "control-character": '{"detail": "a\u0001b"}',
    "invalid-utf8-escape": '{"detail": "\\ud800"}',
    "lone-bracket": "[",
}.items():
    raw(f"invalid-{name}", text)

# Not an object, or empty.
for name, value in {
    "null": None, "number": 42, "string": "finding", "true": True, "empty-object": {},
    "empty-array": [], "array-of-empty-array": [[]], "array-of-null": [None], "array-of-numbers": [1, 2],
}.items():
    raw(f"shape-{name}", json.dumps(value))

# Wrong types.
for name, path, value in [
    ("detail-string", D, "detail"),
    ("detail-array", D, []),
    ("type-number", D + ["type"], 5),
    ("id-object", D + ["id"], {}),
    ("account-number", D + ["accountId"], 123456789012),
    ("region-number", D + ["region"], 7),
    ("resource-string", D + ["resource"], "resource"),
    ("access-key-details-array", KEYS, []),
    ("username-array", KEYS + ["userName"], ["WebAppRole"]),
    ("username-number", KEYS + ["userName"], 1),
    ("principal-number", KEYS + ["principalId"], 5),
    ("instance-number", INSTANCE, 123),
    ("instance-object", INSTANCE, {"id": "i-0a1b2c3d4e5f60718"}),
    ("service-string", D + ["service"], "guardduty"),
    ("first-seen-word", D + ["service", "eventFirstSeen"], "yesterday"),
    ("first-seen-number", D + ["service", "eventFirstSeen"], 1700000000),
    ("detector-number", D + ["service", "detectorId"], 12),
    ("source-number", ["source"], 1),
    ("detail-type-array", ["detail-type"], ["GuardDuty Finding"]),
    ("user-type-number", KEYS + ["userType"], 3),
]:
    mutated(f"type-{name}", path, value)

# Missing and null fields.
for name, path in [
    ("detail", D), ("type", D + ["type"]), ("id", D + ["id"]), ("account", D + ["accountId"]),
    ("region", D + ["region"]), ("resource", D + ["resource"]), ("access-key-details", KEYS),
    ("username", KEYS + ["userName"]), ("principal", KEYS + ["principalId"]),
    ("service", D + ["service"]), ("source", ["source"]), ("detail-type", ["detail-type"]),
]:
    mutated(f"missing-{name}", path, delete=True)
    mutated(f"null-{name}", path, None)

# Role names that are not role names: wildcards, paths, policy metacharacters, look-alikes.
for name, value in {
    "star": "*", "prefix-star": "WebApp*", "question": "WebApp?ole", "dot-dot": "../admin",
    "path": "role/../../Admin", "too-long": "R" * 65, "empty": "", "space": "WebApp Role",
    "quote": 'WebAppRole"}]}', "comma": "WebAppRole,Admin", "newline": "WebAppRole\nAdmin",
    "cyrillic-a": "WebАppRole", "fullwidth": "ＷｅｂＡｐｐＲｏｌｅ", "nul": "WebAppRole\u0000",
    "rtl-override": "WebAppRole\u202e", "policy-variable": "${aws:username}", "arn": "arn:aws:iam::123456789012:role/WebAppRole",
}.items():
    mutated(f"role-{name}", KEYS + ["userName"], value)

# Instance ids that are not instance ids.
for name, value in {
    "star": "i-*", "dot-dot": "i-../x", "path": "../../i-0a1b2c3d4e5f60718", "quote": 'i-0a1b2c3d4e5f60718"',
    "fullwidth": "i-０ａ１ｂ２ｃ３ｄ", "word": "instance", "bare-prefix": "i-", "not-hex": "i-zzzzzzzzzzzzzzzzz",
    "too-long": "i-" + "0" * 40,
}.items():
    mutated(f"instance-{name}", INSTANCE, value)

# Finding and detector ids that would change the GuardDuty request path.
for name, path, value in [
    ("detector-dot-dot", D + ["service", "detectorId"], "../../detector"),
    ("detector-slash", D + ["service", "detectorId"], "abc/findings/archive"),
    ("detector-encoded", D + ["service", "detectorId"], "%2e%2e%2f"),
    ("finding-dot-dot", D + ["id"], "../../x"),
    ("finding-query", D + ["id"], "x?y=z"),
    ("finding-empty", D + ["id"], ""),
]:
    mutated(f"id-{name}", path, value)

# ARNs and accounts from elsewhere.
for name, path, value in [
    ("arn-china", D + ["arn"], BASE["detail"]["arn"].replace("arn:aws:", "arn:aws-cn:")),
    ("arn-govcloud", D + ["arn"], BASE["detail"]["arn"].replace("arn:aws:", "arn:aws-us-gov:")),
    ("arn-other-account", D + ["arn"], BASE["detail"]["arn"].replace("123456789012", "999999999999")),
    ("arn-other-detector", D + ["arn"], BASE["detail"]["arn"].replace("detector/12abc", "detector/99abc")),
    ("arn-not-guardduty", D + ["arn"], "arn:aws:s3:::bucket"),
    ("account-other", D + ["accountId"], "999999999999"),
    ("account-short", D + ["accountId"], "12345"),
    ("account-letters", D + ["accountId"], "12345678901a"),
    ("region-path", D + ["region"], "../us-east-1"),
    ("region-quote", D + ["region"], 'us-east-1"'),
    ("principal-other-role", KEYS + ["principalId"], "AROAOTHERROLE:i-0a1b2c3d4e5f60718"),
]:
    mutated(f"elsewhere-{name}", path, value)

# Not our finding, though close.
for name, path, value in [
    ("type-trailing-space", D + ["type"], BASE["detail"]["type"] + " "),
    ("type-lowercase", D + ["type"], BASE["detail"]["type"].lower()),
    ("type-other", D + ["type"], "UnauthorizedAccess:IAMUser/MaliciousIPCaller"),
    ("source-other", ["source"], "aws.securityhub"),
    ("user-type-iam-user", KEYS + ["userType"], "IAMUser"),
]:
    mutated(f"notours-{name}", path, value)

# Manual payloads gone wrong.
for name, value in {
    "role-star": {"roleName": "*"}, "role-number": {"roleName": 5}, "instance-dot-dot": {"instanceId": "../"},
    "both": {"roleName": "WebAppRole", "instanceId": "i-0a1b2c3d4e5f60718", "extra": True},
    "dry-run-string": {"roleName": "WebAppRole", "dryRun": "yes"},
    "finding-without-detector": {"findingId": "7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b"},
    "finding-bad-account": {"detectorId": "12abc34d567e8fa901bc2d34e56789f0", "findingId": "x", "accountId": "1"},
    "unknown-fields-only": {"hello": "world"},
}.items():
    raw(f"manual-{name}", json.dumps(value))

# Release and restore gone wrong: each refused before any write (the role holds no revocation,
# and the instance was never isolated, so even a payload wrongly accepted finds nothing to do).
for name, value in {
    "force-without-reason": {"roleName": "WebAppRole", "force": True},
    "force-blank-reason": {"roleName": "WebAppRole", "force": True, "reason": "   "},
    "force-string": {"roleName": "WebAppRole", "force": "true", "reason": "r"},
    "role-star": {"roleName": "*"},
    "role-arn": {"roleName": "arn:aws:iam::123456789012:role/WebAppRole"},
    "role-trailing-space": {"roleName": "WebAppRole "},
    "with-instance": {"roleName": "WebAppRole", "instanceId": "i-0a1b2c3d4e5f60718"},
    "with-region": {"roleName": "WebAppRole", "region": "us-east-1"},
    "other-account": {"roleName": "WebAppRole", "accountId": "999999999999"},
    "typo-dryrun": {"roleName": "WebAppRole", "dryrun": True},
    "no-role": {},
    "long-requester": {"roleName": "WebAppRole", "requestedBy": "x" * 600},
}.items():
    raw(f"release-{name}", json.dumps({"operation": "release", **value}))
for name, value in {
    "not-isolated": {"instanceId": "i-0a1b2c3d4e5f60718"},
    "instance-traversal": {"instanceId": "i-../../x"},
    "region-path": {"instanceId": "i-0a1b2c3d4e5f60718", "region": "../us-east-1"},
    "with-role": {"instanceId": "i-0a1b2c3d4e5f60718", "roleName": "WebAppRole"},
    "forced": {"instanceId": "i-0a1b2c3d4e5f60718", "force": True, "reason": "r"},
    "no-instance": {},
}.items():
    raw(f"restore-{name}", json.dumps({"operation": "restore", **value}))
for name, value in {
    "unknown": {"operation": "destroy", "roleName": "WebAppRole"},
    "case": {"operation": "Release", "roleName": "WebAppRole"},
    "array": {"operation": ["release"], "roleName": "WebAppRole"},
    "null": {"operation": None, "roleName": "WebAppRole"},
}.items():
    raw(f"operation-{name}", json.dumps(value))

# Evidence and hardening are the deployment's choice (FORENSICS, HARDEN), never a payload's: a
# payload that asks for them, or for them alone as an operation, is refused.
I = "i-0a1b2c3d4e5f60718"
for name, value in {
    "manual-forensics-field": {"instanceId": I, "forensics": "snapshot"},
    "manual-harden-field": {"roleName": "WebAppRole", "harden": "imdsv2"},
    "manual-isolate-with-snapshot": {"instanceId": I, "action": "isolate", "snapshot": True},
    "operation-snapshot": {"operation": "snapshot", "instanceId": I},
    "operation-harden": {"operation": "harden", "instanceId": I},
}.items():
    raw(name, json.dumps(value))

# What only an AUTO_RELEASE schedule sends, forged or bent: never forced, a schedule's name only,
# release only; a well-formed one finds no revocation of ours (and the corpus runs with it on).
S = "release-123456789012-20261202T0401Z-WebAppRole-982b3cc8"
for name, value in {
    "release-schedule-forced": {"operation": "release", "roleName": "WebAppRole", "schedule": S, "force": True,
                                "reason": "r"},
    "release-schedule-path": {"operation": "release", "roleName": "WebAppRole", "schedule": "../" + S},
    "release-schedule-too-long": {"operation": "release", "roleName": "WebAppRole", "schedule": "r" * 65},
    "release-schedule-number": {"operation": "release", "roleName": "WebAppRole", "schedule": 7},
    "release-schedule-no-revocation": {"operation": "release", "roleName": "WebAppRole", "schedule": S},
    "restore-schedule": {"operation": "restore", "instanceId": I, "schedule": S},
    "manual-schedule-field": {"roleName": "WebAppRole", "schedule": S},
}.items():
    raw(name, json.dumps(value))

# The other doors (Security Hub's ASFF and OCSF, attack sequences, Cloud Custodian), bent: each a
# clear error or a skip even with verification off, where ASFF is acted on as carried.
def event_file(name: str) -> dict:
    return json.loads((ROOT / "events" / name).read_text())


def variant(name: str, base: str, change) -> None:
    event = event_file(base)
    change(event)
    files[name] = json.dumps(event, indent=2, ensure_ascii=False)


def asff_finding(event: dict) -> dict:
    return event["detail"]["findings"][0]


def set_in(node: dict, path: list, value) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


OTHER_ACCOUNT = "arn:aws:guardduty:us-east-1:999999999999:detector/12abc34d567e8fa901bc2d34e56789f0/finding/7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b"
for name, path, value in [
    ("id-other-account", ["Id"], OTHER_ACCOUNT),
    ("id-not-guardduty", ["Id"], "arn:aws:inspector2:us-east-1:123456789012:finding/7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b"),
    ("id-traversal", ["Id"], "arn:aws:guardduty:us-east-1:123456789012:detector/12abc34d567e8fa901bc2d34e56789f0/finding/../x"),
    ("id-number", ["Id"], 7),
    ("region-other", ["Region"], "eu-west-1"),
    ("product-lookalike", ["ProductArn"], "arn:aws:securityhub:us-east-1:999999999999:product/999999999999/guardduty-x"),
    ("product-name-lookalike", ["ProductName"], "GuardDuty "),
    ("types-lookalike", ["Types"], ["TTPs/Initial Access/UnauthorizedAccess:IAMUser-InstanceCredentialExfiltrationX"]),
    ("types-string", ["Types"], "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"),
    ("types-empty", ["Types"], []),
    ("workflow-notified", ["Workflow", "Status"], "NOTIFIED"),
    ("workflow-suppressed", ["Workflow", "Status"], "SUPPRESSED"),
    ("sample", ["Sample"], True),
    ("resources-none", ["Resources"], []),
    ("resources-object", ["Resources"], {"Type": "AwsIamAccessKey"}),
    ("principal-iam-user", ["Resources", 0, "Details", "AwsIamAccessKey", "PrincipalType"], "IAMUser"),
    ("principal-no-role-id", ["Resources", 0, "Details", "AwsIamAccessKey", "PrincipalId"], "i-0a1b2c3d4e5f60718"),
    ("principal-name-star", ["Resources", 0, "Details", "AwsIamAccessKey", "PrincipalName"], "*"),
    ("key-id-path", ["Resources", 0, "Id"], "AWS::IAM::AccessKey:../ASIA"),
    ("instance-traversal", ["Resources", 1, "Id"], "arn:aws:ec2:us-east-1:123456789012:instance/i-../../x"),
    ("detector-disagrees", ["ProductFields", "aws/guardduty/service/detectorId"], "ffffffffffffffffffffffffffffffff"),
    ("first-seen-garbled", ["ProductFields", "aws/guardduty/service/eventFirstSeen"], "yesterday"),
    ("product-fields-number", ["ProductFields", "aws/guardduty/service/archived"], False),
]:
    variant(f"asff-{name}", "securityhub-imported.json", lambda e, p=path, v=value: set_in(asff_finding(e), p, v))
variant("asff-two-keys", "securityhub-imported.json",
        lambda e: asff_finding(e)["Resources"].append(copy.deepcopy(asff_finding(e)["Resources"][0])))
variant("asff-findings-empty", "securityhub-imported.json", lambda e: e["detail"].update(findings=[]))
variant("asff-findings-object", "securityhub-imported.json", lambda e: e["detail"].update(findings={}))
variant("asff-insight-results", "securityhub-imported.json", lambda e: e.update({"detail-type": "Security Hub Insight Results"}))
variant("asff-action-without-name", "securityhub-custom-action.json", lambda e: e["detail"].pop("actionName"))
variant("asff-action-only-inspector", "securityhub-custom-action.json",
        lambda e: e["detail"].update(findings=e["detail"]["findings"][1:]))
for name, path, value in [
    ("uid-other-account", ["finding_info", "uid"], OTHER_ACCOUNT),
    ("uid-bare-id", ["finding_info", "uid"], "7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b"),
    ("account-disagrees", ["cloud", "account", "uid"], "999999999999"),
    ("product-lookalike", ["metadata", "product"], {"name": "GuardDuty",
                                                    "uid": "arn:aws:securityhub:us-east-1:999999999999:productv2/999999999999/x"}),
    ("types-lookalike", ["finding_info", "types"], ["UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWSX"]),
    ("types-number", ["finding_info", "types"], 7),
    ("status-resolved", ["status"], "Resolved"),
]:
    variant(f"ocsf-{name}", "securityhub-ocsf.json",
            lambda e, p=path, v=value: set_in(e["detail"]["findings"][0], p, v))
SEQ = ["detail", "service", "detection", "sequence"]
for name, path, value in [
    ("signal-other-account", SEQ + ["signals", 0, "uid"], OTHER_ACCOUNT),
    ("signal-not-an-arn", SEQ + ["signals", 1, "uid"], "7ec8a2f1b3d44e5f9a0b1c2d3e4f5a6b"),
    ("signals-string", SEQ + ["signals"], "FINDING"),
    ("no-detection", ["detail", "service", "detection"], None),
    ("type-lookalike", ["detail", "type"], "AttackSequence:IAM/CompromisedCredentialsX"),
]:
    variant(f"sequence-{name}", "attack-sequence.json", lambda e, p=path, v=value: set_in(e, p, v))
# Both signals still name real-looking findings: with only the second bent, the first is fetched
# from GuardDuty, which holds none here, and refused.
variant("sequence-no-findings", "attack-sequence.json",
        lambda e: set_in(e, SEQ + ["signals"], [s for s in e["detail"]["service"]["detection"]["sequence"]["signals"]
                                              if s["type"] != "FINDING"]))
CUSTODIAN = {"version": "0.9.40", "event": None, "account_id": "123456789012", "account": "prod",
             "region": "us-east-1", "action": {"type": "invoke-lambda"},
             "policy": {"name": "contain", "resource": "ec2"}, "resources": [{"InstanceId": I}]}
for name, change in {
    "region-all": {"region": "all"},
    "region-missing": {"region": None},
    "account-alias": {"account_id": "prod"},
    "resources-bucket": {"resources": [{"Name": "bucket"}]},
    "resources-empty": {"resources": []},
    "instance-traversal": {"resources": [{"InstanceId": "i-../../x"}]},
    "instance-number": {"resources": [{"InstanceId": 7}]},
    "policy-unnamed": {"policy": {}},
    "event-not-guardduty": {"event": {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification",
                                      "detail": {}}},
    "event-garbled": {"event": {"source": "aws.guardduty", "detail-type": "GuardDuty Finding", "detail": 7}},
}.items():
    raw(f"custodian-{name}", json.dumps({**CUSTODIAN, **change}))

# A follow-up anyone allowed to invoke the function can send: it must stand on a key a containment
# of the role revoked, in that incident's window, or be refused without a read or a write.
FOLLOW_UP = {**event_file("chain-follow-up.json"), "dryRun": False}
for name, change in {
    "key-not-revoked": {"accessKeyId": "ASIAOTHERPRINCIPAL01"},
    "key-long-lived": {"accessKeyId": "AKIAOTHERPRINCIPAL01"},
    "key-lowercase": {"accessKeyId": "asiaqx3examplekey7n2"},
    "role-not-contained": {"roleName": "OtherRole"},
    "role-path": {"roleName": "../WebAppRole"},
    "since-after-cutoff": {"since": "2030-01-01T00:00:00Z"},
    "since-garbled": {"since": "yesterday"},
    "account-other": {"accountId": "999999999999"},
    "walked-too-many": {"walked": [f"ASIAWALKED{n:010d}" for n in range(201)]},
    "schedule-traversal": {"schedule": "../release"},
    "unknown-field": {"action": "isolate"},
}.items():
    raw(f"follow-up-{name}", json.dumps({**FOLLOW_UP, **change}))

OUT.mkdir(parents=True, exist_ok=True)
for old in OUT.glob("*.json"):
    old.unlink()
for i, (name, text) in enumerate(sorted(files.items())):
    (OUT / f"{name}.json").write_text(text)
print(f"wrote {len(files)} payloads to {OUT.relative_to(ROOT)}")
