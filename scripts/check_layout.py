"""The source layout's rules, checked by `make lint`:

1. No import circle between modules: module A uses module B (a `crate::`, `super::` or child path
   in its non-test code, `use` groups such as `crate::a::{b, c}` expanded) and B, directly or
   through others, uses A; a parent and its child count like any two modules. Declaring a child
   module (`pub mod x;`) is not a use. `--self-test` checks the checker on small trees first.
2. No source file over 500 lines of non-test code (lines that are not blank and not only a comment,
   before the file's `#[cfg(test)]` module).
3. No function over 80 lines (from its `fn` line to its closing brace, as rustfmt lays it out).
4. A deny (`PutRolePolicy`, and the managed fallback's `CreatePolicy`, `CreatePolicyVersion` and
   `AttachRolePolicy`) is sent only from `src/aws/iam.rs`, whose functions take the gate's Permit.

Prints the figures either way; exits 1 on a broken rule.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

MAX_FILE_CODE = 500
MAX_FUNCTION = 80

FN = re.compile(r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")
ROOT = re.compile(r"\b(crate|super)::")
IDENT = re.compile(r"[A-Za-z_]\w*")


def module_of(path: Path, src: Path) -> tuple[str, ...]:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("lib", "main", "mod"):
        parts.pop()
    return tuple(parts)


def non_test(lines: list[str]) -> list[str]:
    """The lines before the file's inline test module (`#[cfg(test)]` then `mod x {`); a test-only
    module declared in its own file (`#[cfg(test)] mod x;`) is just skipped."""
    kept = []
    for i, line in enumerate(lines):
        following = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if line.startswith("#[cfg(test)]") and following.startswith("mod ") and following.endswith("{"):
            return kept
        if line.startswith("#[cfg(test)]") and following.startswith("mod ") and following.endswith(";"):
            continue
        if i > 0 and lines[i - 1].startswith("#[cfg(test)]") and line.startswith("mod ") and line.endswith(";"):
            continue
        kept.append(line)
    return kept


def code_lines(lines: list[str]) -> int:
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("//"))


def functions(lines: list[str]) -> list[tuple[str, int, int]]:
    """(name, first line, length) of every function with a body."""
    found = []
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        indent = m.group(1)
        # A declaration without a body (a trait method) ends with `;` before any `{`.
        j = i
        while j < len(lines) and "{" not in lines[j] and not lines[j].rstrip().endswith(";"):
            j += 1
        if j == len(lines) or "{" not in lines[j] or lines[j].rstrip().endswith("}") and j == i:
            continue
        end = j
        while end < len(lines) and lines[end].rstrip() != f"{indent}}}":
            end += 1
        found.append((m.group(2), i + 1, end - i + 1))
    return found


def paths(text: str) -> list[tuple[str, list[str]]]:
    """Every `crate::` or `super::` path in `text` as (root, segments), with `use` groups expanded:
    `crate::a::{b, c::{d, self}}` names `a::b`, `a::c::d` and `a::c`."""
    found = []
    for m in ROOT.finditer(text):
        found.extend((m.group(1), segments) for segments in _tree(text, m.end())[0])
    return found


def _tree(text: str, i: int) -> tuple[list[list[str]], int]:
    """The paths of the use tree starting at text[i] (after a `::`), and where it ends."""
    prefix: list[str] = []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if text.startswith("{", i):
            subtrees, i = _group(text, i + 1)
            return [prefix + [p for p in sub if p != "self"] for sub in subtrees] or [prefix], i
        m = IDENT.match(text, i)
        if not m:
            return [prefix], i
        prefix.append(m.group(0))
        i = m.end()
        if not text.startswith("::", i):
            return [prefix], i
        i += 2


def _group(text: str, i: int) -> tuple[list[list[str]], int]:
    """The comma-separated trees of a `{...}` group starting at text[i], and where it ends."""
    trees: list[list[str]] = []
    while i < len(text):
        while i < len(text) and (text[i].isspace() or text[i] == ","):
            i += 1
        if text.startswith("}", i):
            return trees, i + 1
        sub, j = _tree(text, i)
        trees.extend(sub)
        # Skip what follows a tree (`as name`) up to the next separator.
        while j < len(text) and text[j] not in ",}":
            j += 1
        i = j
    return trees, i


def uses(module: tuple[str, ...], text: str, modules: set[tuple[str, ...]]) -> set[tuple[str, ...]]:
    """The modules this module's code names, at their longest known prefix."""
    named = set()
    for root, parts in paths(text):
        if root == "crate":
            base: list[str] = []
        else:  # super:: (possibly repeated)
            base = list(module[:-1])
            while parts and parts[0] == "super":
                parts = parts[1:]
                base = base[:-1]
        path = tuple(base + parts)
        for k in range(len(path), 0, -1):
            if path[:k] in modules:
                named.add(path[:k])
                break
    # A module may name its children directly (`use establish::Alleged;`, `establish::about(..)`).
    for m in re.findall(r"(?<![\w:])([a-z_]\w*)::", text):
        child = module + (m,)
        if child in modules:
            named.add(child)
    named.discard(module)
    return named


