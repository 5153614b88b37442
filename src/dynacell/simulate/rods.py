"""Rod-shaped bacteria growing in a packed 2D colony, imaged by phase contrast.

The phase-contrast counterpart of the fluorescence colonies of
:func:`~dynacell.simulate.simulate_embryo` (``ndim=2``), for state-classifier training data that
looks like a bacterial micro-colony (``ctc/bacteria-phc`` of the shared data):

* **Cells** (:func:`grow_rod_colony`) are capsules (spherocylinders: a rectangle of width ``w``
  capped by two half discs) of length ``L`` (pole to pole, µm). A cell is born with length
  ``L_b`` and elongates exponentially, ``L(a) = L_b 2^(a / c)`` at age ``a`` frames of its cycle
  of ``c`` frames (drawn per cell); it divides at age ``c`` into two daughters of length
  ``≈ L_b`` placed pole to pole along the mother's axis (the two halves of the mother). Over the
  last part of the cycle a septum constricts the mother at mid-cell (depth ``pinch`` of the
  width at its last frame), so the last frame before the split — the ``mitotic`` frame under
  the CTC annotation, where the daughters get their own labels at the next frame — shows the
  longest cell of its neighbourhood, pinched into two overlapping halves. Cells push each other
  apart (overdamped repulsion of overlapping capsules: translation along the contact normal and
  rotation by the contact torque, as in individual-based colony models, e.g. Volfson et al.
  2008, *PNAS* 105:15346), so the colony packs into aligned domains; a small random step and
  turn per frame add motion. No deaths.
* **Image** (:func:`render_phase_contrast`): a phase-contrast cell is darker than its
  background and wrapped in a bright halo. Per frame, from the binary cell mask ``m``::

      expected photons = B · S(y, x) · (1 + T(y, x) − a · (m_k ∗ g_psf) + b · (m ∗ g_halo) · (1 − m ∗ g_psf))

  with ``B`` the background photons per pixel, ``S`` a smooth multiplicative shading, ``T`` a
  static low-frequency background texture, ``a`` the dark contrast (``m_k``: the mask times a
  per-cell darkness factor), ``b`` the halo strength, ``g_halo`` a Gaussian of ``halo_sigma``
  (the halo is brightest in the thin gaps between packed cells and glows around the colony),
  ``g_psf`` the Gaussian blur of the optics; then Poisson shot noise, gain, offset and read
  noise by the one camera model of :mod:`dynacell.simulate.imaging`. An empirical image model
  (dark object, bright halo, as the phase-contrast imaging of thin objects produces it); the
  contrast and halo were set against the shared bacteria-phc movie (cells ~0.45 × the
  background, the ring around them ~1.5 ×).

:func:`simulate_rod_colony` does both and returns a :class:`SimulationResult` (labels are track
ids, CTC-style; the ground-truth lineage with ``state`` by ``EventRules.seed()``), ready for
:func:`dynacell.samples.build_sample_set` (``benchmarks/build_sim_state_sets.py --kind rods``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from dynacell.errors import InvalidInputError
from dynacell.simulate.embryo import lineage_from_cells
from dynacell.simulate.imaging import camera_adu, gaussian_blur, shot_noise
from dynacell.simulate.result import SimulationResult

__all__ = ["ROD_RANGES", "ROD_TARGET_CELLS", "PhaseContrastParams", "RodColonyParams", "draw_rods", "grow_rod_colony",
           "render_phase_contrast", "simulate_rod_colony"]

#: Rounds of pairwise capsule repulsion per frame.
RELAX_ROUNDS = 16
#: Attempts (sub-seeds) to meet ``min_divisions`` before giving up.
MAX_ATTEMPTS = 50


@dataclass(frozen=True)
class RodColonyParams:
    """Cell dynamics of a rod colony, in µm and frames.

    Attributes
    ----------
    width_um : float
        Cell width (capsule diameter), µm.
    birth_aspect : float
        Length at birth over width (pole to pole); a cell divides at about twice its birth length.
    cycle_frames : float
        Mean cell-cycle length (frames from birth to the first daughter frame).
    cycle_cv : float
        Coefficient of variation of the cycle length between cells (Gaussian, at least
        ``min_cycle_frames``).
    min_cycle_frames : int
        Shortest cycle, frames (>= 3, so that a cell has a stable middle).
    pinch : float
        Depth of the septum constriction at the mother's last frame, as a fraction of the width
        (0: none, 1: pinched through).
    pinch_onset : float
        Fraction of the cycle after which the septum starts to constrict (linearly to ``pinch``).
    motility_um_per_frame : float
        Standard deviation of the random step per axis per frame, µm.
    turn_rad_per_frame : float
        Standard deviation of the random turn per frame, radians.
    daughter_asymmetry : float
        Standard deviation of the daughters' length share around 1/2.
    """

    width_um: float = 1.0
    birth_aspect: float = 2.2
    cycle_frames: float = 8.0
    cycle_cv: float = 0.15
    min_cycle_frames: int = 4
    pinch: float = 0.5
    pinch_onset: float = 0.6
    motility_um_per_frame: float = 0.05
    turn_rad_per_frame: float = 0.03
    daughter_asymmetry: float = 0.03

    def __post_init__(self) -> None:
        """Check the ranges.

        Raises
        ------
        InvalidInputError
            If a size, aspect or cycle is out of range.
        """
        if not (self.width_um > 0 and self.birth_aspect >= 1.0 and self.cycle_frames >= self.min_cycle_frames):
            raise InvalidInputError(
                "RodColonyParams: width_um > 0, birth_aspect >= 1 and cycle_frames >= min_cycle_frames required; "
                f"got {self.width_um!r}, {self.birth_aspect!r}, {self.cycle_frames!r}")
        if self.min_cycle_frames < 3 or not (0.0 <= self.pinch <= 1.0) or not (0.0 <= self.pinch_onset < 1.0):
            raise InvalidInputError(
                "RodColonyParams: min_cycle_frames >= 3, pinch in [0, 1] and pinch_onset in [0, 1) required; "
                f"got {self.min_cycle_frames!r}, {self.pinch!r}, {self.pinch_onset!r}")


@dataclass(frozen=True)
class PhaseContrastParams:
    """Phase-contrast image model (see the module docstring); lengths in units of the cell width.

    Attributes
    ----------
    pixel_um : float
        Pixel size, µm.
    background_photons : float
        Expected photons per background pixel ``B`` (sets the shot noise).
    dark_contrast : float
        ``a``: a cell's interior reads ``1 - a`` of the background (bacteria-phc: ~0.55).
    darkness_sd : float
        Standard deviation of the per-cell darkness factor around 1.
    halo_strength : float
        ``b``: amplitude of the bright halo.
    halo_sigma_widths : float
        Gaussian sigma of the halo, in cell widths.
    psf_sigma_widths : float
        Gaussian sigma of the optical blur, in cell widths.
    shading : float
        Amplitude of the smooth multiplicative shading ``S`` (a linear ramp plus a broad blob).
    background_texture : float
        Amplitude (standard deviation) of the static low-frequency background texture ``T``.
    wall_widths : float
        Where two cells touch, the band of each within this distance (in cell widths; at least one
        pixel when positive) of the other is drawn as a bright wall instead of dark interior, as the
        cell walls between packed bacteria appear in phase contrast (bacteria-phc: a bright line of
        2-4 px between cells ~16 px wide). 0 (the default, the renders before 1 Dec) lets touching
        cells merge into one dark region.
    read_noise_adu, gain_adu_per_photon, offset_adu : float
        Camera (as :class:`~dynacell.simulate.params.ImagingParams`).
    """

    pixel_um: float = 0.08
    background_photons: float = 150.0
    dark_contrast: float = 0.55
    darkness_sd: float = 0.08
    halo_strength: float = 0.8
    halo_sigma_widths: float = 0.5
    psf_sigma_widths: float = 0.1
    shading: float = 0.15
    background_texture: float = 0.04
    wall_widths: float = 0.0
    read_noise_adu: float = 2.0
    gain_adu_per_photon: float = 1.0
    offset_adu: float = 100.0

    def __post_init__(self) -> None:
        """Check the ranges.

        Raises
        ------
        InvalidInputError
            If the pixel size or photons are not positive, or the contrast is outside [0, 1).
        """
        if not (self.pixel_um > 0 and self.background_photons > 0 and 0.0 <= self.dark_contrast < 1.0
                and self.halo_strength >= 0 and self.halo_sigma_widths > 0 and self.psf_sigma_widths >= 0
                and 0.0 <= self.wall_widths < 0.5):
            raise InvalidInputError(
                "PhaseContrastParams: pixel_um > 0, background_photons > 0, dark_contrast in [0, 1), "
                "halo_strength >= 0, halo_sigma_widths > 0, psf_sigma_widths >= 0, wall_widths in [0, 0.5) required")


def _closest_points(a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Closest points of segment pairs ``[a0, a1]``, ``[b0, b1]`` (arrays ``(m, 2)``), vectorised.

    Ericson 2005, *Real-Time Collision Detection*, §5.1.9 (``ClosestPtSegmentSegment``).
    """
    d1, d2, r = a1 - a0, b1 - b0, a0 - b0
    aa = np.einsum("ij,ij->i", d1, d1)
    ee = np.einsum("ij,ij->i", d2, d2)
    ff = np.einsum("ij,ij->i", d2, r)
    cc = np.einsum("ij,ij->i", d1, r)
    bb = np.einsum("ij,ij->i", d1, d2)
    aa = np.maximum(aa, 1e-12)
    ee = np.maximum(ee, 1e-12)
    denom = aa * ee - bb * bb
    s = np.where(denom > 1e-12, np.clip((bb * ff - cc * ee) / np.where(denom > 1e-12, denom, 1.0), 0, 1), 0.0)
    t = (bb * s + ff) / ee
    low, high = t < 0, t > 1
    t = np.clip(t, 0, 1)
    s = np.where(low, np.clip(-cc / aa, 0, 1), np.where(high, np.clip((bb - cc) / aa, 0, 1), s))
    return a0 + d1 * s[:, None], b0 + d2 * t[:, None]


