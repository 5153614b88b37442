"""False event calls per 1,000 nuclei on real movies that are (almost) all stable.

- 2D: ``nuclei-2d`` on CTC Fluo-N2DH-GOWT1 01 (27 tracks, 2 divisions in 92 frames): the
  sample set of ``benchmarks/build_state_sets.py`` (built with the model's crop size and
  ``--target-diameter``); calls of ``mitotic`` or ``new_daughter`` on nuclei whose ground-truth
  state is ``stable``. When the model was trained on GOWT1 (its card lists ``held_out.gowt1``),
  only its held-out test frames are counted (``--gowt1-frames all`` counts every frame).
- 3D: ``nuclei-3d`` on the real mouse 8-cell embryo (``../shared/data/embryo3d/mouse-8cell``,
  11 frames, 8 nuclei, no divisions or deaths): every nucleus of every frame, cropped like
  the training data (the model's nucleus-size rule or its fixed crop voxel; the embryo's voxel size is
  taken as BlastoSPIM's 2.0 × 0.208 × 0.208 µm, since the folder does not state it).
- 3D: ``nuclei-3d`` on CTC Fluo-N3DH-CHO 02 (20 frames, 1.0 × 0.202 × 0.202 µm) with the
  error-prone automatic masks ``02_ERR_SEG`` (no lineage): every call is counted. CHO 02
  shows a few divisions, so its rate is an upper bound of the false-event rate.

With ``--linked`` the two 3D movies are also classified the way ``dynacell run`` does it: the labels
are linked (:func:`dynacell.track.link_labels`) and every nucleus is classified by
:func:`dynacell.states.classify.classify_movie`, once with the ``t±1`` context cut at the nucleus's
position at ``t`` (``track_context=False``, the seed's rule) and once around the linked position of
its track (``track_context=True``, the default); the classifier's own calls (before any
reconciliation with the lineage) are counted.

Usage::

    python benchmarks/false_events.py [--gowt1 /tmp/dynacell_state_sets/gowt1-d18.npz] [--gowt1-frames all]
                                      [--linked]

Prints one JSON line per data set.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _scale_kw(clf, target_voxel_um=None) -> dict:
    """Crop arguments as the model was trained: its nucleus-size rule, else its physical voxel."""
    scale = clf.card.scale_normalization
    if scale is not None and target_voxel_um is None:
        return {"target_diameter_px": float(scale.target_diameter_px), "scale_frames": int(scale.n_frames)}
    return {"target_voxel_um": target_voxel_um or clf.card.target_voxel_um}


def linked_rates(images, labels, clf, name: str) -> None:
    """Print the classifier's false-event rate in the run's code path, without and with track context."""
    from dynacell.metrics.classification import false_event_rate
    from dynacell.states.classify import classify_movie
    from dynacell.track import link_labels

    lin, _ = link_labels(labels, progress=False)
    for track_context in (False, True):
        table = classify_movie(images, labels, clf, lineage=lin, progress=False, track_context=track_context)
        counts = table["state"].value_counts().to_dict()
        out = {"data": f"{name}, linked ({len(lin.divisions())} linked divisions)", "model": clf.name,
               "track_context": track_context, "counts": counts,
               **false_event_rate(table["state"], events=("mitotic", "new_daughter", "death"))}
        print(json.dumps(out))


def main() -> None:
    """Evaluate and print."""
    from dynacell.io import open_labels, open_movie
    from dynacell.metrics.classification import false_event_rate
    from dynacell.samples import SampleSet, build_sample_set
    from dynacell.states import available_models, load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gowt1", type=Path, default=None,
                    help="GOWT1 sample set (default /tmp/dynacell_state_sets/gowt1-d18.npz, or gowt1-d18c.npz "
                         "for a model with segmentation context)")
    ap.add_argument("--gowt1-frames", choices=("held-out", "all"), default="held-out",
                    help="GOWT1 frames counted: the model's held-out test frames (card) or all")
    ap.add_argument("--model-2d", default="nuclei-2d")
    ap.add_argument("--model-3d", default="nuclei-3d")
    ap.add_argument("--embryo", type=Path, default=DATA / "embryo3d" / "mouse-8cell")
    ap.add_argument("--embryo-voxel-um", type=float, nargs=3, default=[2.0, 0.208, 0.208])
    ap.add_argument("--embryo-target-voxel-um", type=float, default=None,
                    help="crop voxel for the embryo (default: the model card's)")
    ap.add_argument("--cho", type=Path, default=DATA / "ctc" / "Fluo-N3DH-CHO")
    ap.add_argument("--cho-voxel-um", type=float, nargs=3, default=[1.0, 0.202, 0.202])
    ap.add_argument("--linked", action="store_true",
                    help="3D: also classify through classify_movie with a linked lineage, without and with track "
                         "context")
    args = ap.parse_args()
    have_2d = args.model_2d in available_models() or Path(args.model_2d).is_dir()
    clf = load_model(args.model_2d) if have_2d else None
    if args.gowt1 is None and clf is not None:
        args.gowt1 = Path(f"/tmp/dynacell_state_sets/gowt1-d18{'c' if clf.context else ''}.npz")
    if clf is not None and args.gowt1.exists():
        ss = SampleSet.load(args.gowt1)
        stable = ss.meta["state"].to_numpy() == "stable"
        held = (clf.card.held_out).get("gowt1")
        what = "all frames"
        if held and args.gowt1_frames == "held-out":
            lo, hi = held["test_frames"]
            t = ss.meta["t"].to_numpy()
            stable &= (t >= lo) & (t <= hi)
            what = f"held-out frames {lo}-{hi}"
        pred = clf.predict(ss.x[stable])
        out = {"data": f"GOWT1 01 (true-stable nuclei, {what})", "model": clf.name,
               **false_event_rate(pred, events=("mitotic", "new_daughter"))}
        print(json.dumps(out))
    if args.embryo.exists() and (args.model_3d in available_models() or Path(args.model_3d).is_dir()):
        clf = load_model(args.model_3d)
        images = open_movie(args.embryo / "images", voxel_size_um=tuple(args.embryo_voxel_um))
        labels = open_labels(args.embryo / "labels", voxel_size_um=tuple(args.embryo_voxel_um))
        ss = build_sample_set(images, labels, None, size=tuple(clf.crop_size), dataset="mouse-8cell",
                              voxel_size_um=tuple(args.embryo_voxel_um), assume_state="stable", context=clf.context,
                              **_scale_kw(clf, args.embryo_target_voxel_um))
        pred = clf.predict(ss.x)
        counts = {c: int(np.sum(pred == c)) for c in clf.classes}
        out = {"data": "mouse-8cell (real 3D, no events)", "model": clf.name, "counts": counts,
               **false_event_rate(pred, events=("mitotic", "new_daughter", "death"))}
        print(json.dumps(out))
        if args.linked:
            linked_rates(images, labels, clf, "mouse-8cell (real 3D, no events), BlastoSPIM voxel")
            # as `dynacell run` sees it without --voxel-size-um: linked and cropped in pixels
            linked_rates(open_movie(args.embryo / "images"), open_labels(args.embryo / "labels"), clf,
                         "mouse-8cell (real 3D, no events), pixels")
    if (args.cho / "02").exists() and (args.model_3d in available_models() or Path(args.model_3d).is_dir()):
        clf = load_model(args.model_3d)
        vox = tuple(args.cho_voxel_um)
        images = open_movie(args.cho / "02", voxel_size_um=vox)
        labels = open_labels(args.cho / "02_ERR_SEG", voxel_size_um=vox)
        ss = build_sample_set(images, labels, None, size=tuple(clf.crop_size), dataset="cho02",
                              voxel_size_um=vox, assume_state="stable", context=clf.context, **_scale_kw(clf))
        pred = clf.predict(ss.x)
        counts = {c: int(np.sum(pred == c)) for c in clf.classes}
        out = {"data": "CHO 02 + 02_ERR_SEG (real 3D, few divisions)", "model": clf.name, "counts": counts,
               **false_event_rate(pred, events=("mitotic", "new_daughter", "death"))}
        print(json.dumps(out))
        if args.linked:
            linked_rates(images, labels, clf, "CHO 02 + 02_ERR_SEG (real 3D, few divisions)")


if __name__ == "__main__":
    main()
