"""Nucleus appearance model: from a lineage node and the time to its events to blobs.

A *blob* is one ellipsoid of fluorescent chromatin (an interphase nucleus, a metaphase
plate, one of two anaphase masses, an apoptotic fragment). The rasteriser in
:mod:`dynacell.simulate.render` draws blobs; this module decides which blobs a node
has, from the track it belongs to and the frames to its division / death and since
its birth. Everything is in µm, relative to the node centre.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from dynacell.lineage.graph import Lineage, Node
from dynacell.simulate.params import AppearanceParams

__all__ = ["Blob", "TrackInfo", "build_tracks", "cycle_frames_of", "node_blobs", "DEFAULT_CYCLE_FRAMES"]

#: Cell-cycle length (frames) assumed when a lineage holds no complete cycle to measure.
DEFAULT_CYCLE_FRAMES = 20


@dataclass
class Blob:
    """One ellipsoid of chromatin, relative to its node centre.

    Attributes
    ----------
    offset_um : ndarray, shape (3,), float64
        Centre of the blob minus the node centre ``(z, y, x)`` in µm.
    inv_axes : ndarray, shape (3, 3), float64
        Matrix ``A`` with ``u = A @ (p - centre)`` (µm); the blob is ``|u| < 1``.
    half_extent_um : ndarray, shape (3,), float64
        Half-width of the blob's bounding box along ``z, y, x`` in µm.
    brightness : float
        Multiplier of ``ImagingParams.photons`` inside the blob.
    texture_amplitude : float
        Relative amplitude of the chromatin texture (0 = uniform).
    """

    offset_um: np.ndarray
    inv_axes: np.ndarray
    half_extent_um: np.ndarray
    brightness: float
    texture_amplitude: float


def _ellipsoid(offset_um: np.ndarray, semi_axes_um: np.ndarray, rotation: np.ndarray,
               brightness: float, texture_amplitude: float) -> Blob:
    """An ellipsoid with semi-axes ``semi_axes_um`` along the columns of ``rotation``."""
    semi = np.maximum(np.asarray(semi_axes_um, dtype=float), 1e-3)
    inv = (rotation / semi[None, :]).T  # u_i = (R[:, i] . d) / a_i
    half = np.sqrt(((rotation * semi[None, :]) ** 2).sum(axis=1))
    return Blob(np.asarray(offset_um, dtype=float), inv, half, float(brightness), float(texture_amplitude))


def _basis(axis: np.ndarray) -> np.ndarray:
    """Orthonormal basis (columns) whose first column is ``axis`` (unit, (z, y, x))."""
    a = axis / np.linalg.norm(axis)
    helper = np.array([1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    b = np.cross(a, helper)
    b /= np.linalg.norm(b)
    c = np.cross(a, b)
    return np.stack([a, b, c], axis=1)


@dataclass
class TrackInfo:
    """A track (chain of single-child edges) and what happens at its ends.

    Attributes
    ----------
    nodes : list of Node
        The track's nodes sorted by time.
    born_from_division : bool
        The first node's parent has two or more children.
    ends_in_division : bool
        The last node has two or more children.
    ends_in_death : bool
        The last node has the ground-truth state ``death``.
    division_axis : ndarray, shape (3,) or None
        Unit vector (z, y, x), µm space, from the first to the second daughter.
    rotation : ndarray, shape (3, 3)
        Orientation of the interphase ellipsoid (columns = axes).
    jitter : ndarray, shape (3,)
        Relative semi-axes of the interphase ellipsoid.
    fragment_dirs : ndarray, shape (F, 3)
        Unit directions of apoptotic fragments.
    texture_k, texture_phase, texture_omega : ndarray
        Chromatin texture plane waves: wave vectors (K, 3) in rad/µm, phases (K,) in rad,
        phase drift (K,) in rad/frame.
    brightness : float
        Log-normal brightness factor of the track (cell-to-cell variation).
    """

    nodes: list[Node]
    born_from_division: bool = False
    ends_in_division: bool = False
    ends_in_death: bool = False
    division_axis: np.ndarray | None = None
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    jitter: np.ndarray = field(default_factory=lambda: np.ones(3))
    fragment_dirs: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    texture_k: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    texture_phase: np.ndarray = field(default_factory=lambda: np.zeros(0))
    texture_omega: np.ndarray = field(default_factory=lambda: np.zeros(0))
    brightness: float = 1.0

    @property
    def t_first(self) -> int:
        """Frame of the first node."""
        return self.nodes[0][0]

    @property
    def t_last(self) -> int:
        """Frame of the last node."""
        return self.nodes[-1][0]


def _unit_vectors(rng: np.random.Generator, n: int, ndim: int) -> np.ndarray:
    """``n`` random unit vectors (z, y, x); in 2D they lie in the (y, x) plane."""
    v = rng.standard_normal((n, 3))
    if ndim == 2:
        v[:, 0] = 0.0
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    return v / norm


def cycle_frames_of(lineage: Lineage) -> int:
    """Median cell-cycle length (frames) of the lineage's complete cycles.

    A complete cycle is a track born from a division that ends in a division; its
    length is ``t_last - t_first + 1``. Returns :data:`DEFAULT_CYCLE_FRAMES` when the
    lineage holds none. One pass over the nodes in time order.

    Parameters
    ----------
    lineage : Lineage
        The lineage.

    Returns
    -------
    int
        The median cycle length in frames.
    """
    g = lineage.graph
    start: dict[Node, int] = {}
    born: dict[Node, bool] = {}
    cycles = []
    for n in sorted(g.nodes):
        preds = list(g.predecessors(n))
        if len(preds) == 1 and g.out_degree(preds[0]) == 1 and preds[0] in start:
            start[n], born[n] = start[preds[0]], born[preds[0]]
        else:
            start[n] = n[0]
            born[n] = len(preds) == 1 and g.out_degree(preds[0]) >= 2
        if born[n] and g.out_degree(n) >= 2:
            cycles.append(n[0] - start[n] + 1)
    return max(int(np.median(cycles)), 1) if cycles else DEFAULT_CYCLE_FRAMES


def _track_starts(g, nodes: Iterable[Node]) -> list[Node]:
    """First nodes of the tracks (chains of single-child links) holding ``nodes``."""
    memo: dict[Node, Node] = {}
    for node in sorted(nodes):
        path = []
        cur = node
        while cur not in memo:
            preds = list(g.predecessors(cur))
            if len(preds) != 1 or g.out_degree(preds[0]) != 1:
                memo[cur] = cur
                break
            path.append(cur)
            cur = preds[0]
        for p in path:
            memo[p] = memo[cur]
    return sorted({memo[n] for n in nodes})


def _spread_directions(n: int, ndim: int, rotation: np.ndarray) -> np.ndarray:
    """``n`` unit vectors spread evenly (Fibonacci sphere in 3D, equal angles in 2D), rotated.

    Apoptotic fragments placed along them stay apart from one another.
    """
    if n == 0:
        return np.zeros((0, 3))
    k = np.arange(n) + 0.5
    if ndim == 2:
        ang = 2.0 * np.pi * k / n
        v = np.stack([np.zeros(n), np.cos(ang), np.sin(ang)], axis=1)
    else:
        polar = np.arccos(1.0 - 2.0 * k / n)
        azim = np.pi * (1.0 + 5.0**0.5) * k
        v = np.stack([np.cos(polar), np.sin(polar) * np.cos(azim), np.sin(polar) * np.sin(azim)], axis=1)
    return v @ rotation.T


def build_tracks(lineage: Lineage, states: dict[Node, str], position_um: Callable[[Node], np.ndarray],
                 appearance: AppearanceParams, seed: int,
                 nodes: Iterable[Node] | None = None) -> dict[Node, tuple[TrackInfo, int]]:
    """Split the lineage into tracks and draw each track's random appearance.

    Randomness comes from ``numpy.random.default_rng([seed, t0, label0])`` with
    ``(t0, label0)`` the track's first node, so a track looks the same whatever subset of
    frames is rendered.

    Parameters
    ----------
    lineage : Lineage
        The full lineage.
    states : dict
        Ground-truth state of every node (``label_events`` output).
    position_um : callable
        Node → centroid ``(z, y, x)`` in µm (lineage grid), for division axes.
    appearance : AppearanceParams
        Texture and fragment settings.
    seed : int
        Base seed.
    nodes : iterable of Node, optional
        Only build the tracks holding these nodes (default: every track).

    Returns
    -------
    dict
        Node → ``(TrackInfo, position of the node in the track)`` for every node of the
        built tracks.
    """
    g = lineage.graph
    ndim = lineage.ndim
    index: dict[Node, tuple[TrackInfo, int]] = {}
    k_norm = 2.0 * np.pi / appearance.texture_scale_um
    if nodes is None:
        starts = sorted(n for n in g.nodes if len(p := list(g.predecessors(n))) != 1 or g.out_degree(p[0]) != 1)
    else:
        starts = _track_starts(g, nodes)
    for start in starts:
        preds = list(g.predecessors(start))
        track = [start]
        cur = start
        while True:
            succ = list(g.successors(cur))
            if len(succ) != 1 or g.in_degree(succ[0]) != 1:
                break
            cur = succ[0]
            track.append(cur)
        info = TrackInfo(nodes=track)
        info.born_from_division = len(preds) == 1 and g.out_degree(preds[0]) >= 2
        children = sorted(g.successors(track[-1]))
        info.ends_in_division = len(children) >= 2
        info.ends_in_death = states.get(track[-1]) == "death" and not children
        rng = np.random.default_rng([int(seed), int(start[0]), int(start[1])])
        if info.ends_in_division:
            axis = position_um(children[1]) - position_um(children[0])
            if ndim == 2:
                axis[0] = 0.0
            if not np.all(np.isfinite(axis)) or np.linalg.norm(axis) < 1e-9:
                axis = _unit_vectors(rng, 1, ndim)[0]  # daughters without (distinct) positions
            info.division_axis = axis / np.linalg.norm(axis)
        if ndim == 2:
            ang = rng.uniform(0, 2 * np.pi)
            c, s = np.cos(ang), np.sin(ang)
            info.rotation = np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])
        else:
            q, r = np.linalg.qr(rng.standard_normal((3, 3)))
            info.rotation = q * np.sign(np.diag(r))[None, :]
        info.jitter = np.clip(1.0 + appearance.shape_jitter * rng.standard_normal(3), 0.6, 1.4)
        info.fragment_dirs = _spread_directions(appearance.death_fragments, ndim, info.rotation)
        info.texture_k = k_norm * _unit_vectors(rng, appearance.texture_waves, ndim)
        info.texture_phase = rng.uniform(0, 2 * np.pi, appearance.texture_waves)
        info.texture_omega = rng.normal(0.0, 0.3, appearance.texture_waves)
        info.brightness = float(np.exp(appearance.brightness_sd * rng.standard_normal()))
        for i, n in enumerate(track):
            index[n] = (info, i)
    return index


def node_blobs(info: TrackInfo, position: int, radius_um: float, grows: bool, cycle_frames: int,
               appearance: AppearanceParams) -> list[Blob]:
    """The blobs of one node, from its track and the frames to its events.

    Parameters
    ----------
    info : TrackInfo
        The node's track.
    position : int
        Index of the node in ``info.nodes``.
    radius_um : float
        Interphase radius of the nucleus (µm): at division if ``grows``, else as measured.
    grows : bool
        Apply cell-cycle growth (volume from ``birth_volume_fraction`` to 1). False when
        the radius comes from a measured diameter, which already includes growth.
    cycle_frames : int
        Cell-cycle length used where a track's birth or division is unknown.
    appearance : AppearanceParams
        The appearance model.

    Returns
    -------
    list of Blob
        One blob (interphase, condensed, plate, dying), two (anaphase) or
        ``death_fragments`` (fragmented apoptotic nucleus).
    """
    ap = appearance
    t = info.nodes[position][0]
    since_birth = t - info.t_first
    to_end = info.t_last - t
    if grows:
        if info.born_from_division and info.ends_in_division:
            phase = since_birth / max(since_birth + to_end, 1)
        elif info.born_from_division:
            phase = min(since_birth / cycle_frames, 1.0)
        elif info.ends_in_division:
            phase = max(1.0 - to_end / cycle_frames, 0.0)
        else:
            phase = 0.5
        r = radius_um * (ap.birth_volume_fraction + (1.0 - ap.birth_volume_fraction) * phase) ** (1.0 / 3.0)
    else:
        r = radius_um
    bright = info.brightness
    tex = ap.texture_amplitude
    if info.born_from_division and since_birth < ap.daughter_frames:
        f = since_birth / ap.daughter_frames
        r *= ap.daughter_radius_factor + (1.0 - ap.daughter_radius_factor) * f
        bright *= ap.daughter_brightness + (1.0 - ap.daughter_brightness) * f
        tex *= 0.5 + 0.5 * f
    zero = np.zeros(3)
    if info.ends_in_death and to_end < ap.death_frames:
        q = (ap.death_frames - to_end) / ap.death_frames
        r_q = r * (1.0 - (1.0 - ap.death_radius_factor) * q)
        b_q = bright * (1.0 + (ap.death_brightness - 1.0) * q)
        if q <= 0.5 or ap.death_fragments < 2:
            return [_ellipsoid(zero, r_q * info.jitter, info.rotation, b_q, tex * (1.0 - q))]
        spread = r_q * (0.4 + 1.2 * (q - 0.5))
        frag_r = r_q * 0.45
        return [_ellipsoid(d * spread, np.full(3, frag_r), np.eye(3), b_q, 0.0) for d in info.fragment_dirs]
    if info.ends_in_division and info.division_axis is not None:
        basis = _basis(info.division_axis)
        to_end = to_end + ap.mitosis_lead_frames   # long frame intervals: the last frame is an earlier phase
        if to_end == 0:
            semi = r * ap.anaphase_radius_factor * np.array([0.7, 1.0, 1.0])
            half_sep = 0.5 * ap.anaphase_separation_factor * r * info.division_axis
            b = bright * ap.anaphase_brightness
            return [_ellipsoid(half_sep, semi, basis, b, 0.0), _ellipsoid(-half_sep, semi, basis, b, 0.0)]
        if to_end == 1:
            semi = r * np.array([ap.plate_thickness_factor, ap.plate_radius_factor, ap.plate_radius_factor])
            return [_ellipsoid(zero, semi, basis, bright * ap.plate_brightness, 0.0)]
        if to_end < 2 + ap.prophase_frames:
            p = (ap.prophase_frames + 2 - to_end) / (ap.prophase_frames + 1)
            r *= 1.0 - (1.0 - ap.condensed_radius_factor) * p
            bright *= 1.0 + (ap.condensed_brightness - 1.0) * p
            tex *= 1.0 + p
    return [_ellipsoid(zero, r * info.jitter, info.rotation, bright, tex)]
