"""Benchmark of the main job (``dynacell run``): wall time, nuclei per second and peak memory.

Part 1 runs the four real runs of issue 4 on ../shared/data (each in a fresh process, its own peak
RSS read from its ``run.json``):

1. mouse-8cell (real 3D light-sheet embryo) with its labels (no voxel size: it is not in the data);
2. Fluo-N2DL-HeLa 02 with the error-prone 02_ERR_SEG masks, scored with ``--gt 02_GT``;
3. bacteria-phc 01 with the 01_GT/TRA masks, scored with ``--gt 01_GT``;
4. Fluo-N3DH-CHO 02 (3D) with 02_ERR_SEG (voxel 1.0 × 0.202 × 0.202 µm from the data README);
5. Fluo-N2DH-GOWT1 01 with its 01_GT/TRA masks, no ``--gt`` (92 frames, 2,052 nuclei: the stand-in for the
   "65-frame 2D movie with ~2,600 nuclei in ≤ 10 s" target of issue 11);
6. the same run scored with ``--gt 01_GT`` (its ``evaluate`` step: the "scoring ≤ 5 s" target on that movie).

Part 2 checks how memory grows with the number of frames: a simulated 3D embryo with a
constant number of nuclei (no division, no death) is written to disk at 1×, 2× and 4× a base
length, and the main job runs on each in a fresh process. The label movie is read once into
memory when it fits 1 GiB (``dynacell.io.movie.load_in_memory``), so peak memory grows with the
length up to that budget; beyond it the labels are streamed frame by frame and memory stays flat.

Usage::

    python benchmarks/run.py [--model2d NAME|PATH] [--model3d NAME|PATH] [--base-frames 20]
                             [--skip-real] [--skip-scaling] [--out /tmp/dynacell-bench-run]
                             [--threads 2] [--video] [--only NAME ...] [--exact] [--repeat N]

Outputs go to ``--out`` (default under /tmp). Prints one table per part, then the nuclei per second
of every step of each run beside the state model alone on random crops (same thread count), the same
per CPU-second of the run's process (``run.json`` ``timings_cpu_s``: on a shared machine wall time is an
upper bound, CPU time the comparable figure), the CPU-seconds of each step, and the machine's load
average before and after each run (compare runs at the same load). Runs are ``--no-video`` unless ``--video``; ``--threads`` sets ``OMP_NUM_THREADS`` (torch
threads) of every run.

``--repeat N`` runs each chosen real run N times in turn (fresh processes, round after round) and ends with one line
per run: wall seconds and classify nuclei per second (min / median / max), and how many of the N runs met issue 11's
targets (whole process ≤ 10 s wall; 2D classify step ≥ 1,000 nuclei/s wall, 3D ≥ 200). ``--exact`` takes the
``--only`` names as whole run names (``--only "GOWT1 01 TRA" --exact`` runs GOWT1 without its ``--gt`` twin).
The quiet-machine check of the 2D targets::

    python benchmarks/run.py --skip-scaling --only "GOWT1 01 TRA" --exact --threads 2 --repeat 6
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def real_cases(model2d: str | None, model3d: str | None) -> list[tuple[str, list[str]]]:
    """(name, CLI arguments after ``dynacell run``) of the real runs."""
    ctc = DATA / "ctc"
    m2 = ["--model", model2d] if model2d else []
    m3 = ["--model", model3d] if model3d else []
    return [
        # voxel size not in the data: run in pixels (with BlastoSPIM's assumed 2.0 x 0.208 x 0.208 µm the
        # linker makes 3 false divisions, see docs/results.md)
        ("mouse-8cell 3D", [str(DATA / "embryo3d/mouse-8cell/images"), "--labels",
                            str(DATA / "embryo3d/mouse-8cell/labels"), *m3]),
        ("HeLa 02 ERR_SEG", [str(ctc / "Fluo-N2DL-HeLa/02"), "--labels", str(ctc / "Fluo-N2DL-HeLa/02_ERR_SEG"),
                             "--gt", str(ctc / "Fluo-N2DL-HeLa/02_GT"), "--voxel-size-um", "0.645", "0.645",
                             *m2]),
        ("bacteria-phc 01 GT", [str(ctc / "bacteria-phc/01"), "--labels", str(ctc / "bacteria-phc/01_GT/TRA"),
                                "--gt", str(ctc / "bacteria-phc/01_GT"), *m2]),
        ("CHO 02 3D ERR_SEG", [str(ctc / "Fluo-N3DH-CHO/02"), "--labels", str(ctc / "Fluo-N3DH-CHO/02_ERR_SEG"),
                               "--voxel-size-um", "1.0", "0.202", "0.202", *m3]),
        ("GOWT1 01 TRA", [str(ctc / "Fluo-N2DH-GOWT1/01"), "--labels", str(ctc / "Fluo-N2DH-GOWT1/01_GT/TRA"), *m2]),
        # the same run scored against 01_GT: the "scoring against a reference (--gt) <= 5 s" target of issue 11
        # on its stand-in movie (the evaluate step)
        ("GOWT1 01 TRA --gt", [str(ctc / "Fluo-N2DH-GOWT1/01"), "--labels", str(ctc / "Fluo-N2DH-GOWT1/01_GT/TRA"),
                               "--gt", str(ctc / "Fluo-N2DH-GOWT1/01_GT"), *m2]),
    ]


def load_average() -> str:
    """The 1-minute load average of the machine (``-`` where unknown)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "-"


