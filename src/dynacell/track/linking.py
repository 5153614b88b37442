"""Link per-frame nucleus labels into tracks and a lineage with laptrack.

The input is a label movie ``(T, (Z), Y, X)`` whose ids need not be consistent over
time (each frame may number its nuclei 1..N independently, as in the BlastoSPIM
mouse-embryo labels). Nuclei are reduced to their centroids frame by frame
(:func:`measure_nuclei`, streaming), then linked by the linear-assignment tracker of
Jaqaman et al. (2008, *Nat. Methods* 5:695) as implemented in laptrack
(Fukai & Kawaguchi 2023, *Bioinformatics* 39:btac799): frame-to-frame linking, then gap
closing and division (segment splitting) in a second assignment. Distances are
Euclidean in µm when the voxel size is known, in pixels otherwise; they are weighted by
mask overlap and measured after motion compensation (global drift by phase correlation,
then the local flow of neighbouring nuclei, re-estimated over a few linking passes) and,
with a ``motion_prior``, each track's own forecast motion relative to that flow
(predictive linking, :mod:`dynacell.forecast.positions`).
"""

from __future__ import annotations

import logging
import warnings
from collections import deque
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie
from dynacell.io.objects import boxes_cover_little
from dynacell.lineage.graph import Lineage
from dynacell.track.ctc import TrackRelabel, assign_ctc_tracks

__all__ = [
    "DEFAULT_DISTANCE_FACTOR",
    "default_max_distance",
    "link_labels",
    "measure_nuclei",
]

logger = logging.getLogger(__name__)

#: Default maximum linking / division / gap-closing distance, in median nucleus
#: diameters (see :func:`default_max_distance`).
DEFAULT_DISTANCE_FACTOR = 1.5

#: Most linking passes after the first that re-estimate the local flow from the previous
#: pass's links (passes stop early once the links no longer change).
_FLOW_PASSES = 5

#: A global drift is applied only if it multiplies the foreground overlap of two frames by more than this.
_DRIFT_MIN_GAIN = 1.05

#: Quantile of the movie's own frame-to-frame size ratios (one-child links of the previous pass) above
#: which the children of a division candidate are too large together for its mother (see :func:`link_labels`).
_DIVISION_GROWTH_QUANTILE = 0.99
#: Exponent of the division size penalty on the distance: ``(ratio / allowed) ** 3`` when above 1.
_DIVISION_PENALTY_POWER = 3
#: Fewest one-child links of the previous pass needed to set the allowed ratio (else no size penalty).
_DIVISION_MIN_LINKS = 20
#: Frames of a mother's track (her last frame and those before it) whose largest size is her reference
#: size in the division size penalty: a mitotic mother's chromatin condenses, so her last mask is smaller
#: than the nucleus that divided (rendered embryos: daughters together 2-4 times the anaphase mask).
_DIVISION_MOTHER_FRAMES = 4

#: The overlap fraction of a link candidate divides the shared pixels by the smaller mask, but by at least this
#: fraction of the larger one: ``f = |a ∩ b| / max(min(|a|, |b|), r · max(|a|, |b|))``. Without the floor a sliver
#: of a cell leaving the field (4 px) covered by the neighbour that moves into its place (981 px) had ``f = 1``, a free
#: link that pushed the neighbour's own predecessor off (``benchmarks/track_field.py``). 0 = the smaller mask alone.
_OVERLAP_MIN_SIZE_RATIO = 0.25

#: A link candidate (continuation, gap or division) with a nucleus touching the frame's lateral border at either end
#: whose masks share no pixel after motion compensation is refused: a nucleus leaving the field and another entering
#: it, or a neighbour, were joined by the assignment (``benchmarks/track_field.py``).
#: The border rule refuses only candidates farther apart (after motion compensation) than this many median nucleus
#: diameters: a sliver entering the field sits beside its next, larger mask and may share no pixel with it.
_BORDER_MIN_DIAMETERS = 0.5
#: Cost given to a refused candidate: far above any cutoff, so laptrack never joins the pair.
_BORDER_FORBIDDEN = 1e30

#: A frame pair gets a mask flow (:func:`dynacell.track.maskflow.mask_flow`) for the first linking pass when more than
#: this share of its nuclei have no clearly nearest successor after the drift (ambiguity ratio 0.5). Ground truth:
#: GOWT1 01 and HeLa 02 at most 0.12 (also every 2nd / 4th frame), bacteria-phc 01 0.31 median at every frame.
_AMBIGUOUS_SHARE = 0.2

#: A frame pair's links are *uncertain* when at least this share of its nuclei are still ambiguous after the final
#: pass's motion compensation (nearest next nucleus farther than half the second nearest). Ground truth with frames
#: removed (bacteria-phc 01 every 2nd / 3rd frame, every 4th removed; GOWT1 01; the C. elegans lineage drawn as
#: volumes every 4th / 8th minute): 16-36 % of the links of pairs at 0.5 or more were wrong, of the others at most
#: 7 %. Frames of fewer than :data:`_UNCERTAIN_MIN_NUCLEI` nuclei are not judged.
_UNCERTAIN_SHARE = 0.5
_UNCERTAIN_MIN_NUCLEI = 10

_NUCLEI_COLUMNS = ["t", "label", "z", "y", "x", "size_px", "diameter_px"]


def _check_labels(labels: Movie) -> None:
    if not isinstance(labels, Movie):
        raise InvalidInputError(
            f"labels must be a dynacell.io.Movie (open it with dynacell.io.open_labels), got {type(labels).__name__}"
        )
    if labels.dtype.kind not in "iu":
        raise InvalidInputError(
            f"labels {labels.source or '<array>'}: expected an integer label image (0 = background, one id per "
            f"nucleus), found dtype {labels.dtype}; convert a binary mask with skimage.measure.label, or round and "
            f"cast whole-number float labels to an integer type"
        )


