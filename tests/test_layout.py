"""The code's shape: imports point one way, result types stay light, the library speaks without
command-line syntax."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "dedup"


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        found[name] = ast.parse(path.read_text())
    return found


def imports(tree: ast.Module, known: set[str]) -> set[str]:
    """The dedup modules a module imports, at the top or inside functions."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dedup"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("dedup"))
    return out & known


def test_no_module_imports_itself_back():
    mods = modules()
    graph = {name: imports(tree, set(mods)) - {name} for name, tree in mods.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if nxt.startswith(node + "."):  # a package importing its own submodules
                continue
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join([*path, node, nxt])
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_result_types_and_rendering_import_without_faiss_opencv_or_torch():
    code = ("import sys, dedup.results, dedup.report, dedup.manifest, dedup.config; "
            "print(sorted(m for m in ('faiss', 'cv2', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_library_never_imports_the_command_line_or_the_terminal():
    for name, tree in modules().items():
        if name.startswith("dedup.cli") or name == "dedup.progress":
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(n and n.split(".")[0] in ("click", "rich") for n in names), f"{name} imports {names}"


def test_library_errors_do_not_name_command_line_flags():
    flag = re.compile(r"(?<![\w`-])--[a-z][a-z-]+")
    for name, tree in modules().items():
        if name.startswith("dedup.cli"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                for const in ast.walk(node.exc):
                    if isinstance(const, ast.Constant) and isinstance(const.value, str):
                        assert not flag.search(const.value), f"{name}: {const.value!r}"


def test_the_manifest_keys_are_spelled_in_one_module():
    keys = ('"shards"', '"faiss"', '"dedup_version"')
    for path in PACKAGE.rglob("*.py"):
        if path.name == "manifest.py":
            continue
        text = path.read_text()
        assert not any(k in text for k in keys), f"{path.name} spells a manifest key"
