"""The shape of the package: no module over 400 lines, no function over 60 lines.

Small modules with one reason to change, and functions a reader can hold in their head;
`docs/architecture.md` says where a new piece goes.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "controller"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _shown(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent)) if path.is_relative_to(PACKAGE) else str(path)


def long_modules(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_MODULE_LINES:
            found.append(f"{_shown(path)}: {n} lines")
    return found


def long_functions(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    where = f"{_shown(path)}:{node.lineno}"
                    found.append(f"{where} {node.name}: {n} lines")
    return found


def test_the_package_is_where_it_should_be() -> None:
    assert (PACKAGE / "__init__.py").is_file() and len(_modules()) > 50


def test_no_module_over_400_lines() -> None:
    assert long_modules(_modules()) == []


def test_no_function_over_60_lines() -> None:
    assert long_functions(_modules()) == []


def test_the_checks_see_long_code(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(70))
    long = tmp_path / "long.py"
    long.write_text("def f() -> None:\n" + body + "\n" + "\n" * 400)
    short = tmp_path / "short.py"
    short.write_text("def g() -> int:\n    return 1\n")
    assert long_modules([long, short]) == [f"{long}: 471 lines"]
    assert long_functions([long, short]) == [f"{long}:1 f: 71 lines"]


def import_cycles(package: str) -> list[tuple[str, str]]:
    """Pairs of modules that import each other, directly or through others (imports inside
    functions included: grimp reads every import statement)."""
    import grimp

    graph = grimp.build_graph(package)
    found = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(importer=imported, imported=module):
                found.add(tuple(sorted((module, imported))))
    return sorted(found)  # type: ignore[arg-type]


def test_no_import_cycles() -> None:
    assert import_cycles("controller") == []


def test_the_cycle_check_sees_a_cycle(tmp_path: Path) -> None:
    import sys

    pkg = tmp_path / "cyclic"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from cyclic import b\n")
    (pkg / "b.py").write_text("from cyclic import a\n")
    sys.path.insert(0, str(tmp_path))
    try:
        assert import_cycles("cyclic") == [("cyclic.a", "cyclic.b")]
    finally:
        sys.path.remove(str(tmp_path))