def _relax_rods(pos: np.ndarray, angle: np.ndarray, length: np.ndarray, width: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Push overlapping capsules apart (translation along the contact normal, rotation by its torque)."""
    pos, angle = pos.copy(), angle.copy()
    if len(pos) < 2:
        return pos, angle
    reach = float(length.max()) + width
    for _ in range(RELAX_ROUNDS):
        pairs = cKDTree(pos).query_pairs(reach, output_type="ndarray")
        if not len(pairs):
            break
        u = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        half = np.maximum(length - width, 0.0)[:, None] / 2.0
        i, j = pairs[:, 0], pairs[:, 1]
        pi, pj = _closest_points(pos[i] - half[i] * u[i], pos[i] + half[i] * u[i],
                                 pos[j] - half[j] * u[j], pos[j] + half[j] * u[j])
        d = pj - pi
        dist = np.linalg.norm(d, axis=1)
        hit = dist < width
        if not hit.any():
            break
        i, j, pi, pj, d, dist = i[hit], j[hit], pi[hit], pj[hit], d[hit], dist[hit]
        zero = dist < 1e-9
        d[zero] = np.stack([-u[i[zero], 1], u[i[zero], 0]], axis=1)  # side by side: push sideways
        dist[zero] = 1.0
        push = (0.5 * (width - dist) / dist)[:, None] * d
        dpos = np.zeros_like(pos)
        np.add.at(dpos, i, -push)
        np.add.at(dpos, j, push)
        # torque of the contact force about each centre; rotational mobility 12 / L^2 (a rod)
        contact = 0.5 * (pi + pj)
        ri, rj = contact - pos[i], contact - pos[j]
        tq_i = ri[:, 0] * (-push[:, 1]) - ri[:, 1] * (-push[:, 0])
        tq_j = rj[:, 0] * push[:, 1] - rj[:, 1] * push[:, 0]
        dang = np.zeros_like(angle)
        np.add.at(dang, i, tq_i)
        np.add.at(dang, j, tq_j)
        pos += dpos
        angle += np.clip(0.5 * dang * 12.0 / np.maximum(length, width) ** 2, -0.2, 0.2)
    return pos, angle


def grow_rod_colony(params: RodColonyParams | None = None, *, n_start: int = 8, n_frames: int = 30,
                    min_divisions: int = 0, seed: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Cell dynamics of a rod colony: positions, orientations, lengths and divisions (no image).

    Parameters
    ----------
    params : RodColonyParams, optional
        Dynamics (default ``RodColonyParams()``).
    n_start : int
        Cells at frame 0 (each the root of a lineage tree), scattered in a small patch, at random
        ages of their first cycle.
    n_frames : int
        Frames to simulate.
    min_divisions : int
        Guarantee: the dynamics are re-drawn with sub-seeds ``[seed, 0, 1]``, ``[seed, 0, 2]``, ...
        until they hold.
    seed : int
        Seed (``numpy.random.default_rng([seed, 0, attempt])``).

    Returns
    -------
    cells : list of dict
        One dict per cell track: ``label`` (track id, constant along the track), ``parent``
        (label or 0), ``t0``, ``fate`` (``"divides"`` or ``"survives"``), ``cycle`` (frames),
        and per frame ``positions`` ndarray ``(n, 2)`` (y, x) µm, ``angle`` ``(n,)`` radians,
        ``length_um`` ``(n,)`` pole to pole, ``pinch`` ``(n,)`` septum depth (fraction of the width).
    attempt : int
        The sub-seed that met ``min_divisions``.

    Raises
    ------
    InvalidInputError
        If ``n_start`` or ``n_frames`` < 1, or ``min_divisions`` is not met in :data:`MAX_ATTEMPTS`.
    """
    p = params or RodColonyParams()
    if n_start < 1 or n_frames < 1:
        raise InvalidInputError(f"grow_rod_colony: n_start and n_frames must be >= 1, got {n_start}, {n_frames}")
    w = p.width_um
    birth_len = p.birth_aspect * w

    def cycle_of(rng: np.random.Generator) -> int:
        return int(max(p.min_cycle_frames, round(rng.normal(p.cycle_frames, p.cycle_cv * p.cycle_frames))))

    def shape_at(cell: dict, t: int) -> tuple[float, float]:
        age = t - cell["t0"] + cell["age0"]
        frac = age / cell["cycle"]
        length = cell["birth_len"] * 2.0 ** frac
        onset = p.pinch_onset
        last = (cell["cycle"] - 1) / cell["cycle"]
        pinch = 0.0 if frac <= onset or last <= onset else p.pinch * min(1.0, (frac - onset) / (last - onset))
        return float(length), float(pinch)

    for attempt in range(MAX_ATTEMPTS):
        rng = np.random.default_rng([int(seed), 0, attempt])
        patch = w * birth_len * np.sqrt(n_start)
        pos = rng.uniform(-0.5, 0.5, (n_start, 2)) * patch
        angle = rng.uniform(0, np.pi, n_start)
        cells = []
        for k in range(n_start):
            cyc = cycle_of(rng)
            age0 = int(rng.integers(0, cyc))
            cells.append({"label": k + 1, "parent": 0, "t0": 0, "age0": age0, "cycle": cyc,
                          "birth_len": birth_len * float(rng.uniform(0.9, 1.1)), "fate": "survives",
                          "positions": [], "angle": [], "length_um": [], "pinch": []})
        alive = list(range(n_start))
        lengths = np.array([shape_at(cells[k], 0)[0] for k in alive])
        pos, angle = _relax_rods(pos, angle, lengths, w)
        next_label = n_start + 1
        n_div = 0
        for t in range(n_frames):
            for k, ci in enumerate(alive):
                length, pinch = shape_at(cells[ci], t)
                cells[ci]["positions"].append(pos[k].copy())
                cells[ci]["angle"].append(float(angle[k]))
                cells[ci]["length_um"].append(length)
                cells[ci]["pinch"].append(pinch)
            if t == n_frames - 1:
                break
            new_alive, new_pos, new_angle = [], [], []
            for k, ci in enumerate(alive):
                c = cells[ci]
                age_next = t + 1 - c["t0"] + c["age0"]
                u = np.array([np.cos(angle[k]), np.sin(angle[k])])
                if age_next >= c["cycle"]:
                    c["fate"] = "divides"
                    n_div += 1
                    full = c["birth_len"] * 2.0
                    share = float(np.clip(rng.normal(0.5, p.daughter_asymmetry), 0.4, 0.6))
                    for sign, frac in ((-1.0, share), (1.0, 1.0 - share)):
                        dlen = full * frac
                        # the daughter's centre: the middle of its half of the mother
                        offset = sign * (full / 2.0 - dlen / 2.0)
                        cells.append({"label": next_label, "parent": c["label"], "t0": t + 1, "age0": 0,
                                      "cycle": cycle_of(rng), "birth_len": dlen, "fate": "survives",
                                      "positions": [], "angle": [], "length_um": [], "pinch": []})
                        next_label += 1
                        new_alive.append(len(cells) - 1)
                        new_pos.append(pos[k] + offset * u + rng.normal(0.0, p.motility_um_per_frame, 2))
                        new_angle.append(angle[k] + rng.normal(0.0, p.turn_rad_per_frame))
                else:
                    new_alive.append(ci)
                    new_pos.append(pos[k] + rng.normal(0.0, p.motility_um_per_frame, 2))
                    new_angle.append(angle[k] + rng.normal(0.0, p.turn_rad_per_frame))
            alive = new_alive
            lengths = np.array([shape_at(cells[ci], t + 1)[0] for ci in alive])
            pos, angle = _relax_rods(np.array(new_pos), np.array(new_angle), lengths, w)
        if n_div >= min_divisions:
            for c in cells:
                c["positions"] = np.asarray(c["positions"], dtype=float).reshape(-1, 2)
                for key in ("angle", "length_um", "pinch"):
                    c[key] = np.asarray(c[key], dtype=float)
            return cells, attempt
    raise InvalidInputError(f"grow_rod_colony: no run with >= {min_divisions} divisions in {MAX_ATTEMPTS} attempts "
                            f"(n_start={n_start}, n_frames={n_frames}, cycle_frames={p.cycle_frames})")


def _rasterise_rods(items: list[tuple[int, np.ndarray, float, float, float, float]], shape: tuple[int, int],
                    pixel_um: float, width_um: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels (int32) and a per-cell darkness map (float32) of capsules ``(label, centre_px, angle,
    length_um, pinch, darkness)``; where capsules overlap the pixel goes to the one it is deepest in."""
    labels = np.zeros(shape, dtype=np.int32)
    dark = np.zeros(shape, dtype=np.float32)
    best = np.full(shape, np.inf, dtype=np.float32)
    r_px = width_um / 2.0 / pixel_um
    sig_s = 0.35 * width_um / pixel_um  # septum constriction profile along the axis (px)
    for label, c, ang, length_um, pinch, darkness in items:
        half = max(length_um - width_um, 0.0) / 2.0 / pixel_um
        ext = half + r_px + 1
        lo = np.maximum(np.floor(c - ext).astype(int), 0)
        hi = np.minimum(np.ceil(c + ext).astype(int) + 1, shape)
        if np.any(hi <= lo):
            continue
        yy = (np.arange(lo[0], hi[0], dtype=np.float32) - np.float32(c[0]))[:, None]
        xx = (np.arange(lo[1], hi[1], dtype=np.float32) - np.float32(c[1]))[None, :]
        uy, ux = np.float32(np.cos(ang)), np.float32(np.sin(ang))  # axis (y, x) = (cos, sin), as the dynamics
        s = yy * uy + xx * ux
        q = -yy * ux + xx * uy
        along = np.maximum(np.abs(s) - np.float32(half), 0)
        dist = np.sqrt(q * q + along * along)
        radius = np.float32(r_px) * (1 - np.float32(pinch) * np.exp(-s * s / np.float32(2 * sig_s ** 2)))
        nd = dist / np.maximum(radius, np.float32(1e-3))
        inside = nd < 1.0
        sl = (slice(lo[0], hi[0]), slice(lo[1], hi[1]))
        win = inside & (nd < best[sl])
        labels[sl][win] = label
        dark[sl][win] = np.float32(darkness)
        best[sl][win] = nd[win]
    return labels, dark


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field smoothed by ``sigma_px`` (float32)."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_px, mode="wrap")
    sd = float(f.std())
    return f / np.float32(sd if sd > 0 else 1.0)


def _near_other_cell(labels: np.ndarray, reach_px: int) -> np.ndarray:
    """Pixels of a cell with a pixel of another cell within ``reach_px`` (square window), bool (Y, X)."""
    size = 2 * reach_px + 1
    big = np.iinfo(np.int32).max
    larger = ndimage.maximum_filter(labels, size=size) != labels
    smaller = ndimage.minimum_filter(np.where(labels > 0, labels, big), size=size) != labels
    return (labels > 0) & (larger | smaller)


def render_phase_contrast(labels: np.ndarray, darkness: np.ndarray, params: PhaseContrastParams,
                          width_um: float, rng: np.random.Generator,
                          static: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """One phase-contrast frame of a labelled cell mask (the image model of the module docstring).

    Parameters
    ----------
    labels : ndarray, shape (Y, X), int
        Cell labels (0 = background).
    darkness : ndarray, shape (Y, X), float32
        Per-pixel darkness factor of the cell covering it (1 = ``dark_contrast`` as given).
    params : PhaseContrastParams
        Image model.
    width_um : float
        Cell width (µm): halo and blur are given in widths.
    rng : numpy.random.Generator
        Noise of this frame.
    static : (shading, texture), optional
        Multiplicative shading ``S`` and background texture ``T``, ``(Y, X)`` float32 (fixed over a
        movie); default none (``S = 1``, ``T = 0``).

    Returns
    -------
    ndarray, shape (Y, X), uint16
        Camera frame in ADU: cells darker than the background, a bright halo around them.
    """
    m = (labels > 0).astype(np.float32)
    w_px = width_um / params.pixel_um
    psf = params.psf_sigma_widths * w_px
    inner = m
    if params.wall_widths > 0:
        inner = m * ~_near_other_cell(labels, max(1, int(round(params.wall_widths * w_px))))
    dark = gaussian_blur(inner * darkness, (psf, psf))
    body = gaussian_blur(inner, (psf, psf))
    halo = gaussian_blur(m, (params.halo_sigma_widths * w_px,) * 2) * (1 - body)
    level = 1.0 - np.float32(params.dark_contrast) * dark + np.float32(params.halo_strength) * halo
    if static is not None:
        shading, texture = static
        level = shading * (level + texture)
    signal = np.maximum(level, np.float32(0.02)) * np.float32(params.background_photons)
    counts = shot_noise(signal, 0.0, rng)
    return camera_adu(counts, params.gain_adu_per_photon, params.offset_adu, params.read_noise_adu, rng)


def simulate_rod_colony(colony: RodColonyParams | None = None, imaging: PhaseContrastParams | None = None, *,
                        n_start: int = 8, n_frames: int = 30, min_divisions: int = 0, seed: int = 0,
                        margin_um: float = 3.0) -> SimulationResult:
    """Simulate and render a growing rod colony as a phase-contrast movie with exact ground truth.

    Parameters
    ----------
    colony : RodColonyParams, optional
        Cell dynamics (default ``RodColonyParams()``).
    imaging : PhaseContrastParams, optional
        Image model (default ``PhaseContrastParams()``).
    n_start, n_frames, min_divisions, seed :
        As :func:`grow_rod_colony`; ``seed`` also seeds the image (``[seed, 1, t]`` per frame for the
        noise, ``[seed, 2]`` for the static shading and texture, ``[seed, 3]`` for the per-cell darkness).
    margin_um : float
        Space around the colony's extent over the whole movie, µm.

    Returns
    -------
    SimulationResult
        ``images`` ``(T, Y, X)`` uint16 (ADU), ``labels`` ``(T, Y, X)`` int32 (track ids; daughters get new
        ids at their first frame, CTC-style), ``lineage`` (centroids in pixels, ``state`` by
        ``EventRules.seed()``: the mother's last frame ``mitotic``, each daughter's first frame
        ``new_daughter``; exact, since cells never leave the field), ``params`` (every parameter).

    Raises
    ------
    InvalidInputError
        As :func:`grow_rod_colony`, or if ``margin_um`` is negative.

    Examples
    --------
    >>> res = simulate_rod_colony(n_start=4, n_frames=12, seed=0)  # doctest: +SKIP
    """
    from dynacell.lineage import EventRules
    from dynacell.simulate.render import ground_truth_states

    colony = colony or RodColonyParams()
    imaging = imaging or PhaseContrastParams()
    if margin_um < 0:
        raise InvalidInputError(f"simulate_rod_colony: margin_um must be >= 0, got {margin_um!r}")
    cells, attempt = grow_rod_colony(colony, n_start=n_start, n_frames=n_frames, min_divisions=min_divisions,
                                     seed=seed)
    allpos = np.concatenate([c["positions"] for c in cells if len(c["positions"])])
    reach = float(max(c["length_um"].max() for c in cells if len(c["length_um"]))) / 2.0 + margin_um
    lo_um = allpos.min(axis=0) - reach
    shape = tuple(int(v) for v in np.ceil((allpos.max(axis=0) + reach - lo_um) / imaging.pixel_um))

    lin = lineage_from_cells(cells, n_frames=n_frames, ndim=2, to_px=lambda pp: (pp - lo_um) / imaging.pixel_um,
                             source=f"simulate_rod_colony(seed={seed})")
    states = ground_truth_states(lin, EventRules.seed())
    for n, s in states.items():
        lin.graph.nodes[n]["state"] = s

    rng_static = np.random.default_rng([int(seed), 2])
    w_px = colony.width_um / imaging.pixel_um
    yy, xx = np.meshgrid(np.linspace(-1, 1, shape[0], dtype=np.float32), np.linspace(-1, 1, shape[1],
                         dtype=np.float32), indexing="ij")
    g = rng_static.normal(0.0, 1.0, 4).astype(np.float32)
    ramp = g[0] * yy + g[1] * xx
    blob = np.exp(-((yy - 0.5 * g[2]) ** 2 + (xx - 0.5 * g[3]) ** 2) / np.float32(0.5))
    shading = np.float32(1.0) + np.float32(imaging.shading) * (0.5 * ramp + blob - blob.mean())
    texture = np.float32(imaging.background_texture) * _smooth_field(rng_static, shape, 1.5 * w_px)
    static = (np.maximum(shading, np.float32(0.2)).astype(np.float32), texture.astype(np.float32))
    rng_dark = np.random.default_rng([int(seed), 3])
    darkness = {c["label"]: float(np.clip(rng_dark.normal(1.0, imaging.darkness_sd), 0.5, 1.5)) for c in cells}

    images = np.zeros((n_frames, *shape), dtype=np.uint16)
    labels = np.zeros((n_frames, *shape), dtype=np.int32)
    for t in range(n_frames):
        items = []
        for c in cells:
            k = t - c["t0"]
            if 0 <= k < len(c["positions"]):
                items.append((c["label"], (c["positions"][k] - lo_um) / imaging.pixel_um, c["angle"][k],
                              c["length_um"][k], c["pinch"][k], darkness[c["label"]]))
        lab, dark = _rasterise_rods(items, shape, imaging.pixel_um, colony.width_um)
        labels[t] = lab
        images[t] = render_phase_contrast(lab, dark, imaging, colony.width_um,
                                          np.random.default_rng([int(seed), 1, t]), static)
    params = {
        "generator": "dynacell.simulate.simulate_rod_colony",
        "seed": int(seed),
        "ndim": 2,
        "axes": "TYX",
        "shape": list(labels.shape),
        "render_voxel_size_um": [float(imaging.pixel_um)] * 2,
        "modality": "phase contrast",
        "colony": {**dataclasses.asdict(colony), "n_start": n_start, "n_frames": n_frames,
                   "min_divisions": min_divisions, "dynamics_attempt": attempt,
                   "n_divisions": sum(c["fate"] == "divides" for c in cells)},
        "imaging": dataclasses.asdict(imaging),
    }
    return SimulationResult(images=images, labels=labels, lineage=lin, params=params)


#: Uniform ranges of a rod colony's parameters, drawn per colony by :func:`draw_rods` (the rod colonies
#: of ``benchmarks/build_sim_state_sets.py --kind rods`` and of the ``rods`` segmentation training set):
#: fields of :class:`RodColonyParams` (µm, frames) and :class:`PhaseContrastParams` (halo and blur in cell
#: widths). Set around the shared bacteria-phc movie (cells ~16 px wide, ellipse aspect ~4 (2.9-5.8 over a
#: cycle), cycle ~8 frames, interior ~0.45 x and ring ~1.5 x the background) and widened on both sides.
ROD_RANGES: dict[str, tuple[float, float]] = {
    "width_um": (0.7, 1.2), "birth_aspect": (2.0, 4.0), "cycle_frames": (6.0, 12.0), "pinch": (0.1, 0.9),
    "motility_um_per_frame": (0.02, 0.15), "turn_rad_per_frame": (0.01, 0.08),
    "pixel_um": (0.06, 0.12), "background_photons": (30.0, 400.0), "dark_contrast": (0.35, 0.8),
    "halo_strength": (0.2, 1.5), "halo_sigma_widths": (0.25, 0.8), "psf_sigma_widths": (0.05, 0.25),
    "shading": (0.0, 0.4), "background_texture": (0.0, 0.1),
}
#: Cells a rod colony is grown to (its start count is ``ROD_TARGET_CELLS / 2^(frames / cycle)``, 6-24).
ROD_TARGET_CELLS = 128


def draw_rods(rng: np.random.Generator, ranges: dict[str, tuple[float, float]] | None = None,
              n_frames: int = 24, target_cells: int = ROD_TARGET_CELLS) -> dict:
    """One rod colony's randomised parameters (µm, frames, photons; see :data:`ROD_RANGES`).

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws, in the order of ``ranges``.
    ranges : dict, optional
        Uniform ranges (default :data:`ROD_RANGES`).
    n_frames : int
        Frames of the movie (sets the start count ``n_start``).
    target_cells : int
        Cells the colony grows to: ``n_start = target_cells / 2^(n_frames / cycle_frames)``, within 6-24.

    Returns
    -------
    dict
        ``colony`` (keywords of ``RodColonyParams``), ``imaging`` (of ``PhaseContrastParams``) and
        ``n_start``.
    """
    r = ROD_RANGES if ranges is None else ranges
    v = {k: float(rng.uniform(*r[k])) for k in r}
    colony_fields = {f.name for f in dataclasses.fields(RodColonyParams)}
    imaging_fields = {f.name for f in dataclasses.fields(PhaseContrastParams)}
    colony = {k: x for k, x in v.items() if k in colony_fields}
    imaging = {k: x for k, x in v.items() if k in imaging_fields}
    n_start = int(np.clip(round(target_cells / 2.0 ** (n_frames / colony["cycle_frames"])), 6, 24))
    return {"colony": colony, "imaging": imaging, "n_start": n_start}
