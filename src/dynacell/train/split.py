"""Grouped train / validation / test assignment of samples (never random per sample)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dynacell.errors import InvalidInputError
from dynacell.train.config import SplitConfig

__all__ = ["assign_split"]


def _cut(weights: np.ndarray, fractions: tuple[float, float, float]) -> np.ndarray:
    """Side (0 train, 1 val, 2 test) of ordered groups with sample counts ``weights``."""
    cum = np.cumsum(weights) / max(weights.sum(), 1)
    mid = cum - weights / max(weights.sum(), 1) / 2
    b1, b2 = fractions[0], fractions[0] + fractions[1]
    return np.where(mid < b1, 0, np.where(mid < b2, 1, 2))


def assign_split(meta: pd.DataFrame, spec: SplitConfig) -> np.ndarray:
    """Assign every sample to ``"train"``, ``"val"``, ``"test"`` or ``"gap"`` (dropped).

    Parameters
    ----------
    meta : pandas.DataFrame
        Sample table with columns ``dataset``, ``t``, ``tree_id`` (one row per sample).
    spec : SplitConfig
        The split rule: whole datasets to test / val first, then by lineage tree (groups
        ``(dataset, tree_id)`` shuffled with ``spec.seed`` and cut by cumulative sample count),
        or, with ``spec.test_groups`` / ``val_groups``, named groups to test / val and the rest
        to train; else by time (contiguous frame blocks per dataset in order train → val → test, with
        ``spec.gap_frames`` frames dropped at each boundary) or by sequence (whole datasets).

    Returns
    -------
    numpy.ndarray of str, shape (N,)
        One of ``train``, ``val``, ``test``, ``gap`` per row.

    Raises
    ------
    InvalidInputError
        If a needed column is missing or a dataset named in the spec is absent.
    """
    for col in ("dataset", "t", "tree_id"):
        if col not in meta.columns:
            raise InvalidInputError(f"sample table has no column {col!r}; columns: {list(meta.columns)}")
    names = np.array(["train", "val", "test"])
    out = np.full(len(meta), "", dtype=object)
    datasets = meta["dataset"].astype(str).to_numpy()
    present = set(datasets.tolist())
    for side, listed in (("test", spec.test_datasets), ("val", spec.val_datasets)):
        for d in listed:
            if d not in present:
                raise InvalidInputError(
                    f"split: dataset {d!r} named in {side}_datasets is not in the samples (found {sorted(present)})")
            out[datasets == d] = side
    if spec.test_groups or spec.val_groups:
        if spec.group_column not in meta.columns:
            raise InvalidInputError(f"split: group_column {spec.group_column!r} is not a column of the samples "
                                    f"({list(meta.columns)})")
        groups = meta[spec.group_column].astype(str).to_numpy()
        for side, listed in (("test", spec.test_groups), ("val", spec.val_groups)):
            missing = sorted(set(listed) - set(groups.tolist()))
            if missing:
                raise InvalidInputError(f"split: {side}_groups {missing} not found in column {spec.group_column!r} "
                                        f"(values: {sorted(set(groups.tolist()))[:20]})")
            out[(out == "") & np.isin(groups, listed)] = side
        out[out == ""] = "train"
        return out.astype(str)
    rest = out == ""
    rng = np.random.default_rng(spec.seed)
    if spec.by == "sequence":
        ds = np.array(sorted(set(datasets[rest].tolist())))
        ds = ds[rng.permutation(len(ds))]
        w = np.array([(datasets[rest] == d).sum() for d in ds])
        for d, side in zip(ds, _cut(w, spec.fractions)):
            out[rest & (datasets == d)] = names[side]
        return out.astype(str)
    for d in sorted(set(datasets[rest].tolist())):
        sel = rest & (datasets == d)
        rule = spec.by_dataset.get(d, spec.by)
        if rule == "tree":
            trees = meta.loc[sel, "tree_id"].to_numpy()
            uniq, counts = np.unique(trees, return_counts=True)
            order = rng.permutation(len(uniq))
            sides = _cut(counts[order], spec.fractions)
            lookup = dict(zip(uniq[order].tolist(), names[sides]))
            out[sel] = [lookup[v] for v in trees.tolist()]
        else:
            ts = meta.loc[sel, "t"].to_numpy()
            frames, counts = np.unique(ts, return_counts=True)
            sides = _cut(counts, spec.fractions)
            lookup = dict(zip(frames.tolist(), names[sides]))
            side_of = np.array([lookup[v] for v in ts.tolist()], dtype=object)
            for k in range(1, len(frames)):
                if sides[k] != sides[k - 1]:
                    for g in range(spec.gap_frames):
                        if k + g < len(frames):
                            side_of[ts == frames[k + g]] = "gap"
            out[sel] = side_of
    return out.astype(str)
