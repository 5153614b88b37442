"""Death, honestly: track ends and the segmenter's dead evidence on held-out simulated 2D movies.

For each simulation seed (never used to train a model: the live/dead segmenter saw seeds
1000–1002 of ``dynacell.train.segment``'s ``sim`` set, the test side is 1003; the default here is
2001–2004), a 2D colony with divisions and apoptosis is simulated (``dynacell.simulate``), the
field of view is **cropped** to its left ``--crop`` share of columns (so nuclei leave and enter the
field across the right edge, with exact truth of which ones do), and optionally a share of the
nucleus masks is **dropped** at random (``--dropout``: a segmenter's misses, which end tracks
inside the field without a death). ``dynacell run`` (``dynacell.pipeline.run``) is then run with
the cropped reference masks as ``--labels`` (the shipped ``nuclei-2d`` states model, dynacell's
linking, ``--dead-evidence MODEL``), and the states are re-decided from the same classifier
probabilities and the same lineage in several ways:

* ``classifier + joint`` — the default ``dynacell run`` (no dead evidence: ``nuclei-2d`` has no death class);
* ``every end before the movie's end`` — the seed's rule (every track end is a death);
* ``every end inside the field`` — every ``inside_field`` / ``gap`` end is a death ("every
  disappearance is a death", the border taken into account);
* ``joint + dead evidence`` — the joint decision with the segmenter's ``p_dead_seg``.

Death events: a predicted death is a track segment with a ``death`` call (or, for the two rules, a
segment end of that kind), placed at its last node; it is right when that node's reference cell
dies within ``--tolerance`` frames after it. Reference deaths: cells of the simulation whose
death node (last frame) lies in the cropped field. Track ends: every predicted segment end before
the movie's end, with its truth (``died``, ``left`` — the reference cell continues outside the
crop —, ``lost`` — it continues inside: a dropped mask or a link error) against ``end_reason``
at border margins 0.5 and 1.0 nucleus size.

Usage::

    python benchmarks/death.py --model /tmp/death/models/live-dead-sim-2d --seeds 2001,2002,2003,2004 \
        --dropout 0.0,0.03 --out /tmp/death/bench

Prints tables; writes ``death_events.csv``, ``death_track_ends.csv`` and ``death_nodes.csv`` (``p_dead_seg`` of every
nucleus with its frames to death) to ``--out``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def simulate(seed: int, n_frames: int = 40):
    """The held-out colony of one seed (16 cells, divisions 0.05 and deaths 0.02 per frame)."""
    from dynacell.simulate import simulate_embryo

    return simulate_embryo(ndim=2, n_start=16, n_frames=n_frames, death_rate_per_frame=0.02, min_deaths=4,
                           division_rate_per_frame=0.05, seed=seed, progress=False)


def crop_and_drop(res, crop: float, dropout: float, seed: int):
    """Images and labels cropped to the left ``crop`` of the columns, ``dropout`` of the masks removed."""
    from dynacell.io.movie import Movie

    w = round(crop * res.images.shape[-1])
    img = np.ascontiguousarray(res.images[..., :w])
    lab = np.ascontiguousarray(res.labels[..., :w]).copy()
    rng = np.random.default_rng([seed, 7])
    for t in range(lab.shape[0]):
        ids = np.unique(lab[t][lab[t] > 0])
        drop = ids[rng.random(len(ids)) < dropout]
        if len(drop):
            lab[t][np.isin(lab[t], drop)] = 0
    kw = {"axes": "TYX", "voxel_size_um": res.voxel_size_um, "frame_interval_s": res.frame_interval_s,
          "source": f"sim{seed}"}
    return Movie(img, **kw), Movie(lab, **kw)


def truth(res, labels) -> tuple[dict, dict, set]:
    """Reference: ``node -> sim track id``, ``sim track id -> death frame`` and nodes visible in the crop."""
    g = res.lineage.graph
    res.lineage.assign_tracks()
    track = {n: int(d["track_id"]) for n, d in g.nodes(data=True)}
    death_t = {track[n]: n[0] for n, d in g.nodes(data=True) if d.get("state") == "death"}
    visible = set()
    for t in range(labels.n_frames):
        visible |= {(t, int(v)) for v in np.unique(labels.frame(t)) if v}
    return track, death_t, visible


def decide(raw: pd.DataFrame, lin, evidence: bool) -> pd.DataFrame:
    """The joint decision with or without the ``p_dead_seg`` column."""
    from dynacell.states.joint import joint_states

    st = raw if evidence else raw.drop(columns=["p_dead_seg"], errors="ignore")
    return joint_states(st, lin)[0]


def death_events(method: str, decided: pd.DataFrame | None, ends: dict) -> list[tuple[int, int]]:
    """Predicted death events (last node of the segment) of one method."""
    from dynacell.states.joint import track_segments

    if method == "every end before the movie's end":
        return [n for n, why in ends.items() if why in ("inside_field", "gap", "border")]
    if method == "every end inside the field":
        return [n for n, why in ends.items() if why in ("inside_field", "gap")]
    dead = set(zip(decided.loc[decided.state == "death", "t"], decided.loc[decided.state == "death", "label"]))
    return [seg[-1] for seg in track_segments(decided.attrs["lineage"]) if dead & set(seg)]


def score(events, track, death_t, visible_deaths: set[int], tol: int) -> dict:
    """Precision / recall of predicted death events against the reference deaths."""
    tp_ev, hit = 0, set()
    for n in events:
        tid = track.get(n)
        if tid in death_t and 0 <= death_t[tid] - n[0] <= tol:
            tp_ev += 1
            hit.add(tid)
    n_ref = len(visible_deaths)
    return {"predicted": len(events), "right": tp_ev, "reference": n_ref, "found": len(hit & visible_deaths),
            "precision": tp_ev / len(events) if events else float("nan"),
            "recall": len(hit & visible_deaths) / n_ref if n_ref else float("nan")}


def end_truth(n, res, track, death_t, labels, tol: int) -> str:
    """``died``, ``left`` or ``lost`` for a predicted track end at node ``n``."""
    tid = track.get(n)
    if tid in death_t and 0 <= death_t[tid] - n[0] <= tol:
        return "died"
    g = res.lineage.graph
    later = [c for c in g.successors(n)] if n in g else []
    t1 = n[0] + 1
    if later and t1 < labels.n_frames:
        present = set(np.unique(labels.frame(t1)).tolist())
        if not any(c[1] in present for c in later):
            # outside the crop, or its mask dropped: which one? the reference centroid says
            w = labels.frame_shape[-1]
            if all(g.nodes[c]["x"] >= w - 0.5 for c in later):
                return "left"
    return "lost"


def run_one(seed: int, dropout: float, model: str, crop: float, tol: int, work: Path, n_frames: int = 40
            ) -> tuple[list[dict], list[dict], pd.DataFrame]:
    """Rows of the event table, of the track-end table and the per-nucleus evidence of one movie."""
    from dynacell import STATES
    from dynacell.pipeline import run
    from dynacell.states.joint import end_reasons

    res = simulate(seed, n_frames)
    images, labels = crop_and_drop(res, crop, dropout, seed)
    track, death_t, _ = truth(res, labels)
    # a reference death counts when its death node is in the cropped field (its mask may be dropped:
    # the track then ends a frame earlier, within the tolerance)
    w = labels.frame_shape[-1]
    g = res.lineage.graph
    visible_deaths = {tid for tid, t in death_t.items()
                      if any(g.nodes[n]["x"] < w - 0.5 for n in g.nodes if track[n] == tid and n[0] == t)}
    t0 = time.process_time()
    out = run(images, out=work / f"run_{seed}_{dropout}", labels=labels, video=False, dead_evidence=model,
              progress=False, seed=0)
    cpu = time.process_time() - t0
    lin = out.lineage
    raw = out.states.drop(columns=[c for c in out.states.columns if c.endswith("_joint")]
                          + ["end_reason", "missed_division"], errors="ignore").copy()
    raw["state"] = out.states["state_classifier"]
    rows = []
    for method in ("classifier + joint", "every end before the movie's end", "every end inside the field",
                   "joint + dead evidence"):
        decided = None
        if "joint" in method:
            decided = decide(raw, lin, evidence=method.endswith("evidence"))
            decided.attrs["lineage"] = lin
        ends = end_reasons(lin, raw)
        ev = death_events(method, decided, ends)
        rows.append({"seed": seed, "dropout": dropout, "method": method, **score(ev, track, death_t, visible_deaths, tol)})
    end_rows = []
    for margin in (0.5, 1.0):
        for n, why in end_reasons(lin, raw, border_margin=margin).items():
            if why in ("inside_field", "gap", "border"):
                end_rows.append({"seed": seed, "dropout": dropout, "margin": margin, "end_reason": why,
                                 "truth": end_truth(n, res, track, death_t, labels, tol)})
    to_death = np.array([death_t[track[(t, lab)]] - t if track.get((t, lab)) in death_t else -1
                         for t, lab in zip(raw.t, raw.label)])
    nodes = pd.DataFrame({"seed": seed, "dropout": dropout, "p_dead_seg": raw["p_dead_seg"].to_numpy(float),
                          "frames_to_death": to_death})
    print(f"seed {seed} dropout {dropout}: {len(raw)} nuclei, {len(visible_deaths)} reference deaths in the field, "
          f"run {cpu:.1f} CPU-s (dead evidence {out.timings_s.get('dead_evidence', float('nan')):.1f} s wall); "
          f"run.json track_ends {out.info['counts']['track_ends']}")
    assert all(f"p_{s}" in raw for s in STATES)
    return rows, end_rows, nodes


def node_auc(nodes: pd.DataFrame) -> pd.DataFrame:
    """ROC-AUC of ``p_dead_seg``: reference death nodes (last frame) against nuclei that do not die, and
    the nuclei 1–3 frames before a death (rendered apoptosis starts 4 frames before) against those."""
    from sklearn.metrics import roc_auc_score

    ok = nodes[np.isfinite(nodes["p_dead_seg"])]
    live = ok[ok["frames_to_death"] < 0]
    rows = []
    for name, pos in (("death node", ok[ok["frames_to_death"] == 0]),
                      ("1-3 frames before death", ok[ok["frames_to_death"].between(1, 3)])):
        y = np.r_[np.ones(len(pos)), np.zeros(len(live))]
        sc = np.r_[pos["p_dead_seg"], live["p_dead_seg"]]
        rows.append({"positives": name, "n_pos": len(pos), "n_live": len(live),
                     "roc_auc": roc_auc_score(y, sc) if len(pos) and len(live) else np.nan,
                     "median_pos": float(np.median(pos["p_dead_seg"])) if len(pos) else np.nan,
                     "median_live": float(np.median(live["p_dead_seg"])) if len(live) else np.nan,
                     "share_pos_ge_0.5": float((pos["p_dead_seg"] >= 0.5).mean()) if len(pos) else np.nan,
                     "share_live_ge_0.5": float((live["p_dead_seg"] >= 0.5).mean()) if len(live) else np.nan})
    return pd.DataFrame(rows)


def real_track_ends(tra: Path, margins=(0.5, 1.0)) -> pd.DataFrame:
    """Track ends of a real CTC reference (``NN_GT/TRA`` with full masks): counts of each ``end_reason``.

    No real 2D movie in the shared data annotates deaths; this counts how many reference track ends
    before the movie's end lie at the border or inside the field (where a track-end rule would call
    a death).
    """
    from dynacell.io import open_labels
    from dynacell.lineage import read_lineage
    from dynacell.samples.crops import edge_and_size
    from dynacell.states.joint import end_reasons

    lin = read_lineage(tra)
    labels = open_labels(tra)
    lin.n_frames = max(labels.frame_indices) + 1
    ends = {n for n in lin.graph.nodes if lin.graph.out_degree(n) == 0 and n[0] < lin.n_frames - 1}
    rows = []
    for t in sorted({n[0] for n in ends}):
        lab = labels.frame(t)
        ids = np.array(sorted(n[1] for n in ends if n[0] == t), dtype=np.int64)
        edge, size = edge_and_size(lab, ids)
        rows.append(pd.DataFrame({"t": t, "label": ids, "edge_px": edge, "size_px": size}))
    st = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["t", "label", "edge_px", "size_px"])
    out = []
    for m in margins:
        why = pd.Series(end_reasons(lin, st, border_margin=m)).value_counts()
        out.append({"data": str(tra), "margin": m, **why.to_dict()})
    return pd.DataFrame(out).fillna(0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="segmentation model with a dead class (name or folder)")
    p.add_argument("--seeds", default="2001,2002,2003,2004")
    p.add_argument("--dropout", default="0.0,0.03", help="shares of nucleus masks removed at random")
    p.add_argument("--crop", type=float, default=0.6, help="share of the columns kept (the field of view)")
    p.add_argument("--tolerance", type=int, default=2, help="frames between a death call and the reference death")
    p.add_argument("--frames", type=int, default=40, help="frames per simulated movie")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--real", default="", help="comma-separated CTC NN_GT/TRA folders with full masks: count their "
                   "reference track ends by end_reason (no simulation is run when --model is 'none')")
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if a.real:
        print(pd.concat([real_track_ends(Path(x)) for x in a.real.split(",")]).to_string(index=False))
    if a.model == "none":
        return
    import torch

    torch.set_num_threads(1)
    events, ends, nodes = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for dropout in (float(x) for x in a.dropout.split(",")):
            for seed in (int(s) for s in a.seeds.split(",")):
                r, e, n = run_one(seed, dropout, a.model, a.crop, a.tolerance, Path(tmp), a.frames)
                events += r
                ends += e
                nodes.append(n)
    nodes = pd.concat(nodes, ignore_index=True)
    print(node_auc(nodes[nodes["dropout"] == nodes["dropout"].min()]).to_string(index=False, float_format="%.3f"))
    ev = pd.DataFrame(events)
    tab = (ev.groupby(["dropout", "method"], sort=False)[["predicted", "right", "reference", "found"]].sum()
           .reset_index())
    tab["precision"] = tab["right"] / tab["predicted"].replace(0, np.nan)
    tab["recall"] = tab["found"] / tab["reference"]
    print(tab.to_string(index=False, float_format="%.3f"))
    en = pd.DataFrame(ends)
    if len(en):
        print(en.groupby(["dropout", "margin", "truth", "end_reason"]).size().unstack(fill_value=0).to_string())
    if a.out is not None:
        a.out.mkdir(parents=True, exist_ok=True)
        ev.to_csv(a.out / "death_events.csv", index=False)
        en.to_csv(a.out / "death_track_ends.csv", index=False)
        nodes.to_csv(a.out / "death_nodes.csv", index=False)


if __name__ == "__main__":
    main()
