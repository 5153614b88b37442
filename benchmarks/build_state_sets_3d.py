"""Build the domain-randomised 3D sample set for ``nuclei-3d`` (WormGUIDES renders + simulated embryos).

Two sources, both rendered by :mod:`dynacell.simulate` and cropped with the one crop function
(:func:`dynacell.samples.iter_frame_crops`) to ``size³`` voxels of ``target_voxel_um`` µm:

1. **WormGUIDES** (``../shared/data/lineages/wormguides-celegans``: the real C. elegans lineage,
   663 divisions, 113 annotated programmed cell deaths) rendered by
   :func:`dynacell.simulate.render_lineage` in chunks of consecutive frames. Every chunk is
   rendered with its own imaging and appearance draw (:func:`random_imaging`,
   :func:`random_appearance`: domain randomisation, Tobin et al. 2017, *IROS*; half of the draws
   around :meth:`ImagingParams.mouse_lightsheet`, half around the default light-sheet model).
   States from the *whole* lineage with ``EventRules.annotated_deaths()`` (deaths only where
   annotated). ``sublineage`` (ABal, ABar, ABpl, ABpr, MS, E, C, D, P4) from the cell name, so
   that whole sublineages are held out (``split.test_groups``).
2. **Simulated embryos** (:func:`dynacell.simulate.simulate_embryo`, 3D, 30 frames, ≥ 4 divisions
   and ≥ 1 death) with seeds ``--embryo-seeds`` (training: 100–119; seed 0 is the demo's and is
   only ever a test embryo), each with its own imaging/appearance draw. Their cell cycles
   (~6–12 frames) are shorter than the seed rule's stability window (W = 8, 12 stable nodes
   needed), so with ``EventRules.seed()`` almost no node is ``stable``; they are labelled with
   :data:`EMBRYO_RULES` (W = 2, fraction 2.0: stable = all 4 neighbours within ±2 frames are
   directly stable; 1 mitotic frame, 1 new-daughter frame; a track end before the last frame is a
   death, exact in these simulations). ``sublineage`` is ``embryo-SSS`` (the seed), one group
   per embryo.

Every mitotic, new-daughter and death node is kept, plus a random subsample of stable nodes.

Usage::

    python benchmarks/build_state_sets_3d.py --out /tmp/dynacell_state_sets/nuclei-3d-dr.npz
    python benchmarks/build_state_sets_3d.py --out /tmp/x.npz --frames 0 0 --embryo-seeds 0 200 201 202

Prints the samples per state and group.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lineages" / "wormguides-celegans"

#: Sublineages of C. elegans (Sulston et al. 1983) by name prefix: the four AB great-granddaughter
#: sublineages (ABal, ABar, ABpl, ABpr; AB holds 70% of the cells), the founders MS, E, C, D, P4
#: (Z2/Z3 are P4's daughters), AB for AB, ABa, ABp themselves; anything earlier is P0.
SUBLINEAGES = ("ABal", "ABar", "ABpl", "ABpr", "AB", "MS", "E", "C", "D", "P4", "Z2", "Z3")

#: Event rules of the simulated embryos (short cell cycles): the seed's rules with W = 2 and
#: fraction 2.0, as for the 2D model (benchmarks/build_state_sets.py). Also the demo's rule.
EMBRYO_RULES = {"stable_window": 2, "stable_fraction": 2.0}

#: Voxel and PSF ranges (µm) of the WormGUIDES renders with ``--wg-fine``: the defaults of
#: :func:`random_imaging` are mouse-like (z 1–2.5 µm for ~16 µm nuclei), which leaves a late
#: C. elegans nucleus (~2.3 µm; diameter_px 14 × 0.1625 µm) one z slice thick. These keep the
#: voxel/nucleus ratios of the mouse-like draws (z ≈ ⅙–⅓ of a diameter).
WG_RANGES = {"voxel_z_um": (0.35, 0.9), "voxel_xy_um": (0.12, 0.35), "psf_z_um": (0.3, 0.9),
             "psf_xy_um": (0.08, 0.25)}


def sublineage(name: str) -> str:
    """Sublineage of a C. elegans cell name (``ABplpa`` → ``ABpl``; ``Z2`` → ``P4``; ``EMS`` → ``P0``)."""
    name = str(name)
    if name in ("EMS", "P0", "P1", "P2", "P3"):
        return "P0"
    for f in SUBLINEAGES:
        if name.startswith(f):
            return "P4" if f in ("Z2", "Z3") else f
    return "P0"


def tree_id(name: str) -> int:
    """Integer id of :func:`sublineage` (1-based index in SUBLINEAGES; 0 for P0)."""
    sub = sublineage(name)
    return SUBLINEAGES.index(sub) + 1 if sub in SUBLINEAGES else 0


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def random_imaging(rng: np.random.Generator, *, max_xy_um: float = 0.9, last_frame: int = 30,
                   voxel_z_um: tuple[float, float] = (1.0, 2.5), voxel_xy_um: tuple[float, float] | None = None,
                   psf_z_um: tuple[float, float] = (0.6, 2.2), psf_xy_um: tuple[float, float] = (0.15, 0.6)):
    """Draw a microscope model for domain randomisation.

    Half of the draws start from :meth:`ImagingParams.mouse_lightsheet` (the real mouse
    8-cell embryo's photon budget), half from the default ``ImagingParams()``; then photons
    (log-uniform 5–150 per voxel), background (log-uniform 1–20), read noise (0.5–8 ADU),
    gain (0.5–3 ADU/photon), offset (0–1000 ADU), PSF σ (z 0.6–2.2 µm, xy 0.15–0.6 µm),
    voxel size (z 1–2.5 µm, xy 0.35–``max_xy_um`` µm, so z/xy anisotropy ~1.1–7) and
    bleaching (signal lost by ``last_frame``: 0–50 %) are drawn independently.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the draws.
    max_xy_um : float
        Upper bound of the xy voxel size (µm).
    last_frame : int
        Last rendered frame number: the renderer bleaches frame ``t`` by
        ``exp(-rate * t)`` with the *lineage* frame number ``t`` (e.g. 359 for WormGUIDES), so the
        rate is drawn as a loss at this frame, not per frame.
    voxel_z_um, voxel_xy_um, psf_z_um, psf_xy_um : pair of float
        Uniform ranges of the voxel size and PSF σ (µm); ``voxel_xy_um`` defaults to
        ``(0.35, max_xy_um)``. The WormGUIDES renders use ranges scaled to its ~2–6 µm nuclei
        (:data:`WG_RANGES`), the embryos the defaults (mouse-like, ~16 µm nuclei).

    Returns
    -------
    dynacell.simulate.ImagingParams
    """
    from dynacell.simulate import ImagingParams

    base = ImagingParams.mouse_lightsheet() if rng.random() < 0.5 else ImagingParams()
    vxy = (0.35, max_xy_um) if voxel_xy_um is None else voxel_xy_um
    z, xy = rng.uniform(*voxel_z_um), rng.uniform(*vxy)
    sz, sxy = rng.uniform(*psf_z_um), rng.uniform(*psf_xy_um)
    return base.with_overrides(
        voxel_size_um=(z, xy, xy), psf_sigma_um=(sz, sxy, sxy),
        photons=_log_uniform(rng, 5.0, 150.0), background_photons=_log_uniform(rng, 1.0, 20.0),
        read_noise_adu=rng.uniform(0.5, 8.0), gain_adu_per_photon=rng.uniform(0.5, 3.0),
        offset_adu=rng.uniform(0.0, 1000.0),
        bleach_rate_per_frame=-np.log1p(-rng.uniform(0.0, 0.5)) / max(int(last_frame), 1),
    )


def random_appearance(rng: np.random.Generator):
    """Draw a nucleus appearance model: texture (amplitude 0–0.5, scale 1–3.5 µm), brightness spread
    between nuclei (s.d. 0.05–0.35) and shape jitter (0.05–0.2); other fields as ``AppearanceParams()``.

    Returns
    -------
    dynacell.simulate.AppearanceParams
    """
    import dataclasses

    from dynacell.simulate import AppearanceParams

    return dataclasses.replace(
        AppearanceParams(), texture_amplitude=rng.uniform(0.0, 0.5), texture_scale_um=rng.uniform(1.0, 3.5),
        brightness_sd=rng.uniform(0.05, 0.35), shape_jitter=rng.uniform(0.05, 0.2))


def _domain(imaging, appearance) -> str:
    vs = imaging.voxel_size_um
    return (f"vox {vs[0]:.2f}x{vs[1]:.2f} psf {imaging.psf_sigma_um[0]:.2f}/{imaging.psf_sigma_um[1]:.2f} "
            f"ph {imaging.photons:.0f} bg {imaging.background_photons:.0f} rn {imaging.read_noise_adu:.1f} "
            f"bl {imaging.bleach_rate_per_frame:.4f} tex {appearance.texture_amplitude:.2f}")


def _keep(states: dict, nodes: list, n_stable: int, rng: np.random.Generator) -> list:
    stable = [n for n in nodes if states[n] == "stable"]
    events = [n for n in nodes if states[n] in ("mitotic", "new_daughter", "death")]
    if len(stable) > n_stable:
        stable = [stable[i] for i in sorted(rng.choice(len(stable), n_stable, replace=False))]
    return sorted(events + stable)


def _crops(images, labels, chosen, size, target, offset=0, context=False, diameter=None, scales=None):
    """Crops of the chosen nodes; with ``diameter`` the nucleus-size rule (µm) sets the crop voxel per movie."""
    by_t: dict[int, list[int]] = {}
    for t, label in chosen:
        by_t.setdefault(t - offset, []).append(label)
    from dynacell.samples import iter_frame_crops

    kw = {"target_voxel_um": target}
    if diameter is not None:
        from dynacell.samples.scale import scale_crop_kwargs, scale_normalization

        sc = scale_normalization(labels, diameter, voxel_size_um=images.voxel_size_um)
        kw = scale_crop_kwargs(sc, 3)
        if scales is not None:
            scales.append(round(float(sc["target_voxel_um"]), 4))
    for fc in iter_frame_crops(images, labels, frames=sorted(by_t), size=size, label_ids=by_t, context=context,
                               **kw):
        for i, label in enumerate(fc.label_ids.tolist()):
            yield fc.t + offset, label, fc.x[i], fc.centroids[i]


def wormguides(args, rng, xs, rows) -> None:
    """Render WormGUIDES chunks, one imaging draw each, and append crops and rows."""
    from dynacell.lineage import read_lineage
    from dynacell.simulate import ground_truth_states, render_lineage

    lin = read_lineage(args.data)
    states = ground_truth_states(lin)
    nodes = [n for n in sorted(states) if args.frames[0] <= n[0] < args.frames[1]]
    chosen = _keep(states, nodes, args.stable, rng)
    ts = sorted({t for t, _ in chosen})
    for c0 in range(0, len(ts), args.chunk):
        block = ts[c0:c0 + args.chunk]
        lo, hi = max(block[0] - 1, 0), min(block[-1] + 1, lin.n_frames - 1)
        imaging = random_imaging(rng, last_frame=hi, **(WG_RANGES if args.wg_fine else {}))
        appearance = random_appearance(rng)
        t1 = time.perf_counter()
        res = render_lineage(lin, frames=range(lo, hi + 1), scale=args.scale, imaging=imaging,
                             appearance=appearance, seed=args.seed + c0, progress=False)
        images, labels = res.to_movies()
        sel = [n for n in chosen if block[0] <= n[0] <= block[-1]]
        for t, label, x, c in _crops(images, labels, sel, args.size, args.target_voxel_um, offset=lo,
                                     context=args.context, diameter=args.target_diameter, scales=args.scales):
            d = lin.graph.nodes[(t, label)]
            xs.append(x)
            rows.append({"dataset": "wormguides", "t": t, "label": label, "track_id": int(d.get("track_id", -1)),
                         "tree_id": tree_id(d.get("name", "")), "state": states[(t, label)],
                         "z": c[0], "y": c[1], "x": c[2], "sublineage": sublineage(d.get("name", "")),
                         "name": str(d.get("name", "")), "domain": _domain(imaging, appearance)})
        print(f"wormguides frames {lo}-{hi} [{_domain(imaging, appearance)}]: {len(xs)} crops, "
              f"{time.perf_counter() - t1:.0f} s", flush=True)


def embryos(args, rng, xs, rows) -> None:
    """Simulate one embryo per seed, one imaging draw each, and append crops and rows."""
    from dynacell.lineage import EventRules, label_events
    from dynacell.simulate import simulate_embryo

    rules = EventRules(**EMBRYO_RULES)
    for s in args.embryo_seeds:
        er = np.random.default_rng([args.seed, 7, s])
        imaging, appearance = random_imaging(er, max_xy_um=1.0, last_frame=29), random_appearance(er)
        t1 = time.perf_counter()
        sim = simulate_embryo(ndim=3, n_start=int(er.integers(6, 13)), n_frames=30, min_divisions=4, min_deaths=1,
                              death_rate_per_frame=float(er.uniform(0.01, 0.03)), imaging=imaging,
                              appearance=appearance, seed=int(s), progress=False)
        states = label_events(sim.lineage, rules)
        chosen = _keep(states, sorted(states), args.embryo_stable, er)
        images, labels = sim.to_movies()
        for t, label, x, c in _crops(images, labels, chosen, args.size, args.target_voxel_um, context=args.context,
                                     diameter=args.target_diameter, scales=args.scales):
            d = sim.lineage.graph.nodes[(t, label)]
            xs.append(x)
            rows.append({"dataset": "sim-embryo", "t": t, "label": label, "track_id": int(d.get("track_id", -1)),
                         "tree_id": int(s), "state": states[(t, label)], "z": c[0], "y": c[1], "x": c[2],
                         "sublineage": f"embryo-{s:03d}", "name": "", "domain": _domain(imaging, appearance)})
        print(f"embryo seed {s} [{_domain(imaging, appearance)}]: {len(xs)} crops, "
              f"{time.perf_counter() - t1:.0f} s", flush=True)


def main() -> None:
    """Render, crop and save the set."""
    from dynacell.samples import SampleSet
    from dynacell.samples.crops import CHANNELS, CONTEXT_CHANNELS, NORMALIZATION

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/dynacell_state_sets/nuclei-3d-dr.npz"))
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--size", type=int, default=24, help="crop edge, voxels")
    ap.add_argument("--target-voxel-um", type=float, default=1.0, help="isotropic crop voxel, µm")
    ap.add_argument("--scale", type=float, default=0.5, help="WormGUIDES render scale (voxel = imaging voxel / scale)")
    ap.add_argument("--stable", type=int, default=2000, help="random WormGUIDES stable nodes kept")
    ap.add_argument("--chunk", type=int, default=20, help="WormGUIDES frames rendered per imaging draw")
    ap.add_argument("--frames", type=int, nargs=2, default=[205, 360], help="WormGUIDES frames [a, b); a == b: none")
    ap.add_argument("--embryo-seeds", type=int, nargs="*", default=[*range(100, 120), 0, 200, 201, 202, 203],
                    help="embryo seeds (training 100-117, validation 118-119, test 0 and 200-203)")
    ap.add_argument("--embryo-stable", type=int, default=60, help="random stable nodes kept per embryo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target-diameter", type=float, default=None,
                    help="nucleus-size rule in µm: crop voxel = median nucleus diameter / this (per rendered movie); "
                         "default: fixed --target-voxel-um")
    ap.add_argument("--wg-fine", action="store_true",
                    help="WormGUIDES voxel/PSF ranges scaled to its small nuclei (WG_RANGES); use with --scale 1")
    ap.add_argument("--context", action="store_true",
                    help="add the segmentation-context channels seg t-1, seg t+1 from the rendered labels (6 channels)")
    args = ap.parse_args()
    args.scales = []
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    xs: list[np.ndarray] = []
    rows: list[dict] = []
    if args.frames[1] > args.frames[0]:
        wormguides(args, rng, xs, rows)
    if args.embryo_seeds:
        embryos(args, rng, xs, rows)
    meta = pd.DataFrame(rows)
    attrs = {"dataset": "wormguides+sim-embryo", "size": [args.size] * 3, "target_voxel_um": args.target_voxel_um,
             "render": {"scale": args.scale, "seed": args.seed, "chunk": args.chunk,
                        "domain_randomisation": "benchmarks/build_state_sets_3d.py random_imaging/random_appearance"},
             "rules": {"wormguides": "EventRules.annotated_deaths (simulate.default_rules)",
                       "sim-embryo": f"EventRules({EMBRYO_RULES}) (track ends = deaths)"},
             "frames": args.frames, "embryo_seeds": list(args.embryo_seeds),
             "stable_subsample": {"wormguides": args.stable, "per_embryo": args.embryo_stable},
             "sources": {"lineage": str(args.data)}, "normalization": NORMALIZATION,
             "channels": list(CONTEXT_CHANNELS if args.context else CHANNELS),
             "wg_ranges": WG_RANGES if args.wg_fine else None}
    if args.target_diameter is not None:
        attrs["target_voxel_um"] = None
        attrs["scale_normalization"] = {
            "method": "nucleus-size", "units": "um", "target_diameter_px": args.target_diameter, "n_frames": 3,
            "per_part": {"crop_voxel_um_min": min(args.scales), "crop_voxel_um_median": float(np.median(args.scales)),
                         "crop_voxel_um_max": max(args.scales), "parts": len(args.scales)}}
    ss = SampleSet(np.stack(xs), meta, attrs)
    ss.save(args.out, overwrite=True)
    print(f"wrote {args.out}: {ss.counts()} in {time.perf_counter() - t0:.0f} s")
    print(meta.groupby(["sublineage", "state"]).size().unstack(fill_value=0).to_string())


if __name__ == "__main__":
    main()
