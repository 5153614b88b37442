"""Train a nucleus state classifier from sample sets: :func:`fit`.

Steps: load the sample sets (:class:`dynacell.samples.SampleSet`), keep the configured
classes, split by tree / time / sequence (:func:`dynacell.samples.splits.assign_split`),
train through the one training engine (:func:`dynacell.train.engine.fit_module`, Lightning) with the
state task module (:mod:`dynacell.train.states`: class balancing by a weighted sampler or a weighted
loss, batch augmentation), select the epoch with the best validation macro-F1 (early stopping), fit
the temperature on the validation set, evaluate once on the test set, and write the model folder
with its validated :class:`~dynacell.states.card.StateModelCard`.
"""

from __future__ import annotations

import logging
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from dynacell.errors import InvalidInputError, OutputExistsError
from dynacell.train.config import TrainConfig

__all__ = ["fit", "load_samples", "TrainData"]

logger = logging.getLogger(__name__)


class TrainData:
    """Samples of one training run: crops, their table, class indices and split side.

    Attributes
    ----------
    x : numpy.ndarray, float32, shape (N, 4, [Z,] Y, X)
        Crops ``[t−1, t, t+1, mask]``.
    meta : pandas.DataFrame
        One row per sample (``dataset, t, label, track_id, tree_id, state, z, y, x``) plus
        ``y`` (class index) and ``split``.
    info : dict
        Per input file: path, dataset names, crop size (px), voxel size (µm), normalisation.
    """

    def __init__(self, x: np.ndarray, meta: pd.DataFrame, info: list[dict[str, Any]]) -> None:
        self.x, self.meta, self.info = x, meta, info

    def indices(self, side: str) -> np.ndarray:
        """Row indices of split side ``train``, ``val`` or ``test``."""
        return np.flatnonzero(self.meta["split"].to_numpy() == side)

    def counts(self) -> dict[str, dict[str, int]]:
        """Samples per split side and state."""
        tab = self.meta.groupby(["split", "state"]).size()
        return {s: {k: int(v) for k, v in tab[s].items()} for s in tab.index.get_level_values(0).unique()}


def _set_info(ss: Any, path: Path) -> dict[str, Any]:
    attrs = dict(getattr(ss, "attrs", {}) or {})
    info: dict[str, Any] = {"path": str(path), "crop_size_px": list(ss.size)}
    for key in ("voxel_size_um", "target_voxel_um", "normalization", "rules", "seed", "sources", "dataset",
                "scale_normalization", "relabel"):
        if attrs.get(key) is not None:
            info[key] = _plain(attrs[key])
    return info


