"""Fine-tune a 2D segmenter with GOWT1-sized rendered touching (dim) pairs (a trial of 1 Dec, session 11).

Registers a training-only dataset ``simtouch`` in dynacell.train.segment for this process:
2D colonies packed so neighbours touch (as the merge probe, dynacell.simulate.simulate_embryo, 40 nuclei
of radius 4 um, cells 4 um), rendered at 0.13 um/px (nuclei ~57 px, GOWT1 ~60), simulation seeds
3000-3011 (``SIMTOUCH_SEEDS=N``: the first N; the probe uses 2000-2007, the sim set 1000-1003), frames 0-6; in each frame every disjoint
touching pair is dimmed to a factor drawn from 0.1-0.6 (rng seeded by sim seed and frame).
No validation frames (the engine's monitor stays GOWT1 21-31 + HeLa 10-11). Then runs
dynacell.train.segment's command line with the remaining arguments (``--check`` renders and prints only).
Results (not shipped): docs/segmentation.md, "Shape split", fine-tune trials.

Usage::

    SIMTOUCH_SEEDS=3 OMP_NUM_THREADS=1 python benchmarks/segment_finetune_touching.py --architecture instance-unet \
        --name nuclei-seg-2d-fast --out /tmp/ft --init src/dynacell/segment/pretrained/nuclei-seg-2d-fast \
        --teacher nuclei-seg-2d --distill-weight 1.0 --datasets gowt1,hela02,dsb,simtouch \
        --model-kwargs '{"ndim": 2, "base_filters": 8, "depth": 3}' --minutes 25 --steps-per-epoch 30 \
        --batch-size 8 --lr 2e-4 --dim-nuclei 0.3 --seed 13
"""
import os
import sys
from pathlib import Path

import numpy as np

import dynacell.train.segment as T

sys.path.insert(0, str(Path(__file__).resolve().parent))
from segment_boundary_2d import dim_objects, touching_pairs  # noqa: E402

SEEDS = range(3000, 3000 + int(os.environ.get("SIMTOUCH_SEEDS", "12")))


def _touch_frames():
    from dynacell.simulate import simulate_embryo
    out = []
    for seed in SEEDS:
        res = simulate_embryo(ndim=2, n_start=40, n_frames=7, division_rate_per_frame=0.0, death_rate_per_frame=0.0,
                              radius_um=4.0, cell_radius_um=4.0, seed=seed, progress=False, voxel_size_um=0.13)
        for t in range(7):
            img, lab = np.asarray(res.images[t]), np.asarray(res.labels[t], np.int32)
            pairs = touching_pairs(lab)
            rng = np.random.default_rng(seed * 10 + t)
            if pairs:
                img = dim_objects(img, lab, [i for q in pairs for i in q], float(rng.uniform(0.1, 0.6)))
            out.append(T.AnnotatedFrame("simtouch", (seed - 3000) * 100 + t, np.asarray(img, np.float32), lab,
                                        voxel_size_um=tuple(float(v) for v in res.voxel_size_um)))
    return out


T.SPLITS["simtouch"] = {"train": lambda t: True, "val": lambda t: False, "test": lambda t: False}
T.SPLIT_TEXT["simtouch"] = (f"rendered touching colonies at 0.13 um/px, seeds {SEEDS[0]}-{SEEDS[-1]}, touching pairs "
                            "dimmed to 0.1-0.6 (training only; probe seeds 2000-2007 kept out)")
_orig = T.load_frames


def load_frames(dataset, side, data_root=None, **kw):
    if dataset == "simtouch":
        return _touch_frames() if side == "train" else []
    return _orig(dataset, side, data_root, **kw)


T.load_frames = load_frames
if __name__ == "__main__":
    if sys.argv[1:2] == ["--check"]:
        import time
        t0 = time.time()
        fr = _touch_frames()
        print(len(fr), fr[0].image.shape, fr[0].labels.max(), time.time() - t0)
    else:
        sys.argv = ["dynacell.train.segment"] + sys.argv[1:]
        T.main()
