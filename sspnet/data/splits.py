"""Train / validation / test splits that never leak a scene across sets.

A distorted image shares its content (and most of its saliency) with its pristine image and
the other distortions of the same scene, so splitting by image would let the model see the
test scenes while training. The paper (V-B) therefore uses 6-fold cross-validation by scene:
per run one fold tests, one validates, four train, and the six runs are averaged; each fold
holds one scene of every category (a column of its 10 x 6 gallery), which `categories`
reproduces.

Assignments are deterministic and independent of list order and library versions: scenes
are ordered by a SHA-1 of (seed, scene id), not by a random generator's stream.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Fold", "holdout_split", "kfold_by_scene", "scene_groups"]


@dataclass(frozen=True)
class Fold:
    """Indices into the list the split was made from (each sorted ascending)."""

    train: list[int]
    val: list[int]
    test: list[int]


def _hash_unit(seed: int, text: str) -> float:
    """Stable pseudo-random number in [0, 1) for (seed, text)."""
    digest = hashlib.sha1(f"{seed}\x00{text}".encode()).hexdigest()
    return int(digest[:15], 16) / float(16**15)


def scene_groups(
    scene_ids: Sequence[str], k: int = 6, seed: int = 0, categories: Sequence[str] | None = None
) -> list[list[str]]:
    """Partition the distinct scenes into `k` groups whose sizes differ by at most one.

    With `categories` (one per entry of `scene_ids`, constant within a scene), the scenes
    of each category are dealt round-robin across groups, so every group gets its share of
    every category, as in the paper's folds.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    unique = sorted({str(s) for s in scene_ids})
    if len(unique) < k:
        raise ValueError(f"need at least k={k} distinct scenes, got {len(unique)}")
    if categories is None:
        per_category = {"": unique}
    else:
        if len(categories) != len(scene_ids):
            raise ValueError(f"categories has {len(categories)} entries, scene_ids has {len(scene_ids)}")
        cat_of: dict[str, str] = {}
        for s, c in zip(scene_ids, categories):
            if cat_of.setdefault(str(s), str(c)) != str(c):
                raise ValueError(f"scene {s!r} has two categories: {cat_of[str(s)]!r} and {c!r}")
        per_category = {}
        for s in unique:
            per_category.setdefault(cat_of[s], []).append(s)
    groups: list[list[str]] = [[] for _ in range(k)]
    slot = 0  # continues across categories so group sizes stay balanced
    for cat in sorted(per_category):
        for s in sorted(per_category[cat], key=lambda s: (_hash_unit(seed, s), s)):
            groups[slot % k].append(s)
            slot += 1
    return groups


def kfold_by_scene(
    scene_ids: Sequence[str], k: int = 6, seed: int = 0, categories: Sequence[str] | None = None
) -> list[Fold]:
    """k folds over the entries of `scene_ids` (one per image): fold i tests on scene group i,
    validates on group (i + 1) % k and trains on the remaining k - 2 groups."""
    if k < 3:
        raise ValueError(f"k must be >= 3 (a test, a validation and a training group), got {k}")
    groups = scene_groups(scene_ids, k, seed, categories)
    group_of = {s: g for g, members in enumerate(groups) for s in members}
    by_group: list[list[int]] = [[] for _ in range(k)]
    for index, s in enumerate(scene_ids):
        by_group[group_of[str(s)]].append(index)
    folds = []
    for i in range(k):
        val_g = (i + 1) % k
        train = sorted(j for g in range(k) if g not in (i, val_g) for j in by_group[g])
        folds.append(Fold(train=train, val=list(by_group[val_g]), test=list(by_group[i])))
    return folds


def holdout_split(names: Sequence[str], fraction: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
    """(kept, held-out) indices; an entry is held out iff hash(seed, name) < `fraction`.

    Hashing the name (not shuffling the list) keeps an image on the same side when the list
    grows, shrinks or is reordered; equal names always land together. The held-out share is
    `fraction` in expectation, not exactly.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    kept, held = [], []
    for i, name in enumerate(names):
        (held if _hash_unit(seed, str(name)) < fraction else kept).append(i)
    return kept, held
