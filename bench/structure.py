"""Measure llmrank's structure: module sizes, the import graph, its cycles, deferred imports.

Reads the source as text (``ast``), imports nothing from it. Writes JSON:

    python bench/structure.py --out bench/results/structure.json

- ``modules``: lines per module of the ``llmrank`` package.
- ``edges``: module -> the llmrank modules it imports at module level.
- ``cycles``: strongly connected components (size > 1) of the module-level graph, and of the
  graph that also counts imports made inside functions (a cycle "dodged" by a deferred import
  shows up only in the second).
- ``deferred_imports``: every llmrank import made inside a function or method, with its line.
  A deferred import is fine when it keeps an optional dependency or a heavy module off the
  import path; it is a smell when the only reason is a cycle.
- ``bench_eval_reaching_outside_package``: files under bench/ and eval/ that reach into tests/.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "llmrank"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def llmrank_targets(current: str, is_package: bool, node: ast.AST, known: set[str]) -> list[str]:
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = resolve(current, is_package, node)
        names = [f"{base}.{alias.name}" for alias in node.names] + [base]
    found = []
    for name in names:
        # "from llmrank.x import y" imports module llmrank.x.y when it exists, else llmrank.x
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name.startswith(PACKAGE) and name != current:
            found.append(name)
    return sorted(set(found))


def scan(files: list[Path]) -> tuple[dict, dict, list]:
    known = {module_name(f) for f in files}
    top: dict[str, set[str]] = {m: set() for m in known}
    every: dict[str, set[str]] = {m: set() for m in known}
    deferred = []
    for path in files:
        mod = module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        function_nodes = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                function_nodes.update(id(n) for n in ast.walk(node) if n is not node)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            targets = llmrank_targets(mod, is_package, node, known)
            every[mod].update(targets)
            if id(node) in function_nodes:
                deferred.extend({"module": mod, "line": node.lineno, "imports": t} for t in targets)
            else:
                top[mod].update(targets)
    return top, every, deferred


def reaches_outside_package(path: Path) -> bool:
    """Does a bench/eval script import ``tests`` or another script, or edit ``sys.path``?"""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("tests", "bench", "eval"):
            return True
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] in ("tests", "bench", "eval") for a in node.names):
            return True
        if isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", "") == "sys":
            return True
    return False


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; returns the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def without_package_parents(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Drop edges from a package's ``__init__`` to its own submodules and back to the parent.

    ``llmrank.losses`` re-exporting ``llmrank.losses.listwise`` (and the submodule importing its
    siblings through the parent) is how a package presents itself, not a design cycle.
    """
    out = {}
    for mod, targets in graph.items():
        out[mod] = {
            t for t in targets if not t.startswith(mod + ".") and not mod.startswith(t + ".")
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    files = sorted((ROOT / PACKAGE).rglob("*.py"))
    top, every, deferred = scan(files)
    sizes = {module_name(f): len(f.read_text().splitlines()) for f in files}
    reach_tests = sorted(
        str(p.relative_to(ROOT))
        for folder in ("bench", "eval")
        for p in (ROOT / folder).rglob("*.py")
        if p != Path(__file__).resolve() and reaches_outside_package(p)
    )
    report = {
        "modules": dict(sorted(sizes.items(), key=lambda kv: -kv[1])),
        "total_lines": sum(sizes.values()),
        "largest": max(sizes.values()),
        "modules_over_500_lines": sorted(m for m, n in sizes.items() if n > 500),
        "edges": {m: sorted(t) for m, t in sorted(top.items())},
        "cycles_module_level": strongly_connected(without_package_parents(top)),
        "cycles_with_deferred_imports": strongly_connected(without_package_parents(every)),
        "deferred_imports": deferred,
        "bench_eval_reaching_outside_package": reach_tests,
    }
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(args.out)
    summary = {k: report[k] for k in ("total_lines", "largest", "modules_over_500_lines",
                                      "cycles_module_level", "cycles_with_deferred_imports",
                                      "bench_eval_reaching_outside_package")}
    summary["deferred_imports"] = len(deferred)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
