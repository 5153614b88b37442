"""Reliability of dynacell.io on bad input: truncated / corrupt files, declared sizes, npz frame numbers,
the output contract of ``atomic_folder`` (writable parent, no silent replacement, lock, Ctrl-C) and
label ids of any legal size in O(number of objects) memory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynacell.errors import DynacellError, FormatError, InvalidInputError, OutputExistsError
from dynacell.io import open_labels, open_movie
from dynacell.io.limits import get_limits, set_limits
from dynacell.io.writers import atomic_folder, check_output_path

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# --------------------------------------------------------------------------- truncated / corrupt TIFFs
@pytest.mark.parametrize("kind", ["plain", "zlib", "imagej"])
def test_truncated_stack_is_an_error_naming_file_and_first_bad_page(tmp_path, kind, stack_writer):
    """A truncated multi-frame TIFF used to be read as a single frame (exit 0): now an error."""
    full = tmp_path / "full.tif"
    data = stack_writer(full, kind=kind)
    assert open_movie(full).shape == data.shape  # the intact file reads as T frames
    raw = full.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(raw[: len(raw) // 3])
    for opener in (open_movie, open_labels):
        with pytest.raises(FormatError) as err:
            opener(cut)
        msg = str(err.value)
        assert "cut.tif" in msg and "first bad page is page" in msg and "\n" not in msg


@given(frac=st.floats(min_value=0.02, max_value=0.98), kind=st.sampled_from(["plain", "zlib", "imagej"]))
@FAST
def test_fuzz_truncation_never_gives_a_silent_wrong_movie(tmp_path_factory, stack_writer, frac, kind):
    """Cut anywhere: either a clear dynacell error or (never) a movie with fewer frames than written."""
    d = tmp_path_factory.mktemp("trunc")
    data = stack_writer(d / "full.tif", kind=kind, T=6, size=16)
    raw = (d / "full.tif").read_bytes()
    (d / "cut.tif").write_bytes(raw[: max(8, int(len(raw) * frac))])
    try:
        movie = open_movie(d / "cut.tif")
        frames = np.asarray(movie.data.compute())
    except DynacellError as exc:
        assert "cut.tif" in str(exc)
        return
    assert frames.shape == data.shape  # whatever is read is complete and right
    np.testing.assert_array_equal(frames, data)


@given(seed=st.integers(0, 2**32 - 1), n_flips=st.integers(1, 6))
@FAST
def test_fuzz_corrupt_bytes_give_dynacell_errors_only(tmp_path_factory, stack_writer, seed, n_flips):
    """Random byte damage in a small stack: a readable movie or a DynacellError, never a traceback."""
    d = tmp_path_factory.mktemp("flip")
    stack_writer(d / "a.tif", kind="zlib", T=3, size=16)
    raw = bytearray((d / "a.tif").read_bytes())
    rng = np.random.default_rng(seed)
    for i in rng.integers(0, len(raw), n_flips):
        raw[int(i)] = int(rng.integers(0, 256))
    (d / "b.tif").write_bytes(bytes(raw))
    try:
        np.asarray(open_labels(d / "b.tif").data.compute())
    except DynacellError as exc:
        assert "b.tif" in str(exc)


def test_corrupt_frame_in_folder_names_file_and_frame(tmp_path):
    folder = tmp_path / "01"
    folder.mkdir()
    for t in range(3):
        tifffile.imwrite(folder / f"t{t:03d}.tif", np.full((16, 16), t, np.uint8), compression="zlib")
    raw = (folder / "t001.tif").read_bytes()
    (folder / "t001.tif").write_bytes(raw[:20])
    with pytest.raises(FormatError, match=r"t001\.tif \(frame 1\)"):
        open_movie(folder)


# --------------------------------------------------------------------------- declared sizes
def test_huge_declared_tiff_is_refused_before_reading_pixels(tmp_path):
    """A tiny file declaring 30000 × 30000 pixels: refused from the header in well under a second."""
    f = tmp_path / "huge.tif"
    tifffile.imwrite(f, np.zeros((32, 32), np.uint16), tile=(16, 16), compression="zlib")
    with tifffile.TiffFile(f, mode="r+") as tif:
        tif.pages[0].tags["ImageWidth"].overwrite(30000)
        tif.pages[0].tags["ImageLength"].overwrite(30000)
    t0 = time.perf_counter()
    with pytest.raises(InvalidInputError, match=r"huge\.tif.*30000, 30000.*DYNACELL_MAX_FRAME_VOXELS"):
        open_labels(f)
    assert time.perf_counter() - t0 < 5


def test_npz_declaring_a_huge_array_is_refused_before_decompressing(tmp_path):
    """An .npz is loaded whole: its header is checked first (a 1 kB member declaring 9·10⁹ values)."""
    import zipfile

    from numpy.lib import format as npy_format

    f = tmp_path / "bomb.npz"
    with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z, z.open("labels.npy", "w", force_zip64=True) as m:
        npy_format.write_array_header_1_0(m, {"descr": "<u2", "fortran_order": False, "shape": (10, 30000, 30000)})
        m.write(b"\0" * 1000)
    with pytest.raises(InvalidInputError, match=r"bomb\.npz \(array 'labels'\).*30000, 30000"):
        open_labels(f)


def test_frame_limit_is_configurable(tmp_path, monkeypatch):
    f = tmp_path / "m.npz"
    np.savez(f, images=np.zeros((2, 64, 64), np.uint8))
    monkeypatch.setenv("DYNACELL_MAX_FRAME_VOXELS", "1000")
    with pytest.raises(InvalidInputError, match="4,096 voxels"):
        open_movie(f)
    try:
        assert set_limits(max_frame_voxels=5000).max_frame_voxels == 5000
        assert open_movie(f).shape == (2, 64, 64)
    finally:
        set_limits(max_frame_voxels=None)
    monkeypatch.setenv("DYNACELL_MAX_FRAME_VOXELS", "lots")
    with pytest.raises(InvalidInputError, match="DYNACELL_MAX_FRAME_VOXELS"):
        get_limits()
    with pytest.raises(InvalidInputError, match="positive integer"):
        set_limits(max_frames=0)


# --------------------------------------------------------------------------- npz frame numbers
@pytest.mark.parametrize(("indices", "match"), [
    ([0, 1, 1, 3], "lists frame 1 twice"),
    ([3, 2, 1, 0], "not increasing"),
    ([0, 1, 2], "shape"),
    ([0, -1, 2, 3], "must be between 0"),
    ([0.0, 1.5, 2.0, 3.0], "whole frame numbers"),
])
def test_npz_frame_indices_are_checked(tmp_path, indices, match):
    f = tmp_path / "movie.npz"
    np.savez(f, labels=np.zeros((4, 8, 8), np.uint16), frame_indices=np.asarray(indices))
    for opener in (open_movie, open_labels):
        with pytest.raises(InvalidInputError, match=match) as err:
            opener(f)
        assert "movie.npz" in str(err.value)


@given(indices=st.lists(st.integers(-5, 10**6), min_size=1, max_size=6))
@FAST
def test_fuzz_npz_frame_indices(tmp_path_factory, indices):
    """Any frame_indices: accepted only when strictly increasing, >= 0 and within the frame limit, then kept exactly."""
    f = tmp_path_factory.mktemp("npz") / "m.npz"
    np.savez(f, images=np.zeros((len(indices), 4, 4), np.uint8), frame_indices=np.asarray(indices))
    cap = get_limits().max_frames
    good = all(0 <= i <= cap for i in indices) and all(a < b for a, b in zip(indices, indices[1:]))
    if good:
        assert open_movie(f).frame_indices == tuple(indices)
    else:
        with pytest.raises(InvalidInputError, match="m.npz"):
            open_movie(f)


@given(blob=st.binary(min_size=0, max_size=200))
@FAST
def test_fuzz_garbage_npz_is_a_format_error(tmp_path_factory, blob):
    f = tmp_path_factory.mktemp("bad") / "x.npz"
    f.write_bytes(b"PK\x03\x04" + blob)
    with pytest.raises(DynacellError, match="x.npz"):
        open_movie(f)


# --------------------------------------------------------------------------- output contract
def test_output_under_a_file_or_unwritable_folder_fails_before_any_work(tmp_path):
    (tmp_path / "afile").write_text("x")
    ran = []
    with pytest.raises(InvalidInputError, match="is a file, not a folder"), \
            atomic_folder(tmp_path / "afile" / "out"):
        ran.append(1)
    assert not ran
    with pytest.raises(InvalidInputError, match="-o/--out"):
        check_output_path(tmp_path / "afile" / "deeper" / "out", option="-o/--out")
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            with pytest.raises(InvalidInputError, match="not writable"):
                check_output_path(ro / "out")
        finally:
            ro.chmod(0o755)
    assert check_output_path(tmp_path / "new" / "deep" / "out") == tmp_path / "new" / "deep" / "out"


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_output_that_appears_during_the_run_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(OutputExistsError, match="not empty"), atomic_folder(out) as tmp:
        (tmp / "mine.txt").write_text("new")
        out.mkdir()  # another program created the output meanwhile
        (out / "theirs.txt").write_text("theirs")
    assert sorted(p.name for p in out.iterdir()) == ["theirs.txt"]
    assert _leftovers(tmp_path) == []
    with atomic_folder(out, overwrite=True) as tmp:  # --overwrite replaces it, after the new one is complete
        (tmp / "mine.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    assert _leftovers(tmp_path) == []


def test_second_writer_of_the_same_output_fails_at_once(tmp_path):
    out = tmp_path / "out"
    with atomic_folder(out) as tmp:
        (tmp / "a.txt").write_text("first")
        with pytest.raises(OutputExistsError, match="another dynacell process"), atomic_folder(out):
            pass
    assert (out / "a.txt").read_text() == "first"
    assert _leftovers(tmp_path) == []


def test_interrupt_removes_temporary_files_and_keeps_the_old_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_folder(out, overwrite=True) as tmp:
        (tmp / "half.txt").write_text("half")
        raise KeyboardInterrupt
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    assert _leftovers(tmp_path) == []


_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from dynacell.errors import DynacellError
    from dynacell.io.writers import atomic_folder
    out, tag, release = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    try:
        with atomic_folder(out) as tmp:
            (tmp / "who.txt").write_text(tag)
            t0 = time.monotonic()
            while not release.exists() and time.monotonic() - t0 < 60:
                time.sleep(0.05)
    except DynacellError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
""")


