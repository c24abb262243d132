"""The package's modules import each other without circles: read from the source (every
import, also those inside functions, so no import order can hide one; only imports for
annotations, under ``if TYPE_CHECKING:``, are left out: they never run).

Run ``python tests/test_imports.py`` to print the graph's circles, if any."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "eurec4a_nt"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules ``path`` imports (``from pkg import module`` counts as the module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and getattr(block.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                target = f"{base}.{alias.name}"
                out.add(target if target in modules else base)
    return {m for m in out if m in modules and m != name}


def graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports(p, modules) for p in paths}


def test_the_graph_is_read_right() -> None:
    edges = graph()
    assert "eurec4a_nt.sync.core" in edges["eurec4a_nt.sync.session"]
    assert "eurec4a_nt.sync.plan" in edges["eurec4a_nt.sync.answers"]  # from . import plan


def circle(within: str = "eurec4a_nt") -> list[str]:
    """One import circle among the modules of package ``within`` (the first module
    repeated at the end), or []."""
    edges = {m: {t for t in ts if t.startswith(within)} for m, ts in graph().items() if m.startswith(within)}
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return []


def test_no_import_circles_in_the_package() -> None:
    assert circle() == [], f"import circle: {' -> '.join(circle())}"


def importers(of: str) -> set[str]:
    """Modules outside package ``of`` that import from it."""
    return {m for m, targets in graph().items() if not m.startswith(of) and any(t.startswith(of) for t in targets)}


def test_nothing_shipped_imports_the_test_kit() -> None:
    assert importers("eurec4a_nt.testing") == set()


def test_only_the_demo_and_the_test_kit_import_the_demo_kit() -> None:
    users = {m for m in importers("eurec4a_nt.demokit") if not m.startswith("eurec4a_nt.testing")}
    assert users <= {"eurec4a_nt.demo", "eurec4a_nt.jupyter.demo"}


def test_core_modules_import_no_notebook_code() -> None:
    """Only the package (to register HTML views inside IPython) and ``browse()`` (the
    catalog browser widget) reach into :mod:`eurec4a_nt.jupyter`."""
    assert importers("eurec4a_nt.jupyter") <= {"eurec4a_nt", "eurec4a_nt.api"}


if __name__ == "__main__":
    print(" -> ".join(circle()) or "no import circles")
