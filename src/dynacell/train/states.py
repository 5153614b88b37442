"""The state-classification task of the training engine: :class:`StateTaskModule` and its data loaders.

The loop itself is Lightning's (:func:`dynacell.train.engine.fit_module`); this module only says what
one step of the state task is: class-balanced batches of crops (a weighted sampler, or a weighted
loss), the batch augmentation of :func:`dynacell.train.augment.augment_batch`, cross-entropy, AdamW
with a one-cycle learning rate, and the validation macro-F1 (the model-selection metric, logged as
``val_score``).
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from dynacell.train.augment import AugmentConfig, augment_batch

__all__ = ["StateTaskModule", "state_loaders"]


class StateTaskModule(pl.LightningModule):
    """Lightning module of a state classifier.

    Parameters
    ----------
    model : torch.nn.Module
        The network (:func:`dynacell.models.build_model`): crops ``(N, C, [Z,] Y, X)`` → logits ``(N, K)``.
    channels : tuple of int
        Crop channels the network reads.
    augment : AugmentConfig
        Batch augmentation (training only).
    lr, weight_decay : float
        AdamW parameters (peak learning rate of the one-cycle schedule).
    total_steps : int
        Optimisation steps of the whole run (for the one-cycle schedule).
    class_weight : numpy.ndarray or None
        Per-class loss weights (``balance: loss``), else None.
    seed : int
        Seed of the augmentation generator.
    n_classes : int
        Number of output classes.
    """

    def __init__(self, model: torch.nn.Module, channels: tuple[int, ...], augment: AugmentConfig, *, lr: float,
                 weight_decay: float, total_steps: int, n_classes: int, class_weight: np.ndarray | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        self.n_classes = int(n_classes)
        self.model = model
        self.channels = list(channels)
        self.augment = augment
        self.lr, self.weight_decay, self.total_steps = lr, weight_decay, max(1, int(total_steps))
        weight = None if class_weight is None else torch.as_tensor(class_weight, dtype=torch.float32)
        self.criterion = torch.nn.CrossEntropyLoss(weight=weight)
        self.generator = torch.Generator().manual_seed(int(seed))
        self._val_true: list[np.ndarray] = []
        self._val_pred: list[np.ndarray] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.model(x[:, self.channels])

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:  # noqa: D102
        x, y = batch
        x = augment_batch(x.cpu(), self.augment, self.generator).to(self.device)
        loss = self.criterion(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:  # noqa: D102
        x, y = batch
        self._val_pred.append(self(x).argmax(1).cpu().numpy())
        self._val_true.append(y.cpu().numpy())

    def on_validation_epoch_end(self) -> None:  # noqa: D102
        from sklearn.metrics import balanced_accuracy_score, f1_score

        if not self._val_true:
            return
        y, p = np.concatenate(self._val_true), np.concatenate(self._val_pred)
        self._val_true, self._val_pred = [], []
        labels = np.arange(self.n_classes)
        self.log("val_score", float(f1_score(y, p, labels=labels, average="macro", zero_division=0)))
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
            self.log("val_balanced_accuracy", float(balanced_accuracy_score(y, p)))

    def configure_optimizers(self):  # noqa: D102
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=self.total_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def state_loaders(x: np.ndarray, y: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray, *, batch_size: int,
                  samples_per_epoch: int, balance: str, n_classes: int, seed: int
                  ) -> tuple[torch.utils.data.DataLoader, torch.utils.data.DataLoader, np.ndarray]:
    """Training and validation loaders of crops.

    Parameters
    ----------
    x : numpy.ndarray, float32, shape (N, C, [Z,] Y, X)
        All crops.
    y : numpy.ndarray, int64, shape (N,)
        Class indices.
    train_idx, val_idx : numpy.ndarray of int
        Rows of each side (from :func:`dynacell.samples.splits.assign_split`).
    batch_size : int
        Crops per batch.
    samples_per_epoch : int
        Crops drawn per training epoch (with replacement).
    balance : {"sampler", "loss", "none"}
        ``sampler``: draw each class with equal total probability; otherwise uniform draws.
    n_classes : int
        Number of classes.
    seed : int
        Seed of the sampler.

    Returns
    -------
    train_loader, val_loader : torch.utils.data.DataLoader
    class_counts : numpy.ndarray, float, shape (n_classes,)
        Training samples per class.
    """
    from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

    counts = np.bincount(y[train_idx], minlength=n_classes).astype(float)
    inv = 1.0 / np.maximum(counts, 1.0)
    weights = inv[y[train_idx]] if balance == "sampler" else np.ones(len(train_idx))
    steps = max(1, samples_per_epoch // batch_size)
    sampler = WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double), num_samples=steps * batch_size,
                                    replacement=True, generator=torch.Generator().manual_seed(int(seed)))
    train = TensorDataset(torch.from_numpy(np.ascontiguousarray(x[train_idx])), torch.from_numpy(y[train_idx]))
    val = TensorDataset(torch.from_numpy(np.ascontiguousarray(x[val_idx])), torch.from_numpy(y[val_idx]))
    return (DataLoader(train, batch_size=batch_size, sampler=sampler, drop_last=True),
            DataLoader(val, batch_size=512, shuffle=False), counts)
