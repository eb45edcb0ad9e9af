"""Data: eye-tracking readers, cached ground-truth maps, the shift layout, datasets, splits.

The torch Datasets are imported lazily so that readers and splits work (and load fast)
without importing torch.
"""
from __future__ import annotations

from typing import Any

from sspnet.data.cache import default_cache_dir, get_saliency_map, precompute_saliency_maps, saliency_cache_path
from sspnet.data.fixations import (
    DatasetError,
    EyeTrackingImage,
    Fixations,
    read_fixation_dataset,
    read_fixations_mat,
)
from sspnet.data.shift_layout import (
    MANIFEST_COLUMNS,
    ShiftRecord,
    ShiftScene,
    build_shift_layout,
    read_shift_dataset,
    synthesize_distorted_saliency,
)
from sspnet.data.splits import Fold, holdout_split, kfold_by_scene, scene_groups

_LAZY = {"GreyscaleView", "SaliencyDataset", "ShiftDataset"}

__all__ = [
    "MANIFEST_COLUMNS",
    "DatasetError",
    "EyeTrackingImage",
    "Fixations",
    "Fold",
    "GreyscaleView",
    "SaliencyDataset",
    "ShiftDataset",
    "ShiftRecord",
    "ShiftScene",
    "build_shift_layout",
    "default_cache_dir",
    "get_saliency_map",
    "holdout_split",
    "kfold_by_scene",
    "precompute_saliency_maps",
    "read_fixation_dataset",
    "read_fixations_mat",
    "read_shift_dataset",
    "saliency_cache_path",
    "scene_groups",
    "synthesize_distorted_saliency",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from sspnet.data import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module 'sspnet.data' has no attribute {name!r}")
