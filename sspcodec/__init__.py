"""sspcodec: saliency-shift-driven JPEG encoding built on SSPNet.

The encoder is a pipeline (:mod:`.api`): read (:mod:`.source`) -> score (:mod:`.scoring`,
:mod:`.allocation`) -> budget (:mod:`.budget`) -> method (:mod:`.methods`: rd, search) -> guard ->
result (:mod:`.result`). Below it: :mod:`.quant` (quantisation tables, requantisation, RD pruning)
and :mod:`.backends` (all libjpeg I/O: pixels and DCT coefficients).
"""
import contextlib

from .allocation import CentreBiasAllocation, GivenMapAllocation, PlainAllocation, SaliencyAllocation
from .api import ContentChangeWarning, Encoder, compress
from .methods import CandidateFamily, CandidateSearch, Method, RdPruning
from .options import Budget, CompressError
from .plugins import register_imageio, register_pillow
from .result import CompressResult, Figures
from .source import Source, read_source

__all__ = [
    "Budget",
    "CandidateFamily",
    "CandidateSearch",
    "CentreBiasAllocation",
    "CompressError",
    "CompressResult",
    "ContentChangeWarning",
    "Encoder",
    "Figures",
    "GivenMapAllocation",
    "Method",
    "PlainAllocation",
    "RdPruning",
    "SaliencyAllocation",
    "Source",
    "compress",
    "read_source",
    "register_imageio",
    "register_pillow",
]
__version__ = "0.1.0"

with contextlib.suppress(ImportError):  # imageio plugin "sspcodec", used only when named; no imageio: no plugin
    register_imageio()
