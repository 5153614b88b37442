"""A/B of the misattached-daughter repair (``DivisionCheck.reattach``) on demo embryos and real runs.

For each simulated embryo (``dynacell demo``'s simulation: :func:`dynacell.simulate.simulate_embryo`,
3D, 8 → ~40 nuclei, ``min_divisions=4, min_deaths=1``, 30 frames) and each real movie given with its
masks and CTC reference, ``dynacell run`` is run twice on the same inputs, with the repair off and
on, and scored against the reference: states macro-F1 after the joint decision (the demo's rules
for the embryos, the seed's event rules for real movies), per-class F1 of ``death``, division F1,
TRA, and the number of daughters moved.

Usage::

    python benchmarks/states_reattach.py --seeds 204 205 206 [--real NAME MOVIE LABELS GT ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path


def _row(name: str, reattach: bool, result) -> dict:
    ev = result.evaluation or {}
    states = ev.get("states_after") or {}
    death = (states.get("per_class") or {}).get("death") or {}
    with open(Path(result.out) / "run.json") as fh:
        run_json = json.load(fh)
    lin = ev.get("tracking") or {}
    return {"data": name, "reattach": reattach, "n_scored": ev.get("n_scored"),
            "macro_F1": round(states.get("macro_f1", float("nan")), 4),
            "death_F1": round(death["f1"], 3) if death.get("support") else None,
            "division_F1": round(lin.get("division_f1", float("nan")), 4),
            "TRA": round(lin.get("TRA", float("nan")), 4),
            "moved": run_json["division_check"].get("n_reattached", 0)}


def main(argv: list[str] | None = None) -> None:
    """Run the A/B and print one table row per input and setting."""
    from dynacell.demo import DEMO_RULES
    from dynacell.lineage import EventRules
    from dynacell.pipeline import run
    from dynacell.simulate import simulate_embryo
    from dynacell.states.relink import DivisionCheck

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=[])
    ap.add_argument("--real", nargs=4, action="append", default=[], metavar=("NAME", "MOVIE", "LABELS", "GT"))
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    root = a.out or Path(tempfile.mkdtemp(prefix="dynacell-reattach-"))
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    jobs = []
    for seed in a.seeds:
        sim_dir = root / f"sim{seed}"
        if not (sim_dir / "labels").exists():
            simulate_embryo(ndim=3, n_start=8, n_frames=30, min_divisions=4, min_deaths=1, seed=seed,
                            progress=False).save(sim_dir)
        jobs.append((f"demo seed {seed}", sim_dir / "images", sim_dir / "labels", sim_dir / "labels",
                     EventRules(**DEMO_RULES), seed))
    for name, movie, labels, gt in a.real:
        jobs.append((name, Path(movie), Path(labels), Path(gt), None, 0))
    for name, movie, labels, gt, rules, seed in jobs:
        for reattach in (False, True):
            out = root / f"{name.replace(' ', '_')}-{int(reattach)}"
            shutil.rmtree(out, ignore_errors=True)
            kw = {"gt_rules": rules} if rules is not None else {}
            result = run(movie, labels=labels, out=out, gt=gt, seed=seed, progress=False, video=False,
                         division_check=DivisionCheck(reattach=reattach), **kw)
            rows.append(_row(name, reattach, result))
            print(rows[-1], flush=True)
    import pandas as pd

    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
