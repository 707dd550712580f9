"""Checks of what an adopter deploys with, beside the templates (run by `make validate`).

1. samconfig.toml, read by SAM CLI's own parser (SamConfig and the parameter-overrides type that
   `sam deploy` uses): the environments sandbox, account and organization exist; each names a
   stack and CAPABILITY_IAM; every parameter it sets is one of template.yaml's, with a value the
   template allows (AllowedValues, AllowedPattern, MinValue/MaxValue, MinLength/MaxLength); the
   sandbox is a dry run; the organization names the member role.
2. The docs: every parameter of template.yaml is a row of the docs site's parameter table
   (docs/src/parameters.md), once, in the template's order; the table lists no parameter the template lacks; no other page
   (nor the README) keeps a parameter row of its own; the README links to the table, and every
   page it links to exists.
3. The Terraform module (terraform/), parsed with python-hcl2: a variable of the same name and
   default for every template parameter, each passed to the stack under its own name, and none
   the template lacks; and terraform/parameters.tf is what scripts/terraform_parameters.py writes
   from the template (descriptions and validations included).

Exit status 0 when every check passes; `--self-test` first proves that each check fails on
inputs broken the way it looks for.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import hcl2
from cfnlint.decode import decode
from samcli.cli.types import CfnParameterOverridesType
from samcli.lib.config.samconfig import SamConfig

import terraform_parameters
from check_template import checked, fail

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("sandbox", "account", "organization")
TABLE = "docs/src/parameters.md"
# A table row that documents a parameter: | `Name` | ...
ROW = re.compile(r"^\| `([A-Z][A-Za-z]+)` \|", re.M)

def load() -> dict:
    template, matches = decode(str(ROOT / "template.yaml"))
    if matches:
        sys.exit(f"template.yaml does not parse: {matches}")
    config = SamConfig(str(ROOT), "samconfig.toml")
    environments = {env: config.get_all(["deploy"], "parameters", env) for env in ENVIRONMENTS}
    for settings in environments.values():
        # As sam deploy reads it: "Key=Value Key=Value" into a dict.
        settings["parameter_overrides"] = CfnParameterOverridesType().convert(
            settings.get("parameter_overrides", ""), None, None)
    docs = {path.relative_to(ROOT).as_posix(): path.read_text() for path in (ROOT / "docs" / "src").glob("*.md")}
    docs["README.md"] = (ROOT / "README.md").read_text()
    terraform = terraform_module(ROOT / "terraform")
    terraform["generated"] = terraform_parameters.TARGET.read_text()
    return {"parameters": template["Parameters"], "samconfig": environments, "docs": docs, "terraform": terraform}


def allowed(spec: dict, value: str) -> str | None:
    """Why CloudFormation would refuse `value` for a parameter of `spec`, or None."""
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        return f"not one of {spec['AllowedValues']}"
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        return f"does not match {spec['AllowedPattern']}"
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return "not a number"
        if number < float(spec.get("MinValue", number)) or number > float(spec.get("MaxValue", number)):
            return f"outside {spec.get('MinValue')}..{spec.get('MaxValue')}"
    if not int(spec.get("MinLength", 0)) <= len(value) <= int(spec.get("MaxLength", len(value))):
        return "of a length the template does not allow"
    return None


def check_samconfig(inputs: dict) -> int:
    parameters, count = inputs["parameters"], 0
    for env, settings in inputs["samconfig"].items():
        if not settings.get("stack_name"):
            fail(f"samconfig: {env} names no stack")
        if "CAPABILITY_IAM" not in str(settings.get("capabilities", "")).split():
            fail(f"samconfig: {env} does not acknowledge CAPABILITY_IAM (the template creates roles)")
        for name, value in settings["parameter_overrides"].items():
            count += 1
            if name not in parameters:
                fail(f"samconfig: {env} sets {name}, which is not a template parameter")
            elif (why := allowed(parameters[name], str(value))) is not None:
                fail(f"samconfig: {env} sets {name}={value}, {why}")
    if inputs["samconfig"]["sandbox"]["parameter_overrides"].get("DryRun") != "true":
        fail("samconfig: the sandbox is not a dry run (DryRun=true)")
    if not inputs["samconfig"]["organization"]["parameter_overrides"].get("MemberRoleName"):
        fail("samconfig: the organization names no MemberRoleName")
    return count


def check_docs(inputs: dict) -> None:
    parameters = set(inputs["parameters"])
    for path, text in inputs["docs"].items():
        rows = [name for name in ROW.findall(text) if path == TABLE or name in parameters]
        if path == TABLE:
            for name in sorted(parameters - set(rows)):
                fail(f"docs: parameter {name} is not in the parameter table ({TABLE})")
            for name in sorted(set(rows) - parameters):
                fail(f"docs: the parameter table lists {name}, which the template does not have")
            for name in sorted({n for n in rows if rows.count(n) > 1}):
                fail(f"docs: the parameter table lists {name} twice")
            # The page says its order is the template's: the order sam deploy --guided asks in.
            listed = [name for name in dict.fromkeys(rows) if name in parameters]
            if listed != [name for name in inputs["parameters"] if name in listed]:
                fail(f"docs: the parameter table is not in the template's order: {listed}")
        elif rows:
            fail(f"docs: {path} documents {', '.join(sorted(set(rows)))} again; the table is {TABLE}")
    if TABLE not in inputs["docs"]["README.md"]:
        fail(f"docs: the README does not link to the parameter table ({TABLE})")
    # The docs site's build checks its own links; the README is not part of it.
    for target in sorted(set(re.findall(r"\]\((docs/src/[^)#]+)", inputs["docs"]["README.md"]))):
        if target not in inputs["docs"]:
            fail(f"docs: the README links to {target}, which does not exist")


def unquote(value) -> str:
    """python-hcl2 keeps the quotes of labels and string literals."""
    text = str(value)
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def terraform_module(folder: Path) -> dict:
    """The module as the checks read it: each variable's default, and the parameters map of the
    responder's aws_cloudformation_stack (None if there is no such resource)."""
    declared, passed = {}, None
    for path in sorted(folder.glob("*.tf")):
        with path.open() as handle:
            module = hcl2.load(handle)
        for block in module.get("variable", []):
            declared.update({unquote(name): body.get("default") for name, body in block.items()})
        for block in module.get("resource", []):
            stacks = {unquote(k): v for k, v in block.items()}.get("aws_cloudformation_stack", {})
            stack = {unquote(k): v for k, v in stacks.items()}.get("responder")
            if stack is not None:
                passed = {unquote(k): str(v) for k, v in stack.get("parameters", {}).items()}
    return {"variables": declared, "parameters": passed}


