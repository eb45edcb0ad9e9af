"""How the cost benchmarks time things: one timer and one kind of input, so that figures from
different scripts (bench_model.py, bench_backbones.py) are measured the same way."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np


def median_ms(
    fn: Callable[[], object], repeats: int, warmup: int = 1, sync: Callable[[], None] = lambda: None
) -> float:
    """Median wall time of `fn` in ms over `repeats` calls, after `warmup` untimed calls
    (`sync`: waits for queued device work, e.g. ``torch.cuda.synchronize``)."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def images(n: int, seed: int = 0, size: tuple[int, int] = (288, 384)) -> tuple[np.ndarray, list[np.ndarray]]:
    """A pristine uint8 image and `n` noisy versions of it (HxWx3, 384x288 by default): the
    candidates a model scores (cost does not depend on the pixels)."""
    rng = np.random.default_rng(seed)
    pristine = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    noisy = [
        np.clip(pristine.astype(np.int16) + rng.integers(-40, 41, pristine.shape), 0, 255).astype(np.uint8)
        for _ in range(n)
    ]
    return pristine, noisy


__all__ = ["images", "median_ms"]
