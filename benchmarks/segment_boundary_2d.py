"""Where a 2D segmenter loses SEG on the validation side, and the cheap levers around its outlines.

Validation frames only (never the test frames): GOWT1 01 frames 21–31 (``01_GT/SEG``, sparse) and
HeLa 02 frames 10–11 (``02_ST/SEG``), nucleus size estimated once per set from its first frame, as
``dynacell segment`` runs a model (:func:`dynacell.segment.predict.segment_frame`).

``--mode diagnose`` prints, per dataset, the distribution of the Jaccard index of every reference
object with the predicted object covering more than half of it (the terms of the CTC SEG mean), the
mean and median area ratio predicted / reference of the matched objects (a systematic outline offset
shows as a ratio away from 1), the mean fraction of each reference covered and of each prediction
inside its reference, and the numbers of missed (Jaccard 0), split (two or more predicted objects
each covering > 10 % of the reference) and merged (one predicted object covering more than half of
two references) reference objects, and the worst objects.

``--mode grid`` scores variants (JSON object of lists; every combination; or a JSON list of such
objects, their variants one after another on the same cached maps):

- ``scale``: the estimated nucleus diameter is multiplied by this (< 1 runs the frame at a finer
  model scale: nucleus-size normalisation target);
- ``flips``: test-time flips (1, 2, 4; 8 = the whole dihedral group: the 4 flips of the frame and of its
  transpose, each mapped back);
- ``ens_flips``: 0 (off), or the flips of a second model (``--ensemble``) whose maps (foreground,
  boundary, distance) are averaged with the first model's, weight ``ens_weight`` (default 0.5), before
  the seeded watershed;
- ``shifts``: 1 (off), 2 or 4 = the foreground that cuts the resized-back outline is the mean of that
  many copies run on grids shifted by half a model pixel (:func:`shifted_foreground`); the instances
  stay those of the unshifted copy; as in ``segment_frame``, only where the frame is shrunk by a zoom
  of at most ``shifts ** -0.5`` (GOWT1 and the GOWT1-sized probe, not HeLa);
- ``fullres``: 1 = the maps resized (bilinear) to the frame and the seeded watershed run there (outline
  and split lines from the interpolated maps), instead of the model-scale labels resized back;
- ``cut``: foreground probability at which the resized-back outline is cut (``segment_frame``
  uses the model-scale threshold ``foreground``);
- ``outline_intensity_weight`` / ``_fraction`` / ``_sigma_px`` (fields of ``PostprocessParams``): the
  per-object outline cut (:func:`dynacell.segment.learned.cut_outlines_by_object`) instead of the plain one;
- ``grow``: labels grown (> 0, scikit-image ``expand_labels``) or shrunk (< 0, one pixel per
  step, also from touching neighbours) by this many frame pixels at the end;
- any field of :class:`dynacell.segment.learned.PostprocessParams`.

``--markers`` adds, per variant, the counts against the GOWT1 tracking markers of the validation frames
21–31 (one per nucleus, every nucleus): merged pairs, missed markers, objects without a marker
(:func:`segment_postprocess.marker_counts`).

``--probe dim-pairs`` adds a merge probe on rendered nuclei (never a replacement for the real
validation frames): 2D colonies rendered with touching nuclei (:func:`dim_pair_probe`: 8 simulation
seeds × 3 frames, exact labels), where disjoint pairs of touching nuclei are dimmed to
``--dim-factor`` of their brightness above the background (``--probe-voxel-um 0.13`` renders them at
GOWT1's nucleus size, ``--probe-true-size`` gives the reference nucleus size instead of the estimate) (the GOWT1 test block's dim touching pair is at a few percent of the
bright nuclei); ``probe_merged`` counts dimmed pairs one predicted object covers more than half of
both, ``probe_missed`` dimmed nuclei without such an object, of ``probe_pairs``. A comma list
``--dim-factor 0.2,0.3,1.0`` scores one probe per value (keys ``probe0.2_merged``, ...; 1.0 = the
touching pairs undimmed).

Usage::

    python benchmarks/segment_boundary_2d.py --model nuclei-seg-2d-fast --mode diagnose
    python benchmarks/segment_boundary_2d.py --mode grid --markers --probe dim-pairs --ensemble nuclei-seg-2d \
        --grid '{"flips": [1, 2, 4, 8], "ens_flips": [0, 1]}'
    python benchmarks/segment_boundary_2d.py --mode grid --grid '{"cut": [0.4, 0.5, 0.6], "grow": [-1, 0, 1]}'

Prints JSON lines. The variant ``{scale 1, flips: the card's, cut = foreground, grow 0}`` is what
``segment_frame`` computes (same private steps of :mod:`dynacell.segment.predict`).
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import replace
from typing import Any

import numpy as np


def shrink_labels(labels: np.ndarray, steps: int) -> np.ndarray:
    """Remove the outermost pixel ring of every object ``steps`` times (8-connected, also between objects).

    Parameters
    ----------
    labels : numpy.ndarray
        int instances ``(Y, X)``.
    steps : int
        Rings removed.

    Returns
    -------
    numpy.ndarray
        A shrunk copy, same dtype.
    """
    from scipy import ndimage as ndi

    out = labels.copy()
    for _ in range(int(steps)):
        edge = (ndi.grey_erosion(out, size=3) != out) | (ndi.grey_dilation(out, size=3) != out)
        out[edge] = 0
    return out


def dihedral_maps(seg: Any, x: np.ndarray, flips: int) -> dict[str, np.ndarray]:
    """Maps of a 2D frame at model scale averaged over ``flips`` copies (1, 2, 4 or 8).

    Parameters
    ----------
    seg : dynacell.segment.predict.Segmenter
        A 2D model.
    x : numpy.ndarray
        float32 normalised frame ``(Y, X)`` at model scale.
    flips : int
        1, 2, 4: :meth:`~dynacell.segment.predict.Segmenter.predict_maps` with that many flips; 8: the
        mean of its 4-flip maps of ``x`` and of ``x.T`` (transposed back): the dihedral group D4.

    Returns
    -------
    dict
        float32 maps ``(Y, X)`` (foreground, boundary, distance).
    """
    if int(flips) != 8:
        return seg.predict_maps(x, flips=int(flips))
    a = seg.predict_maps(x, flips=4)
    b = seg.predict_maps(np.ascontiguousarray(x.T), flips=4)
    return {k: np.ascontiguousarray(0.5 * (a[k] + b[k].T), dtype=np.float32) for k in a}


#: Sub-pixel offsets (model pixels) of the shifted copies of :func:`shifted_foreground`.
SHIFTS = {2: ((0.0, 0.0), (0.5, 0.5)), 4: ((0.0, 0.0), (0.0, 0.5), (0.5, 0.0), (0.5, 0.5))}


def shifted_foreground(seg: Any, x: np.ndarray, model_shape: tuple[int, ...], shifts: int,
                       flips: int) -> np.ndarray:
    """Foreground probability at the frame's resolution, averaged over sub-model-pixel shifted copies.

    Each copy resamples the normalised frame to model scale on a grid offset by a fraction of a model
    pixel (:data:`SHIFTS`; bilinear, the corner-aligned sampling of
    :func:`dynacell.segment.predict._resize_linear` for offset 0), runs the network, and samples its
    foreground back at the frame's pixels with the same offset: the mean of the copies resolves the
    outline finer than one model pixel where a frame is shrunk (GOWT1: one model pixel is 2.5 px).

    Parameters
    ----------
    seg : Segmenter
    x : numpy.ndarray
        float32 normalised frame ``(Y, X)`` at its own resolution.
    model_shape : tuple of int
        Shape at model scale.
    shifts : int
        2 or 4 copies.
    flips : int
        Test-time flips of each copy (:func:`dihedral_maps`).

    Returns
    -------
    numpy.ndarray
        float32 ``(Y, X)``.
    """
    from scipy import ndimage as ndi

    step = [(n_in - 1) / (n_out - 1) for n_in, n_out in zip(x.shape, model_shape)]
    total = np.zeros(x.shape, np.float32)
    for off in SHIFTS[shifts]:
        grid = np.meshgrid(*[(np.arange(n) + o) * s for n, o, s in zip(model_shape, off, step)], indexing="ij")
        xs = ndi.map_coordinates(x, grid, order=1, mode="nearest").astype(np.float32)
        fg = dihedral_maps(seg, xs, flips)["foreground"]
        back = np.meshgrid(*[np.arange(n) / s - o for n, o, s in zip(x.shape, off, step)], indexing="ij")
        total += ndi.map_coordinates(fg, back, order=1, mode="nearest")
    return total / len(SHIFTS[shifts])


def touching_pairs(labels: np.ndarray) -> list[tuple[int, int]]:
    """Disjoint pairs of touching objects of a label image (4-neighbours), greedily, each object once.

    Parameters
    ----------
    labels : numpy.ndarray
        int instances ``(Y, X)``.

    Returns
    -------
    list of tuple of int
        ``(a, b)`` label pairs, ``a < b``; no object in two pairs, and no two pairs touching each other.
    """
    lab = np.asarray(labels)
    pairs = set()
    for a, b in ((lab[1:, :], lab[:-1, :]), (lab[:, 1:], lab[:, :-1])):
        m = (a > 0) & (b > 0) & (a != b)
        pairs |= {(int(min(u, v)), int(max(u, v))) for u, v in zip(a[m], b[m])}
    neigh: dict[int, set[int]] = {}
    for u, v in pairs:
        neigh.setdefault(u, set()).add(v)
        neigh.setdefault(v, set()).add(u)
    used: set[int] = set()
    out = []
    for u, v in sorted(pairs):
        group = {u, v}
        if group & used or any(neigh[w] & used for w in group):
            continue
        out.append((u, v))
        used |= group
    return out


def dim_objects(image: np.ndarray, labels: np.ndarray, ids: list[int], factor: float) -> np.ndarray:
    """``image`` with the objects ``ids`` dimmed to ``factor`` of their signal above the background.

    The background is the image's 5th percentile; the dimming mask is smoothed by σ = 1 px so no
    step edge is drawn. Returns float32.
    """
    from scipy import ndimage as ndi

    x = np.asarray(image, np.float32)
    bg = float(np.percentile(x, 5))
    f = np.ones(x.shape, np.float32)
    f[np.isin(labels, ids)] = float(factor)
    return bg + (x - bg) * ndi.gaussian_filter(f, 1.0)


def owner_of(predicted: np.ndarray, mask: np.ndarray) -> int:
    """The predicted object covering more than half of ``mask`` (boolean, same shape), or 0."""
    ids, counts = np.unique(np.asarray(predicted)[mask], return_counts=True)
    k = int(np.argmax(counts))
    return int(ids[k]) if ids[k] > 0 and 2 * counts[k] > int(mask.sum()) else 0


def dim_pair_probe(factor: float, seeds: range = range(2000, 2008), frames: tuple[int, ...] = (0, 3, 6),
                   voxel_size_um: float = 0.5) -> list[Any]:
    """Rendered 2D colonies packed so that nuclei touch, with disjoint touching pairs dimmed.

    Parameters
    ----------
    factor : float
        Brightness of the dimmed pairs above the background (:func:`dim_objects`).
    seeds : range
        Simulation seeds (:func:`dynacell.simulate.simulate_embryo`, 2D, 40 nuclei of radius 4 µm at
        0.5 µm/px — about 14 px across —, cells 4 µm in radius so that neighbours touch, no
        division or death); none is a training or validation seed of the ``sim`` set (1000–1003).
    frames : tuple of int
        Frames taken from each 7-frame simulation.
    voxel_size_um : float
        Pixel size of the render (0.5: nuclei ≈ 14 px; 0.13: ≈ 57 px, about GOWT1's 60).

    Returns
    -------
    list of SimpleNamespace
        ``image`` (dimmed, float32), ``original`` (uint16), ``labels`` (exact), ``pairs``
        (:func:`touching_pairs`); frames without a touching pair are left out.
    """
    from types import SimpleNamespace

    from dynacell.simulate import simulate_embryo

    out = []
    for seed in seeds:
        res = simulate_embryo(ndim=2, n_start=40, n_frames=max(frames) + 1, division_rate_per_frame=0.0,
                              death_rate_per_frame=0.0, radius_um=4.0, cell_radius_um=4.0, seed=seed, progress=False,
                              voxel_size_um=voxel_size_um)
        for t in frames:
            img, lab = np.asarray(res.images[t]), np.asarray(res.labels[t], np.int32)
            pairs = touching_pairs(lab)
            if pairs:
                out.append(SimpleNamespace(image=dim_objects(img, lab, [i for q in pairs for i in q], factor),
                                           original=img, labels=lab, pairs=pairs))
    return out


def per_object(reference: np.ndarray, predicted: np.ndarray) -> list[dict[str, float]]:
    """The SEG term of every reference object and how its match differs from it.

    Parameters
    ----------
    reference, predicted : numpy.ndarray
        int label images of equal shape.

    Returns
    -------
    list of dict
        Per reference object: ``jaccard`` (0 unless a predicted object covers more than half of it),
        ``area_ratio`` (matched predicted / reference area; NaN when missed), ``covered`` (fraction
        of the reference inside the match), ``inside`` (fraction of the match inside the
        reference), ``pieces`` (predicted objects each covering > 10 % of it), ``merged`` (reference
        objects the match covers more than half of), ``area_px``.
    """
    from dynacell.metrics.segmentation import overlap_matrix

    ref_ids, pred_ids, ov, iou = overlap_matrix(reference, predicted)
    ref_sizes = np.bincount(np.asarray(reference).ravel())[ref_ids]
    pred_sizes = np.bincount(np.asarray(predicted).ravel(), minlength=int(np.max(predicted)) + 1)
    rows = []
    for k, size in enumerate(ref_sizes):
        row = {"jaccard": 0.0, "area_ratio": float("nan"), "covered": 0.0, "inside": float("nan"),
               "pieces": 0, "merged": 0, "area_px": int(size)}
        if ov.shape[1]:
            b = int(ov[k].argmax())
            row["pieces"] = int((ov[k] > 0.1 * size).sum())
            row["covered"] = float(ov[k, b] / size)
            if 2 * ov[k, b] > size:
                ps = pred_sizes[pred_ids[b]]
                row.update(jaccard=float(iou[k, b]), area_ratio=float(ps / size), inside=float(ov[k, b] / ps),
                           merged=int((2 * ov[:, b] > ref_sizes).sum()))
        rows.append(row)
    return rows


def main() -> None:
    import torch
    from skimage.segmentation import expand_labels

    from dynacell.metrics.segmentation import ctc_seg
    from dynacell.segment import predict as P
    from dynacell.segment.learned import estimate_nucleus_diameter_px, normalize_image
    from dynacell.train.segment import load_frames

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="nuclei-seg-2d-fast")
    p.add_argument("--mode", choices=("diagnose", "grid"), default="diagnose")
    p.add_argument("--grid", default='{"cut": [0.5]}', help="JSON object of lists, or a list of them (see the module docstring)")
    p.add_argument("--ensemble", default=None, help="second model of the ens_flips variants (name or folder)")
    p.add_argument("--markers", action="store_true", help="GOWT1 marker counts on validation frames 21-31")
    p.add_argument("--probe", choices=("none", "dim-pairs"), default="none")
    p.add_argument("--dim-factor", default="0.1",
                   help="brightness of the dimmed pairs of the probe; a comma list scores one probe per value "
                        "(keys probe<F>_merged, ...)")
    p.add_argument("--probe-voxel-um", type=float, default=0.5, help="pixel size of the probe renders (0.13: GOWT1-sized)")
    p.add_argument("--probe-true-size", action="store_true",
                   help="give the probe its reference median nucleus diameter instead of the blob estimate")
    a = p.parse_args()
    torch.set_num_threads(1)

    seg = P.Segmenter.load(a.model)
    ens = P.Segmenter.load(a.ensemble) if a.ensemble else None
    sets: dict[str, list[Any]] = {"gowt1": load_frames("gowt1", "val"), "hela02": load_frames("hela02", "val")}
    if a.markers:
        from types import SimpleNamespace

        import tifffile

        from dynacell.train.segment import DEFAULT_DATA

        g = DEFAULT_DATA / "ctc" / "Fluo-N2DH-GOWT1"
        sets["gowt1_tra"] = [SimpleNamespace(image=tifffile.imread(g / "01" / f"t{t:03d}.tif"),
                                             labels=tifffile.imread(g / "01_GT" / "TRA" / f"man_track{t:03d}.tif"))
                             for t in range(21, 32)]
    factors = [float(v) for v in str(a.dim_factor).split(",")] if a.probe == "dim-pairs" else []
    probes = ["probe"] if len(factors) == 1 else [f"probe{v:g}" for v in factors]
    for key, factor in zip(probes, factors):
        sets[key] = dim_pair_probe(factor, voxel_size_um=a.probe_voxel_um)
    diam = {ds: estimate_nucleus_diameter_px(fr[0].image) for ds, fr in sets.items()}
    if "gowt1_tra" in sets:
        diam["gowt1_tra"] = diam["gowt1"]
    for key in probes:  # from the undimmed frames, as a user's movie would give it (or the reference size)
        from dynacell.segment.learned import lateral_diameters_px

        diam[key] = float(np.median([float(np.median(lateral_diameters_px(f.labels))) if a.probe_true_size
                                     else estimate_nucleus_diameter_px(f.original) for f in sets[key][:8]]))
    maps_cache: dict[tuple, Any] = {}

    def maps_of(model: Any, ds: str, i: int, scale: float, flips: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        key = (id(model), ds, i, scale, flips)
        if key not in maps_cache:
            f = sets[ds][i]
            x = normalize_image(f.image)
            zoom = P._zoom_factors(f.image.shape, diam[ds] * scale, model.card.target_diameter_px, None)
            maps_cache[key] = (dihedral_maps(model, P._resize_linear(x, P._zoomed_shape(x.shape, zoom)), flips), zoom)
        return maps_cache[key]

    def labels_of(ds: str, i: int, scale: float = 1.0, flips: int | None = None, cut: float | None = None,
                  grow: float = 0.0, ens_flips: int = 0, ens_weight: float = 0.5, fullres: int = 0,
                  shifts: int = 1, **over: Any) -> np.ndarray:
        f = sets[ds][i]
        flips = seg.card.test_time_flips if flips is None else int(flips)
        maps, zoom = maps_of(seg, ds, i, scale, flips)
        if ens_flips:
            assert ens is not None, "--ensemble is needed for ens_flips"
            other, _ = maps_of(ens, ds, i, scale, int(ens_flips))
            maps = {k: (1 - ens_weight) * v + ens_weight * other[k] for k, v in maps.items()}
        params = replace(seg.postprocess, **over)
        if fullres and not np.allclose(zoom, 1):  # the watershed of the maps resized to the frame
            up = {k: P._resize_linear(v, f.image.shape) for k, v in maps.items()}
            lab = P.maps_to_instances(seg.card.architecture, up, replace(
                params, min_size_px=int(params.min_size_px / float(np.prod(zoom)))))
            if cut is not None:
                lab[up["foreground"] <= cut] = 0
            lab = P._drop_specks(lab, float(diam[ds] * scale))
            return lab
        lab = P.maps_to_instances(seg.card.architecture, maps, params)
        if not np.allclose(zoom, 1):  # as segment_frame: nearest back, grown one model pixel, cut by the foreground
            fg = P._resize_linear(maps["foreground"], f.image.shape)
            if int(shifts) > 1 and float(np.max(zoom)) <= int(shifts) ** -0.5:  # as segment_frame applies them
                key = ("shifts", ds, i, scale, flips, int(shifts))
                if key not in maps_cache:
                    x = normalize_image(f.image)
                    maps_cache[key] = shifted_foreground(seg, x, maps["foreground"].shape, int(shifts), flips)
                fg = maps_cache[key]
            lab = P._expand_in_box(P._resize_nearest(lab, f.image.shape), max(1.0, float(1 / np.min(zoom))), expand_labels)
            level = params.foreground if cut is None else cut
            if params.outline_intensity_weight > 0:  # the per-object cut, as segment_frame applies it
                from dynacell.segment.learned import cut_outlines_by_object

                lab = cut_outlines_by_object(lab, fg, normalize_image(f.image), threshold=level,
                                             weight=params.outline_intensity_weight,
                                             fraction=params.outline_intensity_fraction,
                                             sigma_px=params.outline_intensity_sigma_px)
            else:
                lab[fg <= level] = 0
        lab = P._drop_specks(lab, float(diam[ds] * scale))
        if grow > 0:
            lab = expand_labels(lab, distance=float(grow))
        elif grow < 0:
            lab = shrink_labels(lab, round(-grow))
        return lab

    if a.mode == "diagnose":
        for ds, frames in sets.items():
            rows = [r for i, f in enumerate(frames) for r in per_object(f.labels, labels_of(ds, i))]
            j = np.array([r["jaccard"] for r in rows])
            ratio = np.array([r["area_ratio"] for r in rows])
            print(json.dumps({
                "dataset": ds, "n_reference": len(rows), "seg": round(float(j.mean()), 4),
                "jaccard_quantiles_0_5_10_25_50_75": [round(float(q), 3) for q in np.quantile(j, [0, .05, .1, .25, .5, .75])],
                "area_ratio_mean": round(float(np.nanmean(ratio)), 3), "area_ratio_median": round(float(np.nanmedian(ratio)), 3),
                "covered_mean": round(float(np.mean([r["covered"] for r in rows])), 3),
                "inside_mean": round(float(np.nanmean([r["inside"] for r in rows])), 3),
                "missed": int((j == 0).sum()), "split": sum(r["pieces"] > 1 for r in rows),
                "merged": sum(r["merged"] > 1 for r in rows),
                "worst": [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}
                          for r in sorted(rows, key=lambda r: r["jaccard"])[:5]]}), flush=True)
        return
    specs = json.loads(a.grid)
    specs = specs if isinstance(specs, list) else [specs]  # a list of grids: their variants one after another
    for kw in (dict(zip(spec, values)) for spec in specs for values in itertools.product(*spec.values())):
        out: dict[str, Any] = dict(kw)
        for ds in ("gowt1", "hela02"):
            s = [ctc_seg(f.labels, labels_of(ds, i, **kw)) for i, f in enumerate(sets[ds])]
            out[f"{ds}_val_seg"] = round(sum(v * n for v, n in s) / sum(n for _, n in s), 4)
        out["mean"] = round((out["gowt1_val_seg"] + out["hela02_val_seg"]) / 2, 4)
        if "gowt1_tra" in sets:
            from segment_postprocess import marker_counts

            c = np.array([marker_counts(labels_of("gowt1_tra", i, **kw), f.labels)
                          for i, f in enumerate(sets["gowt1_tra"])]).sum(0)
            out.update(gowt1_21_31_merges=int(c[0]), gowt1_21_31_no_marker=int(c[1]), gowt1_21_31_missed=int(c[2]),
                       gowt1_21_31_markers=int(c[3]))
        for key in probes:
            merged = missed = n = 0
            for i, f in enumerate(sets[key]):
                lab = labels_of(key, i, **kw)
                for u, v in f.pairs:
                    owner = [owner_of(lab, f.labels == w) for w in (u, v)]
                    n += 1
                    merged += int(owner[0] > 0 and owner[0] == owner[1])
                    missed += sum(o == 0 for o in owner)
            out.update({f"{key}_pairs": n, f"{key}_merged": merged, f"{key}_missed": missed})
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
