"""``dynacell demo``: simulate a small 3D embryo, run the main job on it, compare with the truth."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The ``dynacell`` application.
    """

    @app.command("demo")
    def demo_command(
        out: Path = typer.Option(..., "-o", "--out", help="Output folder (simulation/ and run/ inside)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the simulation and the run."),
        model: str | None = typer.Option(None, "--model", help="State model name or folder (default nuclei-3d)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT after a successful demo."),
        progress: bool | None = typer.Option(None, "--progress/--no-progress",
                                             help="Show progress bars (default: when stderr is a terminal)."),
    ) -> None:
        """Simulate a 3D embryo (8 -> ~40 nuclei, divisions, a death), run `dynacell run` on it, score it."""
        from rich.console import Console

        from dynacell.demo import run_demo

        result = run_demo(out, seed=seed, model=model, overwrite=overwrite, progress=progress)
        Console().print(demo_summary(result))


def demo_summary(result) -> str:
    """Text comparing the demo's predicted states and lineage with the simulated ground truth.

    Parameters
    ----------
    result : RunResult
        The demo's run, scored against the simulated truth.

    Returns
    -------
    str
        A few lines for the terminal.
    """
    from dynacell import STATES

    ev = result.evaluation or {}
    info = result.info
    lines = [f"dynacell demo: simulated 3D embryo, {info['counts']['frames']} frames, "
             f"{info['counts']['nuclei']} nuclei; outputs in {result.out}"]
    if ev.get("rule"):
        lines.append(f"ground-truth states: {ev['rule']}")
    if ev.get("gt_state_counts"):
        lines.append("ground-truth states of the scored nuclei: " + ", ".join(
            f"{s} {ev['gt_state_counts'].get(s, 0)}" for s in STATES))
    for name, what in (("states_before", "classifier"), ("states_after", "after reconciliation")):
        rep = ev.get(name)
        if rep:
            lines.append(f"states ({what}) vs ground truth: macro-F1 {rep['macro_f1']:.3f}, "
                         f"balanced accuracy {rep['balanced_accuracy']:.3f} on {rep['n']} nuclei with a known state")
    rep = ev.get("states_after")
    if rep:
        cm = rep["confusion"]
        lines.append("per class (ground truth / predicted, scored nuclei): " + ", ".join(
            f"{s} {sum(cm[i])}/{sum(row[i] for row in cm)}" for i, s in enumerate(STATES)))
        lines.append("per-class F1 (after reconciliation): " + ", ".join(
            f"{s} {rep['per_class'][s]['f1']:.3f}" for s in STATES))
    seed_ev = (ev.get("evaluation_seed_rules") or {}).get("states_after")
    if seed_ev:
        lines.append(f"(with the seed's rules, W = 8: macro-F1 {seed_ev['macro_f1']:.3f} on {seed_ev['n']} nuclei)")
    lines.append("predicted states, all nuclei: " + ", ".join(
        f"{k} {v}" for k, v in sorted(info["counts"]["states"].items())))
    tr = ev.get("tracking") or {}
    keys = [k for k in ("TRA", "DET", "division_f1", "gt_divisions", "pred_divisions") if tr.get(k) is not None]
    if keys:
        lines.append("lineage vs ground truth: " + ", ".join(
            f"{k} {tr[k]:.3f}" if isinstance(tr[k], float) else f"{k} {tr[k]}" for k in keys))
    lines.append("wall time per step (s): " + ", ".join(f"{k} {v:.1f}" for k, v in result.timings_s.items()))
    return "\n".join(lines)
