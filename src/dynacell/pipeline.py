"""The main job (``dynacell run``): from a movie of nuclei to tracks, a lineage, a state for
every nucleus at every frame, a report and a video — composition only.

Every step lives in the package that owns it; this module only chains them:

1. **open** the movie lazily (:func:`dynacell.io.open_movie`);
2. **labels** given (:func:`dynacell.io.open_labels`) or from a segmenter (:mod:`dynacell.segment`);
3. **scan** the labels (:func:`dynacell.io.scan.scan_labels`): one label image per frame,
   same shape, no empty frame, centroids; the labels are read once into memory when they fit
   (:func:`dynacell.io.movie.load_in_memory`, 1 GiB), so the scan, the linking passes and the crops
   share one read of every file;
4. **lineage** given (:func:`dynacell.lineage.read_lineage`, checked by
   :func:`dynacell.lineage.checks.check_lineage`) or **linked** (:func:`dynacell.track.link_labels`
   with the gate of :func:`dynacell.track.gate.motion_gate`);
5. **classify** every nucleus (:func:`dynacell.states.classify.classify_movie`; model from
   :func:`dynacell.states.registry.resolve_model`);
6. **reconcile** states with the lineage (:func:`dynacell.states.reconcile.reconcile_states`);
7. **evaluate** against ground truth when given (:func:`dynacell.metrics.states.evaluate_against_gt`);
8. **write** ``states.csv``, ``tracks.csv``, ``lineage.geff``, ``ctc/``, ``report.html``,
   ``overlay.mp4``, ``run.json`` into a temporary sibling folder renamed to ``out`` at the end
   (:func:`dynacell.io.writers.atomic_folder`).

The demo (``dynacell demo``) is :mod:`dynacell.demo`; the parameters are :class:`dynacell.runconfig.RunConfig`.
"""

from __future__ import annotations

import logging
import shutil
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dynacell import __version__
from dynacell.errors import InvalidInputError, OutputExistsError
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


@contextmanager
def _role(role: str):
    """Prefix input errors with the role of the input (``labels (--labels)``) so the message says which one."""
    try:
        yield
    except InvalidInputError as exc:
        raise type(exc)(f"{role}: {exc}") from exc


def _describe(x: Any) -> str | None:
    if x is None:
        return None
    if isinstance(x, Movie):
        return x.source or "(in-memory movie)"
    if isinstance(x, Lineage):
        return x.source or "(Lineage object)"
    if isinstance(x, (str, Path)):
        return str(x)
    return str(getattr(x, "name", type(x).__name__))


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
    from pydantic import ValidationError

    params = {k: str(v) if isinstance(v, Path) else v for k, v in params.items()}
    try:
        config = RunConfig(movie=_describe(movie), out=str(out), labels=_describe(labels),
                           lineage=_describe(lineage), model=_describe(model), **params)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InvalidInputError(f"run parameters: {problems}") from None
    return run_config(config, images=movie if isinstance(movie, Movie) else None,
                      labels=labels if isinstance(labels, Movie) else None,
                      lineage=lineage if isinstance(lineage, Lineage) else None,
                      classifier=model if model is not None and not isinstance(model, (str, Path)) else None)


def _open_images(config: RunConfig, images: Movie | None) -> Movie:
    from dynacell.io import open_movie

    with _role("movie"):
        if images is None:
            return open_movie(config.movie, voxel_size_um=config.voxel_size_um,
                              frame_interval_s=config.frame_interval_s, axes=config.axes,
                              channel=config.channel)
    if config.voxel_size_um is not None or config.frame_interval_s is not None:
        images = Movie(images.data, images.axes, config.voxel_size_um or images.voxel_size_um,
                       config.frame_interval_s or images.frame_interval_s, images.frame_indices, images.source,
                       images.metadata)
    return images


def _physical_notes(images: Movie) -> list[str]:
    """Warnings about unknown physical sizes and movies too short for temporal states."""
    notes = []
    if images.voxel_size_um is None:
        notes.append(
            f"The voxel size of {images.source or 'the movie'} is unknown (no metadata, no --voxel-size-um): "
            "linking distances, nucleus sizes and positions are in pixels, not µm. Give --voxel-size-um "
            f"({'Y X' if images.ndim_spatial == 2 else 'Z Y X'}) for physical units.")
    if images.frame_interval_s is None:
        notes.append("The frame interval is unknown (no metadata, no --frame-interval-s): times are in frames.")
    if images.n_frames < 3:
        notes.append(
            f"The movie has {images.n_frames} frame(s): states use the frames before and after each nucleus "
            "(t-1, t, t+1), so with fewer than 3 frames mitotic / new-daughter / death calls have no temporal "
            "evidence and most nuclei will be called stable.")
    for n in notes:
        logger.warning(n)
    return notes


