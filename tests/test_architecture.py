"""The layers of docs/architecture.md hold: no module imports from a higher layer, and no modules import each
other in a circle. Every import counts, also one inside a function or under ``TYPE_CHECKING``: a lazy import
hides a loop from Python, not from a reader."""

from __future__ import annotations

import ast
from pathlib import Path

import constrain

PACKAGE = Path(constrain.__file__).resolve().parent

# layer 1 first (the numbers of docs/architecture.md); a module may import its own layer and the layers below
LAYERS: tuple[tuple[str, ...], ...] = (
    ("constrain.errors", "constrain._regex"),
    ("constrain.engines", "constrain._databases"),
    ("constrain.grammar",),
    ("constrain.json_schema",),
    ("constrain.providers", "constrain.dsl"),
    ("constrain.local", "constrain.generate", "constrain.server"),
    ("constrain.sql",),
    ("constrain.batch", "constrain.playground"),
    ("constrain", "constrain.__main__", "constrain.cli"),  # the public surface and the CLI over it
)

# documented import paths kept where users write them, pointing up on purpose
UPWARD_ON_PURPOSE = {
    ("constrain.providers.local", "constrain.local"),  # `from constrain.providers.local import Local`
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The constrain modules ``path`` imports (relative imports resolved), wherever the import stands."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "constrain"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "constrain":
                continue
            # `from . import x` / `from .pkg import mod` name modules: the package itself only for other names
            modules = {f"{target}.{alias.name}" for alias in node.names if _is_module(f"{target}.{alias.name}")}
            found |= modules
            if len(modules) < len(node.names):
                found.add(target)
    found.discard(name)
    return found


def _is_module(dotted: str) -> bool:
    relative = Path(*dotted.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative / "__init__.py").is_file()


def layer_of(module: str) -> int:
    best, layer = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), index + 1
    assert layer > 0, f"{module} is in no layer of LAYERS: add it (and to docs/architecture.md)"
    return layer


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_no_module_imports_from_a_higher_layer() -> None:
    upward = sorted(
        f"{source} (layer {layer_of(source)}) imports {target} (layer {layer_of(target)})"
        for source, targets in graph().items() for target in targets
        if layer_of(target) > layer_of(source) and (source, target) not in UPWARD_ON_PURPOSE
    )
    assert not upward, "\n".join(upward)


def test_no_import_circles() -> None:
    edges = graph()
    edges = {m: {t for t in ts if t in edges} for m, ts in edges.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_the_checker_sees_relative_and_lazy_imports() -> None:
    found = imports_of(PACKAGE / "grammar" / "_grammar.py")
    assert "constrain.grammar.lint" in found and "constrain.engines.gbnf" in found  # one of them is lazy
    assert layer_of("constrain.grammar.lint._engines") == 3 and layer_of("constrain.sql.databases._server") == 7
    assert imports_of(PACKAGE / "batch" / "_pipeline.py") >= {"constrain.json_schema"}