def test_two_processes_writing_one_output(tmp_path):
    """Concurrent runs on one output: the second stops with a one-line error, the first's result stays."""
    out = tmp_path / "out"
    lock = tmp_path / ".out.dynacell-lock"
    release = tmp_path / "release"
    first = subprocess.Popen([sys.executable, "-c", _WRITER, str(out), "first", str(release)],
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not lock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock.exists()
    release_second = tmp_path / "release-second"
    release_second.touch()
    second = subprocess.run([sys.executable, "-c", _WRITER, str(out), "second", str(release_second)],
                            capture_output=True, text=True, timeout=60)
    release.touch()
    _, err = first.communicate(timeout=60)
    release.unlink()
    release_second.unlink()
    assert first.returncode == 0, err
    assert second.returncode == 2 and "another dynacell process" in second.stderr
    assert (out / "who.txt").read_text() == "first"
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------------- large label ids, memory-capped
def test_large_label_ids_in_constant_memory(tmp_path, capped):
    """uint32 ids near 2·10⁹ and uint64 ids near 2⁴⁰ in tiny frames: no dense id-indexed array anywhere."""
    res = capped(f"""
        import numpy as np
        from pathlib import Path
        from dynacell.io.objects import nucleus_centroids
        from dynacell.lineage.checks import check_against_labels
        from dynacell.lineage import Lineage
        from dynacell.io import Movie, write_ctc_result
        from dynacell.metrics.tracking import _frame_props
        for big in (np.uint32(2_000_000_000), np.uint64(2**40)):
            lab = np.zeros((2, 16, 16), dtype=big.dtype)
            lab[:, 2:6, 2:6] = big
            lab[:, 9:12, 9:12] = big - 7
            ids, cen = nucleus_centroids(lab[0])
            assert ids.tolist() == [int(big) - 7, int(big)], ids
            assert np.allclose(cen[1], [0, 3.5, 3.5])
            props = _frame_props(lab[0], "frame 0")
            assert sorted(props["label"].tolist()) == [int(big) - 7, int(big)]
            lin = Lineage(n_frames=2, ndim=2)
            for t in range(2):
                for i in (int(big) - 7, int(big)):
                    lin.add_node((t, i), (0.0, 0.0, 0.0))
            for i in (int(big) - 7, int(big)):
                lin.add_edge((0, i), (1, i))
            rep = check_against_labels(lin, Movie(lab, "TYX"))
            assert rep.ok
            out = write_ctc_result(Path({str(tmp_path)!r}) / f"res{{big.dtype}}", Movie(lab, "TYX"), lin)
            assert (out / "res_track.txt").read_text().count(chr(10)) == 2
        print("ok")
    """)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-2000:]