def run_case(args: list[str], out: Path, threads: int | None = None, video: bool = False) -> dict:
    """Run ``dynacell run`` in a fresh process; return wall time, run.json counts, peak RSS and scores."""
    cmd = [sys.executable, "-m", "dynacell.cli.main", "-q", "run", *args, "-o", str(out), "--overwrite",
           "--no-progress", *([] if video else ["--no-video"])]
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {}))
    import resource

    load_before = load_average()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after_ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after_ru.ru_utime - before.ru_utime) + (after_ru.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1], "wall_s": wall}
    info = json.loads((out / "run.json").read_text())
    ev = info.get("evaluation") or {}
    tr = ev.get("tracking") or {}
    after, before = ev.get("states_after") or {}, ev.get("states_before") or {}
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "frames": info["counts"]["frames"],
        "nuclei": info["counts"]["nuclei"],
        "tracks": info["counts"]["tracks"],
        "divisions": info["counts"]["divisions"],
        "nuclei_per_s": info["counts"]["nuclei"] / wall,
        "peak_rss_mb": info["peak_rss_mb"],
        "classify_s": info["timings_s"].get("classify"),
        "lineage_s": info["timings_s"].get("lineage"),
        "reconcile_s": info["timings_s"].get("reconcile"),
        "evaluate_s": info["timings_s"].get("evaluate"),
        "steps": info["timings_s"],
        "steps_cpu": info.get("timings_cpu_s") or {},
        "model": info["parameters"]["model"],
        "states": info["counts"]["states"],
        "changed": info["reconciliation"]["n_changed"],
        "TRA": tr.get("TRA"),
        "div_F1": tr.get("division_f1"),
        "F1_before": before.get("macro_f1"),
        "F1_after": after.get("macro_f1"),
        "bacc_after": after.get("balanced_accuracy"),
        "ndim": len(info["parameters"]["shape"]) - 1,
        "load_before": load_before,
        "load_after": load_average(),
    }


def model_only(model: str | None, ndim: int, n: int = 1024, threads: int | None = None) -> tuple[float, float]:
    """Nuclei per wall second and per CPU-second of the state model alone on ``n`` random crops (no reading,
    no cropping)."""
    import numpy as np
    import torch

    from dynacell.states import load_model

    if threads:
        torch.set_num_threads(threads)
    clf = load_model(model or f"nuclei-{ndim}d")
    x = np.random.default_rng(0).random((n, len(clf.card.channels), *clf.card.crop_size_px), dtype=np.float32)
    clf.predict_proba(x[:8])  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, n, 256):
        clf.predict_proba(x[i:i + 256])
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def per_step(rows: list[dict], model_alone: dict[int, float] | None = None, *, key: str = "steps",
             total: str = "wall_s", per: bool = True) -> list[dict]:
    """Nuclei per second of every step of each run (from ``run.json`` timings), one row per run.

    ``model_alone`` maps 2 / 3 to the state model's nuclei per second on random crops; it is put
    beside the classify step (``model_alone`` column) of the runs of that dimensionality. ``key`` =
    ``"steps"`` (wall seconds) or ``"steps_cpu"`` (CPU-seconds of the run's process), ``total`` the
    matching whole-process figure (``wall_s`` / ``cpu_s``); ``per=False`` gives the seconds themselves.
    """
    out = []
    for r in rows:
        if key not in r:
            continue
        row = {"run": r["run"], "nuclei": r["nuclei"]}
        for step, sec in r[key].items():
            row[step] = (r["nuclei"] / sec if sec else None) if per else sec
            if step == "classify" and model_alone:
                row["model_alone"] = model_alone.get(r.get("ndim"))
        row["total"] = (r["nuclei"] / r[total] if r.get(total) else None) if per else r.get(total)
        if not per and r.get(total) is not None:  # start-up, imports before the first step, run.json, exit
            row["outside_steps"] = r[total] - sum(v for v in r[key].values() if v)
        row["load"] = f"{r['load_before']}->{r['load_after']}"
        out.append(row)
    return out


