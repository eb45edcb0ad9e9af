"""Splits by scene: no leakage, full coverage, determinism."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sspnet.data.splits import holdout_split, kfold_by_scene, scene_groups


@st.composite
def scene_lists(draw):
    """Per-image scene ids with repeats (several distortions per scene), in random order."""
    k = draw(st.integers(3, 8))
    n_scenes = draw(st.integers(k, 25))
    scenes = [f"scene{i}" for i in range(n_scenes)]
    repeats = draw(st.lists(st.integers(1, 5), min_size=n_scenes, max_size=n_scenes))
    ids = [s for s, r in zip(scenes, repeats) for _ in range(r)]
    ids = draw(st.permutations(ids))
    return list(ids), k, draw(st.integers(0, 2**31))


@settings(max_examples=150, deadline=None)
@given(scene_lists())
def test_kfold_properties(case) -> None:
    ids, k, seed = case
    folds = kfold_by_scene(ids, k=k, seed=seed)
    assert len(folds) == k
    groups = scene_groups(ids, k, seed)
    assert sorted(s for g in groups for s in g) == sorted(set(ids))  # each scene in exactly one group
    sizes = [len(g) for g in groups]
    assert max(sizes) - min(sizes) <= 1
    tests = []
    for i, fold in enumerate(folds):
        parts = (fold.train, fold.val, fold.test)
        assert sorted(fold.train + fold.val + fold.test) == list(range(len(ids)))  # each index once
        assert all(p == sorted(p) for p in parts) and fold.test and fold.val and fold.train
        scene_sets = [{ids[j] for j in p} for p in parts]
        assert not (scene_sets[0] & scene_sets[1] or scene_sets[0] & scene_sets[2] or scene_sets[1] & scene_sets[2])
        assert fold.val == folds[(i + 1) % k].test  # fold i validates on group i + 1
        tests.append(fold.test)
    assert sorted(j for t in tests for j in t) == list(range(len(ids)))  # every index tested once


@settings(max_examples=50, deadline=None)
@given(scene_lists())
def test_kfold_deterministic_and_order_independent(case) -> None:
    ids, k, seed = case
    assert kfold_by_scene(ids, k, seed) == kfold_by_scene(list(ids), k, seed)
    rev = ids[::-1]
    groups = scene_groups(ids, k, seed)
    assert scene_groups(rev, k, seed) == groups
    fold_rev = kfold_by_scene(rev, k, seed)[0]
    assert {rev[j] for j in fold_rev.test} == set(groups[0])


def test_seed_changes_assignment() -> None:
    ids = [f"s{i}" for i in range(30)]
    assert scene_groups(ids, 6, 0) != scene_groups(ids, 6, 1)


def test_categories_spread_like_the_paper() -> None:
    """CUID-VSS: 10 categories x 6 scenes -> each of the 6 folds holds one scene per category."""
    cats = [f"C{c}" for c in range(10)]
    ids, categories = [], []
    for c in cats:
        for s in range(6):
            for _ in range(9):  # nine distorted images per scene
                ids.append(f"{c}-{s}")
                categories.append(c)
    folds = kfold_by_scene(ids, k=6, seed=3, categories=categories)
    for fold in folds:
        assert len(fold.test) == 90 and len(fold.val) == 90 and len(fold.train) == 360
        assert sorted({categories[j] for j in fold.test}) == cats
        assert len({ids[j] for j in fold.test}) == 10
    with pytest.raises(ValueError, match="two categories"):
        kfold_by_scene(["a", "a", "b", "c"], k=3, categories=["x", "y", "x", "x"])


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="distinct scenes"):
        kfold_by_scene(["a", "a", "b"], k=3)
    with pytest.raises(ValueError, match="k must be >= 3"):
        kfold_by_scene(["a", "b", "c"], k=2)
    with pytest.raises(ValueError):
        holdout_split(["a"], fraction=1.5)


def test_holdout_split_stable() -> None:
    names = [f"{i:04d}.jpg" for i in range(2000)]
    kept, held = holdout_split(names, 0.2, seed=0)
    assert sorted(kept + held) == list(range(2000))
    assert 0.15 < len(held) / 2000 < 0.25
    held_names = {names[i] for i in held}
    # order and membership of the list do not move an image across the split
    shuffled = names[::-1][:1500]
    _, held2 = holdout_split(shuffled, 0.2, seed=0)
    assert {shuffled[i] for i in held2} == held_names & set(shuffled)
    assert {names[i] for i in holdout_split(names, 0.2, seed=1)[1]} != held_names
    assert holdout_split(names, 0.0)[1] == [] and holdout_split(names, 1.0)[0] == []
