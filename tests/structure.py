"""Repository structure checks, read from the source with ``ast`` (nothing is imported).

``findings(root)`` runs every rule on the tree at ``root``; each rule is also a function:

* ``import_cycles``: cycles among first-party modules, counting function-local imports and
  the package ``__init__`` modules an import runs, but not imports under ``if TYPE_CHECKING:``;
* ``layer_violations``: imports against ``ALLOWED`` (type-only imports count here);
* ``long_modules``: modules over ``MAX_MODULE_LINES`` physical lines;
* ``long_functions``: functions and methods over ``MAX_FUNCTION_LINES`` lines, ``def`` line
  to ``end_lineno`` (decorators excluded; a nested function counts in its parent too);
* ``parse_errors``: modules ``ast`` cannot parse, which the other rules cannot see.
"""

from __future__ import annotations

import ast
import itertools
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The trees parsed, relative to the root: the product and the code that runs beside it.
TREES = ("plugins", "include", "dags", "webhook", "dev", "bench")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
#: The Airbyte client package; the other modules under plugins/ are the Airflow glue.
CLIENT = "plugins.airbyte_client"
#: The Airflow plugin: it registers the product (links, the receiver app) with Airflow.
REGISTRATION = "plugins.airbyte_plugin"

#: Layer -> the layers its modules may import. The product, top to bottom: registration (the
#: Airflow plugin, which registers the product with Airflow), dags, include, glue (the other
#: modules directly in plugins/), client (plugins/airbyte_client/...). Only tests import dags;
#: the product imports none of webhook, dev, bench, tests; the client never the glue.
ALLOWED: dict[str, frozenset[str]] = {
    "registration": frozenset({"include", "glue", "client"}),
    "dags": frozenset({"include", "glue", "client"}),
    "include": frozenset({"include", "glue", "client"}),
    "glue": frozenset({"glue", "client"}),
    "client": frozenset({"client"}),
    "webhook": frozenset({"webhook", "include", "glue", "client"}),
    "dev": frozenset({"dev", "webhook", "include", "glue", "client"}),
    "bench": frozenset({"bench", "dev", "webhook", "include", "glue", "client"}),
    "tests": frozenset({"tests", "bench", "dev", "webhook", "dags", "include", "glue", "client"}),
}
#: Top-level names of first-party modules; imports of anything else are ignored.
FIRST_PARTY = frozenset({"plugins", *ALLOWED} - {"glue", "client", "registration"})


@dataclass(frozen=True)
class Module:
    """One parsed source file."""

    name: str  # dotted; a package's __init__.py is the package itself
    path: str  # relative to the root, for messages
    is_package: bool
    source: str
    tree: ast.Module | None  # None when the file does not parse
    error: str = ""


@dataclass(frozen=True)
class Import:
    """One first-party module named by an import statement, resolved."""

    source: str
    target: str
    line: int
    runtime: bool  # False under ``if TYPE_CHECKING:``


def module_name(relative: Path) -> str:
    """``plugins/airbyte_client/__init__.py`` -> ``plugins.airbyte_client``."""
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def load(root: Path, trees: Sequence[str] = TREES) -> list[Module]:
    """Parse every ``.py`` file under ``root/tree`` (a tree may also be one file)."""
    modules = []
    for tree in trees:
        base = root / tree
        paths = [base] if base.is_file() else sorted(base.rglob("*.py"))
        for path in paths:
            relative = path.relative_to(root)
            if any(p.startswith(".") or p == "__pycache__" for p in relative.parts):
                continue
            source = path.read_text(encoding="utf-8")
            try:
                parsed, error = ast.parse(source, filename=str(relative)), ""
            except SyntaxError as exc:
                parsed, error = None, f"{exc.msg} (line {exc.lineno})"
            name = module_name(relative)
            is_package = path.name == "__init__.py"
            modules.append(Module(name, relative.as_posix(), is_package, source, parsed, error))
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _import_nodes(node: ast.AST, runtime: bool = True) -> Iterator[tuple[ast.stmt, bool]]:
    """Every import statement at any depth, flagged False under ``if TYPE_CHECKING:``."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node, runtime
        return
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        blocks = [(node.body, False), (node.orelse, runtime)]
    else:
        blocks = [(list(ast.iter_child_nodes(node)), runtime)]
    for statements, flag in blocks:
        for statement in statements:
            yield from _import_nodes(statement, flag)


def _exists(root: Path, name: str) -> bool:
    """Whether the dotted ``name`` is a module or package file under ``root``."""
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _resolve(root: Path, module: Module, node: ast.stmt) -> list[str]:
    """The modules an import statement names: ``from a import b`` is ``a.b`` if that exists."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    base = node.module or ""
    if node.level:
        package = module.name.split(".")
        if not module.is_package:
            package.pop()
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([node.module] if node.module else [])])
    targets = []
    for alias in node.names:
        sub = f"{base}.{alias.name}" if base else alias.name
        targets.append(sub if alias.name != "*" and _exists(root, sub) else base)
    return targets


def imports(root: Path, module: Module) -> list[Import]:
    """The first-party imports of ``module``, in source order."""
    if module.tree is None:
        return []
    found = []
    for node, runtime in _import_nodes(module.tree):
        for target in _resolve(root, module, node):
            if target.split(".")[0] in FIRST_PARTY:
                found.append(Import(module.name, target, node.lineno, runtime))
    return found