#: Issue 11's targets: the whole run (wall seconds) and the classify step (nuclei per wall second, by ndim).
RUN_TARGET_S = 10.0
CLASSIFY_TARGET = {2: 1000.0, 3: 200.0}


def repeat_summary(rows: list[dict]) -> list[str]:
    """One line per run name over its repeated runs: wall s and classify nuclei/s (min / median / max) and how
    many runs met the targets (:data:`RUN_TARGET_S`, :data:`CLASSIFY_TARGET`). Failed runs are counted as misses."""
    import numpy as np

    lines = []
    for name in dict.fromkeys(r["run"] for r in rows):
        mine = [r for r in rows if r["run"] == name]
        ok = [r for r in mine if "error" not in r]
        walls = np.array([r["wall_s"] for r in ok], dtype=float)
        rates = np.array([r["nuclei"] / r["classify_s"] for r in ok if r.get("classify_s")], dtype=float)
        target = CLASSIFY_TARGET.get(ok[0].get("ndim")) if ok else None
        text = f"{name}: {len(mine)} runs"
        if len(walls):
            text += (f"; wall {walls.min():.2f} / {np.median(walls):.2f} / {walls.max():.2f} s, "
                     f"<= {RUN_TARGET_S:g} s in {int((walls <= RUN_TARGET_S).sum())} of {len(mine)}")
        if len(rates) and target:
            text += (f"; classify {rates.min():.0f} / {np.median(rates):.0f} / {rates.max():.0f} nuclei/s, "
                     f">= {target:g} in {int((rates >= target).sum())} of {len(mine)}")
        if len(ok) < len(mine):
            text += f"; {len(mine) - len(ok)} failed"
        lines.append(text)
    return lines


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if v < 100 else f"{v:.0f}"
    return str(v)


def print_table(rows: list[dict], cols: list[str]) -> None:
    """Print rows as a fixed-width text table."""
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in cols))


