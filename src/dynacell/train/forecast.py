"""Training of forecast models through the project's training engine (:func:`dynacell.train.engine.fit_module`).

Two tasks, each a :class:`lightning.pytorch.LightningModule` plus its datasets and a pydantic
configuration read from YAML (``dynacell forecast train CONFIG``):

* next frame (:class:`FrameTrainConfig`, :func:`train_frames`): every movie is split by time
  block (:func:`dynacell.forecast.frames.time_block_split`: train on early frames, select on the
  validation block, test on the last block); movies listed in ``holdout_movies`` are left out of
  training entirely (split by movie). Training samples are random patches of the training
  windows with flips and 90° rotations; the validation score is the MSE on whole validation frames.
* positions (:class:`PositionTrainConfig`, :func:`train_positions`): history windows of
  consecutive frames within tracks, split by lineage tree (sub-lineages founded ``tree_depth``
  divisions below a root) with :func:`dynacell.samples.splits.grouped_split`; the validation
  score is the one-step average displacement error in µm.

The trained model folder (``weights.pt``, ``model.yaml``, ``config.yaml``, ``history.csv``) is
written atomically with :func:`dynacell.io.writers.atomic_folder`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch.utils.data import DataLoader, Dataset, TensorDataset

from dynacell.cards import read_yaml_mapping
from dynacell.errors import FormatError, InvalidInputError, validation_problems
from dynacell.train.engine import EngineConfig, fit_module

__all__ = [
    "FrameForecastModule",
    "FramePatchDataset",
    "FrameTrainConfig",
    "McResidualModule",
    "McResidualPatchDataset",
    "MovieSpec",
    "PositionForecastModule",
    "PositionTrainConfig",
    "TrackSpec",
    "least_squares_anchor",
    "load_forecast_config",
    "load_movie_spec",
    "load_track_spec",
    "position_split",
    "train_frames",
    "train_mc_residual",
    "train_positions",
    "tree_groups",
]

logger = logging.getLogger(__name__)


class MovieSpec(BaseModel):
    """One movie for next-frame forecasting (pydantic).

    Attributes
    ----------
    name : str
        Short name used in reports.
    path : str
        Movie path (anything :func:`dynacell.io.open_movie` reads); relative paths are resolved
        against the config file's folder.
    axes : str, optional
        Axes of a TIFF stack.
    z : int or "max"
        z-slice or maximum projection of a 3D movie.
    downsample : int
        Block-averaging factor along Y and X.
    voxel_size_um : list of float, optional
        Voxel size when the file does not record it.
    max_frames : int, optional
        Use only the first frames.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    path: str
    axes: str | None = None
    z: int | Literal["max"] = "max"
    downsample: int = Field(1, ge=1)
    voxel_size_um: list[float] | None = None
    max_frames: int | None = None


