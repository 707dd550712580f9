"""Checks of the templates that sam validate and cfn-lint cannot make (run by `make validate`).

1. parliament lints every IAM policy in template.yaml, member-role.yaml and forwarding-rule.yaml,
   with intrinsic functions resolved to example values. Any finding fails.
2. The function's role allows exactly what the code calls: the SDK operations called in
   the adapters in src/aws/ (every file there), plus what Lambda itself does with
   the role (logs, traces, destinations). The member role allows exactly the same IAM, EC2 and
   GuardDuty calls, trusts only the responder's role, and denies revoking itself. A missing
   permission or an unused one fails.
3. The EventBridge patterns, evaluated here (the other tools treat them as free-form JSON): each
   event in events/ (and variants that must be left alone) is taken by the one rule meant for it
   or by none: GuardDuty's credential-exfiltration findings and attack sequences; new, active ones
   as Security Hub imports them (ASFF, OCSF); the custom action's. The cross-region forwarding
   rule uses the GuardDuty rule's very pattern.
4. What the cfn-lint rules disabled in .cfnlintrc.yaml would have checked, checked the way this
   template does it: the log group has a retention, the on-failure destination is set, and each
   dead-letter queue has an alarm on its depth.
5. The template's version is Cargo.toml's, and the optional dashboard shows only metrics the function
   emits (src/metrics.rs), in its namespace and under its FunctionName.

Exit status 0 when every check passes; otherwise each failure is printed and the status is 1.
`--self-test` first proves that each check fails on a template broken the way it looks for.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import parliament
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = {
    "AWS::Partition": "aws",
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::StackName": "exfil-responder",
    # Optional parameters, as a user would set them.
    "SuccessTopicArn": "arn:aws:sns:us-east-1:123456789012:exfil-responder-reports",
    "NotificationTopicArn": "arn:aws:sns:us-east-1:123456789012:security-chat",
    "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:security-alarms",
    "PermissionsBoundaryArn": "arn:aws:iam::123456789012:policy/boundary",
    "MemberRoleName": "exfil-responder-member",
    "ArchiveFindings": "true",
    "ResponderRoleArn": "arn:aws:iam::123456789012:role/exfil-responder-ResponderRole-EXAMPLE",
    "ResponderRegion": "us-east-1",
}
TEMPLATES = {"main": "template.yaml", "member": "member-role.yaml", "forwarding": "forwarding-rule.yaml"}
# What Lambda does with the function's role, rather than the code.
RUNTIME_ACTIONS = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "sqs:SendMessage",
    "sns:Publish",
}
# Re-attaching a profile passes its role to EC2; a release or follow-up schedule passes the scheduler's role.
IMPLIED_BY = {"iam:PassRole": {"ec2:AssociateIamInstanceProfile", "scheduler:CreateSchedule"}}
# GetCallerIdentity needs no permission.
NEEDS_NO_PERMISSION = {"sts:GetCallerIdentity"}
FINDING_TYPES = [
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS",
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration",
]
SEQUENCE_TYPES = ["AttackSequence:IAM/CompromisedCredentials", "AttackSequence:EC2/CompromisedInstanceGroup"]

failures: list[str] = []


def fail(message: str) -> None:
    failures.append(message)


def load_templates() -> dict:
    loaded = {}
    for key, name in TEMPLATES.items():
        template, matches = decode(str(ROOT / name))
        if matches:
            sys.exit(f"{name} does not parse: {matches}")
        loaded[key] = template
    return loaded


def resolve(value, template: dict):
    """Replace intrinsic functions by example values, taking the true branch of each Fn::If."""
    if isinstance(value, list):
        return [v for v in (resolve(v, template) for v in value) if v is not None]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            if arg == "AWS::NoValue":
                return None
            if arg in EXAMPLE:
                return EXAMPLE[arg]
            if arg in template.get("Parameters", {}):
                default = template["Parameters"][arg].get("Default", "")
                return default or f"example-{arg}"
            return example_arn(arg, template)
        if key == "Fn::Sub":
            text = arg if isinstance(arg, str) else arg[0]
            variables = {} if isinstance(arg, str) else {k: resolve(v, template) for k, v in arg[1].items()}
            def part(m):
                name = m[1]
                if name in variables:
                    return str(variables[name])
                ref = {"Fn::GetAtt": name.split(".", 1)} if "." in name and not name.startswith("AWS::") else {"Ref": name}
                return str(resolve(ref, template))
            return re.sub(r"\$\{([^}]+)\}", part, text)
        if key == "Fn::Join":
            return arg[0].join(str(v) for v in resolve(arg[1], template))
        if key == "Fn::Split":
            return str(resolve(arg[1], template)).split(arg[0])
        if key == "Fn::GetAtt":
            name, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return example_arn(name, template) if attr == "Arn" else f"example-{name}-{attr}"
        if key == "Fn::If":
            return resolve(arg[1], template)
    return {k: r for k, r in ((k, resolve(v, template)) for k, v in value.items()) if r is not None}


def example_arn(logical_id: str, template: dict) -> str:
    kind = template["Resources"][logical_id]["Type"]
    account = EXAMPLE["AWS::AccountId"]
    if kind == "AWS::SecurityHub::ActionTarget":
        target = template["Resources"][logical_id]["Properties"]["Id"]
        return f"arn:aws:securityhub:us-east-1:{account}:action/custom/{target}"
    return {
        "AWS::IAM::Role": f"arn:aws:iam::{account}:role/exfil-responder-{logical_id}-EXAMPLE",
        "AWS::SQS::Queue": f"arn:aws:sqs:us-east-1:{account}:exfil-responder-{logical_id}-EXAMPLE",
        "AWS::Logs::LogGroup": f"arn:aws:logs:us-east-1:{account}:log-group:/aws/lambda/exfil-responder:*",
        "AWS::Events::Rule": f"arn:aws:events:us-east-1:{account}:rule/exfil-responder-{logical_id}-EXAMPLE",
        "AWS::DynamoDB::Table": f"arn:aws:dynamodb:us-east-1:{account}:table/exfil-responder-{logical_id}-EXAMPLE",
        "AWS::Serverless::Function": f"arn:aws:lambda:us-east-1:{account}:function:exfil-responder-{logical_id}-EXAMPLE",
    }.get(kind, f"example-{logical_id}")


def policies(template: dict):
    """Every IAM policy document in the template, with where it is."""
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::RolePolicy":
            yield name, props["PolicyDocument"]
        elif resource["Type"] == "AWS::IAM::Role":
            # Not the trust policy: parliament wants a Resource, which a trust policy has not.
            for policy in props.get("Policies", []):
                yield f"{name}/{policy['PolicyName']}", policy["PolicyDocument"]
        elif resource["Type"] == "AWS::SQS::QueuePolicy":
            yield name, props["PolicyDocument"]


def check_parliament(templates: dict) -> int:
    count = 0
    for key, template in templates.items():
        for where, document in policies(template):
            count += 1
            text = json.dumps(resolve(document, template))
            for finding in parliament.analyze_policy_string(text).findings:
                fail(f"parliament, {TEMPLATES[key]} {where}: {finding.severity} {finding.title}: {finding.detail}")
    return count


# Operations authorised by another operation's action (the API reference says so): Security Hub's
# BatchUpdateFindingsV2 is allowed by securityhub:BatchUpdateFindings.
AUTHORISED_AS = {"securityhub:BatchUpdateFindingsV2": "securityhub:BatchUpdateFindings"}


def code_actions() -> set[str]:
    # Every AWS call goes through an adapter in src/aws/.
    source = "".join(f.read_text() for f in sorted((ROOT / "src" / "aws").glob("*.rs")))
    calls = set(re.findall(r"\b(iam|ec2|sts|guardduty|dynamodb|scheduler|securityhub|sns|cloudtrail|autoscaling)\s*\.\s*([a-z][a-z0-9_]*)\(\)", source))
    not_operations = {"clone", "config"}
    operations = {
        f"{service}:{''.join(part.capitalize() for part in op.split('_'))}"
        for service, op in calls
        if op not in not_operations
    }
    # batch_update_findings_v2 reads as ...FindingsV2 once capitalised.
    return {AUTHORISED_AS.get(o, o) for o in operations}


def actions_of(template: dict, policy: str, effect: str = "Allow") -> set[str]:
    document = resolve(template["Resources"][policy]["Properties"]["PolicyDocument"], template)
    actions: set[str] = set()
    for statement in document["Statement"]:
        if statement["Effect"] == effect:
            listed = statement["Action"]
            actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def compare_actions(who: str, called: set[str], allowed: set[str], extra: set[str]) -> None:
    for action in sorted(called - allowed):
        fail(f"permissions: the code calls {action}, which {who} does not allow")
    for action in sorted(allowed - called - extra):
        if not IMPLIED_BY.get(action, set()) & called:
            fail(f"permissions: {who} allows {action}, which the code never calls")
    if any("*" in a for a in allowed):
        fail(f"permissions: a wildcard action in {who}: {sorted(a for a in allowed if '*' in a)}")


def check_least_privilege(templates: dict) -> tuple[set[str], set[str]]:
    called = code_actions() - NEEDS_NO_PERMISSION
    allowed = actions_of(templates["main"], "ResponderPolicy")
    compare_actions("the function's role", called, allowed, RUNTIME_ACTIONS)
    # In a member account the same calls, less STS (the function assumes the role from home),
    # DynamoDB (the claims live in the responder's account), Scheduler (the release schedules
    # live there too, and invoke the function there), Security Hub and SNS (what is told after a
    # response is told from home), and GuardDuty's administrator side:
    # archiving, which only the administrator account may do. (Its own detector is listed there
    # too: readiness asks whether GuardDuty watches each region of a member account.)
    member = templates["member"]
    administrator_only = {"guardduty:ArchiveFindings"}
    in_member = {a for a in called
                 if not a.startswith(("sts:", "dynamodb:", "scheduler:", "securityhub:", "sns:"))
                 and a not in administrator_only}
    compare_actions("the member role", in_member, actions_of(member, "MemberPolicy"), set())
    if "iam:PutRolePolicy" not in actions_of(member, "MemberPolicy", "Deny"):
        fail("permissions: the member role does not deny revoking itself")
    # A copy of the responder's statements: each must stay the same as its twin, conditions included.
    by_sid = {st.get("Sid"): st for st in resolve(
        templates["main"]["Resources"]["ResponderPolicy"]["Properties"]["PolicyDocument"], templates["main"])["Statement"]}
    for st in resolve(member["Resources"]["MemberPolicy"]["Properties"]["PolicyDocument"], member)["Statement"]:
        sid = st.get("Sid")
        if sid != "NeverItsOwnRole" and by_sid.get(sid) != st:
            fail(f"permissions: the member role's {sid} differs from the responder's: {st} vs {by_sid.get(sid)}")
    trust = member["Resources"]["MemberRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    principals = [s.get("Principal", {}).get("AWS") for s in trust]
    if principals != [{"Ref": "ResponderRoleArn"}]:
        fail(f"permissions: the member role must trust only the responder's role, not {principals}")
    check_release_scheduler(templates["main"])
    return called, allowed


def check_release_scheduler(template: dict) -> None:
    """AutoRelease: Scheduler alone, for this account's schedules, may assume the role it invokes
    the function as; the role may invoke the function and nothing else; the function passes that
    role to Scheduler alone, and may not write its policies."""
    resources = template["Resources"]
    trust = resolve(resources["ReleaseSchedulerRole"]["Properties"]["AssumeRolePolicyDocument"], template)
    expected = [{"Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole",
                 "Condition": {"StringEquals": {"aws:SourceAccount": EXAMPLE["AWS::AccountId"]}}}]
    if trust["Statement"] != expected:
        fail(f"scheduler: the release scheduler's role must trust Scheduler for this account alone, not {trust}")
    document = resolve(resources["ReleaseSchedulerPolicy"]["Properties"]["PolicyDocument"], template)
    function = example_arn("ResponderFunction", template)
    for st in document["Statement"]:
        resources_of = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        if st["Action"] != "lambda:InvokeFunction" or set(resources_of) - {function, f"{function}:*"}:
            fail(f"scheduler: the release scheduler's role may do more than invoke the function: {st}")
    # ReadinessSchedule: the recurring schedule asks the function for readiness, which writes nothing.
    readiness = resources["ReadinessCheck"]["Properties"]
    payload = json.loads(resolve(readiness["Target"]["Input"], template))
    accounts = payload.get("accountIds")
    if payload.get("operation") != "readiness" or accounts != ["example-ReadinessAccounts"] \
            or readiness["Target"]["Arn"] != {"Fn::GetAtt": ["ResponderFunction", "Arn"]}:
        fail(f"scheduler: the readiness schedule must send the function a readiness payload, not {payload}")
    passed = statement(template, "PassTheSchedulersRole")
    if resolve(passed, template).get("Condition") != {
            "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}:
        fail(f"scheduler: the scheduler's role may be passed to another service: {passed}")
    denied = resolve(statement(template, "NeverItsOwnRole"), template)["Resource"]
    if example_arn("ReleaseSchedulerRole", template) not in (denied if isinstance(denied, list) else [denied]):
        fail(f"scheduler: the function may write the policies of the role it passes to Scheduler: {denied}")


def values_at(event, key: str) -> list:
    """The values at `key`, arrays flattened, as EventBridge matches them."""
    if isinstance(event, list):
        return [v for e in event for v in values_at(e, key)]
    value = event.get(key) if isinstance(event, dict) else None
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def option_matches(option, value, key: str) -> bool:
    if not isinstance(option, dict):
        return value == option
    if set(option) == {"prefix"}:
        return isinstance(value, str) and value.startswith(option["prefix"])
    if set(option) == {"wildcard"}:
        regex = ".*".join(re.escape(part) for part in option["wildcard"].split("*"))
        return isinstance(value, str) and re.fullmatch(regex, value) is not None
    fail(f"event pattern: unknown operator {option} under {key}")
    return False


def matches(pattern: dict, event) -> bool:
    """EventBridge matching for the operators the templates may use: exact values, prefix and
    wildcard, over nested objects and arrays (any element)."""
    for key, wanted in pattern.items():
        values = values_at(event, key)
        if isinstance(wanted, dict):
            if not matches(wanted, values):
                return False
        elif not any(option_matches(option, value, key) for option in wanted for value in values):
            return False
    return True


def rules_of(template: dict) -> dict:
    """Every EventBridge pattern that invokes the function: its own event's, and each rule whose
    target it is."""
    events = template["Resources"]["ResponderFunction"]["Properties"]["Events"]
    rules = {name: e["Properties"]["Pattern"] for name, e in events.items() if e["Type"] == "EventBridgeRule"}
    function = example_arn("ResponderFunction", template)
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Events::Rule":
            properties = resolve(resource["Properties"], template)
            if any(t.get("Arn") == function for t in properties.get("Targets", [])):
                rules[name] = properties["EventPattern"]
    return rules


def ours_in_asff(finding: dict) -> bool:
    return (finding.get("ProductName") == "GuardDuty"
            and any("UnauthorizedAccess:IAMUser-InstanceCredentialExfiltration" in t for t in finding.get("Types", []))
            and finding.get("Workflow", {}).get("Status") == "NEW" and finding.get("RecordState") == "ACTIVE")


def ours_in_ocsf(finding: dict) -> bool:
    return (finding["metadata"]["product"].get("name") == "GuardDuty"
            and any(t in FINDING_TYPES for t in finding["finding_info"].get("types", []))
            and finding.get("status") == "New")


def expected_rule(event: dict, action_arn: str):
    """Which rule should take `event`, by what the function acts on; None for none."""
    kind = event["detail-type"]
    if event["source"] == "aws.guardduty":
        return "CredentialExfiltration" if event["detail"].get("type") in FINDING_TYPES + SEQUENCE_TYPES else None
    findings = event["detail"].get("findings", [])
    if kind == "Security Hub Findings - Imported":
        return "SecurityHubAsffRule" if any(ours_in_asff(f) for f in findings) else None
    if kind == "Findings Imported V2":
        return "SecurityHubOcsfRule" if any(ours_in_ocsf(f) for f in findings) else None
    if kind == "Security Hub Findings - Custom Action":
        return "ContainActionRule" if action_arn in event.get("resources", []) else None
    return None


def pattern_cases() -> list:
    """The events in events/, and variants of Security Hub's that no rule may take."""
    cases = []
    for path in sorted((ROOT / "events").glob("*.json")):
        payload = json.loads(path.read_text())
        cases += [(path.name, e) for e in (payload if isinstance(payload, list) else [payload]) if "detail-type" in e]
    imported = json.loads((ROOT / "events" / "securityhub-imported.json").read_text())
    ocsf = json.loads((ROOT / "events" / "securityhub-ocsf.json").read_text())
    for what, change in [("NOTIFIED", lambda f: f["Workflow"].update(Status="NOTIFIED")),
                         ("ARCHIVED", lambda f: f.update(RecordState="ARCHIVED")),
                         ("Inspector", lambda f: f.update(ProductName="Inspector")),
                         ("Recon", lambda f: f.update(Types=["TTPs/Discovery/Recon:EC2-PortProbeUnprotectedPort"]))]:
        variant = copy.deepcopy(imported)
        change(variant["detail"]["findings"][0])
        cases.append((f"securityhub-imported.json, {what}", variant))
    variant = copy.deepcopy(ocsf)
    variant["detail"]["findings"][0]["status"] = "Resolved"
    cases.append(("securityhub-ocsf.json, Resolved", variant))
    variant = json.loads((ROOT / "events" / "securityhub-custom-action.json").read_text())
    variant["resources"] = ["arn:aws:securityhub:us-east-1:123456789012:action/custom/SomeoneElses"]
    cases.append(("securityhub-custom-action.json, another action", variant))
    for source in ("aws.securityhub", "custom.forged"):
        forged = {"source": source, "detail-type": "GuardDuty Finding", "detail": {"type": FINDING_TYPES[0]}}
        cases.append((f"a GuardDuty finding from {source}", forged))
    for other in ("Recon:EC2/PortProbeUnprotectedPort", "UnauthorizedAccess:IAMUser/MaliciousIPCaller"):
        cases.append((other, {"source": "aws.guardduty", "detail-type": "GuardDuty Finding", "detail": {"type": other}}))
    return cases


