"""Lineage builders and event labels on the real data in ../shared/data (exact ground-truth numbers)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dynacell.lineage import (
    EventRules,
    count_states,
    label_events,
    read_lineage,
    summarize,
)

pytestmark = pytest.mark.data


def direct_ctc_divisions(track_file: Path) -> int:
    """Parents with >= 2 children, counted straight from the 'L B E P' lines."""
    df = pd.read_csv(track_file, sep=r"\s+", header=None, names=["L", "B", "E", "P"])
    counts = df.loc[df.P > 0, "P"].value_counts()
    return int((counts >= 2).sum())


@pytest.mark.parametrize(
    "folder, expected",
    [
        ("bacteria-phc/01_GT/TRA", 356),
        ("Fluo-N2DL-HeLa/02_GT/TRA", 209),
        ("Fluo-N2DH-GOWT1/01_GT/TRA", 2),
        ("bacteria-phc/01_RES", 360),
    ],
)
def test_ctc_divisions(ctc, folder, expected):
    path = ctc / folder
    lin = read_lineage(path, masks=False)
    track_file = next(path.glob("*_track.txt"))
    assert direct_ctc_divisions(track_file) == expected
    assert len(lin.divisions()) == expected
    assert len(lin.tracks()) == sum(1 for line in track_file.read_text().splitlines() if line.strip())


def test_ctc_centroids_from_all_masks(ctc, caplog):
    """GOWT1 01 has TRA masks on all 92 frames: every node gets a finite centroid, no id mismatch."""
    with caplog.at_level(logging.WARNING, logger="dynacell.lineage"):
        lin = read_lineage(ctc / "Fluo-N2DH-GOWT1/01_GT/TRA")
    df = lin.to_dataframe()
    assert df[["y", "x"]].notna().all().all()
    assert (df.z == 0).all() and lin.ndim == 2
    assert df.y.between(0, 1023).all() and df.x.between(0, 1023).all()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_ctc_centroids_only_where_masks_exist(ctc):
    """HeLa 02 TRA has masks for 50 of 92 frames: nodes of the other frames keep NaN centroids."""
    path = ctc / "Fluo-N2DL-HeLa/02_GT/TRA"
    lin = read_lineage(path)
    mask_frames = {int(f.stem[-3:]) for f in path.glob("man_track*.tif")}
    df = lin.to_dataframe()
    with_mask = df.t.isin(mask_frames)
    assert len(mask_frames) == 50
    assert df.loc[with_mask, "y"].notna().all()
    assert df.loc[~with_mask, "y"].isna().all()


@pytest.fixture(scope="module")
def worm(shared_data):
    root = shared_data / "lineages" / "wormguides-celegans"
    if not root.exists():
        pytest.skip(f"{root} not found")
    return root, read_lineage(root)


def test_wormguides_divisions_match_direct_count(worm):
    """Valid nuclei with two successors, counted straight from the files: 664; one of them is in
    the last file (t360) and its successors point beyond the movie, so the lineage holds 663
    divisions (the number in the data README)."""
    root, lin = worm
    two_successors = []
    n_time = 0
    for f in sorted((root / "nuclei_files").glob("t*-nuclei")):
        time = int(f.name[1:4])
        n_time = max(n_time, time)
        for line in f.read_text().splitlines():
            p = [s.strip() for s in line.split(",")]
            if p[1] == "1" and p[3] != "-1" and p[4] != "-1":
                two_successors.append(time)
    assert len(two_successors) == 664
    at_last = sum(1 for t in two_successors if t == n_time)
    assert at_last == 1
    assert len(lin.divisions()) == len(two_successors) - at_last == 663
    assert lin.n_frames == n_time == 360


def test_wormguides_programmed_deaths(worm):
    root, lin = worm
    names = [s.strip() for s in (root / "CellDeaths.csv").read_text().splitlines() if s.strip()]
    assert len(set(names)) == 113
    deaths = lin.explicit_deaths()
    assert sorted(lin.graph.nodes[n]["name"] for n in deaths) == sorted(names)
    # each death is the last node of its cell: no child carries the same name
    for n in deaths:
        assert all(lin.graph.nodes[c]["name"] != lin.graph.nodes[n]["name"] for c in lin.children(n))
    ann = label_events(lin, EventRules.annotated_deaths())
    assert all(ann[n] == "death" for n in deaths)
    assert count_states(ann)["death"] == 113
    # 26 dying cells are still visible in the last file (t360); the other 87 end before it.
    # The seed rules (track ends before the last frame) find exactly those 87, and nothing else.
    last = lin.n_frames - 1
    before_end = {n for n in deaths if n[0] < last}
    seed = label_events(lin, EventRules.seed())
    assert {n for n, s in seed.items() if s == "death"} == before_end
    assert len(before_end) == 87
    s = summarize(lin, EventRules.annotated_deaths())
    assert s["deaths"] == 113 and s["divisions"] == 663 and s["nodes"] == len(lin)


def test_blastospim_8cell(shared_data):
    root = shared_data / "lineages" / "blastospim-8cell"
    lin = read_lineage(root)
    assert lin.divisions() == []
    frames = sorted({t for t, _ in lin.graph.nodes})
    assert frames == list(range(6, 21))
    assert all(len(lin.nodes_at(t)) == 8 for t in frames)
    states = count_states(label_events(lin))
    assert states["mitotic"] == states["new_daughter"] == states["death"] == 0
    assert states["stable"] > 0


def test_blastospim_klb_labels_match_nodes(shared_data, tmp_path, caplog):
    """Frame 6's KLB label volume holds exactly the 8 label ids of the frame-6 nodes (one volume, ~3 s)."""
    pytest.importorskip("pyklb")
    root = shared_data / "lineages" / "blastospim-8cell"
    one = tmp_path / "labels"
    one.mkdir()
    (one / "klbOut_Cam_Long_00006.lux.label.klb").symlink_to(
        root / "registered_label_images" / "klbOut_Cam_Long_00006.lux.label.klb"
    )
    with caplog.at_level(logging.WARNING, logger="dynacell.lineage"):
        lin = read_lineage(root, labels=one)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    c6 = np.array([lin.centroid(n) for n in lin.nodes_at(6)])
    assert np.isfinite(c6).all()
    assert (c6[:, 0] < 81).all() and (c6[:, 1:] < 2048).all()
    assert all(math.isnan(lin.graph.nodes[n]["y"]) for n in lin.nodes_at(7))


def test_check_against_labels_on_hela(ctc):
    """HeLa 02 TRA masks (50 frames) match man_track.txt exactly; the automatic segmentation
    02_ERR_SEG (frames 0-19, its own ids) does not, and the report names frames and ids."""
    from dynacell.io import open_labels
    from dynacell.lineage import check_against_labels

    tra = ctc / "Fluo-N2DL-HeLa/02_GT/TRA"
    lin = read_lineage(tra, masks=False)
    report = check_against_labels(lin, open_labels(tra))
    assert report.ok and report.frames_checked == 50
    assert len(report.frames_without_labels) == 92 - 50
    err = check_against_labels(lin, open_labels(ctc / "Fluo-N2DL-HeLa/02_ERR_SEG"))
    assert not err.ok and err.frames_checked == 20
    assert set(err.nodes_missing_from_labels) <= set(range(20))
    assert "frame 0: ids" in err.message()
