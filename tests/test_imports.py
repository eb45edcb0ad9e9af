"""The packages' import structure: every module of sspnet and sspcodec imports on its own, no
module imports another in a cycle (not even inside a function), and jpeglib stays behind
sspcodec.backends."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sspnet", "sspcodec")

# Finds every module of the packages in argv[1] (pkgutil), then imports each as the first project
# module of a clean slate: all modules of those packages are dropped from sys.modules before each
# import (third-party ones stay loaded, which keeps this fast). A cycle shows as an ImportError
# for some entry point. Prints {"modules": [...], "failures": {module: traceback}}.
_IMPORT_ALONE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys, traceback
    packages = tuple(json.loads(sys.argv[1]))
    names = []
    for pkg in packages:
        names.append(pkg)
        path = importlib.import_module(pkg).__path__
        names += [m.name for m in pkgutil.walk_packages(path, prefix=pkg + ".")]
    failures = {}
    for name in names:
        for key in [k for k in sys.modules if k.split(".")[0] in packages]:
            del sys.modules[key]
        try:
            importlib.import_module(name)
        except Exception:
            failures[name] = traceback.format_exc(limit=-4)
    print(json.dumps({"modules": names, "failures": failures}))
    """
)


def _source_files(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Module name -> file for every .py file of the packages under root."""
    out = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def import_each_alone(root: Path, packages: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """Every module of the packages under root, and {module: traceback} of those that fail to
    import as the first of their packages (in a fresh interpreter that sees only root's copy)."""
    res = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALONE, json.dumps(packages)],
        cwd=root, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return out["modules"], out["failures"]


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Module -> project modules it imports anywhere in its source (function bodies too)."""
    files = _source_files(root, packages)

    def resolve(target: str) -> str | None:
        while target and target not in files:
            target = target.rpartition(".")[0]
        return target or None

    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            deps |= {t for t in map(resolve, targets) if t is not None and t != name}
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def _write_cyclic_package(root: Path) -> None:
    """cyc/a.py and cyc/b.py import each other at the top; lazy/ does the same inside functions."""
    (root / "cyc").mkdir()
    (root / "cyc" / "__init__.py").write_text("")
    (root / "cyc" / "a.py").write_text("from .b import B\nA = 1\n")
    (root / "cyc" / "b.py").write_text("from .a import A\nB = 2\n")
    (root / "lazy").mkdir()
    (root / "lazy" / "__init__.py").write_text("from .a import f\n")
    (root / "lazy" / "a.py").write_text("def f():\n    from .b import g\n    return g\n")
    (root / "lazy" / "b.py").write_text("def g():\n    from . import a\n    return a\n")


def test_the_checks_catch_cycles(tmp_path):
    _write_cyclic_package(tmp_path)
    modules, failed = import_each_alone(tmp_path, ("cyc",))
    assert modules == ["cyc", "cyc.a", "cyc.b"]
    assert set(failed) == {"cyc.a", "cyc.b"} and "partially initialized" in failed["cyc.a"]
    assert cycles(import_graph(tmp_path, ("cyc", "lazy"))) == [["cyc.a", "cyc.b"], ["lazy.a", "lazy.b"]]


def test_every_module_imports_on_its_own():
    modules, failed = import_each_alone(ROOT, PACKAGES)
    assert set(modules) >= set(_source_files(ROOT, PACKAGES))  # pkgutil missed no source file
    assert not failed, "\n".join(f"{k}:\n{v}" for k, v in failed.items())


def test_no_import_cycles_even_inside_functions():
    graph = import_graph(ROOT, PACKAGES)
    assert "sspcodec.backends.dct" in graph["sspcodec.backends.mozjpeg"]
    assert cycles(graph) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_only_the_backends_import_jpeglib(package):
    """libjpeg's global state and file-only interface stay in one place."""
    users = []
    for name, path in _source_files(ROOT, (package,)).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            if any(m.split(".")[0] == "jpeglib" for m in mods):
                users.append(name)
    assert all(u.startswith("sspcodec.backends.") for u in users), users
    if package == "sspcodec":
        assert {"sspcodec.backends.dct", "sspcodec.backends._libjpeg"} <= set(users)  # the scan sees them