def _labels(config: RunConfig, images: Movie, labels: Movie | None, work: Path, progress: bool,
            notes: list[str]) -> tuple[Movie, str]:
    from dynacell.io import open_labels

    if labels is None and config.labels is None:
        from dynacell.segment.select import segment_for_run

        label_movie, segmenter, seg_notes = segment_for_run(images, config.segmenter, work, progress=progress,
                                                            test_time_flips=config.test_time_flips)
        notes.extend(seg_notes)
    else:
        with _role("labels (--labels)"):
            label_movie = labels if labels is not None else open_labels(config.labels)
        segmenter = "given"
    if label_movie.voxel_size_um is None and images.voxel_size_um is not None:
        label_movie = Movie(label_movie.data, label_movie.axes, images.voxel_size_um, label_movie.frame_interval_s,
                            label_movie.frame_indices, label_movie.source, label_movie.metadata)
    return label_movie, segmenter


def _lineage(config: RunConfig, images: Movie, label_movie: Movie, given: Lineage | None, ids, nuclei,
             progress: bool, objects: dict | None = None) -> tuple[Lineage, str, dict | None]:
    if given is None and config.lineage is None:
        from dynacell.track import link_labels
        from dynacell.track.gate import motion_gate

        vs = images.voxel_size_um or label_movie.voxel_size_um
        gate = motion_gate(nuclei, ndim=images.ndim_spatial, voxel_size_um=vs)
        if config.max_distance is not None:
            gate["max_distance"] = float(config.max_distance)
        unit = "um" if vs else "px"
        gate_kw = {"max_distance_um" if unit == "um" else "max_distance_px": gate["max_distance"]}
        lin, _ = link_labels(label_movie, voxel_size_um=vs, motion_prior=config.motion_prior, progress=progress,
                             objects=objects, **gate_kw)
        source = f"linked with dynacell.track.link_labels (laptrack), max distance {gate['max_distance']:.3g} {unit}"
        linking = {"gate": gate, "max_distance_given": config.max_distance, "max_distance_unit": unit,
                   "motion_prior": config.motion_prior}
    else:
        from dynacell.lineage.checks import check_lineage

        if given is not None:
            lin, src = given.copy(), config.lineage or "(Lineage object)"
        else:
            from dynacell.lineage.formats import read_lineage

            with _role("lineage (--lineage)"):
                lin, src = read_lineage(config.lineage), str(config.lineage)
        lin = check_lineage(lin, ids, src, label_movie)
        source, linking = f"given: {src}", None
    lin.n_frames = max(ids) + 1  # the movie's extent decides which track ends are before its end
    from dynacell.track import assign_ctc_tracks

    assign_ctc_tracks(lin)  # track ids = CTC track ids = mask values in ctc/
    return lin, source, linking


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

    from dynacell.io.scan import scan_labels
    from dynacell.io.writers import atomic_folder, json_safe, write_csv, write_json
    from dynacell.models.runtime import resolve_device
    from dynacell.provenance import StepTimer, host, peak_rss_mb, versions
    from dynacell.states.reconcile import reconcile_states
    from dynacell.states.registry import resolve_model
    from dynacell.states.tables import tracks_table
    from dynacell.train.engine import progress_enabled

    out = Path(config.out)
    if (out.exists() or out.is_symlink()) and not config.overwrite:
        raise OutputExistsError(f"output folder {out} exists; choose another -o or pass --overwrite to replace it")
    progress = progress_enabled(config.progress)
    device = resolve_device(config.device)
    torch.manual_seed(int(config.seed))
    timer = StepTimer()
    notes: list[str] = []
    with atomic_folder(out, overwrite=config.overwrite) as tmp:
        work = tmp / "_work"
        work.mkdir()
        with timer.step("open"):
            images = _open_images(config, images)
            notes.extend(_physical_notes(images))
        with timer.step("model"):
            from dynacell.states.classify import check_model_for_movie

            clf, model_name = resolve_model(classifier if classifier is not None else config.model,
                                            images.ndim_spatial, device)
            notes[:0] = check_model_for_movie(images, clf)
        with timer.step("labels"):
            from dynacell.io.movie import load_in_memory

            label_movie, segmenter = _labels(config, images, labels, work, progress, notes)
            label_movie = load_in_memory(label_movie, progress=progress)  # read once: scan, linking, crops
        with timer.step("check_labels"):
            measured: list[pd.DataFrame] = []
            objects: dict = {}  # each label frame's nuclei, measured once for the scan, the linker and the crops
            ids = scan_labels(images, label_movie, progress=progress, measure=measured, objects=objects)
        with timer.step("lineage"):
            lin, lineage_source, linking = _lineage(config, images, label_movie, lineage, ids, measured[0], progress,
                                                    objects)
        with timer.step("classify"):
            from dynacell.states.classify import classify_movie

            raw = classify_movie(images, label_movie, clf, lineage=lin, progress=progress, scheduler=config.scheduler,
                                 objects=objects)
        from dynacell.states.relink import (
            agreement_note,
            check_divisions,
            classifier_agreement,
            division_check_report,
        )

        agreement = classifier_agreement(raw, lin, config.division_check)
        reconcile_rules = config.reconcile if agreement["trusted"] else config.reconcile.trusting_lineage()
        if note := agreement_note(agreement):
            notes.append(note)
        division_summary = None
        if linking is not None:  # a lineage dynacell linked: unlink divisions the classifier contradicts
            with timer.step("check_divisions"):
                raw, lin, divisions = check_divisions(raw, lin, config.division_check, trusted=agreement["trusted"])
                note, division_summary = division_check_report(divisions, config.division_check)
                if note:
                    notes.append(note)
        dead = None
        if config.dead_evidence is not None:  # off by default: no cost
            with timer.step("dead_evidence"):
                raw, dead = _dead_evidence(config, images, label_movie, raw, device, progress, notes)
        with timer.step("reconcile"):
            states, changes = reconcile_states(raw, lin, reconcile_rules)
        with timer.step("write_tables"):
            write_csv(states, tmp / "states.csv")
            tracks = tracks_table(lin, states, border_margin=config.reconcile.joint.border_margin)
            write_csv(tracks, tmp / "tracks.csv")
            from dynacell.lineage.formats import write_geff

            write_geff(lin, tmp / "lineage.geff")
        with timer.step("write_ctc"):
            from dynacell.io.ctc import write_ctc_result

            write_ctc_result(tmp / "ctc", label_movie, lin, progress=progress, frame_ids=ids)
        evaluation = None
        if config.gt is not None:
            with timer.step("evaluate"):
                from dynacell.metrics.states import evaluate_against_gt

                with _role("ground truth (--gt)"):
                    evaluation = evaluate_against_gt(config.gt, states, label_movie, tmp / "ctc", progress=progress,
                                                     **({} if config.gt_rules is None else {"rules": config.gt_rules}))
                evaluation = _replace_prefix(json_safe(evaluation), str(tmp), str(out))
        if config.video:
            with timer.step("video"):
                from dynacell.viz.overlay import write_overlay_video

                write_overlay_video(tmp / "overlay.mp4", images, label_movie, states, progress=progress)
        with timer.step("motion"):
            motion = _motion(states, images, notes)
        card = getattr(clf, "card", None)
        parameters = {
            "movie": config.movie,
            "labels": config.labels if config.labels is not None else f"({segmenter} segmenter)",
            "segmenter": segmenter,
            "lineage": lineage_source,
            "model": model_name,
            "model_source": config.model or model_name,
            "model_card": json_safe(card.model_dump(mode="json") if hasattr(card, "model_dump") else (card or {})),
            "gt": config.gt,
            "axes": images.axes,
            "channel": config.channel,
            "shape": list(images.shape),
            "frames": [images.frame_indices[0], images.frame_indices[-1]],
            "voxel_size_um": list(images.voxel_size_um) if images.voxel_size_um else None,
            "frame_interval_s": images.frame_interval_s,
            "device": device,
            "scheduler": config.scheduler,
            "seed": int(config.seed),
            "reconcile": asdict(reconcile_rules),
            "linking": linking,
        }
        with timer.step("report"):
            from dynacell.metrics.states import evaluation_tables
            from dynacell.viz.report import write_report

            write_report(tmp / "report.html", states=states, lineage=lin, parameters=parameters,
                         timings_s=timer.timings,
                         reconciliation={"rule": reconcile_rules.describe(), "changes": changes},
                         evaluation=evaluation_tables(evaluation) if evaluation else None, notes=notes,
                         title=f"dynacell run: {Path(config.movie).name}", images=images, labels=label_movie)
        info = {
            "dynacell_version": __version__,
            "command": "run",
            "inputs": {k: parameters[k] for k in ("movie", "labels", "lineage", "gt")},
            "config": config.model_dump(mode="json"),
            "parameters": parameters,
            "versions": versions(),
            "seed": int(config.seed),
            "counts": {
                "frames": images.n_frames,
                "nuclei": int(len(states)),
                "tracks": int(lin.tracks().shape[0]),
                "divisions": len(lin.divisions()),
                "states": states["state"].value_counts().to_dict(),
                "states_classifier": states["state_classifier"].value_counts().to_dict(),
                "track_ends": tracks["end_reason"].value_counts().to_dict(),
            },
            "notes": notes,
            "classifier_agreement": agreement,
            "reconciliation": {"rule": reconcile_rules.describe(),
                               "n_changed": int(changes["n"].sum()) if len(changes) else 0,
                               "changes": changes.to_dict(orient="records")},
            "division_check": division_summary,
            "dead_evidence": None if dead is None else {
                **dead, "death_calls": int((states["state"] == "death").sum()),
                "death_calls_with_evidence": int(((states["state"] == "death")
                                                  & (states["p_dead_seg"].fillna(0) >= 0.5)).sum())},
            "evaluation": evaluation,
            "motion": motion,
            "timings_s": timer.timings,
            "timings_cpu_s": timer.cpu_s,
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "peak_rss_mb_after_step": timer.peak_rss_mb,
            "host": host(),
        }
        write_json(info, tmp / "run.json")
        info = json_safe(info)
        shutil.rmtree(work)
    logger.info("run finished: %s", out)
    return RunResult(out=out, states=states, lineage=lin, reconciliation=changes, evaluation=evaluation,
                     timings_s=timer.timings, info=info)


