"""Tests of SampleSet storage, concatenation and the seed folder layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from dynacell.errors import FormatError, InvalidInputError, OutputExistsError
from dynacell.samples import (
    NORMALIZATION,
    SampleSet,
    concat,
    export_seed_layout,
    import_seed_layout,
)


def _set(n=6, size=(8, 8), dataset="a", seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 4, *size)).astype(np.float32)
    x[:, 3] = x[:, 3] > 0.5
    meta = pd.DataFrame({
        "dataset": dataset, "t": np.arange(n), "label": np.arange(n) + 10, "track_id": np.arange(n) // 2 + 1,
        "tree_id": np.arange(n) // 3 + 1, "state": ["stable", "mitotic", "new_daughter"] * (n // 3),
        "z": 0.0, "y": rng.random(n) * 100, "x": rng.random(n) * 100, "extra": rng.random(n)})
    return SampleSet(x, meta, {"size": list(size), "normalization": NORMALIZATION, "seed": seed})


def test_save_load_roundtrip_is_exact(tmp_path):
    s = _set()
    path = s.save(tmp_path / "set")
    assert path.name == "set.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set.npz"]  # no temporary file left
    r = SampleSet.load(path)
    np.testing.assert_array_equal(r.x, s.x)
    pd.testing.assert_frame_equal(r.meta, s.meta)
    assert r.attrs == s.attrs and r.counts() == s.counts() and r.size == (8, 8) and r.ndim == 2
    with np.load(path, allow_pickle=False) as z:  # readable without dynacell and without pickle
        assert z["x"].shape == (6, 4, 8, 8)


def test_categorical_and_flag_columns_are_stored_without_pickle(tmp_path):
    s = _set()
    s.meta["source"] = pd.Categorical(["p", "q"] * 3)
    s.meta["kept"] = np.arange(6) % 2 == 0
    r = SampleSet.load(s.save(tmp_path / "c.npz"))
    assert r.meta["source"].tolist() == ["p", "q"] * 3 and r.meta["kept"].dtype == bool


def test_save_refuses_to_overwrite_and_load_rejects_bad_files(tmp_path):
    s = _set()
    p = s.save(tmp_path / "s.npz")
    with pytest.raises(OutputExistsError, match="s.npz"):
        s.save(p)
    s.save(p, overwrite=True, compress=True)
    assert len(SampleSet.load(p)) == 6
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(p.read_bytes()[:200])
    with pytest.raises(FormatError, match="trunc.npz"):
        SampleSet.load(trunc)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(FormatError, match="not a dynacell sample set"):
        SampleSet.load(other)
    with pytest.raises(InvalidInputError, match="does not exist"):
        SampleSet.load(tmp_path / "missing.npz")


def test_validation_of_shapes_and_columns():
    s = _set()
    with pytest.raises(InvalidInputError, match=r"C = 4"):
        SampleSet(np.zeros((2, 3, 8, 8), np.float32), s.meta.iloc[:2])
    with pytest.raises(InvalidInputError, match="state"):
        SampleSet(s.x, s.meta.drop(columns="state"))
    with pytest.raises(InvalidInputError, match="rows"):
        SampleSet(s.x[:3], s.meta)


def test_concat_and_subset():
    a, b = _set(dataset="a"), _set(n=3, dataset="b", seed=1)
    c = concat([a, b])
    assert len(c) == 9 and c.meta["dataset"].tolist() == ["a"] * 6 + ["b"] * 3
    np.testing.assert_array_equal(c.x[6:], b.x)
    assert c.attrs["seed"] == {"parts": [0, 1]} and c.attrs["n_parts"] == [6, 3]
    assert len(SampleSet.concat([a])) == 6
    sub = c.subset(c.meta["dataset"].to_numpy() == "b")
    np.testing.assert_array_equal(sub.x, b.x)
    with pytest.raises(InvalidInputError, match="shape"):
        concat([a, _set(size=(6, 6))])
    with pytest.raises(InvalidInputError, match="at least one"):
        concat([])


def test_seed_layout_export_import_roundtrip(tmp_path):
    s = _set()
    root = export_seed_layout(s, tmp_path / "seed")
    folder = root / "mitotic" / "a_frame_001_nucleus_011_count_1"
    assert (folder / "t-1" / "raw_cropped.tif").is_file() and (folder / "t" / "binary_label_cropped.tif").is_file()
    assert tifffile.imread(folder / "t" / "binary_label_cropped.tif").dtype == np.uint8
    r = import_seed_layout(root, normalize=False)
    np.testing.assert_array_equal(r.x, s.x)
    assert r.meta["state"].tolist() == s.meta["state"].tolist()
    assert r.meta["t"].tolist() == s.meta["t"].tolist() and r.meta["label"].tolist() == s.meta["label"].tolist()
    with pytest.raises(OutputExistsError):
        export_seed_layout(s, root)


def test_seed_layout_import_of_seed_sized_raw_crops(tmp_path):
    # the seed wrote raw uint16 65^3 crops; import centre-crops them to 32^3 and normalises
    rng = np.random.default_rng(0)
    d = tmp_path / "stable" / "emb1_frame_007_nucleus_012_count_3"
    for ch in ("t-1", "t", "t+1"):
        (d / ch).mkdir(parents=True)
        tifffile.imwrite(d / ch / "raw_cropped.tif", rng.integers(0, 4000, (65, 65, 65)).astype(np.uint16))
    tifffile.imwrite(d / "t" / "binary_label_cropped.tif", np.ones((65, 65, 65), np.uint8))
    s = import_seed_layout(tmp_path, size=32)
    assert s.x.shape == (1, 4, 32, 32, 32) and 0 <= s.x.min() and s.x.max() <= 1
    assert s.meta.loc[0, ["dataset", "t", "label", "state"]].tolist() == ["emb1", 7, 12, "stable"]
    (tmp_path / "stable" / "not_a_sample").mkdir()
    with pytest.raises(InvalidInputError, match="not_a_sample"):
        import_seed_layout(tmp_path, size=32)
