"""Check a label movie against its image movie in one pass: :func:`scan_labels`; the run's label checks and
notes (empty frames left out, two nuclei under one id, a background that carries an id): :func:`scan_run_labels`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie

logger = logging.getLogger(__name__)

__all__ = ["scan_labels", "frame_objects", "leave_out_empty_frames", "separated_ids", "shared_id_notes", "RunLabels",
           "scan_run_labels"]


def frame_objects(frame: np.ndarray, t: int, objects: dict | None = None, *, source: str = ""
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ids, centroids, sizes and bounding boxes of the nuclei of one label frame, computed once per frame.

    Parameters
    ----------
    frame : numpy.ndarray, integer, shape ``([Z,] Y, X)``
        Label image of frame ``t`` (0 = background).
    t : int
        Frame number.
    objects : dict, optional
        ``{t: (ids, centroids, sizes, boxes)}`` of the same label movie, as filled by
        :func:`scan_labels` (``objects=``): frame ``t``'s entry is returned when present, otherwise
        computed and stored in it. None: computed, not stored.
    source : str
        File and frame, for error messages.

    Returns
    -------
    ids : numpy.ndarray, int64, shape (N,)
    centroids : numpy.ndarray, float64, shape (N, 3)
        ``(z, y, x)`` in pixels.
    sizes : numpy.ndarray, int64, shape (N,)
    boxes : numpy.ndarray, int64, shape (N, 2 * ndim)
        Exactly :func:`dynacell.io.objects.nucleus_centroids` with ``return_sizes`` and
        ``return_boxes``: the label scan, the linker and the crops of ``dynacell run`` share one
        pass over each label frame instead of one each.

    Raises
    ------
    InvalidInputError
        If the frame is not an integer image, holds negative ids, or is an intensity image, not a
        label image (:func:`_check_flat`) (when computed).
    """
    if objects is not None and int(t) in objects:
        return objects[int(t)]
    from dynacell.io.objects import nucleus_centroids

    _check_flat(frame, source or f"frame {t}")
    found = nucleus_centroids(frame, source=source, return_sizes=True, return_boxes=True)
    if objects is not None:
        objects[int(t)] = found
    return found


