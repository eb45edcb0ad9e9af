"""sspcodec where imaging code already is: a Pillow save format and an imageio v3 plugin.

Pillow: after :func:`register_pillow`, ``img.save(fp, format="SSPCODEC", max_bytes="150KB")``
writes sspcodec's JPEG. Only a save format is registered -- no file extension, no MIME type --
so ``img.save("x.jpg")`` still runs Pillow's own JPEG encoder and nothing changes for code that
does not ask for sspcodec by name.

imageio: importing :mod:`sspcodec` registers the plugin ``"sspcodec"`` (:func:`register_imageio`),
so ``iio.imwrite("out.jpg", arr, plugin="sspcodec", max_bytes="150KB")`` writes one, and
``iio.imwrite("<bytes>", arr, plugin="sspcodec", extension=".jpg")`` returns its bytes. It is not
made the default for any extension either.

Both take the same options (:data:`OPTIONS`): the encoder's (model, device, backend, method,
strength) and :meth:`~sspcodec.Encoder.compress`'s (max_bytes, bpp, ...). Both encode through
:func:`sspcodec.api.compress`, whose cache keeps one loaded :class:`~sspcodec.Encoder` per process
per (model, device, backend, method, strength), so saving many images loads the model once.
What reading changed (transparency flattened, one frame of several) is issued as
:class:`~sspcodec.ContentChangeWarning` by ``compress``, never printed.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import IO, Any

import numpy as np
from PIL import Image

from . import api

PILLOW_FORMAT = "SSPCODEC"
IMAGEIO_PLUGIN = "sspcodec"
ENCODER_OPTIONS = ("model", "device", "backend", "method", "strength")
COMPRESS_OPTIONS = ("max_bytes", "bpp", "max_shift", "quality", "strip", "keep", "max_pixels", "alpha",
                    "background", "frame", "name")
OPTIONS = ENCODER_OPTIONS + COMPRESS_OPTIONS
# What imageio may hand the writer: a file of another format is refused, not filled with a JPEG.
JPEG_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".jif")


def encode(image: Any, options: Mapping[str, Any], where: str) -> bytes:
    """The JPEG bytes of `image` under `options`, refusing any option sspcodec does not have
    (Pillow's own writers ignore unknown options silently; a typo here must not quietly give
    the default budget)."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"{where}: unknown option{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}; "
                         f"valid options: {', '.join(OPTIONS)}")
    return api.compress(image, **options).data  # api.compress keeps the Encoder cached


# -- Pillow --------------------------------------------------------------------------------------------

def _pillow_save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    """Pillow's save handler: the options are `im.encoderinfo` (the keywords of ``save``)."""
    options = dict(im.encoderinfo)
    if options.pop("append_images", None):  # Pillow's own key; only save_all sends frames here
        raise ValueError(f"{PILLOW_FORMAT}: a JPEG holds one image; append_images cannot be saved")
    position = im.tell()
    try:
        fp.write(encode(im, options, f"Image.save(format={PILLOW_FORMAT!r})"))
    finally:
        if "frame" in options and im.tell() != position:  # `frame` seeks the image: put it back
            im.seek(position)


