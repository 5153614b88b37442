"""Rendered 2D colonies as state-classifier training data, with domain randomisation.

Each colony is simulated and rendered by :func:`dynacell.simulate.simulate_embryo` (``ndim=2``: a
colony in a dish, divisions with prophase / metaphase plate / anaphase appearance, apoptotic deaths)
with its own draw of nucleus radius, brightness, background, texture, PSF, motility and frame
interval (seeded), then cropped exactly like the real sets of ``build_state_sets.py``
(nucleus-size rule: median diameter 18 crop px, 48 × 48 crops, segmentation context) with the
simulator's ground-truth labels and lineage. One ``.npz`` per colony (dataset ``<prefix>-<k>``), so a
split by lineage tree stays inside a colony.

``--lead-frames 0 1 2`` gives colony ``k`` the mitosis lead ``lead_frames[k % len]``
(:class:`dynacell.simulate.params.AppearanceParams` ``mitosis_lead_frames``): the mother's last frame
shows anaphase (0), the metaphase plate (1) or condensed chromatin (2), as with frame intervals from
minutes to half an hour (HeLa 02: 30 min). The default ``0`` reproduces the earlier sets exactly.

``--ranges ood`` draws every colony from ranges *outside* the training draw (:data:`OOD_RANGES`:
larger nuclei sampled by finer pixels, fewer photons on a brighter background, a wider PSF, coarser
texture, and a longer frame interval — more motion, faster divisions and shorter cell cycles per
frame): an out-of-distribution check that no model trained on the default draw has seen (use another
``--seed`` as well).

``--kind rods`` renders phase-contrast colonies of rod-shaped bacteria instead
(:func:`dynacell.simulate.rods.simulate_rod_colony`: capsules that elongate over the cell cycle and
pinch at a septum into two daughters, dark on a bright halo; :data:`dynacell.simulate.rods.ROD_RANGES` drawn per colony by
:func:`draw_rods`), the counterpart of the phase-contrast ``bacteria-phc`` movie. The states follow the
same rules as the real sets (the mother's last frame before the daughters get their own labels is
``mitotic``, each daughter's first frame ``new_daughter``, stable with the stability window W = 2), the
crops the same nucleus-size rule. ``--range KEY LO HI`` replaces a range of :data:`ROD_RANGES`,
``--target-cells`` the colony size.

Usage::

    python benchmarks/build_sim_state_sets.py --out /tmp/dynacell_state_sets --n 6 --seed 0
    python benchmarks/build_sim_state_sets.py --out /tmp/dynacell_state_sets --n 10 --lead-frames 0 1 2 \
        --prefix sim2d-lead
    python benchmarks/build_sim_state_sets.py --out /tmp/dynacell_state_sets --n 6 --seed 2 --frames 30 \
        --lead-frames 1 2 --ranges ood --prefix sim2d-ood
    python benchmarks/build_sim_state_sets.py --out /tmp/lodo/sets --n 10 --seed 3 --frames 30 \
        --lead-frames 1 2 --ranges ood --prefix sim2d-wide   # LODO training side, docs/states-generalisation.md
    python benchmarks/build_sim_state_sets.py --out /tmp/dynacell_state_sets --kind rods --n 10 --seed 0 \
        --frames 24 --prefix rods2d
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from dynacell.simulate.rods import ROD_RANGES, ROD_TARGET_CELLS, draw_rods

#: Uniform ranges of the default (training) draw; fixed in the simulator's defaults: pixel 0.5 µm,
#: minimum cell cycle 6 frames.
TRAIN_RANGES: dict[str, tuple[float, float]] = {
    "radius_um": (3.0, 6.0), "motility_um_per_frame": (0.2, 1.5), "division_rate_per_frame": (0.08, 0.2),
    "photons": (20.0, 200.0), "background_photons": (2.0, 30.0), "psf_sigma_xy_um": (0.15, 0.6),
    "texture_amplitude": (0.05, 0.45), "brightness_sd": (0.05, 0.3),
}
#: Out-of-distribution draw (``--ranges ood``): every range outside :data:`TRAIN_RANGES` (or beside its
#: edge), plus a pixel size and a minimum cell cycle that the training draw never varies. Larger nuclei
#: on finer pixels, lower signal-to-noise, a wider PSF, coarser texture, and the motion / division
#: statistics of a longer frame interval.
OOD_RANGES: dict[str, tuple[float, float]] = {
    "radius_um": (6.5, 9.0), "motility_um_per_frame": (1.5, 2.5), "division_rate_per_frame": (0.2, 0.3),
    "photons": (10.0, 20.0), "background_photons": (20.0, 40.0), "psf_sigma_xy_um": (0.6, 0.9),
    "texture_amplitude": (0.45, 0.7), "brightness_sd": (0.3, 0.4),
    "pixel_um": (0.3, 0.4), "min_cycle_frames": (4, 4),
}


def draw(rng: np.random.Generator, ranges: dict[str, tuple[float, float]] | None = None) -> dict:
    """One colony's randomised simulation parameters (µm, photons, frames).

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws, in a fixed order (the default ranges reproduce the earlier sets exactly).
    ranges : dict, optional
        Uniform ranges (:data:`TRAIN_RANGES`, the default, or :data:`OOD_RANGES`); the optional keys
        ``pixel_um`` (Y/X pixel size) and ``min_cycle_frames`` are drawn after the others.

    Returns
    -------
    dict
        Keyword values for :func:`dynacell.simulate.simulate_embryo` and ``AppearanceParams``.
    """
    r = TRAIN_RANGES if ranges is None else ranges
    p = {
        "radius_um": float(rng.uniform(*r["radius_um"])),
        "motility_um_per_frame": float(rng.uniform(*r["motility_um_per_frame"])),
        "division_rate_per_frame": float(rng.uniform(*r["division_rate_per_frame"])),
        "photons": float(rng.uniform(*r["photons"])),
        "background_photons": float(rng.uniform(*r["background_photons"])),
        "psf_sigma_um": (1.0, *(2 * [float(rng.uniform(*r["psf_sigma_xy_um"]))])),
        "texture_amplitude": float(rng.uniform(*r["texture_amplitude"])),
        "brightness_sd": float(rng.uniform(*r["brightness_sd"])),
    }
    if "pixel_um" in r:
        p["voxel_size_um"] = (2.0, *(2 * [float(rng.uniform(*r["pixel_um"]))]))
    if "min_cycle_frames" in r:
        p["min_cycle_frames"] = int(rng.integers(r["min_cycle_frames"][0], r["min_cycle_frames"][1] + 1))
    return p


def build_rods(args, rules) -> None:
    """``--kind rods``: simulate, render and crop the phase-contrast rod colonies."""
    from dynacell.io import Movie
    from dynacell.samples import build_sample_set
    from dynacell.simulate.rods import (
        PhaseContrastParams,
        RodColonyParams,
        simulate_rod_colony,
    )

    ranges = dict(ROD_RANGES)
    for key, lo, hi in args.range:
        if key not in ranges:
            raise SystemExit(f"--range: unknown key {key!r}; one of {sorted(ranges)}")
        ranges[key] = (float(lo), float(hi))
    rng = np.random.default_rng(args.seed)
    for k in range(args.n):
        p = draw_rods(rng, ranges, args.frames, args.target_cells)
        name = f"{args.prefix}-{k}"
        seed = args.seed * 1000 + k
        sim = simulate_rod_colony(RodColonyParams(**p["colony"]), PhaseContrastParams(**p["imaging"]),
                                  n_start=p["n_start"], n_frames=args.frames, min_divisions=6, seed=seed)
        images = Movie(sim.images, "TYX", source=name)
        labels = Movie(sim.labels, "TYX", source=f"{name} labels")
        full = build_sample_set(images, labels, sim.lineage, rules, size=48, dataset=name,
                                target_diameter_px=18.0, states=("stable", "mitotic", "new_daughter", "death"),
                                seed=args.seed, progress=False, context=True)
        _save_subset(full, args, k, name, {"seed": seed, "kind": "rods", "n_start": str(p["n_start"]),
                                           **{key: str(x) for key, x in {**p["colony"], **p["imaging"]}.items()}})


def _save_subset(full, args, k: int, name: str, simulation: dict) -> None:
    """Keep every event and at most ``--max-stable`` stable crops (seeded), record the draw, save."""
    keep = full.meta.index[full.meta["state"] != "stable"].to_numpy()
    stable = full.meta.index[full.meta["state"] == "stable"].to_numpy()
    if len(stable) > args.max_stable:
        stable = np.random.default_rng(args.seed + k).choice(stable, args.max_stable, replace=False)
    ss = full.subset(sorted([*keep.tolist(), *stable.tolist()]))
    ss.attrs["simulation"] = simulation
    path = ss.save(args.out / f"{name}-d18c.npz", overwrite=True)
    print(f"{name}: {path} {ss.counts()} {simulation}", flush=True)


def main() -> None:
    """Simulate, render and crop the colonies; print their class counts."""
    from dynacell.io import Movie
    from dynacell.lineage import EventRules
    from dynacell.samples import build_sample_set
    from dynacell.simulate import simulate_embryo
    from dynacell.simulate.params import AppearanceParams

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/dynacell_state_sets"))
    ap.add_argument("--n", type=int, default=6, help="colonies")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-stable", type=int, default=600)
    ap.add_argument("--lead-frames", type=int, nargs="+", default=[0],
                    help="mitosis lead frames, cycled over the colonies (see the module docstring)")
    ap.add_argument("--prefix", default="sim2d", help="dataset / file name prefix")
    ap.add_argument("--ranges", choices=["train", "ood"], default="train",
                    help="parameter draw: the training ranges or the out-of-distribution ones (OOD_RANGES)")
    ap.add_argument("--kind", choices=["nuclei", "rods"], default="nuclei",
                    help="fluorescent nuclei (simulate_embryo) or phase-contrast rod colonies (simulate_rod_colony)")
    ap.add_argument("--range", nargs=3, action="append", default=[], metavar=("KEY", "LO", "HI"),
                    help="rods: replace ROD_RANGES[KEY] by (LO, HI), e.g. --range halo_strength 0 0.3 (repeatable)")
    ap.add_argument("--target-cells", type=int, default=ROD_TARGET_CELLS,
                    help="rods: cells a colony grows to (sets its start count)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    rules = EventRules(stable_window=2, stable_fraction=2.0)
    if args.kind == "rods":
        build_rods(args, rules)
        return
    rng = np.random.default_rng(args.seed)
    for k in range(args.n):
        p = draw(rng, OOD_RANGES if args.ranges == "ood" else TRAIN_RANGES)
        extra = {k: p[k] for k in ("voxel_size_um", "min_cycle_frames") if k in p}
        p["mitosis_lead_frames"] = int(args.lead_frames[k % len(args.lead_frames)])
        app = AppearanceParams(texture_amplitude=p["texture_amplitude"], brightness_sd=p["brightness_sd"],
                               mitosis_lead_frames=p["mitosis_lead_frames"])
        name = f"{args.prefix}-{k}"
        sim = simulate_embryo(ndim=2, n_start=12, n_frames=args.frames, radius_um=p["radius_um"],
                              division_rate_per_frame=p["division_rate_per_frame"],
                              motility_um_per_frame=p["motility_um_per_frame"], min_divisions=6,
                              appearance=app, seed=args.seed * 1000 + k, progress=False,
                              photons=p["photons"], background_photons=p["background_photons"],
                              psf_sigma_um=p["psf_sigma_um"], **extra)
        images = Movie(sim.images, "TYX", source=name)
        labels = Movie(sim.labels, "TYX", source=f"{name} labels")
        full = build_sample_set(images, labels, sim.lineage, rules, size=48, dataset=name,
                                target_diameter_px=18.0, states=("stable", "mitotic", "new_daughter", "death"),
                                seed=args.seed, progress=False, context=True)
        _save_subset(full, args, k, name, {"seed": args.seed * 1000 + k, **{key: str(v) for key, v in p.items()}})


if __name__ == "__main__":
    main()