def scan_labels(images: Movie, labels: Movie, *, progress: bool = True,
                measure: list | None = None, objects: dict | None = None,
                empty: list | None = None, shared: list | None = None) -> dict[int, np.ndarray]:
    """Check a label movie against its image movie and list the label ids of every frame.

    Parameters
    ----------
    images : Movie
        Intensities ``(T, (Z), Y, X)``.
    labels : Movie
        Integer labels, expected with the same frame numbers and frame shape.
    progress : bool
        Show a progress bar.
    measure : list, optional
        When given, a DataFrame ``t, label, z, y, x, size_px`` (centroids in pixels) of every
        nucleus is appended to it (the same single pass over the labels).
    objects : dict, optional
        When given, filled with ``{t: (ids, centroids, sizes, boxes)}`` of every frame
        (:func:`frame_objects`), to hand to :func:`dynacell.track.link_labels` and
        :func:`dynacell.states.classify.classify_movie` (``objects=``) so that they do not measure the
        frames again. Implies the measuring pass (as with ``measure``).
    empty : list, optional
        When given, the numbers of label frames without any nucleus are appended to it and those
        frames are left out of the result (no ids, no rows, no ``objects`` entry) instead of being an
        error; :func:`leave_out_empty_frames` then drops them from both movies.
    shared : list, optional
        When given (with ``measure`` or ``objects``), ``(t, id, n_pieces)`` of every id whose pixels form
        separate pieces far apart (:func:`separated_ids`: two nuclei sharing one id) is appended to it;
        :func:`shared_id_notes` words them for the report.

    Returns
    -------
    dict of int to numpy.ndarray
        Frame number -> sorted label ids (int64, background 0 excluded).

    Raises
    ------
    InvalidInputError
        If the spatial shape differs, a frame of the movie has no label image (or the labels
        have frames the movie lacks), or a label frame holds no nucleus (with ``empty``: every label
        frame), or, with ``measure`` or ``objects``, a negative id or an id that is the background
        (:func:`_check_background`), or a frame that is an intensity image, not a label image
        (:func:`_check_flat`).
    """
    from tqdm.auto import tqdm

    if labels.frame_shape != images.frame_shape or labels.axes != images.axes:
        raise InvalidInputError(
            f"labels {labels.source}: frame shape {labels.frame_shape} ({labels.axes}) does not match the movie "
            f"{images.source} frame shape {images.frame_shape} ({images.axes}); give labels of the same movie"
        )
    missing = [t for t in images.frame_indices if not labels.has_frame(t)]
    extra = [t for t in labels.frame_indices if not images.has_frame(t)]
    if missing or extra:
        what = (f"no label image for frame(s) {missing[:10]}" if missing else "") + (
            ("; " if missing else "") + f"label frame(s) {extra[:10]} not in the movie" if extra else "")
        shift = labels.frame_indices[0] - images.frame_indices[0]
        same_count = labels.n_frames == images.n_frames and shift != 0
        if same_count and all(b - a == shift for a, b in zip(images.frame_indices, labels.frame_indices)):
            what += (f" — the label files are numbered {shift:+d} from the movie's (labels "
                     f"{labels.frame_indices[0]}..{labels.frame_indices[-1]}, movie {images.frame_indices[0]}.."
                     f"{images.frame_indices[-1]}; one tool counts from 0, the other from 1?): rename them to the "
                     "movie's frame numbers")
        raise InvalidInputError(
            f"labels {labels.source}: {what} (movie {images.source} has {images.n_frames} frames "
            f"{images.frame_indices[0]}..{images.frame_indices[-1]}); give one label image per movie frame"
        )
    ids: dict[int, np.ndarray] = {}
    rows = []
    measuring = measure is not None or objects is not None
    for t in tqdm(images.frame_indices, desc="check labels", disable=not progress):
        frame = labels.frame(t)
        if measuring:  # one pass gives the ids too (sorted, background excluded)
            u, cen, size, box = frame_objects(frame, t, {} if objects is None else objects,
                                              source=f"labels {labels.source}: frame {t}")
        else:
            _check_flat(frame, f"labels {labels.source}: frame {t}")
            u = np.unique(frame)
            u = u[u > 0]
        u = u.astype(np.int64)
        if u.size == 0 and empty is not None:
            empty.append(int(t))
            if objects is not None:
                objects.pop(int(t), None)
            continue
        if u.size == 0:
            raise InvalidInputError(
                f"labels {labels.source}: frame {t} holds no nucleus (empty label image); every frame needs at "
                f"least one labelled nucleus — fix the segmentation or drop the frame from the movie"
            )
        ids[int(t)] = u
        if measuring:  # the checks that need each nucleus's size and box
            _check_background(frame, u, size, box, f"labels {labels.source}: frame {t}")
            if shared is not None:
                shared.extend((int(t), i, n) for i, n in separated_ids(frame, u, size, box))
        if measure is not None:
            rows.append((np.full(u.size, int(t), dtype=np.int64), u, cen, size))
    if not ids:
        raise InvalidInputError(
            f"labels {labels.source}: no frame holds a nucleus (all {labels.n_frames} label images are empty); "
            f"check the segmentation or the labels given")
    if measure is not None:  # one DataFrame at the end (one per frame cost more than measuring the frame)
        t_all, u_all, cen_all, size_all = (np.concatenate(c) for c in zip(*rows, strict=True))
        measure.append(pd.DataFrame({"t": t_all, "label": u_all, "z": cen_all[:, 0], "y": cen_all[:, 1],
                                     "x": cen_all[:, 2], "size_px": size_all}))
    return ids