def check_pattern(templates: dict) -> int:
    template = templates["main"]
    rules = rules_of(template)
    expected_rules = {"CredentialExfiltration", "SecurityHubAsffRule", "SecurityHubOcsfRule", "ContainActionRule"}
    if set(rules) != expected_rules:
        fail(f"event pattern: expected the rules {sorted(expected_rules)} to invoke the function, found {sorted(rules)}")
        return 0
    action_arn = example_arn("ContainAction", template)
    checked = 0
    for name, event in pattern_cases():
        checked += 1
        expected = expected_rule(event, action_arn)
        for rule, pattern in rules.items():
            if matches(pattern, event) != (rule == expected):
                fail(f"event pattern: {rule} {'should' if rule == expected else 'should not'} match {name}")
    envelope = {"source": "aws.guardduty", "detail-type": "GuardDuty Finding"}
    for finding_type in FINDING_TYPES + SEQUENCE_TYPES:
        if not matches(rules["CredentialExfiltration"], {**envelope, "detail": {"type": finding_type}}):
            fail(f"event pattern: does not match {finding_type}")
    forwarded = templates["forwarding"]["Resources"]["ForwardingRule"]["Properties"]["EventPattern"]
    if forwarded != rules["CredentialExfiltration"]:
        fail(f"event pattern: forwarding-rule.yaml forwards {forwarded}, the responder matches "
             f"{rules['CredentialExfiltration']}")
    return checked


