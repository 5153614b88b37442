"""The faster linking pieces give laptrack's / the earlier results exactly (gap-closing candidates, local flow, links)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from dynacell.track import linking
from dynacell.track.linking import _fast_laptrack_class, _gap_closing_matrix, _link_metric, local_flow


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
    np.testing.assert_array_equal(local_flow(frame_of, pos, edges, k, default),
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
    monkeypatch.setattr(linking, "local_flow", _local_flow_reference)
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


def _label_movie(seed: int, ndim: int = 2, n_frames: int = 5):
    """Random blobs (ids up to 60, some frames without a given id) in a ``(T, [Z,] Y, X)`` uint16 movie."""
    rng = np.random.default_rng(seed)
    shape = (9, 30, 34) if ndim == 3 else (40, 46)
    grid = np.indices(shape)
    labs = np.zeros((n_frames, *shape), np.uint16)
    for t in range(n_frames):
        for lab in rng.choice(np.arange(1, 61), size=7, replace=False):
            c = [rng.uniform(0, s) for s in shape]
            r = rng.uniform(2, 6)
            labs[t][sum((g - ci) ** 2 for g, ci in zip(grid, c)) <= r * r] = lab
    return labs


def _flow_overlaps_reference(data, flow_px, max_step, ndim):
    """The per-pixel loop of the first version: numpy.nonzero, numpy.unique, multi-array indexing."""
    from collections import deque

    shared, window = {}, deque(maxlen=max_step)
    for i in range(len(data)):
        frame = data[i]
        for j, coords, la, step in window:
            target = np.rint(coords + (i - j) * step).astype(np.int64)
            inside = np.all((target >= 0) & (target < np.array(frame.shape)), axis=1)
            lb = np.zeros(len(la), dtype=np.int64)
            lb[inside] = frame[tuple(target[inside].T)]
            hit = lb > 0
            if hit.any():
                for a, b, c in zip(*linking._count_pairs(la[hit], lb[hit]), strict=True):
                    shared[(j, int(a), i, int(b))] = int(c)
        fg = np.nonzero(frame)
        la = frame[fg].astype(np.int64)
        ids, inverse = np.unique(la, return_inverse=True)
        flows = np.array([flow_px.get((i, int(x)), np.zeros(3))[3 - ndim:] for x in ids]).reshape(len(ids), ndim)
        window.append((i, np.stack(fg, axis=1).astype(float), la, flows[inverse]))
    return shared


@pytest.mark.parametrize("ndim,seed", [(2, 0), (2, 1), (3, 2)])
def test_flow_overlaps_equal_the_per_pixel_reference(ndim, seed) -> None:
    from dynacell.io.movie import Movie
    from dynacell.io.scan import frame_objects

    data = _label_movie(seed, ndim)
    movie = Movie(data, "TYX" if ndim == 2 else "TZYX", frame_indices=tuple(range(3, 3 + len(data))))
    rng = np.random.default_rng(seed)
    flow = {(i, int(x)): rng.normal(0, 3, 3) for i in range(len(data)) for x in np.unique(data[i])[1:]}
    flow[(1, int(np.unique(data[1])[1]))] = np.full(3, 0.5)  # exact halves: rint's ties to even
    ref = _flow_overlaps_reference(data, flow, 2, ndim)
    assert len(ref) > 5
    objects = {t: frame_objects(movie.frame(t), t) for t in movie.frame_indices}
    for got in (linking._flow_overlaps(movie, flow, 2, False), linking._flow_overlaps(movie, flow, 2, False, objects)):
        assert list(got.items()) == list(ref.items())


@pytest.mark.parametrize("ndim,seed", [(2, 3), (3, 4)])
def test_drift_with_reused_spectra_equals_phase_cross_correlation(ndim, seed) -> None:
    from skimage.registration import phase_cross_correlation

    data = _label_movie(seed, ndim)
    data[2] = np.roll(data[1], (3, -2), axis=(-2, -1))  # a real shift between frames 1 and 2
    spectra: dict = {}
    for i in range(1, len(data)):
        a, b = data[i - 1], data[i]
        got = linking._drift(a, b, spectra)
        ref = -np.asarray(phase_cross_correlation((a > 0).astype(np.float32), (b > 0).astype(np.float32))[0])
        assert np.array_equal(got, linking._drift(a, b))
        if got.any():
            assert np.array_equal(got, ref)
    assert np.array_equal(linking._drift(data[1], data[2], {}), np.array([0.0] * (ndim - 2) + [3.0, -2.0]))


def test_nucleus_table_equals_one_dataframe_per_frame() -> None:
    """measure_nuclei's table (built once from arrays) equals the per-frame DataFrames concatenated."""
    import pandas as pd

    from dynacell.io.movie import Movie
    from dynacell.io.objects import nucleus_centroids
    from dynacell.track import measure_nuclei

    data = _label_movie(5, 3)
    data[2] = 0  # an empty frame: no rows (and a warning)
    movie = Movie(data, "TZYX", frame_indices=tuple(range(10, 10 + len(data))))
    parts = []
    for t, frame in zip(movie.frame_indices, data, strict=True):
        ids, cen, size = nucleus_centroids(frame, return_sizes=True)
        tab = pd.DataFrame({"t": np.full(len(ids), t, dtype=np.int64), "label": ids,
                            "z": cen[:, 0], "y": cen[:, 1], "x": cen[:, 2]})
        tab["diameter_px"] = np.cbrt(6.0 * size / np.pi)
        tab["size_px"] = size
        parts.append(tab[["t", "label", "z", "y", "x", "size_px", "diameter_px"]])
    ref = pd.concat([p for p in parts if len(p)], ignore_index=True)
    with pytest.warns(UserWarning, match="hold no nucleus"):
        got = measure_nuclei(movie, progress=False)
    pd.testing.assert_frame_equal(got, ref, check_exact=True)


