"""Choose the post-processing and test-time flips of a 3D segmenter on validation sides only (never the test frames).

Each variant (fields of :class:`dynacell.segment.learned.PostprocessParams` plus ``flips``, the
number of flipped copies averaged, see :meth:`dynacell.segment.predict.Segmenter.predict_maps`, and
``outline_shifts``, the card field of the half-voxel shifted outline copies)
is run the way ``dynacell segment`` runs a model (:func:`dynacell.segment.predict.segment_frame`:
nucleus size estimated from each frame, z:y:x aspect from the reference objects of each set, maps
resized back) on:

- ``zreg7`` / ``given7``: mouse 8-cell validation frame 7 against its labels moved one plane onto
  the signal (``mouse8-zreg``) and as given (``mouse8``);
- ``sim3d-val``: renders of simulated 3D embryos of seeds 8–11 (two frames each,
  :func:`dynacell.train.segment._sim3d_frames`; the training set ``sim3d`` uses seeds 0–7), dense
  touching nuclei with exact labels: the check of over-splitting;
- ``sim3d-ls-val`` (unless ``--ls-seeds ''``): renders imaged like the mouse light-sheet stack, seeds
  8–11 (:func:`dynacell.train.segment._sim3d_ls_frames`; the training set ``sim3d-ls`` uses seeds
  0–7), exact labels: outlines under a z-stretched blur at low SNR;
- ``wg-val`` (only with ``--wormguides``): the real C. elegans lineage rendered at lineage frames 150, 163, 176
  and 189 (189-346 nuclei of 2-5 µm, imaging drawn per frame; ``dynacell.train.segment`` ``wormguides3d``
  validation block, :func:`dynacell.train.segment._wormguides_frame`): dense small nuclei a few planes deep;
- ``sdleft``: the StarDist 3D left half — the **training** side of ``nuclei-seg-3d`` (no StarDist
  validation side exists); printed for information, not for choosing;
- ``zreg0-6`` (only with ``--train-frames``): mouse frames 0–6 against the moved labels, the
  model's own training frames (the post-processing was never fitted to them): a check of the
  outline cut on 56 more nuclei, not a held-out score.

``--weights`` replaces the model's weights by a ``state_dict`` file (e.g. one epoch of a training
run, ``python -m dynacell.train.segment ... --epoch-dir``), to choose an epoch on these sides; several
comma-separated files are scored in turn (the sets and nucleus-size estimates prepared once).

Usage::

    python benchmarks/segment_postprocess_3d.py --model nuclei-seg-3d \\
        --grid '[{"flips": 1, "seed_h": 0.05, "min_size_px": 113}, {"flips": 2, "seed_h": 0.1, "min_size_px": 200}]'

A variant may also set ``"diameter"``: ``"log"`` (default, what ``dynacell segment`` uses: the scale-space blob estimate alone,
:func:`dynacell.segment.learned.estimate_nucleus_diameter_px`) or ``"refine"`` (blob
estimate refined by one single-copy first pass of the model,
:func:`dynacell.segment.predict.estimate_nucleus_diameter_for_model`). The estimates are printed
beside each set's reference diameter (:func:`dynacell.train.segment.reference_diameter_px`);
``"reference"`` runs each frame at the median lateral diameter of its own reference objects (an
oracle: the ceiling of any size estimator, for information only). ``"target_diameter_px"`` runs
the model on another working grid (nuclei that many model voxels across instead of the card's;
session 13: the shipped weights at 10 / 14 / 16).

``--sets zreg7,sim3d-val`` scores only the sets whose names start with one of these (e.g. to score
the epochs of a run quickly).

Prints one JSON line per variant: SEG (object-weighted), F1@0.5, objects predicted / referenced,
nuclei matched at IoU 0.5 per frame and the median CPU seconds of ``segment_frame`` per frame of
each set (1 thread; a frame whose maps were cached — ``given7`` reuses ``zreg7``'s image — counts
only its post-processing: time the speed with ``benchmarks/segment_speed.py``). Network maps are
cached per frame, flips and working grid.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time


def main() -> None:
    import numpy as np
    import torch

    from dynacell.metrics.segmentation import ctc_seg, object_scores
    from dynacell.segment.benchmark import aspect_from_reference
    from dynacell.segment.learned import lateral_diameters_px
    from dynacell.segment.predict import (
        Segmenter,
        estimate_nucleus_diameter_for_model,
        segment_frame,
    )
    from dynacell.train.segment import _sim3d_frames, _sim3d_ls_frames, load_frames, reference_diameter_px

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="nuclei-seg-3d")
    p.add_argument("--grid", default="[{}]", help="JSON list of overrides: PostprocessParams fields and flips")
    p.add_argument("--sim-seeds", default="8,9,10,11", help="simulation seeds of sim3d-val (not 0-7: training)")
    p.add_argument("--ls-seeds", default="8,9,10,11",
                   help="simulation seeds of sim3d-ls-val (not 0-7: training); '' leaves the set out")
    p.add_argument("--weights", default=None,
                   help="state_dict file(s) replacing the model's weights (epochs; comma-separated: each scored in turn)")
    p.add_argument("--train-frames", action="store_true", help="also score mouse frames 0-6 (training frames)")
    p.add_argument("--wormguides", action="store_true",
                   help="also score wg-val: the rendered C. elegans lineage frames 150-189 (wormguides3d validation)")
    p.add_argument("--sets", default="", help="comma-separated set names to score (prefixes; '': all)")
    a = p.parse_args()
    torch.set_num_threads(1)

    loaded = Segmenter.load(a.model)

    def with_weights(path: str | None) -> Segmenter:
        if not path:
            return loaded
        # the card's network with other weights, prepared for inference as from_folder does
        from dynacell.models.runtime import fuse_conv_bn, load_state_dict
        from dynacell.models.unet import build_segmentation_model
        from dynacell.segment.predict import _channels_last

        net = build_segmentation_model(loaded.card.architecture, **loaded.card.model_kwargs)
        net.load_state_dict(load_state_dict(path))
        net.eval()
        fuse_conv_bn(net)
        return Segmenter(net.to(memory_format=_channels_last(loaded.card.ndim)), loaded.card, loaded.folder)

    base = loaded
    cache: dict = {}

    def variant(over: dict) -> Segmenter:
        over = dict(over)
        flips = int(over.pop("flips", base.card.test_time_flips))
        shifts = int(over.pop("outline_shifts", base.card.outline_shifts))
        target = float(over.pop("target_diameter_px", base.card.target_diameter_px))
        card = base.card.model_copy(update={"test_time_flips": flips, "outline_shifts": shifts,
                                            "target_diameter_px": target,
                                            "postprocess": {**base.card.postprocess, **over}})
        seg = Segmenter(base.net, card, base.folder)
        raw = seg.predict_maps

        def cached(x, **kw):
            key = (x.shape, hashlib.md5(x.tobytes()).hexdigest(), kw.get("flips", flips),
                   card.postprocess["foreground"], card.target_diameter_px)
            if key not in cache:
                cache[key] = raw(x, **kw)
            return cache[key]

        seg.predict_maps = cached
        return seg

    makers = {"zreg7": lambda: load_frames("mouse8-zreg", "val"), "given7": lambda: load_frames("mouse8", "val"),
              "sim3d-val": lambda: [f for s in a.sim_seeds.split(",") for f in _sim3d_frames(int(s))],
              "sdleft (training side)": lambda: load_frames("stardist3d-half", "train")}
    if a.wormguides:
        makers["wg-val"] = lambda: load_frames("wormguides3d", "val")
    if a.ls_seeds:
        makers["sim3d-ls-val"] = lambda: [f for s in a.ls_seeds.split(",") for f in _sim3d_ls_frames(int(s))]
    if a.train_frames:
        makers["zreg0-6"] = lambda: load_frames("mouse8-zreg", "train")
    keep = tuple(a.sets.split(",")) if a.sets else ("",)
    sets = {k: make() for k, make in makers.items() if k.startswith(keep)}
    prepared = {}
    diam: dict = {}
    for name, frames in sets.items():
        vs_set = None if name.startswith(("sim3d", "wg-")) else aspect_from_reference(frames)
        prepared[name] = []
        for f in frames:
            vs = f.voxel_size_um if vs_set is None else vs_set
            prepared[name].append((f, vs))

    def diameters(name: str, how: str) -> list[float]:
        if (name, how) not in diam:
            if how not in ("log", "refine", "reference"):
                raise SystemExit(f"diameter must be log, refine or reference, got {how!r}")
            diam[(name, how)] = [float(np.median(lateral_diameters_px(f.labels))) if how == "reference"
                                 else estimate_nucleus_diameter_for_model(f.image, base, voxel_size_um=vs,
                                                                          refine=how == "refine")
                                 for f, vs in prepared[name]]
            print(json.dumps({"set": name, "diameter": how, "reference_px": round(reference_diameter_px(sets[name]), 2),
                              "estimated_px": [round(d, 2) for d in diam[(name, how)]]}), flush=True)
        return diam[(name, how)]

    runs = [(w, over) for w in (a.weights.split(",") if a.weights else [None]) for over in json.loads(a.grid)]
    current: object = object()  # no weights loaded yet
    for w, over in runs:
        if w != current:
            base, current = with_weights(w), w
            cache.clear()  # maps of other weights
            for k in [k for k in diam if k[1] == "refine"]:
                del diam[k]  # the refined size depends on the weights
        over = dict(over)
        how = over.pop("diameter", "log")
        m = variant(over)
        res: dict = {**({"weights": w} if w else {}), "flips": m.card.test_time_flips, "outline_shifts": m.card.outline_shifts, "diameter": how,
                     "target_diameter_px": m.card.target_diameter_px,
                     **{k: v for k, v in over.items() if k not in ("flips", "outline_shifts", "target_diameter_px")}}
        for name, items in prepared.items():
            seg_n, n_all, tp, n_pred, n_ref, cpu, found = 0.0, 0, 0, 0, 0, [], []
            for (f, vs), d in zip(items, diameters(name, how)):
                c0 = time.process_time()
                lab = segment_frame(f.image, m, nucleus_diameter_px=d, voxel_size_um=vs)
                cpu.append(time.process_time() - c0)
                s, n = ctc_seg(f.labels, lab)
                seg_n, n_all = seg_n + s * n, n_all + n
                o = object_scores(f.labels, lab)
                tp, n_pred, n_ref = tp + o["tp@0.5"], n_pred + o["n_predicted"], n_ref + o["n_reference"]
                found.append(f'{o["tp@0.5"]}/{o["n_reference"]}')
            res[name] = {"SEG": round(seg_n / max(n_all, 1), 4), "F1@0.5": round(2 * tp / max(n_pred + n_ref, 1), 3),
                         "n_pred": n_pred, "n_ref": n_ref, "matched@0.5": found,
                         "cpu_s": round(float(np.median(cpu)), 2)}
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