def check_replaced_lint_rules(templates: dict) -> None:
    resources = templates["main"]["Resources"]
    function = resources["ResponderFunction"]["Properties"]
    # WS1004: logs kept for a known time.
    group = function.get("LoggingConfig", {}).get("LogGroup", {})
    group_id = group.get("Ref") if isinstance(group, dict) else None
    if group_id not in resources or resources[group_id]["Type"] != "AWS::Logs::LogGroup":
        fail("logs: LoggingConfig.LogGroup does not name a log group of this template")
    elif "RetentionInDays" not in resources[group_id]["Properties"]:
        fail(f"logs: {group_id} has no RetentionInDays")
    # ES1007: a failed asynchronous invocation lands somewhere.
    configs = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"
               and r["Properties"].get("FunctionName") == {"Ref": "ResponderFunction"}]
    if len(configs) != 1 or "Destination" not in configs[0].get("DestinationConfig", {}).get("OnFailure", {}):
        fail("destinations: no EventInvokeConfig with an on-failure destination for ResponderFunction")
    # ES6000: nothing waits unseen in a dead-letter queue.
    alarmed = {
        d["Value"]["Fn::GetAtt"][0]
        for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"
        for d in r["Properties"].get("Dimensions", [])
        if d["Name"] == "QueueName" and isinstance(d["Value"], dict) and "Fn::GetAtt" in d["Value"]
    }
    for name, resource in resources.items():
        if resource["Type"] == "AWS::SQS::Queue" and name not in alarmed:
            fail(f"queues: {name} has no alarm on its depth")


