"""The main job (``dynacell run``): from a movie of nuclei to tracks, a lineage, a state for every
nucleus at every frame, a report and a video — composition only.

Every step lives in the package that owns it; :func:`run_config` chains them and times each one
(:class:`dynacell.provenance.StepTimer`): **open** the movie (:mod:`dynacell.io`) → **labels** given or
segmented (:func:`dynacell.segment.select.labels_for_run`), scanned once (:func:`dynacell.io.scan.scan_run_labels`)
→ **lineage** given or linked (:func:`dynacell.track.select.lineage_for_run`) → **states**: classify
(:func:`dynacell.states.classify.classify_movie`), judge the classifier and the linked divisions
(:mod:`dynacell.states.relink`), optional dead evidence (:func:`dynacell.segment.dead.add_dead_evidence`),
the joint decision (:func:`dynacell.states.reconcile.reconcile_states`) → **outputs** ``states.csv``,
``tracks.csv``, ``lineage.geff``, ``ctc/``, scores, ``overlay.mp4``, motion statistics, ``report.html`` and
``run.json``, written in a temporary sibling folder renamed to ``out`` at the end
(:func:`dynacell.io.writers.atomic_folder`). docs/architecture.md lists where each step lives.

The demo (``dynacell demo``) is :mod:`dynacell.demo`; the parameters are :class:`dynacell.runconfig.RunConfig`.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dynacell import __version__
from dynacell.errors import OutputExistsError, input_role
from dynacell.io.movie import Movie
from dynacell.lineage.graph import Lineage
from dynacell.runconfig import RunConfig

__all__ = ["RunResult", "run", "run_config", "OUTPUT_FILES"]

logger = logging.getLogger(__name__)

#: Files and folders a successful run leaves in ``out``.
OUTPUT_FILES: tuple[str, ...] = (
    "states.csv", "tracks.csv", "lineage.geff", "ctc", "report.html", "overlay.mp4", "run.json",
)


@dataclass
class RunResult:
    """What :func:`run` returns.

    Attributes
    ----------
    out : Path
        The output folder.
    states : pandas.DataFrame
        ``states.csv``: ``t, label, track_id, state, p_stable, p_mitotic, p_new_daughter, p_death,
        z, y, x, state_classifier`` (the argmax before reconciliation).
    lineage : Lineage
        The lineage used (given or linked).
    reconciliation : pandas.DataFrame
        Changes made by reconciliation: ``from, to, reason, n``.
    evaluation : dict or None
        Comparison with ground truth, when ``gt`` was given.
    timings_s : dict of str to float
        Wall time of each step in seconds.
    info : dict
        The contents of ``run.json``.
    """

    out: Path
    states: pd.DataFrame
    lineage: Lineage
    reconciliation: pd.DataFrame
    evaluation: dict | None
    timings_s: dict[str, float]
    info: dict = field(default_factory=dict)


def run(movie: str | Path | Movie, *, out: str | Path, labels: str | Path | Movie | None = None,
        lineage: str | Path | Lineage | None = None, model: Any = None, **params: Any) -> RunResult:
    """Run the main job on one movie: labels, lineage, states, report, video.

    Parameters
    ----------
    movie : str, Path or Movie
        Image movie ``(T, (Z), Y, X)``: CTC folder, TIFF series or stack, (OME-)zarr or npz
        (:func:`dynacell.io.open_movie`), or an opened :class:`~dynacell.io.movie.Movie`.
    out : str or Path
        Output folder (must not exist unless ``overwrite=True``).
    labels : str, Path or Movie, optional
        Label movie (one integer label image per frame; ids need not be consistent over time).
        Default: segment the movie with ``segmenter``.
    lineage : str, Path or Lineage, optional
        A lineage of these labels (CTC, BlastoSPIM JSON, GEFF). Default: linked.
    model : str, Path or StateClassifier, optional
        State classifier name, folder or object. Default ``nuclei-2d`` / ``nuclei-3d``.
    **params
        Any other field of :class:`~dynacell.runconfig.RunConfig` (``voxel_size_um``,
        ``frame_interval_s``, ``max_distance``, ``device``, ``scheduler``, ``gt``, ``gt_rules``,
        ``reconcile``, ``overwrite``, ``video``, ``progress``, ``seed``, ``segmenter``).

    Returns
    -------
    RunResult

    Raises
    ------
    InvalidInputError
        An unknown or invalid parameter, missing or mismatched labels, empty label frames, a lineage
        naming labels absent from the masks, an unknown model, a 2D model on 3D data, a bad device.
    OutputExistsError
        If ``out`` exists and ``overwrite`` is False (checked before any work). Nothing is left in
        ``out`` or beside it when a run fails.
    """
    config = RunConfig.from_arguments(movie, out=out, labels=labels, lineage=lineage, model=model, **params)
    return run_config(config, images=movie if isinstance(movie, Movie) else None,
                      labels=labels if isinstance(labels, Movie) else None,
                      lineage=lineage if isinstance(lineage, Lineage) else None,
                      classifier=model if model is not None and not isinstance(model, (str, Path)) else None)


def run_config(config: RunConfig, *, images: Movie | None = None, labels: Movie | None = None,
               lineage: Lineage | None = None, classifier: Any = None) -> RunResult:
    """Run the main job described by ``config`` (in-memory inputs override the paths in it).

    Parameters
    ----------
    config : RunConfig
        The validated parameters.
    images, labels : Movie, optional
        Already opened movies (else opened from ``config.movie`` / ``config.labels``).
    lineage : Lineage, optional
        An in-memory lineage (else ``config.lineage`` or linked).
    classifier : StateClassifier, optional
        An in-memory classifier (else ``config.model``).

    Returns
    -------
    RunResult

    Raises
    ------
    InvalidInputError, OutputExistsError
        See :func:`run`.
    """
    import torch

    from dynacell.io import open_movie
    from dynacell.io.checks import movie_notes
    from dynacell.io.ctc import write_ctc_result
    from dynacell.io.movie import load_in_memory, with_physical_sizes
    from dynacell.io.scan import scan_run_labels
    from dynacell.io.writers import atomic_folder, json_safe, write_csv, write_json
    from dynacell.lineage.formats import write_geff
    from dynacell.models.runtime import resolve_device
    from dynacell.progress import progress_enabled
    from dynacell.provenance import StepTimer, host, versions
    from dynacell.runconfig import run_parameters
    from dynacell.segment.dead import dead_evidence_record
    from dynacell.segment.select import labels_for_run
    from dynacell.states.classify import check_model_for_movie, classify_movie
    from dynacell.states.reconcile import reconcile_states, reconciliation_record
    from dynacell.states.registry import resolve_model
    from dynacell.states.relink import check_linked_divisions, review_classifier
    from dynacell.states.tables import run_counts, tracks_table
    from dynacell.track.select import lineage_for_run, linking_notes, uncertain_frame_captions

    out = Path(config.out)
    if (out.exists() or out.is_symlink()) and not config.overwrite:
        raise OutputExistsError(f"output folder {out} exists; choose another -o or pass --overwrite to replace it")
    progress, device, timer = progress_enabled(config.progress), resolve_device(config.device), StepTimer()
    torch.manual_seed(int(config.seed))
    with atomic_folder(out, overwrite=config.overwrite) as tmp:
        (work := tmp / "_work").mkdir()
        with timer.step("open"):
            if images is None:
                with input_role("movie"):
                    images = open_movie(config.movie, voxel_size_um=config.voxel_size_um, axes=config.axes,
                                        frame_interval_s=config.frame_interval_s, channel=config.channel,
                                        scene=config.scene)
            else:
                images = with_physical_sizes(images, config.voxel_size_um, config.frame_interval_s)
            notes = movie_notes(images)
        with timer.step("model"):
            clf, model_name = resolve_model(classifier if classifier is not None else config.model,
                                            images.ndim_spatial, device)
            notes[:0] = check_model_for_movie(images, clf)
        with timer.step("labels"):
            label_movie, segmenter, seg_notes = labels_for_run(
                images, labels if labels is not None else config.labels, segmenter=config.segmenter, work=work,
                progress=progress, test_time_flips=config.test_time_flips)
            notes += seg_notes
            label_movie = load_in_memory(label_movie, progress=progress)  # read once: scan, linking, crops
        with timer.step("check_labels"):  # each label frame measured once for the scan, linker and crops
            shown_images, shown_labels = images, label_movie  # frames without a nucleus stay in masks and video
            scanned = scan_run_labels(
                images, label_movie, progress=progress, lineage_given=lineage is not None or config.lineage is not None,
                what="the labels given" if segmenter == "given" else f"the segmenter {segmenter}'s labels")
            images, label_movie, ids, objects = scanned.images, scanned.labels, scanned.ids, scanned.objects
            notes += scanned.notes
        with timer.step("lineage"):
            lin, lineage_source, linking = lineage_for_run(
                images, label_movie, ids, scanned.nuclei, given=lineage, path=config.lineage,
                max_distance=config.max_distance, motion_prior=config.motion_prior, progress=progress, objects=objects)
            notes += linking_notes(linking)
        with timer.step("classify"):
            raw = classify_movie(images, label_movie, clf, lineage=lin, progress=progress, scheduler=config.scheduler,
                                 objects=objects)
        agreement, reconcile_rules, more = review_classifier(raw, lin, config.division_check, config.reconcile)
        notes += more
        division_summary = dead = None
        if linking is not None:  # a lineage dynacell linked: unlink divisions the classifier contradicts
            with timer.step("check_divisions"):
                raw, lin, division_summary, more = check_linked_divisions(
                    raw, lin, config.division_check, trusted=agreement["trusted"])
                notes += more
        if config.dead_evidence is not None:  # off by default: no cost
            with timer.step("dead_evidence"):
                from dynacell.segment.dead import add_dead_evidence

                raw, dead, more = add_dead_evidence(raw, images, label_movie, config.dead_evidence,
                                                    reconcile=config.reconcile, device=device, progress=progress)
                notes += more
        with timer.step("reconcile"):
            states, changes = reconcile_states(raw, lin, reconcile_rules)
        with timer.step("write_tables"):
            write_csv(states, tmp / "states.csv")
            tracks = tracks_table(lin, states, border_margin=config.reconcile.joint.border_margin)
            write_csv(tracks, tmp / "tracks.csv")
            write_geff(lin, tmp / "lineage.geff")
        with timer.step("write_ctc"):
            write_ctc_result(tmp / "ctc", shown_labels, lin, progress=progress, frame_ids=ids,
                             frame_boxes={t: found[3] for t, found in objects.items()})
        evaluation = None
        if config.gt is not None:
            with timer.step("evaluate"):
                from dynacell.io.writers import replace_path_prefix
                from dynacell.metrics.states import evaluate_against_gt

                with input_role("ground truth (--gt)"):
                    evaluation = evaluate_against_gt(config.gt, states, shown_labels, tmp / "ctc", progress=progress,
                                                     **({} if config.gt_rules is None else {"rules": config.gt_rules}))
                evaluation = replace_path_prefix(json_safe(evaluation), str(tmp), str(out))
        if config.video:
            with timer.step("video"):
                from dynacell.viz.overlay import write_overlay_video

                write_overlay_video(tmp / "overlay.mp4", shown_images, shown_labels, states, progress=progress,
                                    frame_notes=uncertain_frame_captions(linking))
        with timer.step("motion"):  # never fails the run: a note says why it was skipped
            from dynacell.motion.analysis import run_motion_summary

            motion, more = run_motion_summary(states, images.voxel_size_um, images.frame_interval_s)
            notes += more
        parameters = run_parameters(config, images, segmenter=segmenter, lineage_source=lineage_source,
                                    model_name=model_name, model_card=getattr(clf, "card", None), device=device,
                                    reconcile=reconcile_rules, linking=linking)
        with timer.step("report"):
            from dynacell.metrics.states import evaluation_tables
            from dynacell.viz.report import write_report

            write_report(tmp / "report.html", states=states, lineage=lin, parameters=parameters,
                         timings_s=timer.timings,
                         reconciliation={"rule": reconcile_rules.describe(), "changes": changes},
                         evaluation=evaluation_tables(evaluation) if evaluation else None, notes=notes,
                         title=f"dynacell run: {Path(config.movie).name}", images=shown_images, labels=shown_labels)
        info = {
            "dynacell_version": __version__, "command": "run",
            "inputs": {k: parameters[k] for k in ("movie", "labels", "lineage", "gt")},
            "config": config.model_dump(mode="json"), "parameters": parameters, "versions": versions(),
            "seed": int(config.seed), "counts": run_counts(states, tracks, lin, shown_images.n_frames), "notes": notes,
            "classifier_agreement": agreement, "reconciliation": reconciliation_record(reconcile_rules, changes),
            "division_check": division_summary, "dead_evidence": dead_evidence_record(dead, states),
            "evaluation": evaluation, "motion": motion, **timer.record(), "host": host(),
        }
        write_json(info, tmp / "run.json")
        info = json_safe(info)
        shutil.rmtree(work)
    logger.info("run finished: %s", out)
    return RunResult(out=out, states=states, lineage=lin, reconciliation=changes, evaluation=evaluation,
                     timings_s=timer.timings, info=info)