def _plain(v: Any) -> Any:
    """YAML-safe copy of ``v`` (numpy scalars/arrays to Python)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, Path):
        return str(v)
    return v


def load_samples(paths: list[str], classes: list[str]) -> TrainData:
    """Load and concatenate sample sets, keeping samples whose state is in ``classes``.

    Parameters
    ----------
    paths : list of str
        Sample-set files written by :meth:`dynacell.samples.SampleSet.save`.
    classes : list of str
        States kept, in class-index order.

    Returns
    -------
    TrainData
        With ``meta["y"]`` the class index; ``split`` not yet assigned.

    Raises
    ------
    InvalidInputError
        If a file is missing, crops of different files differ in shape, or no sample is left.
    """
    from dynacell.samples import SampleSet

    xs, metas, info = [], [], []
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise InvalidInputError(
                f"sample set {path} does not exist; build it with `dynacell extract` (see docs/models.md)")
        ss = SampleSet.load(path)
        keep = ss.meta["state"].astype(str).isin(classes).to_numpy()
        xs.append(np.asarray(ss.x)[keep])
        m = ss.meta.loc[keep].reset_index(drop=True).copy()
        m["source_file"] = str(path)
        metas.append(m)
        info.append(_set_info(ss, path) | {"datasets": sorted(m["dataset"].astype(str).unique().tolist()),
                                           "n_samples": int(keep.sum())})
    shapes = {x.shape[1:] for x in xs}
    if len(shapes) != 1:
        raise InvalidInputError(f"sample sets {paths} hold crops of different shapes {sorted(shapes)}; "
                                "extract them with the same --size")
    x = np.concatenate(xs).astype(np.float32, copy=False)
    meta = pd.concat(metas, ignore_index=True)
    if len(meta) == 0:
        raise InvalidInputError(f"no samples of classes {classes} in {paths}")
    meta["y"] = meta["state"].astype(str).map({c: i for i, c in enumerate(classes)}).astype(int)
    return TrainData(x, meta, info)


def fit(config: TrainConfig, *, overwrite: bool = False, progress: bool | None = None,
        data: TrainData | None = None) -> Path:
    """Train, select, calibrate and test a classifier; write its model folder.

    Parameters
    ----------
    config : TrainConfig
        The run (data, split, model, optimisation, augmentation, seed).
    overwrite : bool
        Replace an existing ``config.out/config.name`` folder.
    progress : bool or None
        Lightning's progress bar (None: when stderr is a terminal).
    data : TrainData, optional
        Already loaded samples (benchmarks reuse one load for several models); default
        :func:`load_samples` on ``config.data``.

    Returns
    -------
    pathlib.Path
        The model folder ``config.out/config.name`` with ``weights.pt`` (state_dict),
        ``model.yaml`` (card), ``config.yaml``, ``history.csv`` (loss and validation
        metrics per epoch) and ``test_predictions.csv`` (held-out samples with calibrated
        ``p_*`` and uncalibrated ``p_raw_*`` probabilities).

    Raises
    ------
    InvalidInputError
        Missing data, a split side without samples, a class absent from training.
    OutputExistsError
        If the folder exists and ``overwrite`` is False.
    """
    import torch

    from dynacell import __version__
    from dynacell.cards import sha256_file, write_card
    from dynacell.io.writers import atomic_folder
    from dynacell.metrics.classification import classification_report, fit_temperature
    from dynacell.models import build_model, count_parameters, model_channels
    from dynacell.models.runtime import forward_batched, resolve_device, softmax
    from dynacell.samples.crops import CHANNELS, CONTEXT_CHANNELS
    from dynacell.samples.splits import assign_split
    from dynacell.states.card import StateModelCard
    from dynacell.train.engine import EngineConfig, fit_module
    from dynacell.train.states import StateTaskModule, state_loaders

    final = Path(config.out) / config.name
    if final.exists() and not overwrite:
        raise OutputExistsError(f"model folder {final} exists; pass --overwrite or choose another name/out")
    t0 = time.perf_counter()
    device = resolve_device(config.device)
    if data is None:
        data = load_samples(config.data, config.classes)
    data.meta["split"] = assign_split(data.meta, config.split)
    counts = data.counts()
    for side in ("train", "val", "test"):
        if side not in counts:
            raise InvalidInputError(f"split {config.split.model_dump()} leaves no {side} samples; "
                                    "change fractions or the datasets held out")
    missing = [c for c in config.classes if counts["train"].get(c, 0) == 0]
    if missing:
        raise InvalidInputError(f"classes {missing} have no training samples after the split; "
                                f"samples per side: {counts}")
    x_all = _center_crop(data.x, config.center_crop)
    rng = np.random.default_rng(config.seed)
    tr = data.indices("train")
    y_all = data.meta["y"].to_numpy().astype(np.int64)
    if config.max_train_per_class:
        keep = []
        for c in range(len(config.classes)):
            idx = tr[y_all[tr] == c]
            if len(idx) > config.max_train_per_class:
                idx = rng.choice(idx, config.max_train_per_class, replace=False)
            keep.append(idx)
        tr = np.sort(np.concatenate(keep))
    va, te = data.indices("val"), data.indices("test")
    n_classes = len(config.classes)
    channels = model_channels(config.model, context=config.context)
    if max(channels) >= x_all.shape[1]:
        raise InvalidInputError(
            f"model {config.model!r} with context={config.context} reads channels {list(channels)} but the "
            f"sample sets have {x_all.shape[1]}; build them with segmentation context (context=True) or set context: false")
    ndim = x_all.ndim - 2
    torch.manual_seed(config.seed)
    net = build_model(config.model, ndim, in_channels=len(channels), n_classes=n_classes, **config.model_kwargs)
    per_epoch = config.samples_per_epoch or len(tr)
    train_loader, val_loader, class_counts = state_loaders(
        x_all, y_all, tr, va, batch_size=config.batch_size, samples_per_epoch=per_epoch, balance=config.balance,
        n_classes=n_classes, seed=config.seed)
    inv = 1.0 / np.maximum(class_counts, 1.0)
    class_weight = inv / inv.sum() * n_classes if config.balance == "loss" else None
    steps = max(1, per_epoch // config.batch_size)
    module = StateTaskModule(net, channels, config.augment, lr=config.lr, weight_decay=config.weight_decay,
                             total_steps=config.epochs * steps, n_classes=n_classes, class_weight=class_weight,
                             seed=config.seed)
    engine = EngineConfig(max_epochs=config.epochs, patience=config.patience, monitor="val_score", mode="max",
                          seed=config.seed, accelerator="gpu" if device == "cuda" else "cpu", devices=1,
                          num_threads=config.num_threads)
    result = fit_module(module, train_loader, val_loader, engine, progress=progress)
    model = result.module.model.eval()
    history = result.history.rename(columns={"val_score": "val_macro_f1"})
    best_epoch = result.best_epoch
    z_val = forward_batched(model, x_all[va], channels=channels)
    temperature = fit_temperature(z_val, y_all[va])
    z_te = forward_batched(model, x_all[te], channels=channels)
    test_raw = classification_report(y_all[te], proba=softmax(z_te), classes=config.classes)
    test = classification_report(y_all[te], proba=softmax(z_te, temperature), classes=config.classes)
    test["ece_before_temperature"] = test_raw["ece"]
    test["by_dataset"] = _by_dataset(data.meta.iloc[te], y_all[te], softmax(z_te, temperature), config.classes)
    val = classification_report(y_all[va], proba=softmax(z_val, temperature), classes=config.classes)
    train_seconds = time.perf_counter() - t0

    with atomic_folder(final, overwrite=overwrite) as tmp:
        torch.save(model.state_dict(), tmp / "weights.pt")
        history.to_csv(tmp / "history.csv", index=False)
        _predictions_table(data.meta.iloc[te], softmax(z_te, temperature), softmax(z_te), config.classes).to_csv(
            tmp / "test_predictions.csv", index=False)
        (tmp / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
        size = list(x_all.shape[2:])
        info0 = data.info[0]
        vox = info0.get("target_voxel_um") or info0.get("voxel_size_um")
        card = StateModelCard(
            name=config.name,
            task="states",
            dynacell_version=__version__,
            torch_version=str(torch.__version__),
            architecture=config.model,
            model_kwargs=_plain(config.model_kwargs),
            n_parameters=count_parameters(model),
            classes=list(config.classes),
            ndim=ndim,
            channels=list(CONTEXT_CHANNELS if x_all.shape[1] == 6 else CHANNELS),
            model_channels=list(channels),
            crop_size_px=size,
            crop_size_um=_crop_um(size, vox),
            crop_size_rule=_crop_rule(size, data.info),
            target_voxel_um=_plain(info0.get("target_voxel_um")),
            scale_normalization=_scale_card(data.info),
            normalization=_normalization(data.info),
            temperature=float(temperature),
            training_data={"files": _plain(data.info), "samples": counts,
                           "train_used": {c: int(class_counts[i]) for i, c in enumerate(config.classes)}},
            split=config.split.model_dump(mode="json"),
            held_out=_held_out(data.meta),
            balance=config.balance,
            best_epoch=int(best_epoch),
            epochs_run=int(result.epochs_run),
            train_seconds=round(train_seconds, 1),
            machine=f"{platform.machine()} {result.device} threads={config.num_threads}",
            metrics={"test": _plain(test), "val": _plain(val)},
            config=config.model_dump(mode="json"),
            training_command=f"dynacell train <config.yaml>  (name: {config.name})",
            seed=int(config.seed),
            weights_sha256=sha256_file(tmp / "weights.pt"),
        )
        write_card(card, tmp)
    logger.info("wrote %s: test macro-F1 %.4f (T=%.2f, best epoch %d, %.0f s)", final, test["macro_f1"],
                temperature, best_epoch, train_seconds)
    return final


def _center_crop(x: np.ndarray, edge: int | None) -> np.ndarray:
    """Centre crop ``(N, C, *S)`` to ``edge`` along every spatial axis (a view); unchanged if None.

    The centroid pixel of a crop is at index ``s // 2`` (:mod:`dynacell.samples.crops`), so the
    window ``s//2 - edge//2 .. + edge`` keeps it at ``edge // 2``.
    """
    if edge is None:
        return x
    sl = [slice(None), slice(None)]
    for s in x.shape[2:]:
        if edge > s:
            raise InvalidInputError(f"center_crop {edge} is larger than the sample crops ({s} px)")
        lo = s // 2 - edge // 2
        sl.append(slice(lo, lo + edge))
    return x[tuple(sl)]


def _crop_rule(size: list[int], info: list[dict[str, Any]]) -> str:
    """What the crop covers physically: fixed µm, or per movie by the nucleus-size rule."""
    scales = [i.get("scale_normalization") for i in info if i.get("scale_normalization")]
    if not scales:
        return "fixed: crop_size_px (× target_voxel_um when set)"
    s0 = scales[0]
    box = " × ".join(str(int(v)) for v in size)
    rule = (f"per movie: {box} crop voxels of (median nucleus diameter / {s0['target_diameter_px']:g}); "
            f"the crop spans {size[-1] / float(s0['target_diameter_px']):.2f} nucleus diameters")
    per = [s.get("per_part") for s in scales if s.get("per_part")]
    if per:
        lo = min(p["crop_voxel_um_min"] for p in per)
        hi = max(p["crop_voxel_um_max"] for p in per)
        rule += f"; training movies: crop voxel {lo:.2f}–{hi:.2f} µm = {size[-1] * lo:.1f}–{size[-1] * hi:.1f} µm boxes"
    return rule


def _scale_card(info: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Card entry of the nucleus-size rule (:mod:`dynacell.samples.scale`), None if unused.

    Raises
    ------
    InvalidInputError
        If the training sets mix scale-normalised and pixel crops or different target diameters.
    """
    scales = [i.get("scale_normalization") for i in info]
    if all(s is None for s in scales):
        return None
    targets = {None if s is None else float(s["target_diameter_px"]) for s in scales}
    if len(targets) != 1 or None in targets:
        raise InvalidInputError(
            f"sample sets {[i['path'] for i in info]} mix scale normalisations (target_diameter_px "
            f"{sorted(map(str, targets))}); build them all with the same --target-diameter")
    s0 = next(s for s in scales if s is not None)
    units = {str(s.get("units", "px")) for s in scales if s is not None}
    if len(units) != 1:
        raise InvalidInputError(f"sample sets {[i['path'] for i in info]} mix nucleus-size rules in pixels and µm")
    return {"method": s0["method"], "target_diameter_px": float(s0["target_diameter_px"]),
            "n_frames": int(s0["n_frames"]), "units": units.pop(),
            "rule": "pixels_per_crop_px = median equivalent diameter of the label objects of the first n_frames "
                    "labelled frames / target_diameter_px, computed per movie at inference"
                    + ("; units um: diameter measured in µm with the voxel size, crop voxel target_voxel_um = "
                       "diameter_um / target_diameter_px" if s0.get("units") == "um" else ""),
            "training_movies": {str(i.get("dataset", i["path"])): {
                k: (round(float(s[k]), 4) if isinstance(s[k], (int, float)) else _plain(s[k]))
                for k in ("nucleus_diameter_px", "pixels_per_crop_px", "nucleus_diameter_um", "target_voxel_um",
                          "per_part") if k in s} for i, s in zip(info, scales)}}


