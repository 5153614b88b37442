"""Grouped train / validation / test splits: never random per sample.

The seed split samples at random (SEEDS.md §1), so frames of one track and sister
daughters fell on both sides and inflated the validation score. Here whole *groups*
go to one side:

``tree``
    lineage tree (``dataset`` + ``tree_id``): a division's mother and both daughters, and
    every frame of their tracks, are on one side;
``sequence``
    ``dataset`` (one movie / embryo per group);
``time``
    blocks of ``time_block`` consecutive frames per dataset (``dataset`` + ``t // time_block``).

Groups are assigned with :class:`sklearn.model_selection.GroupShuffleSplit` (fractions
count groups, not samples).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dynacell.errors import InvalidInputError

__all__ = ["group_labels", "grouped_split"]

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
