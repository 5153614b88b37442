"""Parameters of the simulator: the microscope (:class:`ImagingParams`) and the nuclei
(:class:`AppearanceParams`), all in physical units.

Both are frozen dataclasses; build variants with :func:`dataclasses.replace` or with
:meth:`ImagingParams.with_overrides`. ``asdict`` of both goes into
``SimulationResult.params`` so that every movie records how it was made.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from dynacell.errors import InvalidInputError

__all__ = ["ImagingParams", "AppearanceParams", "WORMGUIDES_VOXEL_SIZE_UM"]

#: µm per pixel of the WormGUIDES AceTree lineage (isotropic after diSPIM fusion; the
#: files give no physical unit). 0.1625 µm = 6.5 µm camera pixel / 40x objective of the
#: diSPIM; consistent with the data: nuclei centroids span ~300 x 160 x 167 px, i.e.
#: 49 x 26 x 27 µm for a ~50 x 30 x 30 µm embryo, and 4-cell nuclei of 37 px = 6 µm.
WORMGUIDES_VOXEL_SIZE_UM = 0.1625


def _triple(name: str, value: Any, *, minimum: float | None) -> tuple[float, float, float]:
    """Validate a per-axis value given as a scalar, ``(y, x)`` or ``(z, y, x)``.

    ``minimum=0.0`` requires values >= 0, ``minimum=None`` allows any sign; sizes use
    :func:`_positive_triple`. A ``(y, x)`` pair gets ``z`` equal to ``y`` (unused in 2D).
    """
    arr = np.atleast_1d(np.asarray(value, dtype=float)).ravel()
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    elif arr.size == 2:
        arr = np.array([arr[0], arr[0], arr[1]])
    if arr.size != 3 or not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{name} must be a finite number, (y, x) or (z, y, x); got {value!r}")
    if minimum is not None and np.any(arr < minimum):
        raise InvalidInputError(f"{name} must be >= {minimum} on every axis; got {value!r}")
    return (float(arr[0]), float(arr[1]), float(arr[2]))


def _positive_triple(name: str, value: Any) -> tuple[float, float, float]:
    """Like :func:`_triple` but every axis must be > 0."""
    out = _triple(name, value, minimum=0.0)
    if min(out) <= 0:
        raise InvalidInputError(f"{name} must be > 0 on every axis; got {value!r}")
    return out


@dataclass(frozen=True)
class ImagingParams:
    """Microscope model: sampling, point-spread function, photon budget and camera.

    The expected signal of a voxel is ``photons * density`` (density 1 inside an
    interphase nucleus, modulated by state and texture), blurred by an anisotropic
    Gaussian PSF, multiplied by the photobleaching factor ``exp(-bleach_rate_per_frame * t)``
    and added to ``background_photons``. The camera then draws Poisson shot noise on the
    photon count, converts to ADU with ``gain_adu_per_photon``, adds ``offset_adu`` and
    Gaussian read noise of standard deviation ``read_noise_adu``, and rounds/clips to
    uint16 (the standard sCMOS/CCD noise model, e.g. Mandracchia et al. 2020, *Nat.
    Commun.* 11:94).

    Parameters
    ----------
    voxel_size_um : tuple of float
        Voxel size ``(z, y, x)`` in µm (``z`` unused in 2D). Default ``(2.0, 0.5, 0.5)``:
        a light-sheet embryo acquisition with 4x anisotropy.
    frame_interval_s : float
        Time between frames in seconds (recorded; the appearance model works in frames).
    psf_sigma_um : tuple of float
        Standard deviation of the Gaussian PSF ``(z, y, x)`` in µm; the filter sigma per
        axis in pixels is ``psf_sigma_um / voxel_size_um`` (FWHM = 2.355 sigma).
    photons : float
        Expected photons per voxel at the centre of an interphase nucleus before blur.
    background_photons : float
        Expected background photons per voxel (autofluorescence, out-of-focus light).
    read_noise_adu : float
        Standard deviation of the Gaussian camera read noise in ADU.
    gain_adu_per_photon : float
        Camera conversion gain (ADU per detected photon).
    offset_adu : float
        Camera baseline added to every pixel (ADU).
    bleach_rate_per_frame : float
        Photobleaching rate: the signal of frame ``t`` is multiplied by
        ``exp(-bleach_rate_per_frame * t)``. 0 disables bleaching.
    drift_um_per_frame : tuple of float
        Stage drift ``(z, y, x)`` in µm per frame: frame ``t`` is shifted by ``t`` times
        this vector (labels and centroids move with it).

    Raises
    ------
    InvalidInputError
        If a size is not positive or a rate/noise is negative.
    """

    voxel_size_um: tuple[float, float, float] = (2.0, 0.5, 0.5)
    frame_interval_s: float = 60.0
    psf_sigma_um: tuple[float, float, float] = (1.0, 0.25, 0.25)
    photons: float = 60.0
    background_photons: float = 5.0
    read_noise_adu: float = 2.0
    gain_adu_per_photon: float = 1.0
    offset_adu: float = 100.0
    bleach_rate_per_frame: float = 0.0
    drift_um_per_frame: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "voxel_size_um", _positive_triple("voxel_size_um", self.voxel_size_um))
        object.__setattr__(self, "psf_sigma_um", _triple("psf_sigma_um", self.psf_sigma_um, minimum=0.0))
        object.__setattr__(
            self, "drift_um_per_frame", _triple("drift_um_per_frame", self.drift_um_per_frame, minimum=None)
        )
        for name in ("frame_interval_s", "gain_adu_per_photon"):
            v = float(getattr(self, name))
            if not (np.isfinite(v) and v > 0):
                raise InvalidInputError(f"ImagingParams.{name} must be > 0; got {getattr(self, name)!r}")
            object.__setattr__(self, name, v)
        for name in ("photons", "background_photons", "read_noise_adu", "offset_adu", "bleach_rate_per_frame"):
            v = float(getattr(self, name))
            if not (np.isfinite(v) and v >= 0):
                raise InvalidInputError(f"ImagingParams.{name} must be >= 0; got {getattr(self, name)!r}")
            object.__setattr__(self, name, v)

    #: Short names accepted by :meth:`with_overrides` (and so by ``render_lineage(**kw)``).
    ALIASES = {
        "background": "background_photons",
        "gain": "gain_adu_per_photon",
        "offset": "offset_adu",
        "bleach_rate": "bleach_rate_per_frame",
    }

    def with_overrides(self, **overrides: Any) -> ImagingParams:
        """A copy with some fields replaced.

        Field names, or the short names of :attr:`ALIASES` (``background``, ``gain``,
        ``offset``, ``bleach_rate``).

        Raises
        ------
        InvalidInputError
            If a name is not a field of :class:`ImagingParams` (no silent typos), or a
            field is given twice (by its name and its alias).
        """
        names = {f.name for f in dataclasses.fields(self)}
        for short, full in self.ALIASES.items():
            if short in overrides:
                if full in overrides:
                    raise InvalidInputError(f"imaging parameter {full!r} given twice (also as {short!r})")
                overrides[full] = overrides.pop(short)
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise InvalidInputError(
                f"unknown imaging parameter(s) {unknown}; valid names are {sorted(names)}"
            )
        return dataclasses.replace(self, **overrides)

    @classmethod
    def mouse_lightsheet(cls) -> ImagingParams:
        """Preset matched to the real mouse 8-cell light-sheet embryo in ``shared/data``.

        ``embryo3d/mouse-8cell`` (BlastoSPIM-like, H2B nuclear signal), frames of shape
        (71, 180, 247) uint16. The parameters were chosen by ``benchmarks/realism.py``
        to match its background level, nucleus-to-background contrast and
        signal-to-noise ratio; see that script's table for the measured values.
        """
        return cls(
            voxel_size_um=(2.0, 0.832, 0.832),
            frame_interval_s=900.0,
            psf_sigma_um=(1.5, 0.4, 0.4),
            photons=8.0,
            background_photons=8.0,
            read_noise_adu=1.0,
            gain_adu_per_photon=1.0,
            offset_adu=109.0,
        )

    @classmethod
    def hela_widefield(cls) -> ImagingParams:
        """Preset matched to the real CTC Fluo-N2DL-HeLa sequence 02 in ``shared/data``.

        2D H2B-GFP HeLa nuclei, 0.645 µm/px, 30 min/frame, uint16; parameters chosen by
        ``benchmarks/realism.py`` to match its background, contrast and SNR.
        """
        return cls(
            voxel_size_um=(1.0, 0.645, 0.645),
            frame_interval_s=1800.0,
            psf_sigma_um=(1.0, 0.6, 0.6),
            photons=280.0,
            background_photons=30.0,
            read_noise_adu=7.0,
            gain_adu_per_photon=2.0,
            offset_adu=33000.0,
        )


@dataclass(frozen=True)
class AppearanceParams:
    """How a nucleus looks as a function of its state and of the time to its event.

    Every change ramps linearly over a window of frames so that appearance changes
    smoothly around an event. ``r`` below is the interphase radius of the nucleus.

    Interphase: an ellipsoid whose volume grows linearly over the cell cycle from
    ``birth_volume_fraction`` of the final volume, with semi-axes jittered by
    ``shape_jitter`` and a random orientation per track, and a chromatin texture of
    ``texture_waves`` random plane waves of wavelength ``texture_scale_um`` and relative
    amplitude ``texture_amplitude`` fixed to the nucleus (it drifts slowly with time).

    Division (the last frame of a mother, ``t_div``): over the ``prophase_frames`` frames
    before ``t_div - 1`` chromatin condenses (radius × ``condensed_radius_factor``,
    brightness × ``condensed_brightness``, texture stronger); at ``t_div - 1`` a metaphase
    plate, a disc of thickness ``plate_thickness_factor * r`` perpendicular to the
    division axis (the axis joining the two daughters); at ``t_div`` two masses of radius
    ``anaphase_radius_factor * r`` separated by ``anaphase_separation_factor * r`` along
    that axis (anaphase/telophase), both in the mother's label.
    Daughters: born with radius ``daughter_radius_factor * r`` and brightness
    ``daughter_brightness``, relaxing to interphase over ``daughter_frames`` frames.

    Apoptosis (a track whose last node has the ground-truth state ``death``): over the
    last ``death_frames`` frames the nucleus shrinks to ``death_radius_factor * r``,
    brightens to ``death_brightness`` and, past half of that window, breaks into
    ``death_fragments`` bright fragments (apoptotic bodies); it disappears after.

    Parameters
    ----------
    radius_um : float
        Interphase radius (µm) of a nucleus whose node has no ``diameter_px``.
    shape_jitter : float
        Relative random variation of the three semi-axes (0 = spheres).
    brightness_sd : float
        Standard deviation of the log-brightness of a track (cell-to-cell variation of
        expression, log-normal; 0 = every nucleus equally bright).
    birth_volume_fraction : float
        Volume at birth over volume at division (0.5 = volume doubles).
    texture_amplitude, texture_scale_um, texture_waves
        Chromatin texture (relative amplitude, wavelength in µm, number of waves).
    prophase_frames : int
        Frames of chromatin condensation before the metaphase frame.
    mitosis_lead_frames : int
        Frames by which the mitosis sequence above runs ahead of the division (default 0: the
        mother's last frame shows anaphase, as with a frame interval of minutes). 1: the last
        frame shows the metaphase plate; 2: condensed chromatin — for long frame intervals
        (e.g. HeLa at 30 min) where anaphase falls between two frames.
    condensed_radius_factor, condensed_brightness : float
        Size and brightness of fully condensed chromatin relative to interphase.
    plate_thickness_factor, plate_radius_factor, plate_brightness : float
        Metaphase plate semi-axes (along, across the division axis) over ``r`` and brightness.
    anaphase_radius_factor, anaphase_separation_factor, anaphase_brightness : float
        The two anaphase masses.
    daughter_frames : int
        Frames over which a daughter relaxes to interphase appearance.
    daughter_radius_factor, daughter_brightness : float
        Daughter size (relative to its own interphase radius) and brightness just after the split.
    death_frames : int
        Frames of apoptosis before disappearance (the death node included).
    death_radius_factor, death_brightness : float
        Final size and brightness of a dying nucleus.
    death_fragments : int
        Number of apoptotic fragments.

    Raises
    ------
    InvalidInputError
        If a size or factor is not positive or a frame count is negative.
    """

    radius_um: float = 4.0
    shape_jitter: float = 0.1
    brightness_sd: float = 0.15
    birth_volume_fraction: float = 0.5
    texture_amplitude: float = 0.25
    texture_scale_um: float = 2.0
    texture_waves: int = 6
    prophase_frames: int = 3
    mitosis_lead_frames: int = 0
    condensed_radius_factor: float = 0.75
    condensed_brightness: float = 1.8
    plate_thickness_factor: float = 0.3
    plate_radius_factor: float = 0.85
    plate_brightness: float = 2.5
    anaphase_radius_factor: float = 0.5
    anaphase_separation_factor: float = 1.2
    anaphase_brightness: float = 2.5
    daughter_frames: int = 3
    daughter_radius_factor: float = 0.8
    daughter_brightness: float = 2.0
    death_frames: int = 4
    death_radius_factor: float = 0.5
    death_brightness: float = 2.5
    death_fragments: int = 4

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name.endswith(("frames", "waves", "fragments")):
                if int(v) != v or v < 0:
                    raise InvalidInputError(f"AppearanceParams.{f.name} must be an integer >= 0; got {v!r}")
                object.__setattr__(self, f.name, int(v))
                continue
            v = float(v)
            lower_ok = v >= 0 if f.name in ("shape_jitter", "texture_amplitude", "brightness_sd") else v > 0
            if not (np.isfinite(v) and lower_ok):
                raise InvalidInputError(f"AppearanceParams.{f.name} must be > 0; got {getattr(self, f.name)!r}")
            object.__setattr__(self, f.name, v)
        if self.birth_volume_fraction > 1:
            raise InvalidInputError(
                f"AppearanceParams.birth_volume_fraction must be in (0, 1]; got {self.birth_volume_fraction}"
            )