def cycles(graph: dict[tuple[str, ...], set[tuple[str, ...]]]) -> list[list[tuple[str, ...]]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict = {}
    low: dict = {}
    stack: list = []
    on: set = set()
    found = []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


# The SDK calls that write a deny on a role: sent only from the IAM adapter, whose functions take
# the gate's Permit (src/gate.rs), so that no other module can write one.
DENY_WRITERS = re.compile(r"\.(put_role_policy|attach_role_policy|create_policy|create_policy_version)\(\)")
DENY_ADAPTER = Path("aws") / "iam.rs"


def stray_deny_writers(src: Path) -> list[str]:
    """Every call that writes a deny outside the IAM adapter, test code included."""
    found = []
    for p in sorted(src.rglob("*.rs")):
        if p.relative_to(src) == DENY_ADAPTER:
            continue
        for n, line in enumerate(p.read_text().splitlines(), 1):
            if DENY_WRITERS.search(line):
                found.append(f"{p.relative_to(src.parent)}:{n}: a deny is written outside {DENY_ADAPTER}, past the gate's Permit")
    return found


def read(src: Path) -> dict[tuple[str, ...], tuple[Path, list[str]]]:
    """Every module of the tree at `src` (main.rs aside): its file and its non-test lines."""
    files = sorted(p for p in src.rglob("*.rs") if p.name != "main.rs")
    return {module_of(p, src): (p, non_test(p.read_text().splitlines())) for p in files}


def circles(texts: dict[tuple[str, ...], tuple[Path, list[str]]]) -> tuple[list[str], dict]:
    """The import circles between the modules `read` found, named, and their module graph."""
    modules = set(texts)
    graph = {m: uses(m, "\n".join(lines), modules) for m, (_, lines) in texts.items()}
    named = [", ".join("::".join(m) or "crate" for m in c) for c in cycles(graph)]
    return [f"import circle between: {n}" for n in named], graph


# Small trees, each with the circle the checker must find (or none), for --self-test.
SELF_TEST = {
    "a group import, as respond::operate had it": (
        {
            "lib.rs": "pub mod respond;",
            "respond/mod.rs": "pub mod operate;\npub mod release;",
            "respond/operate.rs": "use crate::respond::{\n    follow_up, release as r,\n};",
            "respond/release.rs": "use crate::respond::operate::{Done, Reached};",
        },
        "respond::operate, respond::release",
    ),
    "a child importing its parent": (
        {
            "lib.rs": "pub mod respond;",
            "respond/mod.rs": "pub mod child;\nuse child::Thing;\npub struct Other;",
            "respond/child.rs": "use super::Other;\npub struct Thing;",
        },
        "respond, respond::child",
    ),
    "a nested group": (
        {
            "lib.rs": "pub mod a;\npub mod b;",
            "a.rs": "use crate::{b::{self, X}, c};",
            "b.rs": "fn f() { crate::a::g() }",
        },
        "a, b",
    ),
    "a parent calling its child by path": (
        {
            "lib.rs": "pub mod respond;",
            "respond/mod.rs": "pub mod child;\nfn f() { child::g() }\npub struct Other;",
            "respond/child.rs": "use crate::respond::Other;",
        },
        "respond, respond::child",
    ),
    "no circle: a doc-free leaf used by two": (
        {
            "lib.rs": "pub mod a;\npub mod b;\npub mod c;",
            "a.rs": "use crate::{b::X, c::Y};",
            "b.rs": "use crate::c::Y;",
            "c.rs": "pub struct Y;",
        },
        None,
    ),
}


def self_test() -> int:
    """Each tree above gives exactly the circle it names."""
    import tempfile

    failed = 0
    for name, (files, expected) in SELF_TEST.items():
        with tempfile.TemporaryDirectory() as tmp:
            for rel, text in files.items():
                path = Path(tmp) / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text + "\n")
            found, _ = circles(read(Path(tmp)))
            found += stray_deny_writers(Path(tmp))
            want = [f"import circle between: {expected}"] if expected else []
            if found != want:
                print(f"self-test failed: {name}: found {found}, expected {want}")
                failed += 1
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "respond").mkdir()
        (Path(tmp) / "respond" / "stray.rs").write_text("fn f(iam: &Client) { iam.put_role_policy().send(); }\n")
        if len(stray_deny_writers(Path(tmp))) != 1:
            print("self-test failed: a PutRolePolicy outside aws/iam.rs was not found")
            failed += 1
    print(f"layout self-test: {len(SELF_TEST) + 1 - failed} of {len(SELF_TEST) + 1} cases checked as expected")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parent.parent / "src")
    parser.add_argument("--self-test", action="store_true", help="first check the checker on small trees")
    args = parser.parse_args()
    if args.self_test and self_test():
        return 1
    src: Path = args.src
    texts = read(src)
    modules = set(texts)
    circled, graph = circles(texts)
    broken = circled + stray_deny_writers(src)

    sizes = sorted(((code_lines(lines), p) for p, lines in texts.values()), reverse=True)
    for size, p in sizes:
        if size > MAX_FILE_CODE:
            broken.append(f"{p.relative_to(src.parent)}: {size} lines of non-test code (at most {MAX_FILE_CODE})")

    every = []
    for p in [*(p for p, _ in texts.values()), src / "main.rs"]:
        lines = p.read_text().splitlines()
        tested_from = len(non_test(lines))
        for name, line, length in functions(lines):
            every.append((length, f"{p.relative_to(src.parent)}:{line} {name}", line > tested_from))
    every.sort(reverse=True)
    for length, where, in_tests in every:
        if length > MAX_FUNCTION and not in_tests:
            broken.append(f"{where}: {length} lines (at most {MAX_FUNCTION})")

    longest = next((e for e in every if not e[2]), None)
    print(f"layout: {len(modules)} modules, {sum(len(v) for v in graph.values())} module uses, no circle"
          if not circled else f"layout: {len(modules)} modules")
    print(f"layout: largest file {sizes[0][1].relative_to(src.parent)} ({sizes[0][0]} lines of non-test code)")
    if longest:
        print(f"layout: longest function {longest[1]} ({longest[0]} lines)")
    for line in broken:
        print(f"error: {line}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
