"""libjpeg-turbo back-end (jpeglib's bundled build): the default, fast and
bit-exact with the decoders people actually use."""

from __future__ import annotations

from ._libjpeg import TURBO_VERSION, JpeglibBackend


class TurboBackend(JpeglibBackend):
    """Baseline/progressive JPEG through libjpeg-turbo 2.1 (via jpeglib), IJG standard tables."""

    name = "turbo"
    version = TURBO_VERSION
