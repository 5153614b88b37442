"""Render a fluorescence time-lapse movie of the nuclei of a :class:`Lineage`.

Each nucleus is drawn into its own bounding box only (vectorised NumPy over the box,
a Python loop over nuclei, never over voxels); the frame is then blurred by an
anisotropic Gaussian PSF and passed through a camera noise model. See
:class:`~dynacell.simulate.params.ImagingParams` and
:class:`~dynacell.simulate.params.AppearanceParams` for the physics.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from dynacell.errors import InvalidInputError
from dynacell.lineage.graph import Lineage, Node
from dynacell.simulate.appearance import (
    DEFAULT_CYCLE_FRAMES,
    Blob,
    TrackInfo,
    build_tracks,
    cycle_frames_of,
    node_blobs,
)
from dynacell.simulate.imaging import camera_adu, gaussian_blur, shot_noise
from dynacell.simulate.imaging import poisson_constant_rate as _poisson_constant_rate  # noqa: F401 (tests)
from dynacell.simulate.params import WORMGUIDES_VOXEL_SIZE_UM, AppearanceParams, ImagingParams, _positive_triple
from dynacell.simulate.result import SimulationResult

__all__ = ["render_lineage", "ground_truth_states", "default_rules"]

logger = logging.getLogger(__name__)


def default_rules(lineage: Lineage) -> Any:
    """The event-rule preset used for ground-truth states when none is given.

    ``EventRules.annotated_deaths()`` when the lineage annotates deaths explicitly
    (nodes with ``death=True``, e.g. WormGUIDES ``CellDeaths.csv``): only those are
    deaths and other track ends are not. Otherwise ``EventRules.seed()`` (the seed state classifier:
    a track that ends before the last frame is a death), which is exact for lineages
    made by :func:`~dynacell.simulate.simulate_embryo`, where cells never leave the field.

    Parameters
    ----------
    lineage : Lineage
        The lineage to render.

    Returns
    -------
    dynacell.lineage.events.EventRules
    """
    from dynacell.lineage import EventRules

    return EventRules.annotated_deaths() if lineage.explicit_deaths() else EventRules.seed()


def ground_truth_states(lineage: Lineage, rules: Any = None) -> dict[Node, str]:
    """Ground-truth state of every node, by ``dynacell.lineage.label_events``.

    Parameters
    ----------
    lineage : Lineage
        The full lineage (states are computed before any frame subset or crop, so a
        track cut by the rendered window is not mistaken for a death).
    rules : EventRules, optional
        Default :func:`default_rules`.

    Returns
    -------
    dict
        ``(t, label) → state`` (``stable``, ``mitotic``, ``new_daughter``, ``death``, ``unknown``).
    """
    from dynacell.lineage import label_events

    return dict(label_events(lineage, rules if rules is not None else default_rules(lineage)))


def _lineage_voxel_size(lineage: Lineage, imaging: ImagingParams) -> Any:
    """Default µm per lineage pixel: the reader's ``voxel_size_um``, the WormGUIDES pixel
    size for AceTree lineages, else the rendered voxel size (see :func:`render_lineage`)."""
    meta = lineage.graph.graph
    if meta.get("voxel_size_um") is not None:
        return meta["voxel_size_um"]
    if meta.get("format") == "acetree":
        logger.info("render_lineage: AceTree lineage without a voxel size: using the WormGUIDES pixel size "
                    "%.4f µm (isotropic); pass lineage_voxel_size_um to change it", WORMGUIDES_VOXEL_SIZE_UM)
        return WORMGUIDES_VOXEL_SIZE_UM
    return imaging.voxel_size_um


def _resolve_frames(lineage: Lineage, frames: Any) -> list[int]:
    """Frame numbers to render, sorted and unique."""
    first, n = lineage.first_frame, lineage.n_frames
    if frames is None:
        out = list(range(first, n))
    elif isinstance(frames, slice):
        start = first if frames.start is None else frames.start
        stop = n if frames.stop is None else frames.stop
        out = list(range(start, stop, frames.step or 1))
    elif isinstance(frames, (int, np.integer)):
        out = [int(frames)]
    else:
        out = sorted({int(t) for t in frames})
    if not out:
        raise InvalidInputError(
            f"render_lineage: frames={frames!r} selects no frame of lineage {lineage.source!r} "
            f"(frames {first}..{n - 1}); give a non-empty range"
        )
    if out[0] < 0:
        raise InvalidInputError(f"render_lineage: frames={frames!r} holds a negative frame number")
    return out


def _rasterise(blobs: Sequence[tuple[int, np.ndarray, Blob, TrackInfo]], shape: tuple[int, int, int],
               voxel_um: np.ndarray, photons: float, t: int, planar: bool = False
               ) -> tuple[np.ndarray, np.ndarray, dict[int, list[tuple[slice, ...]]]]:
    """Draw blobs into a ``(Z, Y, X)`` float32 photon map and an int32 label image.

    ``blobs`` holds ``(label, node_centre_px, blob, track)`` tuples; ``planar`` marks 2D
    data rendered as ``(1, Y, X)`` (areas instead of volumes). Where nuclei overlap,
    a voxel's label goes to the nucleus whose normalised distance ``|u|`` is smallest;
    intensities add (fluorescence is additive). Also returns the bounding boxes drawn
    for each label.
    """
    signal = np.zeros(shape, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.int32)
    best = np.full(shape, np.inf, dtype=np.float32)
    boxes: dict[int, list[tuple[slice, ...]]] = {}
    shp = np.asarray(shape)
    vs32 = voxel_um.astype(np.float32)
    for label, centre_px, blob, track in blobs:
        c = centre_px + blob.offset_um / voxel_um
        ext = blob.half_extent_um / voxel_um
        lo = np.maximum(np.floor(c - ext).astype(int), 0)
        hi = np.minimum(np.ceil(c + ext).astype(int) + 1, shp)
        if np.any(hi <= lo):
            continue
        sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        c32 = c.astype(np.float32)
        oz = ((np.arange(lo[0], hi[0], dtype=np.float32) - c32[0]) * vs32[0])[:, None, None]
        oy = ((np.arange(lo[1], hi[1], dtype=np.float32) - c32[1]) * vs32[1])[None, :, None]
        ox = ((np.arange(lo[2], hi[2], dtype=np.float32) - c32[2]) * vs32[2])[None, None, :]
        a = blob.inv_axes.astype(np.float32)
        nd2 = (a[0, 0] * oz + a[0, 1] * oy + a[0, 2] * ox) ** 2
        nd2 += (a[1, 0] * oz + a[1, 1] * oy + a[1, 2] * ox) ** 2
        nd2 += (a[2, 0] * oz + a[2, 1] * oy + a[2, 2] * ox) ** 2
        inside = nd2 < 1.0
        peak = np.float32(photons * blob.brightness)
        if not inside.any():
            # smaller than a voxel (e.g. an apoptotic fragment at a 2 µm z step): its
            # photons go to the nearest voxel, which also carries its label
            idx = np.rint(c).astype(int)
            if np.all(idx >= 0) and np.all(idx < shp):
                det = abs(np.linalg.det(blob.inv_axes[1:, 1:] if planar else blob.inv_axes))
                size = (np.pi if planar else 4.0 / 3.0 * np.pi) / max(det, 1e-12)
                cell = float(np.prod(voxel_um[1:] if planar else voxel_um))
                signal[tuple(idx)] += peak * np.float32(min(size / cell, 1.0))
                labels[tuple(idx)] = label
                best[tuple(idx)] = 0.0
                boxes.setdefault(label, []).append(tuple(slice(v, v + 1) for v in idx))
            continue
        if blob.texture_amplitude > 0 and len(track.texture_k):
            # texture fixed to the nucleus: offsets from the node centre, phases drifting in time
            off = blob.offset_um.astype(np.float32)
            tz, ty, tx = oz + off[0], oy + off[1], ox + off[2]
            tex = np.zeros(inside.shape, dtype=np.float32)
            for k, ph, om in zip(track.texture_k.astype(np.float32), track.texture_phase, track.texture_omega,
                                 strict=True):
                tex += np.cos(k[0] * tz + k[1] * ty + k[2] * tx + np.float32(ph + om * t))
            tex *= np.float32(np.sqrt(2.0 / len(track.texture_k)) * blob.texture_amplitude)
            tex += np.float32(1.0)
            np.maximum(tex, 0.0, out=tex)
            value = tex[inside] * peak
        else:
            value = peak
        sig = signal[sl]
        sig[inside] += value
        win = inside & (nd2 < best[sl])
        labels[sl][win] = label
        best[sl][win] = nd2[win]
        boxes.setdefault(label, []).append(sl)
    return signal, labels, boxes


def _label_present(labels: np.ndarray, boxes: dict[int, list[tuple[slice, ...]]], label: int) -> bool:
    """Whether ``label`` still has a voxel in ``labels`` (searched in the boxes it was drawn in)."""
    return any((labels[sl] == label).any() for sl in boxes.get(label, ()))


def _camera(signal: np.ndarray, imaging: ImagingParams, psf_px: np.ndarray, bleach: float,
            rng: np.random.Generator) -> np.ndarray:
    """PSF blur, bleaching, background, Poisson shot noise, gain, offset, read noise → uint16.

    Shot noise uses the splitting property of the Poisson law,
    ``Poisson(b + s) = Poisson(b) + Poisson(s)`` for independent draws: the uniform
    background is drawn for the whole frame with one rate
    (:func:`~dynacell.simulate.imaging.poisson_constant_rate`) and the nuclear signal with
    ``Generator.poisson`` only where it is positive. The result is exact, not an approximation.
    The PSF, noise and camera are those of :mod:`dynacell.simulate.imaging`.
    """
    signal = gaussian_blur(signal, psf_px)
    if bleach != 1.0:
        signal *= np.float32(bleach)
    counts = shot_noise(signal, imaging.background_photons, rng)
    return camera_adu(counts, imaging.gain_adu_per_photon, imaging.offset_adu, imaging.read_noise_adu, rng)


def render_lineage(
    lineage: Lineage,
    *,
    imaging: ImagingParams | None = None,
    appearance: AppearanceParams | None = None,
    shape: Sequence[int] | None = None,
    lineage_voxel_size_um: Sequence[float] | float | None = None,
    radius_um: float | None = None,
    scale: float = 1.0,
    frames: slice | Iterable[int] | int | None = None,
    crop: Sequence[tuple[float, float]] | None = None,
    rules: Any = None,
    seed: int = 0,
    progress: bool = True,
    **imaging_overrides: Any,
) -> SimulationResult:
    """Render a 2D+t or 3D+t fluorescence movie of the nuclei of a lineage.

    Every node becomes a nucleus whose appearance follows its ground-truth state and
    the frames to its division or death (:class:`AppearanceParams`), imaged by the
    microscope model of :class:`ImagingParams` (anisotropic voxels and Gaussian PSF,
    background, Poisson shot noise, Gaussian read noise, optional bleaching and drift).

    Parameters
    ----------
    lineage : Lineage
        Any lineage whose nodes carry centroids ``z, y, x`` (pixels of the lineage grid),
        e.g. from ``dynacell.lineage.read_lineage`` (WormGUIDES AceTree, BlastoSPIM, CTC)
        or :func:`~dynacell.simulate.simulate_embryo`. 2D lineages (``ndim=2``) render 2D.
    imaging : ImagingParams, optional
        Microscope model; default ``ImagingParams()`` with the lineage's
        ``graph.graph["frame_interval_s"]`` when a reader set it (AceTree: 60 s).
        ``imaging_overrides`` replace fields.
    appearance : AppearanceParams, optional
        Nucleus appearance model; default ``AppearanceParams()``.
    shape : sequence of int, optional
        Rendered frame shape ``(Z, Y, X)`` or ``(Y, X)``. Default: large enough for every
        rendered nucleus (or the crop), in the rendered grid.
    lineage_voxel_size_um : float or sequence of float, optional
        Physical size (µm) of one lineage pixel along ``(z, y, x)``. Default: the
        lineage's ``graph.graph["voxel_size_um"]`` when a reader set it; for AceTree
        lineages (``graph.graph["format"] == "acetree"``, WormGUIDES) the isotropic
        :data:`~dynacell.simulate.params.WORMGUIDES_VOXEL_SIZE_UM` (logged); else
        ``imaging.voxel_size_um`` (the lineage is in the rendered grid at ``scale=1``).
    radius_um : float, optional
        Interphase radius of every nucleus (µm). Default: half the node's ``diameter_px``
        (in lineage pixels along x) when present, else ``appearance.radius_um`` with
        cell-cycle growth.
    scale : float
        Rendering scale: the rendered voxel size is ``imaging.voxel_size_um / scale``
        (``scale=0.5`` halves every axis in pixels; physical sizes are unchanged).
    frames : slice, int or iterable of int, optional
        Lineage frame numbers to render (default: first to last frame). Output frame
        ``i`` is lineage frame ``frames[i]``; output nodes are renumbered ``(i, label)``
        and keep the original number in the ``source_t`` attribute.
    crop : sequence of (start, stop), optional
        Spatial crop in lineage pixels per axis ``(z, y, x)`` (or ``(y, x)`` in 2D).
        Nuclei whose label does not reach the crop are left out of the output lineage.
    rules : EventRules, optional
        Rules for the ground-truth ``state`` of every node; default
        :func:`default_rules` (``EventRules.annotated_deaths()`` when the lineage
        annotates deaths, else ``EventRules.seed()``). Nodes whose track ends in
        ``death`` are rendered as apoptotic over their last frames.
    seed : int
        Seed of every random draw (``numpy.random.default_rng``): per track
        ``[seed, t0, label0]`` for shape and texture, per frame ``[seed, 1, t]`` for noise,
        so any frame subset renders the same pixels as the full movie.
    progress : bool
        Show a progress bar over frames.
    **imaging_overrides
        Fields of :class:`ImagingParams` to replace (e.g. ``photons=100``,
        ``voxel_size_um=(1.0, 0.5, 0.5)``; short names ``background``, ``gain``, ``offset``,
        ``bleach_rate`` are accepted, see ``ImagingParams.ALIASES``).

    Returns
    -------
    SimulationResult
        ``images`` ``(T, [Z,] Y, X)`` uint16 (ADU), ``labels`` ``(T, [Z,] Y, X)`` int32 with
        the node labels, ``lineage`` (renumbered frames, centroids in the rendered pixel
        grid, ``state``, ``source_t``, ``diameter_px``, ``track_id``) and ``params``.

    Raises
    ------
    InvalidInputError
        If the lineage is empty or a node has no centroid, an imaging override is
        unknown, ``scale`` is not positive, ``frames`` selects nothing, or ``shape`` /
        ``crop`` do not match the lineage dimensionality.

    Examples
    --------
    >>> from dynacell.lineage import Lineage
    >>> lin = Lineage(n_frames=2, ndim=2)
    >>> lin.add_node((0, 1), (20.0, 20.0)); lin.add_node((1, 1), (21.0, 20.0))
    >>> lin.add_edge((0, 1), (1, 1))
    >>> res = render_lineage(lin, shape=(40, 40), voxel_size_um=(0.5, 0.5), progress=False)
    >>> res.images.shape, res.images.dtype.name, sorted(res.lineage.labels_at(1))
    ((2, 40, 40), 'uint16', [1])
    """
    if not isinstance(lineage, Lineage):
        raise InvalidInputError(f"render_lineage: expected a dynacell Lineage, got {type(lineage).__name__}")
    if len(lineage) == 0:
        raise InvalidInputError(f"render_lineage: lineage {lineage.source!r} has no nodes; nothing to render")
    g = lineage.graph
    if not (np.isfinite(scale) and scale > 0):
        raise InvalidInputError(f"render_lineage: scale must be > 0, got {scale!r}")
    if radius_um is not None and not (np.isfinite(radius_um) and radius_um > 0):
        raise InvalidInputError(f"render_lineage: radius_um must be > 0, got {radius_um!r}")
    if imaging is None and "frame_interval_s" not in imaging_overrides and g.graph.get("frame_interval_s"):
        imaging_overrides["frame_interval_s"] = float(g.graph["frame_interval_s"])
    imaging = (imaging or ImagingParams()).with_overrides(**imaging_overrides)
    appearance = appearance or AppearanceParams()
    ndim = lineage.ndim
    seed = int(seed)

    if lineage_voxel_size_um is None:
        lineage_voxel_size_um = _lineage_voxel_size(lineage, imaging)
    lvs = np.asarray(_positive_triple("lineage_voxel_size_um", lineage_voxel_size_um))
    rvs = np.asarray(imaging.voxel_size_um) / float(scale)
    if ndim == 2:
        lvs[0] = rvs[0] = 1.0

    states = ground_truth_states(lineage, rules)
    frame_list = _resolve_frames(lineage, frames)
    frame_set = set(frame_list)
    by_frame: dict[int, list[Node]] = {t: [] for t in frame_list}
    for n in g.nodes:
        if n[0] in frame_set:
            by_frame[n[0]].append(n)

    def pos_lin(n: Node) -> np.ndarray:
        d = g.nodes[n]
        return np.array([d.get("z", 0.0) if ndim == 3 else 0.0, d.get("y", np.nan), d.get("x", np.nan)],
                        dtype=float)

    rendered_nodes = [n for ns in by_frame.values() for n in ns]
    missing = [n for n in rendered_nodes if not np.all(np.isfinite(pos_lin(n)))]
    if missing:
        n0 = min(missing)
        raise InvalidInputError(
            f"render_lineage: lineage {lineage.source!r} has {len(missing)} node(s) without a finite centroid in "
            f"the frames to render (first: frame {n0[0]}, label {n0[1]}); rendering needs positions z, y, x in "
            "pixels: read the lineage with its label images / a format that stores centroids, or render only "
            "frames that have them (frames=...)"
        )
    index = build_tracks(lineage, states, lambda n: pos_lin(n) * lvs, appearance, seed, nodes=rendered_nodes)
    grows_somewhere = radius_um is not None or any(
        g.nodes[n].get("diameter_px") is None for n in rendered_nodes
    )
    cycle_frames = cycle_frames_of(lineage) if grows_somewhere else DEFAULT_CYCLE_FRAMES

    def radius_of(n: Node) -> tuple[float, bool]:
        if radius_um is not None:
            return float(radius_um), True
        diam = g.nodes[n].get("diameter_px")
        if diam is not None and np.isfinite(diam) and diam > 0:
            return 0.5 * float(diam) * float(lvs[2]), False
        return appearance.radius_um, True

    n_sp = 3 if ndim == 3 else 2
    if crop is not None:
        crop_arr = np.asarray(crop, dtype=float)
        if crop_arr.shape != (n_sp, 2) or np.any(crop_arr[:, 1] <= crop_arr[:, 0]):
            raise InvalidInputError(
                f"render_lineage: crop must be {n_sp} (start, stop) pairs in lineage pixels with stop > start, "
                f"got {crop!r}"
            )
        origin = np.zeros(3)
        origin[3 - n_sp:] = crop_arr[:, 0]
    else:
        origin = np.zeros(3)
    drift_px = np.asarray(imaging.drift_um_per_frame) / rvs
    if ndim == 2:
        drift_px[0] = 0.0

    def centre_px(n: Node) -> np.ndarray:
        return (pos_lin(n) - origin) * lvs / rvs + drift_px * n[0]

    if shape is None:
        if crop is not None:
            ext = (crop_arr[:, 1] - crop_arr[:, 0]) * lvs[3 - n_sp:] / rvs[3 - n_sp:]
            full = np.ceil(ext).astype(int)
        else:
            rendered = rendered_nodes
            if not rendered:
                raise InvalidInputError(f"render_lineage: no node in frames {frame_list[0]}..{frame_list[-1]}")
            hi = np.max([centre_px(n) + 1.6 * radius_of(n)[0] / rvs for n in rendered], axis=0)
            full = np.ceil(hi + 1).astype(int)[3 - n_sp:]
        shape_t = tuple(int(max(v, 1)) for v in full)
    else:
        shape_t = tuple(int(v) for v in shape)
        if len(shape_t) != n_sp or min(shape_t) < 1:
            raise InvalidInputError(
                f"render_lineage: shape must be {n_sp} positive sizes for a {ndim}D lineage, got {shape!r}"
            )
    shape3 = (1, *shape_t) if ndim == 2 else shape_t
    psf_px = np.asarray(imaging.psf_sigma_um) / rvs
    if ndim == 2:
        psf_px[0] = 0.0  # 2D frames are rendered as (1, Y, X)

    T = len(frame_list)
    images = np.zeros((T, *shape_t), dtype=np.uint16)
    labels = np.zeros((T, *shape_t), dtype=np.int32)
    kept: dict[Node, np.ndarray] = {}
    diam_out: dict[Node, float] = {}
    n_dropped = 0
    for i, t in enumerate(tqdm(frame_list, desc="render", disable=not progress, unit="frame")):
        items = []
        centres: dict[Node, np.ndarray] = {}
        for n in sorted(by_frame[t]):
            info, k = index[n]
            r, grows = radius_of(n)
            c = centre_px(n)
            centres[n] = c
            diam_out[n] = 2.0 * r / rvs[2]
            for blob in node_blobs(info, k, r, grows, cycle_frames, appearance):
                items.append((n[1], c, blob, info))
        signal, lab, boxes = _rasterise(items, shape3, rvs, imaging.photons, t, planar=ndim == 2)
        shape_arr = np.asarray(shape3)
        for n, c in centres.items():
            if not _label_present(lab, boxes, n[1]):
                idx = np.rint(c).astype(int)
                if np.all(idx >= 0) and np.all(idx < shape_arr):
                    lab[tuple(idx)] = n[1]
                    boxes.setdefault(n[1], []).append(tuple(slice(v, v + 1) for v in idx))
        # a label overwritten by the fallback above may vanish: check every node once more
        for n, c in centres.items():
            if _label_present(lab, boxes, n[1]):
                kept[n] = c
            else:
                n_dropped += 1
        bleach = float(np.exp(-imaging.bleach_rate_per_frame * t))
        rng = np.random.default_rng([seed, 1, int(t)])
        img = _camera(signal, imaging, psf_px, bleach, rng)
        images[i] = img[0] if ndim == 2 else img
        labels[i] = lab[0] if ndim == 2 else lab
    if n_dropped:
        logger.info("render_lineage: %d node(s) fall outside the rendered frame and are left out", n_dropped)

    out = _sub_lineage(lineage, kept, frame_list, states, diam_out, ndim)
    params = {
        "generator": "dynacell.simulate.render_lineage",
        "seed": seed,
        "ndim": ndim,
        "axes": "TZYX" if ndim == 3 else "TYX",
        "shape": list(labels.shape),
        "scale": float(scale),
        "render_voxel_size_um": [float(v) for v in (rvs if ndim == 3 else rvs[1:])],
        "lineage_voxel_size_um": [float(v) for v in (lvs if ndim == 3 else lvs[1:])],
        "crop": None if crop is None else [[float(a), float(b)] for a, b in crop_arr],
        "radius_um": None if radius_um is None else float(radius_um),
        "frame_indices": [int(t) for t in frame_list],
        "cycle_frames": int(cycle_frames),
        "rules": _describe_rules(rules, lineage),
        "imaging": dataclasses.asdict(imaging),
        "appearance": dataclasses.asdict(appearance),
        "source": lineage.source,
    }
    return SimulationResult(images=images, labels=labels, lineage=out, params=params)


def _describe_rules(rules: Any, lineage: Lineage) -> Any:
    """A JSON-able description of the event rules used."""
    r = rules if rules is not None else default_rules(lineage)
    if dataclasses.is_dataclass(r):
        return {"class": type(r).__name__, **{k: _jsonable(v) for k, v in dataclasses.asdict(r).items()}}
    return repr(r)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return repr(v)


def _sub_lineage(lineage: Lineage, kept: dict[Node, np.ndarray], frame_list: list[int],
                 states: dict[Node, str], diam_out: dict[Node, float], ndim: int) -> Lineage:
    """The rendered nodes as a new lineage: frames renumbered, centroids in the rendered grid.

    A kept node is linked to its nearest kept ancestor (so a frame step or a crop that
    skips nodes keeps the tree connected).
    """
    g = lineage.graph
    new_t = {t: i for i, t in enumerate(frame_list)}
    out = Lineage(n_frames=len(frame_list), ndim=ndim, source=f"render_lineage({lineage.source})")
    skip = {"z", "y", "x", "track_id", "diameter_px", "state"}
    for n in sorted(kept):
        c = kept[n]
        attrs = {k: v for k, v in g.nodes[n].items() if k not in skip}
        out.add_node((new_t[n[0]], n[1]), c if ndim == 3 else c[1:], state=states.get(n, "unknown"),
                     source_t=int(n[0]), diameter_px=float(diam_out[n]), **attrs)
    for n in sorted(kept):
        cur = n
        while True:
            preds = list(g.predecessors(cur))
            if not preds:
                break
            cur = preds[0]
            if cur in kept:
                out.add_edge((new_t[cur[0]], cur[1]), (new_t[n[0]], n[1]))
                break
            if cur[0] < frame_list[0]:
                break
    out.assign_tracks(overwrite=True)
    return out
