"""The main job on a dense 3D embryo from raw images: the real C. elegans lineage rendered as a fluorescence movie.

Run from the checkout::

    python benchmarks/run_wormguides.py [--data ../shared/data] [--frames 300 320] [--voxel-size-um 1.0 0.25 0.25]
                                        [--segmenters nuclei-seg-3d classical] [--out /tmp/dynacell-bench-wormguides]

No real 3D movie in ``../shared/data`` has both raw images and a lineage with many nuclei (the mouse 8-cell embryo has
8, CHO 02 no lineage). The WormGUIDES AceTree lineage holds the real positions, diameters and divisions of every nucleus
of a C. elegans embryo, one frame a minute. This benchmark renders lineage frames ``--frames`` (start, stop) as a
fluorescence movie (:func:`dynacell.simulate.render_lineage`: nuclei at their real places and sizes, mitosis and
apoptosis drawn from the lineage, a Gaussian blur stretched along z, shot and read noise; ``--seed``), like a
spinning-disk or light-sheet recording of an embryo at 200-550 nuclei (Fluo-N3DH-CE-like: nuclei 2-5 µm across, a
few planes deep). It then runs ``dynacell run`` on it (fresh process each, ``--no-video``, ``--gt`` the rendered
lineage) once with the rendered labels (``--labels``: the linking's ceiling, no segmentation error) and once per
segmenter of ``--segmenters`` (shipped names, model folders, ``classical``).

Prints, per run: SEG of the run's masks against the rendered labels (CTC measure, all frames), objects per frame
against the reference, merged nuclei (a predicted object covering more than half of two or more reference nuclei),
TRA, LNK, division F1 and its counts, wall and CPU seconds and peak memory. The appearance is rendered, the geometry,
motion and divisions are real: it measures the segmenter on dense small nuclei and what its errors cost the lineage.
The lineage frames 270-330 are the test block of the ``wormguides3d`` training set (``dynacell.train.segment``);
frames 150-189 its validation block.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import print_table, run_case  # the main-job benchmark's runner (same folder)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def render(data: Path, frames: tuple[int, int], voxel_size_um: tuple[float, float, float], seed: int,
           out: Path) -> tuple[Path, Path]:
    """Render lineage frames ``[start, stop)`` to ``out/movie`` (CTC layout); return the images and the GT folder."""
    from dynacell.lineage import read_lineage
    from dynacell.simulate import render_lineage
    from dynacell.simulate.params import WORMGUIDES_VOXEL_SIZE_UM

    lineage = read_lineage(data / "lineages" / "wormguides-celegans")
    res = render_lineage(lineage, frames=range(*frames), lineage_voxel_size_um=WORMGUIDES_VOXEL_SIZE_UM,
                         voxel_size_um=voxel_size_um, seed=seed, progress=False)
    movie = res.save(out / "movie", overwrite=True)
    gt = out / "movie_GT"
    gt.mkdir(exist_ok=True)
    if not (gt / "TRA").exists():
        (gt / "TRA").symlink_to(movie / "labels", target_is_directory=True)
    return movie / "images", gt


def merged_nuclei(reference: np.ndarray, predicted: np.ndarray) -> int:
    """Reference nuclei inside a predicted object that covers more than half of two or more of them."""
    from dynacell.metrics.segmentation import overlap_matrix

    ref_ids, _, overlap, _ = overlap_matrix(reference, predicted)
    half = overlap > 0.5 * np.bincount(reference.ravel())[ref_ids][:, None]
    per_object = half.sum(axis=0)
    return int(per_object[per_object > 1].sum())


def mask_scores(run: Path, gt_tra: Path) -> dict:
    """SEG (object-weighted over frames), objects per frame and merged nuclei of a run's ``ctc`` masks."""
    import tifffile

    from dynacell.metrics.segmentation import ctc_seg

    seg_sum = n_ref = n_pred = merged = 0
    refs = sorted(gt_tra.glob("man_track*.tif"))
    for f in refs:
        ref = tifffile.imread(f)
        pred = tifffile.imread(run / "ctc" / f"mask{f.stem[9:]}.tif")
        seg, n = ctc_seg(ref, pred)
        seg_sum, n_ref = seg_sum + seg * n, n_ref + n
        n_pred += len(np.unique(pred)) - 1
        merged += merged_nuclei(ref, pred)
    return {"SEG": seg_sum / n_ref, "objects_per_frame": n_pred / len(refs), "ref_per_frame": n_ref / len(refs),
            "merged_nuclei": merged}


def main() -> None:
    """Render the movie, run every case, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--frames", type=int, nargs=2, default=(300, 320), help="lineage frames [start, stop)")
    ap.add_argument("--voxel-size-um", type=float, nargs=3, default=(1.0, 0.25, 0.25))
    ap.add_argument("--segmenters", nargs="*", default=["nuclei-seg-3d", "classical"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("/tmp/dynacell-bench-wormguides"))
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    images, gt = render(a.data, tuple(a.frames), tuple(a.voxel_size_um), a.seed, a.out)
    common = ["--voxel-size-um", *map(str, a.voxel_size_um), "--gt", str(gt), "--seed", str(a.seed)]
    cases = [("rendered labels", ["--labels", str(gt / "TRA")])]
    cases += [(s if "/" not in s else Path(s).name, ["--segmenter", s]) for s in a.segmenters]
    rows = []
    for i, (name, args) in enumerate(cases):
        run_dir = a.out / f"run_{i}"
        res = run_case([str(images), *args, *common], run_dir, threads=a.threads)
        row = {"run": name, **{k: res.get(k) for k in ("TRA", "div_F1", "wall_s", "cpu_s", "peak_rss_mb", "error")}}
        if "error" not in res:
            ev = json.loads((run_dir / "run.json").read_text())["evaluation"]["tracking"]
            row.update({k: ev.get(k) for k in ("LNK", "gt_divisions", "tp_divisions", "fp_divisions")})
            row.update(mask_scores(run_dir, gt / "TRA"))
            row["segment_s"] = res["steps"].get("labels")
        rows.append(row)
        print(json.dumps(row, default=float), flush=True)
    first, last = a.frames[0], a.frames[1] - 1
    print(f"\nWormGUIDES lineage frames {first}-{last} rendered at {a.voxel_size_um} µm, seed {a.seed}")
    print_table(rows, ["run", "SEG", "objects_per_frame", "ref_per_frame", "merged_nuclei", "TRA", "LNK", "div_F1",
                       "gt_divisions", "tp_divisions", "fp_divisions", "segment_s", "wall_s", "cpu_s", "peak_rss_mb"])


if __name__ == "__main__":
    main()