def leave_out_empty_frames(images: Movie, labels: Movie, empty: list[int], *, what: str = "the labels",
                           lineage_given: bool = False) -> tuple[Movie, Movie, list[str]]:
    """Drop the frames without any nucleus from a job, as if their files were missing.

    A frame where nothing was segmented (a blank or badly exposed frame, or a frame before any cell
    entered the field) would otherwise stop the whole run. Left out, the linker bridges it as a missing
    frame (nuclei linked across it as if the frames were consecutive; a track crossing it is split,
    ``end_reason`` ``gap``) and the states use the frames on either side of it.

    Parameters
    ----------
    images, labels : Movie
        The image movie and its label movie ``(T, (Z), Y, X)``, same frame numbers.
    empty : list of int
        Frame numbers whose label image holds no nucleus (:func:`scan_labels` with ``empty=``).
    what : str
        Where the labels came from, for the note (e.g. ``"the segmenter nuclei-seg-2d-fast"``).
    lineage_given : bool
        A lineage was given with the labels (``--lineage``): its nodes in those frames would be lost, so
        empty frames are then an error.

    Returns
    -------
    images, labels : Movie
        Both restricted to the other frames (:func:`dynacell.io.movie.select_frames`); unchanged when
        ``empty`` is empty.
    notes : list of str
        One note for ``run.json`` and the report naming the frames (also logged as a warning), or none.

    Raises
    ------
    InvalidInputError
        If every frame is empty, or a lineage was given.
    """
    if not empty:
        return images, labels, []
    if lineage_given:
        raise InvalidInputError(
            f"labels {labels.source}: frame(s) {sorted(empty)[:10]} hold no nucleus (empty label image), but a lineage "
            f"was given: its nuclei in those frames would be lost — give the label images of those frames")
    from dynacell.io.movie import select_frames

    gone = set(int(t) for t in empty)
    keep = [t for t in images.frame_indices if int(t) not in gone]
    if not keep:
        raise InvalidInputError(f"labels {labels.source}: no frame holds a nucleus; check the segmentation or the "
                                f"labels given")
    shown = ", ".join(str(t) for t in sorted(gone)[:10]) + (", ..." if len(gone) > 10 else "")
    note = (f"{len(gone)} frame(s) of {images.n_frames} hold no nucleus in {what} (frame number(s) {shown}): they are "
            "left out of linking and state calls as missing frames — nuclei are linked across them as if the frames "
            "were consecutive, a track crossing them is split there (end_reason 'gap') — and the CTC masks of those "
            "frames are empty. Look at those frames: a blank or badly exposed image, or nuclei the segmenter missed.")
    logger.warning(note)
    return select_frames(images, keep), select_frames(labels, keep), [note]


#: An id is looked at for separate pieces when its bounding box is filled less than this ...
_SHARED_MAX_FILL = 0.2
#: ... and spans more than this many typical nucleus diameters (``median size ** (1 / ndim)``) in Y or X.
_SHARED_MIN_SPAN = 3.0
#: A second piece smaller than this share of the median nucleus size is a speck, not a second nucleus.
_SHARED_MIN_PIECE = 0.1


def separated_ids(frame: np.ndarray, ids: np.ndarray, sizes: np.ndarray, boxes: np.ndarray
                  ) -> list[tuple[int, int]]:
    """Ids whose pixels form separate pieces spread over several nucleus diameters: two nuclei sharing one id.

    This happens when labels were saved as 8-bit images with more than 255 nuclei (ids wrap around: 257
    becomes 1), or when masks from different tiles or tools were merged without relabelling. Each such id
    is then measured as one "nucleus" between the pieces and links, sizes and states go wrong silently.
    Only ids whose bounding box is sparse (filled < 20 %) and wide (> 3 typical nucleus diameters in Y or
    X) are examined, so the check costs one connected-component pass over a few boxes per frame; a single
    long or bent nucleus (a rod about to divide) is one piece and is not reported.

    Parameters
    ----------
    frame : numpy.ndarray, integer, shape ``([Z,] Y, X)``
        One label image (0 = background).
    ids, sizes, boxes : numpy.ndarray
        Its ids ``(N,)``, pixel counts ``(N,)`` and bounding boxes ``(N, 2 * ndim)`` (``lo..., hi...``, ``hi``
        exclusive), as :func:`frame_objects` returns them.

    Returns
    -------
    list of (int, int)
        ``(id, number of pieces)`` for every id with at least two pieces (6-/4-connected) of which the
        second largest holds at least 10 % of the median nucleus size.

    Examples
    --------
    >>> f = np.zeros((40, 40), np.uint8); f[2:6, 2:6] = 1; f[30:34, 30:34] = 1; f[10:14, 20:24] = 2
    >>> ids, _, sizes, boxes = frame_objects(f, 0)
    >>> separated_ids(f, ids, sizes, boxes)
    [(1, 2)]
    """
    from scipy import ndimage

    if len(ids) == 0:
        return []
    nd = frame.ndim
    ext = (boxes[:, nd:] - boxes[:, :nd]).astype(np.float64)
    typical = float(np.median(sizes))
    span = ext[:, -2:].max(axis=1)
    candidates = np.flatnonzero((sizes / ext.prod(axis=1) < _SHARED_MAX_FILL)
                                & (span > _SHARED_MIN_SPAN * typical ** (1.0 / nd)))
    out = []
    for k in candidates.tolist():
        box = tuple(slice(int(a), int(b)) for a, b in zip(boxes[k, :nd], boxes[k, nd:]))
        pieces, n = ndimage.label(frame[box] == ids[k])
        if n < 2:
            continue
        counts = np.sort(np.bincount(pieces.ravel())[1:])
        if counts[-2] >= _SHARED_MIN_PIECE * typical:
            out.append((int(ids[k]), int(n)))
    return out


