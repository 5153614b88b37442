"""Reliability of the lineage readers on bad input: property-based and fuzz tests for CTC track lines,
GEFF attributes and BlastoSPIM JSON; sizes checked before anything is built (memory-capped child)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynacell.errors import DynacellError, FormatError, InvalidInputError
from dynacell.io import read_ctc_tracks
from dynacell.lineage import Lineage, read_geff, read_lineage, write_geff
from dynacell.lineage.formats.blastospim import read_blastospim_lineage

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
INT64_MAX = 2**63 - 1


def _track_file(folder, text: str):
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / "man_track.txt"
    f.write_text(text)
    return f


# --------------------------------------------------------------------------- CTC man_track.txt
@given(lines=st.lists(st.text(alphabet="0123456789 -+.e\tx", max_size=30), max_size=6))
@FAST
def test_fuzz_track_lines_never_traceback(tmp_path_factory, lines):
    """Arbitrary lines: a valid table or a one-line DynacellError naming the file and line."""
    f = _track_file(tmp_path_factory.mktemp("ctc"), "\n".join(lines))
    try:
        df = read_ctc_tracks(f)
    except DynacellError as exc:
        assert "man_track.txt, line" in str(exc) and "\n" not in str(exc)
        return
    assert list(df.columns) == ["label", "begin", "end", "parent"]
    assert (df.label > 0).all() and (df.begin <= df.end).all()


_BIG = st.one_of(st.integers(-10, 50), st.integers(2**31, 2**70), st.integers(-(2**70), -(2**31)))


@given(rows=st.lists(st.tuples(_BIG, _BIG, _BIG, _BIG), min_size=1, max_size=4))
@FAST
def test_fuzz_track_values_of_any_size(tmp_path_factory, rows):
    """Huge, negative and overflowing integers: checked line by line, never OverflowError / MemoryError."""
    text = "".join(f"{a} {b} {c} {d}\n" for a, b, c, d in rows)
    f = _track_file(tmp_path_factory.mktemp("ctc"), text)
    t0 = time.perf_counter()
    try:
        df = read_ctc_tracks(f)
    except DynacellError as exc:
        assert "line" in str(exc)
    else:
        assert int(df.end.max()) <= 100_000
    assert time.perf_counter() - t0 < 2


def test_huge_track_fails_fast_naming_line_and_limit(tmp_path):
    """``1 0 2000000000 0`` used to take ~50 s and 6 GB before a MemoryError."""
    f = _track_file(tmp_path / "TRA", "2 0 5 0\n1 0 2000000000 0\n")
    t0 = time.perf_counter()
    with pytest.raises(InvalidInputError, match=r"line 2 .*2,000,000,000.*DYNACELL_MAX_FRAMES"):
        read_lineage(f.parent, masks=False)
    assert time.perf_counter() - t0 < 2


def test_overflowing_integers_are_a_one_line_error(tmp_path):
    f = _track_file(tmp_path / "TRA", "1 0 3 0\n99999999999999999999 0 3 0\n")
    with pytest.raises(InvalidInputError, match=r"line 2 .*does not fit a 64-bit integer"):
        read_ctc_tracks(f)


def test_too_many_nucleus_frames_in_total(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNACELL_MAX_LINEAGE_NODES", "100")
    f = _track_file(tmp_path / "TRA", "".join(f"{i} 0 49 0\n" for i in range(1, 4)))
    with pytest.raises(InvalidInputError, match=r"line 3 .*150 nucleus-frames.*DYNACELL_MAX_LINEAGE_NODES"):
        read_ctc_tracks(f)


def test_tracks_beyond_the_movie_are_refused_before_building(tmp_path):
    f = _track_file(tmp_path / "TRA", "1 0 4 0\n2 5 40 1\n")
    with pytest.raises(InvalidInputError, match=r"track 2 ends at frame 40, beyond the movie's 10 frames"):
        read_lineage(f.parent, masks=False, n_frames=10)
    assert len(read_lineage(f.parent, masks=False, n_frames=41)) == 41


def test_huge_track_under_a_memory_cap(tmp_path):
    """The regression guard for the shared machine: a child process limited to 2 GiB of address space."""
    f = _track_file(tmp_path / "TRA", "1 0 2000000000 0\n")
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({2 * 1024**3}, {2 * 1024**3}))
        from dynacell.errors import InvalidInputError
        from dynacell.lineage import read_lineage
        try:
            read_lineage({str(f.parent)!r}, masks=False)
        except InvalidInputError as exc:
            print("refused:", exc)
    """)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 0 and "refused:" in res.stdout, res.stderr[-2000:]


