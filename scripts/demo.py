"""make demo: exfil-responder against the local AWS emulator, end to end.

Starts the moto server on a free loopback port, seeds a small account (a role, its instance
profile, a compromised instance tagged `cycle` and two siblings, and a protected role's instance),
asks the real CLI what a revocation would do (`readiness`), runs it on findings from events/,
prints each report and the state before and after, and stops the server.

The events/ files name example ids; the emulator makes its own, so the demo points the finding
at the seeded role id and instance id before handing it over. Nothing else in it changes.

moto has no GuardDuty findings API, so the function's verification (GetFindings) is pointed, through
AWS_ENDPOINT_URL_GUARDDUTY, at a small stand-in here that holds the one finding GuardDuty "raised";
it also answers CloudTrail's LookupEvents (AWS_ENDPOINT_URL_CLOUDTRAIL) with one record: the stolen key
assuming ReportsRole, which the walk of the key's trail (CHAIN) then revokes.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
BINARY = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "exfil-responder"
MOTO = Path(os.environ.get("MOTO_SERVER", ROOT / ".venv" / "bin" / "moto_server"))
REGION = "us-east-1"
KEY = "exfil-responder:action"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto():
    port = free_port()
    log = open(tempfile.gettempdir() + f"/exfil-responder-demo-moto-{port}.log", "w")
    proc = subprocess.Popen([str(MOTO), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"moto_server exited early; see {log.name}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("moto_server did not start within 60 s")


def heading(text):
    print(f"\n=== {text} " + "=" * max(0, 70 - len(text)))


def state(iam, ec2, role, instances):
    names = iam.list_role_policies(RoleName=role)["PolicyNames"]
    print(f"role {role}: inline policies {names or 'none'}")
    if "AWSRevokeOlderSessions" in names:
        doc = iam.get_role_policy(RoleName=role, PolicyName="AWSRevokeOlderSessions")["PolicyDocument"]
        doc = json.loads(urllib.parse.unquote(doc)) if isinstance(doc, str) else doc
        print(f"  AWSRevokeOlderSessions denies sessions issued before {doc['Statement'][0]['Condition']['DateLessThan']['aws:TokenIssueTime']}")
    record = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=role)["Tags"]}.get("exfil-responder:revoked-keys")
    if record:
        cutoff, *keys = record.split(" ")
        print(f"  revoked keys on record (issued before {cutoff}): {' '.join(keys)}")
    for name, iid in instances.items():
        assoc = ec2.describe_iam_instance_profile_associations(Filters=[{"Name": "instance-id", "Values": [iid]}])["IamInstanceProfileAssociations"]
        tags = {t["Key"]: t["Value"] for t in ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0].get("Tags", [])}
        marks = {k.split(":", 1)[1]: v for k, v in tags.items() if k.startswith("exfil-responder:") and k != KEY and v}
        profile = f"{assoc[0]['IamInstanceProfile']['Arn'].rsplit('/', 1)[1]} via {assoc[0]['AssociationId']}" if assoc else "NO PROFILE"
        print(f"  {name:6} {iid}  action={tags.get(KEY, '(none: default revoke)'):26} profile={profile}")
        if marks:
            print(f"  {'':6} marks: {marks}")


def start_guardduty(findings, trail):
    """GetFindings over GuardDuty's REST-JSON protocol, for the findings in `findings` (id -> detail);
    and CloudTrail's LookupEvents, for the records in `trail` ((key, region) -> [CloudTrail record])."""
    class GetFindings(BaseHTTPRequestHandler):
        def do_GET(self):
            # ListDetectors and GetDetector: the account's detector, enabled in every region.
            detectors = sorted({f["service"]["detectorId"] for f in findings.values()})
            path = self.path.split("?")[0]
            if path == "/detector":
                answer, status = json.dumps({"detectorIds": detectors}).encode(), 200
            elif path.removeprefix("/detector/") in detectors:
                answer, status = json.dumps({"status": "ENABLED", "serviceRole": "arn:aws:iam::123456789012:role/aws-service-role/"
                                             "guardduty.amazonaws.com/AWSServiceRoleForAmazonGuardDuty"}).encode(), 200
            else:
                answer, status = b"{}", 404
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if self.headers.get("X-Amz-Target", "").endswith("LookupEvents"):
                # CloudTrail's event history (not in moto either), by the key asked and the region
                # the request was signed for.
                region = self.headers.get("Authorization", "").split("Credential=")[-1].split("/")[2:3]
                key = body["LookupAttributes"][0]["AttributeValue"]
                records = trail.get((key, region[0] if region else ""), [])
                events = [{"EventId": r["eventID"], "EventName": r["eventName"], "CloudTrailEvent": json.dumps(r)} for r in records]
                answer = json.dumps({"Events": events}).encode()
            else:
                found = [findings[i] for i in body.get("findingIds", []) if i in findings]
                answer = json.dumps({"findings": found}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), GetFindings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def respond(env, event, title):
    heading(title)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(event, f)
    cmd = [str(BINARY), "invoke", "--event", f.name]
    print("$ exfil-responder invoke --event", "<event>")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    os.unlink(f.name)
    if out.returncode not in (0, 1):
        sys.exit(f"exfil-responder failed (exit {out.returncode}):\n{out.stderr}")
    report = json.loads(out.stdout)
    summary = {k: report.get(k) for k in ("outcome", "outcomeReason", "verification", "cutoff", "warnings") if report.get(k)}
    print(json.dumps(summary, indent=2))
    if chain := report.get("chain"):
        print(f"  stolen key's trail (CHAIN={chain['mode']}): {chain['root'].get('events', 0)} events read, "
              f"{len(chain['needsAttention'])} calls for a person")
        for node in chain["root"]["children"]:
            print(f"    {chain['root']['key']} -> {node.get('roleArn') or node.get('user')}: {node['action']}"
                  + (f" ({node['detail']})" if node.get("detail") else ""))
    for inst in report.get("instances", []):
        print(f"  {inst['instanceId']} ({inst['relation']}, {inst['action']} from {inst['actionSource']}): {inst['result']}")
    write_ops = ("PutRolePolicy", "CreateTags", "DisassociateIamInstanceProfile", "AssociateIamInstanceProfile", "RebootInstances")
    done = [s["step"] for s in report.get("steps", []) if s["step"] in write_ops and s["outcome"] == "ok"]
    planned = [s["step"] for s in report.get("steps", []) if s["outcome"] == "planned"]
    print(f"  writes: {done or 'none'}" + (f"   planned, not done: {planned}" if planned else ""))
    print(f"  (exit code {out.returncode}; the full report is JSON on stdout)")
    return report