class TrackSpec(BaseModel):
    """One tracks data set for position forecasting (pydantic).

    Attributes
    ----------
    name : str
    path : str
        A tracks CSV (``t, ID|track_id, (z,) y, x``) or anything :func:`dynacell.lineage.read_lineage`
        reads (CTC ``man_track`` folders, AceTree, ...).
    scale_zyx : list of float, optional
        µm per pixel (z, y, x); default: the lineage's ``scale_zyx`` or 1.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    path: str
    scale_zyx: list[float] | None = None


class FrameTrainConfig(BaseModel):
    """Configuration of a next-frame model (pydantic, ``extra="forbid"``).

    Attributes
    ----------
    task : "frames"
    name : str
        Model name (folder name).
    architecture : {"tinycnn", "residual-unet"}
    model_kwargs : dict
        Extra constructor arguments (``k`` is set from ``k``).
    k : int
        Frames per window.
    loss : {"mse", "l1"}
    lr : float
        Adam learning rate.
    movies : list of MovieSpec
    holdout_movies : list of str
        Names of movies never used in training or model selection (tested as unseen movies).
    val_fraction, test_fraction : float
        Time-block sizes (fractions of each movie's frames).
    patch : int
        Side of the training patches (pixels of the down-sampled frames).
    patches_per_epoch : int
    batch_size : int
    engine : EngineConfig
        Epochs, patience, seed, threads (monitor ``val_mse``, mode ``min``).
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    task: Literal["frames"] = "frames"
    name: str
    architecture: Literal["tinycnn", "residual-unet"] = "residual-unet"
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    k: int = Field(4, ge=2)
    loss: Literal["mse", "l1"] = "mse"
    lr: float = 1e-3
    movies: list[MovieSpec]
    holdout_movies: list[str] = Field(default_factory=list)
    val_fraction: float = 0.15
    test_fraction: float = 0.2
    patch: int = Field(64, ge=8)
    patches_per_epoch: int = Field(512, ge=1)
    batch_size: int = Field(16, ge=1)
    engine: EngineConfig = Field(default_factory=lambda: EngineConfig(monitor="val_mse", mode="min"))


class PositionTrainConfig(BaseModel):
    """Configuration of a position model (pydantic, ``extra="forbid"``).

    Attributes
    ----------
    task : "positions"
    name : str
    datasets : list of TrackSpec
        All must have the same dimensionality (2D or 3D).
    history : int
        Positions of history (the seed uses 5).
    horizon : int
        Steps predicted at once.
    residual : bool
        Learn a correction to an anchor forecast (dynacell's variant) instead of the plain
        read-out of the seed.
    anchor : {"velocity", "linear"}
        The anchor (:class:`~dynacell.models.forecast.PositionTransformer`): constant velocity,
        or a learned linear combination of the history steps.
    anchor_init : {"velocity", "least_squares"}
        Start of a linear anchor: constant velocity, or the least-squares fit of the training
        windows (each data set's displacements divided by its median step length, so that data
        sets in µm and in pixels weigh alike); with ``"least_squares"`` the untrained network is
        that linear forecast.
    loss : {"huber", "euclidean"}
        ``"huber"``: smooth-L1 on the per-window scaled displacements, targets clipped to ±10
        history steps (the first recipe). ``"euclidean"``: the mean Euclidean error of the next
        positions in units of each data set's median step length — the displacement error the
        models are judged by, comparable across data sets.
    balance_datasets : bool
        Weigh every data set alike in the loss (each window by ``N / (n_sets · n_set)``) instead of
        every window alike.
    d_model : int
    step_scale_um : float
        Fixed step scale (µm); 0 = per-window scaling by the history's mean step length.
    fractions : (float, float, float)
        Train / validation / test fractions of lineage trees.
    tree_depth : int
        A "tree" is the sub-lineage founded this many divisions below a root track.
    lr : float
    batch_size : int
    max_windows : int
        Largest number of training windows (a random subset, seeded, above it).
    engine : EngineConfig
        Monitor ``val_ade_um``, mode ``min``.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    task: Literal["positions"] = "positions"
    name: str
    datasets: list[TrackSpec]
    history: int = Field(5, ge=2)
    horizon: int = Field(1, ge=1)
    residual: bool = True
    anchor: Literal["velocity", "linear"] = "velocity"
    anchor_init: Literal["velocity", "least_squares"] = "velocity"
    loss: Literal["huber", "euclidean"] = "huber"
    balance_datasets: bool = False
    d_model: int = 32
    step_scale_um: float = 0.0
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    tree_depth: int = Field(3, ge=0)
    lr: float = 1e-3
    batch_size: int = 256
    max_windows: int = 200_000
    engine: EngineConfig = Field(default_factory=lambda: EngineConfig(monitor="val_ade_um", mode="min"))


def load_forecast_config(path: str | Path) -> FrameTrainConfig | PositionTrainConfig:
    """Read a YAML training configuration (``task: frames`` or ``task: positions``).

    Relative data paths are resolved against the config file's folder.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    FrameTrainConfig or PositionTrainConfig
        The validated configuration, by its ``task``.

    Raises
    ------
    FormatError
        For a missing file, bad YAML or an invalid field (named).
    """
    p = Path(path)
    raw = read_yaml_mapping(p, "forecast configuration")
    if raw.get("task") not in ("frames", "positions"):
        raise FormatError(f"{p}: a forecast config is a mapping with task: frames or task: positions")
    cls = FrameTrainConfig if raw["task"] == "frames" else PositionTrainConfig
    try:
        cfg = cls.model_validate(raw)
    except ValidationError as exc:
        raise FormatError(f"{p}: invalid {cls.__name__}: {validation_problems(exc)}") from None
    items = cfg.movies if isinstance(cfg, FrameTrainConfig) else cfg.datasets
    for it in items:
        if not Path(it.path).is_absolute():
            it.path = str((p.parent / it.path).resolve())
    return cfg


# ---------------------------------------------------------------------------------------- frames


def load_movie_spec(spec: MovieSpec, k: int, val_fraction: float, test_fraction: float) -> dict[str, Any]:
    """Read, down-sample, split and normalise one movie (normalisation fitted on its training block).

    Parameters
    ----------
    spec : MovieSpec
        The movie's path, name, axes, z-slice and down-sampling.
    k : int
        Frames per input window.
    val_fraction : float
        Fraction of the target frames in the validation block.
    test_fraction : float
        Fraction of the target frames in the test block (the last).

    Returns
    -------
    dict
        ``name``, ``frames`` (T, Y, X) float32 normalised, ``pixel_size_um``, ``split`` (target
        frames per block), ``scale`` (raw intensities mapped to 0 and 1), ``info``.
    """
    from dynacell.forecast.frames import gapless_targets, load_frames, normalize_movie, time_block_split

    raw, px, info = load_frames(spec.path, axes=spec.axes, z=spec.z, downsample=spec.downsample,
                                voxel_size_um=spec.voxel_size_um, max_frames=spec.max_frames)
    split = time_block_split(len(raw), k, val_fraction=val_fraction, test_fraction=test_fraction)
    # windows across a missing frame would mix two time steps: left out of every block
    split = {part: gapless_targets(info["frame_indices"], k, targets) for part, targets in split.items()}
    for part, targets in split.items():
        if not targets:
            raise InvalidInputError(f"{spec.name}: every {part} window of {k} + 1 frames spans a missing frame")
    frames, scale = normalize_movie(raw, fit_frames=range(split["val"][0]))
    return {"name": spec.name, "frames": frames, "pixel_size_um": px, "split": split, "scale": scale, "info": info}


class FramePatchDataset(Dataset):
    """Random training patches of K-frame windows (seeded; flips and 90° rotations).

    Parameters
    ----------
    movies : list of dict
        From :func:`load_movie_spec`.
    k : int
    patch : int
        Patch side (pixels); frames smaller than that are used whole (padded by reflection).
    n : int
        Patches per epoch.
    seed : int
    part : str
        Which targets to draw from (``"train"``).
    """

    def __init__(self, movies: list[dict[str, Any]], k: int, patch: int, n: int, seed: int, part: str = "train"):
        self.items = [(m["frames"], t) for m in movies for t in m["split"][part]]
        if not self.items:
            raise InvalidInputError(f"no {part} windows to train on")
        self.k, self.patch, self.n, self.seed = k, patch, n, seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        rng = np.random.default_rng((self.seed, self.epoch, i))
        frames, t = self.items[int(rng.integers(len(self.items)))]
        win = frames[t - self.k:t + 1]
        _, h, w = win.shape
        p = self.patch
        if h < p or w < p:
            win = np.pad(win, ((0, 0), (0, max(0, p - h)), (0, max(0, p - w))), mode="reflect")
            _, h, w = win.shape
        y0, x0 = int(rng.integers(h - p + 1)), int(rng.integers(w - p + 1))
        win = win[:, y0:y0 + p, x0:x0 + p]
        win = np.rot90(win, int(rng.integers(4)), axes=(1, 2))
        if rng.random() < 0.5:
            win = win[:, :, ::-1]
        win = np.ascontiguousarray(win, dtype=np.float32)
        return torch.from_numpy(win[:-1]), torch.from_numpy(win[-1:])


class _WholeWindows(Dataset):
    def __init__(self, movies: list[dict[str, Any]], k: int, part: str):
        self.items = [(m["frames"], t) for m in movies for t in m["split"][part]]
        self.k = k

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        frames, t = self.items[i]
        return torch.from_numpy(frames[t - self.k:t].copy()), torch.from_numpy(frames[t:t + 1].copy())


class FrameForecastModule(pl.LightningModule):
    """Lightning module of a next-frame network: MSE or L1 training loss; logs ``val_mse``.

    Parameters
    ----------
    net : torch.nn.Module
        Input (B, K, Y, X) → (B, 1, Y, X).
    loss : {"mse", "l1"}
    lr : float
    """

    def __init__(self, net: torch.nn.Module, loss: str = "mse", lr: float = 1e-3) -> None:
        super().__init__()
        self.net, self.loss_name, self.lr = net, loss, lr
        self._val: list[tuple[float, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _loss(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.l1_loss(pred, y) if self.loss_name == "l1" else torch.nn.functional.mse_loss(pred, y)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self._loss(self.net(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(x))
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self._val.append((float(torch.mean((self.net(x) - y) ** 2)), y[0].numel() * len(y)))

    def on_validation_epoch_end(self) -> None:
        if self._val:
            v = np.array(self._val)
            self.log("val_mse", float(np.sum(v[:, 0] * v[:, 1]) / np.sum(v[:, 1])))
        self._val = []

    def on_train_epoch_start(self) -> None:
        ds = getattr(self.trainer.train_dataloader, "dataset", None)
        if isinstance(ds, FramePatchDataset | McResidualPatchDataset):
            ds.epoch = int(self.current_epoch)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=1e-5)


def _versions() -> dict[str, str]:
    import dynacell

    return {"dynacell_version": getattr(dynacell, "__version__", "0"), "torch_version": torch.__version__}


def _write_model(out: str | Path, net: torch.nn.Module, card_cls, fields: dict[str, Any], config: BaseModel,
                 history: pd.DataFrame, overwrite: bool) -> Path:
    from dynacell.cards import sha256_file, write_card
    from dynacell.io.writers import atomic_folder

    with atomic_folder(out, overwrite=overwrite) as tmp:
        torch.save(net.state_dict(), tmp / "weights.pt")
        card = card_cls(weights_sha256=sha256_file(tmp / "weights.pt"),
                        n_parameters=int(sum(p.numel() for p in net.parameters() if p.requires_grad)),
                        config=config.model_dump(mode="json"), **_versions(), **fields)
        write_card(card, tmp)
        (tmp / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False),
                                         encoding="utf-8")
        history.to_csv(tmp / "history.csv", index=False)
    return Path(out)


def train_frames(config: FrameTrainConfig, out: str | Path, *, overwrite: bool = False, progress: bool | None = None,
                 training_command: str | None = None) -> dict[str, Any]:
    """Train a next-frame model, evaluate it beside the baselines on every test block, write the folder.

    Parameters
    ----------
    config : FrameTrainConfig
    out : path
        Model folder to write (atomic).
    overwrite : bool
    progress : bool, optional
    training_command : str, optional
        Recorded in the card.

    Returns
    -------
    dict
        ``folder``, ``fit`` (epochs, best score, seconds) and ``metrics`` (per movie: the
        evaluation of :func:`dynacell.forecast.evaluate.evaluate_frames` on its test block, or on
        all its windows for a held-out movie).
    """
    from dynacell.forecast.evaluate import evaluate_frames
    from dynacell.forecast.models import FrameForecastCard, FrameForecaster
    from dynacell.models.forecast import FRAME_ARCHITECTURES

    torch.set_num_threads(config.engine.num_threads)
    names = [m.name for m in config.movies]
    unknown = [h for h in config.holdout_movies if h not in names]
    if unknown:
        raise InvalidInputError(f"holdout_movies {unknown} are not among the movies {names}")
    movies = [load_movie_spec(m, config.k, config.val_fraction, config.test_fraction) for m in config.movies]
    train_movies = [m for m in movies if m["name"] not in config.holdout_movies]
    if not train_movies:
        raise InvalidInputError("every movie is held out: nothing to train on")
    net = FRAME_ARCHITECTURES[config.architecture](k=config.k, **config.model_kwargs)
    module = FrameForecastModule(net, config.loss, config.lr)
    g = torch.Generator().manual_seed(config.engine.seed)
    train_dl = DataLoader(FramePatchDataset(train_movies, config.k, config.patch, config.patches_per_epoch,
                                            config.engine.seed), batch_size=config.batch_size, shuffle=True,
                          generator=g)
    val_dl = DataLoader(_WholeWindows(train_movies, config.k, "val"), batch_size=1)
    engine = config.engine
    if engine.monitor != "val_mse" or engine.mode != "min":
        engine = engine.model_copy(update={"monitor": "val_mse", "mode": "min"})
    fit = fit_module(module, train_dl, val_dl, engine, progress=progress)
    model_kwargs = {"k": config.k, **config.model_kwargs}
    card_fields = dict(
        name=config.name, architecture=config.architecture, model_kwargs=model_kwargs, ndim=2, k=config.k,
        loss=config.loss, training_command=training_command, seed=config.engine.seed,
        normalization={"method": "percentiles of the training block mapped to 0 and 1", "low_pct": 0.5,
                       "high_pct": 99.9},
        downsample={m.name: m.downsample for m in config.movies},
        training_data={m["name"]: {"path": m["info"]["source"], "frames": len(m["frames"]),
                                   "shape": list(m["frames"].shape[1:]),
                                   "train_targets": len(m["split"]["train"]) if m in train_movies else 0}
                       for m in movies},
        split={"by": "time block within each movie, and by movie (holdout_movies)",
               "val_fraction": config.val_fraction, "test_fraction": config.test_fraction,
               "holdout_movies": config.holdout_movies,
               "blocks": {m["name"]: {p: [v[0], v[-1]] for p, v in m["split"].items()} for m in movies}},
    )
    fc = FrameForecaster(fit.module.net, FrameForecastCard(weights_sha256="0", n_parameters=0, config={},
                                                           **_versions(), **card_fields, metrics={}))
    metrics: dict[str, Any] = {"val_mse": fit.best_score, "test": {}}
    for m in movies:
        held = m["name"] in config.holdout_movies
        targets = list(range(config.k, len(m["frames"]))) if held else m["split"]["test"]
        res = evaluate_frames(m["frames"], targets, model=fc, pixel_size_um=m["pixel_size_um"],
                              seed=config.engine.seed)
        res["block"] = "all windows (movie held out)" if held else "test block"
        metrics["test"][m["name"]] = res
    card_fields["metrics"] = metrics
    folder = _write_model(out, fit.module.net, FrameForecastCard, card_fields, config, fit.history, overwrite)
    return {"folder": str(folder), "fit": {"epochs": fit.epochs_run, "best_epoch": fit.best_epoch,
                                           "val_mse": fit.best_score, "seconds": fit.seconds}, "metrics": metrics}


# ------------------------------------------------------------------- residual on frames-mc-linear


class McResidualPatchDataset(Dataset):
    """Random training patches of precomputed ``frames-mc-linear`` inputs (seeded; flips and 90° rotations).

    Parameters
    ----------
    items : list of tuple
        ``(inputs, target, weight)``: inputs float32 (K + 1, Y, X) (the ``frames-mc-linear`` forecast
        and the K aligned past frames, :class:`dynacell.models.forecast_residual.McResidualUNet`),
        target float32 (Y, X) (the true next frame), weight float (the window's weight in the loss,
        e.g. 1 / the movie's ``frames-mc-linear`` MSE so that every movie counts alike).
    patch : int
        Patch side (pixels); smaller frames are padded by reflection.
    n : int
        Patches per epoch.
    seed : int

    Raises
    ------
    InvalidInputError
        Without items.
    """

    def __init__(self, items: list[tuple[np.ndarray, np.ndarray, float]], patch: int, n: int, seed: int):
        if not items:
            raise InvalidInputError("no windows to train on")
        self.items, self.patch, self.n, self.seed = items, int(patch), int(n), int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        rng = np.random.default_rng((self.seed, self.epoch, i))
        x, y, wgt = self.items[int(rng.integers(len(self.items)))]
        z = np.concatenate([x, y[None]])
        _, h, w = z.shape
        p = self.patch
        if h < p or w < p:
            z = np.pad(z, ((0, 0), (0, max(0, p - h)), (0, max(0, p - w))), mode="reflect")
            _, h, w = z.shape
        y0, x0 = int(rng.integers(h - p + 1)), int(rng.integers(w - p + 1))
        z = np.rot90(z[:, y0:y0 + p, x0:x0 + p], int(rng.integers(4)), axes=(1, 2))
        if rng.random() < 0.5:
            z = z[:, :, ::-1]
        z = np.ascontiguousarray(z, dtype=np.float32)
        return torch.from_numpy(z[:-1]), torch.from_numpy(z[-1:]), torch.tensor(float(wgt))


class _McResidualWindows(Dataset):
    def __init__(self, items: list[tuple[np.ndarray, np.ndarray, float]]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        x, y, wgt = self.items[i]
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y[None])), \
            torch.tensor(float(wgt))


class McResidualModule(FrameForecastModule):
    """Lightning module of :class:`~dynacell.models.forecast_residual.McResidualUNet`: weighted MSE.

    Batches are ``(inputs, target, weight)``; the training loss is the mean of ``weight × squared
    error``. The validation score ``val_ratio`` is the sum over whole validation windows of
    ``weight × MSE``: with weights ``1 / (n_windows of the movie × frames-mc-linear MSE of the
    movie) / n_movies`` it is the mean over movies of the MSE relative to ``frames-mc-linear``
    (1 for the untrained network, which is ``frames-mc-linear``).

    Parameters
    ----------
    net : torch.nn.Module
    lr : float
    """

    def __init__(self, net: torch.nn.Module, lr: float = 1e-3) -> None:
        super().__init__(net, "mse", lr)

    def training_step(self, batch, batch_idx):
        x, y, wgt = batch
        loss = torch.mean(wgt[:, None, None, None] * (self.net(x) - y) ** 2)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(x))
        return loss

    def validation_step(self, batch, batch_idx):
        x, y, wgt = batch
        err = torch.mean((self.net(x) - y) ** 2, dim=(1, 2, 3))
        self._val.append((float(torch.sum(wgt * err)), 1))

    def on_validation_epoch_end(self) -> None:
        if self._val:
            self.log("val_ratio", float(sum(v for v, _ in self._val)))
        self._val = []


def train_mc_residual(train_items: list[tuple[np.ndarray, np.ndarray, float]],
                      val_items: list[tuple[np.ndarray, np.ndarray, float]], *, k: int = 4, width: int = 12,
                      levels: int = 2, patch: int = 64, patches_per_epoch: int = 256, batch_size: int = 16,
                      lr: float = 1e-3, engine: EngineConfig | None = None, progress: bool | None = None):
    """Train :class:`~dynacell.models.forecast_residual.McResidualUNet` with the project's engine.

    Parameters
    ----------
    train_items, val_items : list of tuple
        ``(inputs (K + 1, Y, X), target (Y, X), weight)`` per window (:class:`McResidualPatchDataset`);
        training windows are cut into random patches, validation windows are scored whole.
    k, width, levels : int
        Network (:class:`~dynacell.models.forecast_residual.McResidualUNet`).
    patch, patches_per_epoch, batch_size : int
    lr : float
        Adam learning rate.
    engine : EngineConfig, optional
        Epochs, patience, seed, threads; the monitor is set to ``val_ratio`` (mode ``min``).
    progress : bool, optional

    Returns
    -------
    dynacell.train.engine.FitResult
        ``module.net`` is the network of the epoch with the lowest ``val_ratio``.
    """
    from dynacell.models.forecast_residual import McResidualUNet

    engine = (engine or EngineConfig()).model_copy(update={"monitor": "val_ratio", "mode": "min"})
    torch.set_num_threads(engine.num_threads)
    torch.manual_seed(engine.seed)
    module = McResidualModule(McResidualUNet(k=k, width=width, levels=levels), lr)
    g = torch.Generator().manual_seed(engine.seed)
    train_dl = DataLoader(McResidualPatchDataset(train_items, patch, patches_per_epoch, engine.seed),
                          batch_size=batch_size, shuffle=True, generator=g)
    val_dl = DataLoader(_McResidualWindows(val_items), batch_size=1)
    return fit_module(module, train_dl, val_dl, engine, progress=progress)


# ------------------------------------------------------------------------------------- positions


def load_track_spec(spec: TrackSpec) -> tuple[pd.DataFrame, list[float]]:
    """Read one tracks data set as a tracks table (pixels) and its µm-per-pixel scale (z, y, x).

    Parameters
    ----------
    spec : TrackSpec
        The data set's path, name and scale.

    Returns
    -------
    table : pandas.DataFrame
        Tracks table ``t, track_id, (z,) y, x`` in pixels.
    scale_zyx : list of float
        µm per pixel along z, y, x.

    Raises
    ------
    InvalidInputError, FormatError
        From the readers, for unreadable input.
    """
    from dynacell.forecast.positions import read_tracks_csv, tracks_from_lineage

    p = Path(spec.path)
    if p.suffix.lower() == ".csv":
        tracks = read_tracks_csv(str(p))
        scale = spec.scale_zyx or [1.0, 1.0, 1.0]
    else:
        from dynacell.lineage import read_lineage

        lin = read_lineage(p)
        tracks = tracks_from_lineage(lin)
        scale = spec.scale_zyx or list(lin.graph.graph.get("scale_zyx", (1.0, 1.0, 1.0)))
    return tracks, [float(s) for s in scale]


def tree_groups(tracks: pd.DataFrame, depth: int = 3) -> dict[int, int]:
    """Sub-lineage of every track: its ancestor ``depth`` divisions below the root (or itself if shallower).

    Parameters
    ----------
    tracks : pandas.DataFrame
        With ``track_id`` and optionally ``parent_track_id`` (0 = no parent); without parents
        every track is its own tree.
    depth : int

    Returns
    -------
    dict
        ``track_id → tree id`` (a track id).
    """
    if "parent_track_id" not in tracks.columns:
        return {int(t): int(t) for t in tracks["track_id"].unique()}
    parent = tracks.drop_duplicates("track_id").set_index("track_id")["parent_track_id"].astype(int).to_dict()
    out = {}
    for tid in parent:
        chain = [int(tid)]
        while parent.get(chain[-1], 0) and parent[chain[-1]] in parent and len(chain) < 10_000:
            chain.append(int(parent[chain[-1]]))
        chain.reverse()  # root first
        out[int(tid)] = chain[min(depth, len(chain) - 1)]
    return out


def position_split(windows: dict[str, np.ndarray], groups: dict[int, int], dataset: str,
                   fractions=(0.7, 0.15, 0.15), seed: int = 0) -> dict[str, np.ndarray]:
    """Train / val / test rows of history windows so that no lineage tree crosses parts.

    Uses :func:`dynacell.samples.splits.grouped_split` with ``by="tree"``.

    Parameters
    ----------
    windows : dict
        History windows of one data set (``track_id`` per row, among others).
    groups : dict of int to int
        Track id → lineage-tree id.
    dataset : str
        The data set's name.
    fractions : tuple of float
        Train, validation and test fractions of the trees.
    seed : int
        Seed of the split.

    Returns
    -------
    dict
        ``train``, ``val``, ``test`` → row indices into the windows.
    """
    from dynacell.samples.splits import grouped_split

    meta = pd.DataFrame({"dataset": dataset, "tree_id": [groups[int(t)] for t in windows["track_id"]]})
    return grouped_split(meta, by="tree", fractions=fractions, seed=seed)


class PositionForecastModule(pl.LightningModule):
    """Lightning module of a position network; logs ``val_ade_um`` (one step, µm).

    Batches are ``(steps / s, future_rel / s, s, w)``: scaled input steps (B, L − 1, D), scaled
    target displacements from the last position (B, H, D), the scale (B, 1, 1) in µm and a window
    weight (B,) — ``s`` divided by the data set's median step length times the data-set balance
    weight (see :class:`PositionTrainConfig`).

    Parameters
    ----------
    net : torch.nn.Module
    lr : float
    loss : {"huber", "euclidean"}
        ``"huber"``: smooth-L1 on the scaled displacements (targets clipped to ±10 steps; ``w`` is
        not used); ``"euclidean"``: ``mean(w · ‖pred − target‖)`` over windows and horizons.
    """

    def __init__(self, net: torch.nn.Module, lr: float = 1e-3, loss: str = "huber") -> None:
        super().__init__()
        if loss not in ("huber", "euclidean"):
            raise InvalidInputError(f"position loss must be 'huber' or 'euclidean', got {loss!r}")
        self.net, self.lr, self.loss_name = net, lr, loss
        self._val: list[np.ndarray] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y, _, w = batch
        if self.loss_name == "euclidean":
            loss = (torch.linalg.norm(self.net(x) - y, dim=2) * w[:, None]).mean()
        else:
            # Huber loss on targets clipped to ±10 history steps: a still history followed by a jump
            # (a centroid quantised to whole pixels) must not dominate the gradient.
            loss = torch.nn.functional.smooth_l1_loss(self.net(x), y.clamp(-10.0, 10.0))
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(x))
        return loss

    def validation_step(self, batch, batch_idx):
        x, y, s = batch[:3]
        err = torch.linalg.norm((self.net(x)[:, 0] - y[:, 0]) * s[:, 0], dim=1)
        self._val.append(err.detach().cpu().numpy())

    def on_validation_epoch_end(self) -> None:
        if self._val:
            self.log("val_ade_um", float(np.concatenate(self._val).mean()))
        self._val = []

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def _scaled(past: np.ndarray, future: np.ndarray, step_scale_um: float, weight: np.ndarray | None = None
            ) -> TensorDataset:
    """``(steps / s, future_rel / s, s, w)`` tensors; ``w = weight · s`` (ones when ``weight`` is None)."""
    steps = np.diff(past, axis=1)
    if step_scale_um > 0:
        s = np.full((len(past), 1, 1), step_scale_um)
    else:
        s = np.maximum(np.linalg.norm(steps, axis=2).mean(axis=1), 1e-6).reshape(-1, 1, 1)
    rel = future - past[:, -1:, :]
    w = np.ones(len(past)) if weight is None else weight * s[:, 0, 0]
    return TensorDataset(torch.from_numpy((steps / s).astype(np.float32)), torch.from_numpy((rel / s).astype(np.float32)),
                         torch.from_numpy(s.astype(np.float32)), torch.from_numpy(w.astype(np.float32)))


def _median_step(past: np.ndarray) -> float:
    """Median step length of a set of histories (µm), 1 when there is no motion at all."""
    return float(np.median(np.linalg.norm(np.diff(past, axis=1), axis=2))) or 1.0


def least_squares_anchor(past: np.ndarray, future: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """Weights (H, L − 1) of the linear forecast ``future_h − p_last = Σ_i w[h, i] · step_i`` by least squares.

    The same weights serve every axis (the forecast turns with the track).

    Parameters
    ----------
    past : numpy.ndarray, shape (N, L, D)
        Histories (µm).
    future : numpy.ndarray, shape (N, H, D)
        Next positions (µm).
    weight : numpy.ndarray, shape (N,), optional
        Window weights (e.g. one over the data set's median step length).

    Returns
    -------
    numpy.ndarray, float64, shape (H, L − 1)

    Raises
    ------
    InvalidInputError
        Without windows.
    """
    if len(past) == 0:
        raise InvalidInputError("no training windows for the least-squares anchor")
    steps = np.diff(past, axis=1)  # (N, L-1, D)
    rel = future - past[:, -1:, :]  # (N, H, D)
    wt = np.ones(len(past)) if weight is None else np.asarray(weight, float)
    x = (steps * wt[:, None, None]).transpose(0, 2, 1).reshape(-1, steps.shape[1])
    out = []
    for h in range(rel.shape[1]):
        y = (rel[:, h] * wt[:, None]).reshape(-1)
        out.append(np.linalg.lstsq(x, y, rcond=None)[0])
    return np.stack(out)


def position_data(config: PositionTrainConfig) -> dict[str, dict[str, Any]]:
    """History windows and tree split of every data set of a position config.

    Returns
    -------
    dict
        Per data set name: ``windows`` (:func:`~dynacell.forecast.positions.history_windows`),
        ``parts`` (row indices per part), ``scale_zyx``, ``tracks``.
    """
    from dynacell.forecast.positions import history_windows

    out = {}
    for spec in config.datasets:
        tracks, scale = load_track_spec(spec)
        win = history_windows(tracks, history=config.history, horizon=config.horizon, scale_zyx=scale)
        if len(win["past"]) == 0:
            raise InvalidInputError(f"{spec.path}: no track has {config.history + config.horizon} consecutive frames")
        parts = position_split(win, tree_groups(tracks, config.tree_depth), spec.name, config.fractions,
                               config.engine.seed)
        out[spec.name] = {"windows": win, "parts": parts, "scale_zyx": scale, "tracks": tracks}
    dims = {v["windows"]["past"].shape[2] for v in out.values()}
    if len(dims) != 1:
        raise InvalidInputError(f"position data sets mix dimensionalities {sorted(dims)}; train 2D and 3D apart")
    return out


def train_positions(config: PositionTrainConfig, out: str | Path, *, overwrite: bool = False,
                    progress: bool | None = None, training_command: str | None = None) -> dict[str, Any]:
    """Train a position model on tree-split history windows, evaluate it beside the baselines, write the folder.

    Parameters
    ----------
    config : PositionTrainConfig
        The training configuration.
    out : str or Path
        Model folder to write (atomic).
    overwrite : bool
        Replace an existing folder.
    progress : bool, optional
        Progress bars (default: when stderr is a terminal).
    training_command : str, optional
        Recorded in the card.

    Returns
    -------
    dict
        ``folder``, ``fit`` and ``metrics`` (per data set: the evaluation of
        :func:`dynacell.forecast.evaluate.evaluate_positions` on its test trees).
    """
    from dynacell.forecast.evaluate import evaluate_positions
    from dynacell.forecast.models import PositionForecastCard, PositionForecaster
    from dynacell.models.forecast import PositionTransformer

    torch.set_num_threads(config.engine.num_threads)
    data = position_data(config)
    ndim = next(iter(data.values()))["windows"]["past"].shape[2]
    rng = np.random.default_rng(config.engine.seed)

    def gather(part: str) -> tuple[np.ndarray, np.ndarray]:
        p = np.concatenate([d["windows"]["past"][d["parts"][part]] for d in data.values()])
        f = np.concatenate([d["windows"]["future"][d["parts"][part]] for d in data.values()])
        keep = np.arange(len(p))
        if part == "train" and len(p) > config.max_windows:
            keep = rng.choice(len(p), config.max_windows, replace=False)
            p, f = p[keep], f[keep]
        return p, f, keep

    tr, va = gather("train"), gather("val")
    # per training window: one over its data set's median step (µm and pixel data sets weigh alike),
    # times the data-set balance weight
    inv_step = np.concatenate([np.full(len(d["parts"]["train"]), 1.0 / _median_step(d["windows"]["past"][d["parts"]["train"]]))
                               for d in data.values()])
    if config.balance_datasets:
        sizes = [len(d["parts"]["train"]) for d in data.values()]
        inv_step = inv_step * np.concatenate([np.full(n, sum(sizes) / (len(sizes) * n)) for n in sizes])
    weight = inv_step[tr[2]]
    tr = tr[:2]
    kwargs = {"ndim": ndim, "seq_len": config.history, "horizon": config.horizon, "d_model": config.d_model,
              "nhead": 4, "num_layers": 2, "residual": config.residual}
    if config.anchor != "velocity":
        kwargs["anchor"] = config.anchor
    net = PositionTransformer(**kwargs)
    if config.residual and config.anchor == "linear" and config.anchor_init == "least_squares":
        net.set_anchor(torch.from_numpy(least_squares_anchor(*tr, weight=weight)))
    g = torch.Generator().manual_seed(config.engine.seed)
    train_dl = DataLoader(_scaled(*tr, config.step_scale_um, weight / weight.mean()), batch_size=config.batch_size,
                          shuffle=True, generator=g)
    val_dl = DataLoader(_scaled(*va[:2], config.step_scale_um), batch_size=4096)
    engine = config.engine
    if engine.monitor != "val_ade_um" or engine.mode != "min":
        engine = engine.model_copy(update={"monitor": "val_ade_um", "mode": "min"})
    fit = fit_module(PositionForecastModule(net, config.lr, config.loss), train_dl, val_dl, engine, progress=progress)
    card_fields = dict(
        name=config.name, architecture="position-transformer", model_kwargs=kwargs, ndim=int(ndim),
        history=config.history, horizon=config.horizon, step_scale_um=config.step_scale_um,
        training_command=training_command, seed=config.engine.seed,
        training_data={n: {"path": s.path, "scale_zyx_um": d["scale_zyx"],
                           "windows": {p: len(ix) for p, ix in d["parts"].items()}}
                       for (n, d), s in zip(data.items(), config.datasets, strict=True)},
        split={"by": f"lineage tree (sub-lineage {config.tree_depth} divisions below a root; "
                     "tracks without parents are their own tree)", "fractions": list(config.fractions),
               "seed": config.engine.seed},
    )
    pf = PositionForecaster(fit.module.net, PositionForecastCard(weights_sha256="0", n_parameters=0, config={},
                                                                 metrics={}, **_versions(), **card_fields))
    metrics: dict[str, Any] = {"val_ade_um": fit.best_score, "test": {}}
    for n, d in data.items():
        metrics["test"][n] = evaluate_positions(d["windows"], d["parts"], model=pf, horizon=config.horizon)
    card_fields["metrics"] = metrics
    folder = _write_model(out, fit.module.net, PositionForecastCard, card_fields, config, fit.history, overwrite)
    return {"folder": str(folder), "fit": {"epochs": fit.epochs_run, "best_epoch": fit.best_epoch,
                                           "val_ade_um": fit.best_score, "seconds": fit.seconds}, "metrics": metrics}
