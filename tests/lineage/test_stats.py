"""Lineage statistics: fates, generations, cell-cycle durations, sister synchrony, units."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dynacell.errors import InvalidInputError
from dynacell.lineage.graph import Lineage
from dynacell.lineage.stats import generation_table, lineage_statistics, sister_pairs, track_table


def _chain(lin: Lineage, label: int, t0: int, t1: int) -> list[tuple[int, int]]:
    nodes = [(t, label) for t in range(t0, t1 + 1)]
    for n in nodes:
        lin.add_node(n, (float(label), float(n[0])))
    for a, b in zip(nodes, nodes[1:]):
        lin.add_edge(a, b)
    return nodes


def _two_generations() -> Lineage:
    """Root 1 (frames 0-2) divides into 2 (3-7, divides) and 3 (3-9, divides); 2 -> 4, 5; 3 -> 6, 7.

    Frames 0..11; daughters of 2 run 8-11 (reach the end) and 8-9 (ends); daughters of 3 run 10-11.
    """
    lin = Lineage(n_frames=12)
    a = _chain(lin, 1, 0, 2)
    b = _chain(lin, 2, 3, 7)
    c = _chain(lin, 3, 3, 9)
    d = _chain(lin, 4, 8, 11)
    e = _chain(lin, 5, 8, 9)
    f = _chain(lin, 6, 10, 11)
    g = _chain(lin, 7, 10, 11)
    for parent, kids in ((a[-1], (b[0], c[0])), (b[-1], (d[0], e[0])), (c[-1], (f[0], g[0]))):
        for k in kids:
            lin.add_edge(parent, k)
    return lin


def test_track_table_fates_generations_cycles():
    tr = track_table(_two_generations()).set_index("track_id")
    assert tr["fate"].to_dict() == {1: "divides", 2: "divides", 3: "divides", 4: "reaches_end", 5: "ends",
                                    6: "reaches_end", 7: "reaches_end"}
    assert tr["generation"].to_dict() == {1: 0, 2: 1, 3: 1, 4: 2, 5: 2, 6: 2, 7: 2}
    # the root's cycle is censored (present at frame 0); tracks 2 and 3 are complete: 5 and 7 frames
    assert tr["complete_cycle"].to_dict() == {1: False, 2: True, 3: True, 4: False, 5: False, 6: False, 7: False}
    assert tr.loc[2, "cycle_frames"] == 5 and tr.loc[3, "cycle_frames"] == 7
    assert math.isnan(tr.loc[1, "cycle_frames"])
    # cycle = time between the division that made the cell and the one that ends it
    assert tr.loc[2, "cycle_frames"] == tr.loc[2, "division_frame"] - tr.loc[1, "division_frame"]
    assert tr.loc[1, "n_children"] == 2 and tr.loc[4, "n_children"] == 0
    assert "cycle_min" not in tr


def test_minutes_from_frame_interval():
    tr = track_table(_two_generations(), frame_interval_s=180.0).set_index("track_id")
    assert tr.loc[2, "cycle_min"] == pytest.approx(15.0)
    assert tr.loc[3, "division_time_min"] == pytest.approx(27.0)
    assert tr.loc[5, "length_min"] == pytest.approx(6.0)


def test_sister_synchrony():
    tr = track_table(_two_generations(), frame_interval_s=60.0)
    sis = sister_pairs(tr, frame_interval_s=60.0).set_index("mother_track_id")
    assert sis.loc[1, "delta_frames"] == 2.0 and sis.loc[1, "delta_min"] == 2.0
    # daughters of 2: neither divides -> no synchrony value
    assert math.isnan(sis.loc[2, "delta_frames"])
    assert (sis.loc[2, "fate_a"], sis.loc[2, "fate_b"]) == ("reaches_end", "ends")


def test_generation_table_and_summary():
    lin = _two_generations()
    gen = generation_table(track_table(lin, 60.0)).set_index("generation")
    assert gen.loc[1, "n_complete_cycles"] == 2
    assert gen.loc[1, "cycle_frames_median"] == 6.0
    assert gen.loc[1, "cycle_frames_sd"] == pytest.approx(np.std([5, 7], ddof=1))
    assert gen.loc[1, "cycle_min_mean"] == 6.0
    assert math.isnan(gen.loc[0, "cycle_frames_median"])
    s = lineage_statistics(lin, frame_interval_s=60.0).summary
    assert s["n_divisions"] == 3 and s["n_tracks"] == 7
    assert s["fates"] == {"divides": 3, "ends": 1, "reaches_end": 3, "continues": 0}
    assert s["cycle_min_median"] == 6.0 and s["n_sister_pairs_both_divide"] == 1
    assert s["sister_delta_min_median"] == 2.0


def test_no_interval_and_empty():
    s = lineage_statistics(_two_generations())
    assert s.frame_interval_s is None and "cycle_min_median" not in s.summary
    empty = lineage_statistics(Lineage(n_frames=3), frame_interval_s=10)
    assert empty.summary["n_tracks"] == 0 and empty.summary["cycle_frames_median"] is None
    assert len(empty.sisters) == 0 and len(empty.generations) == 0


@pytest.mark.parametrize("bad", [0, -5, float("nan"), float("inf")])
def test_bad_interval(bad):
    with pytest.raises(InvalidInputError, match="frame interval"):
        lineage_statistics(_two_generations(), frame_interval_s=bad)


@pytest.mark.data
def test_real_lineage_cycles(ctc):
    """HeLa ground truth: complete cycles exist and their durations are positive and shorter than the movie."""
    from dynacell.lineage import read_lineage

    tra = ctc / "Fluo-N2DL-HeLa" / "02_GT" / "TRA"
    if not tra.exists():
        pytest.skip(f"{tra} not found")
    lin = read_lineage(tra, masks=False)
    st = lineage_statistics(lin)
    cyc = st.tracks["cycle_frames"].dropna()
    assert len(cyc) > 0
    assert (cyc > 0).all() and (cyc <= lin.n_frames).all()
    assert st.summary["n_divisions"] == len(lin.divisions())
