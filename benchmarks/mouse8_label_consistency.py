"""How consistent are the mouse 8-cell reference outlines from one frame to the next? (labels only, no model)

Each nucleus of frame t is paired with one of frame t + 1 by its centroid (Hungarian assignment on the
distance with z scaled by ``--z-aspect``), the frame-t+1 outline is moved onto the frame-t centroid
(rounded to whole voxels) and the two outlines' Jaccard is taken, with the ratio of their volumes.
Motion, rotation and real shape change between frames lower the Jaccard, so it is a floor on the
annotation's self-consistency, not a ceiling of any segmenter. Reads label volumes 0-7 only (training
and validation frames of ``mouse8``; the test frames 8-10 are never read).

Usage::

    python benchmarks/mouse8_label_consistency.py            # prints one JSON line
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def paired_outline_scores(a: np.ndarray, b: np.ndarray, z_aspect: float = 2.4) -> list[tuple[float, float]]:
    """(Jaccard, volume b / volume a) of each nucleus of ``a`` paired with one of ``b`` by its centroid.

    Parameters
    ----------
    a, b : numpy.ndarray
        Integer label volumes ``(Z, Y, X)`` of two frames (0 = background).
    z_aspect : float
        z/x voxel aspect used in the pairing distance.

    Returns
    -------
    list of (float, float)
        One pair per assigned nucleus (``min`` of the two counts).
    """
    from scipy import ndimage as ndi
    from scipy.optimize import linear_sum_assignment

    la, lb = np.unique(a[a > 0]), np.unique(b[b > 0])
    if not len(la) or not len(lb):
        return []
    ca = np.array(ndi.center_of_mass(a > 0, a, la)).reshape(-1, 3)
    cb = np.array(ndi.center_of_mass(b > 0, b, lb)).reshape(-1, 3)
    scale = np.array([z_aspect, 1.0, 1.0])
    r, c = linear_sum_assignment(np.linalg.norm((ca[:, None] - cb[None]) * scale, axis=-1))
    out = []
    for i, k in zip(r, c):
        ma, mb = a == la[i], b == lb[k]
        mb = np.roll(mb, tuple(np.round(ca[i] - cb[k]).astype(int)), axis=(0, 1, 2))
        out.append((float((ma & mb).sum() / (ma | mb).sum()), float(mb.sum() / ma.sum())))
    return out


def main() -> None:
    import tifffile

    from dynacell.train.segment import DEFAULT_DATA

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", default="0-7", help="first-last label volume (never past 7: 8-10 are test)")
    p.add_argument("--z-aspect", type=float, default=2.4)
    a = p.parse_args()
    lo, hi = (int(v) for v in a.frames.split("-"))
    if hi > 7:
        raise SystemExit("frames 8-10 are the test side; use --frames within 0-7")
    base = DEFAULT_DATA / "embryo3d" / "mouse-8cell" / "labels"
    scores = []
    for t in range(lo, hi):
        fa, fb = (tifffile.imread(base / f"t{k:03d}.tif").astype(np.int32) for k in (t, t + 1))
        scores += paired_outline_scores(fa, fb, a.z_aspect)
    j, v = np.array([s[0] for s in scores]), np.array([s[1] for s in scores])
    print(json.dumps({"pairs": len(j), "jaccard_mean": round(float(j.mean()), 3),
                      "jaccard_min_max": [round(float(j.min()), 3), round(float(j.max()), 3)],
                      "volume_ratio_median": round(float(np.median(v)), 2),
                      "volume_ratio_iqr": [round(float(x), 2) for x in np.percentile(v, [25, 75])]}))


if __name__ == "__main__":
    main()
