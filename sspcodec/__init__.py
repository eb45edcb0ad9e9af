"""sspcodec: saliency-shift-driven JPEG encoding built on SSPNet.

Layout: :mod:`.backends` (all libjpeg I/O: pixels and DCT coefficients), :mod:`.quant`
(quantisation tables, per-block requantisation, quality maps), :mod:`.search` (allocation
strategies and the candidate search), :mod:`.api` (wires the model, allocation, search and I/O).
"""
from .api import Budget, CompressError, CompressResult, Encoder, Figures, compress
from .search import (
    CandidateFamily,
    CandidateSearch,
    CentreBiasAllocation,
    GivenMapAllocation,
    PlainAllocation,
    SaliencyAllocation,
)

__all__ = [
    "Budget",
    "CandidateFamily",
    "CandidateSearch",
    "CentreBiasAllocation",
    "CompressError",
    "CompressResult",
    "Encoder",
    "Figures",
    "GivenMapAllocation",
    "PlainAllocation",
    "SaliencyAllocation",
    "compress",
]
__version__ = "0.1.0"
