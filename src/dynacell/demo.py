"""``dynacell demo``: simulate a small 3D embryo, run the main job on it, score it against the truth."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dynacell.errors import OutputExistsError

if TYPE_CHECKING:
    from dynacell.pipeline import RunResult

__all__ = ["DEMO_RULES", "run_demo"]


#: Event rules of the demo's ground-truth states (and of the simulated training embryos of
#: ``nuclei-3d``, benchmarks/build_state_sets_3d.py): the seed's rules with stability window
#: W = 2 and fraction 2.0 (stable = all 4 nodes within ±2 frames directly stable). The simulated
#: cell cycles (~6–12 frames) are shorter than the seed's W = 8 (12 stable nodes needed), with
#: which almost every simulated nucleus would be ``unknown`` and unscored.
DEMO_RULES = {"stable_window": 2, "stable_fraction": 2.0}


def _demo_evaluation(result, gt: Path, progress: bool) -> None:
    """Add the scores with the seed's rules to a demo run scored with :data:`DEMO_RULES`; update ``run.json`` atomically.

    ``gt`` is the simulated labels folder, which the demo also gives as the run's masks. The run
    itself (``report.html``, ``run.json["evaluation"]``) is scored with :data:`DEMO_RULES`; the
    seed's rules (W = 8) are kept as ``evaluation_seed_rules``.
    """
    from dynacell.io import open_labels
    from dynacell.io.writers import json_safe, write_json
    from dynacell.metrics.states import evaluate_against_gt

    labels = open_labels(gt)  # the demo's input masks are the simulated ones: the nuclei of states.csv
    seed_ev = json_safe(evaluate_against_gt(gt, result.states, labels, result.out / "ctc", progress=progress,
                                             tracking=False))
    ev = dict(result.evaluation or {})
    ev["evaluation_seed_rules"] = seed_ev
    result.evaluation = ev
    result.info["evaluation"] = ev
    write_json(result.info, result.out / "run.json")


def run_demo(
    out: str | Path,
    *,
    seed: int = 0,
    n_start: int = 8,
    n_frames: int = 30,
    min_divisions: int = 4,
    min_deaths: int = 1,
    model: Any = None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> RunResult:
    """Simulate a small 3D embryo and run the main job on it, scored against the exact ground truth.

    The embryo (:func:`dynacell.simulate.simulate_embryo`, by default ``min_divisions=4, min_deaths=1``) is
    saved as a CTC-style folder ``out/simulation`` (``images/``, ``labels/`` with
    ``man_track.txt``); :func:`run` then takes the simulated images and masks, links the
    lineage itself (the simulated lineage is NOT given), classifies with the default 3D model
    and is scored with ``gt=out/simulation/labels``. Results go to ``out/run``. The states are
    scored with :data:`DEMO_RULES` (W = 2; the seed's W = 8 leaves most simulated nuclei
    ``unknown``); ``evaluation["rule"]`` states it and ``evaluation["evaluation_seed_rules"]``
    keeps the scores with ``EventRules.seed()``.

    Parameters
    ----------
    out : str or Path
        Output folder (must not exist unless ``overwrite``).
    seed : int
        Seed of the simulation and of the run.
    n_start, n_frames : int
        Nuclei at frame 0 and number of frames.
    min_divisions, min_deaths : int
        Guaranteed events of the simulated embryo (see :func:`~dynacell.simulate.simulate_embryo`).
    model : str, Path or StateClassifier, optional
        Classifier; default ``nuclei-3d``.
    overwrite : bool
        Replace ``out``: the old folder is moved aside (``.NAME.dynacell-old-PID`` beside it), removed
        once the demo has succeeded and put back if it fails or is interrupted; without it an
        existing ``out`` is an error.
    progress : bool or None
        Show progress bars (None: when stderr is a terminal).

    Returns
    -------
    RunResult
        The run on the simulated movie; ``evaluation`` holds the comparison with the ground truth.

    Raises
    ------
    OutputExistsError
        If ``out`` exists and ``overwrite`` is False.
    InvalidInputError
        If a part of the pipeline is missing (e.g. no ``nuclei-3d`` model installed).
    """
    from dynacell.pipeline import run
    from dynacell.simulate import simulate_embryo
    from dynacell.progress import progress_enabled
    from dynacell.states.registry import resolve_model

    progress = progress_enabled(progress)
    out = Path(out)
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise OutputExistsError(f"output folder {out} exists; choose another -o or pass --overwrite to replace it")
    if model is None or isinstance(model, (str, Path)):
        resolve_model(model, 3, "cpu")  # fail before simulating when the model is missing
    # --overwrite: the old output is moved aside (not deleted) and put back if the demo fails, so a good
    # result is never lost; the demo is built at its final path because run.json records its input paths
    old = None
    if out.exists() or out.is_symlink():
        old = out.with_name(f".{out.name}.dynacell-old-{os.getpid()}")
        os.replace(out, old)
    t0 = time.perf_counter()
    try:
        out.mkdir(parents=True)
        sim = simulate_embryo(ndim=3, n_start=n_start, n_frames=n_frames, min_divisions=min_divisions,
                              min_deaths=min_deaths, seed=seed, progress=progress)
        sim.save(out / "simulation")
        t_sim = time.perf_counter() - t0
        from dynacell.lineage import EventRules

        result = run(out / "simulation" / "images", labels=out / "simulation" / "labels", model=model,
                     out=out / "run", gt=out / "simulation" / "labels", seed=seed, progress=progress,
                     gt_rules=EventRules(**DEMO_RULES))
        t1 = time.perf_counter()
        _demo_evaluation(result, out / "simulation" / "labels", progress)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
    result.timings_s = {"simulate": round(t_sim, 3), **result.timings_s,
                        "evaluate_seed_rules": round(time.perf_counter() - t1, 3)}
    return result
