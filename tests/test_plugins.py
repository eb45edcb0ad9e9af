"""sspcodec inside Pillow (save format "SSPCODEC") and imageio (plugin "sspcodec"): sspcodec/plugins.py.

On a tiny random-weight checkpoint (as test_codec.py) and small images, so the encodes are cheap;
the examples run as scripts with that checkpoint. What is checked: the options reach `compress`
(same bytes as calling it), budgets hold, every Pillow mode gives a decodable JPEG, Pillow's own
JPEG is untouched, typos are refused, the model is loaded once, batches are refused.
"""
from __future__ import annotations

import ast
import inspect
import io
import json
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from imageio.config import known_extensions, known_plugins
from PIL import Image

import sspcodec
from sspcodec import api
from sspcodec.api import ContentChangeWarning, Encoder
from sspcodec.options import DEFAULT_STRENGTH
from sspcodec.plugins import COMPRESS_OPTIONS, ENCODER_OPTIONS, SspcodecPlugin, register_imageio, register_pillow
from sspnet import build_model, save_checkpoint
from sspnet.net.configs import CONFIGS

ROOT = Path(__file__).resolve().parents[1]
MODES = ("P", "LA", "RGBA", "I;16", "CMYK", "1", "L", "RGB")
GREY_MODES = {"LA", "I;16", "1", "L"}


