"""Microscope vendor files (Nikon ND2, Zeiss CZI, Leica LIF, OME-TIFF) and PNG / JPEG frame series.

Vendor files are read with `bioio <https://github.com/bioio-devs/bioio>`_ and its pure-Python
plugins (``bioio-nd2``, ``bioio-czi``, ``bioio-lif``, ``bioio-ome-tiff``): one scene, one channel,
all time points, lazily (dask). The pixel size and the frame interval come from the file's
metadata when it has them; ``--voxel-size-um`` / ``--frame-interval-s`` override them.

A folder of PNG or JPEG files is read as one frame per file, in the order of the last number in
each name (``frame_001.png``, ``frame_002.png``, ...), with :mod:`imageio`. Colour images whose
three channels are equal are read as grey; real colour images need ``channel=``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from dynacell.errors import FormatError, InvalidInputError

__all__ = ["VENDOR_FORMATS", "IMAGE_SUFFIXES", "detect_vendor_format", "read_vendor"]

logger = logging.getLogger(__name__)

#: Vendor format name -> file suffixes (lower case).
VENDOR_FORMATS: dict[str, tuple[str, ...]] = {
    "nd2": (".nd2",),
    "czi": (".czi",),
    "lif": (".lif",),
    "ome-tiff": (".ome.tif", ".ome.tiff"),
}
#: Suffixes of the frame files of an ``image-series`` folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")



def detect_vendor_format(path: str | Path) -> str | None:
    """``"nd2"``, ``"czi"``, ``"lif"``, ``"ome-tiff"`` or ``"image-series"`` for such a path, else None.

    An ``.ome.tif`` file is reported as ``"ome-tiff"``; the TIFF reader of :mod:`dynacell.io`
    reads it as well (it is a TIFF), so callers route it there unless they ask for bioio.

    Parameters
    ----------
    path : str or Path
        A file or folder.

    Returns
    -------
    str or None

    Examples
    --------
    >>> detect_vendor_format("embryo.CZI"), detect_vendor_format("movie.tif")
    ('czi', None)
    """
    p = Path(path)
    name = p.name.lower()
    for fmt, suffixes in VENDOR_FORMATS.items():
        if name.endswith(suffixes) and not p.is_dir():
            return fmt
    if p.is_dir():
        files = [c.name.lower() for c in p.iterdir() if c.is_file() and not c.name.startswith(".")]
        if files and any(f.endswith(IMAGE_SUFFIXES) for f in files) and not any(
                f.endswith((".tif", ".tiff")) for f in files):
            return "image-series"
    return None


def _physical(img) -> tuple[float, float, float] | None:
    pps = img.physical_pixel_sizes
    vals = (pps.Z, pps.Y, pps.X)
    if pps.Y is None or pps.X is None:
        return None
    return tuple(float(v) if v is not None else np.nan for v in vals)


def _read_bioio(path: Path, fmt: str, channel: int | None, scene: int | None):
    try:
        from bioio import BioImage
    except ImportError as exc:  # pragma: no cover - bioio is a dependency
        raise FormatError(f"{path}: reading {fmt} files needs the bioio package ({exc})") from None
    try:
        img = BioImage(path)
    except Exception as exc:  # bioio raises many types for unreadable files; name the file and the reason
        raise FormatError(f"{path}: cannot read it as a {fmt} file ({type(exc).__name__}: {exc})") from None
    defaulted = [k for k, v in (("scene", scene), ("channel", channel)) if v is None]  # for the run's notes
    if scene is not None:
        if not 0 <= scene < len(img.scenes):
            raise InvalidInputError(f"{path}: scene {scene} does not exist; the file has {len(img.scenes)}: "
                                    f"{list(img.scenes)}")
        img.set_scene(scene)
    elif len(img.scenes) > 1:
        logger.warning("%s holds %d scenes; reading the first (%s) — choose another with --scene (scene=)", path,
                       len(img.scenes), img.scenes[0])
    n_c = int(img.dims.C)
    names = [str(c) for c in (img.channel_names or [])]
    if channel is None:
        if n_c > 1:
            logger.warning("%s has %d channels %s; reading channel 0 — choose another with --channel (channel=)",
                           path, n_c, names)
        channel = 0
    if not 0 <= channel < n_c:
        raise InvalidInputError(f"{path}: channel {channel} does not exist; the file has {n_c} channel(s) {names}")
    data = img.get_image_dask_data("TZYX", C=channel)
    axes = "TZYX"
    if data.shape[1] == 1:
        data = data[:, 0]
        axes = "TYX"
    pps = _physical(img)
    vs = None
    if pps is not None:
        vs = pps[1:] if axes == "TYX" else (pps if np.isfinite(pps[0]) else None)
    dt = None
    ti = getattr(img, "time_interval", None)
    if ti is not None:
        try:
            dt = float(ti.to("second").magnitude) if hasattr(ti, "to") else float(ti)
        except (TypeError, ValueError, AttributeError):
            dt = None
    extra: dict[str, Any] = {"reader": f"bioio ({type(img.reader).__module__.split('.')[0]})",
                             "channel": channel, "channel_names": names, "scene": img.current_scene,
                             "scenes": [str(v) for v in img.scenes], "scene_index": list(img.scenes).index(
                                 img.current_scene), "defaulted": defaulted}
    return data, axes, list(range(data.shape[0])), vs, dt, extra


def _to_grey(frame: np.ndarray, name: str, channel: int | str | None, kind: str = "images") -> np.ndarray:
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[-1] in (3, 4):
        rgb = frame[..., :3]
        if channel == "mean":  # the brightness of a colour image (dynacell particles on RGB videos)
            return rgb.mean(axis=-1, dtype=np.float32)
        if channel is not None:
            if not 0 <= channel < frame.shape[-1]:
                raise InvalidInputError(f"{name}: channel {channel} does not exist (the image has "
                                        f"{frame.shape[-1]} colour channels)")
            return frame[..., channel]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return rgb[..., 0]
        if kind == "labels":
            raise InvalidInputError(f"{name}: a colour label image (each nucleus painted a colour); dynacell reads "
                                    "labels as grey integer images (0 = background, one id per nucleus) — export "
                                    "the labels as 16-bit grey PNG or TIFF")
        raise InvalidInputError(f"{name}: a colour image; choose the nuclear channel with --channel (channel=; 0 red, "
                                "1 green, 2 blue)")
    raise InvalidInputError(f"{name}: expected a 2D grey or RGB image, got shape {frame.shape}")


def _read_series(folder: Path, channel: int | str | None, kind: str = "images", files: list[Path] | None = None):
    import dask
    import dask.array as da
    import imageio.v3 as iio

    if files is None:
        files = [c for c in folder.iterdir()
                 if c.is_file() and not c.name.startswith(".") and c.suffix.lower() in IMAGE_SUFFIXES]  # no '._x.png'
    from dynacell.io.readers import frame_series

    series = frame_series(folder, files, by_suffix=False)  # t1.png and t2.jpg: one series
    if len(series) > 1:
        raise InvalidInputError(f"{folder}: the frame files follow {len(series)} name patterns {sorted(series)}; "
                                "expected one series — put each series in its own folder")
    numbered = sorted(next(iter(series.values())))
    frames = [n for n, _ in numbered]
    if len(set(frames)) != len(frames):
        raise InvalidInputError(f"{folder}: two files carry the same frame number; keep one series per folder")
    first = _to_grey(np.asarray(iio.imread(numbered[0][1])), numbered[0][1].name, channel, kind)

    def load(f: Path) -> np.ndarray:
        a = _to_grey(np.asarray(iio.imread(f)), f.name, channel, kind)
        if a.shape != first.shape:
            raise InvalidInputError(f"{f}: frame shape {a.shape} differs from the first frame's {first.shape}")
        return a

    arrays = [da.from_delayed(dask.delayed(load)(f), shape=first.shape, dtype=first.dtype) for _, f in numbered]
    extra = {"reader": "imageio", "files": [str(f) for _, f in numbered], "channel": channel}
    return da.stack(arrays), "TYX", frames, None, None, extra


def read_vendor(path: str | Path, format: str | None = None, *, channel: int | str | None = None,  # noqa: A002
                scene: int | None = None, kind: str = "images", files: list[Path] | None = None):
    """Read a vendor file or a PNG/JPEG series lazily.

    Parameters
    ----------
    path : str or Path
        ``.nd2`` / ``.czi`` / ``.lif`` / ``.ome.tif`` file, or a folder of ``.png`` / ``.jpg`` frames.
    format : str, optional
        ``"nd2"``, ``"czi"``, ``"lif"``, ``"ome-tiff"`` or ``"image-series"`` (default: detected).
    channel : int, optional
        Channel to read (0-based). Default 0, with a warning when the file has several.
    scene : int, optional
        Scene (position) of a multi-scene file. Default 0, with a warning when there are several.
    kind : {"images", "labels"}
        What the file holds, for messages (a colour PNG of labels is refused as a colour label image).
    files : list of Path, optional
        The frame files of a PNG/JPEG series to read (default: every such file in the folder).

    Returns
    -------
    tuple
        ``(data, axes, frames, voxel_size_um, frame_interval_s, metadata)``: ``data`` a dask
        array ``(T, [Z,] Y, X)``, ``axes`` ``"TYX"`` or ``"TZYX"``, ``frames`` the frame numbers,
        ``voxel_size_um`` ``(Y, X)`` / ``(Z, Y, X)`` in µm or None, ``frame_interval_s`` or None,
        ``metadata`` a dict (reader, channel, channel names, scene, files).

    Raises
    ------
    InvalidInputError
        Missing path, unknown format, a channel or scene that does not exist, a colour PNG
        without ``channel=``, frames of different shapes.
    FormatError
        A file that bioio cannot read (corrupt, or a variant its plugin does not support).
    """
    p = Path(path)
    if not p.exists():
        raise InvalidInputError(f"{p}: no such file or folder; check the path")
    fmt = format or detect_vendor_format(p)
    if fmt == "image-series":
        return _read_series(p, channel, kind, files)
    if fmt in VENDOR_FORMATS:
        return _read_bioio(p, fmt, channel, scene)
    raise InvalidInputError(f"{p}: not a vendor file or PNG/JPEG series; expected one of "
                            f"{sorted(VENDOR_FORMATS) + ['image-series']}")
