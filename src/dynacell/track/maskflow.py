"""Optical flow between consecutive label frames: the linker's first guess of each nucleus' motion.

The linker (:func:`dynacell.track.link_labels`) measures a candidate link after moving the earlier nucleus by its
expected motion. Its later passes take that motion from the links of the pass before (the local flow of the
neighbours, :func:`dynacell.track.local_flow`); the first pass has only the frame's global drift. Where nuclei move
further than about half their spacing between two frames — a dense colony imaged at a low frame rate, or a frame
missing from the movie — the first pass joins most nuclei to a neighbour, the neighbours' flow learnt from those
links is near zero, and the passes settle on the wrong links (docs/tracking.md, "Large motion between frames").

:func:`mask_flow` gives the first pass a motion field measured from the masks themselves, before any link: each
frame is drawn as a *ridge image* (:func:`ridge_image`: every nucleus 0 at its outline rising to 1 at its centre, so
the pattern of nuclei — position, shape, orientation — moves with them) and the displacement between two ridge
images is the optical flow of scikit-image's iterative Lucas–Kanade solver
(:func:`skimage.registration.optical_flow_ilk`; Le Besnerais & Champagnat 2005, coarse to fine on a pyramid, so a
shift of a whole nucleus is found), computed at about :data:`PX_PER_DIAMETER` pixels per median nucleus diameter
inside the frames' occupied box, and read at each nucleus' centroid.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["MAX_FLOW_PX", "PX_PER_DIAMETER", "ambiguous_share", "mask_flow", "ridge_image"]

#: Pixels per median nucleus diameter at which the flow is computed (the frames are sub-sampled to it).
PX_PER_DIAMETER = 8.0
#: Radius of the Lucas–Kanade window, in sub-sampled pixels (half a nucleus at :data:`PX_PER_DIAMETER`).
ILK_RADIUS = 4
#: Warps of the Lucas–Kanade solver at each pyramid level.
ILK_WARPS = 3
#: Most pixels of the sub-sampled box the flow is computed on (about 0.6 s a frame pair on one core): a larger frame of
#: small nuclei is sub-sampled further, so the cost stays bounded whatever the frame size.
MAX_FLOW_PX = 512 * 512


def ridge_image(frame: np.ndarray) -> np.ndarray:
    """Each nucleus of a label frame drawn as its normalised inner distance (0 at the outline, 1 at the centre).

    Parameters
    ----------
    frame : numpy.ndarray
        Labels ``(Y, X)`` or ``(Z, Y, X)``, integer, 0 = background.

    Returns
    -------
    numpy.ndarray
        float32, same shape: the Euclidean distance of each pixel to the nearest pixel outside its own nucleus
        (touching nuclei are separated), divided by the largest such distance in that nucleus; 0 on background.

    Notes
    -----
    A moving pattern for optical flow that holds no intensity: uniform masks give a flow only at their outlines, a
    ridge image everywhere inside them.
    """
    frame = np.asarray(frame)
    if not frame.any():
        return np.zeros(frame.shape, np.float32)
    ids, compact = np.unique(frame, return_inverse=True)  # ids numbered 1..n (large ids cost no memory)
    frame = compact.reshape(frame.shape) + (0 if ids[0] == 0 else 1)
    inner = frame.copy()
    # pixels on an outline between two nuclei count as outside, so touching nuclei each get their own ridge
    for axis in range(frame.ndim):
        step = np.diff(frame, axis=axis) != 0
        lo = [slice(None)] * frame.ndim
        hi = [slice(None)] * frame.ndim
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        inner[tuple(lo)][step] = 0
        inner[tuple(hi)][step] = 0
    dist = ndi.distance_transform_edt(inner > 0) + (frame > 0)
    peak = ndi.maximum(dist, frame, index=np.arange(int(frame.max()) + 1))
    out = np.zeros(frame.shape, np.float32)
    fg = frame > 0
    out[fg] = dist[fg] / np.maximum(peak[frame[fg]], 1.0)
    return out


def _occupied_box(a: np.ndarray, b: np.ndarray, margin: int) -> tuple[slice, ...]:
    """The box holding every labelled pixel of two frames, grown by ``margin`` pixels (clipped to the frame)."""
    fg = (a > 0) | (b > 0)
    box = []
    for axis in range(fg.ndim):
        other = tuple(i for i in range(fg.ndim) if i != axis)
        hit = np.flatnonzero(fg.any(axis=other))
        box.append(slice(max(0, int(hit[0]) - margin), min(fg.shape[axis], int(hit[-1]) + 1 + margin)))
    return tuple(box)


def mask_flow(prev: np.ndarray, frame: np.ndarray, points_px: np.ndarray, *, diameter_px: float) -> np.ndarray:
    """Displacement of the nuclei of ``prev`` into ``frame``, read at ``points_px``, from the masks alone.

    Parameters
    ----------
    prev, frame : numpy.ndarray
        Two label frames ``(Y, X)`` of the same shape, integer, 0 = background (ids need not match).
    points_px : numpy.ndarray
        ``(N, 2)`` float, the positions (pixels, ``y, x``) of ``prev``'s nuclei (their centroids).
    diameter_px : float
        The median nucleus diameter in pixels: the frames are sub-sampled by ``round(diameter_px / 8)``
        (:data:`PX_PER_DIAMETER`), or more where the occupied box would exceed :data:`MAX_FLOW_PX` pixels; this
        sets the cost and the smallest motion seen (one sub-sampled pixel).

    Returns
    -------
    numpy.ndarray
        ``(N, 2)`` float64, the displacement (pixels, ``dy, dx``) from ``prev`` to ``frame`` at each point: the
        optical flow of the frames' ridge images (:func:`ridge_image`) by
        :func:`skimage.registration.optical_flow_ilk`, bilinearly interpolated. Zeros when either frame is empty.

    Raises
    ------
    ValueError
        If the frames differ in shape, are not 2D, or ``points_px`` is not ``(N, 2)``.

    Notes
    -----
    Source: dynacell's linker (docs/tracking.md, "Large motion between frames"). About 0.1 s for a 1305 × 1009
    frame of 358 bacteria (diameter 35 px) on one core.
    """
    prev, frame = np.asarray(prev), np.asarray(frame)
    points = np.asarray(points_px, dtype=float).reshape(-1, prev.ndim) if prev.ndim == 2 else None
    if prev.shape != frame.shape or prev.ndim != 2 or points is None or points.shape[1] != 2:
        raise ValueError(f"mask_flow needs two 2D label frames of one shape and (N, 2) points; got {prev.shape}, "
                         f"{frame.shape} and {np.shape(points_px)}")
    out = np.zeros((len(points), 2))
    if len(points) == 0 or not prev.any() or not frame.any():
        return out
    from skimage.registration import optical_flow_ilk

    step = max(1, int(round(float(diameter_px) / PX_PER_DIAMETER)))
    box = _occupied_box(prev, frame, margin=2 * ILK_RADIUS * step)
    area = float(np.prod([s.stop - s.start for s in box]))
    step = max(step, int(np.ceil(np.sqrt(area / MAX_FLOW_PX))))
    origin = np.array([s.start for s in box], dtype=float)
    a = ridge_image(prev[box][::step, ::step])
    b = ridge_image(frame[box][::step, ::step])
    flow = optical_flow_ilk(a, b, radius=ILK_RADIUS, num_warp=ILK_WARPS)
    coords = ((points - origin) / step).T
    for k in range(2):
        out[:, k] = ndi.map_coordinates(flow[k], coords, order=1, mode="nearest") * step
    return out


def ambiguous_share(prev_px: np.ndarray, cur_px: np.ndarray, step_px: np.ndarray, *, ratio: float = 0.5) -> float:
    """Share of the nuclei of a frame whose nearest nucleus in the next frame is not clearly the nearest.

    Parameters
    ----------
    prev_px, cur_px : numpy.ndarray
        ``(N, D)`` and ``(M, D)`` float, centroids of the two frames (pixels or µm, the same unit).
    step_px : numpy.ndarray
        ``(D,)`` float, the frame's expected displacement (the global drift), same unit.
    ratio : float
        A nucleus is ambiguous when its nearest next-frame nucleus is farther than ``ratio`` × its second nearest.

    Returns
    -------
    float
        In ``[0, 1]``; 0 when either frame has fewer than 2 nuclei.

    Notes
    -----
    The nearest-to-second-nearest distance ratio test of feature matching (Lowe 2004): with small motion every
    nucleus sits on its successor (ratio near 0), with motion of half the spacing or more it is halfway between
    candidates.
    """
    from scipy.spatial import cKDTree

    prev_px, cur_px = np.asarray(prev_px, dtype=float), np.asarray(cur_px, dtype=float)
    if len(prev_px) < 2 or len(cur_px) < 2:
        return 0.0
    d, _ = cKDTree(cur_px).query(prev_px + np.asarray(step_px, dtype=float), k=2)
    return float(np.mean(d[:, 0] > ratio * d[:, 1]))