# --------------------------------------------------------------------------- GEFF
def _tiny_lineage(n_frames: int = 4) -> Lineage:
    lin = Lineage(n_frames=n_frames, ndim=2, source="tiny")
    for t in range(3):
        lin.add_node((t, 1), (0.0, 1.0 + t, 2.0))
    lin.add_edge((0, 1), (1, 1))
    lin.add_edge((1, 1), (2, 1))
    return lin


@pytest.fixture
def geff_store(tmp_path):
    return write_geff(_tiny_lineage(), tmp_path / "lin.geff")


def _set_dynacell_attr(store, **values):
    group = zarr.open_group(str(store), mode="a")
    attrs = dict(group.attrs["dynacell"])
    attrs.update(values)
    group.attrs["dynacell"] = attrs


def test_geff_round_trip_keeps_n_frames(geff_store):
    lin = read_geff(geff_store)
    assert lin.n_frames == 4 and len(lin) == 3


@pytest.mark.parametrize(("value", "match"), [
    ("abc", "dynacell.n_frames: expected a whole number"),
    (2, r"n_frames = 2 but node .* is at frame 2"),
    (-1, "below the smallest"),
    (2.5, "expected a whole number"),
    (True, "expected a whole number"),
])
def test_bad_geff_n_frames(geff_store, value, match):
    """A string n_frames was a ValueError traceback; a too small one was reported as the lineage's length."""
    _set_dynacell_attr(geff_store, n_frames=value)
    with pytest.raises(InvalidInputError, match=match) as err:
        read_geff(geff_store)
    assert "lin.geff" in str(err.value)


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=5),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
                     max_leaves=6)


@pytest.mark.slow
@given(n_frames=_JSON, ndim=_JSON)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzz_geff_attributes(tmp_path_factory, geff_store, n_frames, ndim):
    store = tmp_path_factory.mktemp("g") / "lin.geff"
    shutil.copytree(geff_store, store)
    try:
        _set_dynacell_attr(store, n_frames=n_frames, ndim=ndim)
    except (TypeError, ValueError):  # not storable as JSON (e.g. NaN in strict encoders)
        return
    try:
        lin = read_geff(store)
    except DynacellError as exc:
        assert "lin.geff" in str(exc)
    else:
        assert lin.n_frames is None or lin.n_frames >= 3


# --------------------------------------------------------------------------- BlastoSPIM JSON
def _blasto(tmp_path, nodes, edges=()):
    f = tmp_path / "LineageGraph.json"
    f.write_text(json.dumps({"Nodes": nodes, "Edges": [{"EndNodes": list(e)} for e in edges]}))
    return f


def test_blastospim_string_centroid_is_a_one_line_error(tmp_path):
    f = _blasto(tmp_path, [{"Name": "001_001", "Centroid": "12 3 4"}, {"Name": "002_001", "Centroid": [1, 2, 3]}],
                [("001_001", "002_001")])
    with pytest.raises(InvalidInputError, match=r"node 0 \('001_001'\), field 'Centroid': expected a number"):
        read_blastospim_lineage(f)


def test_blastospim_good_centroid(tmp_path):
    f = _blasto(tmp_path, [{"Name": "001_001", "Centroid": [4, 5, 6]}, {"Name": "002_001", "Centroid": [1, 2, 3]}],
                [("001_001", "002_001")])
    lin = read_blastospim_lineage(f)
    assert lin.graph.nodes[(1, 1)]["x"] == 4 and lin.graph.nodes[(1, 1)]["z"] == 6


