"""Re-measure the shipped position models on their held-out trees beside every baseline; update their cards.

When a baseline is added (here ``kalman_prw``, the persistent-random-walk Kalman filter fitted by
maximum likelihood), the weights of ``positions-2d`` and ``positions-3d`` stay as they are and
their cards' ``metrics.test`` are measured again with
:func:`dynacell.forecast.evaluate.evaluate_positions` on exactly the test trees of the training
configuration (benchmarks/forecast_configs/<name>.yaml; split by lineage tree, seed 0), the
same call :func:`dynacell.train.forecast.train_positions` makes after training. The card records
when and why (``metrics.test_remeasured``). Run from the repository root, one thread:

    python benchmarks/forecast_position_cards.py
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    import torch

    from dynacell.cards import load_card, sha256_file, write_card
    from dynacell.forecast.evaluate import evaluate_positions
    from dynacell.forecast.models import PRETRAINED_DIR, PositionForecastCard, from_pretrained
    from dynacell.io.writers import atomic_folder
    from dynacell.train.forecast import load_forecast_config, position_data

    torch.set_num_threads(1)
    t0 = time.process_time()
    for name in ("positions-2d", "positions-3d"):
        folder = PRETRAINED_DIR / name
        card = load_card(folder, PositionForecastCard)
        if sha256_file(folder / "weights.pt") != card.weights_sha256:
            raise SystemExit(f"{folder}: weights do not match the card")
        model = from_pretrained(name)
        data = position_data(load_forecast_config(HERE / "forecast_configs" / f"{name}.yaml"))
        metrics = dict(card.metrics)
        metrics["test"] = {n: evaluate_positions(d["windows"], d["parts"], model=model, horizon=card.horizon)
                           for n, d in data.items()}
        metrics["test_remeasured"] = (
            f"{datetime.date.today().isoformat()}: weights unchanged; test trees measured again with the "
            "kalman_prw baseline (persistent random walk, maximum likelihood on the training trees) added "
            "by benchmarks/forecast_position_cards.py")
        for n, r in metrics["test"].items():
            print(f"{name} {n}: model {r['model']['one_step_um']:.4f}, best baseline {r['best_baseline']} "
                  f"{r[r['best_baseline']]['one_step_um']:.4f}, ratio {r['one_step_ratio_to_best_baseline']:.3f}",
                  flush=True)
        new = card.model_copy(update={"metrics": metrics})
        with atomic_folder(folder, overwrite=True) as tmp:
            for f in folder.iterdir():
                if f.is_file() and f.name != "model.yaml":
                    (tmp / f.name).write_bytes(f.read_bytes())
            write_card(new, tmp)
    print(f"{time.process_time() - t0:.0f} CPU-s")


if __name__ == "__main__":
    main()