def readiness(env):
    heading("Before any incident: what would a revocation do? (exfil-responder readiness)")
    print("$ exfil-responder readiness")
    out = subprocess.run([str(BINARY), "readiness"], env=env, capture_output=True, text=True)
    print(out.stdout.rstrip())
    print(f"  (exit code {out.returncode}: 3 when a role cannot be contained; --json for the report)")
    if out.returncode not in (0, 3):
        sys.exit(f"exfil-responder readiness failed (exit {out.returncode}):\n{out.stderr}")
    report = subprocess.run([str(BINARY), "readiness", "--json"], env=env, capture_output=True, text=True)
    return out.returncode, out.stdout, json.loads(report.stdout)


def main():
    if not BINARY.exists():
        sys.exit(f"{BINARY} not found: run `make demo`, which builds it")
    proc, endpoint = start_moto()
    try:
        creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        kw = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        iam, ec2 = boto3.client("iam", **kw), boto3.client("ec2", **kw)

        heading(f"Seeding the emulator at {endpoint}")
        role = iam.create_role(RoleName="WebAppRole", AssumeRolePolicyDocument=TRUST)["Role"]
        profile = iam.create_instance_profile(InstanceProfileName="WebAppProfile")["InstanceProfile"]
        iam.add_role_to_instance_profile(InstanceProfileName="WebAppProfile", RoleName="WebAppRole")

        def launch(name, action):
            tags = [{"Key": "Name", "Value": name}] + ([{"Key": KEY, "Value": action}] if action else [])
            return ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, IamInstanceProfile={"Arn": profile["Arn"]},
                                     TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])["Instances"][0]["InstanceId"]

        instances = {"web-1": launch("web-1", "cycle"), "web-2": launch("web-2", "cycle"), "batch": launch("batch", None)}
        # A role the business marked never to be touched by automation, used by one instance.
        iam.create_role(RoleName="VaultRole", AssumeRolePolicyDocument=TRUST,
                        Tags=[{"Key": "exfil-responder:protected", "Value": "true"}])
        vault_profile = iam.create_instance_profile(InstanceProfileName="VaultProfile")["InstanceProfile"]
        iam.add_role_to_instance_profile(InstanceProfileName="VaultProfile", RoleName="VaultRole")
        ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, IamInstanceProfile={"Arn": vault_profile["Arn"]})
        print(f"role WebAppRole ({role['RoleId']}) in profile WebAppProfile, used by 3 instances;")
        print(f"web-1 ({instances['web-1']}) is the one whose credentials GuardDuty saw used from outside AWS.")
        print("role VaultRole (tagged exfil-responder:protected) in profile VaultProfile, used by 1 instance.")
        heading("Before")
        state(iam, ec2, "WebAppRole", instances)

        finding = json.loads((ROOT / "events" / "outside-aws.json").read_text())
        keys = finding["detail"]["resource"]["accessKeyDetails"]
        keys["principalId"] = f"{role['RoleId']}:{instances['web-1']}"
        finding["detail"]["resource"]["instanceDetails"]["instanceId"] = instances["web-1"]
        # With web-1's stolen key the attacker assumed ReportsRole: what CloudTrail recorded.
        reports = iam.create_role(RoleName="ReportsRole", AssumeRolePolicyDocument=TRUST)["Role"]
        stolen = keys["accessKeyId"]
        assumed = {
            "eventVersion": "1.08", "eventID": "demo-assume-reports", "eventType": "AwsApiCall",
            "eventTime": (datetime.now(timezone.utc) - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole", "awsRegion": REGION,
            "userIdentity": {"type": "AssumedRole", "accessKeyId": stolen, "accountId": finding["detail"]["accountId"]},
            "recipientAccountId": finding["detail"]["accountId"],
            "requestParameters": {"roleArn": reports["Arn"], "roleSessionName": "exfil"},
            "responseElements": {
                "credentials": {"accessKeyId": "ASIADEMOREPORTS00001", "expiration": "later"},
                "assumedRoleUser": {"assumedRoleId": f"{reports['RoleId']}:exfil",
                                    "arn": f"arn:aws:sts::{finding['detail']['accountId']}:assumed-role/ReportsRole/exfil"},
            },
        }
        guardduty, guardduty_endpoint = start_guardduty({finding["detail"]["id"]: finding["detail"]}, {(stolen, REGION): [assumed]})
        print(f"GuardDuty's findings API and CloudTrail's LookupEvents (neither in moto) are this demo's stand-in at {guardduty_endpoint}:")
        print("it holds web-1's finding, and CloudTrail's record of the stolen key assuming ReportsRole.")
        env = {"PATH": os.environ.get("PATH", ""), "AWS_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL_GUARDDUTY": guardduty_endpoint,
               "AWS_ENDPOINT_URL_CLOUDTRAIL": guardduty_endpoint,
               "AWS_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true", **creds}

        ready_code, table, ready = readiness(env)
        said = {i["id"]: i["experience"] for r in ready["readiness"]["accounts"][0]["roles"] for i in r["instances"]}

        forged = json.loads(json.dumps(finding))
        forged["detail"]["id"] = "0badc0de0badc0de0badc0de0badc0de"
        forged["detail"]["arn"] = forged["detail"]["arn"].replace(finding["detail"]["id"], forged["detail"]["id"])
        refused = respond(env, forged, "A forged event: GuardDuty has no such finding")
        first = respond(env, finding, "GuardDuty finding (events/outside-aws.json): OutsideAWS for web-1, confirmed by GuardDuty")
        heading("After")
        state(iam, ec2, "WebAppRole", instances)

        again = respond(env, finding, "The same finding delivered again (EventBridge and Lambda deliver at least once)")
        sample = respond(env, json.loads((ROOT / "events" / "sample-finding.json").read_text()), "A GuardDuty sample finding (events/sample-finding.json)")
        planned = respond(env, {"instanceId": instances["batch"], "action": "isolate", "dryRun": True, "reason": "IR-1042: what would isolating batch do?"},
                          "A responder's dry run (manual payload, as in events/manual-dry-run.json)")
        heading("After everything")
        state(iam, ec2, "WebAppRole", instances)

        guardduty.shutdown()
        outcomes = [refused["outcome"], first["outcome"], again["outcome"], sample["outcome"], planned["outcome"]]
        expected = ["refused", "remediated", "already-remediated", "skipped", "planned"]
        reached = [n["action"] for n in first["chain"]["root"]["children"]]
        foreseen = {name: said.get(iid) for name, iid in instances.items()}
        print(f"readiness had said: {foreseen}")
        if ready_code != 3 or "| VaultRole | **REFUSED** |" not in table or \
                foreseen != {"web-1": "cycled", "web-2": "cycled", "batch": "without-credentials"}:
            sys.exit("demo FAILED: readiness did not say what the containment then did")
        iam.get_role_policy(RoleName="ReportsRole", PolicyName="AWSRevokeOlderSessions")  # fails if not revoked
        print(f"ReportsRole, which the stolen key assumed: {reached}, and it holds AWSRevokeOlderSessions")
        if reached != ["revoked"]:
            sys.exit("demo FAILED: the role the stolen key assumed was not revoked")
        heading("Summary")
        print(f"outcomes {outcomes}")
        if outcomes != expected:
            sys.exit(f"demo FAILED: expected {expected}")
        print("demo OK: readiness foresaw it and flagged the protected VaultRole; the forged event was refused,\n"
              "sessions revoked, web-1 and web-2 re-attached with fresh credentials, batch left revoked,\n"
              "ReportsRole (which the stolen key assumed) revoked too, the duplicate changed nothing, the\n"
              "sample was skipped, and the dry run wrote nothing.")
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    main()
