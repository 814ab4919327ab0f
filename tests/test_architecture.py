"""The layering rules of docs/architecture.md, read from the source with `ast` (every import statement counts,
including lazy ones inside functions):

- imports point only downwards: core < data < nets < sweep < report < domains < cli;
- domains never import each other (the one allowed exception: sharpness may read tabular diffusion models);
- there is no import cycle between modules;
- each domain is a slice: its commands in `rote/<domain>/cli.py`, its report in `rote/<domain>/report.py`, and
  `rote.cli` mounts every domain's app.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = {"core": 0, "data": 1, "nets": 2, "sweep": 3, "report": 4, "cli": 6}
DOMAIN_RANK = 5
ALLOWED_DOMAIN_EDGES = {("sharpness", "tabular")}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / "rote").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()
DOMAINS = sorted(
    {
        m.split(".")[1]
        for m in MODULES
        if m.count(".") >= 1 and m.split(".")[1] not in LAYERS and (SRC / "rote" / m.split(".")[1]).is_dir()
    }
)


def _imports(name: str, path: Path) -> set[str]:
    """Modules of rote that `name` imports anywhere in its file (resolved to the most specific existing module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t.startswith("rote") and t != name:
                found.add(t)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _rank(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the `rote` package itself: its version only
    top = parts[1]
    if top in LAYERS:
        return LAYERS[top]
    if top in DOMAINS:
        return DOMAIN_RANK
    return None  # a top-level module such as rote.__main__


def test_the_walk_sees_the_package():
    assert {"rote.core.runs", "rote.cli.main", "rote.tabular.cli", "rote.llm.cli", "rote.fairness.cli"} <= set(MODULES)
    assert {"tabular", "llm", "fairness"} <= set(DOMAINS)
    assert "rote.core.runs" in GRAPH["rote.core.cli"]  # lazy and top-level imports are both seen
    assert "rote.tabular.audit" in GRAPH["rote.tabular.pipeline"]


def test_imports_point_only_downwards():
    bad = []
    for src, targets in GRAPH.items():
        rs = _rank(src)
        for dst in targets:
            rd = _rank(dst)
            if rs is None or rd is None:
                continue
            if rd > rs:
                bad.append(f"{src} -> {dst}")
    assert bad == [], "upward imports:\n" + "\n".join(bad)


def test_domains_do_not_import_each_other():
    bad = []
    for src, targets in GRAPH.items():
        if _rank(src) != DOMAIN_RANK:
            continue
        a = src.split(".")[1]
        for dst in targets:
            if _rank(dst) == DOMAIN_RANK:
                b = dst.split(".")[1]
                if a != b and (a, b) not in ALLOWED_DOMAIN_EDGES:
                    bad.append(f"{src} -> {dst}")
    assert bad == [], "domain-to-domain imports:\n" + "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on, stack, out = set(), [], []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on:
                    low[v] = min(low[v], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's __init__ re-exporting its modules is not a cycle with them: Python runs the __init__ first, and
    a module that imports a sibling through the package name reaches the same objects. Edges into a package from
    its own submodules are dropped; everything else counts."""
    out = {}
    for src, targets in graph.items():
        out[src] = {t for t in targets if not (src.startswith(t + "."))}
    return out


def test_cycle_finder_finds_a_planted_cycle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(g) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert _cycles(_without_package_inits(GRAPH)) == []


@pytest.mark.parametrize("domain", DOMAINS)
def test_each_domain_is_a_slice(domain):
    assert f"rote.{domain}.cli" in MODULES and f"rote.{domain}.report" in MODULES
    main = (SRC / "rote" / "cli" / "main.py").read_text()
    assert f"from rote.{domain}.cli import app as {domain}_app" in main
    assert f'app.add_typer({domain}_app, name="{domain}")' in main


def test_shared_layers_hold_no_domain_code():
    # the shared layers name no domain module, and rote.cli holds only mounting and top-level verbs
    for name, targets in GRAPH.items():
        if _rank(name) is not None and _rank(name) < DOMAIN_RANK:
            assert not any(_rank(t) == DOMAIN_RANK for t in targets), name
    assert sorted(m for m in MODULES if m.startswith("rote.cli.")) == ["rote.cli.main"]