def check_version(templates: dict) -> None:
    """The template's version (its Serverless Application Repository metadata) is Cargo.toml's."""
    cargo = re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
    version = templates["main"].get("Metadata", {}).get("AWS::ServerlessRepo::Application", {}).get("SemanticVersion")
    if version != cargo:
        fail(f"version: the template says {version}, Cargo.toml {cargo}")


def emitted_metrics() -> set[str]:
    """The metric names src/metrics.rs gives CloudWatch."""
    text = (ROOT / "src" / "metrics.rs").read_text()
    return set(re.findall(r'^pub const [A-Z_]+: &str = "([A-Za-z]+)";', text, re.M))


def check_dashboard(template: dict) -> int:
    """The optional dashboard's body is JSON once substituted, and each of its metrics in the
    function's namespace is one the function emits, under the one dimension it emits them with
    (FunctionName, the function's). Returns how many such metrics it shows."""
    resource = template["Resources"].get("ResponderDashboard")
    if resource is None or resource.get("Condition") != "HasDashboard":
        fail("dashboard: no ResponderDashboard under the HasDashboard condition")
        return 0
    try:
        body = json.loads(resolve(resource["Properties"]["DashboardBody"], template))
    except json.JSONDecodeError as error:
        fail(f"dashboard: the body is not JSON once substituted: {error}")
        return 0
    namespace = resolve({"Ref": "MetricsNamespace"}, template)
    function = resolve({"Ref": "ResponderFunction"}, template)
    emitted, shown = emitted_metrics(), 0
    for widget in body["widgets"]:
        for metric in widget["properties"].get("metrics", []):
            names = [part for part in metric if isinstance(part, str)]
            if names[0] != namespace:
                continue
            shown += 1
            if names[1] not in emitted:
                fail(f"dashboard: {names[1]} is not a metric the function emits ({sorted(emitted)})")
            if names[2:] != ["FunctionName", function]:
                fail(f"dashboard: {names[1]} is shown under {names[2:]}, not the function's FunctionName")
    if shown == 0:
        fail("dashboard: it shows none of the function's metrics")
    return shown


