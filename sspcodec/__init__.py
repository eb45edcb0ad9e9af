"""sspcodec: saliency-shift-driven JPEG encoding built on SSPNet."""
from .api import CompressError, CompressResult, Encoder, Figures, compress

__all__ = ["CompressError", "CompressResult", "Encoder", "Figures", "compress"]
__version__ = "0.1.0"
