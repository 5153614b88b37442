"""Linking distance gate adapted to the motion seen in a movie: :func:`motion_gate`."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["motion_gate"]


#: SciPy's compiled module holding ``linear_sum_assignment`` (private: its name is checked, see :func:`lsap_solver`).
LSAP_MODULE = "_lsap"


def _answers_like_scipy(fn) -> bool:
    """Whether ``fn`` gives :func:`scipy.optimize.linear_sum_assignment`'s answers on three small problems.

    The problems: the example of SciPy's documentation (cost 5: rows ``[0, 1, 2]``, columns
    ``[1, 0, 2]``), a rectangular one maximised (row 0 → column 2) and a nested list (``[[4, 1], [2, 8]]``
    → columns ``[1, 0]``). Any exception counts as a wrong answer.
    """
    try:
        r, c = fn(np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]]))
        rm, cm = fn(np.array([[1.0, 2.0, 3.0]]), maximize=True)
        rl, cl = fn([[4.0, 1.0], [2.0, 8.0]])
        return (np.asarray(r).tolist(), np.asarray(c).tolist(), np.asarray(rm).tolist(), np.asarray(cm).tolist(),
                np.asarray(rl).tolist(), np.asarray(cl).tolist()) == ([0, 1, 2], [1, 0, 2], [0], [2], [0, 1], [1, 0])
    except Exception:  # noqa: BLE001 - any failure: not the function we expect
        return False


def lsap_solver():
    """SciPy's :func:`scipy.optimize.linear_sum_assignment`, without importing all of ``scipy.optimize``.

    The function lives in the compiled module ``scipy.optimize._lsap`` (:data:`LSAP_MODULE`; in SciPy 1.17,
    installed here, ``scipy.optimize.linear_sum_assignment`` *is* that module's function); importing it the usual
    way runs ``scipy/optimize/__init__`` (minimisers, linear programming: about 0.25–0.5 CPU-s at start-up)
    that the linker never uses. Here the compiled module is loaded on its own from scipy's folder and
    used only when it answers three small problems as SciPy documents (:func:`_answers_like_scipy`).
    ``scipy.optimize.linear_sum_assignment`` itself is returned when ``scipy.optimize`` is already
    imported, or when the private module is missing, fails to load or answers differently (a SciPy
    release that renames or changes it): a faster start when it can, the same assignments always.

    Returns
    -------
    callable
        ``linear_sum_assignment(cost_matrix, maximize=False) -> (row_ind, col_ind)``.
    """
    global _LSAP
    import sys

    if "scipy.optimize" in sys.modules or _LSAP is None:
        fn = None
        if "scipy.optimize" not in sys.modules:
            try:
                import importlib.machinery
                import importlib.util
                from pathlib import Path

                import scipy

                folder = Path(scipy.__file__).parent / "optimize"
                for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                    path = folder / f"{LSAP_MODULE}{suffix}"
                    if path.is_file():
                        name = f"scipy.optimize.{LSAP_MODULE}"
                        loader = importlib.machinery.ExtensionFileLoader(name, str(path))
                        spec = importlib.util.spec_from_file_location(name, path, loader=loader)
                        module = importlib.util.module_from_spec(spec)
                        loader.exec_module(module)
                        fn = module.linear_sum_assignment
                        break
            except Exception:  # noqa: BLE001 - any failure: the ordinary import below
                fn = None
            if fn is not None and not _answers_like_scipy(fn):
                fn = None
        if fn is None:
            from scipy.optimize import linear_sum_assignment as fn
        _LSAP = fn
    return _LSAP


_LSAP = None


def motion_gate(nuclei: pd.DataFrame, *, ndim: int, voxel_size_um: tuple[float, ...] | None = None,
                quantile: float = 0.9, factor: float = 2.5, min_pairs: int = 3) -> dict[str, float]:
    """Linking distance gate adapted to the motion seen in the movie.

    The default gate of :func:`dynacell.track.link_labels` is 1.5 × the median nucleus diameter,
    right for densely sampled movies. When nuclei move more than that between frames (the real
    mouse-8cell embryo: steps of 12–60 px between time points for a diameter of ~15 px), tracks
    break. This gate is ``max(default, factor × q-quantile of the one-to-one displacements)``,
    the displacements being those of the globally optimal assignment (Hungarian algorithm,
    :func:`scipy.optimize.linear_sum_assignment`, no gate) between the centroids of consecutive
    frames *with the same number of nuclei* (no division, death or segmentation change to
    confuse the assignment). With fewer than ``min_pairs`` such frame pairs the default is used:
    one pair is too easily a pair of frames whose segmentations differ (HeLa 02 segmented by
    ``nuclei-seg-2d``: one usable pair gave a gate of 105 µm for nuclei of 17 µm, and linking with it
    fell from TRA 0.973 to 0.946).

    Measured on ../shared/data (q = 0.9, pixels): mouse-8cell 31.6 (10 of 10 pairs usable;
    gate 79 > default 22), HeLa 02_ERR_SEG 8.1, bacteria-phc 01 14.2, CHO 02_ERR_SEG 6.9 (the
    default stays in force for the three CTC movies).

    Parameters
    ----------
    nuclei : pandas.DataFrame
        Columns ``t, z, y, x`` (pixels) and ``size_px``: one row per nucleus and frame.
    ndim : {2, 3}
        Spatial dimensionality.
    voxel_size_um : tuple of float, optional
        Voxel size ``((Z), Y, X)`` in µm; distances are in pixels when None.
    quantile : float
        Quantile (0..1) of the assignment distances used.
    factor : float
        Safety factor on that quantile.
    min_pairs : int
        Fewest usable frame pairs (≥ 1) for the motion estimate.

    Returns
    -------
    dict
        ``default`` (1.5 × median diameter), ``motion`` (factor × quantile of the assignment
        distances, 0 with fewer than ``min_pairs`` usable frame pairs), ``n_pairs`` (usable frame pairs) and
        ``max_distance`` (the larger of default and motion), in µm (pixels when the voxel size
        is unknown).
    """
    from scipy.spatial.distance import cdist

    from dynacell.track import default_max_distance

    linear_sum_assignment = lsap_solver()

    scale = np.ones(3)
    if voxel_size_um is not None:
        scale[-len(voxel_size_um):] = voxel_size_um
    default = default_max_distance(nuclei, ndim=ndim, scale=tuple(scale))
    frames = sorted(nuclei["t"].unique())
    # each frame's centroids in table order (as groupby("t") gives them, without a DataFrame per frame)
    t_all = nuclei["t"].to_numpy()
    order = np.argsort(t_all, kind="stable")
    xyz = nuclei[["z", "y", "x"]].to_numpy()[order] * scale
    cuts = np.flatnonzero(np.diff(t_all[order])) + 1
    pos = {t_all[order[g[0]]].item(): xyz[g] for g in np.split(np.arange(len(order)), cuts) if len(g)}
    dists = []
    for a, b in zip(frames[:-1], frames[1:]):
        if len(pos[a]) != len(pos[b]):
            continue
        d = cdist(pos[a], pos[b])
        r, c = linear_sum_assignment(d)
        dists.append(d[r, c])
    motion = float(factor * np.quantile(np.concatenate(dists), quantile)) if len(dists) >= max(1, min_pairs) else 0.0
    return {"default": float(default), "motion": motion, "n_pairs": len(dists),
            "max_distance": float(max(default, motion))}