def _ancestors(name: str) -> list[str]:
    """``a.b.c`` -> ``["a", "a.b"]``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(root: Path, modules: Sequence[Module]) -> dict[str, dict[str, int]]:
    """Module -> {imported module: first line}, from runtime imports only.

    Importing ``a.b.c`` runs ``a`` and ``a.b`` too, except the importer's own ancestors: those
    are already initialised (or initialising) by the time the importer runs.
    """
    known = {m.name for m in modules}
    graph: dict[str, dict[str, int]] = {name: {} for name in known}
    for module in modules:
        own = {module.name, *_ancestors(module.name)}
        for imp in imports(root, module):
            if not imp.runtime:
                continue
            implied = [a for a in _ancestors(imp.target) if a not in own]
            for target in [imp.target, *implied]:
                if target in known and target != module.name:
                    graph[module.name].setdefault(target, imp.line)
    return graph


def _components(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _shortest_cycle(graph: dict[str, dict[str, int]], start: str, within: set[str]) -> list[str]:
    """The shortest chain ``start -> ... -> start`` inside one component (breadth first)."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for succ in sorted(graph[node]):
            if succ == start:
                chain = [node]
                while chain[-1] != start:
                    chain.append(previous[chain[-1]])
                return [*reversed(chain), start]
            if succ in within and succ not in previous:
                previous[succ] = node
                queue.append(succ)
    return []


def import_cycles(root: Path, trees: Sequence[str] = TREES) -> list[str]:
    """One line per distinct cycle: the shortest cycle through each module of each component."""
    modules = load(root, trees)
    graph = import_graph(root, modules)
    paths = {m.name: m.path for m in modules}
    seen: set[tuple[str, ...]] = set()
    lines = []
    for component in _components(graph):
        for start in component:
            chain = _shortest_cycle(graph, start, set(component))
            ring = chain[:-1]
            pivot = ring.index(min(ring))
            key = tuple(ring[pivot:] + ring[:pivot])
            if key in seen:
                continue
            seen.add(key)
            steps = [*key, key[0]]
            where = ", ".join(f"{paths[a]}:{graph[a][b]}" for a, b in itertools.pairwise(steps))
            lines.append(f"import cycle: {' -> '.join(steps)}  [{where}]")
    return lines


def layer(name: str) -> str | None:
    """The layer of a dotted module name (``None`` outside the first party)."""
    top = name.split(".")[0]
    if name == REGISTRATION:
        return "registration"
    if top == "plugins":
        return "client" if name == CLIENT or name.startswith(CLIENT + ".") else "glue"
    return top if top in ALLOWED else None


def layer_violations(root: Path, trees: Sequence[str] = TREES) -> list[str]:
    """Imports of a layer ``ALLOWED`` does not list for the importer's layer."""
    lines = []
    for module in load(root, trees):
        source_layer = layer(module.name)
        if source_layer is None:
            continue
        for imp in imports(root, module):
            target_layer = layer(imp.target)
            if target_layer is None or target_layer in ALLOWED[source_layer]:
                continue
            note = "" if imp.runtime else " (under TYPE_CHECKING)"
            lines.append(
                f"layer: {module.path}:{imp.line} {module.name} ({source_layer}) imports "
                f"{imp.target} ({target_layer}){note}"
            )
    return lines


def long_modules(root: Path, trees: Sequence[str] = TREES) -> list[str]:
    """Modules over ``MAX_MODULE_LINES`` physical lines."""
    lines = []
    for module in load(root, trees):
        count = len(module.source.splitlines())
        if count > MAX_MODULE_LINES:
            lines.append(f"long module: {module.path} has {count} lines (max {MAX_MODULE_LINES})")
    return lines


def _functions(node: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.AST]]:
    """Every function and method at any depth, with its qualified name."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef):
                yield name, child
            yield from _functions(child, f"{name}.")
        else:
            yield from _functions(child, prefix)


def long_functions(root: Path, trees: Sequence[str] = TREES) -> list[str]:
    """Functions and methods over ``MAX_FUNCTION_LINES`` lines, ``def`` to ``end_lineno``."""
    lines = []
    for module in load(root, trees):
        if module.tree is None:
            continue
        for name, node in _functions(module.tree):
            assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            count = (node.end_lineno or node.lineno) - node.lineno + 1
            if count > MAX_FUNCTION_LINES:
                lines.append(
                    f"long function: {module.path}:{node.lineno} {name} has {count} lines "
                    f"(max {MAX_FUNCTION_LINES})"
                )
    return lines


def parse_errors(root: Path, trees: Sequence[str] = TREES) -> list[str]:
    """Modules that do not parse (the other rules skip them)."""
    return [f"syntax error: {m.path}: {m.error}" for m in load(root, trees) if m.tree is None]


RULES = (parse_errors, import_cycles, layer_violations, long_modules, long_functions)


def findings(root: Path, trees: Sequence[str] = TREES) -> list[str]:
    """Every rule's findings on the tree at ``root``, one readable line each."""
    return [line for rule in RULES for line in rule(root, trees)]