def run_checks(templates: dict) -> str:
    n_policies = check_parliament(templates)
    called, allowed = check_least_privilege(templates)
    n_events = check_pattern(templates)
    check_replaced_lint_rules(templates)
    check_version(templates)
    n_dashboard = check_dashboard(templates["main"])
    return (f"parliament clean on {n_policies} policies; "
            f"the version Cargo.toml's; the dashboard's {n_dashboard} metrics emitted by the function; "
            f"{len(called)} operations called, {len(allowed)} actions allowed, none missing or unused, "
            "and the member role matches; "
            f"4 event patterns right for {n_events} events (those in events/ and variants), "
            "and forwarded unchanged; "
            "log retention, on-failure destination and queue alarms in place")


def statement(template: dict, sid: str, policy: str = "ResponderPolicy") -> dict:
    document = template["Resources"][policy]["Properties"]["PolicyDocument"]
    # A conditional statement is the true branch of its Fn::If.
    each = (s["Fn::If"][1] if isinstance(s, dict) and "Fn::If" in s else s for s in document["Statement"])
    return next(s for s in each if isinstance(s, dict) and s.get("Sid") == sid)


def pattern_of(template: dict) -> dict:
    return template["Resources"]["ResponderFunction"]["Properties"]["Events"]["CredentialExfiltration"][
        "Properties"]["Pattern"]


