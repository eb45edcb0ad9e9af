"""Evaluation: per-image scores of models and baselines, tables, and significance (paper V).

One module per job:

- `scoring`: which metrics a map gets, and the valid box both maps are cut to;
- `predictors`: model / shift / intuitive-approach / baseline adapters, all batch -> maps;
- `loops`: `evaluate_saliency`, `evaluate_shift` and the one-call `run_saliency_eval`;
- `reports`: `summarize`, Markdown tables, CSV and significance tests.

Where scores are computed (DECISION)
------------------------------------
Everything is compared on the model's letterboxed canvas (384x288 by default), with BOTH the
prediction and the ground truth cropped to the item's `valid` box (the non-padded image area).
Why the canvas: it is what the datasets hand out (maps, fixations and mask already aligned),
so no second path back to the original files is needed and model and baselines see identical
targets. Why the crop: the padding is zero in the ground truth and near-zero in any decent
prediction, so leaving it in would add trivially agreeing pixels that inflate CC/SIM and
give AUC free negatives; its size also depends on the aspect ratio, which would make scores
incomparable across images. The cost: scores are at canvas resolution, not at each image's
original size as in the MIT benchmark (the ground truth is the letterbox-resized map, and
fixations are rasterised to canvas pixels, where two close fixations can share a pixel), so
absolute numbers differ slightly from an original-resolution evaluation; rankings do not
depend on it. Items without a `valid` mask are scored on the whole canvas.

Rows are plain dicts (one per image and model) so they go straight to CSV, to `summarize`
(tables per model, or per model x distortion x level), and to `significance`.
"""
from __future__ import annotations

from .loops import evaluate_saliency, evaluate_shift, run_saliency_eval
from .predictors import (
    Predictor,
    as_predictor,
    baseline_predictor,
    intuitive_predictor,
    model_predictor,
    shift_predictor,
)
from .reports import LABELS, markdown_table, significance, significance_table, summarize, write_csv
from .scoring import SALIENCY_METRICS, SHIFT_METRICS, crop_to_valid, saliency_scores, shift_scores, valid_box

__all__ = [
    "LABELS",
    "SALIENCY_METRICS",
    "SHIFT_METRICS",
    "Predictor",
    "as_predictor",
    "baseline_predictor",
    "crop_to_valid",
    "evaluate_saliency",
    "evaluate_shift",
    "intuitive_predictor",
    "markdown_table",
    "model_predictor",
    "run_saliency_eval",
    "saliency_scores",
    "shift_predictor",
    "shift_scores",
    "significance",
    "significance_table",
    "summarize",
    "valid_box",
    "write_csv",
]
