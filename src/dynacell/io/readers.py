"""Open movies and label movies lazily: CTC folders, TIFF folders and stacks, zarr / OME-Zarr, npz.

Every reader returns a :class:`~dynacell.io.movie.Movie` whose ``data`` is a dask array with one
chunk per frame (a folder of per-frame TIFFs: a :class:`TiffFolderArray`, which builds that dask
array on first use); pixels are read from disk only when a frame is computed.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dynacell.errors import DynacellError, FormatError, InvalidInputError
from dynacell.io._meta import length_to_um, resolve_sizes, sizes_for_axes, time_to_s
from dynacell.io._tiff import UNNAMED_AXES, frame_layout, inspect_tiff, read_stack_frame, read_tiff_frame
from dynacell.io.limits import ENV_VARS, check_frame_voxels, get_limits
from dynacell.io.movie import TIFF_FRAMES_KEY, Movie

__all__ = ["open_movie", "open_labels", "detect_format", "FORMATS", "CTC_PREFIXES"]

logger = logging.getLogger(__name__)

#: Formats understood by :func:`open_movie` / :func:`open_labels` (``format=``).
FORMATS = ("ctc", "tiff-folder", "tiff-stack", "zarr", "npz", "image-series", "nd2", "czi", "lif", "ome-tiff")
_VENDOR = ("image-series", "nd2", "czi", "lif", "ome-tiff")  # read by dynacell.io.vendor (bioio, imageio)
#: File-name prefixes of CTC frame files: images, TRA masks, result masks, SEG masks.
CTC_PREFIXES = ("t", "man_track", "mask", "man_seg")
_CTC_RE = re.compile(r"^(t|man_track|mask|man_seg)(\d+)\.tiff?$")
_TIFF_SUFFIXES = (".tif", ".tiff")
_DIGITS_RE = re.compile(r"\d+")
#: Text just before a number that marks it as the time point: ``t001``, ``_T_001``, ``time12``, ``frame_3``, ``tp4``.
_TIME_PREFIX_RE = re.compile(r"(?:^|[^a-z])(?:t|time|frame|tp)[_\-]?$", re.I)
#: A word in a per-frame file name that marks a mask series, not images: Cellpose's ``*_cp_masks.png`` /
#: ``*_masks.tif``, ``*_labels.tif``, ``*_seg.tif``, ``*_mask.png``.
_MASK_WORD_RE = re.compile(r"(?:^|[_\-. ])(?:cp_masks|masks?|labels?|seg|segmentation|lbl)(?=$|[_\-. #])", re.I)
#: Preferred CTC prefix when a folder holds several kinds of frame files.
_PREFERENCE = {"images": ("t", "mask", "man_track", "man_seg"), "labels": ("man_track", "mask", "man_seg", "t")}
_NPZ_META_KEYS = ("voxel_size_um", "frame_interval_s", "axes", "frame_indices")


def open_movie(
    path: str | Path,
    *,
    voxel_size_um: float | Sequence[float] | None = None,
    frame_interval_s: float | None = None,
    format: str | None = None,
    axes: str | None = None,
    channel: int | str | None = None,
    scene: int | None = None,
    progress: bool = False,
) -> Movie:
    """Open an image movie lazily, shape ``(T, [Z,] Y, X)``.

    Parameters
    ----------
    path : str or Path
        One of: a CTC sequence folder (``tTTT.tif``; ``NN/`` of the Cell Tracking Challenge), a
        folder of per-frame TIFFs (ordered by the last number in each name), a multi-frame TIFF
        stack (ImageJ / OME axes decide T vs Z; a plain 3-D stack is ``TYX``), a zarr / OME-Zarr
        store (multiscale level 0), or an ``.npz`` file (key ``images``, else the only array;
        optional keys ``voxel_size_um``, ``frame_interval_s``, ``axes``, ``frame_indices``; an
        npz cannot be read lazily, so its array is loaded into memory).
    voxel_size_um : float or sequence of float, optional
        Voxel size in µm in ``(Y, X)`` or ``(Z, Y, X)`` order; a single number means isotropic.
        Overrides file metadata (a differing value is logged). None: taken from the metadata
        (OME, ImageJ, TIFF resolution tags, NGFF ``coordinateTransformations``) or left unknown.
    frame_interval_s : float, optional
        Time between frames in seconds; overrides metadata like ``voxel_size_um``.
    format : {"ctc", "tiff-folder", "tiff-stack", "zarr", "npz"}, optional
        Force a format instead of detecting it from the path.
    axes : str, optional
        Axes of a TIFF stack, zarr array or npz array when its metadata do not say (e.g.
        ``"TZYX"``, ``"ZTYX"``, ``"TCYX"``); needed for a 4-D stack without axes.
    channel : int, optional
        Channel to read (0-based) from a multi-channel TIFF stack, zarr array, npz array or
        vendor file (``C`` axis); a file with one channel needs none. A folder of frames holds one
        channel per file (colour PNG/JPEG series excepted), so it takes no ``channel``. For a colour
        PNG/JPEG series ``channel="mean"`` reads the average of the red, green and blue channels (float32).
    scene : int, optional
        Scene (stage position) of a multi-position ND2, CZI, LIF or OME-TIFF file read with bioio, or
        series of an OME-Zarr store in bioformats2raw layout (0-based). Default: the first, with a warning
        and a run note when there are several.
    progress : bool
        Show a progress bar while scanning the headers of a folder of frames.

    Returns
    -------
    Movie
        ``data`` is a dask array ``(T, [Z,] Y, X)`` in the file's dtype, one chunk per frame;
        ``frame_indices`` are the frame numbers (CTC ``TTT``; gaps are kept, never filled);
        ``metadata`` holds ``format``, ``files`` (per-frame files, if any) and ``size_origin``.

    Raises
    ------
    InvalidInputError
        Missing or empty path, unknown format, inconsistent frame shapes (names the first
        offending file and both shapes), ambiguous axes, several channels without ``channel``, a
        ``channel`` the file does not have.
    FormatError
        A file that is not a readable TIFF / zarr / npz (names the file).

    Notes
    -----
    Layout of CTC folders: Maška et al., "The Cell Tracking Challenge: 10 years of objective
    benchmarking", Nature Methods 20, 1010–1020 (2023). OME-Zarr: NGFF specification 0.4/0.5.
    A missing ``tTTT.tif`` inside an image sequence is logged as a warning and recorded as a gap
    in ``frame_indices``.
    """
    return _open(path, "images", voxel_size_um, frame_interval_s, format, axes, progress, channel, scene)


def open_labels(
    path: str | Path,
    *,
    voxel_size_um: float | Sequence[float] | None = None,
    frame_interval_s: float | None = None,
    format: str | None = None,
    axes: str | None = None,
    progress: bool = False,
) -> Movie:
    """Open a label movie (integer instance images, 0 = background) lazily, ``(T, [Z,] Y, X)``.

    Accepts everything :func:`open_movie` does; for CTC folders it prefers ``man_trackTTT.tif``
    (a ``TRA`` folder), then ``maskTTT.tif`` (a result folder), ``man_segTTT.tif``, ``tTTT.tif``.
    A path to ``man_track.txt`` / ``res_track.txt`` opens the masks beside it. Label frames are
    often sparse (e.g. CTC ``02_GT/TRA`` of HeLa): the frame numbers present are in
    ``frame_indices``.

    Parameters
    ----------
    path, voxel_size_um, frame_interval_s, format, axes, progress
        As in :func:`open_movie`.

    Returns
    -------
    Movie
        Integer ``data``. Boolean masks become ``uint8``. Float arrays whose values are whole
        numbers are cast to ``int32`` with a :class:`UserWarning`; each frame is checked when read.
        A binary mask (one value, e.g. 255, for every object) is labelled by connected objects,
        ``int32``, with ``metadata["binary_mask"]`` set (:func:`_label_binary_mask`).

    Raises
    ------
    InvalidInputError
        Non-integer labels: a float frame with NaN or fractional values (names the file and
        frame), or a dtype that is neither integer, boolean nor float. Plus everything
        :func:`open_movie` raises.
    FormatError
        As in :func:`open_movie`.
    """
    p = Path(path)
    if p.is_file() and p.suffix == ".txt":
        p = p.parent
    return _open(p, "labels", voxel_size_um, frame_interval_s, format, axes, progress)


def detect_format(path: str | Path) -> str:
    """Guess the movie format of ``path`` from its name and content (no pixels read).

    Rules, in order: a folder named ``*.zarr`` or holding ``zarr.json`` / ``.zgroup`` /
    ``.zarray`` → ``"zarr"``; a folder holding a CTC frame file (``tTTT.tif``,
    ``man_trackTTT.tif``, ``maskTTT.tif``, ``man_segTTT.tif``) → ``"ctc"``; a folder holding
    other ``.tif`` / ``.tiff`` files → ``"tiff-folder"``; a ``.tif`` / ``.tiff`` file →
    ``"tiff-stack"``; ``.npz`` → ``"npz"``; ``.zarr`` → ``"zarr"``.

    Parameters
    ----------
    path : str or Path
        A file or folder.

    Returns
    -------
    str
        One of :data:`FORMATS`: ``"ctc"``, ``"tiff-folder"``, ``"tiff-stack"``, ``"zarr"``, ``"npz"``.

    Raises
    ------
    InvalidInputError
        If the path does not exist, is an empty folder or holds nothing readable (names the path
        and what was expected).
    """
    p = Path(path)
    if not p.exists():
        raise InvalidInputError(f"{p}: no such file or folder; check the path")
    if p.is_dir():
        if p.suffix == ".zarr" or any((p / n).exists() for n in ("zarr.json", ".zgroup", ".zarray")):
            return "zarr"
        names = [c.name for c in p.iterdir() if c.is_file() and not c.name.startswith(".")]  # no ._x.tif, .DS_Store
        if not names:
            raise InvalidInputError(f"{p}: the folder is empty; expected frame files such as t000.tif")
        if any(_CTC_RE.match(n) for n in names):
            return "ctc"
        if any(n.lower().endswith(_TIFF_SUFFIXES) for n in names):
            return "tiff-folder"
        from dynacell.io.vendor import detect_vendor_format

        if detect_vendor_format(p) == "image-series":
            return "image-series"
        raise InvalidInputError(
            f"{p}: no TIFF frames (tTTT.tif, maskTTT.tif, *.tif) and no zarr metadata found in the folder "
            f"({len(names)} other files, e.g. {sorted(names)[0]}); point at a folder of TIFF/PNG/JPEG frames, a "
            "stack, a .zarr store, an .nd2/.czi/.lif file or an .npz file" + _format_hint(names)
        )
    suffix = p.suffix.lower()
    if suffix in _TIFF_SUFFIXES:
        return "tiff-stack"
    if suffix == ".npz":
        return "npz"
    if suffix == ".zarr":
        return "zarr"
    from dynacell.io.vendor import detect_vendor_format

    vendor = detect_vendor_format(p)
    if vendor is not None:
        return vendor
    raise InvalidInputError(
        f"{p}: unknown movie format {suffix!r}; expected a folder of frames (TIFF, PNG or JPEG), .tif/.tiff, "
        ".nd2, .czi, .lif, .zarr or .npz "
        f"(or pass format= one of {FORMATS})" + _format_hint([p.name])
    )


#: Microscope formats read through Fiji's Bio-Formats but not by dynacell (no Java): suffix → maker.
_OTHER_VENDOR_SUFFIXES = {".oir": "Olympus", ".oib": "Olympus", ".oif": "Olympus", ".vsi": "Olympus",
                          ".ims": "Imaris", ".lsm": "Zeiss LSM", ".stk": "MetaMorph", ".dv": "DeltaVision",
                          ".sld": "SlideBook", ".lei": "Leica", ".ics": "ICS", ".ids": "ICS"}


def _format_hint(names: list[str]) -> str:
    """What to do with files dynacell does not read (Cellpose's ``*_seg.npy``, ``.npy``, other makers' files).

    Returns ``""`` when none of ``names`` is such a file.
    """
    other = sorted({n[n.rfind("."):].lower() for n in names if n[n.rfind("."):].lower() in _OTHER_VENDOR_SUFFIXES})
    if other:
        makers = ", ".join(f"{s} ({_OTHER_VENDOR_SUFFIXES[s]})" for s in other)
        return (f"; {makers} files are not read directly: open them in Fiji (File › Import › Bio-Formats) and save "
                "as OME-TIFF (File › Export › OME-TIFF), then give that file")
    npy = [n for n in names if n.lower().endswith(".npy")]
    if not npy:
        return ""
    if any(n.lower().endswith("_seg.npy") for n in npy):
        return ("; Cellpose's *_seg.npy files hold pickled Python objects, which dynacell does not load: save "
                "Cellpose's masks as PNG or TIFF instead (GUI: File > Save masks as PNG/tif; command line: "
                "--save_png or --save_tif) and give that folder")
    return "; a NumPy .npy array: save it with tifffile.imwrite (TIFF) or numpy.savez (.npz) instead"


def frame_series(folder: Path, files: list[Path], *,
                 by_suffix: bool = True) -> dict[str, list[tuple[int, Path]]]:
    """Per-frame files grouped into series, each file with its frame number: ``{pattern: [(number, file)]}``.

    The frame number is the number in the name that changes from file to file: ``exp_t003_ch00.tif``
    is frame 3 of the series ``exp_t#_ch00.tif`` (the channel number stays). When several numbers
    change, the one after ``t``, ``time``, ``frame`` or ``tp`` is the frame number and each value of
    the others makes its own series (``_ch00`` and ``_ch01``: two channels, two series); when none
    does, or a file has one number only, it is the last number in the name.

    Parameters
    ----------
    folder : Path
        The folder, for messages.
    files : list of Path
        The frame files (TIFF, PNG or JPEG).
    by_suffix : bool
        Files that differ only in their suffix (``t1.png``, ``t2.jpg``) make separate series (True)
        or one (False, and the pattern has no suffix).

    Returns
    -------
    dict of str to list of (int, Path)
        Pattern (name with the frame number as ``#``, suffix kept with ``by_suffix``) → (frame number,
        file), unsorted.

    Raises
    ------
    InvalidInputError
        A file without any number in its name, or names that differ in several numbers of which
        none follows ``t``/``time``/``frame``/``tp``.
    """
    by_shape: dict[str, list[tuple[Path, list]]] = {}
    for f in files:
        runs = list(_DIGITS_RE.finditer(f.stem))
        if not runs:
            raise InvalidInputError(f"{folder}: file {f.name} has no frame number in its name; every per-frame file "
                                    "needs one (e.g. frame_0001.tif) — rename or move it")
        suffix = f.suffix.lower() if by_suffix else ""
        by_shape.setdefault(_DIGITS_RE.sub("#", f.stem) + suffix, []).append((f, runs))
    groups: dict[str, list[tuple[int, Path]]] = {}
    for items in by_shape.values():
        n = len(items[0][1])
        varying = [k for k in range(n) if len({r[k].group() for _, r in items}) > 1]
        k = varying[0] if len(varying) == 1 else n - 1
        if len(varying) > 1:
            timed = [j for j in varying if _TIME_PREFIX_RE.search(items[0][0].stem[: items[0][1][j].start()])]
            if len(timed) != 1:
                a, b = sorted(f.name for f, _ in items)[:2]
                raise InvalidInputError(
                    f"{folder}: the file names differ in {len(varying)} numbers (e.g. {a}, {b}), and none is marked "
                    "as the time point; name the frames with one changing number (t000.tif, t001.tif, ...) or put "
                    "the number after 't' (..._t001_ch00.tif), one channel, position or plane per folder")
            k = timed[0]
        for f, runs in items:
            m = runs[k]
            pattern = f.stem[: m.start()] + "#" + f.stem[m.end():] + (f.suffix.lower() if by_suffix else "")
            groups.setdefault(pattern, []).append((int(m.group()), f))
    return groups


def _pick_series(folder: Path, kind: str) -> tuple[list[Path], str, list[str]] | None:
    """The files of the series ``kind`` asks for when a folder holds images and masks side by side.

    Cellpose, for one, saves ``NAME_cp_masks.png`` (or ``.tif``) beside each ``NAME.tif``. Files are
    grouped by name pattern (:func:`frame_series`, suffix kept); when there are
    exactly two patterns and one names masks (:data:`_MASK_WORD_RE`), images read the other and
    labels read the mask series. Returns ``(files, pattern, other patterns)``, or None when the
    folder holds one series or the choice is not clear (the readers then say what they found).
    """
    suffixes = (*_TIFF_SUFFIXES, ".png", ".jpg", ".jpeg")
    files = [c for c in folder.iterdir()
             if c.is_file() and not c.name.startswith(".") and c.name.lower().endswith(suffixes)]
    try:
        groups = {k: [f for _, f in v] for k, v in frame_series(folder, files).items()}
    except InvalidInputError:  # names the readers will explain
        return None
    if len(groups) != 2:
        return None
    masks = [g for g in groups if _MASK_WORD_RE.search(g.rsplit(".", 1)[0])]
    if len(masks) != 1:
        return None
    pick = masks[0] if kind == "labels" else next(g for g in groups if g != masks[0])
    return sorted(groups[pick]), pick, [g for g in groups if g != pick]


# --------------------------------------------------------------------------- dispatch
def _open(path, kind, voxel_size_um, frame_interval_s, format, axes, progress, channel=None, scene=None) -> Movie:
    p = Path(path)
    if format is None:
        format = detect_format(p)
    elif format not in FORMATS:
        raise InvalidInputError(f"{p}: unknown format={format!r}; choose one of {FORMATS}")
    elif not p.exists():
        raise InvalidInputError(f"{p}: no such file or folder; check the path")
    if format in ("ctc", "tiff-folder") and not p.is_dir():
        raise InvalidInputError(f"{p}: format={format!r} needs a folder of frame files, got a file")
    if format in ("tiff-stack", "npz") and not p.is_file():
        raise InvalidInputError(f"{p}: format={format!r} needs a file, got a folder")
    if axes is not None and format in ("ctc", "tiff-folder"):
        raise InvalidInputError(f"{p}: axes= applies to stacks, zarr and npz; a folder holds one frame per file")
    if isinstance(channel, str) and (channel != "mean" or format != "image-series"):
        raise InvalidInputError(f"{p}: channel={channel!r}: a channel is a number (0-based); 'mean' (the average of "
                                f"the colour channels) applies to PNG/JPEG series only")
    if channel is not None and format in ("ctc", "tiff-folder"):
        raise InvalidInputError(f"{p}: channel= applies to stacks, zarr, npz and vendor files; a folder of TIFF "
                                f"frames holds one channel per file — drop channel= or point at the channel's folder")
    if scene is not None and format == "tiff-stack" and p.name.lower().endswith((".ome.tif", ".ome.tiff")):
        format = "ome-tiff"  # a position of a multi-position OME-TIFF: bioio reads its scenes
    if scene is not None and format not in ("nd2", "czi", "lif", "ome-tiff", "zarr"):
        raise InvalidInputError(f"{p}: scene= (--scene) applies to multi-position ND2, CZI, LIF and OME-TIFF files "
                                f"and to OME-Zarr stores of several series; this is a {format} movie — drop it")
    series = _pick_series(p, kind) if format in ("ctc", "tiff-folder", "image-series") and p.is_dir() else None
    if series is not None:
        format = "tiff-folder" if series[1].endswith(_TIFF_SUFFIXES) else "image-series"
        logger.info("%s: holds the series %s and %s; reading %s as the %s", p, series[1], series[2][0], series[1], kind)
    if format in ("ctc", "tiff-folder"):
        data, ax, frames, meta_vs, meta_dt, extra = _read_folder(p, kind, ctc=format == "ctc", progress=progress,
                                                                 files=series[0] if series else None)
    elif format == "tiff-stack":
        data, ax, frames, meta_vs, meta_dt, extra = _read_tiff_stack(p, axes, channel)
    elif format == "zarr":
        data, ax, frames, meta_vs, meta_dt, extra = _read_zarr(p, axes, channel, scene if kind == "images" else None,
                                                               kind)
    elif format in _VENDOR:
        from dynacell.io.vendor import read_vendor

        data, ax, frames, meta_vs, meta_dt, extra = read_vendor(p, format, channel=channel, scene=scene, kind=kind,
                                                                files=series[0] if series else None)
    else:
        data, ax, frames, meta_vs, meta_dt, extra = _read_npz(p, kind, axes, channel)
    check_frame_voxels(tuple(data.shape[1:]), str(p))
    vs, dt = resolve_sizes(str(p), ax[1:], meta_vs, meta_dt, voxel_size_um, frame_interval_s)
    extra["format"] = format
    if series is not None:
        extra["series"] = {"read": series[1], "also_in_folder": series[2], "kind": kind}
    lazy = data
    if kind == "labels":
        data = _as_labels(data, str(p), frames, extra.get("files"))
    if format in ("ctc", "tiff-folder") and data is lazy:
        # frames read as they are (no cast): Movie.frame and load_in_memory read the files directly,
        # as the dask graph would, without its per-frame graph cost (about 13 ms a frame)
        extra[TIFF_FRAMES_KEY] = {"dask_name": data.name, "files": extra["files"],
                                  "shape": tuple(int(v) for v in data.shape[1:]), "dtype": np.dtype(data.dtype).str}
    movie = Movie(data=data, axes=ax, voxel_size_um=vs, frame_interval_s=dt, frame_indices=tuple(frames),
                  source=str(p), metadata=extra)
    return _label_binary_mask(movie) if kind == "labels" else movie


def _single_value(frame: np.ndarray) -> int | None:
    """The one non-zero value of an integer frame, or None (none, or several); one pass, no sort."""
    flat = frame.ravel()
    nz = np.flatnonzero(flat)
    if not len(nz):
        return None
    v = flat[nz[0]]
    return int(v) if not np.any(flat[nz] != v) else None


def _label_binary_mask(labels: Movie) -> Movie:
    """A binary mask given as labels, with each connected object given its own id (lazily, frame by frame).

    Fiji's thresholding, ilastik's object masks and many scripts save one value (1 or 255) for every
    object; read as ids that is one "nucleus" per frame, and every link, size and state silently wrong.
    When the first frame holds a single non-zero value — 1 or the dtype's largest, as masks are saved —
    in two or more separate objects of comparable size (at least a tenth of the largest), every frame
    holding a single value is labelled by connected objects (``scipy.ndimage.label``, 4-connected in
    2D, 6-connected in 3D); frames that already hold several ids are kept. ``metadata["binary_mask"]``
    records it for :func:`dynacell.io.checks.reading_notes`.
    """
    from scipy import ndimage

    first = labels.frame(labels.frame_indices[0])
    value = _single_value(first)
    if value is None or value not in (1, 255, 65535, int(np.iinfo(first.dtype).max)):
        return labels  # an id such as 7 is one nucleus of instance labels, whatever its shape
    components, n_objects = ndimage.label(first == value)
    sizes = np.bincount(components.ravel())[1:]
    if n_objects < 2 or np.count_nonzero(sizes >= 0.1 * sizes.max()) < 2:
        return labels  # one object (and perhaps a few stray pixels): nothing says it is a binary mask

    def components(block: np.ndarray) -> np.ndarray:
        out = np.empty(block.shape, np.int32)
        for i in range(block.shape[0]):
            out[i] = ndimage.label(block[i] != 0)[0] if _single_value(block[i]) is not None else block[i]
        return out

    import dask.array as da

    data = labels.data if hasattr(labels.data, "map_blocks") else da.from_array(
        np.asarray(labels.data), chunks=(1, *labels.shape[1:]))
    meta = {**labels.metadata, "binary_mask": {"value": value, "objects_first_frame": int(n_objects)}}
    meta.pop(TIFF_FRAMES_KEY, None)
    return Movie(data=data.map_blocks(components, dtype=np.int32), axes=labels.axes,
                 voxel_size_um=labels.voxel_size_um, frame_interval_s=labels.frame_interval_s,
                 frame_indices=labels.frame_indices, source=labels.source, metadata=meta)


# --------------------------------------------------------------------------- folders
def _frame_files(folder: Path, kind: str, ctc: bool,
                 files: list[Path] | None = None) -> tuple[list[tuple[int, Path]], str]:
    """(frame number, file) pairs sorted by number, and the file-name template used (``files``: only these)."""
    # hidden files are skipped: macOS leaves '._name.tif' companions (not images) beside copied files
    if files is None:
        files = [c for c in folder.iterdir()
                 if c.is_file() and not c.name.startswith(".") and c.name.lower().endswith(_TIFF_SUFFIXES)]
    if not files:
        raise InvalidInputError(f"{folder}: no TIFF frame files in the folder; expected e.g. t000.tif, t001.tif, ...")
    groups: dict[str, list[tuple[int, Path]]] = {}
    if ctc:
        for f in files:
            m = _CTC_RE.match(f.name)
            if m:
                groups.setdefault(m.group(1), []).append((int(m.group(2)), f))
        if not groups:
            raise InvalidInputError(
                f"{folder}: no CTC frame files (tTTT.tif, man_trackTTT.tif, maskTTT.tif, man_segTTT.tif); "
                f"use format='tiff-folder' for other names"
            )
        prefix = next(p for p in _PREFERENCE[kind] if p in groups)
        if len(groups) > 1:
            logger.info("%s: holds %s frame files; reading %sTTT.tif", folder, sorted(groups), prefix)
        template = f"{prefix}TTT.tif"
        pairs = groups[prefix]
    else:
        groups = frame_series(folder, files, by_suffix=False)  # t1.tif and t2.tiff: one series
        if len(groups) > 1:
            raise InvalidInputError(
                f"{folder}: per-frame TIFFs follow {len(groups)} name patterns {sorted(groups)}; expected one series "
                f"— put each series in its own folder"
            )
        template, pairs = next(iter(groups.items()))
    pairs.sort()
    numbers = [n for n, _ in pairs]
    dup = sorted({n for n in numbers if numbers.count(n) > 1})
    if dup:
        names = [f.name for n, f in pairs if n == dup[0]]
        raise InvalidInputError(f"{folder}: frame {dup[0]} appears in several files {names}; keep one")
    return pairs, template


class TiffFolderArray:
    """The frames of a folder of per-frame TIFFs as a lazy array, without importing dask until needed.

    ``shape``, ``dtype``, ``ndim``, ``name``, ``len()`` and ``numpy.asarray`` work without dask (the
    last reads every file with :func:`dynacell.io._tiff.read_tiff_frame`); indexing and every other
    attribute act on the dask array of one chunk per frame that :func:`open_movie` returned before
    (built, and dask imported, on first use: about 0.7 CPU-s of imports that ``dynacell run`` does
    not need, since it reads such folders file by file through :meth:`Movie.frame` and
    :func:`~dynacell.io.movie.load_in_memory`).

    Parameters
    ----------
    files : list of str
        One file per frame, in frame order.
    frame_shape : tuple of int
        ``([Z,] Y, X)`` of every frame.
    dtype : numpy.dtype
        Element type of the movie (files are cast to it).
    numbers : list of int
        Frame numbers (for messages).
    """

    def __init__(self, files: list[str], frame_shape: tuple[int, ...], dtype, numbers: list[int]) -> None:
        import uuid

        self._files = list(files)
        self._frame_shape = tuple(int(v) for v in frame_shape)
        self._dtype = np.dtype(dtype)
        self._numbers = list(numbers)
        self._name = f"tiff-folder-{uuid.uuid4().hex}"
        self._dask_array = None

    shape = property(lambda self: (len(self._files), *self._frame_shape), doc="``(T, [Z,] Y, X)``.")
    dtype = property(lambda self: self._dtype, doc="Element type.")
    ndim = property(lambda self: 1 + len(self._frame_shape), doc="Number of axes.")
    name = property(lambda self: self._name, doc="A unique name (as a dask array's) for this array.")

    def __len__(self) -> int:
        return len(self._files)

    @property
    def dask(self):
        """The equivalent :class:`dask.array.Array` (one chunk per frame), built once."""
        if self._dask_array is None:
            import dask
            import dask.array as da

            reader = dask.delayed(read_tiff_frame, pure=True)
            frames = [da.from_delayed(reader(f, self._frame_shape, self._dtype.str, n), shape=self._frame_shape,
                                      dtype=self._dtype) for n, f in zip(self._numbers, self._files, strict=True)]
            self._dask_array = da.stack(frames, axis=0)
        return self._dask_array

    def __getitem__(self, key):
        return self.dask[key]

    def __array__(self, dtype=None, copy=None):
        out = np.empty(self.shape, dtype=self._dtype)
        for i, (n, f) in enumerate(zip(self._numbers, self._files, strict=True)):
            out[i] = read_tiff_frame(f, self._frame_shape, self._dtype.str, n)
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getattr__(self, attr: str):
        if attr.startswith("_"):  # private names and dunders: never the dask array's (pickling, copies)
            raise AttributeError(attr)
        return getattr(self.dask, attr)

    def __repr__(self) -> str:
        return f"TiffFolderArray(shape={self.shape}, dtype={self._dtype}, files={len(self._files)})"


def _read_folder(folder: Path, kind: str, *, ctc: bool, progress: bool, files: list[Path] | None = None):
    from tqdm.auto import tqdm

    pairs, template = _frame_files(folder, kind, ctc, files)
    first = inspect_tiff(pairs[0][1], with_sizes=True, frame=pairs[0][0])
    shape, spatial = frame_layout(first)
    dtypes = [first.dtype]
    for number, f in tqdm(pairs[1:], desc=f"scanning {folder.name}", disable=not progress, leave=False):
        info = inspect_tiff(f, frame=number)
        fshape, _ = frame_layout(info)
        if fshape != shape:
            raise InvalidInputError(
                f"{f} (frame {number}): frame shape {fshape} differs from {shape} of {pairs[0][1].name}; "
                f"all frames of a movie need one shape — fix or remove the odd file"
            )
        dtypes.append(info.dtype)
    dtype = np.result_type(*dtypes)
    numbers = [n for n, _ in pairs]
    missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    if missing:
        level = logging.WARNING if kind == "images" else logging.INFO
        logger.log(
            level, "%s: %d frame file(s) missing inside %d..%d (first missing: %s); the gaps are kept in "
            "frame_indices, no frame is invented", folder, len(missing), numbers[0], numbers[-1], missing[:10],
        )
    data = TiffFolderArray([str(f) for _, f in pairs], shape, dtype, numbers)
    meta_vs = sizes_for_axes(first.sizes, spatial)
    if first.sizes and meta_vs is None:
        logger.info("%s: metadata give pixel sizes %s but not for all of %s; voxel size left unknown", folder,
                    first.sizes, spatial)
    extra = {"files": [str(f) for _, f in pairs], "template": template, "size_origin": first.size_origin}
    return data, "T" + spatial, numbers, meta_vs, first.frame_interval_s, extra


def _channel_index(path, ax: str, shape: tuple[int, ...], channel: int | None) -> int:
    """Index of the channel to read on the ``C`` axis of ``ax`` (0 when there is none or one channel).

    Raises
    ------
    InvalidInputError
        Several channels and no ``channel``; a ``channel`` out of range, or given for a file without channels.
    """
    n = shape[ax.index("C")] if "C" in ax else 1
    if channel is None:
        if n > 1:
            raise InvalidInputError(
                f"{path}: {n} channels (axes {ax}, shape {shape}); dynacell reads one channel — choose the nuclear "
                f"channel with channel= (--channel, 0 to {n - 1})"
            )
        return 0
    if not 0 <= int(channel) < n:
        raise InvalidInputError(
            f"{path}: channel {channel} does not exist; the file has {n} channel(s) (axes {ax}, shape {shape}), "
            f"choose 0 to {n - 1}"
        )
    return int(channel)


# --------------------------------------------------------------------------- TIFF stack
def _stack_axes(info, axes: str | None) -> str:
    file_axes = info.axes
    if axes is not None:
        axes = axes.upper()
        if len(axes) != len(info.shape) or len(set(axes)) != len(axes) or not set(axes) <= set("TCZYX"):
            raise InvalidInputError(
                f"{info.path}: axes={axes!r} does not fit the array of shape {info.shape}; give one letter of "
                f"T, C, Z, Y, X per dimension (file says {file_axes!r})"
            )
        return axes
    unnamed = [a for a in file_axes if a in UNNAMED_AXES]
    if not unnamed:
        return file_axes
    if len(info.shape) == 3 and len(unnamed) == 1:
        return file_axes.replace(unnamed[0], "T")
    fill = iter("TZ")
    guess = "".join("C" if a == "S" else next(fill, "Z") if a in UNNAMED_AXES else a for a in file_axes)
    raise InvalidInputError(
        f"{info.path}: a {len(info.shape)}-D stack of shape {info.shape} without axes metadata (tifffile reads "
        f"{file_axes!r}); give --axes (axes= in Python), one letter of T, C, Z, Y, X per dimension, e.g. --axes "
        f"{guess}{' --channel 0' if 'C' in guess else ''}"
    )


def _read_tiff_stack(path: Path, axes: str | None, channel: int | None = None):
    import dask
    import dask.array as da

    info = inspect_tiff(path, with_sizes=True)
    ax = _stack_axes(info, axes)
    c = _channel_index(path, ax, tuple(info.shape), channel)
    for a, n in zip(ax, info.shape):
        if a not in "TZYXC" and n != 1:
            guess = ax.replace(a, "T" if "T" not in ax else "C" if "C" not in ax else "Z")
            raise InvalidInputError(
                f"{path}: axis {a!r}{' (colour samples)' if a == 'S' else ''} has size {n} (axes {ax}, shape "
                f"{info.shape}); dynacell reads one channel — if these {n} planes are time points, z-planes or "
                f"channels, say which with --axes (axes= in Python), e.g. --axes {guess}; if it is a colour image, "
                f"save the nuclear channel alone"
            )
    if "Y" not in ax or "X" not in ax:
        raise InvalidInputError(f"{path}: axes {ax!r} lack Y and X; give --axes (axes= in Python)")
    spatial = "".join(a for a in "ZYX" if a in ax)
    n_t = info.shape[ax.index("T")] if "T" in ax else 1
    if "T" not in ax:
        logger.info("%s: axes %s have no T; read as a single frame", path, ax)
    kept = [a for a in ax if a in spatial]
    order = tuple(kept.index(a) for a in spatial)
    fshape = tuple(info.shape[ax.index(a)] for a in spatial)
    reader = dask.delayed(read_stack_frame, pure=True)
    frames = []
    for t in range(n_t):
        index = tuple(t if a == "T" else c if a == "C" else (slice(None) if a in spatial else 0) for a in ax)
        frames.append(da.from_delayed(reader(str(path), index, order, t), shape=fshape, dtype=info.dtype))
    data = da.stack(frames, axis=0)
    extra = {"files": None, "file_axes": info.axes, "axes_used": ax, "size_origin": info.size_origin,
             **({"channel": c} if "C" in ax else {})}
    if info.n_series > 1:  # e.g. the stage positions of a multi-position OME-TIFF: the first is read
        logger.warning("%s holds %d image series; reading the first%s", path, info.n_series,
                       " — choose another position with --scene (scene=)" if info.is_ome else "")
        extra.update(scenes=[f"series {i}" for i in range(info.n_series)], defaulted=["scene"])
    return data, "T" + spatial, list(range(n_t)), sizes_for_axes(info.sizes, spatial), info.frame_interval_s, extra


# --------------------------------------------------------------------------- zarr
def _ngff_multiscales(attrs: dict) -> list | None:
    if "multiscales" in attrs:
        return attrs["multiscales"]
    ome = attrs.get("ome")
    if isinstance(ome, dict) and "multiscales" in ome:
        return ome["multiscales"]
    return None


def _scale_of(transforms: list | None) -> list[float] | None:
    for tr in transforms or []:
        if tr.get("type") == "scale" and "scale" in tr:
            return [float(v) for v in tr["scale"]]
    return None


def _bioformats2raw_series(path: Path, node, scene: int | None) -> tuple[Any, dict]:
    """The image group of one series of a bioformats2raw store (``0/``, ``1/``, ...), and what to record.

    bioformats2raw (the usual converter of vendor files to OME-Zarr) writes every series (stage position)
    of a file as a numbered OME-NGFF image group under a root marked ``bioformats2raw.layout``.
    """
    keys = sorted((k for k in node.group_keys() if k.isdigit()), key=int)
    if not keys:
        raise InvalidInputError(f"{path}: a bioformats2raw store without numbered image groups (0/, 1/, ...); "
                                f"rewrite it with bioformats2raw")
    if scene is not None and not 0 <= scene < len(keys):
        raise InvalidInputError(f"{path}: scene {scene} does not exist; the store has {len(keys)} series {keys}")
    extra: dict[str, Any] = {"scenes": [f"series {k}" for k in keys], "scene": f"series {keys[scene or 0]}",
                             "defaulted": [] if scene is not None else ["scene"]}
    if scene is None and len(keys) > 1:
        logger.warning("%s holds %d series; reading the first — choose another with --scene (scene=)", path,
                       len(keys))
    return node[keys[scene or 0]], extra


def _ngff_label_image(path: Path, node):
    """The first label image an OME-NGFF image lists in its ``labels/`` group, or None.

    OME-Zarr keeps an image's segmentations beside it (``image.zarr/labels/<name>``, named in
    ``labels/.zattrs``): given such an image as the labels, dynacell reads its first label image.
    """
    if "labels" not in set(node.group_keys()):
        return None
    group = node["labels"]
    attrs = dict(group.attrs)
    names = attrs.get("labels") or (attrs.get("ome") or {}).get("labels") or []
    if not names:
        return None
    if len(names) > 1:
        logger.warning("%s: holds the label images %s; reading %r (give %s/labels/<name> for another)", path, names,
                       names[0], path)
    else:
        logger.info("%s: reading its label image labels/%s", path, names[0])
    return group[str(names[0])]


def _read_zarr(path: Path, axes: str | None, channel: int | None = None, scene: int | None = None,
               kind: str = "images"):
    import dask.array as da
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise FormatError(f"{path}: cannot open as zarr ({type(exc).__name__}: {exc}); expected a zarr store") from exc
    series_extra: dict[str, Any] = {}
    if not isinstance(node, zarr.Array):
        attrs = dict(node.attrs)
        ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else {}
        if "bioformats2raw.layout" in attrs or "bioformats2raw.layout" in ome:
            if kind == "labels" and sum(k.isdigit() for k in node.group_keys()) > 1:
                raise InvalidInputError(
                    f"{path}: a store of several series (positions); give the labels of the one you run, e.g. "
                    f"{path}/1/labels/<name> for --scene 1")
            node, series_extra = _bioformats2raw_series(path, node, scene)
        elif scene is not None:
            raise InvalidInputError(f"{path}: scene= (--scene) needs a store of several series (bioformats2raw "
                                    f"layout); this one holds one image — drop it")
        if kind == "labels":  # an image given as labels: its own segmentation (labels/<name>), if it has one
            node = _ngff_label_image(path, node) or node
    sizes: dict[str, float] = {}
    interval = None
    origin = ""
    if isinstance(node, zarr.Array):
        array, file_axes = node, None
    else:
        ms = _ngff_multiscales(dict(node.attrs))
        if ms:
            try:
                ms0 = ms[0]
                ds0 = ms0["datasets"][0]
                array = node[ds0["path"]]
            except (KeyError, IndexError, TypeError) as exc:
                raise FormatError(
                    f"{path}: malformed OME-NGFF multiscales metadata ({type(exc).__name__}: {exc}); expected "
                    f"multiscales[0].datasets[0].path naming an array — rewrite the store"
                ) from exc
            ax_meta = ms0.get("axes") or []
            names = [a["name"] if isinstance(a, dict) else str(a) for a in ax_meta]
            file_axes = "".join(n.upper() for n in names) if names else None
            scale = _scale_of(ds0.get("coordinateTransformations"))
            outer = _scale_of(ms0.get("coordinateTransformations"))
            if scale and outer:
                scale = [a * b for a, b in zip(scale, outer)]
            if scale and names and len(scale) == len(names):
                for a, s in zip(ax_meta, scale):
                    if not isinstance(a, dict):
                        continue
                    name, unit = a.get("name", ""), a.get("unit")
                    if unit is None:
                        if name in "zyxt" and s != 1.0:
                            logger.warning("%s: axis %r has scale %s but no unit; ignored (pass the size "
                                           "explicitly)", path, name, s)
                        continue
                    if name == "t":
                        interval = time_to_s(s, unit)
                    elif name in "zyx":
                        v = length_to_um(s, unit)
                        if v:
                            sizes[name] = v
                origin = "ngff"
        else:
            arrays = dict(node.arrays())
            key = next((k for k in ("images", "labels") if k in arrays), None)
            if key is None and len(arrays) == 1:
                key = next(iter(arrays))
            if key is None:
                raise InvalidInputError(
                    f"{path}: zarr group without OME-NGFF multiscales and with arrays {sorted(arrays)}; expected "
                    f"one array or an 'images'/'labels' array — open the array's path"
                )
            array, file_axes = arrays[key], None
    shape = tuple(int(s) for s in array.shape)
    if axes is not None:
        ax = axes.upper()
    elif file_axes is not None:
        ax = file_axes
    elif len(shape) == 3:
        ax = "TYX"
    else:
        raise InvalidInputError(
            f"{path}: a {len(shape)}-D zarr array of shape {shape} without NGFF axes; give --axes (axes= in Python), "
            f"e.g. --axes TZYX"
        )
    if len(ax) != len(shape) or len(set(ax)) != len(ax) or not set(ax) <= set("TCZYX"):
        raise InvalidInputError(f"{path}: axes {ax!r} do not fit the array of shape {shape}; one of T,C,Z,Y,X per axis")
    c = _channel_index(path, ax, shape, channel)
    data = da.from_zarr(array)
    # one z-plane (OME-Zarr images are often 5-D TCZYX): a 2D movie, as the TIFF and bioio readers read it
    flat_z = "Z" in ax and shape[ax.index("Z")] == 1
    index = tuple(c if a == "C" else 0 if a == "Z" and flat_z else slice(None) for a in ax)
    data = data[index]
    kept = [a for a in ax if a != "C" and not (a == "Z" and flat_z)]
    if "T" not in kept:
        data = data[None]
        kept = ["T"] + kept
    spatial = "".join(a for a in "ZYX" if a in kept)
    data = data.transpose([kept.index(a) for a in "T" + spatial])
    data = data.rechunk((1,) + data.shape[1:])
    extra = {"files": None, "file_axes": "".join(ax), "size_origin": origin, **({"channel": c} if "C" in ax else {}),
             **series_extra}
    return data, "T" + spatial, list(range(data.shape[0])), sizes_for_axes(sizes, spatial), interval, extra


# --------------------------------------------------------------------------- npz
def _read_npz(path: Path, kind: str, axes: str | None, channel: int | None = None):
    import dask.array as da

    try:
        with open(path, "rb") as fh:  # our own handle: closed even when numpy fails on a damaged file
            npz = np.load(fh, allow_pickle=False)
            if not hasattr(npz, "files"):
                raise ValueError("a single .npy array, not an .npz archive")
            with npz:
                names = list(npz.files)
                arrays = [k for k in names if k not in _NPZ_META_KEYS]
                key = kind if kind in names else ("images" if "images" in names else None)
                if key is None and len(arrays) == 1:
                    key = arrays[0]
                if key is None:
                    raise InvalidInputError(
                        f"{path}: arrays {arrays}; expected a key '{kind}' or a single array — re-save with that key"
                    )
                _check_npz_size(path, npz, key)  # an .npz is loaded whole: check the declared shape first
                content = {k: npz[k] for k in (key, *(m for m in _NPZ_META_KEYS if m in names))}
    except DynacellError:
        raise
    except Exception as exc:
        raise FormatError(
            f"{path}: cannot read as .npz ({type(exc).__name__}: {exc}); re-save with numpy.savez"
        ) from exc
    arr = content[key]
    if axes is None and "axes" in content:
        axes = str(content["axes"])
    if axes is None:
        axes = {2: "YX", 3: "TYX", 4: "TZYX"}.get(arr.ndim)
        if axes is None:
            raise InvalidInputError(f"{path}: array {key!r} has shape {arr.shape}; expected (T, [Z,] Y, X)")
    axes = axes.upper()
    if len(axes) != arr.ndim or not set(axes) <= set("TCZYX") or len(set(axes)) != len(axes):
        raise InvalidInputError(f"{path}: axes {axes!r} do not fit array {key!r} of shape {arr.shape}")
    c = _channel_index(f"{path} [{key}]", axes, tuple(arr.shape), channel)
    if "C" in axes:
        arr = np.take(arr, c, axis=axes.index("C"))
        axes = axes.replace("C", "")
    if "T" not in axes:
        arr, axes = arr[None], "T" + axes
    spatial = "".join(a for a in "ZYX" if a in axes)
    arr = np.transpose(arr, [axes.index(a) for a in "T" + spatial])
    data = da.from_array(arr, chunks=(1,) + arr.shape[1:])
    vs = tuple(float(v) for v in np.atleast_1d(content["voxel_size_um"])) if "voxel_size_um" in content else None
    if vs is not None and len(vs) != len(spatial):
        raise InvalidInputError(f"{path}: voxel_size_um {vs} needs {len(spatial)} values ({spatial})")
    dt = float(content["frame_interval_s"]) if "frame_interval_s" in content else None
    frames = _npz_frame_indices(path, content, arr.shape[0]) if "frame_indices" in content else list(range(arr.shape[0]))
    extra = {"files": None, "key": key, "size_origin": "npz" if vs or dt else ""}
    return data, "T" + spatial, frames, vs, dt, extra


def _check_npz_size(path: Path, npz: Any, key: str) -> None:
    """Refuse an npz array whose header declares more values than the limits allow (nothing decompressed yet).

    One frame (all axes but the first, for 3-D and 4-D arrays) must fit :attr:`Limits.max_frame_voxels`,
    and the whole array, which an .npz forces into memory, twice that.
    """
    with npz.zip.open(f"{key}.npy") as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    shape = tuple(int(n) for n in shape)
    check_frame_voxels(shape[1:] if len(shape) >= 3 else shape, f"{path} (array {key!r})")
    total = int(np.prod(shape, dtype=object)) if shape else 1
    cap = 2 * get_limits().max_frame_voxels
    if total > cap:
        raise InvalidInputError(
            f"{path}: array {key!r} of shape {shape} ({dtype}) holds {total:,} values; an .npz is read whole and "
            f"the limit is {cap:,} — save the movie as a TIFF series or zarr, or raise {ENV_VARS['max_frame_voxels']}"
        )


def _npz_frame_indices(path: Path, content: dict, n_frames: int) -> list[int]:
    """The ``frame_indices`` array of an npz movie, checked: integers >= 0, one per frame, strictly increasing."""
    raw = np.asarray(content["frame_indices"])
    if raw.ndim != 1 or raw.size != n_frames:
        raise InvalidInputError(
            f"{path}: 'frame_indices' has shape {raw.shape} for {n_frames} frames; expected one frame number per "
            f"frame — re-save with frame_indices=numpy.arange({n_frames}) or the real frame numbers"
        )
    whole = np.issubdtype(raw.dtype, np.integer) or (
        np.issubdtype(raw.dtype, np.floating) and bool(np.all(np.isfinite(raw))) and bool(np.all(raw == np.round(raw))))
    if raw.size and not whole:
        raise InvalidInputError(f"{path}: 'frame_indices' must be whole frame numbers, found {raw[:5].tolist()} "
                                f"(dtype {raw.dtype})")
    if raw.size and (raw.min() < 0 or raw.max() > get_limits().max_frames):
        raise InvalidInputError(
            f"{path}: 'frame_indices' holds {raw.min() if raw.min() < 0 else raw.max()}; frame numbers must be "
            f"between 0 and {get_limits().max_frames:,}"
        )
    frames = [int(v) for v in raw]
    for i in range(1, len(frames)):
        if frames[i] == frames[i - 1]:
            raise InvalidInputError(
                f"{path}: 'frame_indices' lists frame {frames[i]} twice (positions {i - 1} and "
                f"{i}); each frame number must appear once"
            )
        if frames[i] < frames[i - 1]:
            raise InvalidInputError(
                f"{path}: 'frame_indices' is not increasing (frame {frames[i]} at position {i} after frame "
                f"{frames[i - 1]}); store the frames in time order"
            )
    return frames


# --------------------------------------------------------------------------- labels
def _as_labels(data: Any, source: str, frames: list[int], files: list[str] | None):
    """Check the dtype of a label movie; cast bool and whole-number floats (checked per frame)."""
    dtype = np.dtype(data.dtype)
    if np.issubdtype(dtype, np.integer):
        return data
    if dtype == np.bool_:
        logger.info("%s: boolean mask read as labels (uint8, one label 1)", source)
        return data.astype(np.uint8)
    if not np.issubdtype(dtype, np.floating):
        raise InvalidInputError(
            f"{source}: labels must be integers, found dtype {dtype}; save the label images as uint16 or int32"
        )
    _check_whole(np.asarray(data[0]), _where(source, frames, files, 0))
    warnings.warn(
        f"{source}: label images are {dtype}; values are whole numbers in frame {frames[0]} and are cast to int32 "
        f"(each frame is checked when read) — save labels as integers to avoid this",
        UserWarning,
        stacklevel=4,
    )

    def cast(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        i = block_info[0]["chunk-location"][0] if block_info else 0
        return _check_whole(block, _where(source, frames, files, i))

    return data.map_blocks(cast, dtype=np.int32)


def _where(source: str, frames: list[int], files: list[str] | None, i: int) -> str:
    return f"{files[i]} (frame {frames[i]})" if files else f"{source} (frame {frames[i]})"


def _check_whole(block: np.ndarray, where: str) -> np.ndarray:
    n_nan = int(np.count_nonzero(~np.isfinite(block)))
    if n_nan:
        raise InvalidInputError(
            f"{where}: float label image has {n_nan} NaN/inf value(s); labels must be whole numbers >= 0 "
            f"(0 = background) — fix the segmentation and save it as integers"
        )
    frac = block != np.round(block)
    if frac.any():
        raise InvalidInputError(
            f"{where}: float label image has {int(np.count_nonzero(frac))} fractional value(s) (e.g. "
            f"{float(block[frac].flat[0])}); labels must be whole numbers — is this an intensity image?"
        )
    if block.size and (block.min() < np.iinfo(np.int32).min or block.max() > np.iinfo(np.int32).max):
        raise InvalidInputError(f"{where}: label values outside the int32 range; relabel the image")
    return block.astype(np.int32)
