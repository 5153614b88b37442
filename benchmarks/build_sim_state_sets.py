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

Usage::

    python benchmarks/build_sim_state_sets.py --out /tmp/dynacell_state_sets --n 6 --seed 0
    python benchmarks/build_sim_state_sets.py --out /tmp/dynacell_state_sets --n 10 --lead-frames 0 1 2 \
        --prefix sim2d-lead
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np


def draw(rng: np.random.Generator) -> dict:
    """One colony's randomised simulation parameters (µm, photons, frames)."""
    return {
        "radius_um": float(rng.uniform(3.0, 6.0)),
        "motility_um_per_frame": float(rng.uniform(0.2, 1.5)),
        "division_rate_per_frame": float(rng.uniform(0.08, 0.2)),
        "photons": float(rng.uniform(20.0, 200.0)),
        "background_photons": float(rng.uniform(2.0, 30.0)),
        "psf_sigma_um": (1.0, *(2 * [float(rng.uniform(0.15, 0.6))])),
        "texture_amplitude": float(rng.uniform(0.05, 0.45)),
        "brightness_sd": float(rng.uniform(0.05, 0.3)),
    }


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
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    rules = EventRules(stable_window=2, stable_fraction=2.0)
    for k in range(args.n):
        p = draw(rng)
        p["mitosis_lead_frames"] = int(args.lead_frames[k % len(args.lead_frames)])
        app = AppearanceParams(texture_amplitude=p["texture_amplitude"], brightness_sd=p["brightness_sd"],
                               mitosis_lead_frames=p["mitosis_lead_frames"])
        name = f"{args.prefix}-{k}"
        sim = simulate_embryo(ndim=2, n_start=12, n_frames=args.frames, radius_um=p["radius_um"],
                              division_rate_per_frame=p["division_rate_per_frame"],
                              motility_um_per_frame=p["motility_um_per_frame"], min_divisions=6,
                              appearance=app, seed=args.seed * 1000 + k, progress=False,
                              photons=p["photons"], background_photons=p["background_photons"],
                              psf_sigma_um=p["psf_sigma_um"])
        images = Movie(sim.images, "TYX", source=name)
        labels = Movie(sim.labels, "TYX", source=f"{name} labels")
        full = build_sample_set(images, labels, sim.lineage, rules, size=48, dataset=name,
                                target_diameter_px=18.0, states=("stable", "mitotic", "new_daughter", "death"),
                                seed=args.seed, progress=False, context=True)
        keep = full.meta.index[full.meta["state"] != "stable"].to_numpy()
        stable = full.meta.index[full.meta["state"] == "stable"].to_numpy()
        if len(stable) > args.max_stable:
            stable = np.random.default_rng(args.seed + k).choice(stable, args.max_stable, replace=False)
        ss = full.subset(sorted([*keep.tolist(), *stable.tolist()]))
        ss.attrs["simulation"] = {"seed": args.seed * 1000 + k, **{key: str(v) for key, v in p.items()}}
        path = ss.save(args.out / f"{name}-d18c.npz", overwrite=True)
        print(f"{name}: {path} {ss.counts()} {p}", flush=True)


if __name__ == "__main__":
    main()
