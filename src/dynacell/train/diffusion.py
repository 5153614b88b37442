"""Training of diffusion-coefficient networks on on-the-fly single-molecule simulation.

Every training batch is a fresh draw of :func:`dynacell.simulate.particles.simulate_stacks`
(D, SNR and background log-uniform, pixel size uniform over the configured ranges; seed
``(seed, epoch, batch)``), so the network never sees a stack twice. The validation set (model
selection) is one fixed simulation with its own seed; the held-out test grid of the benchmark
(:mod:`dynacell.diffusion.benchmark`) uses yet another seed. Loss: Gaussian negative
log-likelihood of ``log(D dt / a^2)`` with the predicted log-variance
(``torch.nn.functional.gaussian_nll_loss``). The run goes through the one training engine
(:func:`dynacell.train.engine.fit_module`) and writes a model folder (``weights.pt``,
``model.yaml``, ``history.csv``) atomically.
"""

from __future__ import annotations

import logging
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from dynacell.cards import read_yaml_mapping, sha256_file, write_card
from dynacell.diffusion.card import DiffusionCard
from dynacell.diffusion.preprocess import condition_features, log_dn, normalise_stacks
from dynacell.errors import FormatError, validation_problems
from dynacell.io.writers import atomic_folder
from dynacell.models.diffusion import build_diffusion_model
from dynacell.simulate.imaging import psf_sigma_from_fwhm
from dynacell.simulate.particles import draw_conditions, simulate_stacks
from dynacell.train.engine import EngineConfig, fit_module

__all__ = ["DiffusionModule", "DiffusionTrainConfig", "SimulatedStacks", "load_train_config", "simulate_batch",
           "train_diffusion"]

logger = logging.getLogger(__name__)

#: Log-variance clamp of the networks' second output (numerical safety of the NLL).
LOGVAR_RANGE = (-8.0, 6.0)


class SimulationRanges(BaseModel):
    """Physical ranges of the simulated training stacks (pydantic, ``extra="forbid"``)."""

    model_config = ConfigDict(extra="forbid")

    D_um2_per_s: tuple[float, float] = (0.005, 20.0)
    snr: tuple[float, float] = (1.5, 70.0)
    pixel_size_um: tuple[float, float] = (0.09, 0.17)
    background_photons: tuple[float, float] = (2.0, 30.0)
    frame_interval_s: float = 0.005
    exposure_fraction: float = 1.0
    psf_fwhm_nm: float = 250.0
    read_noise_adu: float = 1.5
    gain_adu_per_e: float = 1.0
    offset_adu: float = 100.0
    substeps: int = 16