def _pillow_save_all(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    """``save_all=True``: only an image of one frame with nothing appended can be a JPEG."""
    frames = int(getattr(im, "n_frames", 1) or 1) + len(im.encoderinfo.get("append_images") or ())
    if frames > 1:
        raise ValueError(f"{PILLOW_FORMAT}: a JPEG holds one image, not {frames}; save one frame "
                         "(without save_all; frame=N picks which)")
    _pillow_save(im, fp, filename)


def register_pillow() -> None:
    """Register the save format ``"SSPCODEC"`` with Pillow (calling it again changes nothing).

    No extension or MIME type is registered, so Pillow's JPEG stays what ``.jpg`` means."""
    Image.register_save(PILLOW_FORMAT, _pillow_save)
    Image.register_save_all(PILLOW_FORMAT, _pillow_save_all)


# -- imageio -------------------------------------------------------------------------------------------

def _one_image(ndimage: Any, is_batch: bool | None) -> Any:
    """The single image a JPEG can hold, from what imageio's ``write`` was given: a list or a
    batch of one is unwrapped; more than one is an error, not a silent first frame. Without
    `is_batch` the guess is imageio's pillow plugin's: 2-D, or 3-D with 1-4 channels last, is one
    image."""
    if isinstance(ndimage, Image.Image):
        return ndimage  # a PIL image of any mode goes to compress as it is
    if isinstance(ndimage, (list, tuple)):
        if len(ndimage) != 1:
            raise ValueError(f"{IMAGEIO_PLUGIN}: a JPEG holds one image; got a list of {len(ndimage)}")
        return _one_image(ndimage[0], False)
    arr = np.asarray(ndimage)
    if is_batch is None:
        is_batch = arr.ndim > 3 or (arr.ndim == 3 and arr.shape[-1] not in (1, 2, 3, 4))
    if is_batch and arr.ndim > 0 and len(arr) == 1:
        return arr[0]
    if is_batch:
        raise ValueError(f"{IMAGEIO_PLUGIN}: a JPEG holds one image; got a batch of {len(arr) if arr.ndim else 0} "
                         f"(array of shape {arr.shape}); write them one per file")
    return arr  # compress says what it cannot read (too few dimensions, odd channels)


class SspcodecPlugin:
    """imageio v3 plugin (the interface of ``imageio.core.v3_plugin_api.PluginV3``).

    Writing: one image (an array of any shape and dtype ``compress`` takes, or a PIL image) per
    file, as sspcodec's JPEG; ``write`` takes :data:`OPTIONS` as keywords plus imageio's
    ``is_batch``. The target must be a JPEG name (.jpg, .jpeg, ...), ``"<bytes>"`` or a file
    object; any other extension is refused at open, so imageio never fills a .png with a JPEG.

    Reading: sspcodec is an encoder, and what it writes is a standard JPEG, so reading is
    delegated to imageio's own pillow plugin (``read``, ``iter``, ``properties`` and ``metadata``
    are that plugin's, with its keywords): ``iio.imread(path, plugin="sspcodec")`` equals
    ``iio.imread(path, plugin="pillow")``.

    It does not subclass ``PluginV3`` (imageio documents that as optional) so that this module
    imports, and the Pillow format works, without imageio installed.
    """

    def __init__(self, request: Any) -> None:
        from imageio.core.request import InitializationError, IOMode

        self._request = request
        self._reader: Any = None
        self._written = False
        if request.mode.io_mode == IOMode.read:
            from imageio.plugins.pillow import PillowPlugin

            self._reader = PillowPlugin(request)  # raises InitializationError if Pillow cannot read it
            return
        extension = request.extension or request.format_hint
        if extension and extension.lower() not in JPEG_EXTENSIONS:
            raise InitializationError(f"{IMAGEIO_PLUGIN} writes JPEG only, not {extension} "
                                      f"(use one of {', '.join(JPEG_EXTENSIONS)})")

    @property
    def request(self) -> Any:
        """The imageio request this plugin owns."""
        return self._request

    def write(self, ndimage: Any, *, is_batch: bool | None = None, **options: Any) -> bytes | None:
        """Encode one image with sspcodec; returns the JPEG bytes for ``"<bytes>"``, else None."""
        from imageio.core.request import URI_BYTES

        if self._reader is not None:
            raise ValueError(f"{IMAGEIO_PLUGIN}: this resource was opened for reading")
        if self._written:  # a second JPEG appended to the first would be a corrupt file
            raise ValueError(f"{IMAGEIO_PLUGIN}: a JPEG holds one image and this one is already written")
        data = encode(_one_image(ndimage, is_batch), options, f"imwrite(plugin={IMAGEIO_PLUGIN!r})")
        self._request.get_file().write(data)
        self._written = True
        return data if self._request._uri_type == URI_BYTES else None  # as imageio's own plugins decide

    def _pillow(self) -> Any:
        """The pillow plugin that reads for this one."""
        if self._reader is None:
            raise ValueError(f"{IMAGEIO_PLUGIN}: this resource was opened for writing")
        return self._reader

    def read(self, **kwargs: Any) -> np.ndarray:
        """imageio's pillow plugin's ``read``."""
        return self._pillow().read(**kwargs)

    def iter(self, **kwargs: Any) -> Iterator[np.ndarray]:
        """imageio's pillow plugin's ``iter``."""
        yield from self._pillow().iter(**kwargs)

    def properties(self, index: Any = None, **kwargs: Any) -> Any:
        """imageio's pillow plugin's ``properties``."""
        return self._pillow().properties(index=index, **kwargs)

    def metadata(self, index: Any = None, exclude_applied: bool = True, **kwargs: Any) -> dict[str, Any]:
        """imageio's pillow plugin's ``metadata``."""
        return self._pillow().metadata(index=index, exclude_applied=exclude_applied, **kwargs)

    def close(self) -> None:
        """Finish the request (the reader's ``close`` does it when reading)."""
        reader, self._reader = getattr(self, "_reader", None), None
        if reader is not None:
            reader.close()
        elif getattr(self, "_request", None) is not None:
            self._request.finish()

    def __enter__(self) -> SspcodecPlugin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def register_imageio() -> None:
    """Add ``"sspcodec"`` to ``imageio.config.known_plugins`` (idempotent). It is imported lazily
    by imageio and listed under no extension, so it is used only when named. Raises ImportError
    without imageio."""
    from imageio.config import PluginConfig, known_plugins

    known_plugins[IMAGEIO_PLUGIN] = PluginConfig(
        name=IMAGEIO_PLUGIN, class_name=SspcodecPlugin.__name__, module_name=__name__, is_legacy=False
    )


__all__ = ["OPTIONS", "PILLOW_FORMAT", "SspcodecPlugin", "encode", "register_imageio", "register_pillow"]
