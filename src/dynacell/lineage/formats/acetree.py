"""AceTree nuclei files (``nuclei_files/tTTT-nuclei``, as shipped with WormGUIDES) + ``CellDeaths.csv``.

Format (AceTree, Boyle et al. 2006, BMC Bioinformatics 7:275; WormGUIDES loader
``AceTreeTableLineageDataLoader``): one file per time point ``TTT = 001, 002, ...``; one line
per nucleus, comma-separated, 21 fields of which dynacell uses

====== ============ ==========================================================
column name         meaning
====== ============ ==========================================================
0      id           1-based row number within the file (the nucleus id)
1      valid        1 = a real nucleus; 0 = deleted / placeholder row
2      predecessor  id in the previous file, -1 = none
3, 4   successor1/2 ids in the next file, -1 = none (two = a division)
5, 6   x, y         position in pixels
7      z            position in planes (float)
8      diameter     nucleus diameter in pixels
9      name         cell name (Sulston nomenclature, e.g. ``ABplpapaa``)
====== ============ ==========================================================

Only valid nuclei become nodes. WormGUIDES' ``Production_Info.csv`` documents for this
series (DISPIM_061416, strain JIM113) ``X_SCALE = Y_SCALE = Z_SCALE = 1`` (diSPIM,
isotropic after fusion) and a temporal resolution of 60 s; these are recorded in
``lineage.graph.graph["scale_zyx"]`` and ``["frame_interval_s"]``. ``CellDeaths.csv`` lists
the names of the cells that die by programmed cell death (one name a line).
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from dynacell.errors import FormatError, InvalidInputError
from dynacell.lineage._tracks import assign_track_ids
from dynacell.lineage.formats._common import progress
from dynacell.lineage.graph import Lineage

__all__ = ["read_acetree_lineage", "find_acetree_folder", "read_acetree_table", "read_cell_deaths"]

logger = logging.getLogger(__name__)

_FILE_RE = re.compile(r"^t(\d+)-nuclei$")
#: Documented in WormGUIDES Production_Info.csv (series DISPIM_061416).
WORMGUIDES_SCALE_ZYX = (1.0, 1.0, 1.0)
WORMGUIDES_FRAME_INTERVAL_S = 60.0
_COLUMNS = ["id", "valid", "predecessor", "successor1", "successor2", "x", "y", "z", "diameter", "name"]


def find_acetree_folder(path: str | Path) -> Path:
    """The folder holding ``tTTT-nuclei`` files: ``path`` or its ``nuclei_files`` subfolder.

    Parameters
    ----------
    path : str or Path
        A dataset folder or its ``nuclei_files`` folder.

    Returns
    -------
    Path
        The folder holding the files.

    Raises
    ------
    InvalidInputError
        If neither holds ``tTTT-nuclei`` files.
    """
    p = Path(path)
    for cand in (p, p / "nuclei_files"):
        if cand.is_dir() and any(_FILE_RE.match(f.name) for f in cand.iterdir()):
            return cand
    raise InvalidInputError(f"{p}: no AceTree 'tTTT-nuclei' files here or in {p / 'nuclei_files'}")


def read_acetree_table(folder: str | Path, *, show_progress: bool = False) -> pd.DataFrame:
    """All rows of all ``tTTT-nuclei`` files of ``folder`` in one table.

    Parameters
    ----------
    folder : str or Path
        A dataset folder or its ``nuclei_files`` folder (see :func:`find_acetree_folder`).
    show_progress : bool
        Progress bar over the files.

    Returns
    -------
    pandas.DataFrame
        Columns ``time`` (the file's ``TTT``, 1-based), ``id, valid, predecessor,
        successor1, successor2`` (int64), ``x, y, z, diameter`` (float64), ``name`` (str).

    Raises
    ------
    FormatError
        If a file has fewer than 10 fields on a line or non-numeric ids / positions.
    """
    folder = find_acetree_folder(folder)
    files = sorted((int(m.group(1)), f) for f in folder.iterdir() if (m := _FILE_RE.match(f.name)))
    # One parse for all files (prefixing each line with its time point) is ~5x faster than one
    # parse per file; on a parse error, the files are parsed one by one to name the culprit.
    chunks = []
    for time, f in progress(files, enabled=show_progress, desc="AceTree files", total=len(files)):
        text = f.read_text(encoding="utf-8", errors="replace")
        chunks.extend(f"{time},{line}\n" for line in text.splitlines() if line.strip())
    if not chunks:
        raise InvalidInputError(f"{folder}: all tTTT-nuclei files are empty")
    try:
        table = _parse_rows("".join(chunks), with_time=True)
    except (ValueError, pd.errors.ParserError):
        for time, f in files:
            try:
                _parse_rows(f.read_text(encoding="utf-8", errors="replace"), with_time=False)
            except (ValueError, pd.errors.ParserError) as exc:
                raise FormatError(
                    f"{f} (time point {time}): not an AceTree nuclei file ({exc}); expected comma-separated lines "
                    "'id, valid, predecessor, successor1, successor2, x, y, z, diameter, name, ...'"
                ) from None
        raise
    table["name"] = table["name"].astype(str).str.strip()
    return table


def _parse_rows(text: str, *, with_time: bool) -> pd.DataFrame:
    names = (["time"] if with_time else []) + _COLUMNS
    df = pd.read_csv(io.StringIO(text), header=None, usecols=range(len(names)), names=names,
                     skipinitialspace=True, dtype={"name": str}, keep_default_na=False)
    for c in names[: 6 if with_time else 5]:
        df[c] = pd.to_numeric(df[c], errors="raise").astype(np.int64)
    for c in _COLUMNS[5:9]:
        df[c] = pd.to_numeric(df[c], errors="raise").astype(np.float64)
    return df


def read_cell_deaths(path: str | Path) -> list[str]:
    """Cell names of ``CellDeaths.csv`` (one a line; blank lines skipped), in file order.

    Parameters
    ----------
    path : str or Path
        The file (WormGUIDES ``CellDeaths.csv``: one Sulston name a line; only the first
        comma-separated field is used).

    Returns
    -------
    list of str
        The names.
    """
    with open(path, encoding="utf-8") as fh:
        return [s.strip().split(",")[0].strip() for s in fh if s.strip()]


def read_acetree_lineage(
    path: str | Path,
    *,
    deaths: bool | str | Path = True,
    show_progress: bool = False,
) -> Lineage:
    """Build a :class:`Lineage` from AceTree ``tTTT-nuclei`` files (WormGUIDES).

    Parameters
    ----------
    path : str or Path
        The dataset folder (holding ``nuclei_files/``) or the ``nuclei_files`` folder.
    deaths : bool or path
        Mark programmed cell deaths from ``CellDeaths.csv`` (``True``: the file in ``path``
        or beside ``nuclei_files``; or a path; ``False``: none). The LAST node carrying a
        dying cell's name gets ``death=True``.
    show_progress : bool
        Progress bar over the files.

    Returns
    -------
    Lineage
        ``ndim = 3``; node ``(t, id)`` for every valid nucleus, ``t = TTT - 1`` (0-based
        frame index; AceTree time points start at 1), ``label = id`` (the row id within the
        file, which successor / predecessor columns refer to); attributes ``z, y, x``
        (z in planes, x and y in pixels, isotropic per the documented scales), ``name``,
        ``diameter_px``, ``death``; ``lineage.graph.graph["death_annotations"]`` names the
        death list when one was read; edges ``(t, id) → (t + 1, successor)`` for every
        successor that is a valid nucleus of the next file. ``track_id`` from
        :meth:`Lineage.assign_tracks`.

    Raises
    ------
    FormatError
        Malformed nuclei files.
    InvalidInputError
        A successor id that points to a missing or invalid nucleus inside the movie, or a
        death name that no nucleus carries.

    Notes
    -----
    A successor of a nucleus in the last file points beyond the movie; it is dropped (the
    node ends the track at the last frame). On the WormGUIDES data one valid nucleus of the
    last file (``t360``, id 942, ABprpppaapa) has two successors, so a direct count of
    "valid nuclei with two successors" gives 664 while the lineage has 663 divisions (the
    number the data README gives). Of the 113 cells of ``CellDeaths.csv``, 87 end before the
    last file and 26 are still present in it (the movie ends before they vanish); their last
    node, at the last frame, carries ``death=True`` all the same.
    """
    folder = find_acetree_folder(path)
    table = read_acetree_table(folder, show_progress=show_progress)
    n_time = int(table["time"].max())
    valid = table[table["valid"] == 1]
    t = (valid["time"].to_numpy() - 1).astype(np.int64)
    ids = valid["id"].to_numpy(np.int64)
    if (ids < 1).any():
        bad = valid[valid["id"] < 1].iloc[0]
        raise InvalidInputError(f"{folder}: time point {bad.time}: nucleus id {bad.id} must be >= 1")
    keys = list(zip(t.tolist(), ids.tolist()))
    if len(set(keys)) != len(keys):
        dup = pd.Series(keys)[pd.Series(keys).duplicated()].iloc[0]
        raise InvalidInputError(f"{folder}: time point {dup[0] + 1}: nucleus id {dup[1]} appears twice")
    lineage = Lineage(n_frames=n_time, ndim=3, source=str(folder))
    g = lineage.graph
    g.graph.update({"format": "acetree", "scale_zyx": WORMGUIDES_SCALE_ZYX,
                    "frame_interval_s": WORMGUIDES_FRAME_INTERVAL_S, "time_offset": 1})
    zs, ys, xs = (valid[c].to_numpy(float).tolist() for c in ("z", "y", "x"))
    diam = valid["diameter"].to_numpy(float).tolist()
    names = valid["name"].tolist()
    g.add_nodes_from(
        (k, {"z": z, "y": y, "x": x, "diameter_px": d, "name": n, "death": False})
        for k, z, y, x, d, n in zip(keys, zs, ys, xs, diam, names)
    )
    key_set = set(keys)
    edges = []
    dropped = 0
    for col in ("successor1", "successor2"):
        succ = valid[col].to_numpy(np.int64)
        for k, s in zip(keys, succ.tolist()):
            if s == -1:
                continue
            child = (k[0] + 1, s)
            if child in key_set:
                edges.append((k, child))
            elif child[0] >= n_time:
                dropped += 1
            else:
                raise InvalidInputError(
                    f"{folder}: t{k[0] + 1:03d}-nuclei, nucleus {k[1]} ({g.nodes[k]['name']}): successor {s} is not "
                    f"a valid nucleus of t{child[0] + 1:03d}-nuclei; fix the successor column"
                )
    g.add_edges_from(edges)
    if dropped:
        logger.info("%s: %d successor links of the last time point point beyond the movie and were dropped",
                    folder, dropped)
    try:
        lineage.validate()
    except InvalidInputError as exc:
        raise InvalidInputError(f"{folder}: {exc}") from None
    if deaths:
        death_file = _death_file(folder, deaths)
        if death_file is not None:
            _mark_deaths(lineage, read_cell_deaths(death_file), death_file)
            g.graph["death_annotations"] = str(death_file)
    assign_track_ids(lineage)
    logger.info("read %s: %d nuclei, %d divisions, %d deaths", folder, len(lineage), len(lineage.divisions()),
                len(lineage.explicit_deaths()))
    return lineage


def _death_file(folder: Path, deaths: bool | str | Path) -> Path | None:
    if deaths is not True:
        p = Path(deaths)
        if not p.is_file():
            raise InvalidInputError(f"cell-death list {p} does not exist")
        return p
    for cand in (folder / "CellDeaths.csv", folder.parent / "CellDeaths.csv"):
        if cand.is_file():
            return cand
    logger.info("%s: no CellDeaths.csv found; no explicit deaths", folder)
    return None


def _mark_deaths(lineage: Lineage, names: list[str], source: Path) -> None:
    last: dict[str, tuple[int, int]] = {}
    for node, name in lineage.graph.nodes(data="name"):
        if name and (name not in last or node > last[name]):
            last[name] = node
    missing = [n for n in names if n not in last]
    if missing:
        raise InvalidInputError(
            f"{source}: {len(missing)} dying cells are not named by any nucleus of {lineage.source} "
            f"(first: {missing[:5]}); check the cell names or the lineage"
        )
    for n in names:
        lineage.graph.nodes[last[n]]["death"] = True
