"""The faster linking pieces give laptrack's / the earlier results exactly (gap-closing candidates, local flow, links)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from dynacell.track import linking
from dynacell.track.linking import _fast_laptrack_class, _gap_closing_matrix, _link_metric, _local_flow


def _coords_and_tree(seed: int):
    """Per-frame point rows ``[i, label, z, y, x, vz, vy, vx]`` and a track tree with gaps and short tracks."""
    rng = np.random.default_rng(seed)
    coords, tree = [], nx.Graph()
    for i in range(6):
        n = int(rng.integers(4, 9))
        pts = np.column_stack([np.full(n, i), np.arange(1, n + 1), np.zeros(n), rng.random((n, 2)) * 30,
                               np.zeros((n, 3))])
        coords.append(pts)
        for j in range(n):
            tree.add_node((i, j))
    for i in range(5):
        for j in range(min(len(coords[i]), len(coords[i + 1]))):
            if rng.random() < 0.6:
                tree.add_edge((i, j), (i + 1, j))
    return coords, tree


@pytest.mark.parametrize("seed", range(4))
def test_gap_closing_matrix_equals_laptrack(seed: int) -> None:
    from laptrack import LapTrack
    from laptrack._tracking import _get_segment_df

    coords, tree = _coords_and_tree(seed)
    metric = _link_metric({})
    tracker = LapTrack(metric=metric, cutoff=400.0, gap_closing_metric=metric, gap_closing_cutoff=400.0,
                       gap_closing_max_frame_count=2, splitting_cutoff=False, merging_cutoff=False)
    seg = _get_segment_df(coords, tree)
    force_end = [tuple(map(int, seg.iloc[0][["last_frame", "last_index"]]))]
    force_start = [tuple(map(int, seg.iloc[-1][["first_frame", "first_index"]]))]
    with linking._vectorised_laptrack():
        ref_df, ref = tracker._get_gap_closing_matrix(seg.copy(), force_end_nodes=force_end,
                                                      force_start_nodes=force_start)
        got_df, got = _gap_closing_matrix(tracker, seg.copy(), force_end_nodes=force_end,
                                          force_start_nodes=force_start)
    a, b = ref.to_coo_matrix(), got.to_coo_matrix()
    assert a.nnz > 0
    assert np.array_equal(a.row, b.row) and np.array_equal(a.col, b.col) and np.array_equal(a.data, b.data)
    for (ri, rc), (gi, gc) in zip(ref_df["gap_closing_candidates"], got_df["gap_closing_candidates"], strict=True):
        assert list(ri) == list(gi) and np.array_equal(np.asarray(rc, float), np.asarray(gc, float))


def _local_flow_reference(frame_of, pos, edges, k, default):
    """The earlier row-by-row local flow."""
    from scipy.spatial import cKDTree

    flow = default.copy()
    n_children = np.bincount([a for a, _ in edges], minlength=len(pos))
    disp = {a: pos[b] - pos[a] for a, b in edges if n_children[a] == 1 and frame_of[b] == frame_of[a] + 1}
    for i in np.unique(frame_of):
        rows = np.flatnonzero(frame_of == i)
        linked = np.array([r for r in rows if r in disp], dtype=np.int64)
        if len(linked) < min(k, 4) + 1:
            continue
        kk = min(k + 1, len(linked))
        _, nn = cKDTree(pos[linked]).query(pos[rows], k=kk)
        nn = np.asarray(nn).reshape(len(rows), kk)
        d = np.stack([disp[int(r)] for r in linked])
        for r, cand in zip(rows, nn, strict=True):
            flow[r] = np.median(d[[c for c in cand if linked[c] != r][:k]], axis=0)
    return flow


@pytest.mark.parametrize("k", [3, 8, 20])
def test_local_flow_equals_row_by_row(k: int) -> None:
    rng = np.random.default_rng(k)
    n_per, frames = 14, 4
    frame_of = np.repeat(np.arange(frames), n_per)
    pos = np.column_stack([np.zeros(n_per * frames), rng.random((n_per * frames, 2)) * 50])
    edges = [(r, r + n_per) for r in range(n_per * (frames - 1)) if rng.random() < 0.8]
    default = rng.normal(size=(len(pos), 3))
    np.testing.assert_array_equal(_local_flow(frame_of, pos, edges, k, default),
                                  _local_flow_reference(frame_of, pos, edges, k, default))


def test_link_labels_same_links_as_plain_laptrack(monkeypatch) -> None:
    from laptrack import LapTrack

    from dynacell.simulate import simulate_embryo

    sim = simulate_embryo(ndim=2, n_start=6, n_frames=10, division_rate_per_frame=0.08, death_rate_per_frame=0.02,
                          seed=3, progress=False)
    from dynacell.io.movie import Movie

    labels = Movie(sim.labels, "TYX")
    fast, _ = linking.link_labels(labels, progress=False)
    monkeypatch.setattr(linking, "_fast_laptrack_class", lambda: LapTrack)
    monkeypatch.setattr(linking, "_local_flow", _local_flow_reference)
    plain, _ = linking.link_labels(labels, progress=False)
    assert sorted(fast.graph.edges) == sorted(plain.graph.edges) and fast.graph.number_of_edges() > 0
    assert issubclass(_fast_laptrack_class(), LapTrack)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("prefix", ["first", "last"])
def test_splitting_merging_candidates_equal_laptrack(seed: int, prefix: str) -> None:
    from laptrack import LapTrack
    from laptrack._tracking import _get_segment_df

    from dynacell.track.linking import _splitting_merging_candidates

    coords, tree = _coords_and_tree(seed)
    metric = _link_metric({}, power=2)
    tracker = LapTrack(metric=metric, cutoff=400.0, splitting_metric=metric, splitting_cutoff=300.0,
                       merging_cutoff=False)
    seg = _get_segment_df(coords, tree)
    force_end = [tuple(map(int, seg.iloc[1][["last_frame", "last_index"]]))]
    force_start = [tuple(map(int, seg.iloc[-1][["first_frame", "first_index"]])), (2, 0)]
    for cutoff in (300.0, False):
        with linking._vectorised_laptrack():
            ref_df, ref, ref_mid = tracker._get_splitting_merging_candidates(
                seg.copy(), coords, cutoff, prefix, metric, force_end_nodes=force_end, force_start_nodes=force_start)
            got_df, got, got_mid = _splitting_merging_candidates(
                tracker, seg.copy(), coords, cutoff, prefix, metric, force_end_nodes=force_end,
                force_start_nodes=force_start)
        assert np.array_equal(ref_mid, got_mid) and ref_mid.dtype == got_mid.dtype
        a, b = ref.to_coo_matrix(), got.to_coo_matrix()
        assert a.shape == b.shape and (a.nnz > 0) == bool(cutoff)
        assert np.array_equal(a.row, b.row) and np.array_equal(a.col, b.col) and np.array_equal(a.data, b.data)
        for (rc, rv), (gc, gv) in zip(ref_df[f"{prefix}_candidates"], got_df[f"{prefix}_candidates"], strict=True):
            assert [tuple(map(int, c)) for c in rc] == [tuple(map(int, c)) for c in gc]
            assert np.array_equal(np.asarray(rv, float), np.asarray(gv, float))


def test_linking_imports_laptrack_without_scikit_learn() -> None:
    """Linking loads laptrack's tracker only (no sklearn / scipy.stats); the package stays complete for others."""
    import subprocess
    import sys

    code = ("import sys\n"
            "import numpy as np\n"
            "from dynacell.io.movie import Movie\n"
            "from dynacell.track import link_labels\n"
            "lab = np.zeros((3, 32, 32), np.uint16)\n"
            "for t in range(3):\n"
            "    lab[t, 4 + t:10 + t, 4:10] = 1; lab[t, 20:26, 18 + t:24 + t] = 2\n"
            "lin, _ = link_labels(Movie(lab, 'TYX'), progress=False)\n"
            "print(len(lin.graph.edges), 'sklearn' in sys.modules, 'scipy.stats' in sys.modules)\n"
            "import laptrack\n"
            "from laptrack import LapTrack, metric_utils\n"
            "print(laptrack.__version__ == laptrack.__dict__['__version__'], LapTrack is laptrack._tracking.LapTrack,"
            " 'sklearn' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "4 False False"
    assert out[1] == "True True True"