@given(nodes=st.lists(st.fixed_dictionaries({"Name": st.one_of(st.just("001_002"), st.from_regex(r"\d{1,4}_\d{1,4}",
                                                                                               fullmatch=True),
                                                                 _JSON)},
                                            optional={"Centroid": _JSON, "Centroid_X": _JSON, "Centroid_Y": _JSON,
                                                      "Centroid_Z": _JSON}), max_size=4),
       edges=st.lists(_JSON, max_size=3))
@FAST
def test_fuzz_blastospim_json(tmp_path_factory, nodes, edges):
    f = tmp_path_factory.mktemp("b") / "LineageGraph.json"
    try:
        f.write_text(json.dumps({"Nodes": nodes, "Edges": edges}))
    except (TypeError, ValueError):
        return
    try:
        lin = read_blastospim_lineage(f)
    except DynacellError as exc:
        assert "LineageGraph.json" in str(exc)
    else:
        assert len(lin) == len(nodes)


def test_blastospim_absurd_frame_number(tmp_path):
    f = _blasto(tmp_path, [{"Name": "9999999999_001"}])
    with pytest.raises(InvalidInputError, match="above the limit"):
        read_blastospim_lineage(f)


def test_geff_store_that_is_not_geff(tmp_path):
    store = tmp_path / "x.geff"
    zarr.open_group(str(store), mode="w").attrs["geff"] = "nonsense"
    with pytest.raises(FormatError, match="x.geff"):
        read_geff(store)


def test_large_ids_check_against_labels_are_sparse():
    from dynacell.io import Movie
    from dynacell.lineage import check_against_labels

    big = np.uint64(2**40)
    lab = np.zeros((1, 8, 8), np.uint64)
    lab[0, :2, :2] = big
    lin = Lineage(n_frames=1, ndim=2)
    lin.add_node((0, int(big)), (0.0, 0.5, 0.5))
    assert check_against_labels(lin, Movie(lab, "TYX")).ok


# --------------------------------------------------------------------------- event rules (property-based)
def _random_forest(seed: int, n_roots: int, n_frames: int, p_divide: float, p_end: float) -> Lineage:
    """A random lineage going forward in time: each nucleus continues, divides in two or ends."""
    rng = np.random.default_rng(seed)
    lin = Lineage(n_frames=n_frames, ndim=2, source=f"random {seed}")
    next_label = 1
    alive = []
    for _ in range(n_roots):
        lin.add_node((0, next_label), (0.0, 0.0, 0.0))
        alive.append((0, next_label))
        next_label += 1
    for t in range(1, n_frames):
        new_alive = []
        for node in alive:
            u = rng.random()
            n_children = 0 if u < p_end else 2 if u < p_end + p_divide else 1
            for _ in range(n_children):
                child = (t, next_label if n_children == 2 else node[1])
                if n_children == 2:
                    next_label += 1
                lin.add_node(child, (0.0, 0.0, 0.0))
                lin.add_edge(node, child)
                new_alive.append(child)
        alive = new_alive
    return lin


@given(seed=st.integers(0, 2**31), n_roots=st.integers(1, 4), n_frames=st.integers(1, 30),
       p_divide=st.floats(0, 0.3), p_end=st.floats(0, 0.2))
@settings(max_examples=40, deadline=None)
def test_event_rules_properties(seed, n_roots, n_frames, p_divide, p_end):
    """Seed rules on random lineages: one state per node; divisions, daughters and track ends labelled as defined."""
    from dynacell.lineage import EVENT_STATES, EventRules, count_states, label_events

    lin = _random_forest(seed, n_roots, n_frames, p_divide, p_end)
    lin.validate()
    states = label_events(lin, EventRules.seed())
    assert set(states) == set(lin.graph.nodes) and set(states.values()) <= set(EVENT_STATES)
    assert sum(count_states(states).values()) == len(lin)
    g = lin.graph
    last = n_frames - 1
    for node, state in states.items():
        kids = g.out_degree(node)
        parent = next(iter(g.predecessors(node)), None)
        if kids >= 2:
            assert state == "mitotic", (node, state)
        elif parent is not None and g.out_degree(parent) >= 2:
            assert state == "new_daughter", (node, state)
        elif kids == 0 and node[0] < last:
            assert state == "death", (node, state)
        if kids == 0 and node[0] == last:
            assert state not in ("death", "stable"), (node, state)