def shared_id_notes(labels: Movie, shared: list[tuple[int, int, int]]) -> list[str]:
    """A report note for ids made of separate pieces (:func:`separated_ids`), naming the likely cause.

    Parameters
    ----------
    labels : Movie
        The label movie (its dtype and source are named).
    shared : list of (int, int, int)
        ``(t, id, n_pieces)`` collected by :func:`scan_labels` (``shared=``).

    Returns
    -------
    list of str
        One note (also logged as a warning), or none when ``shared`` is empty.
    """
    if not shared:
        return []

    frames = sorted({t for t, _, _ in shared})
    shown = "; ".join(f"frame {t} id {i}: {n} pieces" for t, i, n in shared[:3])
    cause = (" The labels are 8-bit: with more than 255 nuclei in a frame the ids wrap around (id 257 becomes 1, "
             "id 256 becomes background) — save them as 16-bit images."
             if np.dtype(labels.dtype).itemsize == 1 else
             " Were masks of several tiles, channels or tools merged without giving each nucleus its own id?")
    note = (f"{len(shared)} label id(s) in {len(frames)} frame(s) of {labels.source or 'the labels'} are made of "
            f"separate pieces far apart ({shown}): each is measured, linked and classified as one nucleus "
            f"between its pieces, so links, sizes and states of those nuclei are wrong.{cause} Give each nucleus "
            "its own id (e.g. relabel connected pieces) and run again.")
    logger.warning(note)
    return [note]


#: Share of neighbouring pixels along X that differ above which a "label image" is an intensity image. Masks
#: are flat (one id per nucleus, 0 outside): every real label set in ../shared/data stays at or below 0.03 along
#: X and Y together in 2D and 0.06 for small 3D nuclei (StarDist 3D); their images are at 0.50 (GOWT1) to 0.98.
LABEL_EDGE_SHARE_MAX = 0.25