def scaling(out: Path, base_frames: int, model3d: str | None, seed: int = 0) -> list[dict]:
    """Peak memory of the main job on a simulated embryo of 1x, 2x and 4x ``base_frames`` frames."""
    rows = []
    for k in (1, 2, 4):
        n = base_frames * k
        sim_dir = out / f"sim_{n}"
        code = (
            "from dynacell.simulate import simulate_embryo;"
            f"r = simulate_embryo(ndim=3, n_start=8, n_frames={n}, division_rate_per_frame=0.0,"
            f" death_rate_per_frame=0.0, seed={seed}, progress=False);"
            f"r.save({str(sim_dir)!r}, overwrite=True)"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
        args = [str(sim_dir / "images"), "--labels", str(sim_dir / "labels")]
        if model3d:
            args += ["--model", model3d]
        res = run_case(args, out / f"run_{n}")
        res["length"] = f"{k}x"
        rows.append(res)
    return rows


def main() -> None:
    """Parse arguments, run both parts, print the tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model2d", default=None, help="2D state model (default: shipped nuclei-2d)")
    ap.add_argument("--model3d", default=None, help="3D state model (default: shipped nuclei-3d)")
    ap.add_argument("--base-frames", type=int, default=20, help="frames of the 1x simulated movie")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("/tmp/dynacell-bench-run"))
    ap.add_argument("--threads", type=int, default=2, help="torch / OpenMP threads of every run (default 2)")
    ap.add_argument("--video", action="store_true", help="also write overlay.mp4 (default --no-video)")
    ap.add_argument("--only", nargs="+", default=None, help="real runs whose name starts with one of these")
    ap.add_argument("--exact", action="store_true", help="--only names must equal the run's whole name")
    ap.add_argument("--repeat", type=int, default=1, help="run each real run this many times, round after round, "
                                                           "and print how many met issue 11's targets")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    if not a.skip_real:
        if not DATA.is_dir():
            print(f"real data not found at {DATA}; skipping part 1")
        else:
            rows = []
            chosen = [(i, name, args) for i, (name, args) in enumerate(real_cases(a.model2d, a.model3d), start=1)
                      if not a.only or any(name == o if a.exact else name.startswith(o) for o in a.only)]
            for _ in range(max(1, a.repeat)):
                for i, name, args in chosen:
                    r = run_case(args, a.out / f"real{i}", threads=a.threads, video=a.video)
                    r["run"] = name
                    rows.append(r)
                    print(f"  done: {name} in {r['wall_s']:.1f} s", file=sys.stderr)
            print("\nPart 1: real runs (fresh process each; wall time includes start-up and imports)")
            print_table(rows, ["run", "frames", "nuclei", "tracks", "divisions", "wall_s", "cpu_s", "nuclei_per_s",
                               "peak_rss_mb", "classify_s", "lineage_s", "reconcile_s", "evaluate_s", "TRA",
                               "div_F1", "F1_before", "F1_after",
                               "bacc_after", "changed", "model", "error"])
            for r in rows:
                if "states" in r:
                    print(f"  {r['run']}: states {r['states']}")
            both = {2: model_only(a.model2d, 2, threads=a.threads), 3: model_only(a.model3d, 3, threads=a.threads)}
            alone = {k: v[0] for k, v in both.items()}
            steps = per_step(rows, alone)
            if steps:
                cols = ["run", "nuclei"] + sorted({c for s in steps for c in s if c not in ("run", "nuclei", "load")},
                                                  key=lambda c: [k for s in steps for k in s].index(c)) + ["load"]
                print(f"\nNuclei per second of each step ({a.threads} threads; classify includes reading and cropping; "
                      "model_alone = the state model on random crops; total = nuclei / wall time of the process, "
                      "imports included; load = 1-min load average before -> after)")
                print_table(steps, cols)
                cpu_steps = per_step(rows, {k: v[1] for k, v in both.items()}, key="steps_cpu", total="cpu_s")
                print("\nNuclei per CPU-second of each step (CPU time of the run's process, all its threads; "
                      "total = nuclei / CPU-s of the whole process, imports included)")
                print_table(cpu_steps, cols)
                print("\nCPU-seconds of each step (total = whole process, imports and start-up included; "
                      "outside_steps = total minus the steps: interpreter start, imports before the first step, "
                      "run.json, exit)")
                print_table(per_step(rows, key="steps_cpu", total="cpu_s", per=False),
                            [c for c in cols if c not in ("model_alone", "load")] + ["outside_steps", "load"])
            print(f"\nModel alone (random crops, no reading or cropping, {a.threads} threads): 2D {alone[2]:.0f} "
                  f"nuclei/s ({both[2][1]:.0f} per CPU-s), 3D {alone[3]:.0f} nuclei/s ({both[3][1]:.0f} per CPU-s); "
                  f"load average now {load_average()}")
            if a.repeat > 1:
                print(f"\nOver {a.repeat} rounds ({a.threads} threads; targets: run <= {RUN_TARGET_S:g} s wall, classify "
                      ">= 1,000 nuclei/s in 2D, >= 200 in 3D, reading and cropping included):")
                for line in repeat_summary(rows):
                    print("  " + line)
    if not a.skip_scaling:
        rows = scaling(a.out, a.base_frames, a.model3d)
        print(f"\nPart 2: memory vs movie length (simulated 3D embryo, 8 nuclei, {a.base_frames} frames at 1x)")
        print_table(rows, ["length", "frames", "nuclei", "wall_s", "nuclei_per_s", "peak_rss_mb", "error"])


if __name__ == "__main__":
    main()
