"""The house rules a newcomer relies on: the encoder is a pipeline whose stages run once, in order;
a source file is opened once; data flows one way (sspcodec imports sspnet, never the reverse); no
module shadows the standard library or a dependency; no source file grows past 400 lines."""
from __future__ import annotations

import ast
import builtins
import importlib.metadata
import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sspcodec.api
from sspcodec import Encoder
from sspcodec.methods import METHODS
from sspcodec.options import METHOD_NAMES

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sspnet", "sspcodec")


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _photo(h: int = 72, w: int = 104) -> np.ndarray:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 2, y * 3, (x + y)], axis=2) % 256
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def encoder(tiny_model_path) -> Encoder:
    return Encoder(str(tiny_model_path), device="cpu")


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory) -> Path:
    from dataclasses import replace

    from sspnet import CONFIGS, build_model, save_checkpoint

    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_checkpoint(build_model(replace(CONFIGS["default"], input_size=(64, 96))), path, info={"note": "random"})
    return path


def _trace(monkeypatch, encoder: Encoder) -> list[str]:
    """Record each stage of `Encoder.compress` as it is entered."""
    seen: list[str] = []

    def spy(label, fn):
        def wrapper(*args, **kwargs):
            seen.append(label)
            return fn(*args, **kwargs)

        return wrapper

    for name, label in (("read_source", "read"), ("ShiftScorer", "score"), ("budget_bytes", "budget"),
                        ("fewest_bytes", "budget"), ("build_result", "result")):
        monkeypatch.setattr(sspcodec.api, name, spy(label, getattr(sspcodec.api, name)))
    for name, label in (("weights", "weights"), ("run", "method"), ("guard", "guard")):
        monkeypatch.setattr(encoder.strategy, name, spy(label, getattr(encoder.strategy, name)))
    return seen


@pytest.mark.parametrize("method", ["rd", "search"])
def test_compress_runs_each_stage_once_in_pipeline_order(tiny_model_path, monkeypatch, method):
    encoder = Encoder(str(tiny_model_path), device="cpu", method=method)
    seen = _trace(monkeypatch, encoder)
    encoder.compress(_photo(), quality=70)
    assert seen == ["read", "score", "weights", "budget", "method", "guard", "result"]


def test_a_shift_budget_runs_the_method_inside_the_budget_stage(encoder, monkeypatch):
    seen = _trace(monkeypatch, encoder)
    encoder.compress(_photo(), max_shift=1.0)
    assert seen[:4] == ["read", "score", "weights", "budget"] and seen[-1] == "result"
    assert set(seen[4:-1]) == {"method"}  # the bisection's runs; a shift budget has no size to guard


def test_registry_and_option_check_agree():
    assert tuple(METHODS) == METHOD_NAMES


def test_a_source_file_is_opened_once(encoder, tiny_model_path, tmp_path, monkeypatch):
    """The API and the command line (with its report) open the image file once per call."""
    src = tmp_path / "photo.png"
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(_photo()).save(src, icc_profile=srgb)
    opened: list[str] = []
    real_os_open, real_open = os.open, builtins.open

    def os_open(path, *args, **kwargs):
        opened.append(os.fspath(path))
        return real_os_open(path, *args, **kwargs)

    def py_open(path, *args, **kwargs):
        if isinstance(path, (str, os.PathLike)):
            opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", py_open)
    r = encoder.compress(src)
    assert opened.count(str(src)) == 1 and Image.open(io.BytesIO(r.data)).info["icc_profile"] == srgb

    from typer.testing import CliRunner

    from sspcodec.cli import app

    opened.clear()
    res = CliRunner().invoke(app, ["compress", str(src), "-o", str(tmp_path / "o.jpg"), "--report",
                                   str(tmp_path / "r.png"), "--model", str(tiny_model_path), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert opened.count(str(src)) == 1


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_sspnet_never_imports_sspcodec():
    offenders = [str(p.relative_to(ROOT)) for p in _modules("sspnet")
                 if any(n.split(".")[0] == "sspcodec" for n in _imports(p))]
    assert offenders == []
    code = ("import pkgutil, importlib, sys, sspnet\n"
            "for m in pkgutil.walk_packages(sspnet.__path__, 'sspnet.'):\n"
            "    importlib.import_module(m.name)\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] == 'sspcodec'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_no_module_shadows_the_standard_library_or_a_dependency():
    dependencies = {name.lower() for name in importlib.metadata.packages_distributions()} - set(PACKAGES)
    taken = set(sys.stdlib_module_names) | dependencies | {"imageio", "ray", "typer", "cv2", "jpeglib"}
    shadows = [str(p.relative_to(ROOT)) for pkg in PACKAGES for p in _modules(pkg)
               if (p.stem if p.stem != "__init__" else p.parent.name) in taken]
    assert shadows == []


def test_no_source_file_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for pkg in PACKAGES for p in _modules(pkg)
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def _private_uses(path: Path) -> list[str]:
    """`from ours import _name`, and `alias._name` where alias is one of our modules."""
    tree = ast.parse(path.read_text())
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in PACKAGES:
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    found.append(f"{path.name}:{node.lineno} from {node.module} import {a.name}")
                if _is_module(f"{node.module}.{a.name}"):
                    modules.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in PACKAGES:
                    modules.add(a.asname or a.name)
    for node in ast.walk(tree):
        private = isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
        if private and ast.unparse(node.value) in modules:
            found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return found


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def test_no_private_name_is_used_across_modules():
    """Tests, benchmarks, examples and the packages use each other's public names only."""
    folders = (*PACKAGES, "tests", "benchmarks", "examples")
    paths = [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]
    offenders = [use for p in paths for use in _private_uses(p)
                 if not use.split(" ", 1)[1].startswith("from sspcodec.backends._libjpeg")]  # a package's own
    assert offenders == []
