"""Nuclei classified per second, end to end from crops, 2D 32² and 3D 32³ (CPU).

dcnet (dynacell) beside the seed's 4ncnn forward pass, each wrapped in a
:class:`dynacell.states.StateClassifier` (channel selection, batching, temperature,
softmax), plus the shipped ``nuclei-2d`` / ``nuclei-3d`` at their own crop sizes.
Weights do not change the speed; untrained models are timed.

With ``--crops`` it also times the other half of the classify step on the real movies of
../shared/data: reading the frames and cutting the crops of every nucleus as ``dynacell run`` does
(:func:`dynacell.states.speed.crop_speed`, shipped models' crop parameters, no model run), in nuclei
per CPU-second of this process.

Usage::

    python benchmarks/classify.py [--n 2048] [--threads 2] [--crops] [--skip-models]
"""

from __future__ import annotations

import argparse
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: (name, images, labels, voxel size µm or None) of the real movies of benchmarks/run.py
CROP_CASES = (
    ("HeLa 02 ERR_SEG", "ctc/Fluo-N2DL-HeLa/02", "ctc/Fluo-N2DL-HeLa/02_ERR_SEG", (0.645, 0.645)),
    ("bacteria-phc 01 TRA", "ctc/bacteria-phc/01", "ctc/bacteria-phc/01_GT/TRA", None),
    ("GOWT1 01 TRA", "ctc/Fluo-N2DH-GOWT1/01", "ctc/Fluo-N2DH-GOWT1/01_GT/TRA", None),
    ("CHO 02 3D ERR_SEG", "ctc/Fluo-N3DH-CHO/02", "ctc/Fluo-N3DH-CHO/02_ERR_SEG", (1.0, 0.202, 0.202)),
    ("mouse-8cell 3D", "embryo3d/mouse-8cell/images", "embryo3d/mouse-8cell/labels", None),
)


def crop_table(repeats: int = 2):
    """Reading + cropping speed on each real movie (labels held in memory, as in ``dynacell run``)."""
    import pandas as pd

    from dynacell.io import open_movie
    from dynacell.io.movie import load_in_memory
    from dynacell.states import load_model
    from dynacell.states.speed import crop_speed

    rows = []
    for name, img, lab, vs in CROP_CASES:
        if not (DATA / img).is_dir():
            continue
        images = open_movie(DATA / img, voxel_size_um=vs)
        labels = load_in_memory(open_movie(DATA / lab))
        model = load_model(f"nuclei-{images.ndim_spatial}d")
        rows.append({"movie": name, **crop_speed(images, labels, model, repeats=repeats)})
    return pd.DataFrame(rows)


def main() -> None:
    """Print the speed table."""
    from dynacell.states.speed import speed_table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2048, help="crops per timing")
    ap.add_argument("--threads", type=int, nargs="+", default=[2], help="torch CPU threads to try")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--crops", action="store_true", help="also time reading + cropping on the real movies")
    ap.add_argument("--skip-models", action="store_true", help="no model timing (with --crops)")
    args = ap.parse_args()
    import pandas as pd

    if not args.skip_models:
        table = pd.concat([speed_table(n=args.n, threads=t, batch_size=args.batch_size) for t in args.threads])
        print(table.to_string(index=False))
    if args.crops:
        import torch

        torch.set_num_threads(min(args.threads))
        print("\nReading + cropping alone (the classify step without the model), best of 2 passes:")
        print(crop_table().to_string(index=False))


if __name__ == "__main__":
    main()
