"""Spatially varying JPEG quality inside ONE standard baseline JPEG.

- :mod:`.tables`: IJG tables and libjpeg's quality -> scale rule;
- :mod:`.requantize`: per-block requantisation of coefficient arrays ("zero" mode by default);
- :mod:`.qmaps`: quality maps onto the luma/chroma block grids, pixel weights, the pre-filter;
- :mod:`.coefficients`: one JPEG's coefficients requantised, size-estimated and written
  (:class:`CoefficientImage`), and :func:`encode_with_quality_map` (pixels + map -> JPEG);
- :mod:`.rdprune`: saliency-weighted RD pruning of a finer base JPEG to a byte budget (the
  encoder's default method; imported from there, not re-exported here).

Reading and writing coefficients is the back-ends' job (:mod:`sspcodec.backends.dct`).
"""

from .coefficients import CoefficientImage, encode_with_quality_map, requantize_jpeg
from .qmaps import luma_block_shape, luma_to_chroma_grid, map_to_luma_grid, pixel_weights, prefilter_image
from .requantize import AC_LIMIT, DC_LIMIT, DEFAULT_DEADZONE, DEFAULT_MODE, RequantMode, requantize
from .tables import quality_scale, quality_table

__all__ = [
    "AC_LIMIT",
    "DC_LIMIT",
    "DEFAULT_DEADZONE",
    "DEFAULT_MODE",
    "CoefficientImage",
    "RequantMode",
    "encode_with_quality_map",
    "luma_block_shape",
    "luma_to_chroma_grid",
    "map_to_luma_grid",
    "pixel_weights",
    "prefilter_image",
    "quality_scale",
    "quality_table",
    "requantize",
    "requantize_jpeg",
]