def test_motion_gate_equals_groupby_on_an_unsorted_table() -> None:
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    from dynacell.io.movie import Movie
    from dynacell.track import measure_nuclei
    from dynacell.track.gate import motion_gate

    data = np.concatenate([_label_movie(6, 2, 4)] * 2)  # repeated frames: pairs with equal counts
    nuclei = measure_nuclei(Movie(data, "TYX"), progress=False).sample(frac=1.0, random_state=0)
    got = motion_gate(nuclei, ndim=2, min_pairs=1, factor=1.0, quantile=0.5)
    pos = {t: g[["z", "y", "x"]].to_numpy() for t, g in nuclei.groupby("t")}
    frames = sorted(pos)
    dists = []
    for a, b in zip(frames[:-1], frames[1:]):
        if len(pos[a]) == len(pos[b]):
            d = cdist(pos[a], pos[b])
            r, c = linear_sum_assignment(d)
            dists.append(d[r, c])
    assert got["n_pairs"] == len(dists) > 0
    assert got["motion"] == float(np.quantile(np.concatenate(dists), 0.5))


@pytest.mark.parametrize("shape", [(7, 30, 41), (5, 32, 32), (1, 24, 37), (40, 33), (71, 18, 25)])
def test_phase_shift_from_real_transforms_equals_skimage(shape) -> None:
    """The real-FFT phase correlation gives skimage's shift on random blob masks, rolled or unrelated (the known
    shift itself: test_drift_with_reused_spectra_equals_phase_cross_correlation)."""
    from scipy.fft import fftn, rfftn
    from scipy.ndimage import gaussian_filter
    from skimage.registration import phase_cross_correlation

    rng = np.random.default_rng(sum(shape))
    for k in range(4):
        a = gaussian_filter(rng.random(shape), 2) > 0.52
        step = tuple(int(v) for v in rng.integers(-4, 5, len(shape)))
        b = np.roll(a, step, axis=tuple(range(len(shape)))) if k else rng.random(shape) > 0.7
        a32, b32 = a.astype(np.float32), b.astype(np.float32)
        ref = phase_cross_correlation(fftn(a32), fftn(b32), space="fourier")[0]
        got = linking._phase_shift(rfftn(a32), rfftn(b32), shape)
        assert np.array_equal(got, ref), (k, step, got, ref)
