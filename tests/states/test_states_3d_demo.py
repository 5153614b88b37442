"""Tests of the demo's state comparison: the ground-truth rule (DEMO_RULES) is applied, stated and counted."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from _helpers import state_card

from dynacell import STATES


def _tiny_model(folder):
    from dynacell.models import build_model

    folder.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(build_model("4ncnn", 3, n_classes=len(STATES)).state_dict(), folder / "weights.pt")
    from dynacell.cards import sha256_file

    card = state_card(name="tiny-untrained-3d", architecture="4ncnn", classes=list(STATES), ndim=3,
                      crop_size_px=[16, 16, 16], weights_sha256=sha256_file(folder / "weights.pt"))
    (folder / "model.yaml").write_text(yaml.safe_dump(card))
    return folder


@pytest.mark.slow
def test_demo_scores_states_with_the_short_cycle_rule(tmp_path):
    from dynacell.cli.demo import demo_summary
    from dynacell.lineage import EventRules, label_events, read_lineage
    from dynacell.demo import DEMO_RULES, run_demo

    res = run_demo(tmp_path / "demo", seed=2, n_start=4, n_frames=10, min_divisions=1, min_deaths=0,
                   model=_tiny_model(tmp_path / "tiny"), progress=False)
    ev = res.evaluation
    assert ev["event_rules"]["stable_window"] == DEMO_RULES["stable_window"]
    assert "stable_window=2" in ev["rule"]
    # the scored ground truth is exactly the simulated lineage labelled with DEMO_RULES
    gt = label_events(read_lineage(tmp_path / "demo" / "simulation" / "labels"), EventRules(**DEMO_RULES))
    known = sum(v in STATES for v in gt.values())
    assert ev["n_scored"] == known
    assert sum(ev["gt_state_counts"].values()) == ev["n_scored"]
    # the seed rule leaves more nuclei unknown; its scores are kept beside
    seed_ev = ev["evaluation_seed_rules"]
    assert seed_ev["n_scored"] < ev["n_scored"]
    info = json.loads((tmp_path / "demo" / "run" / "run.json").read_text())
    assert info["evaluation"]["n_scored"] == ev["n_scored"]
    text = demo_summary(res)
    assert "stable_window=2" in text
    counts_line = next(ln for ln in text.splitlines() if ln.startswith("ground-truth states of the scored"))
    assert f"stable {ev['gt_state_counts'].get('stable', 0)}" in counts_line
    assert "per-class F1" in text and "seed's rules" in text
