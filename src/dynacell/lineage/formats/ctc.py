"""Cell Tracking Challenge lineages: ``man_track.txt`` / ``res_track.txt`` + tracking masks.

Format (CTC naming and file format description, celltrackingchallenge.net): one line per
track ``L B E P`` — track label ``L`` (the value of the nucleus in the masks), first frame
``B``, last frame ``E`` and parent track label ``P`` (0 = no parent). The masks beside the
track file (``man_trackTTT.tif`` in ``NN_GT/TRA``, ``maskTTT.tif`` in ``NN_RES``) hold label
``L`` at every frame ``B..E`` of the track.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import tifffile

from dynacell.errors import FormatError, InvalidInputError
from dynacell.io.ctc import TRACK_FILES, find_track_file, read_ctc_tracks
from dynacell.lineage.formats._common import label_centroids, progress
from dynacell.lineage.graph import Lineage

__all__ = ["read_ctc_lineage", "find_ctc_track_file", "ctc_mask_files", "TRACK_FILES"]

logger = logging.getLogger(__name__)

_MASK_RE = re.compile(r"^(?:man_track|mask)(\d+)\.tiff?$")


def find_ctc_track_file(path: str | Path) -> Path:
    """The track file of a CTC ``TRA`` / ``RES`` folder, or ``path`` itself if it is one.

    Parameters
    ----------
    path : str or Path
        A track file or a folder holding ``man_track.txt`` / ``res_track.txt``.

    Returns
    -------
    Path
        The track file.

    Raises
    ------
    InvalidInputError
        If ``path`` is neither a track file nor a folder holding ``man_track.txt`` or
        ``res_track.txt``.
    """
    return find_track_file(path)


def ctc_mask_files(folder: str | Path) -> dict[int, Path]:
    """Frame number → mask file (``man_trackTTT.tif`` / ``maskTTT.tif``) in a CTC folder.

    Parameters
    ----------
    folder : str or Path
        A CTC ``TRA`` or ``RES`` folder.

    Returns
    -------
    dict of int to Path
        Sorted by frame number.
    """
    out: dict[int, Path] = {}
    for f in Path(folder).iterdir():
        m = _MASK_RE.match(f.name)
        if m:
            out[int(m.group(1))] = f
    return dict(sorted(out.items()))


def read_ctc_lineage(
    path: str | Path,
    *,
    masks: bool = True,
    n_frames: int | None = None,
    show_progress: bool = False,
) -> Lineage:
    """Build a :class:`Lineage` from a CTC track file and, optionally, its tracking masks.

    Parameters
    ----------
    path : str or Path
        A CTC ``TRA`` / ``RES`` folder or its ``man_track.txt`` / ``res_track.txt``.
    masks : bool
        Compute node centroids from the masks beside the track file, one frame at a time
        (streaming; memory of one frame). With ``False`` (fast; e.g. for counting divisions)
        centroids stay NaN. Frames without a mask file (HeLa TRA has masks for some frames
        only) leave their nodes' centroids NaN either way.
    n_frames : int, optional
        Length of the movie. Default: one past the last frame of the track file or of the
        mask files, whichever is larger.
    show_progress : bool
        Show a progress bar over mask frames.

    Returns
    -------
    Lineage
        Nodes ``(t, L)`` for ``t`` in ``[B, E]`` of every track ``L`` with ``track_id = L``
        and ``z, y, x`` in pixels (NaN where unknown); edges between consecutive frames of a
        track and from the parent's last node ``(E_P, P)`` to the child's first node
        ``(B_L, L)``. ``ndim`` is taken from the masks (2 without masks). A division is a
        parent with two or more children, as in the CTC definition.

    Raises
    ------
    FormatError, InvalidInputError
        From :func:`dynacell.io.read_ctc_tracks` (malformed lines, bad labels or frames,
        unknown parents, a daughter that begins before its parent ends: an edge backward in
        time, sizes above the limits of :mod:`dynacell.io.limits` — each naming file and line,
        checked before any node is built); a track ending at or after ``n_frames``; a mask that
        is unreadable or not an integer image (naming file and frame).

    Notes
    -----
    Label ids found in a mask without a node of the lineage at that frame, and lineage nodes
    absent from their frame's mask, are logged as warnings (use
    :func:`dynacell.lineage.check_against_labels` for the full per-frame report).
    """
    track_file = find_ctc_track_file(path)
    df = read_ctc_tracks(track_file)
    mask_files = ctc_mask_files(track_file.parent)
    ndim = 2
    if mask_files:
        first = next(iter(mask_files.values()))
        try:
            with tifffile.TiffFile(first) as tf:
                ndim = 3 if len(tf.series[0].shape) == 3 else 2
        except Exception as exc:  # tifffile raises several types for corrupt files
            raise FormatError(f"{first}: cannot read the TIFF header ({exc}); the mask file is truncated or not a TIFF") from exc
    last = int(df.end.max()) if len(df) else -1
    if n_frames is not None and last >= n_frames:
        row = df.loc[df.end.idxmax()]
        raise InvalidInputError(
            f"{track_file}: track {int(row.label)} ends at frame {last}, beyond the movie's {n_frames} frames "
            f"(0..{n_frames - 1}); pass the track file of this movie"
        )
    if mask_files:
        last = max(last, max(mask_files))
    lineage = Lineage(n_frames=n_frames if n_frames is not None else last + 1, ndim=ndim, source=str(track_file))
    g = lineage.graph
    g.graph.update({"format": "ctc", "track_file": str(track_file)})
    nan = float("nan")
    for r in df.itertuples(index=False):
        label = int(r.label)
        nodes = [(t, label) for t in range(int(r.begin), int(r.end) + 1)]
        g.add_nodes_from(nodes, track_id=label, z=nan, y=nan, x=nan)
        g.add_edges_from(zip(nodes[:-1], nodes[1:]))
    for r in df[df.parent > 0].itertuples(index=False):
        parent_end = int(df.end[df.label == r.parent].iloc[0])
        g.add_edge((parent_end, int(r.parent)), (int(r.begin), int(r.label)))
    if masks and mask_files:
        _centroids_from_masks(lineage, mask_files, show_progress)
    logger.info("read %s: %d tracks, %d nodes, %d divisions", track_file, len(df), len(lineage), len(lineage.divisions()))
    return lineage


def _centroids_from_masks(lineage: Lineage, mask_files: dict[int, Path], show_progress: bool) -> None:
    g = lineage.graph
    by_frame: dict[int, set[int]] = {}
    for t, label in g.nodes:
        by_frame.setdefault(t, set()).add(label)
    extra: dict[int, list[int]] = {}
    missing: dict[int, list[int]] = {}
    for t, f in progress(mask_files.items(), enabled=show_progress, desc="CTC masks", total=len(mask_files)):
        try:
            frame = tifffile.imread(f)
        except Exception as exc:  # tifffile raises several types for corrupt files
            raise FormatError(f"{f} (frame {t}): cannot read the mask ({exc}); the file is truncated or not a TIFF") from exc
        cents = label_centroids(frame, source=f"{f} (frame {t})")
        expected = by_frame.get(t, set())
        for label, c in cents.items():
            if label in expected:
                g.nodes[(t, label)].update(z=c[0], y=c[1], x=c[2])
            else:
                extra.setdefault(t, []).append(label)
        lost = sorted(expected - cents.keys())
        if lost:
            missing[t] = lost
    if extra:
        t0 = min(extra)
        logger.warning(
            "%s: %d label ids in the masks have no track in the track file (first: frame %d, ids %s)",
            lineage.source, sum(map(len, extra.values())), t0, sorted(extra[t0])[:10],
        )
    if missing:
        t0 = min(missing)
        logger.warning(
            "%s: %d lineage nodes are absent from their frame's mask (first: frame %d, ids %s); their centroids stay NaN",
            lineage.source, sum(map(len, missing.values())), t0, missing[t0][:10],
        )
