"""Write movies: TIFF series, OME-Zarr, and the atomic-output helper every writer uses."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dynacell.errors import InvalidInputError, OutputExistsError
from dynacell.io.movie import Movie

__all__ = ["write_tiff_series", "write_ome_zarr", "atomic_folder", "check_output_path", "write_zlib_tiff",
           "replace_path_prefix"]

logger = logging.getLogger(__name__)


def write_zlib_tiff(path: str | Path, array: np.ndarray) -> None:
    """Write a 2-D or 3-D array as a zlib-compressed TIFF (one page per Z plane), compressed fast.

    The pages are deflated by zlib-ng at level 1 (:func:`imagecodecs.zlibng_encode`), one strip per page,
    and handed to :mod:`tifffile` as compressed strips; without zlib-ng, ``tifffile.imwrite(...,
    compression="zlib")`` as before. Either file holds a standard zlib stream (TIFF compression 8) and
    decodes to the same array; the bytes differ. On GOWT1 01's 1024 × 1024 track masks: ~1 ms instead of
    ~6 ms a frame, files ~28 kB instead of ~7 kB (mostly background).

    Parameters
    ----------
    path : str or Path
        Output ``.tif`` file.
    array : numpy.ndarray
        ``(Y, X)`` or ``(Z, Y, X)``, any dtype tifffile writes (CTC masks: uint16).

    Raises
    ------
    ValueError
        If ``array`` is not 2-D or 3-D.
    """
    import tifffile

    if array.ndim not in (2, 3):
        raise ValueError(f"write_zlib_tiff needs a 2-D or 3-D array, got shape {array.shape}")
    try:
        import imagecodecs

        fast = bool(imagecodecs.ZLIBNG.available)
    except (ImportError, AttributeError):
        fast = False
    if not fast:
        tifffile.imwrite(path, array, compression="zlib")
        return
    data = np.ascontiguousarray(array)
    planes = data.reshape(-1, *data.shape[-2:])
    strips = (imagecodecs.zlibng_encode(plane, level=1) for plane in planes)
    with tifffile.TiffWriter(path) as tif:
        tif.write(strips, shape=data.shape, dtype=data.dtype, compression="zlib", rowsperstrip=data.shape[-2])


def check_output_path(path: str | Path, *, option: str = "output") -> Path:
    """Check, before any work, that ``path`` can be created: its nearest existing ancestor is a writable folder.

    Missing parent folders are fine (they are created when the output is written); a parent
    that is a file, a folder without write permission, or a path that names a folder inside a
    file are errors.

    Parameters
    ----------
    path : str or Path
        The output file or folder.
    option : str
        Name of the command-line option (e.g. ``"-o/--out"``), for the message.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InvalidInputError
        If the output cannot be written there (the message names the option, the path and the
        offending folder).
    """
    final = Path(path)
    if str(path) == "" or final.name in ("", ".", ".."):
        raise InvalidInputError(f"{option} {str(path)!r}: name a new file or folder (e.g. results/run1)")
    anc = final.absolute().parent
    while not anc.exists() and not anc.is_symlink():
        anc = anc.parent
    if not anc.is_dir():
        raise InvalidInputError(
            f"{option} {final}: {anc} is a file, not a folder; choose an output inside a folder"
        )
    if not os.access(anc, os.W_OK | os.X_OK):
        raise InvalidInputError(
            f"{option} {final}: folder {anc} is not writable (permission denied); choose another output folder"
        )
    return final


def _lock_path(final: Path) -> Path:
    return final.parent / f".{final.name}.dynacell-lock"


@contextlib.contextmanager
def _output_lock(final: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``final`` (a lock file beside it) so two dynacell processes never write one output.

    ``fcntl.flock`` locks die with their process, so a crashed run leaves no stale lock; the lock
    file is removed on release. On systems without ``fcntl`` nothing is locked (the final rename
    still refuses to replace an output that appeared meanwhile).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock = _lock_path(final)
    for _ in range(5):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InvalidInputError(f"{final}: cannot create the lock file {lock} ({exc.strerror}); choose an "
                                    f"output in a writable folder") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                # the file system cannot lock (some network mounts): go on; the final rename still
                # refuses to replace an output that appeared meanwhile
                logger.warning("%s: cannot lock the output (%s); concurrent runs are not detected early", final,
                               exc.strerror)
                with contextlib.suppress(OSError):
                    os.unlink(lock)
                yield
                return
            raise OutputExistsError(
                f"{final}: another dynacell process is writing this output right now (lock {lock}); wait for it "
                f"to finish or choose another output"
            ) from None
        try:  # the file we locked must still be the one at the lock path (not unlinked by its previous holder)
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    else:  # pragma: no cover - lock file replaced five times in a row
        raise OutputExistsError(f"{final}: the lock {lock} keeps changing; another process is writing this output")
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def _check_target(final: Path, overwrite: bool) -> None:
    if final.is_symlink() and not final.exists():
        if not overwrite:
            raise OutputExistsError(f"{final}: exists (a broken link); choose another output or pass --overwrite")
    elif final.exists() and not final.is_dir():
        if not overwrite:
            raise OutputExistsError(f"{final}: exists and is a file; choose another output or pass --overwrite")
    elif final.exists() and any(final.iterdir()) and not overwrite:
        raise OutputExistsError(f"{final}: exists and is not empty; choose another output or pass --overwrite")


_COMMITTED_OUTPUTS: list[Path] = []


def committed_outputs() -> list[Path]:
    """Outputs that :func:`atomic_folder` and :func:`atomic_file` moved into place in this process, oldest first.

    The command line reads it when an interrupt (Ctrl-C, SIGTERM) arrives after an output was already
    complete, so that its message says which result is whole instead of "no output written".

    Returns
    -------
    list of Path
        The final paths that still exist (a file written inside a temporary folder that was then removed
        does not count).
    """
    return [p for p in _COMMITTED_OUTPUTS if p.exists()]


def clear_committed_outputs() -> None:
    """Forget the outputs recorded by :func:`committed_outputs` (called when a command starts, so that a
    program running several commands in one process only hears about the current one's)."""
    _COMMITTED_OUTPUTS.clear()


@contextlib.contextmanager
def atomic_folder(path: str | Path, *, overwrite: bool = False, suffix: str = "") -> Iterator[Path]:
    """Build an output folder in a temporary sibling and move it into place with :func:`os.replace`.

    This is dynacell's output contract, shared by every command that writes a folder:

    - the output's parent must be (or be creatable inside) a writable folder: checked on entry,
      before any work, with a one-line error (:func:`check_output_path`);
    - an existing non-empty output is an error unless ``overwrite`` (checked on entry *and*
      again at the final rename, so an output that appeared while this one was being computed —
      e.g. by a second run on the same ``-o`` — is never silently replaced);
    - while the folder is being written a lock file ``.NAME.dynacell-lock`` beside it stops a
      second dynacell process from writing the same output (it fails at once with a one-line
      error); the lock dies with its process, so a crash leaves no stale lock;
    - readers never see a half-written output: either the old folder or the complete new one;
    - on any error, and on Ctrl-C, the temporary folder is removed and the old output (if any)
      is left untouched.

    Parameters
    ----------
    path : str or Path
        Final folder. An existing empty folder is replaced silently.
    overwrite : bool
        Replace an existing non-empty folder or file (removed only after the new one is complete).
    suffix : str
        Suffix of the temporary folder's name (e.g. ``".zarr"`` so libraries recognise it).

    Yields
    ------
    Path
        The temporary folder to write into.

    Raises
    ------
    OutputExistsError
        If ``path`` exists, is not empty and ``overwrite`` is False (on entry or at the final
        rename), or another dynacell process holds the lock on ``path``.
    InvalidInputError
        If the parent is not a writable folder.
    """
    final = Path(path)
    check_output_path(final)
    _check_target(final, overwrite)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"{final}: cannot create the folder {final.parent} ({exc.strerror})") from exc
    with _output_lock(final):
        _check_target(final, overwrite)
        tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}{suffix}"
        try:
            tmp.mkdir()
        except OSError as exc:
            raise InvalidInputError(f"{final}: cannot create a folder in {final.parent} ({exc.strerror})") from exc
        try:
            yield tmp
            _check_target(final, overwrite)  # an output that appeared during the run is not replaced silently
            old = None
            if final.is_symlink() or (final.exists() and (final.is_file() or any(final.iterdir()))):
                old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
                os.replace(final, old)
            elif final.exists():
                final.rmdir()
            try:
                os.replace(tmp, final)
                _COMMITTED_OUTPUTS.append(final)
            except OSError as exc:  # something was created at `final` between the check and the rename
                if old is not None:
                    os.replace(old, final)
                raise OutputExistsError(
                    f"{final}: an output appeared there while this one was written ({exc.strerror}); it is left "
                    f"unchanged — choose another output or pass --overwrite"
                ) from exc
            if old is not None:
                if old.is_dir() and not old.is_symlink():
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    old.unlink()
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def frame_name(prefix: str, number: int, n_digits: int) -> str:
    """CTC-style frame file name, e.g. ``frame_name("mask", 7, 3) == "mask007.tif"``."""
    return f"{prefix}{number:0{n_digits}d}.tif"