def _check_flat(frame: np.ndarray, where: str) -> None:
    """Refuse an intensity image given as labels (a movie folder given as ``--labels``, a mixed-up file).

    Read as ids, every grey level of an image becomes a "nucleus" scattered over the frame: thousands of
    them, whose linking can run for hours. A label image is flat: its neighbouring pixels along X differ
    only at nucleus outlines (:data:`LABEL_EDGE_SHARE_MAX`).

    Raises
    ------
    InvalidInputError
        Naming the frame and the share of neighbouring pixels that differ.
    """
    if frame.shape[-1] < 2 or frame.size < 64:
        return
    share = float(np.count_nonzero(frame[..., 1:] != frame[..., :-1])) / (frame.size - frame.size // frame.shape[-1])
    if share > LABEL_EDGE_SHARE_MAX:
        raise InvalidInputError(
            f"{where}: {share:.0%} of neighbouring pixels differ, as in an intensity image; a label image is flat "
            f"(one id per nucleus, 0 outside; at most {LABEL_EDGE_SHARE_MAX:.0%}). Give the masks as --labels (for "
            "Cellpose, its *_cp_masks files), or leave out --labels to segment the movie")


def _check_background(frame: np.ndarray, ids: np.ndarray, sizes: np.ndarray, boxes: np.ndarray, where: str) -> None:
    """Refuse a label image whose background carries an id (e.g. 65535 or 255 instead of 0).

    An id covering more than half of a frame that holds other nuclei, and touching all four lateral edges,
    is the background: measured as one giant nucleus it would wreck the links and states of the whole frame.

    Raises
    ------
    InvalidInputError
        Naming the frame, the id and its share of the frame.
    """
    if len(ids) < 2:
        return
    k = int(np.argmax(sizes))
    share = float(sizes[k]) / frame.size
    nd = frame.ndim
    lo, hi = boxes[k, nd - 2:nd], boxes[k, 2 * nd - 2:]
    if share > 0.5 and not lo.any() and tuple(int(v) for v in hi) == frame.shape[-2:]:
        raise InvalidInputError(
            f"{where}: label {int(ids[k])} covers {share:.0%} of the frame and touches all four edges — it looks "
            f"like the background; dynacell needs background = 0 (set that value to 0 in every label image; if "
            f"a segmenter made these labels, it took the background for a nucleus: try another --segmenter or give "
            f"masks with --labels)")


@dataclass
class RunLabels:
    """What the label scan of ``dynacell run`` hands to the linker, the crops and the writers.

    Attributes
    ----------
    images, labels : Movie
        The movies the job works on: the frames without any nucleus left out (:func:`leave_out_empty_frames`).
    ids : dict of int to numpy.ndarray
        Frame number -> sorted label ids (int64), for the frames kept.
    nuclei : pandas.DataFrame
        ``t, label, z, y, x, size_px`` of every nucleus (centroids in pixels).
    objects : dict
        ``{t: (ids, centroids, sizes, boxes)}`` per frame (:func:`frame_objects`).
    notes : list of str
        Notes for ``run.json`` and the report: ids shared by separate nuclei, an implausible voxel size, frames
        left out.
    """

    images: Movie
    labels: Movie
    ids: dict
    nuclei: pd.DataFrame
    objects: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def scan_run_labels(images: Movie, labels: Movie, *, progress: bool = True, what: str = "the labels",
                    lineage_given: bool = False) -> RunLabels:
    """The label checks of ``dynacell run``, in one pass over the label frames.

    :func:`scan_labels` (same frames and grid, background 0, every nucleus measured once), then the notes of
    :func:`dynacell.io.checks.reading_notes`, :func:`shared_id_notes` and
    :func:`dynacell.io.checks.nucleus_size_notes`, then
    :func:`leave_out_empty_frames`.

    Parameters
    ----------
    images, labels : Movie
        The image movie and its integer label movie ``(T, (Z), Y, X)``.
    progress : bool
        Show a progress bar.
    what : str
        Where the labels came from, for the notes.
    lineage_given : bool
        A lineage was given: empty label frames are then an error.

    Returns
    -------
    RunLabels

    Raises
    ------
    InvalidInputError
        As :func:`scan_labels` and :func:`leave_out_empty_frames`.
    """
    from dynacell.io.checks import nucleus_size_notes, reading_notes

    measured, objects, empty, shared = [], {}, [], []
    ids = scan_labels(images, labels, progress=progress, measure=measured, objects=objects, empty=empty,
                      shared=shared)
    notes = reading_notes(labels)  # a folder of images and masks side by side: which series was read
    notes += shared_id_notes(labels, shared)  # two nuclei under one id (8-bit labels wrapped, merged masks)
    notes += nucleus_size_notes(measured[0]["size_px"], images.voxel_size_um, images.source)  # nm for µm?
    kept_images, kept_labels, more = leave_out_empty_frames(images, labels, empty, what=what,
                                                            lineage_given=lineage_given)
    return RunLabels(kept_images, kept_labels, ids, measured[0], objects, notes + more)