def _photo(h: int = 64, w: int = 96, seed: int = 0) -> np.ndarray:
    """A textured synthetic image (gradients, a block, noise): JPEG has work to do."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) % 32 * 8], -1)
    img[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = [230, 40, 40]
    return np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)


def _in_mode(rgb: np.ndarray, mode: str) -> Image.Image:
    """The photo as a PIL image of `mode` (I;16 from 16-bit samples, as Pillow opens a 16-bit PNG)."""
    if mode == "I;16":
        return Image.fromarray(rgb[:, :, 1].astype(np.uint16) * 257)
    return Image.fromarray(rgb).convert(mode)


def _decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    cfg = replace(CONFIGS["default"], input_size=(64, 96))
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    torch.manual_seed(0)
    save_checkpoint(build_model(cfg), path, info={"note": "random weights for tests"})
    return path


@pytest.fixture(scope="module")
def opts(model_path) -> dict:
    return {"model": str(model_path), "device": "cpu"}


@pytest.fixture(autouse=True)
def pillow_format():
    register_pillow()


def _save(im: Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="SSPCODEC", **options)
    return buf.getvalue()


def test_options_are_those_of_compress_and_encoder():
    assert set(COMPRESS_OPTIONS) <= set(inspect.signature(Encoder.compress).parameters)
    assert set(ENCODER_OPTIONS) <= set(inspect.signature(api.compress).parameters)


def test_pillow_save_fits_max_bytes_and_is_compress_output(opts, tmp_path):
    rgb = _photo()
    Image.fromarray(rgb).save(tmp_path / "out.jpg", format="SSPCODEC", max_bytes="3KB", strength=0.5, **opts)
    data = (tmp_path / "out.jpg").read_bytes()
    assert data == sspcodec.compress(rgb, max_bytes=3000, strength=0.5, **opts).data
    assert len(data) <= 3000
    back = _decode(data)
    assert back.format == "JPEG" and back.size == (96, 64) and back.mode == "RGB"


@pytest.mark.parametrize("mode", MODES)
def test_every_pillow_mode_saves_a_decodable_jpeg(opts, mode):
    im = _in_mode(_photo(), mode)
    assert im.mode == mode
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ContentChangeWarning)
        back = _decode(_save(im, quality=80, **opts))
    assert back.format == "JPEG" and back.size == im.size
    assert back.mode == ("L" if mode in GREY_MODES else "RGB")


def test_notices_are_warnings_and_nothing_is_printed(opts, capfd):
    rgba = np.dstack([_photo(), np.full((64, 96), 255, np.uint8)])
    rgba[:20, :20, 3] = 0
    with pytest.warns(ContentChangeWarning, match="transparen"):
        data = _save(Image.fromarray(rgba), background="black", **opts)
    assert _decode(data).getpixel((5, 5)) == pytest.approx((0, 0, 0), abs=12)  # flattened onto black
    assert capfd.readouterr() == ("", "")


def test_frame_picks_a_frame_and_leaves_the_image_where_it_was(opts, tmp_path):
    frames = [Image.fromarray(_photo(seed=s)) for s in (1, 2)]
    frames[0].save(tmp_path / "two.gif", save_all=True, append_images=frames[1:])
    with Image.open(tmp_path / "two.gif") as gif:
        with pytest.warns(ContentChangeWarning, match="2 frames"):
            _save(gif, frame=1, **opts)
        assert gif.tell() == 0


def test_pillow_jpeg_is_unchanged_by_registration(monkeypatch, tmp_path):
    for table in (Image.SAVE, Image.SAVE_ALL):
        monkeypatch.delitem(table, "SSPCODEC", raising=False)
    im = Image.fromarray(_photo())

    def pillow_jpegs(tag: str) -> tuple[bytes, bytes]:
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=80)
        im.save(tmp_path / f"{tag}.jpg")  # the extension picks the format
        return buf.getvalue(), (tmp_path / f"{tag}.jpg").read_bytes()

    before = pillow_jpegs("before")
    extensions, mime, jpeg_save = dict(Image.registered_extensions()), dict(Image.MIME), Image.SAVE["JPEG"]
    register_pillow()
    register_pillow()  # idempotent
    assert Image.SAVE["SSPCODEC"] is not jpeg_save
    assert pillow_jpegs("after") == before
    assert Image.registered_extensions() == extensions and dict(Image.MIME) == mime
    assert Image.SAVE["JPEG"] is jpeg_save


def test_unknown_option_is_a_value_error_naming_it(opts, tmp_path):
    im = Image.fromarray(_photo())
    with pytest.raises(ValueError, match=r"unknown option 'qualty'.*valid options: .*max_bytes"):
        im.save(tmp_path / "typo.jpg", format="SSPCODEC", qualty=80, **opts)
    assert not (tmp_path / "typo.jpg").exists()  # Pillow removes the file it created
    with pytest.raises(ValueError, match="'optimize', 'progressive'"):  # Pillow JPEG options are not ours
        _save(im, optimize=True, progressive=True)
    with pytest.raises(ValueError, match="qualty"):
        iio.imwrite("<bytes>", _photo(), plugin="sspcodec", extension=".jpg", qualty=80, **opts)
    with pytest.raises(ValueError, match="one image"):  # a JPEG cannot hold frames
        im.save(io.BytesIO(), format="SSPCODEC", save_all=True, append_images=[im], **opts)


def test_one_encoder_is_kept_per_model_and_settings(opts, monkeypatch):
    monkeypatch.setattr(api, "_ENCODERS", {})
    created = []
    init = Encoder.__init__

    def counting_init(self, *args, **kwargs):
        created.append(kwargs.get("strength"))
        init(self, *args, **kwargs)

    monkeypatch.setattr(Encoder, "__init__", counting_init)
    im = Image.fromarray(_photo())
    _save(im, **opts)
    iio.imwrite("<bytes>", _photo(seed=3), plugin="sspcodec", extension=".jpg", max_bytes=2500, **opts)
    assert created == [DEFAULT_STRENGTH]  # the Pillow save and the imageio write share one loaded Encoder
    _save(im, strength=0.5, **opts)
    assert created == [DEFAULT_STRENGTH, 0.5]


def test_imageio_writes_a_file_and_bytes(opts, tmp_path):
    rgb = _photo()
    assert iio.imwrite(tmp_path / "out.jpg", rgb, plugin="sspcodec", max_bytes="3KB", **opts) is None
    data = iio.imwrite("<bytes>", rgb, plugin="sspcodec", extension=".jpg", max_bytes="3KB", **opts)
    assert isinstance(data, bytes) and data == (tmp_path / "out.jpg").read_bytes() and len(data) <= 3000
    back = _decode(data)
    assert back.format == "JPEG" and back.size == (96, 64)
    # reading is imageio's pillow plugin's, so reading through "sspcodec" is reading a JPEG
    np.testing.assert_array_equal(iio.imread(data, plugin="sspcodec"), iio.imread(data, plugin="pillow"))
    assert iio.improps(tmp_path / "out.jpg", plugin="sspcodec").shape == (64, 96, 3)


def test_imageio_takes_one_image_only(opts, tmp_path):
    rgb = _photo()
    with pytest.raises(ValueError, match="one image; got a batch of 2"):
        iio.imwrite("<bytes>", np.stack([rgb, rgb]), plugin="sspcodec", extension=".jpg", **opts)
    with pytest.raises(ValueError, match="one image; got a list of 2"):
        iio.imwrite("<bytes>", [rgb, rgb], plugin="sspcodec", extension=".jpg", **opts)
    with pytest.raises(ValueError, match="batch of 3"):  # a stack of 3 grey images
        iio.imwrite("<bytes>", rgb.transpose(2, 0, 1), plugin="sspcodec", extension=".jpg", **opts)
    single = iio.imwrite("<bytes>", rgb[None, :, :, 0], plugin="sspcodec", extension=".jpg", **opts)  # batch of 1
    assert _decode(single).size == (96, 64)
    assert iio.imwrite("<bytes>", [rgb[:, :, 0]], plugin="sspcodec", extension=".jpg", **opts) == single
    with pytest.raises(OSError, match="can not handle") as refused:  # no JPEG bytes in a .png
        iio.imwrite(tmp_path / "out.png", rgb, plugin="sspcodec", **opts)
    assert "JPEG only" in str(refused.value.__cause__) and not (tmp_path / "out.png").exists()


def test_imageio_plugin_is_registered_only_by_name():
    register_imageio()  # again: idempotent
    config = known_plugins["sspcodec"]
    assert not config.is_legacy and config.plugin_class is SspcodecPlugin
    assert all("sspcodec" not in ext.priority for exts in known_extensions.values() for ext in exts)
    rgb = _photo()  # imageio's default for .jpg is still Pillow's JPEG
    assert iio.imwrite("<bytes>", rgb, extension=".jpg") == iio.imwrite("<bytes>", rgb, plugin="pillow",
                                                                       extension=".jpg")


def test_plugins_module_does_not_need_imageio(monkeypatch):
    top = ast.parse((ROOT / "sspcodec" / "plugins.py").read_text()).body
    imported = {a.name for n in top if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in top if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(name.startswith("imageio") for name in imported)  # imported only inside functions
    monkeypatch.setitem(sys.modules, "imageio.config", None)
    with pytest.raises(ImportError):  # what sspcodec/__init__.py suppresses
        register_imageio()


# Runs each example as a script (runpy, as `python examples/X.py OUT --model M` would), both in one
# fresh interpreter so torch is imported once.
_RUN_EXAMPLES = """
import json, runpy, sys
for argv in json.loads(sys.argv[1]):
    sys.argv = argv
    runpy.run_path(argv[0], run_name="__main__")
"""


def test_examples_run(model_path, tmp_path):
    names = ("pillow_plugin.py", "imageio_plugin.py")
    argv = [[str(ROOT / "examples" / n), str(tmp_path / f"{n}.jpg"), "--model", str(model_path)] for n in names]
    res = subprocess.run([sys.executable, "-c", _RUN_EXAMPLES, json.dumps(argv)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("sspcodec: ") == 2 and "bytes" in res.stdout
    for name in names:
        back = Image.open(tmp_path / f"{name}.jpg")
        assert back.format == "JPEG" and back.size == (512, 512)