class DiffusionTrainConfig(BaseModel):
    """A diffusion training run (YAML for ``dynacell diffusion train CONFIG``).

    Attributes
    ----------
    name : str
        Model name (written into the card).
    architecture : {"blurnet", "park-cnn", "resnet2d"}
    model_kwargs : dict
    n_frames : int
    shape_px : (int, int)
    ranges : SimulationRanges
    batch_size, batches_per_epoch : int
        Fresh simulated stacks per step and steps per epoch.
    n_val : int
        Size of the fixed validation simulation.
    val_seed : int
        Seed of the validation simulation (the engine's ``seed`` drives training draws).
    lr : float
        Peak learning rate of AdamW: linear warm-up over the first 5 % of the run, then cosine
        decay to zero at its end (the end is ``max_epochs`` epochs, or ``max_minutes``).
    max_minutes : float, optional
        Wall-clock budget of the optimisation: the learning rate follows the clock and training
        stops at the first epoch end past the budget (on a shared CPU).
    init_from : str, optional
        A model folder of the same architecture whose weights start this run (a continued run;
        recorded in the card).
    engine : EngineConfig
        ``monitor`` is ``val_nll`` (mode ``min``).
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str = "diffusion-2d"
    architecture: str = "blurnet"
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    n_frames: int = 16
    shape_px: tuple[int, int] = (32, 32)
    ranges: SimulationRanges = Field(default_factory=SimulationRanges)
    batch_size: int = Field(32, ge=2)
    batches_per_epoch: int = Field(100, ge=1)
    n_val: int = Field(1024, ge=8)
    val_seed: int = 1001
    lr: float = 2e-3
    max_minutes: float | None = Field(None, gt=0)
    init_from: str | None = None
    engine: EngineConfig = Field(default_factory=lambda: EngineConfig(monitor="val_nll", mode="min", max_epochs=15,
                                                                      patience=6))


def load_train_config(path: str | Path) -> DiffusionTrainConfig:
    """Read and validate a YAML training configuration; errors name the file and the field.

    Parameters
    ----------
    path : str or Path
        The YAML file (an empty file: every default).

    Returns
    -------
    DiffusionTrainConfig
        The validated configuration.

    Raises
    ------
    FormatError
        If the file is missing, not YAML or not a valid :class:`DiffusionTrainConfig`.
    """
    p = Path(path)
    raw = read_yaml_mapping(p, "training configuration", empty_ok=True)
    try:
        return DiffusionTrainConfig.model_validate(raw)
    except ValidationError as exc:
        raise FormatError(f"{p}: invalid diffusion training configuration: {validation_problems(exc)}") from None


def simulate_batch(n: int, cfg: DiffusionTrainConfig, seed: int, *, D_um2_per_s=None, snr=None) -> dict[str, np.ndarray]:
    """Simulate ``n`` stacks over the configured ranges and return network inputs and targets.

    Parameters
    ----------
    n : int
    cfg : DiffusionTrainConfig
    seed : int
        Seed of the conditions and of the simulation.
    D_um2_per_s, snr : (float, float), optional
        Override the D and SNR ranges (the benchmark's grid).

    Returns
    -------
    dict
        ``x`` (n, T, Y, X) float32, ``cond`` (n, 2) float32, ``y`` (n,) float32 log D in
        pixels²/frame, ``truth`` (pandas.DataFrame of :func:`simulate_stacks`), ``stacks`` (uint16).
    """
    r = cfg.ranges
    cond = draw_conditions(n, seed=seed, D_um2_per_s=D_um2_per_s or r.D_um2_per_s, snr=snr or r.snr,
                           pixel_size_um=r.pixel_size_um, background_photons=r.background_photons)
    sim = simulate_stacks(cond["D_um2_per_s"].to_numpy(), n_frames=cfg.n_frames, shape_px=cfg.shape_px,
                          pixel_size_um=cond["pixel_size_um"].to_numpy(), frame_interval_s=r.frame_interval_s,
                          exposure_s=r.frame_interval_s * r.exposure_fraction, psf_fwhm_nm=r.psf_fwhm_nm,
                          snr=cond["snr"].to_numpy(), background_photons=cond["background_photons"].to_numpy(),
                          read_noise_adu=r.read_noise_adu, gain_adu_per_e=r.gain_adu_per_e, offset_adu=r.offset_adu,
                          substeps=r.substeps, seed=seed)
    t = sim.truth
    x = normalise_stacks(sim.stacks, gain_adu_per_e=r.gain_adu_per_e, offset_adu=r.offset_adu,
                         read_noise_adu=r.read_noise_adu)
    sigma_px = t["psf_sigma_um"].to_numpy() / t["pixel_size_um"].to_numpy()
    c = condition_features(sigma_px, t["exposure_s"].to_numpy() / t["frame_interval_s"].to_numpy())
    y = log_dn(t["D_um2_per_s"], t["pixel_size_um"], t["frame_interval_s"]).astype(np.float32)
    return {"x": x, "cond": c, "y": y, "truth": t, "stacks": sim.stacks}


class SimulatedStacks(IterableDataset):
    """Fresh simulated training batches: ``batches_per_epoch`` batches of ``batch_size`` per epoch.

    The batch ``i`` of epoch ``e`` is simulated with seed ``[seed, e, i]`` folded to an integer, so a
    run is reproducible from its seed. Use with ``DataLoader(ds, batch_size=None)``.
    """

    def __init__(self, cfg: DiffusionTrainConfig, seed: int) -> None:
        self.cfg, self.seed, self.epoch = cfg, int(seed), 0

    def __len__(self) -> int:
        return self.cfg.batches_per_epoch

    def __iter__(self):
        e = self.epoch
        self.epoch += 1
        for i in range(self.cfg.batches_per_epoch):
            s = int(np.random.SeedSequence([self.seed, e, i]).generate_state(1)[0])
            b = simulate_batch(self.cfg.batch_size, self.cfg, s)
            yield torch.from_numpy(b["x"]), torch.from_numpy(b["cond"]), torch.from_numpy(b["y"])


class DiffusionModule(pl.LightningModule):
    """Gaussian-NLL regression of log D (pixels²/frame); logs ``val_nll``, ``val_msle``, ``val_cov68``.

    Parameters
    ----------
    net : torch.nn.Module
        ``(x, cond) -> (B, 2)`` (mean, log-variance).
    lr : float
    total_steps : int
        Steps of the learning-rate schedule (without a time budget).
    max_seconds : float, optional
        Time budget: the schedule follows the clock and training stops past it.
    """

    def __init__(self, net: torch.nn.Module, lr: float = 2e-3, total_steps: int = 1000,
                 max_seconds: float | None = None) -> None:
        super().__init__()
        self.net, self.lr, self.total_steps = net, float(lr), int(total_steps)
        self.max_seconds = max_seconds
        self._t0: float | None = None
        self._val: list[np.ndarray] = []

    def _progress(self, step: int) -> float:
        """Fraction of the run done: by the clock with a time budget, else by steps."""
        if self.max_seconds:
            if self._t0 is None:
                self._t0 = time.monotonic()
            return min((time.monotonic() - self._t0) / self.max_seconds, 1.0)
        return min(step / max(self.total_steps, 1), 1.0)

    def _lr_factor(self, step: int) -> float:
        f = self._progress(step)
        return max(f / 0.05, 1e-3) if f < 0.05 else 0.5 * (1.0 + math.cos(math.pi * (f - 0.05) / 0.95)) + 1e-3

    def on_train_epoch_end(self) -> None:  # noqa: D102
        if self.max_seconds and self._progress(0) >= 1.0:
            self.trainer.should_stop = True

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out = self.net(x, cond)
        return torch.stack([out[:, 0], out[:, 1].clamp(*LOGVAR_RANGE)], dim=1)

    def _nll(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gaussian_nll_loss(out[:, 0], y, out[:, 1].exp())

    def training_step(self, batch, batch_idx):  # noqa: D102
        x, c, y = batch
        loss = self._nll(self(x, c), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(x))
        return loss

    def validation_step(self, batch, batch_idx):  # noqa: D102
        x, c, y = batch
        out = self(x, c)
        self._val.append(torch.stack([out[:, 0], out[:, 1], y], dim=1).detach().cpu().numpy())

    def on_validation_epoch_end(self) -> None:  # noqa: D102
        if not self._val:
            return
        v = np.concatenate(self._val)
        self._val = []
        mu, lv, y = v[:, 0], v[:, 1], v[:, 2]
        nll = float(np.mean(0.5 * (lv + (mu - y) ** 2 / np.exp(lv))))
        self.log("val_nll", nll)
        self.log("val_msle", float(np.mean((mu - y) ** 2)))
        self.log("val_cov68", float(np.mean(np.abs(mu - y) <= np.exp(0.5 * lv))))

    def configure_optimizers(self):  # noqa: D102
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, self._lr_factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _versions() -> dict[str, str]:
    import dynacell

    return {"dynacell_version": getattr(dynacell, "__version__", "0"), "torch_version": torch.__version__}


def training_ranges(cfg: DiffusionTrainConfig) -> dict[str, list[float]]:
    """The card's ``training_ranges`` of a configuration (physical and dimensionless)."""
    r = cfg.ranges
    sig_nm = psf_sigma_from_fwhm(r.psf_fwhm_nm)
    px_lo, px_hi = r.pixel_size_um
    dt = r.frame_interval_s
    return {
        "D_um2_per_s": list(r.D_um2_per_s),
        "pixel_size_um": [px_lo, px_hi],
        "frame_interval_s": [dt, dt],
        "exposure_s": [dt * r.exposure_fraction] * 2,
        "exposure_fraction": [r.exposure_fraction] * 2,
        "psf_fwhm_nm": [r.psf_fwhm_nm] * 2,
        "psf_sigma_px": [sig_nm / 1000 / px_hi, sig_nm / 1000 / px_lo],
        "snr": list(r.snr),
        "background_photons": list(r.background_photons),
        "log_dn": [float(log_dn(r.D_um2_per_s[0], px_hi, dt)[0]), float(log_dn(r.D_um2_per_s[1], px_lo, dt)[0])],
    }


def train_diffusion(cfg: DiffusionTrainConfig, out: str | Path, *, progress: bool | None = None,
                    overwrite: bool = False, command: str | None = None) -> Path:
    """Train a diffusion network on on-the-fly simulation and write its model folder.

    Parameters
    ----------
    cfg : DiffusionTrainConfig
    out : path
        Model folder to write (``weights.pt``, ``model.yaml``, ``history.csv``), atomically.
    progress : bool or None
    overwrite : bool
        Replace an existing folder.
    command : str, optional
        The command line recorded in the card (default: this process's argv).

    Returns
    -------
    pathlib.Path
        The model folder.
    """
    torch.set_num_threads(cfg.engine.num_threads)
    val = simulate_batch(cfg.n_val, cfg, cfg.val_seed)
    val_loader = DataLoader(TensorDataset(torch.from_numpy(val["x"]), torch.from_numpy(val["cond"]),
                                          torch.from_numpy(val["y"])), batch_size=128)
    train_loader = DataLoader(SimulatedStacks(cfg, cfg.engine.seed), batch_size=None)
    kwargs = dict(cfg.model_kwargs)
    if cfg.architecture in ("park-cnn", "resnet2d"):
        kwargs.setdefault("n_frames", cfg.n_frames)
    torch.manual_seed(cfg.engine.seed)
    net = build_diffusion_model(cfg.architecture, **kwargs)
    stacks_before = 0
    if cfg.init_from:
        from dynacell.cards import load_card
        from dynacell.models.runtime import load_state_dict

        prev = load_card(cfg.init_from, DiffusionCard)
        if prev.architecture != cfg.architecture or prev.model_kwargs != kwargs:
            raise FormatError(f"{cfg.init_from}: init_from is a {prev.architecture} {prev.model_kwargs}, the run a "
                              f"{cfg.architecture} {kwargs}")
        net.load_state_dict(load_state_dict(Path(cfg.init_from) / "weights.pt"))
        stacks_before = int(prev.training_data.get("stacks_seen", 0))
    module = DiffusionModule(net, lr=cfg.lr, total_steps=cfg.engine.max_epochs * cfg.batches_per_epoch,
                             max_seconds=cfg.max_minutes * 60.0 if cfg.max_minutes else None)
    res = fit_module(module, train_loader, val_loader, cfg.engine, progress=progress)
    hist = res.history
    best = hist.loc[hist["epoch"] == res.best_epoch].iloc[0].to_dict() if len(hist) else {}
    card = DiffusionCard(
        name=cfg.name, **_versions(), architecture=cfg.architecture, model_kwargs=kwargs,
        n_parameters=int(sum(p.numel() for p in net.parameters())), ndim=2,
        training_data={"source": "dynacell.simulate.particles.simulate_stacks, fresh stacks every batch",
                       "stacks_seen": stacks_before + int(res.epochs_run * cfg.batches_per_epoch * cfg.batch_size),
                       "motion": "brownian", "init_from": cfg.init_from},
        split={"train": f"on-the-fly simulation, seeds SeedSequence([{cfg.engine.seed}, epoch, batch])",
               "val": f"{cfg.n_val} simulated stacks, seed {cfg.val_seed} (model selection)",
               "test": "the benchmark's grid, its own seed (dynacell diffusion benchmark)"},
        metrics={"val": {k: float(best[k]) for k in ("val_nll", "val_msle", "val_cov68") if k in best},
                 "best_epoch": res.best_epoch, "epochs_run": res.epochs_run, "fit_seconds": round(res.seconds, 1),
                 "device": res.device},
        config=cfg.model_dump(mode="json"),
        training_command=command or " ".join(shlex.quote(a) for a in sys.argv),
        seed=cfg.engine.seed, weights_sha256="0" * 64,
        n_frames=cfg.n_frames, shape_px=list(cfg.shape_px), training_ranges=training_ranges(cfg),
    )
    with atomic_folder(out, overwrite=overwrite) as tmp:
        tmp = Path(tmp)
        torch.save(res.module.net.state_dict(), tmp / "weights.pt")
        card.weights_sha256 = sha256_file(tmp / "weights.pt")
        write_card(card, tmp)
        hist.to_csv(tmp / "history.csv", index=False)
    logger.info("diffusion: %s trained (%s), best val_nll %.3f at epoch %d", cfg.name, cfg.architecture,
                res.best_score, res.best_epoch)
    return Path(out)


def _main(argv: list[str] | None = None) -> None:  # pragma: no cover - convenience entry
    import argparse

    ap = argparse.ArgumentParser(description="train a diffusion network (see dynacell diffusion train)")
    ap.add_argument("config")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--overwrite", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    train_diffusion(load_train_config(a.config), a.out, overwrite=a.overwrite, progress=False)


if __name__ == "__main__":  # pragma: no cover
    _main()
