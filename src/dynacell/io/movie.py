"""The :class:`Movie` type: a lazy time-lapse array with its axes and physical sizes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from dynacell.errors import InvalidInputError

__all__ = ["Movie", "load_in_memory", "select_frames", "with_physical_sizes", "IN_MEMORY_MAX_BYTES", "TIFF_FRAMES_KEY"]

#: Default budget of :func:`load_in_memory` (bytes): larger movies stay lazy (read frame by frame).
IN_MEMORY_MAX_BYTES: int = 1 << 30

#: ``Movie.metadata`` key set by :func:`dynacell.io.open_movie` / ``open_labels`` for a folder of per-frame
#: TIFFs read as they are: ``dask_name`` (name of the lazy array it describes), ``files``, ``shape``,
#: ``dtype``. While ``data`` is that array, :meth:`Movie.frame` and :func:`load_in_memory` read the files
#: directly with :func:`dynacell.io._tiff.read_tiff_frame` (the same call the dask graph makes).
TIFF_FRAMES_KEY = "tiff_frames"


@dataclass(frozen=True)
class Movie:
    """A time-lapse movie (images or labels), read lazily.

    Parameters
    ----------
    data : dask.array.Array, dynacell.io.readers.TiffFolderArray or numpy.ndarray
        Shape ``(T, Y, X)`` (axes ``"TYX"``) or ``(T, Z, Y, X)`` (axes ``"TZYX"``).
        Frames are read from disk only when computed (one chunk per frame).
    axes : {"TYX", "TZYX"}
        Axis names in OME order.
    voxel_size_um : tuple of float or None
        Physical size of a pixel/voxel in µm for the spatial axes, in axis order
        (``(Y, X)`` or ``(Z, Y, X)``); None when neither metadata nor the caller gave it.
    frame_interval_s : float or None
        Time between frames in seconds; None when unknown.
    frame_indices : tuple of int
        The frame number of each index along T (e.g. CTC ``tTTT`` numbers). Lineage
        nodes use these numbers as ``t``.
    source : str
        Path or description of where the movie came from.
    metadata : dict
        Format-specific extras (OME metadata, file list, ...).

    Raises
    ------
    InvalidInputError
        If ``axes`` does not match ``data.ndim`` or sizes are not positive.
    """

    data: Any
    axes: str
    voxel_size_um: tuple[float, ...] | None = None
    frame_interval_s: float | None = None
    frame_indices: tuple[int, ...] = ()
    source: str = ""
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.axes not in ("TYX", "TZYX"):
            raise InvalidInputError(f"movie {self.source}: axes must be 'TYX' or 'TZYX', got {self.axes!r}")
        if self.data.ndim != len(self.axes):
            raise InvalidInputError(
                f"movie {self.source}: axes {self.axes!r} need a {len(self.axes)}-D array, got shape {self.data.shape}"
            )
        if self.voxel_size_um is not None:
            vs = tuple(float(v) for v in self.voxel_size_um)
            if len(vs) != self.ndim_spatial or not all(np.isfinite(v) and v > 0 for v in vs):
                raise InvalidInputError(
                    f"movie {self.source}: voxel_size_um must be {self.ndim_spatial} positive numbers "
                    f"({self.axes[1:]}), got {self.voxel_size_um!r}"
                )
            object.__setattr__(self, "voxel_size_um", vs)
        if self.frame_interval_s is not None and not (self.frame_interval_s > 0):
            raise InvalidInputError(f"movie {self.source}: frame_interval_s must be > 0, got {self.frame_interval_s!r}")
        if not self.frame_indices:
            object.__setattr__(self, "frame_indices", tuple(range(self.data.shape[0])))
        elif len(self.frame_indices) != self.data.shape[0]:
            raise InvalidInputError(
                f"movie {self.source}: {len(self.frame_indices)} frame indices for {self.data.shape[0]} frames"
            )

    @property
    def ndim_spatial(self) -> int:
        """2 for ``TYX``, 3 for ``TZYX``."""
        return len(self.axes) - 1

    @property
    def n_frames(self) -> int:
        """Number of frames ``T``."""
        return int(self.data.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        """Array shape ``(T, [Z,] Y, X)``."""
        return tuple(int(s) for s in self.data.shape)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """Shape of one frame ``([Z,] Y, X)``."""
        return self.shape[1:]

    @property
    def dtype(self) -> np.dtype:
        """Element type."""
        return np.dtype(self.data.dtype)

    def index_of(self, t: int) -> int:
        """Array index of frame number ``t``.

        Raises
        ------
        InvalidInputError
            If frame ``t`` is not in the movie.
        """
        try:
            return self.frame_indices.index(int(t))
        except ValueError:
            raise InvalidInputError(
                f"movie {self.source}: frame {t} is not present (frames {self.frame_indices[0]}..{self.frame_indices[-1]}, "
                f"{self.n_frames} in all)"
            ) from None

    def frame(self, t: int, planes: tuple[int, int] | None = None) -> np.ndarray:
        """Read frame number ``t`` into memory, shape ``([Z,] Y, X)``.

        A folder of per-frame TIFFs is read file by file, without building a dask graph per frame
        (see :data:`TIFF_FRAMES_KEY`); the values are those of the lazy array. ``planes = (z0, z1)`` says that
        only Z planes ``z0 .. z1 − 1`` are needed: such a 3-D TIFF frame stored a plane per page may then be
        decoded in part, holding 0 in the other planes (:func:`dynacell.io._tiff.read_tiff_frame`); any other
        movie is read whole.

        Raises
        ------
        InvalidInputError
            If frame ``t`` is not in the movie, or a floating-point frame holds NaN or infinite values
            (the message gives their number and the first position; a state or a segmentation computed
            over them would be silently wrong).
        FormatError
            If the frame's file cannot be decoded.
        """
        i = self.index_of(t)
        files = self._tiff_frames()
        if files is not None:
            from dynacell.io._tiff import read_tiff_frame

            frame = read_tiff_frame(files["files"][i], files["shape"], files["dtype"], int(t), planes=planes)
        else:
            frame = np.asarray(self.data[i])
        if frame.dtype.kind in "fc":
            bad = ~np.isfinite(frame)
            if bad.any():
                first = tuple(int(v) for v in np.argwhere(bad)[0])
                where = f"{files['files'][i]} (frame {t})" if files is not None else f"{self.source} frame {t}"
                raise InvalidInputError(
                    f"movie {where}: {int(np.count_nonzero(bad))} NaN or infinite pixel value(s), the first at "
                    f"{'(z, y, x)' if len(first) == 3 else '(y, x)'} = {first}; intensities must be finite numbers — "
                    "replace them (for example with the background value, as for padding after registration) and run "
                    "again")
        return frame

    def _tiff_frames(self) -> dict | None:
        """The per-frame TIFF files of ``data`` when it is still the lazy array they were opened as."""
        files = self.metadata.get(TIFF_FRAMES_KEY) if isinstance(self.metadata, dict) else None
        if files is None or getattr(self.data, "name", None) != files["dask_name"]:
            return None
        return files

    def has_frame(self, t: int) -> bool:
        """Whether frame number ``t`` is present."""
        return int(t) in self.frame_indices


def load_in_memory(movie: Movie, max_bytes: int = IN_MEMORY_MAX_BYTES, *, progress: bool = False) -> Movie:
    """The same movie with every frame read once into one numpy array, if it fits ``max_bytes``.

    Steps that visit the frames several times (label checks, linking passes, crops) then read
    each file once instead of once per pass. A movie already in memory, or larger than the budget,
    is returned unchanged (read lazily, frame by frame: memory stays flat in the number of frames).

    Parameters
    ----------
    movie : Movie
        Any movie ``(T, [Z,] Y, X)``.
    max_bytes : int
        Largest size in bytes (``T × voxels per frame × itemsize``) loaded; default
        :data:`IN_MEMORY_MAX_BYTES` (1 GiB).
    progress : bool
        Show a progress bar over frames while reading.

    Returns
    -------
    Movie
        Same axes, sizes, frame numbers, source and metadata; ``data`` a numpy array when loaded.

    Examples
    --------
    >>> import numpy as np
    >>> m = load_in_memory(Movie(np.zeros((2, 4, 4), np.uint8), "TYX"))
    >>> type(m.data).__name__, m.shape
    ('ndarray', (2, 4, 4))
    """
    if isinstance(movie.data, np.ndarray):
        return movie
    nbytes = int(np.prod(movie.shape, dtype=np.int64)) * movie.dtype.itemsize
    if nbytes > max_bytes:
        return movie
    from tqdm.auto import tqdm

    files = movie._tiff_frames()
    if files is not None:  # a folder of TIFFs: each file decoded straight into the array (no dask graph)
        from dynacell.io._tiff import read_tiff_frame

        data = np.empty(movie.shape, dtype=movie.dtype)
        for i in tqdm(range(movie.n_frames), desc="reading", unit="frame", disable=not progress):
            read_tiff_frame(files["files"][i], files["shape"], files["dtype"], movie.frame_indices[i], out=data[i])
    elif hasattr(movie.data, "compute") and not progress:
        # one dask graph for the whole movie (one file read per frame), no thread pool: per-frame
        # graphs cost more than decoding a small frame
        data = np.asarray(movie.data.compute(scheduler="synchronous"), dtype=movie.dtype)
    else:
        data = np.empty(movie.shape, dtype=movie.dtype)
        for i in tqdm(range(movie.n_frames), desc="reading", unit="frame", disable=not progress):
            frame = movie.data[i]
            data[i] = frame.compute(scheduler="synchronous") if hasattr(frame, "compute") else np.asarray(frame)
    return Movie(data, movie.axes, movie.voxel_size_um, movie.frame_interval_s, movie.frame_indices, movie.source,
                 movie.metadata)


def select_frames(movie: Movie, frame_numbers) -> Movie:
    """The same movie restricted to some of its frames (lazy; the frame numbers are kept).

    Parameters
    ----------
    movie : Movie
        Any movie ``(T, [Z,] Y, X)``.
    frame_numbers : iterable of int
        Frame numbers (``movie.frame_indices`` values) to keep, in increasing order.

    Returns
    -------
    Movie
        ``(T', [Z,] Y, X)`` with ``frame_indices`` = ``frame_numbers``: the left-out numbers become
        missing frames (as a file absent from a folder of frames); same axes, sizes, source. A folder of
        per-frame TIFFs is still read file by file (:meth:`Movie.frame`).

    Raises
    ------
    InvalidInputError
        If a number is not a frame of the movie, or the numbers are not increasing or empty.

    Examples
    --------
    >>> m = select_frames(Movie(np.arange(48, dtype=np.uint8).reshape(3, 4, 4), "TYX"), [0, 2])
    >>> m.frame_indices, int(m.frame(2)[0, 0])
    ((0, 2), 32)
    """
    numbers = [int(t) for t in frame_numbers]
    if not numbers or any(b <= a for a, b in zip(numbers, numbers[1:])):
        raise InvalidInputError(f"movie {movie.source}: frames to keep must be increasing and not empty, got {numbers}")
    position = {t: i for i, t in enumerate(movie.frame_indices)}
    idx = [position[t] if t in position else movie.index_of(t) for t in numbers]  # index_of: the error
    if idx == list(range(movie.n_frames)):
        return movie
    data = movie.data[idx]
    metadata = dict(movie.metadata) if isinstance(movie.metadata, dict) else movie.metadata
    files = movie._tiff_frames()
    if isinstance(metadata, dict):
        metadata.pop(TIFF_FRAMES_KEY, None)
        if files is not None:  # keep reading file by file
            metadata[TIFF_FRAMES_KEY] = {**files, "dask_name": data.name, "files": [files["files"][i] for i in idx]}
        if isinstance(metadata.get("files"), list) and len(metadata["files"]) == movie.n_frames:
            metadata["files"] = [metadata["files"][i] for i in idx]
    return Movie(data, movie.axes, movie.voxel_size_um, movie.frame_interval_s, tuple(numbers), movie.source, metadata)


def with_physical_sizes(movie: Movie, voxel_size_um: tuple[float, ...] | None = None,
                        frame_interval_s: float | None = None) -> Movie:
    """The same movie (same data, no copy) with its voxel size and/or frame interval replaced.

    Parameters
    ----------
    movie : Movie
        Any movie ``(T, (Z), Y, X)``.
    voxel_size_um : tuple of float, optional
        New voxel size in µm, ``(Y, X)`` or ``(Z, Y, X)``; None keeps the movie's.
    frame_interval_s : float, optional
        New time between frames in seconds; None keeps the movie's.

    Returns
    -------
    Movie
        ``movie`` itself when both are None, else a new :class:`Movie` sharing ``data`` and
        ``metadata``.

    Raises
    ------
    InvalidInputError
        A voxel size with the wrong number of axes or a size ≤ 0 (:class:`Movie` checks).
    """
    changes = {k: v for k, v in (("voxel_size_um", voxel_size_um), ("frame_interval_s", frame_interval_s))
               if v is not None}
    return replace(movie, **changes) if changes else movie