def _frame_nuclei(frame: np.ndarray, t: int, objects: dict | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ids (int64), centroids ``(N, 3)`` (float64, pixels), sizes (int64) and whether each nucleus touches the
    frame's lateral (Y/X) border (bool) of one label frame."""
    from dynacell.io.scan import frame_objects

    ids, cen, size, boxes = frame_objects(frame, t, objects, source=f"frame {t}")
    nd = frame.ndim
    boxes = np.asarray(boxes).reshape(len(ids), 2 * nd)
    lo, hi = boxes[:, nd - 2:nd], boxes[:, 2 * nd - 2:]
    border = (lo == 0).any(axis=1) | (hi >= np.asarray(frame.shape[-2:])).any(axis=1)
    return ids, cen, size, border


def _nuclei_table(ts: list[np.ndarray], ids: list[np.ndarray], cen: list[np.ndarray], size: list[np.ndarray],
                  ndim: int) -> pd.DataFrame:
    """The nucleus table of :func:`measure_nuclei` from per-frame arrays, built once (a DataFrame per frame cost
    about 8 ms of pandas overhead a frame, more than measuring a 1024² frame's nuclei)."""
    size_all = np.concatenate(size).astype(np.int64, copy=False)
    cen_all = np.concatenate(cen).reshape(-1, 3).astype(np.float64, copy=False)
    diameter = np.cbrt(6.0 * size_all / np.pi) if ndim == 3 else np.sqrt(4.0 * size_all / np.pi)
    return pd.DataFrame({"t": np.concatenate(ts).astype(np.int64, copy=False),
                         "label": np.concatenate(ids).astype(np.int64, copy=False),
                         "z": cen_all[:, 0], "y": cen_all[:, 1], "x": cen_all[:, 2], "size_px": size_all,
                         "diameter_px": diameter}, columns=_NUCLEI_COLUMNS)


def _shift(a: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``a`` translated by the integer vector ``d`` (pixels), zero-filled."""
    d = np.rint(d).astype(int)
    if not d.any():
        return a
    out = np.zeros_like(a)
    src, dst = [], []
    for n, k in zip(a.shape, d, strict=True):
        if abs(k) >= n:
            return out
        src.append(slice(max(0, -k), n - max(0, k)))
        dst.append(slice(max(0, k), n - max(0, -k)))
    out[tuple(dst)] = a[tuple(src)]
    return out


def _overlaps(a: np.ndarray, b: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of labels ``(la, lb)`` sharing pixels once ``a`` is moved by ``d``, and the shared pixel counts."""
    a = _shift(a, d)
    both = (a > 0) & (b > 0)
    if not both.any():
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return _count_pairs(a[both], b[both])


def _overlaps_in_boxes(a: np.ndarray, ids: np.ndarray, boxes: np.ndarray, b: np.ndarray, d: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_overlaps` read inside each nucleus's bounding box of ``a``: the same pairs and counts.

    ``ids``: all the nonzero ids of ``a``; ``boxes``: their bounding boxes (``lo..., hi...``, ``hi`` exclusive,
    the scan's :func:`dynacell.io.scan.frame_objects`), each holding every pixel of its id. Each pixel of
    ``a`` is moved by ``rint(d)`` as by :func:`_shift`; the pixels that land on a nucleus of ``b`` are counted
    by :func:`_count_pairs` (a sort), so listing them nucleus by nucleus instead of in C order over the frame
    gives the same result (tested). On a 1024² frame with ~25 nuclei it skips shifting and comparing the
    ~96 % background.
    """
    d = np.rint(d).astype(int)
    nd = a.ndim
    la_parts: list[np.ndarray] = []
    lb_parts: list[np.ndarray] = []
    for label, box in zip(np.asarray(ids).tolist(), np.asarray(boxes).tolist(), strict=True):
        lo = [max(box[x], -int(d[x])) for x in range(nd)]
        hi = [min(box[nd + x], a.shape[x] - int(d[x])) for x in range(nd)]
        if any(h <= low for low, h in zip(lo, hi, strict=True)):
            continue  # the nucleus leaves the frame
        src = tuple(slice(low, h) for low, h in zip(lo, hi, strict=True))
        dst = tuple(slice(low + int(k), h + int(k)) for low, h, k in zip(lo, hi, d, strict=True))
        hit = b[dst][a[src] == label]
        hit = hit[hit > 0]
        if hit.size:
            lb_parts.append(hit)
            la_parts.append(np.full(hit.size, label, dtype=np.int64))
    if not la_parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return _count_pairs(np.concatenate(la_parts), np.concatenate(lb_parts))


def _count_pairs(la: np.ndarray, lb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct pairs ``(la[k], lb[k])`` (int64 ``(P,)`` each) and how often each occurs (``(P,)``).

    Packs a pair into one int64 key when the ids allow it (one 1-D sort, ~10× faster than
    :func:`numpy.unique` over columns); ids up to 2**63 fall back to the column-wise unique.
    """
    la = np.asarray(la, dtype=np.int64)
    lb = np.asarray(lb, dtype=np.int64)
    if la.size == 0:
        return la, lb, np.zeros(0, np.int64)
    base = int(lb.max()) + 1
    if (int(la.max()) + 1) * base < 2 ** 62:
        key, counts = np.unique(la * base + lb, return_counts=True)
        return key // base, key % base, counts
    pairs, counts = np.unique(np.stack([la, lb]), axis=1, return_counts=True)
    return pairs[0], pairs[1], counts


def _mask_spectrum(frame: np.ndarray, spectra: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sub-sampled foreground mask of a label frame (bool) and its half spectrum (:func:`scipy.fft.rfftn` of
    the float32 mask: the mask is real, so the other half is the complex conjugate; see :func:`_phase_shift`).

    ``spectra`` caches the pair by the frame's ``id``: in :func:`_scan` each frame is the second frame of one
    pair and the first of the next, so its transform is computed once instead of twice (the same numbers:
    the same call on the same array).
    """
    from scipy.fft import rfftn

    key = id(frame)
    if spectra is not None and key in spectra and spectra[key][0] is frame:
        return spectra[key][1], spectra[key][2]
    step = max(1, int(np.ceil(max(frame.shape[-2:]) / 256)))
    sl = (slice(None),) * (frame.ndim - 2) + (slice(None, None, step),) * 2
    mask = frame[sl] > 0
    freq = rfftn(mask.astype(np.float32))
    if spectra is not None:
        spectra.clear()  # only the latest frame is needed again
        spectra[key] = (frame, mask, freq)
    return mask, freq


def _phase_shift(fa: np.ndarray, fb: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Integer shift (float array, one value per axis) that registers image ``b`` onto image ``a``, from their
    half spectra: :func:`skimage.registration.phase_cross_correlation` (``upsample_factor=1``, phase
    normalisation) computed with real transforms.

    ``fa``, ``fb``: :func:`scipy.fft.rfftn` of two real images of ``shape`` (complex64 for float32 images).
    The same normalised cross-power spectrum, its inverse by :func:`scipy.fft.irfftn` (the correlation of two
    real images is real: skimage's complex inverse differs from it by rounding only) and the same peak, wrap
    and size-1 rules as skimage 0.26 — about half the transform work, and none of skimage's error and phase
    figures, which the linker does not use (mouse-8cell, 71 × 180 × 247 frames: the transforms were most of
    the linking time). Tested equal to skimage on random masks and on the label frames of the five real
    runs of ``benchmarks/run.py``.
    """
    from scipy.fft import irfftn

    prod = fa * fb.conj()
    prod /= np.maximum(np.abs(prod), 100 * np.finfo(prod.real.dtype).eps)
    cc = irfftn(prod, s=shape)
    peak = np.unravel_index(np.argmax(np.abs(cc)), shape)
    size = np.asarray(shape)
    shift = np.asarray(peak, dtype=float)
    wrap = shift > np.trunc(size / 2)
    shift[wrap] -= size[wrap]
    shift[size == 1] = 0
    return shift


def _drift(prev: np.ndarray, frame: np.ndarray, spectra: dict | None = None) -> np.ndarray:
    """Global displacement (pixels, spatial axes) of the nuclei from ``prev`` to ``frame``.

    Phase correlation (:func:`skimage.registration.phase_cross_correlation`) of the
    foreground masks, sub-sampled in Y and X to at most ~256 pixels a side for speed
    (the result is a prior for linking, accurate to the sub-sampling step). The shift is
    kept only if it raises the foreground overlap of the two frames by more than
    :data:`_DRIFT_MIN_GAIN` over no shift; otherwise (few nuclei moving independently,
    where the correlation peak is ambiguous) the drift is zero. ``spectra``: see
    :func:`_mask_spectrum` (a frame's transform reused by the next pair: on the 71 × 180 × 247
    mouse-8cell frames the transforms were most of the linking time).
    """
    if not prev.any() or not frame.any():
        return np.zeros(prev.ndim)
    step = max(1, int(np.ceil(max(prev.shape[-2:]) / 256)))
    a, fa = _mask_spectrum(prev, spectra)
    b, fb = _mask_spectrum(frame, spectra)
    shift = -_phase_shift(fa, fb, a.shape)
    if not np.rint(shift).any():
        return np.zeros(prev.ndim)
    still = np.count_nonzero(a & b)
    moved = np.count_nonzero(_shift(a, shift) & b)
    if moved <= _DRIFT_MIN_GAIN * still:
        return np.zeros(prev.ndim)
    return shift * np.array([1.0] * (prev.ndim - 2) + [float(step)] * 2)


def _drift_brings_closer(prev: np.ndarray, cur: np.ndarray, step_px: np.ndarray, scale: np.ndarray) -> bool:
    """Whether moving the nuclei of ``prev`` by ``step_px`` ``(z, y, x)`` brings them nearer to those of ``cur``.

    ``prev``, ``cur``: centroids ``(N, 3)`` in pixels. Compares the median distance (in the units of ``scale``)
    from each centroid of ``prev`` to the
    nearest centroid of ``cur`` with and without the step. Phase correlation of the masks of a few
    nuclei that each move by more than their size can peak at a shift no nucleus made (the real
    mouse-8cell embryo in µm: 34 µm along z where the nuclei moved 7 µm on average).
    """
    from scipy.spatial import cKDTree

    if len(prev) == 0 or len(cur) == 0:
        return False
    a = np.asarray(prev, dtype=float)
    tree = cKDTree(np.asarray(cur, dtype=float) * scale)
    still = np.median(tree.query(a * scale)[0])
    moved = np.median(tree.query((a + step_px) * scale)[0])
    return bool(moved < still)


def _scan(labels: Movie, *, overlap_frames: int, drift: bool, progress: bool, scale: np.ndarray | None = None,
          objects: dict | None = None, flow: bool = False) -> tuple[pd.DataFrame, dict, np.ndarray, frozenset, dict]:
    """One pass over the frames: nucleus table, global drift, shared pixels with the next frames, border nuclei.

    Returns the table of :func:`measure_nuclei`, ``{(i, la, j, lb): pixels}`` for array
    indices ``i < j <= i + overlap_frames`` (frame ``i`` moved by the drift between ``i``
    and ``j`` first), and the cumulative drift ``(T, 3)`` in pixels ``(z, y, x)`` (zeros
    when ``drift`` is False), and the ``(i, label)`` of the nuclei touching the frame's lateral border (the link
    cost's border rule). A drift is kept only if it brings the centroids of the two frames
    nearer (:func:`_drift_brings_closer`, distances scaled by ``scale``, default ones). Holds
    ``overlap_frames + 1`` frames in memory. ``objects`` (:func:`dynacell.io.scan.frame_objects`) holds
    the frames' nuclei when already measured. With ``flow`` (2D only), also
    ``{i: (N_i, 3) float}``: the displacement in pixels ``(0, dy, dx)`` of frame ``i``'s nuclei into frame ``i + 1``
    measured from the masks (:func:`dynacell.track.maskflow.mask_flow`), for the pairs where more than
    :data:`_AMBIGUOUS_SHARE` of the nuclei are ambiguous after the drift
    (:func:`dynacell.track.maskflow.ambiguous_share`) and the flow brings the nuclei nearer than the drift does.
    """
    _check_labels(labels)
    ndim = labels.ndim_spatial
    cols: tuple[list, list, list, list] = ([], [], [], [])  # t, ids, centroids, sizes of every frame
    empty: list[int] = []
    shared: dict[tuple[int, int, int, int], int] = {}
    border: list[tuple[int, int]] = []  # (frame index, label) of the nuclei touching the lateral border
    cum = np.zeros((labels.n_frames, 3))
    window: deque[tuple[int, np.ndarray, tuple | None]] = deque(maxlen=max(overlap_frames, 1))
    prev, prev_tab, prev_size = None, None, None
    flows: dict[int, np.ndarray] = {}
    spectra: dict = {}  # the latest frame's mask spectrum, reused as the next pair's first (see _drift)
    for i, t in enumerate(tqdm(labels.frame_indices, desc="measuring nuclei", unit="frame", disable=not progress)):
        frame = np.asarray(labels.data[i])
        if frame.size and frame.min() < 0:
            raise InvalidInputError(
                f"labels {labels.source or '<array>'} frame {t}: found negative label {int(frame.min())}; "
                f"labels must be >= 0 (0 = background)"
            )
        ids_t, tab, size_t, border_t = _frame_nuclei(frame, t, objects)  # tab: the frame's centroids (N, 3)
        if len(ids_t) == 0:
            empty.append(int(t))
        else:
            border.extend((i, int(lab)) for lab in ids_t[border_t].tolist())
            for col, v in zip(cols, (np.full(len(ids_t), int(t), np.int64), ids_t, tab, size_t), strict=True):
                col.append(v)
        if i > 0:
            step = _drift(prev, frame, spectra) if drift else np.zeros(ndim)
            if step.any() and not _drift_brings_closer(prev_tab, tab, np.r_[np.zeros(3 - ndim), step],
                                                       np.ones(3) if scale is None else scale):
                step = np.zeros(ndim)
            cum[i] = cum[i - 1]
            cum[i, 3 - ndim:] += step
            if flow and ndim == 2:
                moved = _mask_flow_pair(prev, frame, prev_tab, tab, prev_size, np.r_[0.0, step],
                                        np.ones(3) if scale is None else scale)
                if moved is not None:
                    flows[i - 1] = moved
        if overlap_frames > 0:
            for j, old, old_found in window:
                d = (cum[i] - cum[j])[3 - ndim:]
                if old_found is not None:  # the same pairs and counts, read inside the nuclei's boxes
                    pairs = _overlaps_in_boxes(old, old_found[0], old_found[3], frame, d)
                else:
                    pairs = _overlaps(old, frame, d)
                for la, lb, c in zip(*pairs, strict=True):
                    shared[(j, int(la), i, int(lb))] = int(c)
            found = None if objects is None else objects.get(int(t))
            if found is not None and not (len(found[0]) and boxes_cover_little(frame.shape, found[3], len(found[0]))):
                found = None
            window.append((i, frame, found))
        prev, prev_tab, prev_size = frame, tab, size_t
    if empty:
        warnings.warn(
            f"labels {labels.source or '<array>'}: {len(empty)} frame(s) hold no nucleus and give no lineage nodes: "
            f"frames {empty[:20]}{' ...' if len(empty) > 20 else ''}",
            UserWarning,
            stacklevel=3,
        )
    if not cols[0]:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in _NUCLEI_COLUMNS}).astype(
            {"t": np.int64, "label": np.int64, "size_px": np.int64}), shared, cum, frozenset(), {}
    return _nuclei_table(*cols, ndim), shared, cum, frozenset(border), flows


def _uncertain_pairs(pos: np.ndarray, flow: np.ndarray, per_frame: list[np.ndarray], frame_indices: Sequence[int]
                     ) -> list[list]:
    """``[t, t_next, share]`` of the frame pairs (both of at least :data:`_UNCERTAIN_MIN_NUCLEI` nuclei) where at
    least :data:`_UNCERTAIN_SHARE` of the nuclei are still ambiguous once moved by the final pass's flow
    (:func:`dynacell.track.maskflow.ambiguous_share`)."""
    from dynacell.track.maskflow import ambiguous_share

    out = []
    for i in range(len(per_frame) - 1):
        a, b = per_frame[i], per_frame[i + 1]
        if min(len(a), len(b)) < _UNCERTAIN_MIN_NUCLEI:
            continue
        share = ambiguous_share(pos[a] + flow[a], pos[b], np.zeros(pos.shape[1]))
        if share >= _UNCERTAIN_SHARE:
            out.append([int(frame_indices[i]), int(frame_indices[i + 1]), round(share, 3)])
    return out


def _mask_flow_pair(prev: np.ndarray, frame: np.ndarray, prev_tab: np.ndarray, tab: np.ndarray,
                    prev_size: np.ndarray, step_px: np.ndarray, scale: np.ndarray) -> np.ndarray | None:
    """The mask flow ``(N, 3)`` px of ``prev``'s nuclei into ``frame`` (2D), or None where it is not needed or not
    better than the drift ``step_px`` ``(z, y, x)`` (see :func:`_scan`)."""
    from dynacell.track.maskflow import ambiguous_share, mask_flow

    if len(prev_tab) < 2 or len(tab) < 2:
        return None
    share = ambiguous_share(prev_tab[:, 1:] * scale[1:], tab[:, 1:] * scale[1:], step_px[1:] * scale[1:])
    if share <= _AMBIGUOUS_SHARE:
        return None
    diameter = float(np.median(np.sqrt(4.0 * np.asarray(prev_size, dtype=float) / np.pi)))
    moved = np.zeros((len(prev_tab), 3))
    moved[:, 1:] = mask_flow(prev, frame, prev_tab[:, 1:], diameter_px=diameter)
    if not _drift_brings_closer(prev_tab + step_px, tab, moved - step_px, scale):
        return None
    return moved


def measure_nuclei(labels: Movie, *, progress: bool = True) -> pd.DataFrame:
    """Centroid and size of every nucleus of every frame, reading one frame at a time.

    Parameters
    ----------
    labels : Movie
        Label movie, shape ``(T, (Z), Y, X)``, integer dtype, 0 = background.
    progress : bool
        Show a progress bar over frames.

    Returns
    -------
    pandas.DataFrame
        One row per nucleus, columns ``t`` (frame number, from ``labels.frame_indices``),
        ``label`` (int), ``z, y, x`` (centroid, float, pixels; ``z = 0`` in 2D),
        ``size_px`` (area or volume in pixels/voxels, int) and ``diameter_px`` (diameter of
        the disc / ball of the same area / volume, pixels: ``sqrt(4A/π)`` or ``(6V/π)^(1/3)``).
        Memory: one frame plus the table.

    Raises
    ------
    InvalidInputError
        If ``labels`` is not an integer :class:`~dynacell.io.Movie` or a frame holds
        negative labels.

    Warns
    -----
    UserWarning
        Once, listing the frames that hold no nucleus (they give no nodes).

    Notes
    -----
    Centroids and areas come from :func:`dynacell.io.objects.nucleus_centroids`.
    """
    return _scan(labels, overlap_frames=0, drift=False, progress=progress)[0]


def _physical_scale(labels: Movie, voxel_size_um: Sequence[float] | None) -> tuple[np.ndarray, str]:
    """Scale ``(z, y, x)`` per pixel and the unit name; pixels when unknown (logged)."""
    ndim = labels.ndim_spatial
    vs = voxel_size_um if voxel_size_um is not None else labels.voxel_size_um
    if vs is None:
        logger.info("labels %s: voxel size unknown, linking distances are in pixels", labels.source or "<array>")
        return np.ones(3), "px"
    vs = [float(v) for v in vs]
    if len(vs) != ndim or not all(np.isfinite(v) and v > 0 for v in vs):
        raise InvalidInputError(
            f"voxel_size_um must be {ndim} positive numbers in axis order {labels.axes[1:]}, got {voxel_size_um!r}"
        )
    if ndim == 2:
        vs = [1.0, *vs]
    return np.asarray(vs, dtype=float), "um"


def default_max_distance(nuclei: pd.DataFrame, *, ndim: int, scale: Sequence[float] = (1.0, 1.0, 1.0),
                         factor: float = DEFAULT_DISTANCE_FACTOR) -> float:
    """Default maximum linking distance: ``factor`` × the larger of nucleus size and motion.

    ``factor × max(median nucleus diameter, q95 of the optimal-assignment steps)``.

    Parameters
    ----------
    nuclei : pandas.DataFrame
        Output of :func:`measure_nuclei` (columns ``t, z, y, x, size_px``); frames are taken
        in the order of ``t``.
    ndim : {2, 3}
        Spatial dimensionality of the labels.
    scale : sequence of 3 float
        Physical size of a voxel ``(z, y, x)`` (µm), or ones for pixels. In 2D only
        ``y, x`` are used.
    factor : float
        Multiple (default :data:`DEFAULT_DISTANCE_FACTOR` = 1.5).

    Returns
    -------
    float
        Distance in the units of ``scale`` (µm, or pixels).

    Notes
    -----
    The diameter is that of the disc (2D) or ball (3D) with the nucleus' physical area or
    volume, so anisotropic voxels count correctly. The *motion scale* is the 95th
    percentile of the centroid steps of a minimum-total-distance one-to-one assignment
    (:func:`scipy.optimize.linear_sum_assignment`) between each pair of consecutive frames
    (pairs with more than 2000 nuclei in a frame are skipped); it matters where nuclei move
    further than their size between frames, as in the tumbling mouse embryo of
    ``embryo3d/mouse-8cell`` (steps up to 4 diameters). The factor 1.5 was chosen from the
    Cell Tracking Challenge ground truth (GOWT1 01, bacteria-phc 01): 99 % of frame-to-frame
    centroid steps are below 0.25 and 1.4 median diameters, and a daughter's centroid is
    within 1.44 diameters of its mother's in 95 % of divisions.
    """
    from scipy.spatial.distance import cdist

    from dynacell.track.gate import lsap_solver

    linear_sum_assignment = lsap_solver()
    if len(nuclei) == 0:
        return 1.0
    scale = np.asarray(scale, dtype=float)
    if ndim == 3:
        diam = np.cbrt(6.0 * nuclei["size_px"].to_numpy() * np.prod(scale) / np.pi)
    else:
        diam = np.sqrt(4.0 * nuclei["size_px"].to_numpy() * scale[1] * scale[2] / np.pi)
    pos = nuclei[["z", "y", "x"]].to_numpy(dtype=float) * scale
    t = nuclei["t"].to_numpy()
    frames = np.unique(t)
    steps: list[np.ndarray] = []
    for ta, tb in zip(frames[:-1], frames[1:], strict=True):
        a, b = pos[t == ta], pos[t == tb]
        if max(len(a), len(b)) > 2000:
            continue
        dist = cdist(a, b)
        rows, cols = linear_sum_assignment(dist)
        steps.append(dist[rows, cols])
    motion = float(np.percentile(np.concatenate(steps), 95)) if steps else 0.0
    return float(factor * max(np.median(diam), motion))


def _overlap_fractions(shared: dict, size: dict) -> dict:
    """Overlap fraction of every overlapping pair: shared pixels over the smaller mask, floored by
    :data:`_OVERLAP_MIN_SIZE_RATIO` × the larger one (``shared``: ``{(i_a, label_a, i_b, label_b): pixels}``;
    ``size``: ``{(i, label): pixels}``)."""
    r = float(_OVERLAP_MIN_SIZE_RATIO)
    out = {}
    for k, c in shared.items():
        sa, sb = size[k[:2]], size[k[2:]]
        out[k] = c / max(min(sa, sb), r * max(sa, sb))
    return out


class _LinkCost:
    """Squared cost between rows ``[i, label, z, y, x, vz, vy, vx(, size, child_size, ref_size)]`` (see :func:`link_labels`).

    ``(|p_a + (i_b - i_a) v_a - p_b| · (1 - f_ab)^power · g_ab)²`` with ``a`` the earlier nucleus,
    ``f_ab`` the overlap fraction of the pair (``fraction[(i_a, label_a, i_b, label_b)]``, 0 when
    absent) and ``g_ab`` the division size penalty: 1 unless ``division_ratio`` is finite and the
    rows carry sizes, then ``max(1, ((size_b + child_size_a) / ref_size_a) / division_ratio) ** 3``
    (``child_size_a``: the largest child of ``a`` in the previous pass, NaN = no penalty;
    ``ref_size_a``: the largest size of ``a``'s track over its last :data:`_DIVISION_MOTHER_FRAMES`
    frames in the previous pass, ``size_a`` when the rows have no such column).
    Callable on one pair (scipy's ``cdist`` protocol) and vectorised over all pairs of two row sets
    by :meth:`pairwise`, which :func:`_fast_cdist` uses inside laptrack.
    """

    def __init__(self, fraction: dict[tuple[int, int, int, int], float], power: int = 1,
                 division_ratio: float = np.nan, border: frozenset = frozenset(), border_min_d2: float = 0.0):
        self.fraction = fraction
        self.power = power
        self.division_ratio = division_ratio
        self.border = border
        self.border_min_d2 = border_min_d2
        # (i_a, i_b) -> {label_a: (labels_b, fractions)}: lookups per row, O(overlapping pairs)
        index: dict[tuple[int, int], dict[int, list]] = {}
        for (ia, la, ib, lb), f in fraction.items():
            index.setdefault((ia, ib), {}).setdefault(la, []).append((lb, f))
        self._index = index

    def __call__(self, a: np.ndarray, b: np.ndarray) -> float:
        if a[0] > b[0]:
            a, b = b, a
        steps = b[0] - a[0]
        d2 = ((a[2] + steps * a[5] - b[2]) ** 2 + (a[3] + steps * a[6] - b[3]) ** 2
              + (a[4] + steps * a[7] - b[4]) ** 2)
        f = self.fraction.get((int(a[0]), int(a[1]), int(b[0]), int(b[1])), 0.0)
        pen = 1.0
        if np.isfinite(self.division_ratio) and len(a) > 9:
            ratio = (b[8] + a[9]) / (a[10] if len(a) > 10 else a[8])
            if np.isfinite(ratio):
                pen = max(1.0, ratio / self.division_ratio)
        if f == 0.0 and d2 > self.border_min_d2 and (self._flags(a[None])[0] or self._flags(b[None])[0]):
            return _BORDER_FORBIDDEN
        return float(d2 * (1.0 - f) ** (2 * self.power) * pen ** (2 * _DIVISION_PENALTY_POWER))

    def _flags(self, rows: np.ndarray) -> np.ndarray:
        """Whether each row's nucleus touches the frame's lateral border (bool ``(n,)``)."""
        if not self.border:
            return np.zeros(len(rows), bool)
        return np.fromiter(((int(i), int(lab)) in self.border for i, lab in zip(rows[:, 0], rows[:, 1], strict=True)),
                           bool, len(rows))

    def _fractions(self, early: np.ndarray, late: np.ndarray) -> np.ndarray:
        """Overlap fraction ``(n, m)`` of every pair, ``early`` rows before ``late`` rows in time."""
        out = np.zeros((len(early), len(late)))
        if not self._index:
            return out
        late_frames = late[:, 0].astype(np.int64)
        late_labels = late[:, 1].astype(np.int64)
        col_of: dict[tuple[int, int], int] = {}
        for j, key in enumerate(zip(late_frames.tolist(), late_labels.tolist(), strict=True)):
            col_of.setdefault(key, j)
        frames_b = np.unique(late_frames).tolist()
        for r, (ia, la) in enumerate(zip(early[:, 0].astype(np.int64).tolist(),
                                         early[:, 1].astype(np.int64).tolist(), strict=True)):
            for ib in frames_b:
                for lb, f in self._index.get((ia, ib), {}).get(la, ()):
                    j = col_of.get((ib, lb))
                    if j is not None:
                        out[r, j] = f
        return out

    def pairwise(self, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
        """Cost of every pair ``(xa[i], xb[j])``: float64 ``(len(xa), len(xb))``, same values as ``__call__``."""
        xa = np.atleast_2d(np.asarray(xa, dtype=float))
        xb = np.atleast_2d(np.asarray(xb, dtype=float))
        a_first = xa[:, None, 0] <= xb[None, :, 0]  # (n, m): is the xa row the earlier one
        early = np.where(a_first[..., None], xa[:, None, :], xb[None, :, :])
        late = np.where(a_first[..., None], xb[None, :, :], xa[:, None, :])
        steps = (late[..., 0] - early[..., 0])[..., None]
        d2 = np.sum((early[..., 2:5] + steps * early[..., 5:8] - late[..., 2:5]) ** 2, axis=-1)
        f = np.zeros(d2.shape)
        if a_first.any():
            f = np.where(a_first, self._fractions(xa, xb), f)
        if not a_first.all():
            f = np.where(a_first, f, self._fractions(xb, xa).T)
        out = d2 * (1.0 - f) ** (2 * self.power)
        if np.isfinite(self.division_ratio) and early.shape[-1] > 9:
            ratio = (late[..., 8] + early[..., 9]) / early[..., 10 if early.shape[-1] > 10 else 8]
            pen = np.where(np.isfinite(ratio), np.maximum(1.0, ratio / self.division_ratio), 1.0)
            out = out * pen ** (2 * _DIVISION_PENALTY_POWER)
        if self.border:
            at_border = self._flags(xa)[:, None] | self._flags(xb)[None, :]
            refuse = (f == 0.0) & (d2 > self.border_min_d2) & at_border
            out = np.where(refuse, _BORDER_FORBIDDEN, out)
        return out


def _link_metric(fraction: dict[tuple[int, int, int, int], float], power: int = 1,
                 division_ratio: float = np.nan, border: frozenset = frozenset(),
                 border_min_d2: float = 0.0) -> _LinkCost:
    """The linking cost of :func:`link_labels` with these overlap fractions (see :class:`_LinkCost`)."""
    return _LinkCost(fraction, power, division_ratio, border, border_min_d2)


def _fast_cdist(xa, xb, metric="euclidean", **kwargs):
    """:func:`scipy.spatial.distance.cdist`, vectorised for a :class:`_LinkCost` metric (one call, no Python loop)."""
    from scipy.spatial.distance import cdist

    if isinstance(metric, _LinkCost) and not kwargs:
        return metric.pairwise(xa, xb)
    return cdist(xa, xb, metric=metric, **kwargs)


def _laptrack_tracking():
    """``laptrack._tracking`` (the ``LapTrack`` class and its helpers), imported without ``laptrack/__init__``.

    ``import laptrack`` also imports ``laptrack.metric_utils`` and with it scikit-learn and
    ``scipy.stats`` (about 1.3 CPU-s of the 2-core machine, more than the linking of a small movie),
    none of which the linker uses. When laptrack is not imported yet, ``sys.modules["laptrack"]``
    becomes the package module *not yet executed* (its ``__path__`` lets the submodules load);
    the first access to a name that is not a submodule (``laptrack.LapTrack``,
    ``laptrack.__version__``, ...) runs the real ``laptrack/__init__`` into it, so every other use of
    laptrack sees the complete package.

    Returns
    -------
    module
        ``laptrack._tracking``.
    """
    import importlib
    import importlib.util
    import sys
    import threading

    if "laptrack" not in sys.modules:
        spec = importlib.util.find_spec("laptrack")
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            raise ImportError("laptrack is not installed (pip install laptrack)")
        shell = importlib.util.module_from_spec(spec)
        lock = threading.RLock()

        def __getattr__(name: str):
            if not name.startswith("__") and importlib.util.find_spec(f"laptrack.{name}") is not None:  # a submodule: load only that one
                return importlib.import_module(f"laptrack.{name}")
            with lock:
                if shell.__dict__.get("__getattr__") is __getattr__:
                    del shell.__dict__["__getattr__"]
                    spec.loader.exec_module(shell)  # the real laptrack/__init__
            try:
                return shell.__dict__[name]
            except KeyError:
                raise AttributeError(f"module 'laptrack' has no attribute {name!r}") from None

        shell.__getattr__ = __getattr__
        sys.modules["laptrack"] = shell
    return importlib.import_module("laptrack._tracking")


def _gap_closing_matrix(tracker, segments_df: pd.DataFrame, *, force_end_nodes=(), force_start_nodes=()):
    """laptrack's ``LapTrack._get_gap_closing_matrix`` with the candidates of all track ends at once.

    laptrack visits every track end with a ``DataFrame.apply`` that filters the whole segment table
    and calls ``cdist`` for one row (about 40 % of the linking time on HeLa 02, O(segments²) in
    pandas). Here the ends are grouped by their last frame and each group is scored against the
    track starts 1..``gap_closing_max_frame_count`` frames later in one ``cdist`` call: the same
    candidates (starts forced to stay starts and ends forced to stay ends excluded, cost below the
    cutoff), the same costs and the same order of entries in the cost matrix.

    Returns ``(segments_df with "gap_closing_candidates", coo_matrix_builder)`` as laptrack does.
    """
    _tracking = _laptrack_tracking()
    from laptrack._coo_matrix_builder import coo_matrix_builder

    n = len(segments_df)
    matrix = coo_matrix_builder((n, n), dtype=np.float32)
    empty = ([], [])
    if n == 0:
        segments_df["gap_closing_candidates"] = []
        return segments_df, matrix
    first_frame = segments_df["first_frame"].to_numpy()
    last_frame = segments_df["last_frame"].to_numpy()
    ends_forced = set(map(tuple, force_end_nodes))
    starts_forced = set(map(tuple, force_start_nodes))
    start_ok = np.array([(f, i) not in starts_forced for f, i in
                         zip(segments_df["first_frame"].tolist(), segments_df["first_index"].tolist())], dtype=bool)
    end_ok = np.array([(f, i) not in ends_forced for f, i in
                       zip(segments_df["last_frame"].tolist(), segments_df["last_index"].tolist())], dtype=bool)
    first_coords = np.stack(segments_df["first_frame_coords"].to_numpy())
    last_coords = np.stack(segments_df["last_frame_coords"].to_numpy())
    index = segments_df.index.to_numpy()
    candidates: list = [empty] * n
    for frame in np.unique(last_frame[end_ok]):
        rows = np.flatnonzero(end_ok & (last_frame == frame))
        diff = first_frame - frame
        cols = np.flatnonzero((diff >= 1) & (diff <= tracker.gap_closing_max_frame_count) & start_ok)
        if cols.size == 0:
            continue
        dist = _tracking.cdist(last_coords[rows], first_coords[cols], metric=tracker.gap_closing_metric)
        for r, d in zip(rows.tolist(), dist, strict=True):
            hit = np.flatnonzero(d < tracker.gap_closing_cutoff)
            candidates[r] = (index[cols[hit]], d[hit])
    segments_df["gap_closing_candidates"] = candidates
    for r, (cand, cost) in enumerate(candidates):
        matrix[(int(index[r]), cand)] = cost
    return segments_df, matrix


def _splitting_merging_candidates(tracker, segments_df: pd.DataFrame, coords, cutoff, prefix: str, dist_metric, *,
                                  force_end_nodes=(), force_start_nodes=()):
    """laptrack's ``LapTrack._get_splitting_merging_candidates`` with one cost call per frame.

    laptrack visits every track start (``prefix="first"``, splitting) or end (``"last"``, merging)
    with a ``DataFrame.apply`` and scores it against the nuclei of the frame before (after); here
    the starts of one frame are scored together, and the candidate list is gathered without the
    quadratic ``sum(lists, [])``. Same candidates, costs, middle points and matrix entries, in the
    same order. Returns ``(segments_df with "<prefix>_candidates", coo_matrix_builder, middle points)``.
    """
    _tracking = _laptrack_tracking()
    from laptrack._coo_matrix_builder import coo_matrix_builder
    from laptrack.utils import _coord_is_empty

    n = len(segments_df)
    candidates: list = [([], [])] * n
    if cutoff and n:
        frame = segments_df[f"{prefix}_frame"].to_numpy()
        index_in_frame = segments_df[f"{prefix}_index"].tolist()
        target = segments_df[f"{prefix}_frame_coords"].to_numpy()
        row_blocked = set(map(tuple, force_start_nodes if prefix == "first" else force_end_nodes))
        other_blocked = force_end_nodes if prefix == "first" else force_start_nodes
        other = frame + (-1 if prefix == "first" else 1)
        row_ok = np.array([(f, i) not in row_blocked for f, i in zip(frame.tolist(), index_in_frame)], dtype=bool)
        for of in np.unique(other[row_ok]).tolist():
            if of < 0 or len(coords) <= of or _coord_is_empty(coords[of]):
                continue
            rows = np.flatnonzero(row_ok & (other == of))
            dist = _tracking.cdist(np.stack(target[rows]), coords[of], metric=dist_metric)
            dist[:, [b[1] for b in other_blocked if b[0] == of]] = np.inf
            for r, d in zip(rows.tolist(), dist, strict=True):
                hit = np.where(d < cutoff)[0]
                candidates[r] = ([(other[r], i) for i in hit], d[hit])
    segments_df[f"{prefix}_candidates"] = candidates
    middle = np.unique([c for cand, _ in candidates for c in cand], axis=0)
    matrix = coo_matrix_builder((n, len(middle)), dtype=np.float32)
    column = {tuple(v): i for i, v in enumerate(middle)}
    index = segments_df.index.to_numpy()
    for r, (cand, cost) in enumerate(candidates):
        matrix[(int(index[r]), [column[tuple(c)] for c in cand])] = cost
    return segments_df, matrix, middle


_FAST_LAPTRACK = None


def _fast_laptrack_class():
    """``laptrack.LapTrack`` whose gap-closing, splitting and merging candidates come from
    :func:`_gap_closing_matrix` and :func:`_splitting_merging_candidates` (same links)."""
    global _FAST_LAPTRACK
    if _FAST_LAPTRACK is None:
        _tracking = _laptrack_tracking()
        LapTrack, ParallelBackend = _tracking.LapTrack, _tracking.ParallelBackend

        class FastLapTrack(LapTrack):
            def _get_gap_closing_matrix(self, segments_df, *, force_end_nodes=[], force_start_nodes=[]):  # noqa: B006
                if not self.gap_closing_cutoff or self.parallel_backend != ParallelBackend.serial:
                    return super()._get_gap_closing_matrix(segments_df, force_end_nodes=force_end_nodes,
                                                           force_start_nodes=force_start_nodes)
                return _gap_closing_matrix(self, segments_df, force_end_nodes=force_end_nodes,
                                           force_start_nodes=force_start_nodes)

            def _get_splitting_merging_candidates(self, segments_df, coords, cutoff, prefix, dist_metric, *,
                                                  force_end_nodes=[], force_start_nodes=[]):  # noqa: B006
                if self.parallel_backend != ParallelBackend.serial:
                    return super()._get_splitting_merging_candidates(
                        segments_df, coords, cutoff, prefix, dist_metric, force_end_nodes=force_end_nodes,
                        force_start_nodes=force_start_nodes)
                return _splitting_merging_candidates(self, segments_df, coords, cutoff, prefix, dist_metric,
                                                     force_end_nodes=force_end_nodes,
                                                     force_start_nodes=force_start_nodes)

        _FAST_LAPTRACK = FastLapTrack
    return _FAST_LAPTRACK


@contextmanager
def _vectorised_laptrack():
    """Let laptrack evaluate :class:`_LinkCost` metrics with :meth:`_LinkCost.pairwise`.

    laptrack calls ``cdist(..., metric=callable)``, which loops over every pair in Python (about
    1.6 M calls on HeLa 02, 18 s); inside this context its module-level ``cdist`` is
    :func:`_fast_cdist` (same values), restored on exit.
    """
    _tracking = _laptrack_tracking()
    original = _tracking.cdist
    _tracking.cdist = _fast_cdist
    try:
        yield
    finally:
        _tracking.cdist = original


def _foreground(frame: np.ndarray, ids: np.ndarray | None = None
                ) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray, np.ndarray]:
    """Foreground pixels of a label frame: per-axis coordinates, labels, sorted ids and each pixel's id index.

    The coordinates are those of :func:`numpy.nonzero` (C order), found as flat indices (about half
    its CPU on a 1024² frame); ``ids`` (the frame's sorted nonzero ids, when already measured) turn the
    labels into indices through a lookup table instead of :func:`numpy.unique`'s sort (the same result).
    """
    flat_frame = frame.reshape(-1)
    flat = np.flatnonzero(flat_frame)
    coords = np.unravel_index(flat, frame.shape)
    la = flat_frame[flat].astype(np.int64)
    if ids is not None and ids.size and la.size and int(ids[-1]) <= max(la.size, 1 << 20):
        lut = np.zeros(int(ids[-1]) + 1, dtype=np.intp)
        lut[ids] = np.arange(ids.size)
        return coords, la, np.asarray(ids, dtype=np.int64), lut[la]
    u, inverse = np.unique(la, return_inverse=True)  # sparse in the ids: O(objects) memory
    return coords, la, u, inverse


def _foreground_in_boxes(frame: np.ndarray, ids: np.ndarray, boxes: np.ndarray
                         ) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_foreground` read inside each nucleus's bounding box: the same pixels, ordered nucleus by nucleus.

    ``ids``: all the frame's nonzero ids, sorted; ``boxes``: their bounding boxes (``lo..., hi...``, ``hi``
    exclusive, the scan's :func:`dynacell.io.scan.frame_objects`), each holding every pixel of its id. Each
    pixel with its id and id index is listed once, as by :func:`_foreground`, but grouped by id (C order
    inside each id) instead of in C order over the frame: :func:`_flow_overlaps` only counts pairs
    (:func:`_count_pairs`, a sort), so the order does not change its result. On a 1024² frame with ~25 nuclei
    it skips the scan of the ~96 % background (tested equal up to the order).
    """
    nd = frame.ndim
    coords: list[list[np.ndarray]] = [[] for _ in range(nd)]
    index: list[np.ndarray] = []
    for k, (label, box) in enumerate(zip(np.asarray(ids).tolist(), np.asarray(boxes).tolist(), strict=True)):
        region = tuple(slice(box[a], box[nd + a]) for a in range(nd))
        local = np.nonzero(frame[region] == label)
        for a in range(nd):
            coords[a].append(local[a] + box[a])
        index.append(np.full(local[0].size, k, dtype=np.intp))
    ids = np.asarray(ids, dtype=np.int64)
    if not index:
        empty = np.zeros(0, dtype=np.intp)
        return tuple(empty for _ in range(nd)), np.zeros(0, np.int64), ids, empty
    inverse = np.concatenate(index)
    return tuple(np.concatenate(c).astype(np.intp, copy=False) for c in coords), ids[inverse], ids, inverse


def _flow_overlaps(labels: Movie, flow_px: dict[tuple[int, int], np.ndarray], max_step: int,
                   progress: bool, objects: dict | None = None) -> dict[tuple[int, int, int, int], int]:
    """Shared pixels ``{(i, la, j, lb): n}`` once every nucleus ``(i, la)`` is moved by ``(j - i) × flow_px``.

    A second streaming pass over the frames; ``flow_px[(i, label)]`` is the per-frame
    displacement ``(z, y, x)`` in pixels. Holds ``max_step + 1`` frames in memory. ``objects``
    (:func:`dynacell.io.scan.frame_objects`) gives each frame's ids when already measured. Each pixel
    lands at ``rint(coordinate + (j − i) × flow)`` per axis, as a flat index into frame ``j``.
    """
    ndim = labels.ndim_spatial
    shared: dict[tuple[int, int, int, int], int] = {}
    window: deque[tuple[int, tuple[np.ndarray, ...], np.ndarray, np.ndarray]] = deque(maxlen=max_step)
    for i in tqdm(range(labels.n_frames), desc="flow-compensated overlaps", unit="frame", disable=not progress):
        frame = np.asarray(labels.data[i])
        flat_frame = frame.reshape(-1)
        strides = np.cumprod((1,) + frame.shape[:0:-1])[::-1]
        for j, coords, la, step in window:
            inside = np.ones(len(la), dtype=bool)
            flat_target = np.zeros(len(la), dtype=np.int64)
            for a in range(ndim):
                target = np.rint(coords[a] + (i - j) * step[:, a])  # the float rounding of before, per axis
                inside &= (target >= 0) & (target < frame.shape[a])
                flat_target += target.astype(np.int64) * np.int64(strides[a])
            lb = np.zeros(len(la), dtype=np.int64)
            lb[inside] = flat_frame[flat_target[inside]]
            hit = lb > 0
            if not hit.any():
                continue
            for a, b, c in zip(*_count_pairs(la[hit], lb[hit]), strict=True):
                shared[(j, int(a), i, int(b))] = int(c)
        t = labels.frame_indices[i]
        found = None if objects is None else objects.get(int(t))
        known = None if found is None else found[0]
        if found is not None and known.size and boxes_cover_little(frame.shape, found[3], known.size):
            fg, la, ids, inverse = _foreground_in_boxes(frame, known, found[3])  # same pixels, per nucleus
        else:
            fg, la, ids, inverse = _foreground(frame, known)
        coords = tuple(c.astype(float) for c in fg)
        flows = np.array([flow_px.get((i, int(lab)), np.zeros(3))[3 - ndim:] for lab in ids]).reshape(len(ids), ndim)
        window.append((i, coords, la, flows[inverse]))
    return shared


def local_flow(frame_of: np.ndarray, pos: np.ndarray, edges: list[tuple[int, int]], k: int,
               default: np.ndarray) -> np.ndarray:
    """Per nucleus, the median displacement per frame of its ``k`` nearest linked neighbours (same frame).

    The local flow field of the linker's later passes (:func:`link_labels`, step 2): robust to one
    wrong link, it follows a colony that grows or an embryo that turns. A neighbour counts when it
    has exactly one child, in the next frame; the nucleus itself is left out.

    Parameters
    ----------
    frame_of : numpy.ndarray
        ``(N,)`` int, the frame index of each nucleus.
    pos : numpy.ndarray
        ``(N, D)`` float, the centroids (any unit; the flow has the same one).
    edges : list of (int, int)
        Links ``(parent row, child row)`` into ``pos``.
    k : int
        Number of neighbours (≥ 1).
    default : numpy.ndarray
        ``(N, D)`` float, the flow of nuclei of frames with fewer than ``min(k, 4) + 1`` linked
        nuclei (with fewer neighbours the median is not robust), e.g. the global drift or zeros.

    Returns
    -------
    numpy.ndarray
        ``(N, D)`` float, the expected displacement per frame of each nucleus.

    Notes
    -----
    Source: dynacell's linker (docs/tracking.md, "local flow"); also used by the state-aware
    repair of misattached daughters (:mod:`dynacell.states.relink`).
    """
    from scipy.spatial import cKDTree

    flow = default.copy()
    n_children = np.bincount([a for a, _ in edges], minlength=len(pos))
    disp: dict[int, np.ndarray] = {}
    for a, b in edges:
        if n_children[a] == 1 and frame_of[b] == frame_of[a] + 1:
            disp[a] = pos[b] - pos[a]
    for i in np.unique(frame_of):
        rows = np.flatnonzero(frame_of == i)
        linked = np.array([r for r in rows if r in disp], dtype=np.int64)
        if len(linked) < min(k, 4) + 1:
            continue
        tree = cKDTree(pos[linked])
        kk = min(k + 1, len(linked))
        _, nn = tree.query(pos[rows], k=kk)
        nn = np.asarray(nn).reshape(len(rows), kk)
        d = np.stack([disp[int(r)] for r in linked])
        # per row: the first k neighbours other than the nucleus itself, in distance order; one median per
        # group of rows with as many neighbours (the same values as a median row by row)
        is_self = linked[nn] == rows[:, None]
        order = np.take_along_axis(nn, np.argsort(is_self, axis=1, kind="stable"), axis=1)
        count = np.minimum(kk - is_self.sum(axis=1), k)
        for c in np.unique(count).tolist():
            group = count == c
            flow[rows[group]] = np.median(d[order[group, :c]], axis=1)
    return flow


def _division_sizes(edges: list[tuple[int, int]], frame_of: np.ndarray, size_px: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, float]:
    """Largest child size and reference size per nucleus in ``edges``, and the allowed division size ratio.

    The child size is NaN without a child; the reference size is the largest size over the
    nucleus' track's last :data:`_DIVISION_MOTHER_FRAMES` frames (:func:`_track_histories`). The
    ratio is the :data:`_DIVISION_GROWTH_QUANTILE` quantile of ``size(child) / size(parent)``
    over one-child links to the next frame (the movie's own growth and segmentation noise between
    frames); NaN (no size penalty) with fewer than :data:`_DIVISION_MIN_LINKS` such links.
    """
    n = len(frame_of)
    n_children = np.bincount([a for a, _ in edges], minlength=n)
    child = np.full(n, np.nan)
    growth = []
    for a, b in edges:
        if frame_of[b] != frame_of[a] + 1:
            continue
        child[a] = np.fmax(child[a], size_px[b])
        if n_children[a] == 1:
            growth.append(size_px[b] / size_px[a])
    ratio = float(np.quantile(growth, _DIVISION_GROWTH_QUANTILE)) if len(growth) >= _DIVISION_MIN_LINKS else np.nan
    rows, _ = _track_histories(frame_of, edges, _DIVISION_MOTHER_FRAMES)
    return child, size_px[rows].max(axis=1), ratio


def _track_histories(frame_of: np.ndarray, edges: list[tuple[int, int]], history: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the last ``history`` positions of every nucleus' track, oldest first, and how many are real.

    A nucleus' predecessor is its parent when that parent has this one child and sits in the
    previous frame (no history crosses a division or a gap). Returns ``rows`` int (N, history),
    the first real row repeated where the track is shorter, and ``n_obs`` int (N,) in 1..history.
    """
    n = len(frame_of)
    n_children = np.bincount([a for a, _ in edges], minlength=n)
    n_parents = np.bincount([b for _, b in edges], minlength=n)
    prev = np.full(n, -1, dtype=np.int64)
    for a, b in edges:
        if n_children[a] == 1 and n_parents[b] == 1 and frame_of[b] == frame_of[a] + 1:
            prev[b] = a
    rows = np.empty((n, history), dtype=np.int64)
    cur = np.arange(n)
    n_obs = np.ones(n, dtype=np.int64)
    rows[:, -1] = cur
    for k in range(2, history + 1):
        up = prev[cur]
        real = up >= 0
        n_obs += real
        cur = np.where(real, up, cur)
        rows[:, -k] = cur
    return rows, n_obs


def _predicted_steps(pos: np.ndarray, frame_of: np.ndarray, edges: list[tuple[int, int]], predictor,
                     ndim: int, flow: np.ndarray) -> np.ndarray:
    """Per nucleus, its flow plus the predicted step of its track *relative to the flow* (``predictor``).

    The track's last positions ``p_k`` are moved into the frame of the flow,
    ``q_k = p_k − Σ_{j<k} flow_j`` (the flow of the track's own earlier nuclei), the predictor
    forecasts ``q`` one frame ahead, and the expected step is ``flow + (q̂ − q_last)``: a track
    that lagged or led its neighbours keeps doing so as far as its history says. Nuclei whose
    track holds one position only (a track start or a daughter) keep ``flow``.
    """
    rows, n_obs = _track_histories(frame_of, edges, predictor.history)
    step = flow.copy()
    moving = n_obs >= 2
    if moving.any():
        r = rows[moving]
        p = pos[r][:, :, 3 - ndim:]
        f = flow[r][:, :, 3 - ndim:]
        real = (r[:, 1:] != r[:, :-1])[..., None]  # padded histories repeat their first row
        q = np.concatenate([p[:, :1], p[:, :1] + np.cumsum(np.diff(p, axis=1) - real * f[:, :-1], axis=1)], axis=1)
        nxt = np.asarray(predictor.predict(q, n_obs[moving]), dtype=float)
        step[moving, 3 - ndim:] = f[:, -1] + nxt - q[:, -1]
    return step


def link_labels(
    labels: Movie,
    *,
    voxel_size_um: Sequence[float] | None = None,
    max_distance_um: float | None = None,
    max_distance_px: float | None = None,
    gap_closing_frames: int = 1,
    division: bool = True,
    overlap: bool = True,
    drift_correction: bool = True,
    flow_neighbors: int = 8,
    motion_prior: str = "flow",
    division_sizes: bool = True,
    mask_flow: bool = True,
    progress: bool = True,
    objects: dict | None = None,
) -> tuple[Lineage, TrackRelabel]:
    """Link the nuclei of a label movie into tracks with divisions (LAP tracking).

    Frames are read one at a time; every nucleus becomes a node ``(t, label)`` with its
    centroid. Nodes are linked by laptrack (Jaqaman et al. 2008): frame-to-frame
    assignment, then a second assignment closing gaps of up to ``gap_closing_frames``
    missing frames and attaching track starts to a mother in the previous frame
    (divisions). Label ids need not be consistent over time.

    The cost of joining nucleus ``a`` (array index ``i``) to nucleus ``b`` (index ``j > i``)
    is the squared *motion-compensated, overlap-weighted distance*
    ``(|p_a + (j − i) v_a − p_b| · (1 − f))²``: ``p`` are centroids (µm, or pixels when the
    voxel size is unknown), ``v_a`` the expected displacement per frame of ``a`` and
    ``f = |a' ∩ b| / max(min(|a|, |b|), 0.25 · max(|a|, |b|))`` the fraction of the smaller mask
    covered once ``a`` is moved by ``(j − i) v_a`` (0 when they do not overlap), the smaller mask
    counted as at least a quarter of the larger (a sliver of a cell leaving the field, covered by
    the neighbour that moves into its place, gets no free link). **At the frame's border** (a
    nucleus touching the lateral Y/X edge, at either end of the candidate), a candidate whose masks
    share no pixel after that move and whose centroids are more than half the movie's median nucleus
    diameter apart is refused, for continuations, gaps and divisions alike: a nucleus leaving the
    field and another entering it, or a neighbour, were joined by the assignment. On windows cut
    from the bacteria-phc 01 ground truth (``benchmarks/track_field.py``; held-out windows chosen
    after the rule) division F1 0.769 → 0.802 (fixed window) and 0.843 → 0.883 (drifting), LNK
    0.859 → 0.878 and 0.874 → 0.917; whole frames of bacteria-phc, GOWT1, HeLa and the mouse
    embryo link exactly as before. A mother–daughter candidate costs
    ``(|p_a + v_a − p_b| · (1 − f)²)²``: a daughter's centroid sits a quarter of the
    mother's length from hers, so overlap weighs more there (on bacteria-phc this halved
    the wrongly attached daughters). From the second pass on, with ``division_sizes``, that
    distance is also multiplied by ``max(1, s / s_max)³``, ``s = (|b| + |c|) / |A|`` where
    ``c`` is ``a``'s largest child in the previous pass and ``|A|`` the largest size of ``a``'s
    track over its last 4 frames (a mitotic nucleus condenses: its last mask is smaller than
    the nucleus that divides): a nucleus that goes on at full size is not the mother of a
    neighbour's daughter (mass is conserved through a division, so for the true mother ``s``
    is about the growth of one frame). ``s_max`` is the movie's
    own 99th percentile of ``|child| / |parent|`` over one-child links of the previous pass
    (growth plus segmentation noise between frames; no penalty with fewer than 20 links).
    Candidates with a distance above ``max_distance_um`` are never joined. ``v_a`` is

    1. the global drift of the frame (phase correlation of the foreground masks,
       :func:`skimage.registration.phase_cross_correlation`) in the first pass, if
       ``drift_correction``, kept only if it brings the centroids of the two frames nearer
       (median nearest-centroid distance, in µm when the voxel size is known); with ``mask_flow``
       (2D), for a frame pair where more than a fifth of the nuclei have no clearly nearest successor
       after that drift (:func:`dynacell.track.maskflow.ambiguous_share`), each nucleus' displacement
       in the optical flow between the two frames' masks (:func:`dynacell.track.maskflow.mask_flow`),
       kept if it brings the nuclei nearer than the drift does. It is also the flow of nuclei in
       frames with too few links for 2.;
    2. then, over up to 5 more passes that stop when the links no longer change, the
       median displacement of the ``flow_neighbors`` nearest nuclei of the same frame in
       the previous pass's links (a local flow field, robust to a wrong link);
    3. with a ``motion_prior`` other than ``"flow"`` (*predictive linking*), in those later
       passes every nucleus whose track in the previous pass's links holds at least two
       positions gets the flow of 1–2 *plus its track's forecast motion relative to that
       flow*: the last positions of its track (up to 5, or the model's history; no history
       crosses a division or a gap), minus the flow accumulated along it, go to
       :func:`dynacell.forecast.positions.motion_predictor` — the track's last step
       (``"velocity"``), a constant-velocity Kalman filter (filterpy) whose noise is fitted
       on the movie's own tracks of the previous pass (``"kalman"``), or a position model
       (``"positions-2d"``, ``"positions-3d"`` or a model folder, loaded through
       :mod:`dynacell.models.runtime`; this imports torch). A track that lagged or led its
       neighbours is expected to keep doing so; track starts and daughters keep the flow.
       With ``flow_neighbors=0`` the forecast is relative to the global drift only.

    Overlap keeps a nucleus and its successor (or a mother and her daughter) together in
    crowded, slowly moving data such as bacterial colonies, where the nearest centroid is
    often a neighbour; for fast motion (no overlap) the cost is the plain distance.
    Measured on Cell Tracking Challenge ground-truth masks with ids permuted per frame
    (``benchmarks/track.py``, seed 0): GOWT1 01 TRA 0.9999; bacteria-phc 01 division F1
    went from 0.19 (centroid distance only) to 0.925 with overlap, drift and local flow, and
    to 0.974 with the division size penalty (HeLa 02 from ``02_ERR_SEG``: 0.841 → 0.869).
    The motion priors other than ``"flow"`` did not beat it on these movies (docs/tracking.md).

    Cost and memory: frames are read once per pass, holding ``gap_closing_frames + 2``
    frames at a time; the cost is evaluated in Python for every pair of nuclei of
    neighbouring frames, so time grows with the square of the nuclei per frame (about
    25 s for 53 frames of up to 358 bacteria on one CPU core).

    Parameters
    ----------
    labels : Movie
        Label movie ``(T, (Z), Y, X)``, integer dtype, 0 = background. ``t`` of the
        nodes is ``labels.frame_indices``; consecutive entries count as consecutive
        frames for linking.
    voxel_size_um : sequence of float, optional
        Voxel size ``((Z,) Y, X)`` in µm. Default: ``labels.voxel_size_um``; if both are
        None, distances are in pixels (logged).
    max_distance_um : float, optional
        Largest overlap-weighted distance in µm for frame-to-frame links, gap closing and
        division; needs a voxel size. Default:
        :func:`default_max_distance` = 1.5 × the larger of the median nucleus diameter
        and the movie's motion scale.
    max_distance_px : float, optional
        The same gate in pixels, for movies whose voxel size is unknown (distances are then in
        pixels). Give at most one of ``max_distance_um`` / ``max_distance_px``.
    gap_closing_frames : int
        Largest number of missing frames a track may jump over (0 = no gap closing).
    division : bool
        Allow a track to split into two daughters.
    overlap : bool
        Weight distances by mask overlap (default). False uses centroid distances only.
    drift_correction : bool
        Compensate the global drift between frames (stage motion) in the first pass.
    flow_neighbors : int
        Number of neighbours whose links give a nucleus' local flow in the later passes;
        0 = no local flow (a single pass unless a ``motion_prior`` asks for more).
    motion_prior : str
        Expected displacement of a nucleus with a track history in the later passes:
        ``"flow"`` (the local flow above, no per-track prediction), ``"velocity"``,
        ``"kalman"``, or a position model name / folder (see 3. above).
    division_sizes : bool
        Penalise division candidates whose children are together too large for the mother
        (see above; default). False = the cost of the mother–daughter distance and overlap only.
    mask_flow : bool
        In 2D, start the first pass from the masks' optical flow where nuclei are ambiguous (see 1.
        above; default). On ground truth with frames removed (``benchmarks/track_missing.py``),
        bacteria-phc 01 at every 2nd frame: link recall 0.755 → 0.888; False = the drift alone.
        Ignored in 3D (tried on the C. elegans lineage drawn as volumes: no gain for 6–14 times the linking
        time; docs/tracking.md).
    progress : bool
        Show a progress bar while reading frames.
    objects : dict, optional
        ``{t: (ids, centroids, sizes, boxes)}`` of ``labels``' frames already measured
        (:func:`dynacell.io.scan.scan_labels` with ``objects=``, as ``dynacell run`` does); frames
        missing from it are measured here and added. Same links either way.

    Returns
    -------
    lineage : Lineage
        Nodes ``(t, label)`` with ``z, y, x`` (pixels), ``diameter_px`` and ``track_id``
        (CTC tracks, see :func:`~dynacell.track.assign_ctc_tracks`); edges parent →
        child. ``lineage.graph.graph["linking"]`` records the parameters used, ``mask_flow`` (``on``,
        ``frame_pairs``) and ``uncertain_frame_pairs``: ``[t, t_next, share]`` of the frame pairs whose links
        are uncertain — at least half of their nuclei still ambiguous after the final pass's motion
        compensation (nearest next-frame nucleus farther than half the second nearest; frames of at least 10
        nuclei); on real colonies and a real embryo's lineage 16–36 % of the links of such pairs were wrong,
        of the others at most 7 % (docs/tracking.md).
    relabel : TrackRelabel
        The mapping ``(t, label) -> track_id``; ``relabel.frames(labels)`` yields the
        masks relabelled by track id for :func:`dynacell.io.write_ctc_result`.

    Raises
    ------
    InvalidInputError
        If ``labels`` is not an integer label movie, holds negative labels, a
        parameter is out of range, or ``motion_prior`` names no forecaster (or a position
        model of another dimensionality).

    Warns
    -----
    UserWarning
        When frames hold no nucleus (they give no nodes).

    Examples
    --------
    A nucleus whose id changes every frame is one track (ASCII, time to the right)::

        t=0 id 1 ── t=1 id 7 ── t=2 id 2

    >>> import numpy as np
    >>> from dynacell.io.movie import Movie
    >>> a = np.zeros((3, 9, 9), np.uint16); a[0, 1:3, 1:3] = 1; a[1, 2:4, 2:4] = 7; a[2, 3:5, 3:5] = 2
    >>> lin, relabel = link_labels(Movie(a, "TYX"), progress=False)
    >>> sorted(lin.graph.edges)
    [((0, 1), (1, 7)), ((1, 7), (2, 2))]
    """
    _check_labels(labels)
    if gap_closing_frames < 0 or int(gap_closing_frames) != gap_closing_frames:
        raise InvalidInputError(f"gap_closing_frames must be an integer >= 0, got {gap_closing_frames!r}")
    for name, value in (("max_distance_um", max_distance_um), ("max_distance_px", max_distance_px)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise InvalidInputError(f"{name} must be a positive number, got {value!r}")
    if flow_neighbors < 0 or int(flow_neighbors) != flow_neighbors:
        raise InvalidInputError(f"flow_neighbors must be an integer >= 0, got {flow_neighbors!r}")
    predictor = None
    if motion_prior != "flow":
        from dynacell.forecast.positions import motion_predictor

        predictor = motion_predictor(str(motion_prior), ndim=labels.ndim_spatial)
    scale, unit = _physical_scale(labels, voxel_size_um)
    if max_distance_um is not None and max_distance_px is not None:
        raise InvalidInputError("give max_distance_um or max_distance_px, not both")
    if max_distance_um is not None and unit != "um":
        raise InvalidInputError(
            f"labels {labels.source or '(array)'}: max_distance_um={max_distance_um} needs a voxel size, which is "
            "unknown (distances are in pixels); give voxel_size_um (--voxel-size-um) or the gate in pixels "
            "(max_distance_px)")
    if max_distance_px is not None and unit == "um":
        raise InvalidInputError(
            f"labels {labels.source or '(array)'}: the voxel size is known, so distances are in µm; give the gate "
            f"as max_distance_um instead of max_distance_px={max_distance_px}")
    given = max_distance_um if max_distance_um is not None else max_distance_px
    nuclei, shared, cum_drift, border_nuclei, mask_flows = _scan(
        labels, overlap_frames=int(gap_closing_frames) + 1 if overlap else 0, drift=drift_correction,
        progress=progress, scale=scale, objects=objects, flow=mask_flow)
    if given is None:
        max_distance = default_max_distance(nuclei, ndim=labels.ndim_spatial, scale=scale)
        logger.info("max linking distance %.3g %s (%.1f x the larger of median nucleus diameter and motion scale)",
                    max_distance, unit, DEFAULT_DISTANCE_FACTOR)
    else:
        max_distance = float(given)

    ndim = labels.ndim_spatial
    lineage = Lineage(n_frames=max(labels.frame_indices) + 1 if labels.n_frames else 0, ndim=ndim,
                      source=labels.source)
    lineage.graph.graph["linking"] = {
        "method": "laptrack LAP (Jaqaman et al. 2008), overlap-weighted distance" if overlap
        else "laptrack LAP (Jaqaman et al. 2008), centroid distance",
        "max_distance": max_distance,
        "distance_unit": unit,
        "gap_closing_frames": int(gap_closing_frames),
        "division": bool(division),
        "drift_correction": bool(drift_correction),
        "flow_neighbors": int(flow_neighbors),
        "motion_prior": "flow" if predictor is None else predictor.name,
        "division_sizes": bool(division_sizes),
        "mask_flow": {"on": bool(mask_flow and ndim == 2), "frame_pairs": len(mask_flows)},
        "uncertain_frame_pairs": [],
        "border_rule": {"rule": (f"a candidate touching the frame's lateral border whose masks share no pixel after motion "
                                 f"compensation and lie more than {_BORDER_MIN_DIAMETERS} median nucleus diameters "
                                 f"apart is refused; overlap fraction over max(smaller mask, "
                                 f"{_OVERLAP_MIN_SIZE_RATIO} x larger)") if overlap else "off (no overlap term)",
                        "nuclei_at_border": len(border_nuclei)},
    }
    for row in nuclei.itertuples(index=False):
        lineage.add_node((int(row.t), int(row.label)), (row.z, row.y, row.x), diameter_px=float(row.diameter_px))
    if len(nuclei):
        index_of = {t: i for i, t in enumerate(labels.frame_indices)}
        nuclei = nuclei.assign(i=nuclei["t"].map(index_of))
        pos = nuclei[["z", "y", "x"]].to_numpy(dtype=float) * scale
        frame_of = nuclei["i"].to_numpy()
        size = dict(zip(zip(frame_of.tolist(), nuclei["label"].tolist(), strict=True),
                        nuclei["size_px"].tolist(), strict=True))
        row_of = {key: r for r, key in enumerate(zip(nuclei["t"].tolist(), nuclei["label"].tolist(), strict=True))}
        per_frame = [np.flatnonzero(frame_of == i) for i in range(labels.n_frames)]
        t_of, label_of = nuclei["t"].to_numpy(np.int64).tolist(), nuclei["label"].to_numpy(np.int64).tolist()
        keys = [[(t_of[r], label_of[r]) for r in rows.tolist()] for rows in per_frame]
        cutoff = max_distance ** 2
        median_diameter = float(np.median(nuclei["diameter_px"].to_numpy()) * scale[1])  # scale: ones in pixels
        border_min_d2 = (_BORDER_MIN_DIAMETERS * median_diameter) ** 2
        step_drift = np.diff(cum_drift, axis=0, append=cum_drift[-1:]) * scale
        flow = step_drift[frame_of]
        for i, moved in mask_flows.items():
            flow[per_frame[i]] = moved * scale
        first_flow = flow
        more = flow_neighbors > 0 or predictor is not None or (division and division_sizes)
        n_passes = _FLOW_PASSES + 1 if more else 1
        edges: list = []
        size_px = nuclei["size_px"].to_numpy(dtype=float)
        child_size = np.full(len(nuclei), np.nan)
        ref_size = size_px
        division_ratio = np.nan
        for p in range(n_passes):
            if overlap and p > 0:
                flow_px = {(int(i), int(lab)): v / scale
                           for i, lab, v in zip(frame_of, nuclei["label"].to_numpy(), flow, strict=True)}
                shared = _flow_overlaps(labels, flow_px, int(gap_closing_frames) + 1, progress, objects)
            fraction = _overlap_fractions(shared, size) if overlap else {}
            border = border_nuclei if overlap else frozenset()
            metric = _link_metric(fraction, border=border, border_min_d2=border_min_d2)
            tracker = _fast_laptrack_class()(
                metric=metric,
                cutoff=cutoff,
                gap_closing_metric=metric,
                gap_closing_cutoff=cutoff if gap_closing_frames > 0 else False,
                gap_closing_max_frame_count=int(gap_closing_frames) + 1,
                splitting_metric=_link_metric(fraction, power=2, division_ratio=division_ratio,
                                              border=border,
                                              border_min_d2=border_min_d2),
                splitting_cutoff=cutoff if division else False,
                merging_cutoff=False,
            )
            table = np.column_stack([frame_of, nuclei["label"].to_numpy(), pos, flow, size_px, child_size,
                                     ref_size]).astype(float)
            with _vectorised_laptrack():
                tree = tracker.predict([table[rows] for rows in per_frame])
            new_edges = sorted((keys[fa][ja], keys[fb][jb]) for (fa, ja), (fb, jb) in tree.edges)
            lineage.graph.graph["linking"]["passes"] = p + 1
            if p > 0 and new_edges == edges:
                logger.debug("links unchanged after pass %d", p + 1)
                break
            edges = new_edges
            if p + 1 < n_passes:
                edge_rows = [(row_of[a], row_of[b]) for a, b in edges]
                if division_sizes:
                    child_size, ref_size, division_ratio = _division_sizes(edge_rows, frame_of, size_px)
                flow = first_flow
                if flow_neighbors > 0:
                    flow = local_flow(frame_of, pos, edge_rows, int(flow_neighbors), flow)
                if predictor is not None:
                    flow = _predicted_steps(pos, frame_of, edge_rows, predictor, ndim, flow)
        for a, b in edges:
            lineage.add_edge(a, b)
        lineage.graph.graph["linking"]["uncertain_frame_pairs"] = _uncertain_pairs(pos, flow, per_frame,
                                                                                  labels.frame_indices)
    relabel = assign_ctc_tracks(lineage)
    logger.info("linked %d nuclei into %d tracks with %d divisions", len(lineage),
                len(set(relabel.track_ids.values())), len(lineage.divisions()))
    return lineage, relabel
