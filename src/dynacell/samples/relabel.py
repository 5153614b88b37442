"""Give full segmentation masks the ids of tracking markers (training masks like inference masks).

CTC tracking ground truth (``NN_GT/TRA/man_trackTTT.tif``) often marks each nucleus with a small
*marker* (HeLa 02: ~7.6 px across for ~28 px nuclei), while at inference the pipeline feeds full
segmentation masks. To train on the mask channel the model will see, each segment of a full
segmentation (e.g. ``02_ERR_SEG`` or ``02_ST/SEG``) receives the track id of the marker inside it:

* a segment overlapping exactly one marker id takes that id;
* a segment overlapping two or more marker ids (merged nuclei) or none (false positive or an
  untracked nucleus) is dropped (set to 0) and counted;
* a marker id found in several segments (split nucleus) goes to the segment it overlaps most;
  the others are dropped and counted; a marker without any segment is counted as ``lost``.

Source: CTC data conventions (Maška et al., Nat. Methods 2023: TRA markers vs SEG masks);
dynacell issue 3 (mask channel differs between training and inference).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import numpy as np

from dynacell.errors import InvalidInputError

__all__ = ["relabel_by_markers", "relabel_movie_by_markers"]

logger = logging.getLogger(__name__)


def relabel_by_markers(segments: np.ndarray, markers: np.ndarray, *, source: str = "") -> tuple[np.ndarray, dict]:
    """Relabel one frame of full segments with the ids of the markers they contain.

    Parameters
    ----------
    segments : numpy.ndarray
        Integer instance image ``((Z), Y, X)`` of full nuclei (0 = background).
    markers : numpy.ndarray
        Integer marker image of the same shape (0 = background); ids are track ids.
    source : str
        Name of the frame for error messages (file, frame).

    Returns
    -------
    relabelled : numpy.ndarray
        Same shape, dtype of ``markers`` (at least uint16 range kept): segments carrying their
        marker's id, dropped segments 0.
    counts : dict
        ``kept``, ``no_marker`` (segments dropped: no marker), ``several_markers`` (segments dropped:
        ≥ 2 marker ids), ``split`` (segments dropped: their marker went to a larger overlap),
        ``lost_markers`` (marker ids with no segment kept).

    Raises
    ------
    InvalidInputError
        If the shapes differ or either image is not integer or holds negative ids.
    """
    seg = np.asarray(segments)
    mk = np.asarray(markers)
    if seg.shape != mk.shape:
        raise InvalidInputError(f"{source}: segments shape {seg.shape} differs from markers shape {mk.shape}; "
                                "give the segmentation and tracking masks of the same frame")
    for name, a in (("segments", seg), ("markers", mk)):
        if not np.issubdtype(a.dtype, np.integer) or (a.size and a.min() < 0):
            raise InvalidInputError(f"{source}: {name} must be non-negative integer ids, got dtype {a.dtype}")
    both = (seg > 0) & (mk > 0)
    pairs = Counter(zip(seg[both].tolist(), mk[both].tolist()))
    per_segment: dict[int, list[int]] = {}
    for (s, m) in pairs:
        per_segment.setdefault(s, []).append(m)
    seg_ids = np.unique(seg[seg > 0]).tolist()
    counts = {"kept": 0, "no_marker": 0, "several_markers": 0, "split": 0, "lost_markers": 0}
    candidate: dict[int, tuple[int, int]] = {}  # marker -> (overlap, segment)
    mapping: dict[int, int] = {}
    for s in seg_ids:
        ms = per_segment.get(s, [])
        if not ms:
            counts["no_marker"] += 1
        elif len(ms) > 1:
            counts["several_markers"] += 1
        else:
            m = ms[0]
            ov = pairs[(s, m)]
            if m in candidate:
                counts["split"] += 1
                if ov > candidate[m][0]:
                    candidate[m] = (ov, s)
            else:
                candidate[m] = (ov, s)
    for m, (_, s) in candidate.items():
        mapping[s] = m
    counts["kept"] = len(mapping)
    marker_ids = set(np.unique(mk[mk > 0]).tolist())
    counts["lost_markers"] = len(marker_ids - set(mapping.values()))
    # lookup sparse in the segment ids (any legal id in O(objects) memory)
    ids, inverse = np.unique(seg, return_inverse=True)
    new_ids = np.array([mapping.get(int(s), 0) for s in ids], dtype=np.int64)
    out_dtype = np.promote_types(mk.dtype, np.uint16)
    return new_ids[inverse].reshape(seg.shape).astype(out_dtype), counts


def relabel_movie_by_markers(segments, markers, *, frames=None, progress: bool = False) -> tuple[Any, dict]:
    """:func:`relabel_by_markers` on every frame that has both a segmentation and markers.

    Parameters
    ----------
    segments : dynacell.io.Movie
        Full segmentation ``(T, (Z), Y, X)`` (e.g. CTC ``02_ERR_SEG``).
    markers : dynacell.io.Movie
        Tracking markers (e.g. ``02_GT/TRA``), same frame shape; frames may be a subset.
    frames : sequence of int, optional
        Frame numbers to relabel (default: every frame present in both).
    progress : bool
        Show a progress bar.

    Returns
    -------
    labels : dynacell.io.Movie
        In-memory label movie (frames present in both, in order), ids = marker (track) ids,
        ``source`` naming both inputs; ``metadata["relabel"]`` holds the counts.
    counts : dict
        Totals of the per-frame counts plus ``frames`` (relabelled frame numbers).

    Raises
    ------
    InvalidInputError
        If no frame is present in both movies or frame shapes differ.
    """
    import dask.array as da
    from tqdm.auto import tqdm

    from dynacell.io.movie import Movie

    if segments.frame_shape != markers.frame_shape:
        raise InvalidInputError(f"segments {segments.source} frame shape {segments.frame_shape} differs from "
                                f"markers {markers.source} frame shape {markers.frame_shape}")
    todo = [int(t) for t in (segments.frame_indices if frames is None else frames)
            if segments.has_frame(int(t)) and markers.has_frame(int(t))]
    if not todo:
        raise InvalidInputError(f"segments {segments.source} and markers {markers.source} share no frame; "
                                "give the segmentation and markers of the same movie")
    total = {"kept": 0, "no_marker": 0, "several_markers": 0, "split": 0, "lost_markers": 0}
    out = []
    for t in tqdm(todo, desc="relabel", unit="frame", disable=not progress):
        lab, c = relabel_by_markers(segments.frame(t), markers.frame(t), source=f"{segments.source} frame {t}")
        out.append(lab)
        for k in total:
            total[k] += c[k]
    total["frames"] = todo
    logger.info("relabelled %s with %s: %s", segments.source, markers.source, total)
    data = da.from_array(np.stack(out), chunks=(1, *out[0].shape))
    movie = Movie(data, segments.axes, voxel_size_um=segments.voxel_size_um,
                  frame_interval_s=segments.frame_interval_s, frame_indices=tuple(todo),
                  source=f"{segments.source} relabelled by {markers.source}",
                  metadata={"format": "relabelled", "relabel": total})
    return movie, total