def n_digits_for(numbers: Sequence[int]) -> int:
    """Digits of CTC frame numbers: 3, or more when a frame number needs them (CTC uses 4 past 999)."""
    return max(3, len(str(max(numbers)))) if len(numbers) else 3


def iter_frames(frames: Any, frame_indices: Sequence[int] | None = None) -> tuple[list[int] | None, Iterable]:
    """Frame numbers and an iterator of in-memory frames from a Movie, an array ``(T, ...)`` or an iterable.

    Returns ``(numbers, frames)``; ``numbers`` is None for an iterable of unknown length without
    ``frame_indices`` (the caller numbers them 0, 1, ...). Frames of dask arrays are computed one
    at a time, so memory does not grow with T.
    """
    if isinstance(frames, Movie):
        numbers = list(frame_indices) if frame_indices is not None else list(frames.frame_indices)
        data = frames.data
        return numbers, (np.asarray(data[i]) for i in range(frames.n_frames))
    if hasattr(frames, "shape") and hasattr(frames, "ndim"):
        n = int(frames.shape[0])
        numbers = list(frame_indices) if frame_indices is not None else list(range(n))
        return numbers, (np.asarray(frames[i]) for i in range(n))
    return (list(frame_indices) if frame_indices is not None else None), iter(frames)


