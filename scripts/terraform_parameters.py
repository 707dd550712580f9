"""Write terraform/parameters.tf: a Terraform variable for every parameter of template.yaml, of
the same name, type (String: string, Number: number), default and description, with a validation
block for each AllowedValues, AllowedPattern, MinLength/MaxLength and MinValue/MaxValue.

Run it after changing the template's parameters (`make validate` fails while parameters.tf is not
what this script makes of template.yaml):

    .venv/bin/python scripts/terraform_parameters.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "terraform" / "parameters.tf"
HEADER = """# template.yaml's parameters, one variable each, written by scripts/terraform_parameters.py:
# change the template, then run the script, rather than editing this file.

"""


def hcl(s):
    """A one-line HCL string literal."""
    s = str(s)
    s = s.replace("\\", "\\\\").replace('"', '\\"').replace("${", "$${").replace("%{", "%%{")
    assert "\n" not in s
    return '"' + s + '"'


def num(v):
    f = float(v)
    return str(int(f)) if f.is_integer() else repr(f)


def one_line(s):
    return " ".join(str(s).split())


# Terraform's regex is Go's RE2, which refuses a repeat count over 1000 (CloudFormation's Java
# regex takes it). A pattern that is one character class repeated {m,n} over the whole value,
# optionally empty, is rewritten exactly: {m,} and a length bound. Any other such pattern stops
# the generator rather than write a validation that can never pass.
RE2_MAX_REPEAT = 1000
WHOLE_CLASS = re.compile(r"^\^(\()?(\[[^\]]+\])\{(\d+),(\d+)\}(\)\?)?\$$")


def pattern_condition(name, pat):
    counts = [int(x) for grp in re.findall(r"\{(\d+)(?:,(\d*))?\}", pat) for x in grp if x]
    if all(c <= RE2_MAX_REPEAT for c in counts):
        return f"can(regex({hcl(pat)}, var.{name}))"
    m = WHOLE_CLASS.match(pat)
    if not m or bool(m.group(1)) != bool(m.group(5)):
        raise SystemExit(f"{name}: AllowedPattern {pat} has a repeat count RE2 refuses; translate it by hand")
    opt_open, cls, lo, hi, opt_close = m.groups()
    re2 = "^" + (opt_open or "") + cls + "{" + lo + ",}" + (opt_close or "") + "$"
    return f"can(regex({hcl(re2)}, var.{name})) && length(var.{name}) <= {int(hi)}"


def within(expression, lo, hi):
    """The condition that `expression` is at least `lo` and at most `hi` (either may be None)."""
    bounds = [(">=", lo), ("<=", hi)]
    return " && ".join(f"{expression} {op} {num(bound)}" for op, bound in bounds if bound is not None)


def variable(name, p):
    typ = p.get("Type")
    if typ not in ("String", "Number"):
        raise SystemExit(f"{name}: unsupported parameter type {typ}")
    is_num = typ == "Number"
    lines = [f'variable "{name}" {{']
    lines.append(f"  description = {hcl(one_line(p.get('Description', '')))}")
    lines.append(f"  type        = {'number' if is_num else 'string'}")
    if "Default" in p:
        d = p["Default"]
        lines.append(f"  default     = {num(d) if is_num else hcl(d)}")
    checks = []
    if "AllowedValues" in p:
        vals = p["AllowedValues"]
        lit = ", ".join(num(v) if is_num else hcl(v) for v in vals)
        shown = ", ".join(num(v) if is_num else str(v) for v in vals)
        checks.append((f"contains([{lit}], var.{name})", f"{name} must be one of: {shown}."))
    if "AllowedPattern" in p:
        pat = p["AllowedPattern"]
        checks.append((pattern_condition(name, pat), f"{name} must match {pat} (the template's AllowedPattern)."))
    if "MinLength" in p or "MaxLength" in p:
        lo, hi = p.get("MinLength"), p.get("MaxLength")
        checks.append((within(f"length(var.{name})", lo, hi), f"{name} must be {lo if lo is not None else 0} to {hi if hi is not None else 'any number of'} characters long."))
    if "MinValue" in p or "MaxValue" in p:
        lo, hi = p.get("MinValue"), p.get("MaxValue")
        rng = f"between {num(lo)} and {num(hi)}" if lo is not None and hi is not None else (
            f"at least {num(lo)}" if lo is not None else f"at most {num(hi)}")
        checks.append((within(f"var.{name}", lo, hi), f"{name} must be {rng}."))
    for cond, msg in checks:
        lines.append("")
        lines.append("  validation {")
        lines.append(f"    condition     = {cond}")
        lines.append(f"    error_message = {hcl(msg)}")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines)


def parameters_tf(parameters: dict) -> str:
    return HEADER + "\n\n".join(variable(name, spec) for name, spec in parameters.items()) + "\n"


def main() -> int:
    template, matches = decode(str(ROOT / "template.yaml"))
    if matches:
        sys.exit(f"template.yaml does not parse: {matches}")
    TARGET.write_text(parameters_tf(template["Parameters"]))
    print(f"wrote {TARGET.relative_to(ROOT)}: {len(template['Parameters'])} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
