"""Physical sizes from file metadata: units, TIFF tags, ImageJ and OME metadata.

Internal helpers of :mod:`dynacell.io`. Every function returns ``None`` for a size the file
does not state; nothing is guessed (issue 2: "never guessed silently").
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from dynacell.errors import InvalidInputError

logger = logging.getLogger(__name__)

#: Length units (lower case) → factor to micrometres.
LENGTH_UNITS_UM: dict[str, float] = {
    "micron": 1.0, "microns": 1.0, "um": 1.0, "\u00b5m": 1.0, "\u03bcm": 1.0, "micrometer": 1.0,
    "micrometre": 1.0, "nm": 1e-3, "nanometer": 1e-3, "nanometre": 1e-3, "mm": 1e3, "millimeter": 1e3,
    "millimetre": 1e3, "cm": 1e4, "centimeter": 1e4, "centimetre": 1e4, "m": 1e6, "meter": 1e6, "metre": 1e6,
    "angstrom": 1e-4, "\u00e5": 1e-4,
}
#: Time units (lower case) → factor to seconds.
TIME_UNITS_S: dict[str, float] = {
    "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0, "ms": 1e-3, "msec": 1e-3, "millisecond": 1e-3,
    "us": 1e-6, "\u00b5s": 1e-6, "microsecond": 1e-6, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0, "day": 86400.0,
}
#: TIFF ``XResolution`` values (pixels per inch) that programs write as a default, not a measurement.
_DEFAULT_DPI = {1.0, 72.0, 96.0, 300.0}


def _clean_unit(unit: Any) -> str:
    """Lower-case unit text; ImageJ stores µ as the literal escape ``\\u00B5``."""
    text = str(unit).strip()
    if "\\u" in text:
        text = text.encode("ascii", "backslashreplace").decode("unicode_escape")
    return text.lower()


def _convert(value: Any, unit: Any, table: dict[str, float]) -> float | None:
    """``value`` × the factor of ``unit`` in ``table``; None if the unit is unknown or the value not positive."""
    factor = table.get(_clean_unit(unit)) if unit is not None else None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if factor is None or not math.isfinite(v) or v <= 0:
        return None
    return v * factor


def length_to_um(value: Any, unit: Any) -> float | None:
    """Convert a length ``value`` in ``unit`` to µm; None if the unit is unknown or the value not positive."""
    return _convert(value, unit, LENGTH_UNITS_UM)


def time_to_s(value: Any, unit: Any) -> float | None:
    """Convert a time ``value`` in ``unit`` to seconds; None if the unit is unknown or the value not positive."""
    return _convert(value, unit, TIME_UNITS_S)


def _rational(value: Any) -> float | None:
    if isinstance(value, tuple) and len(value) == 2:
        num, den = value
        return float(num) / float(den) if den else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def tiff_physical_sizes(tif: Any) -> tuple[dict[str, float], float | None, str]:
    """Physical pixel sizes stated in an open TIFF file.

    Looks, in order, at dynacell's own JSON description (``voxel_size_um``, ``frame_interval_s``
    written by :func:`dynacell.io.write_tiff_series`), OME-XML (``PhysicalSizeX/Y/Z`` with their
    units, ``TimeIncrement``), ImageJ metadata (``unit``, ``spacing``, ``finterval``, ``tunit``
    with the ``XResolution``/``YResolution`` tags) and finally the baseline TIFF tags
    ``XResolution``/``YResolution`` with ``ResolutionUnit`` CENTIMETER or INCH (TIFF 6.0 §
    "Resolution"; INCH values 1, 72, 96, 300 are treated as program defaults and ignored).

    Parameters
    ----------
    tif : tifffile.TiffFile
        An open file.

    Returns
    -------
    sizes : dict
        Keys among ``"x", "y", "z"``: pixel size in µm along that axis (only those stated).
    frame_interval_s : float or None
        Time between frames in seconds, if stated.
    origin : str
        Which metadata gave the values (``"dynacell"``, ``"ome"``, ``"imagej"``, ``"tiff"`` or ``""``).
    """
    page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
    shaped = tif.shaped_metadata
    if shaped and isinstance(shaped[0], dict) and "voxel_size_um" in shaped[0]:
        md = shaped[0]
        sizes: dict[str, float] = {}
        vs = md.get("voxel_size_um")
        axes = str(md.get("spatial_axes", "ZYX"))[-len(vs):] if vs else ""
        for ax, v in zip(axes.lower(), vs or ()):
            sizes[ax] = float(v)
        dt = md.get("frame_interval_s")
        return sizes, (float(dt) if dt else None), "dynacell"
    if tif.is_ome and tif.ome_metadata:
        sizes, dt = _ome_xml_sizes(tif.ome_metadata)
        if sizes or dt:
            return sizes, dt, "ome"
    xres = _rational(page.tags["XResolution"].value) if "XResolution" in page.tags else None
    yres = _rational(page.tags["YResolution"].value) if "YResolution" in page.tags else None
    if tif.is_imagej and tif.imagej_metadata:
        md = tif.imagej_metadata
        unit = md.get("unit")
        sizes = {}
        if unit is not None and _clean_unit(unit) in LENGTH_UNITS_UM:
            if xres:
                sizes["x"] = length_to_um(1.0 / xres, unit)
            if yres:
                sizes["y"] = length_to_um(1.0 / yres, unit)
            if md.get("spacing"):
                sizes["z"] = length_to_um(md["spacing"], unit)
        sizes = {k: v for k, v in sizes.items() if v}
        dt = time_to_s(md["finterval"], md.get("tunit", "sec")) if md.get("finterval") else None
        if sizes or dt:
            return sizes, dt, "imagej"
    unit_tag = page.tags["ResolutionUnit"].value if "ResolutionUnit" in page.tags else 2
    unit_code = int(unit_tag)
    sizes = {}
    if xres and yres and unit_code in (2, 3):
        if unit_code == 2 and (xres in _DEFAULT_DPI and yres in _DEFAULT_DPI):
            logger.debug("%s: XResolution %s dpi looks like a program default; pixel size unknown", tif.filename, xres)
        else:
            per_um = 25400.0 if unit_code == 2 else 1e4
            sizes = {"x": per_um / xres, "y": per_um / yres}
    return sizes, None, "tiff" if sizes else ""


def _ome_xml_sizes(xml: str) -> tuple[dict[str, float], float | None]:
    from tifffile import xml2dict

    try:
        ome = xml2dict(xml).get("OME", {})
    except Exception:  # malformed XML: metadata is optional, sizes stay unknown
        logger.warning("OME-XML could not be parsed; physical sizes taken from the arguments only")
        return {}, None
    images = ome.get("Image", {})
    image = images[0] if isinstance(images, list) else images
    pixels = image.get("Pixels", {}) if isinstance(image, dict) else {}
    sizes = {}
    for ax in "XYZ":
        if f"PhysicalSize{ax}" in pixels:
            v = length_to_um(pixels[f"PhysicalSize{ax}"], pixels.get(f"PhysicalSize{ax}Unit", "\u00b5m"))
            if v:
                sizes[ax.lower()] = v
    dt = None
    if "TimeIncrement" in pixels:
        dt = time_to_s(pixels["TimeIncrement"], pixels.get("TimeIncrementUnit", "s"))
    return sizes, dt


def sizes_for_axes(sizes: dict[str, float], spatial_axes: str) -> tuple[float, ...] | None:
    """Voxel size tuple in ``spatial_axes`` order (e.g. ``"ZYX"``), or None if any axis is missing."""
    if all(ax.lower() in sizes for ax in spatial_axes):
        return tuple(float(sizes[ax.lower()]) for ax in spatial_axes)
    return None


def resolve_sizes(
    source: str,
    spatial_axes: str,
    meta_voxel: tuple[float, ...] | None,
    meta_interval: float | None,
    voxel_size_um: float | Sequence[float] | None,
    frame_interval_s: float | None,
) -> tuple[tuple[float, ...] | None, float | None]:
    """Combine sizes from metadata with explicit arguments; the arguments win.

    Parameters
    ----------
    source : str
        File or folder, for messages.
    spatial_axes : {"YX", "ZYX"}
        Spatial axes of the movie.
    meta_voxel, meta_interval
        Sizes read from metadata (µm, s) or None.
    voxel_size_um : float or sequence of float or None
        Explicit voxel size in µm in ``spatial_axes`` order; a single number means isotropic.
    frame_interval_s : float or None
        Explicit frame interval in seconds.

    Returns
    -------
    voxel_size_um : tuple of float or None
    frame_interval_s : float or None

    Raises
    ------
    InvalidInputError
        If ``voxel_size_um`` has the wrong number of values.
    """
    n = len(spatial_axes)
    voxel = meta_voxel
    if voxel_size_um is not None:
        if isinstance(voxel_size_um, (int, float)):
            given = (float(voxel_size_um),) * n
        else:
            given = tuple(float(v) for v in voxel_size_um)
        if len(given) != n:
            raise InvalidInputError(
                f"{source}: voxel_size_um needs {n} values in {spatial_axes} order, got {tuple(voxel_size_um)}; "
                f"pass e.g. voxel_size_um={(1.0,) * n}"
            )
        if meta_voxel is not None and not all(math.isclose(a, b, rel_tol=1e-3) for a, b in zip(given, meta_voxel)):
            logger.info("%s: voxel_size_um=%s given; overrides %s µm from the file metadata", source, given,
                        meta_voxel)
        voxel = given
    interval = meta_interval
    if frame_interval_s is not None:
        if meta_interval is not None and not math.isclose(float(frame_interval_s), meta_interval, rel_tol=1e-3):
            logger.info(
                "%s: frame_interval_s=%s given; overrides %s s from the file metadata", source, frame_interval_s,
                meta_interval,
            )
        interval = float(frame_interval_s)
    if voxel is None:
        logger.debug("%s: voxel size unknown (no metadata, none given)", source)
    return voxel, interval
