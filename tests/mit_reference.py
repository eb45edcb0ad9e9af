"""Independent NumPy transcription of the MIT saliency benchmark MATLAB metrics.

Source: cvzoya/saliency, code_forMetrics/ (CC.m, similarity.m, KLdiv.m, NSS.m,
AUC_Judd.m), Bylinskii et al. Written step by step in the MATLAB style on purpose, so
it shares no code or structure with ``sspnet.metrics`` and can test it. Differences
from the .m files, all deliberate:

- no ``imresize``: both maps must have the same size (tests resize separately);
- MATLAB returns NaN for degenerate maps; so does this (``float("nan")``), and the tests
  check the production conventions separately;
- AUC_Judd's ``rand(size)`` is passed in as ``rand_matrix`` so that a test can feed the
  same noise to both implementations.
"""
from __future__ import annotations

import math

import numpy as np

MATLAB_EPS = 2.220446049250313e-16


def _same_size(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError("reference needs maps of the same size (imresize not transcribed)")


def _matlab_std(v: np.ndarray) -> float:
    """MATLAB std(v(:)): normalised by N-1."""
    n = v.size
    mu = 0.0
    for x in v:
        mu += x
    mu /= n
    ss = 0.0
    for x in v:
        ss += (x - mu) ** 2
    return math.sqrt(ss / (n - 1))


def _corr2(a: np.ndarray, b: np.ndarray) -> float:
    """MATLAB corr2: sum(sum(am.*bm)) / sqrt(sum(sum(am.*am)) * sum(sum(bm.*bm)))."""
    am = a - np.mean(a)
    bm = b - np.mean(b)
    num = np.sum(np.sum(am * bm))
    den = math.sqrt(np.sum(np.sum(am * am)) * np.sum(np.sum(bm * bm)))
    return float(num / den) if den != 0 else float("nan")


def CC(saliencyMap1: np.ndarray, saliencyMap2: np.ndarray) -> float:
    map1 = np.array(saliencyMap1, dtype=np.float64)
    map2 = np.array(saliencyMap2, dtype=np.float64)
    _same_size(map1, map2)
    s1 = _matlab_std(map1.ravel(order="F"))
    s2 = _matlab_std(map2.ravel(order="F"))
    if s1 == 0 or s2 == 0:
        return float("nan")
    map1 = (map1 - np.mean(map1)) / s1
    map2 = (map2 - np.mean(map2)) / s2
    return _corr2(map2, map1)


def similarity(saliencyMap1: np.ndarray, saliencyMap2: np.ndarray) -> float:
    map1 = np.array(saliencyMap1, dtype=np.float64)
    map2 = np.array(saliencyMap2, dtype=np.float64)
    _same_size(map1, map2)
    if np.any(map1):  # zero map will remain a zero map
        rng1 = map1.max() - map1.min()
        if rng1 == 0:
            return float("nan")
        map1 = (map1 - map1.min()) / rng1
        map1 = map1 / np.sum(map1)
    if np.any(map2):
        rng2 = map2.max() - map2.min()
        if rng2 == 0:
            return float("nan")
        map2 = (map2 - map2.min()) / rng2
        map2 = map2 / np.sum(map2)
    diff = np.minimum(map1, map2)
    return float(np.sum(diff))


def KLdiv(saliencyMap: np.ndarray, fixationMap: np.ndarray) -> float:
    map1 = np.array(saliencyMap, dtype=np.float64)
    map2 = np.array(fixationMap, dtype=np.float64)
    _same_size(map1, map2)
    if np.any(map1):
        map1 = map1 / np.sum(map1)
    if np.any(map2):
        map2 = map2 / np.sum(map2)
    score = 0.0
    rows, cols = map2.shape
    for j in range(cols):  # sum(sum(...)), column by column
        col = 0.0
        for i in range(rows):
            col += map2[i, j] * math.log(MATLAB_EPS + map2[i, j] / (map1[i, j] + MATLAB_EPS))
        score += col
    return score


def NSS(saliencyMap: np.ndarray, fixationMap: np.ndarray) -> float:
    m = np.array(saliencyMap, dtype=np.float64)
    _same_size(m, np.asarray(fixationMap))
    sd = _matlab_std(m.ravel(order="F"))
    if sd == 0:
        return float("nan")
    m = (m - np.mean(m)) / sd
    vals = m[np.asarray(fixationMap).astype(bool)]
    if vals.size == 0:
        return float("nan")
    return float(np.mean(vals))


def _trapz(x: np.ndarray, y: np.ndarray) -> float:
    """MATLAB trapz(x, y) for column vectors."""
    total = 0.0
    for k in range(1, len(x)):
        total += (x[k] - x[k - 1]) * (y[k] + y[k - 1]) / 2.0
    return total


def AUC_Judd(
    saliencyMap: np.ndarray,
    fixationMap: np.ndarray,
    jitter: bool = True,
    rand_matrix: np.ndarray | None = None,
) -> float:
    saliencyMap = np.array(saliencyMap, dtype=np.float64)
    fixationMap = np.asarray(fixationMap)
    _same_size(saliencyMap, fixationMap)
    if not np.any(fixationMap):  # no fixationMap
        return float("nan")
    if jitter:
        if rand_matrix is None:
            rand_matrix = np.random.rand(*saliencyMap.shape)
        saliencyMap = saliencyMap + rand_matrix / 10000000
    rng = saliencyMap.max() - saliencyMap.min()
    if rng == 0:  # NaN saliencyMap
        return float("nan")
    saliencyMap = (saliencyMap - saliencyMap.min()) / rng

    S = saliencyMap.ravel(order="F")
    F = fixationMap.ravel(order="F")
    Sth = S[F > 0]
    Nfixations = len(Sth)
    Npixels = len(S)

    allthreshes = np.sort(Sth)[::-1]
    tp = np.zeros(Nfixations + 2)
    fp = np.zeros(Nfixations + 2)
    tp[0] = 0
    tp[-1] = 1
    fp[0] = 0
    fp[-1] = 1
    for i in range(1, Nfixations + 1):
        thresh = allthreshes[i - 1]
        aboveth = int(np.sum(thresh <= S))
        tp[i] = i / Nfixations
        fp[i] = (aboveth - i) / (Npixels - Nfixations)
    return _trapz(fp, tp)