def check_terraform(inputs: dict) -> None:
    parameters, module = inputs["parameters"], inputs["terraform"]
    for name, spec in parameters.items():
        if name not in module["variables"]:
            fail(f"terraform: no variable {name}")
            continue
        default, expected = module["variables"][name], spec.get("Default", "")
        if spec.get("Type") == "Number":
            if not isinstance(default, (int, float)) or float(default) != float(expected):
                fail(f"terraform: variable {name} defaults to {default!r}, the template to {expected}")
        elif default is None or unquote(default) != str(expected):
            fail(f"terraform: variable {name} defaults to {default!r}, the template to {expected!r}")
    if module["generated"] != terraform_parameters.parameters_tf(parameters):
        fail("terraform: parameters.tf is not what scripts/terraform_parameters.py makes of template.yaml: run it")
    passed = module["parameters"]
    if passed is None:
        fail("terraform: no aws_cloudformation_stack.responder")
        return
    for name in sorted(set(parameters) - set(passed)):
        fail(f"terraform: the stack is not given {name}")
    for name, value in sorted(passed.items()):
        if name not in parameters:
            fail(f"terraform: the stack is given {name}, which is not a template parameter")
        elif not re.search(rf"\bvar\.{name}\b", value):
            fail(f"terraform: the stack's {name} is {value}, not var.{name}")


