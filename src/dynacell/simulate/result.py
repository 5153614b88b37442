"""The output of the simulator: images, labels, ground-truth lineage and parameters."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dynacell.errors import InvalidInputError, OutputExistsError
from dynacell.lineage.graph import Lineage

__all__ = ["SimulationResult"]

logger = logging.getLogger(__name__)


@dataclass
class SimulationResult:
    """A simulated movie with exact ground truth.

    Attributes
    ----------
    images : ndarray, shape (T, (Z), Y, X), uint16
        Camera frames in ADU.
    labels : ndarray, shape (T, (Z), Y, X), int32
        Instance labels; the value of a nucleus at frame ``t`` is the label of its lineage
        node ``(t, label)``, 0 is background.
    lineage : Lineage
        Ground-truth lineage: nodes ``(t, label)`` for every labelled nucleus, centroids in
        the rendered pixel grid, ``state`` (ground truth), ``track_id``, ``diameter_px``.
    params : dict
        Every parameter used (physical units) and the seed, JSON-able.
    """

    images: np.ndarray
    labels: np.ndarray
    lineage: Lineage
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def ndim(self) -> int:
        """Spatial dimensionality (2 or 3)."""
        return self.images.ndim - 1

    @property
    def axes(self) -> str:
        """``"TYX"`` or ``"TZYX"``."""
        return "TZYX" if self.ndim == 3 else "TYX"

    @property
    def voxel_size_um(self) -> tuple[float, ...]:
        """Rendered voxel size in µm, spatial axes order (``(Z, Y, X)`` or ``(Y, X)``)."""
        return tuple(float(v) for v in self.params["render_voxel_size_um"])

    @property
    def frame_interval_s(self) -> float:
        """Time between frames in seconds."""
        return float(self.params["imaging"]["frame_interval_s"])

    def states(self) -> pd.DataFrame:
        """Ground-truth table: ``t, label, track_id, state, z, y, x`` (pixels), sorted by ``(t, label)``."""
        df = self.lineage.to_dataframe()
        cols = ["t", "label", "track_id", "state", "z", "y", "x"]
        if df.empty:
            return pd.DataFrame(columns=cols)
        return df[cols].reset_index(drop=True)

    def to_movies(self) -> tuple[Any, Any]:
        """The images and labels as :class:`dynacell.io.movie.Movie` objects (in memory).

        Returns
        -------
        images, labels : Movie
            Axes, voxel size (µm) and frame interval (s) filled in.
        """
        from dynacell.io.movie import Movie

        kw = dict(axes=self.axes, voxel_size_um=self.voxel_size_um, frame_interval_s=self.frame_interval_s,
                  source="dynacell.simulate")
        return Movie(self.images, **kw), Movie(self.labels, **kw)

    def track_labels(self) -> tuple[np.ndarray, Lineage]:
        """Labels relabelled so that each track keeps one value (CTC convention).

        Returns
        -------
        labels : ndarray, shape (T, (Z), Y, X), uint16 or int32
            Mask value = ``track_id`` of the node.
        lineage : Lineage
            The lineage with nodes ``(t, track_id)``.

        Raises
        ------
        InvalidInputError
            If a labelled voxel has no lineage node.
        """
        lin = self.lineage
        lin.assign_tracks()
        g = lin.graph
        max_tid = max((int(d["track_id"]) for _, d in g.nodes(data=True)), default=0)
        dtype = np.uint16 if max_tid < 65536 else np.int32
        out = np.zeros(self.labels.shape, dtype=dtype)
        new = Lineage(n_frames=lin.n_frames, ndim=lin.ndim, source=lin.source)
        for t in range(self.labels.shape[0]):
            nodes = lin.nodes_at(t)
            frame = self.labels[t]
            lut = np.zeros(int(frame.max()) + 1, dtype=np.int64)
            for n in nodes:
                if n[1] < lut.size:
                    lut[n[1]] = g.nodes[n]["track_id"]
            orphan = np.setdiff1d(np.unique(frame), [0, *[n[1] for n in nodes]])
            if orphan.size:
                raise InvalidInputError(
                    f"simulation frame {t}: label(s) {orphan.tolist()[:5]} have no lineage node; "
                    "labels and lineage are inconsistent"
                )
            out[t] = lut[frame]
            for n in nodes:
                d = dict(g.nodes[n])
                new.add_node((t, int(d["track_id"])), **d)
        for u, v in g.edges:
            new.add_edge((u[0], int(g.nodes[u]["track_id"])), (v[0], int(g.nodes[v]["track_id"])))
        return out, new

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write the simulation as a CTC-style folder, atomically.

        Layout::

            folder/images/tTTT.tif          camera frames, uint16, ImageJ metadata (µm)
            folder/labels/man_trackTTT.tif  CTC TRA masks, value = track id
            folder/labels/man_track.txt     CTC tracks ``L B E P``
            folder/states.csv               t, label (= mask value), track_id, state, z, y, x
            folder/params.json              every parameter and the seed
            folder/lineage.geff             the lineage as GEFF (when dynacell.lineage has write_geff)

        Parameters
        ----------
        folder : str or Path
            Output folder (created; its parent must exist).
        overwrite : bool
            Replace an existing folder.

        Returns
        -------
        Path
            The folder.

        Raises
        ------
        OutputExistsError
            If ``folder`` exists and ``overwrite`` is False.
        InvalidInputError
            If the parent folder does not exist.
        """
        import tifffile

        folder = Path(folder)
        if folder.exists() and not overwrite:
            raise OutputExistsError(f"output folder {folder} exists; pass overwrite=True (--overwrite) to replace it")
        if not folder.parent.is_dir():
            raise InvalidInputError(
                f"cannot write simulation to {folder}: parent folder {folder.parent} does not exist; create it first"
            )
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
        try:
            track_lab, track_lin = self.track_labels()
            (tmp / "images").mkdir()
            (tmp / "labels").mkdir()
            T = self.images.shape[0]
            digits = max(3, len(str(T - 1)))
            vs = self.voxel_size_um
            res = (1.0 / vs[-1], 1.0 / vs[-2])
            meta = {"unit": "um", "axes": "ZYX" if self.ndim == 3 else "YX"}
            if self.ndim == 3:
                meta["spacing"] = vs[0]
            meta["finterval"] = self.frame_interval_s
            for t in range(T):
                tifffile.imwrite(tmp / "images" / f"t{t:0{digits}d}.tif", self.images[t], imagej=True,
                                 resolution=res, metadata=meta, compression="zlib")
                lab = track_lab[t]
                if lab.dtype == np.uint16:
                    tifffile.imwrite(tmp / "labels" / f"man_track{t:0{digits}d}.tif", lab, imagej=True,
                                     resolution=res, metadata=meta, compression="zlib")
                else:
                    tifffile.imwrite(tmp / "labels" / f"man_track{t:0{digits}d}.tif", lab, compression="zlib")
            tracks = track_lin.tracks()
            with open(tmp / "labels" / "man_track.txt", "w") as fh:
                for r in tracks.itertuples(index=False):
                    fh.write(f"{r.track_id} {r.start} {r.end} {r.parent_track_id}\n")
            df = track_lin.to_dataframe()
            cols = ["t", "label", "track_id", "state", "z", "y", "x"]
            (df[cols] if not df.empty else pd.DataFrame(columns=cols)).to_csv(tmp / "states.csv", index=False)
            with open(tmp / "params.json", "w") as fh:
                json.dump(self.params, fh, indent=2, default=str)
            self._write_geff(track_lin, tmp / "lineage.geff")
            if folder.exists():
                shutil.rmtree(folder)
            tmp.rename(folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        logger.info("wrote simulation (%d frames) to %s", self.images.shape[0], folder)
        return folder

    @staticmethod
    def _write_geff(lineage: Lineage, path: Path) -> None:
        """Write the lineage as GEFF with ``dynacell.lineage.write_geff`` when it exists."""
        import dynacell.lineage as dl

        write_geff = getattr(dl, "write_geff", None)
        if write_geff is None:
            logger.info("dynacell.lineage.write_geff is not available: lineage saved as man_track.txt only")
            return
        write_geff(lineage, path)
