"""Tests of dynacell.metrics.tracking (traccuracy wrappers) and the ``dynacell evaluate-tracks`` command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from skimage.draw import disk
from typer.testing import CliRunner

from dynacell.errors import InvalidInputError
from dynacell.io import write_ctc_result
from dynacell.metrics.tracking import RESULT_KEYS, evaluate_tracks, find_ctc_folder

SHAPE = (48, 48)


def masks(frames: list[dict[int, tuple[int, int]]]) -> np.ndarray:
    """``(T, Y, X)`` uint16 masks: per frame ``{label: (y, x)}`` discs of radius 4."""
    out = np.zeros((len(frames), *SHAPE), np.uint16)
    for t, nuclei in enumerate(frames):
        for label, centre in nuclei.items():
            rr, cc = disk(centre, 4, shape=SHAPE)
            out[t, rr, cc] = label
    return out


def tracks(rows: list[tuple[int, int, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["label", "begin", "end", "parent"])


# A division at frame 1 and a second cell that lives throughout (ASCII, time to the right):
#
#   track 1: (0) ─ (1) ─┬─ track 2: (2) ─ (3)
#                       └─ track 3: (2) ─ (3)
#   track 4: (0) ─ (1) ─ (2) ─ (3)
GT_FRAMES = [{1: (10, 10), 4: (35, 35)}, {1: (10, 11), 4: (35, 36)},
             {2: (6, 12), 3: (16, 12), 4: (35, 37)}, {2: (5, 13), 3: (17, 13), 4: (35, 38)}]
GT_TRACKS = [(1, 0, 1, 0), (2, 2, 3, 1), (3, 2, 3, 1), (4, 0, 3, 0)]


@pytest.fixture()
def gt(tmp_path):
    return write_ctc_result(tmp_path / "01_GT" / "TRA", masks(GT_FRAMES), tracks(GT_TRACKS))


def test_perfect_result_scores_one(gt, tmp_path):
    res = evaluate_tracks(write_ctc_result(tmp_path / "RES", masks(GT_FRAMES), tracks(GT_TRACKS)), gt.parent,
                          progress=False)
    assert res["TRA"] == pytest.approx(1.0) and res["DET"] == pytest.approx(1.0)
    assert res["division_f1"] == pytest.approx(1.0) and res["gt_divisions"] == 1
    assert res["fp_edges"] == res["fn_edges"] == res["ws_edges"] == 0
    assert res["frames_evaluated"] == [0, 1, 2, 3]
    assert set(RESULT_KEYS) <= set(res)


def test_missed_division_and_wrong_link_are_counted(gt, tmp_path):
    """The result misses the division (daughter 3 starts a new track) and swaps ids of cell 4 at frame 2."""
    frames = [{1: (10, 10), 4: (35, 35)}, {1: (10, 11), 4: (35, 36)},
              {1: (6, 12), 3: (16, 12), 5: (35, 37)}, {1: (5, 13), 3: (17, 13), 5: (35, 38)}]
    res_tracks = [(1, 0, 3, 0), (3, 2, 3, 0), (4, 0, 1, 0), (5, 2, 3, 0)]
    res = evaluate_tracks(write_ctc_result(tmp_path / "RES", masks(frames), tracks(res_tracks)), gt, progress=False)
    assert res["division_recall"] == pytest.approx(0.0) and res["fn_divisions"] == 1
    assert res["fn_edges"] >= 2
    assert res["TRA"] < 1.0 and res["DET"] == pytest.approx(1.0)


def test_sparse_ground_truth_is_scored_on_its_frames(tmp_path):
    """GT masks exist for frames 0, 2, 3 only (track 4 spans 0-3): frame 1 is not scored."""
    gt_masks = masks([GT_FRAMES[0], GT_FRAMES[2], GT_FRAMES[3]])
    gt = write_ctc_result(tmp_path / "GT" / "TRA", gt_masks, tracks(GT_TRACKS), frame_indices=[0, 2, 3])
    res_dir = write_ctc_result(tmp_path / "RES", masks(GT_FRAMES), tracks(GT_TRACKS))
    res = evaluate_tracks(res_dir, gt.parent, progress=False)
    assert res["frames_evaluated"] == [0, 2, 3]
    assert res["TRA"] == pytest.approx(1.0)
    assert res["division_f1"] == pytest.approx(1.0)


def test_run_output_folder_and_bad_folders(gt, tmp_path):
    write_ctc_result(tmp_path / "OUT" / "ctc", masks(GT_FRAMES), tracks(GT_TRACKS))
    assert find_ctc_folder(tmp_path / "OUT") == tmp_path / "OUT" / "ctc"
    assert find_ctc_folder(gt.parent) == gt
    assert evaluate_tracks(tmp_path / "OUT", gt, progress=False)["TRA"] == pytest.approx(1.0)
    with pytest.raises(InvalidInputError, match="not found"):
        evaluate_tracks(tmp_path / "missing", gt, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="res_track.txt or man_track.txt"):
        evaluate_tracks(tmp_path / "empty", gt, progress=False)
    big = np.zeros((4, 50, 50), np.uint16)
    big[:, 5:9, 5:9] = 1
    other = write_ctc_result(tmp_path / "BIG", big, tracks([(1, 0, 3, 0)]))
    with pytest.raises(InvalidInputError, match="shape"):
        evaluate_tracks(other, gt, progress=False)


def test_cli_evaluate_tracks_prints_json(gt, tmp_path):
    from dynacell.cli.main import app

    write_ctc_result(tmp_path / "OUT" / "ctc", masks(GT_FRAMES), tracks(GT_TRACKS))
    result = CliRunner().invoke(app, ["evaluate-tracks", str(tmp_path / "OUT"), "--gt", str(gt.parent),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("{"):])
    for key in ("TRA", "DET", "division_precision", "division_recall", "division_f1", "fp_edges", "fn_edges",
                "ws_edges"):
        assert key in out
    assert out["TRA"] == pytest.approx(1.0) and out["n_frames_evaluated"] == 4
    bad = CliRunner().invoke(app, ["evaluate-tracks", str(tmp_path / "nowhere"), "--gt", str(gt)])
    assert bad.exit_code != 0 and isinstance(bad.exception, InvalidInputError)


@pytest.mark.slow
@pytest.mark.data
def test_peer_result_bacteria(ctc):
    """The peer tracker's bacteria-phc 01_RES against 01_GT (measured: division F1 0.955, TRA 0.998)."""
    res = evaluate_tracks(ctc / "bacteria-phc" / "01_RES", ctc / "bacteria-phc" / "01_GT", progress=False)
    assert res["gt_divisions"] == 356 and res["pred_divisions"] == 360
    assert res["division_f1"] > 0.9 and res["TRA"] > 0.99


def test_merged_mask_gives_many_to_one_matching(gt, tmp_path):
    """At frame 3 one result mask covers both daughters (non-split): TRA counts it, division measures still run."""
    res_masks = masks(GT_FRAMES)
    res_masks[3][res_masks[3] == 3] = 2
    res_masks[3, 5:18, 10:16] = 2
    res_tracks = [(1, 0, 1, 0), (2, 2, 3, 1), (3, 2, 2, 1), (4, 0, 3, 0)]
    out = write_ctc_result(tmp_path / "RES", res_masks, tracks(res_tracks))
    res = evaluate_tracks(out, gt, progress=False)
    assert res["matching"] == "many-to-one"
    assert res["ns_nodes"] == 1 and res["TRA"] < 1.0
    assert res["division_recall"] == pytest.approx(1.0)
