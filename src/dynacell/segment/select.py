"""Choose and run the segmenter of ``dynacell run`` when no labels are given: :func:`segment_for_run`."""

from __future__ import annotations

from pathlib import Path

from dynacell.io.movie import Movie

__all__ = ["segment_for_run"]


def segment_for_run(images: Movie, segmenter: str, work: str | Path, *, progress: bool = False
                    ) -> tuple[Movie, str, list[str]]:
    """Segment a movie for the main job.

    Parameters
    ----------
    images : Movie
        Intensities ``(T, (Z), Y, X)``.
    segmenter : str
        ``"classical"`` (Gaussian smoothing, Otsu threshold, distance-transform watershed;
        :mod:`dynacell.segment.classical`).
    work : path
        Scratch folder of the run (the labels are written there as zarr, streamed).
    progress : bool
        Progress bar.

    Returns
    -------
    labels : Movie
        Integer labels ``(T, (Z), Y, X)``.
    name : str
        The segmenter used (recorded in ``run.json`` and the report).
    notes : list of str
        Warnings for the report.

    Raises
    ------
    dynacell.errors.InvalidInputError
        For an unknown segmenter name.
    """
    from dynacell.errors import InvalidInputError

    if segmenter != "classical":
        raise InvalidInputError(f"--segmenter {segmenter!r} is unknown; available: classical")
    from dynacell.segment.classical import METHOD_NAME, segment_movie

    labels = segment_movie(images, Path(work) / "labels.zarr", progress=progress)
    notes = ["Labels come from the CLASSICAL fallback segmenter (Gaussian smoothing, Otsu threshold, "
             "distance-transform watershed), not from a trained model."]
    return labels, METHOD_NAME, notes