def run_checks(inputs: dict) -> str:
    n_settings = check_samconfig(inputs)
    check_docs(inputs)
    check_terraform(inputs)
    n = len(inputs["parameters"])
    return (f"samconfig.toml's {len(ENVIRONMENTS)} environments set {n_settings} parameters, each allowed; "
            f"{n} parameters each documented once ({TABLE}); the Terraform module takes and passes all {n}")


def drop_row(inputs: dict, name: str) -> None:
    text = inputs["docs"][TABLE]
    inputs["docs"][TABLE] = "\n".join(l for l in text.split("\n") if not l.startswith(f"| `{name}` |"))


MUTATIONS = {
    "which is not a template parameter": lambda i: i["samconfig"]["account"]["parameter_overrides"].update(DryRunn="true"),
    "DefaultAction=quarantine, not one of": lambda i: i["samconfig"]["account"]["parameter_overrides"].update(
        DefaultAction="quarantine"),
    "MemberRoleName=bad role, does not match": lambda i: i["samconfig"]["organization"]["parameter_overrides"].update(
        MemberRoleName="bad role"),
    "CycleTimeoutSeconds=0, outside": lambda i: i["samconfig"]["account"]["parameter_overrides"].update(
        CycleTimeoutSeconds="0"),
    "ChainFollowUpMinutes=1, does not match": lambda i: i["samconfig"]["sandbox"]["parameter_overrides"].update(
        ChainFollowUpMinutes="1"),
    "the sandbox is not a dry run": lambda i: i["samconfig"]["sandbox"]["parameter_overrides"].pop("DryRun"),
    "does not acknowledge CAPABILITY_IAM": lambda i: i["samconfig"]["sandbox"].update(capabilities=""),
    "is not in the parameter table": lambda i: drop_row(i, "Chain"),
    "which the template does not have": lambda i: i["docs"].update(
        {TABLE: i["docs"][TABLE] + "\n| `Undocumented` | x | y |\n"}),
    "not in the template's order": lambda i: i["docs"].update({TABLE: i["docs"][TABLE].replace(
        "| `DryRun` |", "| `DryRunX` |").replace("| `DefaultAction` |", "| `DryRun` |").replace(
        "| `DryRunX` |", "| `DefaultAction` |")}),
    "lists DryRun twice": lambda i: i["docs"].update({TABLE: i["docs"][TABLE] + "\n| `DryRun` | x | y |\n"}),
    "documents DefaultAction again": lambda i: i["docs"].update(
        {"README.md": i["docs"]["README.md"] + "\n| `DefaultAction` | `revoke` | again |\n"}),
    "the README links to docs/src/gone.md": lambda i: i["docs"].update(
        {"README.md": i["docs"]["README.md"] + "\n[gone](docs/src/gone.md)\n"}),
    "the README does not link": lambda i: i["docs"].update(
        {"README.md": i["docs"]["README.md"].replace(TABLE, "docs/src/index.md")}),
    "terraform: no variable Chain": lambda i: i["terraform"]["variables"].pop("Chain"),
    "terraform: variable DryRun defaults to": lambda i: i["terraform"]["variables"].update(DryRun='"true"'),
    "terraform: variable FleetConcurrency defaults to": lambda i: i["terraform"]["variables"].update(
        FleetConcurrency=5),
    "terraform: the stack is not given Harden": lambda i: i["terraform"]["parameters"].pop("Harden"),
    "not var.Forensics": lambda i: i["terraform"]["parameters"].update(Forensics="${var.Harden}"),
    "parameters.tf is not what": lambda i: i["parameters"]["Harden"].update(Description="changed"),
    "the stack is given Tuning": lambda i: i["terraform"]["parameters"].update(Tuning="${var.Tuning}"),
}


def main() -> int:
    return checked(load(), MUTATIONS, run_checks, "inputs", "deploy checks")


if __name__ == "__main__":
    sys.exit(main())
