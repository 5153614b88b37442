"""TIFF helpers: read a file's shape cheaply, read one frame with errors that name the file."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dynacell.errors import FormatError, InvalidInputError

logger = logging.getLogger(__name__)

#: Axis codes tifffile uses for an unnamed leading dimension of a plain stack.
UNNAMED_AXES = "QI"


@dataclass(frozen=True)
class TiffInfo:
    """Header facts of one TIFF file (pixels not read)."""

    path: Path
    shape: tuple[int, ...]
    axes: str
    dtype: np.dtype
    sizes: dict[str, float] = field(default_factory=dict)
    frame_interval_s: float | None = None
    size_origin: str = ""
    is_imagej: bool = False
    is_ome: bool = False
    n_series: int = 1


def tiff_error(path: Path, exc: Exception, what: str = "read", frame: int | None = None) -> FormatError:
    """A :class:`FormatError` for a TIFF that tifffile could not read."""
    where = f"{path} (frame {frame})" if frame is not None else f"{path}"
    return FormatError(
        f"{where}: cannot {what} this TIFF ({type(exc).__name__}: {exc}); the file is truncated, corrupt or not a "
        f"TIFF — re-export or re-copy it"
    )


def inspect_tiff(path: Path, *, with_sizes: bool = False, frame: int | None = None) -> TiffInfo:
    """Read the shape, axes and dtype of the first series of a TIFF from its header only.

    Parameters
    ----------
    path : Path
        A ``.tif``/``.tiff`` file.
    with_sizes : bool
        Also read physical sizes from the metadata (see :func:`dynacell.io._meta.tiff_physical_sizes`).
    frame : int, optional
        Frame number the file holds, for messages.

    Returns
    -------
    TiffInfo

    Raises
    ------
    FormatError
        If the file is not a readable TIFF, or its chain of pages is broken (a truncated or
        corrupt multi-page file: tifffile only logs this and would read fewer frames); the
        message names the file and the first page that cannot be read.
    """
    import tifffile

    from dynacell.io._meta import tiff_physical_sizes

    try:
        with _tifffile_errors() as logged, tifffile.TiffFile(path) as tif:
            n_pages = len(tif.pages)  # walks the whole chain of page offsets: a truncated file logs an error here
            if not tif.series:
                raise FormatError(f"{path}: TIFF holds no image series; expected an image — re-export the file")
            series = tif.series[0]
            _raise_if_corrupt(Path(path), logged, n_pages, frame)
            sizes, interval, origin = tiff_physical_sizes(tif) if with_sizes else ({}, None, "")
            return TiffInfo(
                path=Path(path), shape=tuple(int(s) for s in series.shape), axes=str(series.axes),
                dtype=np.dtype(series.dtype), sizes=sizes, frame_interval_s=interval, size_origin=origin,
                is_imagej=bool(tif.is_imagej), is_ome=bool(tif.is_ome), n_series=len(tif.series),
            )
    except FormatError:
        raise
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error, OSError ...
        raise tiff_error(Path(path), exc, "open", frame) from exc


class _Collect(logging.Handler):
    """Collects tifffile's logged errors (tifffile logs, not raises, on a truncated page chain)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.messages.append(record.getMessage())


@contextlib.contextmanager
def _tifffile_errors():
    """Collect the errors tifffile logs while a file is opened (yields the list of messages)."""
    log = logging.getLogger("tifffile")
    handler = _Collect()
    log.addHandler(handler)
    propagate, log.propagate = log.propagate, False  # reported once, by dynacell (error or warning), not twice
    try:
        yield handler.messages
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


#: tifffile log messages that mean the file is truncated or corrupt (the series read would be wrong).
_CORRUPT_MARKERS = ("invalid page offset", "failed to reshape", "corrupted file", "truncat", "invalid tag",
                    "invalid offset", "unexpected end", "suspicious number of pages")


def _raise_if_corrupt(path: Path, logged: list[str], n_pages: int, frame: int | None) -> None:
    """Turn tifffile's logged errors about the page chain into a :class:`FormatError` naming the first bad page."""
    bad = [m for m in logged if any(k in m.lower() for k in _CORRUPT_MARKERS)]
    if not bad:
        for m in logged:
            logger.warning("%s: tifffile: %s", path, m)
        return
    where = f"{path} (frame {frame})" if frame is not None else f"{path}"
    raise FormatError(
        f"{where}: the TIFF is truncated or corrupt: {n_pages} page(s) readable, the first bad page is page "
        f"{n_pages} (counting from 0) — tifffile: {bad[0].split('> ', 1)[-1]}; re-copy or re-export the file"
    )


