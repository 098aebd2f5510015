"""The import graph between burrow's top-level packages and modules follows the layering
docs/architecture.md declares (its "Layers" table is read here): nothing imports upward, the
DNS core imports nothing from api/, board/, storage/ or telemetry/, and there is no cycle.

Every module under firmware/burrow is parsed with ``ast``; every import counts, at module level,
inside a function (a deferred import is still a dependency) or under ``if TYPE_CHECKING:`` (a
type is a dependency too).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "firmware" / "burrow"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# Edges the layering still has to lose, each with the reason and what removes it. The test
# fails when one is gone (delete it here and in docs/architecture.md) or a new one appears.
KNOWN: dict[tuple[str, str], str] = {}


def module_names() -> dict[str, Path]:
    """Dotted module name → file, for every module of the package."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def node_of(dotted: str) -> str:
    """The top-level package or module a dotted name lies in ("burrow" for the package itself)."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "burrow"


def imports_of(name: str, path: Path, modules: dict[str, Path]):
    """(imported module, line) for every import of a burrow module in the file."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # "from x import y": y is a module of x, or a name defined in x
            targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in modules else prefix for a in node.names]
        else:
            continue
        for target in targets:
            if target == "burrow" or target.startswith("burrow."):
                yield target, node.lineno


def import_graph() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) between top-level nodes → where ("burrow/x/y.py:12 imports z")."""
    modules = module_names()
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, path in sorted(modules.items()):
        source = node_of(name)
        for target, line in imports_of(name, path, modules):
            if node_of(target) != source:
                where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}"
                edges[(source, node_of(target))].append(where)
    return edges


def declared_layers() -> list[tuple[str, list[str]]]:
    """(layer, members) from the Layers table of docs/architecture.md, lowest layer first."""
    text = ARCHITECTURE.read_text()
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    layers = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and line.startswith("|") and not set(cells[0]) <= set("-: ") and cells[0] != "layer":
            layers.append((cells[0], re.findall(r"`([A-Za-z_]+)`", cells[1])))
    return layers


def cycles(edges) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    graph = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_package_and_module_has_one_declared_layer():
    placed = [m for _, members in declared_layers() for m in members]
    assert len(placed) == len(set(placed)), f"placed twice: {sorted(m for m in placed if placed.count(m) > 1)}"
    actual = {node_of(name) for name in module_names()}
    assert actual - set(placed) == set(), "add these to the Layers table of docs/architecture.md"
    assert set(placed) - actual == set(), "the Layers table names what does not exist"


def test_no_upward_import():
    rank = {m: i for i, (_, members) in enumerate(declared_layers()) for m in members}
    names = [layer for layer, _ in declared_layers()]
    upward = [f"{a} ({names[rank[a]]}) -> {b} ({names[rank[b]]}): {where[0]}"
              for (a, b), where in sorted(import_graph().items())
              if rank[b] > rank[a] and (a, b) not in KNOWN]
    assert upward == []


def test_the_dns_core_imports_no_faces_storage_or_telemetry():
    edges = import_graph()
    bad = [where for (a, b), where in edges.items() if a == "dns" and b in ("api", "board", "storage", "telemetry")]
    assert bad == []


def test_no_import_cycle():
    edges = {edge for edge in import_graph() if edge not in KNOWN}
    assert cycles(edges) == []


def test_the_known_exceptions_are_still_there_and_written_down():
    edges = import_graph()
    gone = [edge for edge in KNOWN if edge not in edges]
    assert gone == [], "fixed: remove these from KNOWN and from docs/architecture.md"
    doc = ARCHITECTURE.read_text()
    assert all(f"`{a}` → `{b}`" in doc for a, b in KNOWN)


def test_the_checks_see_what_they_look_for():
    # the parser finds deferred imports, and the cycle check finds a cycle
    edges = import_graph()
    assert any("app.py" in w for w in edges[("app", "runtime_config")])  # imported inside a method
    assert cycles({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}) == [["a", "b", "c"]]
    assert cycles({("a", "b"), ("b", "c")}) == []
