"""A stochastic growing embryo (3D) or colony (2D) with divisions and deaths, rendered.

Cell dynamics (per frame, in µm): every cell moves by a Gaussian random step, cells
older than ``min_cycle_frames`` divide with probability ``division_rate_per_frame``
(daughters placed on opposite sides of the mother along a random axis) and cells die
with probability ``death_rate_per_frame``; then overlaps are removed by a few rounds
of pairwise repulsion (neighbours from :class:`scipy.spatial.cKDTree`) and cells are
kept inside the embryo sphere (3D) or the dish disc (2D) — a minimal centre-based
cell model (overdamped pairwise repulsion, as in Drasdo & Höhme 2005, *Phys. Biol.*
2:133). The resulting lineage is rendered with :func:`~dynacell.simulate.render_lineage`.

With the defaults (``division_rate_per_frame=0.2``, ``min_cycle_frames=6``,
``death_rate_per_frame=0.004``) 8 cells become 29-48 cells in 30 frames (seeds 0-4).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from dynacell.errors import InvalidInputError
from dynacell.lineage.graph import Lineage
from dynacell.simulate.params import AppearanceParams, ImagingParams
from dynacell.simulate.render import render_lineage
from dynacell.simulate.result import SimulationResult

__all__ = ["simulate_embryo", "grow_embryo"]

logger = logging.getLogger(__name__)

#: Target packing fraction of the container at the expected final cell count.
PACKING_FRACTION = 0.35
#: Default cell radius over nucleus radius (cells are kept 2 cell radii apart).
CELL_TO_NUCLEUS = 1.25
#: Rounds of pairwise repulsion per frame.
RELAX_ROUNDS = 12
#: Attempts (sub-seeds) to meet ``min_divisions`` / ``min_deaths`` before giving up.
MAX_ATTEMPTS = 200


def _relax(pos: np.ndarray, min_dist: float, container_radius: float, ndim: int) -> np.ndarray:
    """Push overlapping cells apart and back inside the container (µm, centre at 0)."""
    pos = pos.copy()
    for _ in range(RELAX_ROUNDS):
        if len(pos) > 1:
            pairs = cKDTree(pos).query_pairs(min_dist, output_type="ndarray")
            if len(pairs):
                d = pos[pairs[:, 1]] - pos[pairs[:, 0]]
                dist = np.linalg.norm(d, axis=1)
                zero = dist < 1e-9
                d[zero] = np.array([0.0, 1.0, 0.0]) if ndim == 2 else np.array([1.0, 0.0, 0.0])
                dist[zero] = 1.0
                push = (0.5 * (min_dist - dist) / dist)[:, None] * d
                np.add.at(pos, pairs[:, 0], -push)
                np.add.at(pos, pairs[:, 1], push)
        r = np.linalg.norm(pos, axis=1)
        out = r > container_radius
        if np.any(out):
            pos[out] *= (container_radius / r[out])[:, None]
        if ndim == 2:
            pos[:, 0] = 0.0
    return pos


def grow_embryo(
    *,
    ndim: int = 3,
    n_start: int = 8,
    n_frames: int = 30,
    division_rate_per_frame: float = 0.2,
    death_rate_per_frame: float = 0.004,
    radius_um: float = 4.0,
    cell_radius_um: float | None = None,
    min_cycle_frames: int = 6,
    motility_um_per_frame: float = 0.4,
    container_radius_um: float | None = None,
    min_divisions: int = 0,
    min_deaths: int = 0,
    seed: int = 0,
) -> tuple[list[dict[str, Any]], float, int]:
    """Cell dynamics only: positions (µm), divisions and deaths, no image.

    Parameters are those of :func:`simulate_embryo`.

    Returns
    -------
    cells : list of dict
        One dict per cell track: ``label`` (int, the track id, kept constant along the
        track as in CTC), ``parent`` (label or 0), ``t0``, ``fate`` (``"divides"``,
        ``"dies"`` or ``"survives"``), ``positions`` ndarray (n, 3) µm relative to the
        container centre (``z = 0`` in 2D).
    container_radius_um : float
        Radius of the embryo sphere / dish disc (µm); cell centres stay
        ``cell_radius_um`` inside it.
    attempt : int
        The sub-seed ``[seed, attempt]`` that met ``min_divisions`` and ``min_deaths``.

    Raises
    ------
    InvalidInputError
        If a parameter is out of range, or the constraints are not met within
        :data:`MAX_ATTEMPTS` attempts (rates too low for the number of frames).
    """
    if ndim not in (2, 3):
        raise InvalidInputError(f"simulate_embryo: ndim must be 2 or 3, got {ndim!r}")
    if n_start < 1 or n_frames < 1:
        raise InvalidInputError(f"simulate_embryo: n_start and n_frames must be >= 1, got {n_start}, {n_frames}")
    for name, v in (("division_rate_per_frame", division_rate_per_frame),
                    ("death_rate_per_frame", death_rate_per_frame)):
        if not (0.0 <= v <= 1.0):
            raise InvalidInputError(f"simulate_embryo: {name} is a probability per frame in [0, 1], got {v!r}")
    if not radius_um > 0 or min_cycle_frames < 1 or motility_um_per_frame < 0:
        raise InvalidInputError(
            "simulate_embryo: radius_um > 0, min_cycle_frames >= 1 and motility_um_per_frame >= 0 are required; "
            f"got {radius_um!r}, {min_cycle_frames!r}, {motility_um_per_frame!r}"
        )
    if min_divisions < 0 or min_deaths < 0:
        raise InvalidInputError("simulate_embryo: min_divisions and min_deaths must be >= 0")
    cell_r = CELL_TO_NUCLEUS * radius_um if cell_radius_um is None else float(cell_radius_um)
    if cell_r < radius_um:
        raise InvalidInputError(
            f"simulate_embryo: cell_radius_um ({cell_r}) must be >= the nucleus radius_um ({radius_um})"
        )
    mean_cycle = min_cycle_frames + (1.0 / division_rate_per_frame if division_rate_per_frame > 0 else np.inf)
    n_expected = max(n_start * 2.0 ** (n_frames / mean_cycle), n_start + min_divisions, 2)
    if container_radius_um is None:
        if ndim == 3:
            container_radius_um = cell_r * (n_expected / PACKING_FRACTION) ** (1.0 / 3.0)
        else:
            container_radius_um = cell_r * np.sqrt(n_expected / PACKING_FRACTION)
    inner = container_radius_um - cell_r
    if inner <= 0:
        raise InvalidInputError(
            f"simulate_embryo: container radius {container_radius_um} µm must exceed the cell radius {cell_r} µm"
        )
    min_dist = 2.0 * cell_r

    for attempt in range(MAX_ATTEMPTS):
        rng = np.random.default_rng([int(seed), attempt])
        start = rng.standard_normal((n_start, 3)) * inner * 0.5
        if ndim == 2:
            start[:, 0] = 0.0
        pos = _relax(start, min_dist, inner, ndim)
        cells = [{"label": i + 1, "parent": 0, "t0": 0, "fate": "survives", "positions": [p]}
                 for i, p in enumerate(pos)]
        alive = list(range(n_start))
        next_label = n_start + 1
        n_div = n_dead = 0
        for t in range(n_frames - 1):
            new_alive = []
            new_pos = []
            for ci in alive:
                c = cells[ci]
                age = t - c["t0"]
                p = c["positions"][-1]
                u = rng.random()
                if age >= min_cycle_frames and u < division_rate_per_frame:
                    c["fate"] = "divides"
                    n_div += 1
                    axis = rng.standard_normal(3)
                    if ndim == 2:
                        axis[0] = 0.0
                    axis /= np.linalg.norm(axis)
                    for sign in (-1.0, 1.0):
                        cells.append({"label": next_label, "parent": c["label"], "t0": t + 1,
                                      "fate": "survives", "positions": []})
                        next_label += 1
                        new_alive.append(len(cells) - 1)
                        new_pos.append(p + sign * axis * cell_r * 0.8)
                elif age >= 2 and t + 1 < n_frames - 1 and u > 1.0 - death_rate_per_frame:
                    # dies: this frame is its last; never on the last frame (seed rule: not a death)
                    c["fate"] = "dies"
                    n_dead += 1
                else:
                    step = rng.normal(0.0, motility_um_per_frame, 3)
                    if ndim == 2:
                        step[0] = 0.0
                    new_alive.append(ci)
                    new_pos.append(p + step)
            if new_alive:
                relaxed = _relax(np.array(new_pos), min_dist, inner, ndim)
                for ci, p in zip(new_alive, relaxed, strict=True):
                    cells[ci]["positions"].append(p)
            alive = new_alive
        if n_div >= min_divisions and n_dead >= min_deaths:
            for c in cells:
                c["positions"] = np.asarray(c["positions"], dtype=float).reshape(-1, 3)
            if attempt:
                logger.info("simulate_embryo: constraints met with sub-seed [%d, %d]", seed, attempt)
            return cells, float(container_radius_um), attempt
    raise InvalidInputError(
        f"simulate_embryo: no run with >= {min_divisions} divisions and >= {min_deaths} deaths in "
        f"{MAX_ATTEMPTS} attempts (n_start={n_start}, n_frames={n_frames}, division_rate_per_frame="
        f"{division_rate_per_frame}, death_rate_per_frame={death_rate_per_frame}); raise the rates or frames"
    )


def lineage_from_cells(cells: Sequence[dict[str, Any]], *, n_frames: int, ndim: int,
                       to_px: Callable[[np.ndarray], np.ndarray], source: str) -> Lineage:
    """Build the lineage graph of a grown population (embryo or colony) from its cell records.

    Each cell becomes a chain of nodes ``(t0 + k, label)`` linked frame to frame; a daughter's first node is
    linked to her mother's last node (a division); tracks are then assigned.

    Parameters
    ----------
    cells : sequence of dict
        Cell records as :func:`grow_embryo` (or :func:`dynacell.simulate.rods.simulate_rod_colony`) keep them:
        ``label`` (int > 0), ``parent`` (int, 0 = none), ``t0`` (first frame, int) and ``positions`` (one
        position per frame alive, in µm, each an array of shape ``(d,)`` float64).
    n_frames : int
        Number of frames of the movie.
    ndim : int
        Spatial dimensions of the lineage's positions, 2 or 3.
    to_px : callable
        Maps one position in µm to the node's position in pixels (shape ``(ndim,)``).
    source : str
        Provenance string stored on the lineage.

    Returns
    -------
    Lineage
        The lineage with node positions in pixels and tracks assigned.

    Raises
    ------
    KeyError
        If a cell's ``parent`` is not the label of another cell.
    """
    lin = Lineage(n_frames=n_frames, ndim=ndim, source=source)
    for c in cells:
        for k, p in enumerate(c["positions"]):
            lin.add_node((c["t0"] + k, c["label"]), to_px(p))
            if k:
                lin.add_edge((c["t0"] + k - 1, c["label"]), (c["t0"] + k, c["label"]))
    by_label = {c["label"]: c for c in cells}
    for c in cells:
        if c["parent"]:
            mother = by_label[c["parent"]]
            lin.add_edge((mother["t0"] + len(mother["positions"]) - 1, mother["label"]), (c["t0"], c["label"]))
    lin.assign_tracks()
    return lin


def simulate_embryo(
    *,
    ndim: int = 3,
    n_start: int = 8,
    n_frames: int = 30,
    division_rate_per_frame: float = 0.2,
    death_rate_per_frame: float = 0.004,
    radius_um: float = 4.0,
    cell_radius_um: float | None = None,
    shape: Sequence[int] | None = None,
    voxel_size_um: Sequence[float] | float | None = None,
    min_cycle_frames: int = 6,
    motility_um_per_frame: float = 0.4,
    min_divisions: int = 0,
    min_deaths: int = 0,
    imaging: ImagingParams | None = None,
    appearance: AppearanceParams | None = None,
    seed: int = 0,
    progress: bool = True,
    **imaging_overrides: Any,
) -> SimulationResult:
    """Simulate and render a growing embryo (3D) or colony (2D) with divisions and deaths.

    Parameters
    ----------
    ndim : {2, 3}
        3: cells packed without overlap in a sphere (an embryo); 2: a colony in a dish.
    n_start : int
        Cells at frame 0.
    n_frames : int
        Frames to simulate.
    division_rate_per_frame : float
        Probability per frame that a cell older than ``min_cycle_frames`` divides.
    death_rate_per_frame : float
        Probability per frame that a cell (at least 2 frames old) dies (apoptosis).
        Deaths never fall on the last frame.
    radius_um : float
        Interphase nucleus radius at division (µm).
    cell_radius_um : float, optional
        Cell radius (µm): cell centres are kept ``2 * cell_radius_um`` apart and the
        container is sized for them. Default ``1.25 * radius_um``.
    shape : sequence of int, optional
        Frame shape ``(Z, Y, X)`` / ``(Y, X)``; default: the container plus a margin.
    voxel_size_um : float or sequence, optional
        Overrides ``imaging.voxel_size_um``.
    min_cycle_frames : int
        Minimum cell-cycle length (frames) before a cell may divide.
    motility_um_per_frame : float
        Standard deviation of the random step per axis per frame (µm).
    min_divisions, min_deaths : int
        Guarantees: the dynamics are re-drawn with sub-seeds ``[seed, 1]``, ``[seed, 2]``,
        ... until they hold (e.g. for the demo: ``min_divisions=4, min_deaths=1``).
    imaging : ImagingParams, optional
        Microscope model (default ``ImagingParams()``); ``imaging_overrides`` replace fields.
    appearance : AppearanceParams, optional
        Appearance model; its ``radius_um`` is set to ``radius_um``.
    seed : int
        Seed of the dynamics and of the rendering.
    progress : bool
        Progress bar while rendering.

    Returns
    -------
    SimulationResult
        ``images``/``labels`` ``(T, [Z,] Y, X)`` uint16/int32, the ground-truth lineage
        (labels are track ids, constant along a track, CTC-style; states by
        ``EventRules.seed()``, exact here since cells never leave the field), and
        ``params`` including the dynamics under ``"embryo"``.

    Raises
    ------
    InvalidInputError
        If a parameter is out of range or the guarantees cannot be met.

    Examples
    --------
    >>> res = simulate_embryo(n_start=8, n_frames=30, min_divisions=4, min_deaths=1,
    ...                       progress=False)  # doctest: +SKIP
    """
    imaging = (imaging or ImagingParams()).with_overrides(**imaging_overrides)
    if voxel_size_um is not None:
        imaging = imaging.with_overrides(voxel_size_um=voxel_size_um)
    appearance = dataclasses.replace(appearance or AppearanceParams(), radius_um=float(radius_um))
    cells, container, attempt = grow_embryo(
        ndim=ndim, n_start=n_start, n_frames=n_frames, division_rate_per_frame=division_rate_per_frame,
        death_rate_per_frame=death_rate_per_frame, radius_um=radius_um, cell_radius_um=cell_radius_um,
        min_cycle_frames=min_cycle_frames,
        motility_um_per_frame=motility_um_per_frame, min_divisions=min_divisions, min_deaths=min_deaths,
        seed=seed,
    )
    vs = np.asarray(imaging.voxel_size_um)
    if shape is None:
        extent_um = 2.0 * (container - (cell_radius_um or CELL_TO_NUCLEUS * radius_um) + 1.6 * radius_um)
        shape3 = np.ceil(extent_um / vs).astype(int)
        shape_t = tuple(int(v) for v in (shape3 if ndim == 3 else shape3[1:]))
    else:
        shape_t = tuple(int(v) for v in shape)
        if len(shape_t) != ndim:
            raise InvalidInputError(f"simulate_embryo: shape must have {ndim} sizes for ndim={ndim}, got {shape!r}")
        shape3 = np.array(shape_t if ndim == 3 else (1, *shape_t))
    centre_px = (np.asarray(shape3 if ndim == 3 else (1, *shape_t)) - 1) / 2.0
    if ndim == 2:
        centre_px[0] = 0.0

    def to_px(p: np.ndarray) -> np.ndarray:
        px = centre_px + p / vs
        return px if ndim == 3 else px[1:]

    lin = lineage_from_cells(cells, n_frames=n_frames, ndim=ndim, to_px=to_px,
                             source=f"simulate_embryo(seed={seed})")

    from dynacell.lineage import EventRules

    res = render_lineage(lin, imaging=imaging, appearance=appearance, shape=shape_t,
                         lineage_voxel_size_um=imaging.voxel_size_um, rules=EventRules.seed(),
                         seed=seed, progress=progress)
    res.params["generator"] = "dynacell.simulate.simulate_embryo"
    res.params["embryo"] = {
        "ndim": ndim, "n_start": n_start, "n_frames": n_frames,
        "division_rate_per_frame": division_rate_per_frame, "death_rate_per_frame": death_rate_per_frame,
        "radius_um": radius_um, "cell_radius_um": cell_radius_um or CELL_TO_NUCLEUS * radius_um,
        "min_cycle_frames": min_cycle_frames,
        "motility_um_per_frame": motility_um_per_frame, "container_radius_um": container,
        "min_divisions": min_divisions, "min_deaths": min_deaths, "dynamics_attempt": attempt,
        "n_divisions": sum(c["fate"] == "divides" for c in cells),
        "n_deaths": sum(c["fate"] == "dies" for c in cells),
    }
    return res
