"""The source layout's rules, checked by `make lint`:

1. No import circle between modules: module A uses module B (a `crate::`, `super::` or child path
   in its non-test code) and B, directly or through others, uses A. Declaring a child module
   (`pub mod x;`) is not a use.
2. No source file over 500 lines of non-test code (lines that are not blank and not only a comment,
   before the file's `#[cfg(test)]` module).
3. No function over 80 lines (from its `fn` line to its closing brace, as rustfmt lays it out).

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
PATH = re.compile(r"\b(crate|super)((?:::\w+)+)")


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


def uses(module: tuple[str, ...], text: str, modules: set[tuple[str, ...]]) -> set[tuple[str, ...]]:
    """The modules this module's code names, at their longest known prefix."""
    named = set()
    for root, rest in PATH.findall(text):
        parts = [p for p in rest.split("::") if p]
        if root == "crate":
            base: list[str] = []
        else:  # super:: (possibly repeated)
            base = list(module[:-1])
            while parts and parts[0] == "super":
                parts.pop(0)
                base = base[:-1]
        path = tuple(base + parts)
        for k in range(len(path), 0, -1):
            if path[:k] in modules:
                named.add(path[:k])
                break
    # A mod.rs may name its children directly (`use establish::Claim;`).
    for m in re.findall(r"^\s*(?:pub\s+)?use\s+(\w+)::", text, re.M):
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parent.parent / "src")
    args = parser.parse_args()
    src: Path = args.src
    files = sorted(p for p in src.rglob("*.rs") if p.name != "main.rs")
    texts = {module_of(p, src): (p, non_test(p.read_text().splitlines())) for p in files}
    modules = set(texts)
    graph = {m: uses(m, "\n".join(lines), modules) for m, (_, lines) in texts.items()}
    broken = []

    for component in cycles(graph):
        names = ", ".join("::".join(m) or "crate" for m in component)
        broken.append(f"import circle between: {names}")

    sizes = sorted(((code_lines(lines), p) for p, lines in texts.values()), reverse=True)
    for size, p in sizes:
        if size > MAX_FILE_CODE:
            broken.append(f"{p.relative_to(src.parent)}: {size} lines of non-test code (at most {MAX_FILE_CODE})")

    every = []
    for p in [*files, src / "main.rs"]:
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
          if not cycles(graph) else f"layout: {len(modules)} modules")
    print(f"layout: largest file {sizes[0][1].relative_to(src.parent)} ({sizes[0][0]} lines of non-test code)")
    if longest:
        print(f"layout: longest function {longest[1]} ({longest[0]} lines)")
    for line in broken:
        print(f"error: {line}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
