"""The floor plan holds: imports run one way (data_prep <- cascade <- export <- kws), the
module graph has no cycles, and internal imports sit at module top where a reader sees them."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RANK = {"data_prep": 0, "cascade": 1, "export": 2, "kws": 3}
LAZY_REASON = "# lazy:"  # an internal import inside a function must say why on its line


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in RANK:
        for path in (REPO / pkg).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _internal_imports(path: Path) -> list[tuple[ast.stmt, list[str], bool]]:
    """(statement, internal modules it names, at module top?) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES]
        else:
            continue
        names = [n for n in names if n.split(".")[0] in RANK]
        if names:
            found.append((node, names, id(node) in top))
    return found


def test_every_package_module_is_seen() -> None:
    assert len(MODULES) > 100 and "cascade.runtime.pipeline" in MODULES and "kws.train.run" in MODULES


def test_no_import_climbs_against_the_layering() -> None:
    climbs = []
    for name, path in MODULES.items():
        for node, targets, _ in _internal_imports(path):
            climbs += [f"{path.relative_to(REPO)}:{node.lineno} -> {t}" for t in targets
                       if RANK[t.split(".")[0]] > RANK[name.split(".")[0]]]
    assert climbs == []


def test_module_level_import_graph_has_no_cycles() -> None:
    graph = {name: {t for node, targets, top in _internal_imports(path) if top for t in targets if t in MODULES and t != name}
             for name, path in MODULES.items()}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack + [node, nxt]
            if nxt not in state and (cycle := visit(nxt, stack + [node])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            assert (cycle := visit(start, [])) is None, " -> ".join(cycle)


def test_internal_imports_sit_at_module_top() -> None:
    total, inside, unexplained = 0, 0, []
    for path in MODULES.values():
        lines = path.read_text().splitlines()
        for node, _, top in _internal_imports(path):
            total += 1
            if not top:
                inside += 1
                if LAZY_REASON not in lines[node.lineno - 1]:
                    unexplained.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert unexplained == [], "internal imports inside functions need a '# lazy: <why>' comment"
    assert inside <= 0.10 * total, f"{inside} of {total} internal imports are inside functions"


def test_no_module_over_400_lines() -> None:
    long = {str(p.relative_to(REPO)): n for p in MODULES.values() if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