def edit_dashboard(templates: dict, old: str, new: str) -> None:
    """Replace the first `old` in the dashboard's body (the text Fn::Sub substitutes)."""
    body = templates["main"]["Resources"]["ResponderDashboard"]["Properties"]["DashboardBody"]
    body["Fn::Sub"] = body["Fn::Sub"].replace(old, new, 1)


def member_trust(templates: dict) -> dict:
    return templates["member"]["Resources"]["MemberRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]


# Each breaks a template one way; the named check must then fail.
MUTATIONS = {
    "parliament": lambda t: statement(t["main"], "PassRolesBackToInstances").update(
        Condition={"StringEqual": {"iam:PassedToService": "ec2.amazonaws.com"}}),
    "does not allow": lambda t: statement(t["main"], "ReadInstanceProfiles").update(Action="iam:ListRoles"),
    "never calls": lambda t: statement(t["main"], "RebootOnlyCycledInstances").update(
        Action=["ec2:RebootInstances", "ec2:TerminateInstances"]),
    "which the member role does not allow": lambda t: statement(t["member"], "VerifyFindings", "MemberPolicy").update(
        Action="guardduty:ListFindings"),
    "differs from the responder's": lambda t: statement(t["member"], "WriteOwnMarkerTagsOnly", "MemberPolicy").pop(
        "Condition"),
    "trust only the responder": lambda t: member_trust(t).update(
        Principal={"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::123456789012:root"}}),
    "does not deny revoking itself": lambda t: statement(t["member"], "NeverItsOwnRole", "MemberPolicy").update(
        Action="iam:DeleteRolePolicy"),
    "unknown operator": lambda t: pattern_of(t["main"])["detail"].update(
        type=[{"prefx": "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration"}]),
    "should not match Recon": lambda t: pattern_of(t["main"])["detail"].update(type=[{"prefix": ""}]),
    "should not match securityhub-imported.json, NOTIFIED": lambda t: t["main"]["Resources"]["SecurityHubAsffRule"][
        "Properties"]["EventPattern"]["detail"]["findings"].pop("Workflow"),
    "should not match securityhub-ocsf.json, Resolved": lambda t: t["main"]["Resources"]["SecurityHubOcsfRule"][
        "Properties"]["EventPattern"]["detail"]["findings"].pop("status"),
    "ContainActionRule should not match": lambda t: t["main"]["Resources"]["ContainActionRule"]["Properties"][
        "EventPattern"].pop("resources"),
    "does not match AttackSequence:IAM/CompromisedCredentials": lambda t: pattern_of(t["main"])["detail"].update(
        type=[{"prefix": "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration"}]),
    "forwarding-rule.yaml forwards": lambda t: t["forwarding"]["Resources"]["ForwardingRule"]["Properties"][
        "EventPattern"]["detail"].update(type=["UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"]),
    "no RetentionInDays": lambda t: t["main"]["Resources"]["ResponderLogGroup"]["Properties"].pop("RetentionInDays"),
    "on-failure": lambda t: t["main"]["Resources"]["ResponderInvokeConfig"]["Properties"]["DestinationConfig"].pop(
        "OnFailure"),
    "no alarm": lambda t: t["main"]["Resources"].pop("FailedInvocationsAlarm"),
    "trust Scheduler for this account alone": lambda t: t["main"]["Resources"]["ReleaseSchedulerRole"]["Properties"][
        "AssumeRolePolicyDocument"]["Statement"][0].pop("Condition"),
    "more than invoke the function": lambda t: statement(
        t["main"], "InvokeTheResponder", "ReleaseSchedulerPolicy").update(Resource="*"),
    "passed to another service": lambda t: statement(t["main"], "PassTheSchedulersRole").pop("Condition"),
    "write the policies of the role it passes": lambda t: statement(t["main"], "NeverItsOwnRole").update(
        Resource={"Fn::GetAtt": ["ResponderRole", "Arn"]}),
    "is not a metric the function emits": lambda t: edit_dashboard(t, '"FindingsHandled"', '"ContainmentsPerHour"'),
    "not the function's FunctionName": lambda t: edit_dashboard(
        t, '"FunctionName", "${ResponderFunction}"', '"FunctionName", "${AWS::StackName}"'),
    "the body is not JSON": lambda t: edit_dashboard(t, '"widgets": [', '"widgets": [,'),
    "version: the template says": lambda t: t["main"]["Metadata"]["AWS::ServerlessRepo::Application"].update(
        SemanticVersion="9.9.9"),
}


