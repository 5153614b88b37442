"""The configuration of the main job (``dynacell run``): :class:`RunConfig` (pydantic).

The CLI builds a ``RunConfig`` from its options; :func:`dynacell.pipeline.run` builds one from its
keyword arguments; either way it is validated once (unknown or misspelt parameters are errors)
and written to ``run.json`` with ``model_dump(mode="json")``.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dynacell.lineage.events import EventRules
from dynacell.states.reconcile import ReconcileRules
from dynacell.states.relink import DivisionCheck

__all__ = ["RunConfig", "describe_input", "run_parameters"]


class RunConfig(BaseModel):
    """Parameters of one run of the main job.

    Attributes
    ----------
    movie : str
        Image movie path (or a description of an in-memory movie).
    out : str
        Output folder.
    labels : str or None
        Label images path; None = segment the movie (``segmenter``).
    lineage : str or None
        Lineage path; None = link the labels.
    model : str or None
        State model name or folder; None = ``nuclei-2d`` / ``nuclei-3d`` by the movie's dimensionality.
    axes : str or None
        Axes of a movie whose file does not say (e.g. ``"TZYX"`` for a plain 4-D TIFF stack).
    channel : int or None
        Channel of a multi-channel movie to read (0-based; the nuclear channel); None for a
        single-channel movie (a multi-channel one is then refused with a message naming the choice).
    scene : int or None
        Scene (stage position) of a multi-position ND2 / CZI / LIF / OME-TIFF file or OME-Zarr store in
        bioformats2raw layout (0-based); None = the first.
    segmenter : str
        Segmenter used when no labels are given: ``"auto"`` (the shipped ``nuclei-seg-2d`` for 2D
        movies, ``nuclei-seg-3d`` for 3D), ``"classical"`` (threshold + watershed) or a
        segmentation model name / folder (see :mod:`dynacell.segment`).
    test_time_flips : int or None
        Flipped copies of each frame a learned segmenter averages (1, 2 or 4); None = the model
        card's (4 for ``nuclei-seg-2d``; 1 is about 2.5× faster, docs/segmentation.md).
    voxel_size_um : tuple of float or None
        ``(Y, X)`` or ``(Z, Y, X)`` in µm, overriding the metadata; None = from the metadata (may
        stay unknown: then every distance is in pixels and ``run.json`` notes say so).
    frame_interval_s : float or None
        Seconds between frames, overriding the metadata.
    max_distance : float or None
        Linking gate; in µm when the voxel size is known, else in pixels (``max_distance_unit`` in
        ``run.json`` says which). None = :func:`dynacell.track.gate.motion_gate`.
    motion_prior : str
        The linker's motion prior (``motion_prior`` of :func:`dynacell.track.link_labels`): ``"flow"``
        (global drift, then the neighbours' motion), ``"velocity"``, ``"kalman"``, or a position model
        name / folder (``positions-2d``, ``positions-3d``).
    device : {"auto", "cpu", "cuda"}
        Torch device.
    scheduler : str or None
        Dask distributed scheduler address for per-frame classification.
    gt : str or None
        CTC ground-truth folder to score states and tracks.
    gt_rules : EventRules or None
        Rules giving the ground-truth states (default the seed's).
    reconcile : ReconcileRules
        State/lineage reconciliation rules.
    division_check : DivisionCheck
        When a linked division contradicted by the classifier is unlinked
        (:func:`dynacell.states.relink.check_divisions`; only for lineages dynacell linked itself,
        never for a given ``lineage``).
    dead_evidence : str or None
        A segmentation model with classes background / live / dead (name or folder; see
        :mod:`dynacell.segment.dead`) run on every frame to rate each nucleus's dead share
        (``p_dead_seg`` in ``states.csv``), used by the joint decision as appearance evidence of a
        death at a track end inside the field. None (default): not run, no cost.
    overwrite, video : bool
        Replace ``out``; write ``overlay.mp4``.
    progress : bool or None
        Progress bars; None = when stderr is a terminal.
    seed : int
        Seed (torch), recorded in ``run.json``.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=())

    format_version: Literal[1] = 1
    movie: str
    out: str
    labels: str | None = None
    lineage: str | None = None
    model: str | None = None
    segmenter: str = "auto"
    test_time_flips: Literal[1, 2, 4] | None = None
    axes: str | None = None
    channel: int | None = Field(None, ge=0)
    scene: int | None = Field(None, ge=0)
    voxel_size_um: tuple[float, ...] | None = None
    frame_interval_s: float | None = Field(None, gt=0)
    max_distance: float | None = Field(None, gt=0)
    motion_prior: str = "flow"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    scheduler: str | None = None
    gt: str | None = None
    gt_rules: EventRules | None = None
    reconcile: ReconcileRules = Field(default_factory=ReconcileRules)
    division_check: DivisionCheck = Field(default_factory=DivisionCheck)
    dead_evidence: str | None = None
    overwrite: bool = False
    video: bool = True
    progress: bool | None = None
    seed: int = 0

    @classmethod
    def from_arguments(cls, movie: Any, *, out: str | Path, labels: Any = None, lineage: Any = None, model: Any = None,
                       **params: Any) -> RunConfig:
        """The config of :func:`dynacell.pipeline.run`: inputs (paths or objects) and keyword parameters.

        Parameters
        ----------
        movie, labels, lineage, model : path, object or None
            The inputs; each is recorded as :func:`describe_input` describes it.
        out : str or Path
            Output folder.
        **params
            Any other field (``Path`` values become strings).

        Returns
        -------
        RunConfig

        Raises
        ------
        InvalidInputError
            An unknown or invalid parameter: one message listing every problem as ``field: reason``.
        """
        from pydantic import ValidationError

        from dynacell.errors import InvalidInputError, validation_problems

        params = {k: str(v) if isinstance(v, Path) else v for k, v in params.items()}
        try:
            return cls(movie=describe_input(movie), out=str(out), labels=describe_input(labels),
                       lineage=describe_input(lineage), model=describe_input(model), **params)
        except ValidationError as exc:
            raise InvalidInputError(f"run parameters: {validation_problems(exc)}") from None

    @field_validator("voxel_size_um")
    @classmethod
    def _voxel(cls, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if v is None:
            return v
        if len(v) not in (2, 3) or any(not math.isfinite(x) or x <= 0 for x in v):
            raise ValueError(f"voxel_size_um needs 2 (Y, X) or 3 (Z, Y, X) finite sizes > 0 µm, got {v}")
        return tuple(float(x) for x in v)


def describe_input(x: Any) -> str | None:
    """How an input of a run is recorded in :class:`RunConfig` and ``run.json``.

    Parameters
    ----------
    x : str, Path, Movie, Lineage, other object or None
        A path, an in-memory movie or lineage, or another object (e.g. a loaded classifier).

    Returns
    -------
    str or None
        None for None; a path as a string; a :class:`~dynacell.io.movie.Movie` or
        :class:`~dynacell.lineage.graph.Lineage` by its ``source`` (``"(in-memory movie)"`` /
        ``"(Lineage object)"`` when it has none); any other object by its ``name`` attribute, else
        its class name.
    """
    from dynacell.io.movie import Movie
    from dynacell.lineage.graph import Lineage

    if x is None:
        return None
    if isinstance(x, Movie):
        return x.source or "(in-memory movie)"
    if isinstance(x, Lineage):
        return x.source or "(Lineage object)"
    if isinstance(x, (str, Path)):
        return str(x)
    return str(getattr(x, "name", type(x).__name__))


def run_parameters(config: RunConfig, images: Any, *, segmenter: str, lineage_source: str, model_name: str,
                   model_card: Any, device: str, reconcile: ReconcileRules, linking: dict | None) -> dict:
    """The ``parameters`` of a finished run, as ``run.json`` and the report record them.

    Parameters
    ----------
    config : RunConfig
        The run's config.
    images : Movie
        The opened image movie (its axes, shape ``(T, (Z), Y, X)``, frame numbers and physical sizes
        — voxel size in µm, frame interval in s — are recorded as used).
    segmenter : str
        The segmenter that made the labels (``"given"`` when labels were given).
    lineage_source : str
        Where the lineage came from (given file, or the linker and its gate).
    model_name : str
        The state classifier used.
    model_card : pydantic model, dict or None
        Its model card (dumped JSON-safe).
    device : str
        The torch device used.
    reconcile : ReconcileRules
        The reconciliation rules used (may differ from ``config.reconcile``: see
        :func:`dynacell.states.relink.review_classifier`).
    linking : dict or None
        The linking gate and prior (None for a given lineage).

    Returns
    -------
    dict
        JSON-ready: ``movie, labels, segmenter, lineage, model, model_source, model_card, gt, axes,
        channel, scene, shape, frames`` (first and last frame numbers), ``voxel_size_um, frame_interval_s,
        device, scheduler, seed, reconcile, linking``.
    """
    from dynacell.io.writers import json_safe

    card = model_card
    return {
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
        "scene": config.scene,
        "shape": list(images.shape),
        "frames": [images.frame_indices[0], images.frame_indices[-1]],
        "voxel_size_um": list(images.voxel_size_um) if images.voxel_size_um else None,
        "frame_interval_s": images.frame_interval_s,
        "device": device,
        "scheduler": config.scheduler,
        "seed": int(config.seed),
        "reconcile": asdict(reconcile),
        "linking": linking,
    }
