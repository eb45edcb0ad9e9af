"""Saliency-shift data (pristine + distorted images with saliency), CUID-VSS style.

SSPNet learns from scenes: one pristine image and several distorted versions of it, each
with human saliency. CUID-VSS itself is not public, so this package fixes a simple folder
layout that anyone holding such data can write by hand or with a script. One module per job:

- `reader`: the layout (manifest.csv + files, documented there) and its validating reader;
- `synthetic`: the rule that SYNTHESISES distorted-image maps from free-viewing data
  (NOT human data: it exercises the shift pipeline, it does not measure people);
- `builder`: `build_shift_layout`, behind `sspnet build-shift`.
"""
from __future__ import annotations

from .builder import build_shift_layout
from .reader import (
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    OPTIONAL_COLUMNS,
    PRISTINE,
    ShiftRecord,
    ShiftScene,
    load_fixation_file,
    load_map_file,
    read_shift_dataset,
)
from .synthetic import SYNTH_ALPHA, synthesize_distorted_saliency

__all__ = [
    "MANIFEST_COLUMNS",
    "MANIFEST_NAME",
    "OPTIONAL_COLUMNS",
    "PRISTINE",
    "SYNTH_ALPHA",
    "ShiftRecord",
    "ShiftScene",
    "build_shift_layout",
    "load_fixation_file",
    "load_map_file",
    "read_shift_dataset",
    "synthesize_distorted_saliency",
]
