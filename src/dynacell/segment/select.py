"""The labels of ``dynacell run``: given (:func:`labels_for_run`) or made by the segmenter it chooses
(:func:`segment_for_run`)."""

from __future__ import annotations

from pathlib import Path

from dynacell.io.movie import Movie, with_physical_sizes

__all__ = ["DEFAULT_2D", "DEFAULT_2D_PHASE_CONTRAST", "DEFAULT_3D", "auto_segmenter", "labels_for_run",
           "segment_for_run"]

#: Segmenter of 2D movies when ``dynacell run`` gets no labels.
DEFAULT_2D = "nuclei-seg-2d-fast"

#: Segmenter of 2D phase-contrast movies (dark cells on a grey background) when ``dynacell run`` gets no labels.
DEFAULT_2D_PHASE_CONTRAST = "cells-seg-2d-phc"

#: Segmenter of 3D movies when ``dynacell run`` gets no labels (see :func:`segment_for_run`).
DEFAULT_3D = "nuclei-seg-3d"


def auto_segmenter(images: Movie) -> str:
    """The shipped segmenter ``--segmenter auto`` picks for a movie.

    Parameters
    ----------
    images : Movie
        Intensities ``(T, (Z), Y, X)``; only the first frame is read.

    Returns
    -------
    str
        :data:`DEFAULT_3D` for 3D movies; for 2D movies :data:`DEFAULT_2D_PHASE_CONTRAST` when the first
        frame has the grey background of phase contrast (:func:`dynacell.segment.predict.looks_like_phase_contrast`)
        and that model is shipped, else :data:`DEFAULT_2D`.

    Raises
    ------
    dynacell.errors.InvalidInputError
        If the movie has no frame.
    """
    from dynacell.errors import InvalidInputError

    if images.ndim_spatial == 3:
        return DEFAULT_3D
    if images.n_frames == 0:
        raise InvalidInputError(f"movie {images.source}: no frame to segment")
    from dynacell.models.runtime import shipped_models
    from dynacell.segment.predict import PRETRAINED_DIR, looks_like_phase_contrast

    if DEFAULT_2D_PHASE_CONTRAST in shipped_models(PRETRAINED_DIR) and \
            looks_like_phase_contrast(images.frame(images.frame_indices[0])):
        return DEFAULT_2D_PHASE_CONTRAST
    return DEFAULT_2D


