"""sspcodec: saliency-shift-driven JPEG encoding built on SSPNet.

Layout: :mod:`.backends` (all libjpeg I/O: pixels and DCT coefficients), :mod:`.quant`
(quantisation tables, per-block requantisation, quality maps, RD pruning), :mod:`.search`
(allocation strategies, RD pruning as the default method, the candidate search), :mod:`.api`
(wires the model, allocation, method and I/O).
"""
from .allocation import CentreBiasAllocation, GivenMapAllocation, PlainAllocation, SaliencyAllocation
from .api import Budget, CompressError, CompressResult, ContentChangeWarning, Encoder, Figures, compress
from .search import CandidateFamily, CandidateSearch, RdPruning

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
    "PlainAllocation",
    "RdPruning",
    "SaliencyAllocation",
    "compress",
]
__version__ = "0.1.0"