def self_test(inputs: dict, mutations: dict, run) -> list[str]:
    """Each of `mutations` breaks a copy of `inputs`; `run` must then fail with the expected text."""
    problems = []
    for expected, mutate in mutations.items():
        broken = copy.deepcopy(inputs)
        mutate(broken)
        failures.clear()
        run(broken)
        if not any(expected in f for f in failures):
            problems.append(f"self-test: breaking '{expected}' was not caught (failures: {failures})")
    failures.clear()
    return problems


def report(problems: list[str], success: str) -> bool:
    for problem in problems:
        print(f"FAIL {problem}")
    if not problems:
        print(success)
    return not problems


def checked(inputs: dict, mutations: dict, run, broken: str, checks: str) -> int:
    """A checker's exit status: with --self-test, first every mutation must be caught; then `run`
    on `inputs`, each failure printed (this script's and scripts/check_deploy.py's)."""
    if "--self-test" in sys.argv:
        caught = f"self-test passed: each of {len(mutations)} broken {broken} was caught"
        if not report(self_test(inputs, mutations, run), caught):
            return 1
    summary = run(inputs)
    return 0 if report(list(failures), f"{checks} passed: {summary}") else 1


def main() -> int:
    return checked(load_templates(), MUTATIONS, run_checks, "templates", "template checks")


if __name__ == "__main__":
    sys.exit(main())