def segment_for_run(images: Movie, segmenter: str, work: str | Path, *, progress: bool = False,
                    test_time_flips: int | None = None) -> tuple[Movie, str, list[str]]:
    """Segment a movie for the main job.

    Parameters
    ----------
    images : Movie
        Intensities ``(T, (Z), Y, X)``.
    segmenter : str
        ``"auto"`` (the default of ``dynacell run``): the shipped learned model of the movie's
        dimension and modality (:func:`auto_segmenter`): :data:`DEFAULT_2D` for 2D fluorescence movies,
        :data:`DEFAULT_2D_PHASE_CONTRAST` for 2D movies with a grey background (phase contrast), and
        :data:`DEFAULT_3D` for 3D movies (on the
        held-out real 3D data it has the better SEG on both sets, and where the classical segmenter
        keeps the better object F1 — StarDist 3D, 0.57 vs 0.49 — the learned one over-splits
        moderately, while on the light-sheet embryo the classical one returns thousands of specks;
        ``docs/segmentation.md``); ``"classical"`` (Gaussian smoothing, Otsu threshold, distance-transform watershed;
        :mod:`dynacell.segment.classical`), or a learned model: a shipped name
        (``"nuclei-seg-2d"``, ``"nuclei-seg-3d"``) or a model folder (:func:`dynacell.segment.predict.segment_movie`:
        nucleus size estimated from the first frame, sanity-check warnings become notes).
    work : path
        Scratch folder of the run (the labels are written there as zarr, streamed).
    progress : bool
        Progress bar.
    test_time_flips : int, optional
        Flipped copies a learned model averages (1, 2 or 4; :meth:`dynacell.segment.predict.Segmenter.predict_maps`).
        Default: the model card's (1 for ``nuclei-seg-2d-fast``; 4 for ``nuclei-seg-2d``: about 2.5× the CPU time of 1). Ignored by the
        classical segmenter.

    Returns
    -------
    labels : Movie
        Integer labels ``(T, (Z), Y, X)``.
    name : str
        The segmenter used (recorded in ``run.json`` and the report).
    notes : list of str
        Warnings for the report (a 3D model on a movie without a voxel size: a note saying that it
        assumed cubic voxels).

    Raises
    ------
    dynacell.errors.InvalidInputError
        For an unknown segmenter name.
    """
    from dynacell.errors import InvalidInputError

    if segmenter == "auto":
        # held-out real frames (docs/segmentation.md). 2D: nuclei-seg-2d-fast (the half-width student of
        # nuclei-seg-2d, 1 flip) beats the classical segmenter everywhere and matches its teacher at 4-9x less CPU
        # (test SEG HeLa 02 0.944 vs 0.938 vs classical 0.636, GOWT1 0.890 vs 0.883 vs 0.247, DSB 0.758 vs
        # 0.752 vs 0.632); nuclei-seg-2d stays available by name. 3D: nuclei-seg-3d has the better SEG on both real
        # sets (light-sheet mouse 8-cell 0.59 vs 0.17 against the labels as given, 0.77 vs 0.18 against the labels
        # moved onto the signal; StarDist 3D right half 0.48 vs 0.39). The classical segmenter keeps the better
        # object F1@0.5 on StarDist only (0.57 vs 0.49: the learned one splits 32 nuclei into 54 objects), but on
        # the embryo it is absurd (about 4,900 specks per frame for 8 nuclei, F1 0.00 vs 0.92). A user expects the
        # trained model by default in 3D as in 2D; its worst case is a moderate over-split, the classical one's
        # a nonsense segmentation.
        # 2D phase contrast (a grey background): cells-seg-2d-phc, trained on phase-contrast bacteria, where the
        # fluorescence models find nothing (bacteria-phc test frames: SEG 0.00; docs/segmentation.md)
        segmenter = auto_segmenter(images)
    if segmenter != "classical":
        from dynacell.models.runtime import shipped_models
        from dynacell.segment.predict import PRETRAINED_DIR, Segmenter, searches_size
        from dynacell.segment.predict import segment_movie as learned_movie

        shipped = shipped_models(PRETRAINED_DIR)
        if not (Path(segmenter).is_dir() or segmenter in shipped):
            raise InvalidInputError(f"--segmenter {segmenter!r} is unknown; available: classical, "
                                    f"{', '.join(shipped)} or a model folder")
        model = Segmenter.load(segmenter).with_test_time_flips(test_time_flips)
        labels = learned_movie(images, model, store=Path(work) / "labels.zarr", progress=progress)
        name = labels.metadata["segmenter"]
        n_flips = model.card.test_time_flips
        how = ("read by the model-based size search (the size the network is most confident at)"
               if searches_size(model, images.ndim_spatial) else "estimated")
        notes = [(f"Labels come from the learned segmenter {name} (nucleus diameter "
                  f"{labels.metadata['nucleus_diameter_px'] or float('nan'):.1f} px {how} from the first frame; "
                  f"maps averaged over {n_flips} flipped cop{'y' if n_flips == 1 else 'ies'}).")]
        if model.card.ndim == 3 and images.ndim_spatial == 3 and images.voxel_size_um is None:
            notes.append(f"Voxel size unknown: {name} treated the voxels as cubes (z step = pixel size) and "
                         "distances are in voxels. Most 3D stacks have a larger z step: give it with "
                         "--voxel-size-um Z Y X (µm), or the nuclei are cut wrongly in z.")
        notes += [f"Segmentation check: {w}" for w in labels.metadata["warnings"]]
        return labels, name, notes
    from dynacell.segment.classical import METHOD_NAME, segment_movie

    labels = segment_movie(images, Path(work) / "labels.zarr", progress=progress)
    notes = [("Labels come from the CLASSICAL segmenter (Gaussian smoothing, Otsu threshold, "
              "distance-transform watershed), not from a trained model.")]
    return labels, METHOD_NAME, notes


def labels_for_run(images: Movie, labels: Movie | str | Path | None, *, segmenter: str, work: str | Path,
                   progress: bool = False, test_time_flips: int | None = None) -> tuple[Movie, str, list[str]]:
    """The label movie of the main job: the given labels, or the movie segmented.

    Parameters
    ----------
    images : Movie
        Intensities ``(T, (Z), Y, X)``.
    labels : Movie, str, Path or None
        Given labels (an opened movie or a path for :func:`dynacell.io.open_labels`); None =
        segment ``images`` with :func:`segment_for_run`.
    segmenter, work, progress, test_time_flips
        As :func:`segment_for_run` (used only when ``labels`` is None).

    Returns
    -------
    labels : Movie
        Integer labels ``(T, (Z), Y, X)``; when their voxel size is unknown they take the images'
        (µm).
    name : str
        The segmenter used, ``"given"`` for given labels.
    notes : list of str
        Report notes of the segmenter (empty for given labels).

    Raises
    ------
    dynacell.errors.InvalidInputError
        Unreadable labels (the message starts ``labels (--labels):``) or an unknown segmenter.
    """
    from dynacell.errors import input_role
    from dynacell.io import open_labels

    notes: list[str] = []
    if labels is None:
        label_movie, name, notes = segment_for_run(images, segmenter, work, progress=progress,
                                                   test_time_flips=test_time_flips)
    else:
        with input_role("labels (--labels)"):
            label_movie = open_labels(labels) if isinstance(labels, (str, Path)) else labels
        name = "given"
    if label_movie.voxel_size_um is None and images.voxel_size_um is not None:
        label_movie = with_physical_sizes(label_movie, voxel_size_um=images.voxel_size_um)
    return label_movie, name, notes