def frame_layout(info: TiffInfo) -> tuple[tuple[int, ...], str]:
    """Spatial shape and axes (``"YX"`` or ``"ZYX"``) of a per-frame TIFF; singleton axes dropped.

    Raises
    ------
    InvalidInputError
        If the file holds colour samples, several channels or more than 3 spatial dimensions.
    """
    keep = [(n, a) for n, a in zip(info.shape, info.axes) if n != 1 or a in "YX"]
    for n, a in keep:
        if a in "SC":
            raise InvalidInputError(
                f"{info.path}: has {n} {'colour samples' if a == 'S' else 'channels'} (axes {info.axes}, shape "
                f"{info.shape}); expected one grayscale channel per frame — save a single channel"
            )
    if len(keep) == 2:
        return tuple(n for n, _ in keep), "YX"
    if len(keep) == 3:
        return tuple(n for n, _ in keep), "ZYX"
    raise InvalidInputError(
        f"{info.path}: one frame must be 2-D (Y, X) or 3-D (Z, Y, X); found shape {info.shape} (axes {info.axes}). "
        f"For a multi-frame stack open the file itself, not its folder"
    )


def read_tiff_frame(path: str, shape: tuple[int, ...], dtype: str, frame: int,
                    out: np.ndarray | None = None, planes: tuple[int, int] | None = None) -> np.ndarray:
    """Read one per-frame TIFF into memory, checked against the expected shape.

    Parameters
    ----------
    path : str
        File holding frame ``frame``.
    shape : tuple of int
        Expected ``([Z,] Y, X)`` shape (singleton axes of the file are squeezed).
    dtype : str
        Output dtype.
    frame : int
        Frame number, for messages.
    out : numpy.ndarray, optional
        Array of shape ``shape`` (e.g. one frame of a preallocated movie) to fill. When
        the file's own dtype is ``dtype``, libtiff decodes straight into it: no temporary frame, so no fresh
        memory touched twice (GOWT1 01's 92 label frames of 2 MB, see ``load_in_memory``); otherwise the
        frame is decoded as without ``out`` and copied in.
    planes : pair of int, optional
        ``(z0, z1)``: only Z planes ``z0 .. z1 − 1`` of a 3-D frame are needed (with ``out=None``). When the file
        stores one Z plane per page (its pages counted from the header), libtiff decodes only those pages and the
        other planes are 0 — about a quarter less decoding for the mouse-8cell crops (planes 0–57 of 71); else, and
        for a 2-D frame, the whole frame is read.

    Returns
    -------
    numpy.ndarray
        Shape ``shape``, dtype ``dtype``: ``out`` when given.

    Raises
    ------
    FormatError
        If the pixels cannot be decoded (truncated file) or have another shape.
    ValueError
        If ``out`` does not have shape ``shape``.

    Notes
    -----
    A frame is first decoded by libtiff (:func:`imagecodecs.tiff_decode`, one C call for the whole
    image, 2–4× less CPU than tifffile's per-strip decoding of the CTC files; a 3-D frame stored one
    Z plane per page is decoded with ``index=None``, every page of the first page's shape and dtype in
    one call, where tifffile parses each page's header in Python and then decodes page by page: the
    71-page mouse-8cell frames 1.4–1.7× less CPU); the result is used only when it has the expected
    shape, else (several samples, other pages of the same shape, any libtiff error) the file is read by
    :func:`tifffile.imread` as before. Both give the same pixels.
    """
    import tifffile

    if out is not None:
        if out.shape != tuple(shape):
            raise ValueError(f"out has shape {out.shape}, the frame {tuple(shape)}")
        if out.dtype != np.dtype(dtype) or _libtiff_frame(path, shape, out=out) is None:
            out[...] = read_tiff_frame(path, shape, dtype, frame)
        return out
    if planes is not None and len(shape) == 3:
        part = _libtiff_planes(path, shape, dtype, planes)
        if part is not None:
            return part
    fast = _libtiff_frame(path, shape)
    if fast is not None:
        return fast.astype(dtype, copy=False)
    try:
        data = tifffile.imread(path, series=0)
    except Exception as exc:
        raise FormatError(
            f"{path} (frame {frame}): cannot read the pixels ({type(exc).__name__}: {exc}); the file is truncated or "
            f"corrupt — re-copy or re-export it"
        ) from exc
    if data.shape != tuple(shape):
        squeezed = np.squeeze(data)
        if squeezed.shape != tuple(shape):
            raise FormatError(
                f"{path} (frame {frame}): pixels have shape {data.shape}, the header said {tuple(shape)}; "
                f"the file is inconsistent — re-export it"
            )
        data = squeezed
    return data.astype(dtype, copy=False)