def _held_out(meta: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per dataset: the lineage trees and frame range of the test side (to re-check a model on its test data)."""
    out: dict[str, dict[str, Any]] = {}
    test = meta[meta["split"] == "test"]
    for d, g in test.groupby(test["dataset"].astype(str)):
        out[str(d)] = {"test_tree_ids": sorted(int(v) for v in g["tree_id"].unique()),
                       "test_frames": [int(g["t"].min()), int(g["t"].max())], "n_test": int(len(g))}
    return out


def _by_dataset(meta: pd.DataFrame, y: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict[str, Any]:
    from dynacell.metrics.classification import classification_report

    out = {}
    ds = meta["dataset"].astype(str).to_numpy()
    for d in sorted(set(ds.tolist())):
        sel = ds == d
        rep = classification_report(y[sel], proba=proba[sel], classes=classes)
        out[d] = {k: rep[k] for k in ("macro_f1", "balanced_accuracy", "confusion", "n")}
    return out


def _predictions_table(meta: pd.DataFrame, proba: np.ndarray, proba_raw: np.ndarray,
                       classes: list[str]) -> pd.DataFrame:
    cols = [c for c in ("dataset", "t", "label", "track_id", "tree_id", "state") if c in meta.columns]
    df = meta[cols].reset_index(drop=True).copy()
    df["predicted"] = np.asarray(classes)[proba.argmax(1)] if len(proba) else []
    for i, c in enumerate(classes):
        df[f"p_{c}"] = proba[:, i]
        df[f"p_raw_{c}"] = proba_raw[:, i]
    return df


def _crop_um(size: list[int], vox: Any) -> list[float] | None:
    if vox is None:
        return None
    if np.isscalar(vox):
        vox = [float(vox)] * len(size)
    vox = list(vox)[-len(size):]
    if len(vox) != len(size):
        return None
    return [round(float(s) * float(v), 4) for s, v in zip(size, vox)]


def _normalization(info: list[dict[str, Any]]) -> Any:
    for i in info:
        if "normalization" in i:
            return i["normalization"]
    try:
        from dynacell.samples.crops import NORMALIZATION

        return _plain(NORMALIZATION)
    except ImportError:
        return "per-crop percentiles 1 / 99.8 of the raw channels mapped to [0, 1] (dynacell.samples)"
