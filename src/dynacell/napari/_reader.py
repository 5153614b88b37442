"""napari reader: a ``dynacell run`` output folder as image + labels coloured by state + tracks layers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from dynacell.errors import InvalidInputError
from dynacell.viz.run_folder import RunFolder, is_run_folder, load_run

__all__ = ["get_reader", "read_run_folder", "STATE_CODES"]

logger = logging.getLogger(__name__)

#: Value of each state in the ``states`` labels layer (0 = background).
STATE_CODES = {"stable": 1, "mitotic": 2, "new_daughter": 3, "death": 4, "unknown": 5}

LayerData = tuple[Any, dict[str, Any], str]


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """npe2 reader hook: :func:`read_run_folder` for a ``dynacell run`` output folder, else None.

    Parameters
    ----------
    path : str or list of str
        What the user opened (napari passes one path or a list).

    Returns
    -------
    callable or None
        None lets napari try its other readers.
    """
    p = path[0] if isinstance(path, list) and len(path) == 1 else path
    if isinstance(p, list) or not is_run_folder(p):
        return None
    return read_run_folder


def _state_lookup(states: pd.DataFrame) -> dict[int, np.ndarray]:
    """Per frame: an array mapping label (= track id in ``ctc/``) to state code."""
    out: dict[int, np.ndarray] = {}
    if not len(states):
        return out
    for t, g in states.groupby("t"):
        ids = g["track_id"].to_numpy(int)
        lut = np.zeros(int(ids.max()) + 1, np.uint8)
        lut[ids] = [STATE_CODES.get(s, 5) for s in g["state"]]
        out[int(t)] = lut
    return out


def _state_layer(labels, states: pd.DataFrame):
    """Lazy (dask) movie of state codes from the track-id masks of ``ctc/`` and ``states.csv``."""
    import dask.array as da

    luts = _state_lookup(states)
    frames = list(labels.frame_indices)
    data = labels.data if isinstance(labels.data, da.Array) else da.from_array(labels.data)
    data = data.rechunk({0: 1})

    def to_codes(block: np.ndarray, block_info=None) -> np.ndarray:
        t = frames[block_info[0]["chunk-location"][0]]
        lut = luts.get(int(t))
        block = np.asarray(block)
        if lut is None:
            return np.zeros(block.shape, np.uint8)
        ids = np.clip(block, 0, lut.size - 1).astype(np.int64)
        return np.where(block < lut.size, lut[ids], 0).astype(np.uint8)

    return data.map_blocks(to_codes, dtype=np.uint8)


def _tracks(run: RunFolder, scale_zyx: tuple[float, ...], ndim: int):
    """napari tracks data ``(track_id, t, [z,] y, x)`` in µm, the lineage graph and per-point properties."""
    lin = run.lineage()
    df = lin.to_dataframe()
    if df.empty:
        return None
    df = df.merge(run.states[["t", "label", "state"]], on=["t", "label"], how="left")
    df["state"] = df["state"].fillna("unknown")
    cols = ["z", "y", "x"] if ndim == 3 else ["y", "x"]
    data = np.column_stack([df["track_id"].to_numpy(float), df["t"].to_numpy(float),
                            *[df[c].to_numpy(float) for c in cols]])
    keep = np.isfinite(data).all(axis=1)
    graph = {int(t): [int(p)] for t, p in zip(df["track_id"], df["parent_track_id"]) if p}
    props = {"state_code": np.array([STATE_CODES.get(s, 5) for s in df["state"]])[keep]}
    return data[keep], graph, props


def read_run_folder(path: str | list[str]) -> list[LayerData]:
    """Open a ``dynacell run`` output folder as napari layers.

    Layers (all with the run's pixel size as ``scale``, so distances are in µm when it is known):

    - ``movie`` (image): the movie the run read (from ``run.json``), when it still exists;
    - ``nuclei (track id)`` (labels): the ``ctc/`` masks, whose values are the track ids;
    - ``states`` (labels): each nucleus filled with its state, coloured as in the report (stable
      green, mitotic yellow, new_daughter light blue, death red, unknown grey);
    - ``tracks`` (tracks): every track with its lineage (daughters linked to their mother).

    Parameters
    ----------
    path : str or list of str
        The run folder.

    Returns
    -------
    list of tuple
        napari ``LayerData`` tuples ``(data, kwargs, layer_type)``.

    Raises
    ------
    InvalidInputError
        If ``path`` is not a run folder.
    """
    from dynacell.viz.overlay import STATE_COLORS

    p = path[0] if isinstance(path, list) else path
    run = load_run(p)
    labels = run.labels()
    ndim = labels.ndim_spatial
    vs = run.voxel_size_um
    scale_zyx = tuple(vs) if vs and len(vs) == ndim else (1.0,) * ndim
    scale = (1.0, *scale_zyx)
    layers: list[LayerData] = []
    try:
        images = run.images()
        layers.append((images.data, {"name": "movie", "scale": scale, "colormap": "gray",
                                     "metadata": {"source": images.source}}, "image"))
    except InvalidInputError as exc:
        logger.warning("%s", exc)
    layers.append((labels.data, {"name": "nuclei (track id)", "scale": scale, "opacity": 0.4, "visible": False},
                   "labels"))
    colors = {None: (0.0, 0.0, 0.0, 0.0), 0: (0.0, 0.0, 0.0, 0.0)}
    for state, code in STATE_CODES.items():
        r, g, b = STATE_COLORS[state]
        colors[code] = (r / 255, g / 255, b / 255, 1.0)
    from napari.utils.colormaps import DirectLabelColormap

    layers.append((_state_layer(labels, run.states),
                   {"name": "states", "scale": scale, "opacity": 0.6, "colormap": DirectLabelColormap(color_dict=colors),
                    "metadata": {"state_codes": dict(STATE_CODES)}}, "labels"))
    tr = _tracks(run, scale_zyx, ndim)
    if tr is not None:
        data, graph, props = tr
        layers.append((data, {"name": "tracks", "graph": graph, "scale": scale, "tail_length": 10,
                              "properties": props}, "tracks"))
    return layers
