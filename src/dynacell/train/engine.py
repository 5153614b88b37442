"""The one training engine of dynacell: PyTorch Lightning with per-task modules.

Every task (state classification, segmentation, forecasting, diffusion regression) writes a
:class:`lightning.pytorch.LightningModule` in ``dynacell/train/<task>.py`` that owns its loss,
its optimiser and the validation metric it logs under :attr:`EngineConfig.monitor`; the data come
as ordinary :class:`torch.utils.data.DataLoader` s. :func:`fit_module` then runs Lightning's
``Trainer`` with early stopping and best-checkpoint selection, on CPU, one GPU or several GPUs
through Lightning's own strategies (``devices``/``strategy``), and returns the module with the
best weights loaded and the per-epoch history. Nothing in this module knows about a task.

Source: the Lightning ``Trainer`` / ``EarlyStopping`` / ``ModelCheckpoint`` API
(lightning 2.x); seeds through ``lightning.pytorch.seed_everything``.
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from dynacell.errors import InvalidInputError
from dynacell.progress import progress_enabled  # its home; kept importable from here

__all__ = ["EngineConfig", "FitResult", "fit_module", "progress_enabled"]

logger = logging.getLogger(__name__)


class EngineConfig(BaseModel):
    """How to run an optimisation, whatever the task (pydantic, ``extra="forbid"``).

    Attributes
    ----------
    max_epochs : int
        Upper bound on epochs.
    patience : int
        Early stopping: epochs without improvement of ``monitor`` before stopping.
    monitor : str
        Metric logged by the task module in ``validation_step`` (``self.log(monitor, ...)``).
    mode : {"max", "min"}
        Whether a larger or a smaller ``monitor`` is better.
    seed : int
        Seed of Python, NumPy and torch (``seed_everything``); recorded in the model card.
    accelerator : str
        Lightning accelerator: ``"auto"``, ``"cpu"``, ``"gpu"``.
    devices : int or str
        Lightning ``devices`` (``"auto"``, a count, or ``-1`` for all GPUs).
    strategy : str
        Lightning strategy (``"auto"``, ``"ddp"``, ...): multi-GPU is Lightning's own.
    precision : str
        Lightning precision (``"32-true"``, ``"16-mixed"``, ``"bf16-mixed"``).
    num_threads : int
        CPU threads for torch (``torch.set_num_threads``).
    limit_train_batches : int or float or None
        Batches per epoch (a count or a fraction); None = the whole loader.
    gradient_clip_val : float or None
        Gradient-norm clipping.
    deterministic : bool
        Ask Lightning/torch for deterministic algorithms.
    """

    model_config = ConfigDict(extra="forbid")

    max_epochs: int = Field(20, ge=1)
    patience: int = Field(5, ge=1)
    monitor: str = "val_score"
    mode: Literal["max", "min"] = "max"
    seed: int = 0
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    precision: str = "32-true"
    num_threads: int = Field(1, ge=1)
    limit_train_batches: int | float | None = None
    gradient_clip_val: float | None = None
    deterministic: bool = False


@dataclass
class FitResult:
    """What :func:`fit_module` returns.

    Attributes
    ----------
    module : lightning.pytorch.LightningModule
        The task module with the best checkpoint's weights loaded, in eval mode, on the CPU.
    best_score : float
        Best value of ``config.monitor``.
    best_epoch : int
        1-based epoch of the best checkpoint.
    epochs_run : int
        Epochs actually run (early stopping may end before ``max_epochs``).
    history : pandas.DataFrame
        One row per epoch: ``epoch`` and every metric logged at epoch end (``train_loss``,
        the monitor, ...).
    seconds : float
        Wall time of the fit.
    device : str
        Accelerator and device count used, e.g. ``"cpu x1"``.
    """

    module: Any
    best_score: float
    best_epoch: int
    epochs_run: int
    history: pd.DataFrame
    seconds: float
    device: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _history_callback():
    from lightning.pytorch.callbacks import Callback

    class _History(Callback):
        """Collect ``trainer.callback_metrics`` after each validation epoch."""

        def __init__(self) -> None:
            self.rows: list[dict[str, float]] = []

        def on_train_epoch_end(self, trainer, pl_module) -> None:  # noqa: D102
            # Lightning runs the epoch's validation before this hook: both losses are in.
            row = {"epoch": int(trainer.current_epoch) + 1}
            for k, v in trainer.callback_metrics.items():
                try:
                    row[k] = float(v)
                except (TypeError, ValueError):
                    continue
            self.rows.append(row)

    return _History()


def fit_module(module: Any, train_loader: Any, val_loader: Any, config: EngineConfig, *,
               progress: bool | None = None, workdir: str | Path | None = None) -> FitResult:
    """Train a task module with Lightning; keep the epoch with the best validation metric.

    Parameters
    ----------
    module : lightning.pytorch.LightningModule
        The task module. Its ``validation_step``/``on_validation_epoch_end`` must log
        ``config.monitor`` once per epoch; ``training_step`` should log ``train_loss``.
    train_loader, val_loader : torch.utils.data.DataLoader
        Training and validation batches (the validation side is the model-selection side;
        the test side never reaches this function).
    config : EngineConfig
        Epochs, early stopping, seed, devices.
    progress : bool or None
        Lightning's progress bar; None = only when stderr is a terminal.
    workdir : path, optional
        Where checkpoints go (a temporary folder, removed afterwards, by default).

    Returns
    -------
    FitResult

    Raises
    ------
    InvalidInputError
        If the module never logged ``config.monitor`` (a task-module bug or an empty
        validation loader).
    """
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    torch.set_num_threads(config.num_threads)
    history = _history_callback()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dynacell-fit-", dir=workdir) as tmp:
        ckpt = ModelCheckpoint(dirpath=tmp, monitor=config.monitor, mode=config.mode, save_top_k=1,
                               save_weights_only=True, filename="best")
        stop = EarlyStopping(monitor=config.monitor, mode=config.mode, patience=config.patience)
        kwargs: dict[str, Any] = {}
        if config.limit_train_batches is not None:
            kwargs["limit_train_batches"] = config.limit_train_batches
        trainer = pl.Trainer(
            max_epochs=config.max_epochs, accelerator=config.accelerator, devices=config.devices,
            strategy=config.strategy, precision=config.precision, callbacks=[ckpt, stop, history],
            logger=False, enable_progress_bar=progress_enabled(progress), enable_model_summary=False,
            deterministic=config.deterministic, gradient_clip_val=config.gradient_clip_val,
            num_sanity_val_steps=0, default_root_dir=tmp, **kwargs,
        )
        with warnings.catch_warnings():
            # Lightning's advice (more loader workers, tips) is not an error of the caller.
            warnings.filterwarnings("ignore", message=r".*(num_workers|does not have many workers|LeafSpec|litlogger).*")
            warnings.filterwarnings("ignore", category=UserWarning, module=r"lightning.*")
            trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader)
        if not ckpt.best_model_path:
            raise InvalidInputError(
                f"training logged no {config.monitor!r}: the validation loader is empty or the task module "
                "does not log that metric")
        state = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        best_score = float(ckpt.best_model_score)
    module = module.to("cpu")
    module.load_state_dict(state)
    module.eval()
    hist = pd.DataFrame(history.rows)
    best_epoch = 1
    if len(hist) and config.monitor in hist:
        col = hist[config.monitor]
        best_epoch = int(hist["epoch"].iloc[int(col.idxmax() if config.mode == "max" else col.idxmin())])
    seconds = time.perf_counter() - t0
    device = f"{trainer.accelerator.__class__.__name__.replace('Accelerator', '').lower()} x{trainer.num_devices}"
    logger.info("fit: best %s %.4f at epoch %d of %d (%.0f s, %s)", config.monitor, best_score, best_epoch,
                len(hist), seconds, device)
    return FitResult(module=module, best_score=best_score, best_epoch=best_epoch, epochs_run=len(hist),
                     history=hist, seconds=seconds, device=device)