def _libtiff_frame(path: str, shape: tuple[int, ...], out: np.ndarray | None = None) -> np.ndarray | None:
    """The image of a TIFF decoded by libtiff if it has ``shape``, else None (any failure: None).

    2-D ``shape``: the first page. 3-D: every page of the first page's shape and dtype, stacked
    (``index=None``), accepted only when that gives exactly ``shape`` (one Z plane per page). ``out``: an
    array of ``shape`` decoded into (imagecodecs checks its shape and dtype against the file's; a mismatch
    gives None, and ``out`` may then hold part of the image).
    """
    if len(shape) not in (2, 3):
        return None
    try:
        import imagecodecs

        if not imagecodecs.TIFF.available:
            return None
        with open(path, "rb") as fh:
            raw = fh.read()
        if len(shape) == 2:
            data = imagecodecs.tiff_decode(raw, out=out)
        else:
            data = imagecodecs.tiff_decode(raw, index=None, out=out)
    except Exception:  # noqa: BLE001 - tifffile reads the file and reports the problem
        return None
    return data if data.shape == tuple(shape) else None


def _page_count(raw: bytes) -> int | None:
    """Number of pages (IFDs) of a TIFF held in memory, read by tifffile; None when it cannot be parsed."""
    import io

    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(raw)) as tf:
            return len(tf.pages)
    except Exception:  # noqa: BLE001 - the caller then reads the whole frame, which reports any problem
        return None


def _libtiff_planes(path: str, shape: tuple[int, ...], dtype: str, planes: tuple[int, int]) -> np.ndarray | None:
    """A 3-D frame with only Z planes ``planes[0] .. planes[1] − 1`` decoded (the others 0), or None (read it whole).

    Used only when the file has exactly ``shape[0]`` pages (one Z plane per page) and libtiff decodes the chosen
    pages as ``(z1 − z0, Y, X)`` of ``dtype``; any other layout or failure gives None.
    """
    z0, z1 = max(0, int(planes[0])), min(int(shape[0]), int(planes[1]))
    if z0 == 0 and z1 == shape[0]:
        return None  # every plane: the one-call decoding of the whole frame
    try:
        import imagecodecs

        if not imagecodecs.TIFF.available:
            return None
        with open(path, "rb") as fh:
            raw = fh.read()
        if _page_count(raw) != shape[0]:
            return None
        out = np.zeros(shape, dtype=dtype)
        if z1 > z0:  # imagecodecs checks the pages' shape and dtype against out's (a mismatch raises)
            part = imagecodecs.tiff_decode(raw, index=slice(z0, z1), out=out[z0:z1])
            if part.shape != (z1 - z0, *shape[1:]):
                return None
        return out
    except Exception:  # noqa: BLE001 - the whole frame is read instead, which reports any problem
        return None


class _StackCache:
    """Open multi-frame TIFFs kept for reading frame after frame (a stack's IFDs are parsed once).

    Entries are keyed by path, modification time and size (a changed file is reopened) and
    closed when evicted (least recently used) or at exit.
    """

    def __init__(self, max_open: int = 4) -> None:
        self.max_open = max_open
        self._entries: OrderedDict[tuple, tuple[Any, Any, Any, threading.Lock]] = OrderedDict()
        self._lock = threading.Lock()
        atexit.register(self.clear)

    def get(self, path: str) -> tuple[Any, threading.Lock]:
        import tifffile
        import zarr

        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
            else:
                tif = tifffile.TiffFile(path)
                try:
                    store = tif.series[0].aszarr()
                    array = zarr.open_array(store, mode="r")
                except Exception:
                    tif.close()
                    raise
                self._entries[key] = (tif, store, array, threading.Lock())
                while len(self._entries) > self.max_open:
                    self._close(self._entries.popitem(last=False)[1])
            _, _, array, lock = self._entries[key]
            return array, lock

    @staticmethod
    def _close(entry: tuple) -> None:
        tif, store, _, _ = entry
        store.close()
        tif.close()

    def clear(self) -> None:
        """Close every open file."""
        with self._lock:
            while self._entries:
                self._close(self._entries.popitem()[1])


_STACKS = _StackCache()


def read_stack_frame(path: str, index: tuple, order: tuple[int, ...], frame: int) -> np.ndarray:
    """Read frame ``frame`` of a multi-frame TIFF through tifffile's zarr store (only its pages).

    The file stays open between calls (see :class:`_StackCache`), so reading T frames parses
    the file's IFDs once, not T times.

    Parameters
    ----------
    path : str
        The stack.
    index : tuple
        Index into the first series selecting the frame (ints for T and singleton axes, slices elsewhere).
    order : tuple of int
        Transpose applied to the result to get ``([Z,] Y, X)``.
    frame : int
        Frame number, for messages.

    Returns
    -------
    numpy.ndarray
        One frame ``([Z,] Y, X)``.

    Raises
    ------
    FormatError
        If the pages cannot be decoded.
    """
    try:
        array, lock = _STACKS.get(path)
        with lock:
            data = np.asarray(array[index])
    except Exception as exc:
        raise FormatError(
            f"{path} (frame {frame}): cannot read the pixels ({type(exc).__name__}: {exc}); the file is truncated or "
            f"corrupt — re-copy or re-export it"
        ) from exc
    return np.transpose(data, order)
