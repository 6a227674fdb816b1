"""The package's structure rules, read from the source with :mod:`ast` (nothing is imported).

- No import cycle of any length between journeymodel's modules (the CLI included, installed as
  ``journeymodel.cli``). Every ``import`` counts, those inside functions too (a lazy import still
  ties the two modules together); imports under ``if TYPE_CHECKING:`` do not run and do not
  count. A package ``__init__`` that re-exports names lazily (``journeymodel.lazy.exports``,
  module names as strings) has no edge to the modules it names.
- No private name (``_x``, dunders excepted) imported from another module, or read from an
  imported module as an attribute (``hmm._norm``): what a module shares it names publicly.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "journeymodel"


def _module_files() -> dict[str, Path]:
    """Module name -> file, for journeymodel/ and cli/ (as journeymodel.cli)."""
    found = {}
    for top, prefix in ((ROOT / "journeymodel", PACKAGE), (ROOT / "cli", f"{PACKAGE}.cli")):
        for path in sorted(top.rglob("*.py")):
            parts = list(path.relative_to(top).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([prefix, *parts])] = path
    return found


MODULES = _module_files()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _nodes(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (its ``else`` counts)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute name of a ``from ... import`` (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")[: len(module.split(".")) - node.level + is_package]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> tuple[set[str], list[str], dict[str, str]]:
    """Journeymodel modules ``module`` imports; private names it imports (as text for the
    message); local names bound to imported journeymodel modules."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    targets: set[str] = set()
    private: list[str] = []
    aliases: dict[str, str] = {}
    for node in _nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    targets.add(alias.name)
                    if alias.asname:
                        aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            if source not in MODULES:
                continue
            for alias in node.names:
                full = f"{source}.{alias.name}"
                if full in MODULES:  # a submodule
                    targets.add(full)
                    aliases[alias.asname or alias.name] = full
                    continue
                targets.add(source)
                if _private(alias.name):
                    private.append(f"{module}:{node.lineno} imports {alias.name} from {source}")
    for node in _nodes(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and _private(node.attr)
                and f"{aliases[node.value.id]}.{node.attr}" not in MODULES):
            private.append(f"{module}:{node.lineno} reads {node.value.id}.{node.attr} "
                           f"from {aliases[node.value.id]}")
    # importing a.b.c runs the packages a and a.b first (those the importer is not inside)
    targets |= {p for t in targets for p in _packages(t) if p not in _packages(module)}
    targets.discard(module)
    return targets, private, aliases


def _packages(module: str) -> set[str]:
    """The packages enclosing ``module`` (``a.b.c`` -> ``a``, ``a.b``), as read."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))} & MODULES.keys()


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def import_graph() -> dict[str, set[str]]:
    """Module -> the journeymodel modules it imports."""
    return {m: _imports(m)[0] for m in MODULES}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted; singletons included."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One cycle through the first module of ``component`` (shortest, by breadth-first search),
    as a path that ends where it starts."""
    members = set(component)
    start = component[0]
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if child not in parent:
                    parent[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle for each strongly connected component of more than one module."""
    return [a_cycle(graph, c) for c in strongly_connected(graph) if len(c) > 1]


# ---------------------------------------------------------------------------------------------
# The checker, checked on small hand-made graphs


def test_cycle_finder_on_known_graphs():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    two = cycles({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}})
    assert sorted(two) == [["a", "b", "a"], ["c", "d", "c"]]
    # a long chain closing on itself is one component, found whole
    chain = {str(i): {str(i + 1)} for i in range(50)} | {"50": {"0"}}
    (component,) = [c for c in strongly_connected(chain) if len(c) > 1]
    assert len(component) == 51


def test_reader_sees_lazy_imports_and_skips_type_checking(tmp_path, monkeypatch):
    files = {
        "journeymodel.a": "from typing import TYPE_CHECKING\n"
                          "if TYPE_CHECKING:\n    from journeymodel.b import B\n"
                          "def f():\n    from journeymodel.c import _hidden\n    return _hidden\n",
        "journeymodel.b": "import journeymodel.c as c\nx = c._norm\ny = c.__name__\n",
        "journeymodel.c": "",
    }
    paths = {}
    for name, text in files.items():
        paths[name] = tmp_path / f"{name}.py"
        paths[name].write_text(text)
    monkeypatch.setitem(globals(), "MODULES", paths)
    targets, private, _ = _imports("journeymodel.a")
    assert targets == {"journeymodel.c"}  # journeymodel itself is not read here
    assert private == ["journeymodel.a:5 imports _hidden from journeymodel.c"]
    targets, private, _ = _imports("journeymodel.b")
    assert targets == {"journeymodel.c"}
    assert private == ["journeymodel.b:2 reads c._norm from journeymodel.c"]


# ---------------------------------------------------------------------------------------------
# The rules, on the package


def test_every_module_is_read():
    assert {"journeymodel.data.events", "journeymodel.cli.app", "journeymodel.models.markov",
            "journeymodel"} <= MODULES.keys()
    graph = import_graph()
    assert "journeymodel.errors" in graph["journeymodel.data.events"]
    assert "journeymodel.cli.options" in graph["journeymodel.cli.cmd_fit_churn"]
    # a lazy import inside a function counts; one under TYPE_CHECKING does not
    assert "journeymodel.io.validate_models" in graph["journeymodel.io.persist"]
    assert "journeymodel.models.base" not in graph["journeymodel.io.persist"]
    # a package re-exporting lazily (journeymodel.lazy.exports) has no edge to what it names
    assert graph["journeymodel.models.markov"] == {"journeymodel.lazy"}


def test_no_import_cycle():
    graph = import_graph()
    found = [c for c in strongly_connected(graph) if len(c) > 1]
    assert not found, "import cycles (a -> b -> ... -> a; then every module of the cycle's " \
        "strongly connected component):\n" + "\n".join(
            " -> ".join(a_cycle(graph, c)) + "\n    component: " + ", ".join(c) for c in found)


def test_no_private_name_imported_across_modules():
    found = [line for m in MODULES for line in _imports(m)[1]]
    assert not found, "private names used across modules:\n" + "\n".join(found)
