"""Sample sets: every crop of a dataset in one file, with a metadata table.

File format (``.npz``, written by :meth:`SampleSet.save`, uncompressed by default so that
it reads at disk speed; ``numpy.load(..., allow_pickle=False)`` reads it without dynacell):

``x``
    float32 ``(N, 4, *size)``, the crops (channels ``[t−1, t, t+1, mask]``).
``meta/<column>``
    one array per column of the metadata table (strings as numpy unicode arrays).
``meta_columns``
    JSON list of the column names, in order.
``attrs``
    JSON object: crop size, normalisation, voxel size, rules, seed, source paths, ...
``format``
    ``"dynacell.SampleSet"`` and ``format_version``.

The write goes to a temporary file beside the target and is renamed into place.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dynacell.errors import FormatError, InvalidInputError, OutputExistsError

__all__ = ["META_COLUMNS", "SampleSet", "concat", "export_seed_layout", "import_seed_layout"]

logger = logging.getLogger(__name__)

#: Required metadata columns, in order.
META_COLUMNS: tuple[str, ...] = ("dataset", "t", "label", "track_id", "tree_id", "state", "z", "y", "x")

_INT_COLUMNS = ("t", "label", "track_id", "tree_id")
_FLOAT_COLUMNS = ("z", "y", "x")
_STR_COLUMNS = ("dataset", "state")
FORMAT_NAME = "dynacell.SampleSet"
FORMAT_VERSION = 1


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path, os.PathLike)):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"attribute value {obj!r} of type {type(obj).__name__} cannot be stored as JSON")


@dataclass
class SampleSet:
    """Crops of nuclei with their metadata: the training / evaluation unit of dynacell.

    Parameters
    ----------
    x : numpy.ndarray
        float32 ``(N, C, *size)``: ``(N, C, Y, X)`` in 2D, ``(N, C, Z, Y, X)`` in 3D; ``C = 4``,
        channels ``[t−1, t, t+1, mask]`` as made by :func:`dynacell.samples.crop_window`, or
        ``C = 6`` with the segmentation-context channels ``[seg t−1, seg t+1]``.
    meta : pandas.DataFrame
        ``N`` rows with at least the columns ``dataset`` (str), ``t``, ``label``, ``track_id``,
        ``tree_id`` (int; ``-1`` where unknown, e.g. without a lineage), ``state`` (str, one of
        :data:`dynacell.STATES` or ``unknown``), ``z, y, x`` (float, centroid in pixels; ``z = 0``
        in 2D); extra columns are kept.
    attrs : dict
        JSON-serialisable provenance: ``size``, ``normalization``, ``voxel_size_um``, ``rules``,
        ``seed``, ``sources``, ...

    Raises
    ------
    InvalidInputError
        If ``x`` is not ``(N, 4 or 6, ...)`` float32-convertible of 2 or 3 spatial axes, or ``meta``
        misses a required column or has a different number of rows.
    """

    x: np.ndarray
    meta: pd.DataFrame
    attrs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        x = np.asarray(self.x)
        if x.ndim not in (4, 5) or x.shape[1] not in (4, 6):
            raise InvalidInputError(
                f"SampleSet x must have shape (N, C, Y, X) or (N, C, Z, Y, X) with C = 4 "
                f"([t-1, t, t+1, mask]) or 6 (with segmentation context), got {x.shape}"
            )
        self.x = x.astype(np.float32, copy=False)
        missing = [c for c in META_COLUMNS if c not in self.meta.columns]
        if missing:
            raise InvalidInputError(
                f"SampleSet meta misses column(s) {missing}; required: {list(META_COLUMNS)}"
            )
        if len(self.meta) != x.shape[0]:
            raise InvalidInputError(f"SampleSet has {x.shape[0]} crops but {len(self.meta)} metadata rows")
        meta = self.meta.reset_index(drop=True).copy()
        for c in _INT_COLUMNS:
            meta[c] = meta[c].astype(np.int64)
        for c in _FLOAT_COLUMNS:
            meta[c] = meta[c].astype(np.float64)
        for c in _STR_COLUMNS:
            meta[c] = meta[c].astype(str)
        cols = list(META_COLUMNS) + [c for c in meta.columns if c not in META_COLUMNS]
        self.meta = meta[cols]
        self.attrs = dict(self.attrs)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def ndim(self) -> int:
        """Spatial dimensionality of the crops (2 or 3)."""
        return self.x.ndim - 2

    @property
    def size(self) -> tuple[int, ...]:
        """Crop size per spatial axis, pixels."""
        return tuple(int(s) for s in self.x.shape[2:])

    def counts(self) -> dict[str, int]:
        """Number of samples per state.

        Returns
        -------
        dict of str to int
            E.g. ``{"stable": 900, "mitotic": 40}``, largest first; states without samples are absent.
        """
        return {str(k): int(v) for k, v in self.meta["state"].value_counts().items()}

    def subset(self, index: Sequence[int] | np.ndarray) -> SampleSet:
        """The samples at positions ``index``, attrs copied.

        Parameters
        ----------
        index : sequence of int or numpy.ndarray
            Row positions (int) or a boolean mask of length ``N``.

        Returns
        -------
        SampleSet
            A new set (``x`` and ``meta`` rows taken in ``index`` order).
        """
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return SampleSet(self.x[idx], self.meta.iloc[idx].reset_index(drop=True), dict(self.attrs))

    def split(self, by: str = "tree", fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0,
              time_block: int | None = None) -> dict[str, SampleSet]:
        """Grouped train/val/test split (:func:`dynacell.samples.grouped_split`) as three sample sets.

        Parameters
        ----------
        by, fractions, seed, time_block
            As in :func:`dynacell.samples.grouped_split`.

        Returns
        -------
        dict of str to SampleSet
            ``{"train", "val", "test"}``; the split parameters are recorded in each part's
            ``attrs["split"]``.

        Raises
        ------
        InvalidInputError
            As :func:`dynacell.samples.grouped_split`.
        """
        from dynacell.samples.splits import grouped_split

        parts = grouped_split(self.meta, by=by, fractions=fractions, seed=seed, time_block=time_block)
        out = {}
        for name, idx in parts.items():
            s = self.subset(idx)
            s.attrs["split"] = {"part": name, "by": by, "fractions": list(fractions), "seed": int(seed),
                                "time_block": time_block}
            out[name] = s
        return out

    def __repr__(self) -> str:
        return f"SampleSet(n={len(self)}, size={self.size}, counts={self.counts()})"

    # ------------------------------------------------------------------ file I/O
    def save(self, path: str | os.PathLike, *, overwrite: bool = False, compress: bool = False) -> Path:
        """Write the set to one ``.npz`` file (atomic: temporary file, then rename).

        Parameters
        ----------
        path : path-like
            Output file; ``.npz`` is appended when missing.
        overwrite : bool
            Replace an existing file.
        compress : bool
            zip-deflate the arrays (smaller, several times slower to write and read).

        Returns
        -------
        pathlib.Path
            The written file.

        Raises
        ------
        OutputExistsError
            If the file exists and ``overwrite`` is False.
        InvalidInputError
            If ``attrs`` holds a value JSON cannot store.
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        if path.exists() and not overwrite:
            raise OutputExistsError(f"sample set {path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
        try:
            attrs_json = json.dumps(self.attrs, default=_json_default)
        except TypeError as exc:
            raise InvalidInputError(f"sample set attrs cannot be saved to {path}: {exc}") from None
        arrays: dict[str, np.ndarray] = {"x": self.x}
        for c in self.meta.columns:
            col = self.meta[c]
            arr = col.to_numpy()
            if arr.dtype == object or arr.dtype.kind not in "biufcUS":
                arr = col.astype(str).to_numpy(dtype=str)  # strings, categoricals: no pickled objects
            arrays[f"meta/{c}"] = arr
        arrays["meta_columns"] = np.array(json.dumps([str(c) for c in self.meta.columns]))
        arrays["attrs"] = np.array(attrs_json)
        arrays["format"] = np.array(FORMAT_NAME)
        arrays["format_version"] = np.array(FORMAT_VERSION)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                (np.savez_compressed if compress else np.savez)(fh, **arrays)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        logger.info("wrote sample set %s (%d samples, %s)", path, len(self), self.counts())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> SampleSet:
        """Read a set written by :meth:`save` (``numpy.load`` without pickles).

        Parameters
        ----------
        path : path-like
            The ``.npz`` file.

        Returns
        -------
        SampleSet
            ``x`` float32 ``(N, 4, *size)``, ``meta`` with the stored columns, ``attrs``.

        Raises
        ------
        FormatError
            If the file is missing pieces, truncated or not a dynacell sample set.
        InvalidInputError
            If the file does not exist.
        """
        path = Path(path)
        if not path.exists():
            raise InvalidInputError(f"sample set {path} does not exist; give the .npz written by `dynacell extract`")
        try:
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                if "format" not in z.files or str(z["format"]) != FORMAT_NAME:
                    raise FormatError(
                        f"{path} is not a dynacell sample set (no 'format' = {FORMAT_NAME!r} entry); "
                        "create one with `dynacell extract` or SampleSet.save"
                    )
                version = int(z["format_version"])
                if version > FORMAT_VERSION:
                    raise FormatError(
                        f"sample set {path} has format version {version}; this dynacell reads up to "
                        f"{FORMAT_VERSION}: upgrade dynacell"
                    )
                columns = json.loads(str(z["meta_columns"]))
                meta = pd.DataFrame({c: z[f"meta/{c}"] for c in columns}, columns=columns)
                attrs = json.loads(str(z["attrs"]))
                x = z["x"]
        except FormatError:
            raise
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise FormatError(f"sample set {path} cannot be read ({type(exc).__name__}: {exc}); "
                              "the file is truncated or not a sample set: extract it again") from None
        return cls(x, meta, attrs)

    @classmethod
    def concat(cls, sets: Sequence[SampleSet]) -> SampleSet:
        """Concatenate sample sets (see :func:`concat`).

        Parameters
        ----------
        sets : sequence of SampleSet
            At least one set of one crop shape and normalisation.

        Returns
        -------
        SampleSet
            Rows in the given order.
        """
        return concat(sets)


def concat(sets: Sequence[SampleSet]) -> SampleSet:
    """Concatenate sample sets of the same crop size and normalisation.

    Parameters
    ----------
    sets : sequence of SampleSet
        At least one set; crops must have the same shape.

    Returns
    -------
    SampleSet
        Rows in the given order. ``attrs``: keys equal in every part are kept; keys that
        differ become ``{"parts": [value_of_each_part, ...]}``; ``attrs["parts"]`` counts rows.

    Raises
    ------
    InvalidInputError
        If ``sets`` is empty or crop shapes or normalisations differ.
    """
    sets = list(sets)
    if not sets:
        raise InvalidInputError("concat needs at least one sample set, got none")
    shape = sets[0].x.shape[1:]
    norm = json.dumps(sets[0].attrs.get("normalization"), sort_keys=True, default=_json_default)
    for i, s in enumerate(sets[1:], start=1):
        if s.x.shape[1:] != shape:
            raise InvalidInputError(
                f"sample set {i} has crops of shape {s.x.shape[1:]} but set 0 has {shape}; "
                "extract them with the same --size"
            )
        if json.dumps(s.attrs.get("normalization"), sort_keys=True, default=_json_default) != norm:
            raise InvalidInputError(f"sample set {i} was normalised differently from set 0; re-extract it")
    keys = list(dict.fromkeys(k for s in sets for k in s.attrs))
    attrs: dict = {}
    for k in keys:
        vals = [s.attrs.get(k) for s in sets]
        enc = {json.dumps(v, sort_keys=True, default=_json_default) for v in vals}
        attrs[k] = vals[0] if len(enc) == 1 else {"parts": vals}
    attrs["n_parts"] = [len(s) for s in sets]
    x = np.concatenate([s.x for s in sets], axis=0)
    meta = pd.concat([s.meta for s in sets], ignore_index=True)
    return SampleSet(x, meta, attrs)


# ---------------------------------------------------------------------- seed layout
_SEED_NAME = re.compile(r"^(?P<dataset>.+)_frame_(?P<t>\d+)_nucleus_(?P<label>\d+)_count_(?P<count>\d+)$")
_SEED_CHANNELS = ("t-1", "t", "t+1")


def export_seed_layout(samples: SampleSet, root: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a sample set in the seed's folder layout (one folder per sample, TIFF files).

    Layout (the seed state classifier)::

        root/<state>/<dataset>_frame_TTT_nucleus_LLL_count_N/t-1/raw_cropped.tif
                                                           /t/raw_cropped.tif
                                                           /t/binary_label_cropped.tif
                                                           /t+1/raw_cropped.tif

    ``N`` is the sample's row number in ``samples``. The raw crops are written as the
    normalised float32 channels ``([Z,] Y, X)``; the mask as uint8 0/1.

    Parameters
    ----------
    samples : SampleSet
        The set to export.
    root : path-like
        Output folder (written under a temporary name, then renamed).
    overwrite : bool
        Replace an existing folder.

    Returns
    -------
    pathlib.Path
        ``root``.

    Raises
    ------
    OutputExistsError
        If ``root`` exists and ``overwrite`` is False.
    """
    import shutil

    import tifffile

    root = Path(root)
    if root.exists() and not overwrite:
        raise OutputExistsError(f"seed-layout folder {root} exists; pass overwrite=True to replace it")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        meta = samples.meta
        for i in range(len(samples)):
            row = meta.iloc[i]
            name = f"{row['dataset']}_frame_{int(row['t']):03d}_nucleus_{int(row['label']):03d}_count_{i}"
            d = tmp / str(row["state"]) / name
            for c, ch in enumerate(_SEED_CHANNELS):
                (d / ch).mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(d / ch / "raw_cropped.tif", samples.x[i, c])
            tifffile.imwrite(d / "t" / "binary_label_cropped.tif", (samples.x[i, 3] > 0).astype(np.uint8))
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def _fit_size(a: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Centre-crop or zero-pad ``a`` to ``size`` (the seed cropped 64³/65³ to 32³ this way)."""
    out = np.zeros(size, dtype=a.dtype)
    src, dst = [], []
    for n, s in zip(a.shape, size):
        if n >= s:
            o = (n - s) // 2
            src.append(slice(o, o + s))
            dst.append(slice(0, s))
        else:
            o = (s - n) // 2
            src.append(slice(0, n))
            dst.append(slice(o, o + n))
    out[tuple(dst)] = a[tuple(src)]
    return out


def import_seed_layout(
    root: str | os.PathLike,
    *,
    size: int | Sequence[int] | None = None,
    normalize: bool = True,
    dataset: str | None = None,
) -> SampleSet:
    """Read a folder in the seed's layout (see :func:`export_seed_layout`) into a sample set.

    Parameters
    ----------
    root : path-like
        Folder holding one sub-folder per class (``stable``, ``mitotic``, ...).
    size : int or tuple of int, optional
        Centre-crop (or zero-pad) every crop to this size per spatial axis (the seed's
        crops are 64³/65³; its model used the central 32³). Default: keep the size, which
        must then be the same for all samples.
    normalize : bool
        Apply :func:`dynacell.samples.normalize_crops` to the raw channels (True for the
        seed's raw uint16 crops, so they match crops made by dynacell). False keeps the
        stored values (e.g. re-importing a set written by :func:`export_seed_layout`).
    dataset : str, optional
        Override the dataset name parsed from the folder names.

    Returns
    -------
    SampleSet
        ``track_id`` and ``tree_id`` are -1 and ``z, y, x`` NaN (the layout does not store them);
        column ``count`` holds ``N`` of the folder name. Rows sorted by ``count``.

    Raises
    ------
    InvalidInputError
        If ``root`` has no sample folder, a folder name does not follow the pattern, a file is
        missing, or crop shapes differ (without ``size``).
    """
    import tifffile

    from dynacell.samples.crops import normalize_crops, resolve_size

    root = Path(root)
    if not root.is_dir():
        raise InvalidInputError(f"seed-layout folder {root} does not exist")
    rows, crops = [], []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for d in sorted(p for p in class_dir.iterdir() if p.is_dir()):
            m = _SEED_NAME.match(d.name)
            if m is None:
                raise InvalidInputError(
                    f"seed-layout folder {d}: name does not match "
                    "'<dataset>_frame_TTT_nucleus_LLL_count_N'; rename or remove it"
                )
            files = [d / ch / "raw_cropped.tif" for ch in _SEED_CHANNELS] + [d / "t" / "binary_label_cropped.tif"]
            for f in files:
                if not f.is_file():
                    raise InvalidInputError(f"seed-layout sample {d}: missing {f.relative_to(d)}")
            arrs = [tifffile.imread(f) for f in files]
            if len({a.shape for a in arrs}) != 1:
                raise InvalidInputError(f"seed-layout sample {d}: files have different shapes {[a.shape for a in arrs]}")
            if size is not None:
                target = resolve_size(size, arrs[0].ndim)
                arrs = [_fit_size(a, target) for a in arrs]
            crops.append(arrs)
            rows.append({"dataset": dataset or m["dataset"], "t": int(m["t"]), "label": int(m["label"]),
                         "track_id": -1, "tree_id": -1, "state": class_dir.name,
                         "z": np.nan, "y": np.nan, "x": np.nan, "count": int(m["count"])})
    if not crops:
        raise InvalidInputError(f"seed-layout folder {root} holds no sample folder (<class>/<name>/t/...)")
    shapes = {c[0].shape for c in crops}
    if len(shapes) != 1:
        raise InvalidInputError(f"seed-layout folder {root}: crops have different shapes {sorted(shapes)}; pass size=")
    raw = np.stack([np.stack(c[:3]) for c in crops]).astype(np.float32)
    mask = np.stack([c[3] for c in crops]) > 0
    x = np.empty((len(crops), 4, *raw.shape[2:]), np.float32)
    x[:, :3] = normalize_crops(raw) if normalize else raw
    x[:, 3] = mask
    meta = pd.DataFrame(rows)
    order = np.argsort(meta["count"].to_numpy(), kind="stable")
    from dynacell.samples.crops import NORMALIZATION

    attrs = {"source": str(root), "format": "seed-layout", "size": list(x.shape[2:]),
             "normalization": NORMALIZATION if normalize else "as stored"}
    return SampleSet(x[order], meta.iloc[order].reset_index(drop=True), attrs)
