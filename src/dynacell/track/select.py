"""The lineage of ``dynacell run``: the given one, checked against the labels, or linked (:func:`lineage_for_run`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dynacell.io.movie import Movie
from dynacell.lineage.graph import Lineage

__all__ = ["lineage_for_run", "linking_notes", "uncertain_frame_captions"]

#: How run.json and the report word what :func:`dynacell.lineage.checks.check_lineage` changed in a given lineage.
_CHECK_PHRASES = {"nodes_outside_movie_ignored": "node(s) at frames outside the movie ignored",
                  "nuclei_added_as_single_node_tracks": "nucleus/nuclei of the masks absent from it added as one-node "
                                                        "tracks",
                  "spots_matched_to_mask_ids": "TrackMate spot(s) matched to the mask label under them",
                  "spots_matched_to_nearest_nucleus": "of them matched to the nearest nucleus (the spot on "
                                                      "background, the nucleus' centre outside its mask)"}


def _uncertain(linking: dict | None) -> list:
    """The linker's ``uncertain_frame_pairs`` ``[t, t_next, share]`` in :func:`lineage_for_run`'s ``linking``."""
    return ((linking or {}).get("linker") or {}).get("uncertain_frame_pairs") or []


def linking_notes(linking: dict | None) -> list[str]:
    """The report's note on frame pairs whose links are uncertain, from :func:`lineage_for_run`'s ``linking``.

    Parameters
    ----------
    linking : dict or None
        ``linking`` of :func:`lineage_for_run` (None for a given lineage: no note).

    Returns
    -------
    list of str
        One note when the linker recorded ``uncertain_frame_pairs`` (:func:`dynacell.track.link_labels`), else
        none: which frame pairs, why, and what was measured on such pairs.
    """
    pairs = _uncertain(linking)
    if not pairs:
        return []
    shown = ", ".join(f"{a}→{b}" for a, b, _ in pairs[:12]) + (" ..." if len(pairs) > 12 else "")
    return [f"Links uncertain between {len(pairs)} pair(s) of frames ({shown}): after motion compensation at least "
            "half of the nuclei there lie about as near to another nucleus' next position as to their own (they "
            "moved by half their spacing or more between the frames). On real colonies and a real embryo's lineage "
            "16–36 % of the links between such frames were wrong, at most 7 % between the other frames: check the "
            "tracks across these frames, or image more often (run.json: "
            "parameters.linking.linker.uncertain_frame_pairs)."]


def uncertain_frame_captions(linking: dict | None) -> dict[int, str]:
    """Per frame whose links from the frame before are uncertain, the overlay video's caption note.

    Parameters
    ----------
    linking : dict or None
        ``linking`` of :func:`lineage_for_run` (None for a given lineage).

    Returns
    -------
    dict of int to str
        ``{t_next: "links from frame t uncertain"}`` for the linker's ``uncertain_frame_pairs``
        (:func:`dynacell.track.link_labels`); empty when there are none.
    """
    return {int(b): f"links from frame {int(a)} uncertain" for a, b, _ in _uncertain(linking)}


def lineage_for_run(images: Movie, labels: Movie, ids: dict[int, np.ndarray], nuclei: pd.DataFrame, *,
                    given: Lineage | None = None, path: str | Path | None = None, max_distance: float | None = None,
                    motion_prior: str = "flow", progress: bool = False, objects: dict | None = None
                    ) -> tuple[Lineage, str, dict | None]:
    """The lineage of the main job, with CTC track ids on every node.

    Given (``given``, else the file ``path``): read with :func:`dynacell.lineage.formats.read_lineage`
    and checked against the label ids by :func:`dynacell.lineage.checks.check_lineage`. Otherwise
    linked by :func:`dynacell.track.link_labels` with the gate of :func:`dynacell.track.gate.motion_gate`
    (``max_distance`` overrides the gate). Either way ``n_frames`` becomes the movie's extent
    (``max(ids) + 1``, which decides which track ends lie before the movie's end) and
    :func:`dynacell.track.assign_ctc_tracks` sets ``track_id`` = the CTC track id = the mask value
    written to ``ctc/``.

    Parameters
    ----------
    images : Movie
        The image movie ``(T, (Z), Y, X)``: its dimensionality and voxel size (µm; else the labels')
        set the gate's units.
    labels : Movie
        The label movie, same grid.
    ids : dict of int to numpy.ndarray
        Label ids (int) of every label frame, by frame number (:func:`dynacell.io.scan.scan_labels`).
    nuclei : pandas.DataFrame
        ``t, z, y, x`` (pixels) and ``size_px`` of every nucleus (the scan's measurements).
    given : Lineage, optional
        An in-memory lineage (copied, never changed); ``path`` then only names it.
    path : str or Path, optional
        A lineage file or folder (CTC, BlastoSPIM JSON, GEFF, AceTree).
    max_distance : float, optional
        Linking gate in µm when the voxel size is known, else in pixels; None = the motion gate.
    motion_prior : str
        The linker's motion prior (``motion_prior`` of :func:`dynacell.track.link_labels`).
    progress : bool
        Progress bars.
    objects : dict, optional
        Each label frame's nuclei as the scan measured them (reused by the linker).

    Returns
    -------
    lineage : Lineage
        Nodes ``(t, label)`` with ``track_id``; ``n_frames = max(ids) + 1``.
    source : str
        ``"given: ..."`` (with what the check changed: nodes at frames outside the movie ignored, nuclei the
        lineage lacks added as one-node tracks) or
        ``"linked with dynacell.track.link_labels (laptrack), max distance D unit"``.
    linking : dict or None
        For a linked lineage: ``gate`` (:func:`~dynacell.track.gate.motion_gate`'s dict, ``max_distance``
        replaced by the one used), ``max_distance_given``, ``max_distance_unit`` (``"um"`` or ``"px"``),
        ``motion_prior``, ``linker`` (the linker's own record: method, passes, drift correction, local flow,
        division sizes, ``border_rule`` with the number of nuclei touching the frame's border); None for a
        given lineage.

    Raises
    ------
    dynacell.errors.InvalidInputError
        An unreadable lineage file (message starting ``lineage (--lineage):``), a lineage naming
        labels absent from the masks, or an unknown motion prior.
    """
    from dynacell.track import assign_ctc_tracks

    if given is None and path is None:
        from dynacell.track import link_labels
        from dynacell.track.gate import motion_gate

        vs = images.voxel_size_um or labels.voxel_size_um
        gate = motion_gate(nuclei, ndim=images.ndim_spatial, voxel_size_um=vs)
        if max_distance is not None:
            gate["max_distance"] = float(max_distance)
        unit = "um" if vs else "px"
        gate_kw = {"max_distance_um" if unit == "um" else "max_distance_px": gate["max_distance"]}
        lin, _ = link_labels(labels, voxel_size_um=vs, motion_prior=motion_prior, progress=progress,
                             objects=objects, **gate_kw)
        source = f"linked with dynacell.track.link_labels (laptrack), max distance {gate['max_distance']:.3g} {unit}"
        linking: dict[str, Any] | None = {"gate": gate, "max_distance_given": max_distance,
                                          "max_distance_unit": unit, "motion_prior": motion_prior,
                                          "linker": dict(lin.graph.graph.get("linking", {}))}
    else:
        from dynacell.lineage.checks import check_lineage

        if given is not None:
            lin, src = given.copy(), path or "(Lineage object)"
        else:
            from dynacell.errors import input_role
            from dynacell.lineage.formats import read_lineage

            with input_role("lineage (--lineage)"):
                lin, src = read_lineage(path), str(path)
        lin = check_lineage(lin, ids, src, labels)
        changed = lin.graph.graph.get("check") or {}
        said = [f"{n} {_CHECK_PHRASES[k]}" for k, n in changed.items() if n]
        source, linking = f"given: {src}" + (f" ({'; '.join(said)})" if said else ""), None
    lin.n_frames = max(ids) + 1
    assign_ctc_tracks(lin)
    return lin, source, linking
