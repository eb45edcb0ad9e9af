"""SSPNet: predict where human attention shifts when an image is distorted (IEEE TMM 2024)."""
from .net.configs import CONFIGS, ModelConfig
from .net.model import PristineCache, ShiftPrediction, SSPNet, build_model, count_parameters
from .zoo import load_model, save_checkpoint

__all__ = [
    "CONFIGS",
    "ModelConfig",
    "PristineCache",
    "SSPNet",
    "ShiftPrediction",
    "build_model",
    "count_parameters",
    "load_model",
    "save_checkpoint",
]
__version__ = "0.1.0"
