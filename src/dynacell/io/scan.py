"""Check a label movie against its image movie in one pass: :func:`scan_labels`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie

__all__ = ["scan_labels", "frame_objects", "leave_out_empty_frames"]


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
        If the frame is not an integer image or holds negative ids (when computed).
    """
    if objects is not None and int(t) in objects:
        return objects[int(t)]
    from dynacell.io.objects import nucleus_centroids

    found = nucleus_centroids(frame, source=source, return_sizes=True, return_boxes=True)
    if objects is not None:
        objects[int(t)] = found
    return found


def scan_labels(images: Movie, labels: Movie, *, progress: bool = True,
                measure: list | None = None, objects: dict | None = None,
                empty: list | None = None) -> dict[int, np.ndarray]:
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

    Returns
    -------
    dict of int to numpy.ndarray
        Frame number -> sorted label ids (int64, background 0 excluded).

    Raises
    ------
    InvalidInputError
        If the spatial shape differs, a frame of the movie has no label image (or the labels
        have frames the movie lacks), or a label frame holds no nucleus (with ``empty``: every label
        frame), or, with ``measure``, a negative id.
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
        raise InvalidInputError(
            f"labels {labels.source}: {what} (movie {images.source} has {images.n_frames} frames "
            f"{images.frame_indices[0]}..{images.frame_indices[-1]}); give one label image per movie frame"
        )
    ids: dict[int, np.ndarray] = {}
    rows = []
    for t in tqdm(images.frame_indices, desc="check labels", disable=not progress):
        frame = labels.frame(t)
        if measure is not None or objects is not None:  # one pass gives the ids too (sorted, background excluded)
            u, cen, size, _ = frame_objects(frame, t, {} if objects is None else objects,
                                            source=f"{labels.source} frame {t}")
        else:
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


def leave_out_empty_frames(images: Movie, labels: Movie, empty: list[int], *, what: str = "the labels"
                           ) -> tuple[Movie, Movie, list[str]]:
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
        If every frame is empty.
    """
    if not empty:
        return images, labels, []
    import logging

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
    logging.getLogger(__name__).warning(note)
    return select_frames(images, keep), select_frames(labels, keep), [note]
