"""Grouped train / validation / test splits: never random per sample.

The seed split samples at random (the seed state classifier, dineshchhantyal/3d-cnn-classification), so frames of one track and sister
daughters fell on both sides and inflated the validation score. Here whole *groups*
go to one side:

``tree``
    lineage tree (``dataset`` + ``tree_id``): a division's mother and both daughters, and
    every frame of their tracks, are on one side;
``sequence``
    ``dataset`` (one movie / embryo per group);
``time``
    blocks of ``time_block`` consecutive frames per dataset (``dataset`` + ``t // time_block``).

Two entry points share the grouping rules:

- :func:`grouped_split` — quick splits: groups are assigned with
  :class:`sklearn.model_selection.GroupShuffleSplit` and the fractions count *groups*;
- :func:`assign_split` with a :class:`SplitConfig` — the training split of every model
  (``dynacell train``): whole datasets or named groups (e.g. sublineages) held out, then groups
  shuffled with the seed and cut by *cumulative sample count* so that each side gets about its
  fraction of samples, with ``gap_frames`` dropped between time blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dynacell.errors import InvalidInputError

__all__ = ["SplitConfig", "assign_split", "group_labels", "grouped_split"]

_BY = ("tree", "sequence", "time")


def group_labels(meta: pd.DataFrame, by: str = "tree", time_block: int | None = None) -> np.ndarray:
    """The group key of every sample (the unit that a split never cuts).

    Parameters
    ----------
    meta : pandas.DataFrame
        Sample metadata with ``dataset`` and, for ``by="tree"``, ``tree_id``; for ``by="time"``, ``t``.
    by : {"tree", "sequence", "time"}
        Grouping, see the module docstring.
    time_block : int, optional
        Frames per block for ``by="time"`` (required there).

    Returns
    -------
    numpy.ndarray
        ``(N,)`` str group keys.

    Raises
    ------
    InvalidInputError
        If ``by`` is unknown, a needed column is missing, ``tree_id`` is unknown (< 0, e.g.
        samples without a lineage) or ``time_block`` is missing or not positive.
    """
    if by not in _BY:
        raise InvalidInputError(f"split by {by!r} is unknown; choose one of {list(_BY)}")
    need = {"tree": ["dataset", "tree_id"], "sequence": ["dataset"], "time": ["dataset", "t"]}[by]
    missing = [c for c in need if c not in meta.columns]
    if missing:
        raise InvalidInputError(f"split by {by!r} needs metadata column(s) {missing}")
    ds = meta["dataset"].astype(str).to_numpy()
    if by == "sequence":
        return ds
    if by == "tree":
        tree = meta["tree_id"].to_numpy()
        if np.any(pd.isna(tree)) or np.any(tree.astype(float) < 0):
            n_bad = int(np.sum(pd.isna(tree) | (tree.astype(float) < 0)))
            raise InvalidInputError(
                f"split by 'tree': {n_bad} samples have no lineage tree (tree_id < 0, extracted without a "
                "lineage); split them by 'sequence' or 'time' instead"
            )
        return np.char.add(np.char.add(ds, "/tree"), tree.astype(np.int64).astype(str))
    if time_block is None or int(time_block) < 1:
        raise InvalidInputError(f"split by 'time' needs time_block >= 1 (frames per block), got {time_block!r}")
    block = meta["t"].to_numpy().astype(np.int64) // int(time_block)
    return np.char.add(np.char.add(ds, "/block"), block.astype(str))


def grouped_split(
    meta: pd.DataFrame,
    by: str = "tree",
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    time_block: int | None = None,
) -> dict[str, np.ndarray]:
    """Split samples into train / val / test so that no group crosses a split.

    Parameters
    ----------
    meta : pandas.DataFrame
        Sample metadata (``SampleSet.meta``), ``N`` rows.
    by : {"tree", "sequence", "time"}
        Grouping (see :func:`group_labels`).
    fractions : (float, float, float)
        Fractions of *groups* for train, val and test; non-negative, summing to 1. A zero
        fraction gives an empty part.
    seed : int
        Random seed of the group assignment (record it with the results).
    time_block : int, optional
        Frames per block for ``by="time"``.

    Returns
    -------
    dict of str to numpy.ndarray
        ``{"train", "val", "test"}`` → sorted int64 row positions; disjoint, covering all rows.

    Raises
    ------
    InvalidInputError
        If fractions are malformed, there are fewer groups than non-empty parts, or grouping fails
        (see :func:`group_labels`).

    Notes
    -----
    Two :class:`sklearn.model_selection.GroupShuffleSplit` passes: test groups first, then
    validation groups from the rest. Every non-empty part gets at least one group.

    Examples
    --------
    >>> import pandas as pd
    >>> meta = pd.DataFrame({"dataset": ["a"] * 6, "tree_id": [1, 1, 2, 2, 3, 4]})
    >>> parts = grouped_split(meta, by="tree", fractions=(0.5, 0.25, 0.25), seed=0)
    >>> sorted(parts), sum(len(v) for v in parts.values())
    (['test', 'train', 'val'], 6)
    """
    from sklearn.model_selection import GroupShuffleSplit

    fr = np.asarray(list(fractions), dtype=float)
    if fr.shape != (3,) or np.any(~np.isfinite(fr)) or np.any(fr < 0) or not np.isclose(fr.sum(), 1.0):
        raise InvalidInputError(
            f"split fractions must be 3 non-negative numbers (train, val, test) summing to 1, got {tuple(fractions)}"
        )
    groups = group_labels(meta, by=by, time_block=time_block)
    n = len(groups)
    uniq = np.unique(groups)
    n_parts = int(np.sum(fr > 0))
    if uniq.size < n_parts:
        raise InvalidInputError(
            f"split by {by!r}: {uniq.size} group(s) cannot fill {n_parts} non-empty parts; "
            "use more data, another grouping, or set a fraction to 0"
        )
    all_idx = np.arange(n)
    empty = np.zeros(0, dtype=np.int64)

    def _take(idx: np.ndarray, frac: float, rs: int) -> tuple[np.ndarray, np.ndarray]:
        if frac <= 0:
            return idx, empty
        g = groups[idx]
        n_g = np.unique(g).size
        if n_g < 2:
            return idx, empty
        n_take = min(max(1, int(round(frac * n_g))), n_g - 1)
        gss = GroupShuffleSplit(n_splits=1, test_size=n_take, random_state=rs)
        keep, take = next(gss.split(idx, groups=g))
        return idx[keep], idx[take]

    rest, test = _take(all_idx, fr[2], seed)
    rest_frac = fr[1] / (fr[0] + fr[1]) if fr[0] + fr[1] > 0 else 0.0
    if fr[0] == 0:
        train, val = empty, rest
    else:
        train, val = _take(rest, rest_frac, seed + 1)
    return {"train": np.sort(train).astype(np.int64), "val": np.sort(val).astype(np.int64),
            "test": np.sort(test).astype(np.int64)}


class SplitConfig(BaseModel):
    """How samples are split into train / validation / test without leakage.

    ``by`` groups samples so that a group is never on two sides: ``tree`` (lineage tree: a
    mother and both daughters together), ``sequence`` (a whole dataset) or ``time``
    (contiguous blocks of frames within each dataset, in time order train → val → test,
    with ``gap_frames`` frames dropped at each boundary since windows ``t−1, t, t+1``
    overlap). ``test_datasets`` / ``val_datasets`` send whole datasets to one side
    (split by sequence); ``test_groups`` / ``val_groups`` send named groups (values of
    ``group_column``, e.g. C. elegans sublineages ``MS``, ``ABpr``) to one side, and then
    the rest is all training. Otherwise the rule ``by`` applies to the rest.

    Attributes
    ----------
    by : {"tree", "sequence", "time"}
        The grouping rule.
    fractions : tuple of float
        Train, validation and test fractions (≥ 0, summing to 1).
    seed : int
        Seed of the assignment of groups to sides.
    gap_frames : int
        Frames dropped at each time-block boundary (``by="time"``).
    test_datasets, val_datasets : list of str
        Whole datasets sent to the test / validation side.
    group_column : str
        Sample-table column naming the groups of ``test_groups`` / ``val_groups``.
    test_groups, val_groups : list of str
        Groups (values of ``group_column``) sent to the test / validation side.
    by_dataset : dict of str to {"tree", "time"}
        Per-dataset override of ``by`` (e.g. time blocks for a single-colony movie).
    """

    model_config = ConfigDict(extra="forbid")

    by: Literal["tree", "sequence", "time"] = "tree"
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 0
    gap_frames: int = Field(2, ge=0)
    test_datasets: list[str] = Field(default_factory=list)
    val_datasets: list[str] = Field(default_factory=list)
    group_column: str = Field("tree_id", description="sample-table column naming the groups of test_groups/val_groups")
    test_groups: list[str] = Field(default_factory=list,
                                   description="groups (values of group_column, e.g. sublineages) held out as test")
    val_groups: list[str] = Field(default_factory=list, description="groups used as validation")
    by_dataset: dict[str, Literal["tree", "time"]] = Field(
        default_factory=dict, description="per-dataset override of `by` (e.g. time blocks for a single-colony movie)")

    @field_validator("fractions")
    @classmethod
    def _sum_to_one(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(f < 0 for f in v) or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"fractions must be >= 0 and sum to 1, got {v}")
        return v


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