def _tiff_kwargs(spatial: str, voxel_size_um, frame_interval_s) -> dict:
    md = {
        "axes": spatial,
        "spatial_axes": spatial,
        "voxel_size_um": list(voxel_size_um) if voxel_size_um is not None else None,
        "frame_interval_s": frame_interval_s,
    }
    kw: dict[str, Any] = {"metadata": md}
    if voxel_size_um is not None:
        vy, vx = voxel_size_um[-2:]
        kw["resolution"] = (1e4 / vx, 1e4 / vy)
        kw["resolutionunit"] = "CENTIMETER"
    return kw


def write_tiff_series(
    folder: str | Path,
    frames: Any,
    prefix: str = "t",
    *,
    frame_indices: Sequence[int] | None = None,
    voxel_size_um: Sequence[float] | None = None,
    frame_interval_s: float | None = None,
    compression: str | None = "zlib",
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write one TIFF per frame, ``{prefix}TTT.tif`` (CTC naming), atomically.

    Parameters
    ----------
    folder : str or Path
        Output folder (created; written in a temporary sibling and renamed into place).
    frames : Movie, array ``(T, [Z,] Y, X)`` or iterable of ``([Z,] Y, X)`` arrays
        Frames in order; any dtype tifffile writes. A Movie gives the defaults of
        ``frame_indices``, ``voxel_size_um`` and ``frame_interval_s``.
    prefix : str
        File-name prefix: ``"t"`` for images, ``"mask"`` for CTC results.
    frame_indices : sequence of int, optional
        Frame number of each frame (``TTT``); default the Movie's, else 0, 1, ...
    voxel_size_um : sequence of float, optional
        Voxel size in µm, ``(Y, X)`` or ``(Z, Y, X)``; stored as TIFF resolution tags
        (CENTIMETER) and in the JSON description so :func:`open_movie` reads it back.
    frame_interval_s : float, optional
        Seconds between frames, stored in the JSON description.
    compression : str or None
        tifffile compression (``"zlib"`` default, lossless; None for none).
    overwrite : bool
        Replace an existing non-empty folder.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        The folder written.

    Raises
    ------
    InvalidInputError
        Frames that are not 2-D/3-D, differ in shape, or do not match ``frame_indices``.
    OutputExistsError
        If ``folder`` exists, is not empty and ``overwrite`` is False.
    """
    import tifffile
    from tqdm.auto import tqdm

    if isinstance(frames, Movie):
        voxel_size_um = voxel_size_um if voxel_size_um is not None else frames.voxel_size_um
        frame_interval_s = frame_interval_s if frame_interval_s is not None else frames.frame_interval_s
    numbers, it = iter_frames(frames, frame_indices)
    folder = Path(folder)
    n_digits = n_digits_for(numbers) if numbers else 4
    written = 0
    with atomic_folder(folder, overwrite=overwrite) as tmp:
        shape = None
        for i, frame in enumerate(tqdm(it, total=len(numbers) if numbers else None, disable=not progress,
                                       desc=f"writing {folder.name}", leave=False)):
            frame = np.asarray(frame)
            if frame.ndim not in (2, 3):
                raise InvalidInputError(
                    f"{folder}: frame {i} has shape {frame.shape}; each frame must be (Y, X) or (Z, Y, X)"
                )
            if shape is None:
                shape = frame.shape
                spatial = "ZYX"[-frame.ndim:]
                if voxel_size_um is not None and len(voxel_size_um) != frame.ndim:
                    raise InvalidInputError(
                        f"{folder}: voxel_size_um {tuple(voxel_size_um)} needs {frame.ndim} values ({spatial})"
                    )
                kw = _tiff_kwargs(spatial, voxel_size_um, frame_interval_s)
            elif frame.shape != shape:
                raise InvalidInputError(
                    f"{folder}: frame {i} has shape {frame.shape}, frame 0 had {shape}; all frames need one shape"
                )
            if numbers is not None and i >= len(numbers):
                raise InvalidInputError(f"{folder}: more frames than the {len(numbers)} frame_indices given")
            number = numbers[i] if numbers is not None else i
            tifffile.imwrite(tmp / frame_name(prefix, number, n_digits), frame, compression=compression, **kw)
            written += 1
        if numbers is not None and written != len(numbers):
            raise InvalidInputError(f"{folder}: {written} frames for {len(numbers)} frame_indices")
    logger.info("wrote %d frames to %s", written, folder)
    return folder


_UNITS = {"T": "second", "Z": "micrometer", "Y": "micrometer", "X": "micrometer"}


def write_ome_zarr(
    path: str | Path,
    array: Any,
    axes: str | None = None,
    voxel_size_um: Sequence[float] | None = None,
    frame_interval_s: float | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a movie as a single-scale OME-Zarr image (NGFF), atomically.

    Parameters
    ----------
    path : str or Path
        Output store, conventionally ``*.zarr``.
    array : Movie, numpy.ndarray or dask.array.Array
        Shape ``(T, [Z,] Y, X)`` (or with a ``C`` axis named in ``axes``). A dask array is written
        chunk by chunk; one chunk per frame is used.
    axes : str, optional
        Axes of ``array`` in OME order, e.g. ``"TYX"``, ``"TZYX"``, ``"TCZYX"``; default the
        Movie's axes.
    voxel_size_um : sequence of float, optional
        Spatial voxel size in µm, ``(Y, X)`` or ``(Z, Y, X)``; written as the ``scale``
        coordinate transformation with unit ``micrometer``. None: scale 1 and no unit (unknown).
    frame_interval_s : float, optional
        Seconds between frames; written as the ``t`` scale with unit ``second``.
    overwrite : bool
        Replace an existing store.

    Returns
    -------
    Path
        The store written; :func:`dynacell.io.open_movie` reads it back with the same sizes.

    Raises
    ------
    InvalidInputError
        If ``axes`` does not fit the array or the sizes have the wrong length.
    OutputExistsError
        If ``path`` exists, is not empty and ``overwrite`` is False.

    Notes
    -----
    Metadata follow the OME-NGFF specification (Moore et al., Nature Methods 18, 1496–1498,
    2021), written by the ``ome-zarr`` library in its current format version.
    """
    import dask.array as da
    import zarr
    from ome_zarr.writer import write_image

    if isinstance(array, Movie):
        axes = axes or array.axes
        voxel_size_um = voxel_size_um if voxel_size_um is not None else array.voxel_size_um
        frame_interval_s = frame_interval_s if frame_interval_s is not None else array.frame_interval_s
        array = array.data
    from dynacell.io.readers import TiffFolderArray

    if isinstance(array, TiffFolderArray):  # a folder of TIFFs opened lazily: its dask array, frame by frame
        array = array.dask
    if axes is None:
        raise InvalidInputError(f"{path}: pass axes= (e.g. 'TYX' or 'TZYX') for an array of shape {array.shape}")
    axes = axes.upper()
    if len(axes) != array.ndim or not set(axes) <= set("TCZYX") or "".join(a for a in "TCZYX" if a in axes) != axes \
            or not {"T", "Y", "X"} <= set(axes):
        raise InvalidInputError(
            f"{path}: axes {axes!r} do not fit an array of shape {tuple(array.shape)}; use T, [C,] [Z,] Y, X in "
            f"this order, one letter per dimension"
        )
    spatial = "".join(a for a in "ZYX" if a in axes)
    if voxel_size_um is not None and len(voxel_size_um) != len(spatial):
        raise InvalidInputError(f"{path}: voxel_size_um {tuple(voxel_size_um)} needs {len(spatial)} values ({spatial})")
    scale: dict[str, float] = {}
    units: dict[str, str] = {}
    if frame_interval_s is not None:
        scale["t"], units["t"] = float(frame_interval_s), _UNITS["T"]
    if voxel_size_um is not None:
        for a, v in zip(spatial, voxel_size_um):
            scale[a.lower()], units[a.lower()] = float(v), _UNITS[a]
    data = array if isinstance(array, da.Array) else da.from_array(np.asarray(array))
    chunks = tuple(1 if a in "TC" else int(s) for a, s in zip(axes, data.shape))
    data = data.rechunk(chunks)
    path = Path(path)
    with atomic_folder(path, overwrite=overwrite, suffix=".zarr") as tmp:
        root = zarr.open_group(str(tmp), mode="w")
        write_image(
            data, root, scale_factors=[], axes=[a.lower() for a in axes], scale=scale or None,
            axes_units=units or None, storage_options={"chunks": chunks}, name=path.stem,
        )
    logger.info("wrote OME-Zarr %s, shape %s, axes %s", path, tuple(data.shape), axes)
    return path


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Write one file through a hidden temporary sibling renamed into place (:func:`os.replace`).

    Readers see the old file or the complete new one, never half of it; the temporary file is
    removed when writing fails.

    Yields
    ------
    Path
        The temporary path to write to (same folder, so the rename is atomic).

    Raises
    ------
    InvalidInputError
        If the file's folder is not a writable folder (:func:`check_output_path`), before anything is written.
    """
    final = Path(path)
    check_output_path(final)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        os.replace(tmp, final)
        _COMMITTED_OUTPUTS.append(final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _json_fallback(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def json_safe(obj: Any) -> Any:
    """A JSON-serialisable copy of ``obj`` (pydantic's ``to_jsonable_python``; numpy scalars and arrays
    become Python numbers and lists, paths and other objects strings, dict keys strings).

    Examples
    --------
    >>> import numpy as np
    >>> json_safe({"n": np.int64(3), "x": np.array([1.5])})
    {'n': 3, 'x': [1.5]}
    """
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(obj, fallback=_json_fallback)


def replace_path_prefix(obj: Any, old: str, new: str) -> Any:
    """Replace the leading ``old`` of every string in a JSON-like object by ``new``.

    A job writing into the temporary folder of :func:`atomic_folder` records paths inside it; this
    moves them to the final folder before they are written to ``run.json``.

    Parameters
    ----------
    obj : dict, list, str or other
        JSON-like: dicts and lists are walked (a new container is returned), strings starting
        with ``old`` are rewritten, anything else is returned as it is.
    old, new : str
        The prefix to replace and its replacement (plain string prefixes, not path components).

    Returns
    -------
    object
        A copy of ``obj`` with the prefixes replaced (dict keys are kept).

    Examples
    --------
    >>> replace_path_prefix({"a": ["/tmp/.x/ctc/mask000.tif", 3]}, "/tmp/.x", "/data/out")
    {'a': ['/data/out/ctc/mask000.tif', 3]}
    """
    if isinstance(obj, dict):
        return {k: replace_path_prefix(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [replace_path_prefix(v, old, new) for v in obj]
    if isinstance(obj, str) and obj.startswith(old):
        return new + obj[len(old):]
    return obj


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``json_safe(obj)`` as indented UTF-8 JSON, atomically (:func:`atomic_file`)."""
    import json

    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(json_safe(obj), indent=2), encoding="utf-8")
    return Path(path)


def write_csv(df: Any, path: str | Path, *, float_format: str | None = "%.5g") -> Path:
    """Write a DataFrame as CSV without its index, atomically (:func:`atomic_file`)."""
    with atomic_file(path) as tmp:
        df.to_csv(tmp, index=False, float_format=float_format)
    return Path(path)