def _dead_evidence(config: RunConfig, images: Movie, label_movie: Movie, raw: pd.DataFrame, device: str,
                   progress: bool, notes: list[str]) -> tuple[pd.DataFrame, dict]:
    """Add ``p_dead_seg`` (:func:`dynacell.segment.dead.dead_evidence`) to the classifier's table.

    Returns the table and the ``dead_evidence`` entry of ``run.json`` (model, rule, counts).
    """
    from dynacell.segment.dead import dead_evidence, load_dead_model

    with _role("dead evidence (--dead-evidence)"):
        seg = load_dead_model(config.dead_evidence, device)
    ev = dead_evidence(images, label_movie, seg, device=device, progress=progress)
    raw = raw.drop(columns=["p_dead_seg"], errors="ignore").merge(ev, on=["t", "label"], how="left")
    if config.reconcile.method != "joint" or not config.reconcile.enabled:
        notes.append("--dead-evidence is used by the joint decision only; with reconcile method "
                     f"{config.reconcile.method!r} (enabled={config.reconcile.enabled}) it is recorded, not used.")
    info = {"model": seg.name, "folder": str(seg.folder), "weights_sha256": seg.card.weights_sha256,
            "training_data": sorted(seg.card.training_data),
            "rule": "p_dead_seg = dead share of the segmenter's nucleus probability under each mask; a death is "
                    "decided only at a track end inside the field (or before a gap) when the joint decision "
                    "favours it (dynacell.states.joint.combine_dead_evidence)",
            "n_rated": int(raw["p_dead_seg"].notna().sum()),
            "n_p_dead_seg_ge_0.5": int((raw["p_dead_seg"].fillna(0) >= 0.5).sum())}
    notes.append(f"Dead evidence from the segmenter {seg.name} (trained on rendered apoptosis only: "
                 f"{', '.join(sorted(seg.card.training_data))}); {info['n_p_dead_seg_ge_0.5']} of {info['n_rated']} "
                 "nuclei have p_dead_seg >= 0.5.")
    return raw, info


def _motion(states: pd.DataFrame, images: Movie, notes: list[str]) -> dict | None:
    """Motion statistics of the tracked nuclei (:func:`dynacell.motion.motion_summary`), in µm and s.

    None (with a note) when the voxel size or the frame interval is unknown or the tracks are too
    short: a run never fails for its motion summary.
    """
    if images.voxel_size_um is None or images.frame_interval_s is None:
        notes.append("Motion statistics (MSD, diffusion coefficient, velocity correlations) are skipped: they need "
                     "the voxel size and the frame interval (--voxel-size-um, --frame-interval-s).")
        return None
    from dynacell.motion.analysis import motion_summary

    try:
        return motion_summary(states[["t", "track_id", "z", "y", "x"]], images.voxel_size_um,
                              images.frame_interval_s)
    except InvalidInputError as exc:
        notes.append(f"Motion statistics are skipped: {exc}")
        return None


def _replace_prefix(obj: Any, old: str, new: str) -> Any:
    """Replace the temporary output path by the final one in every string of a JSON-like object."""
    if isinstance(obj, dict):
        return {k: _replace_prefix(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_replace_prefix(v, old, new) for v in obj]
    if isinstance(obj, str) and obj.startswith(old):
        return new + obj[len(old):]
    return obj
