"""Training configuration (pydantic, ``extra="forbid"``), saved next to every trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dynacell.samples.splits import SplitConfig
from dynacell.cards import read_yaml_mapping
from dynacell.errors import InvalidInputError, validation_problems
from dynacell.train.augment import AugmentConfig

__all__ = ["TrainConfig", "SplitConfig", "load_config"]


class TrainConfig(BaseModel):
    """Everything that defines a training run of a nucleus state classifier.

    Written as ``config.yaml`` in the model folder; ``dynacell train config.yaml`` reruns it.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    version: Literal[1] = 1
    name: str = Field(..., description="model name (folder name, registry name)")
    data: list[str] = Field(..., min_length=1, description="sample-set files (.npz, dynacell.samples.SampleSet)")
    classes: list[str] = Field(default_factory=lambda: ["stable", "mitotic", "new_daughter"])
    split: SplitConfig = Field(default_factory=SplitConfig)
    center_crop: int | None = Field(None, ge=4, description="centre-crop the samples to this edge (px) first; "
                                    "the seed cropped 64³ to 32³")
    model: str = "dcnet"
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    context: bool = Field(False, description="read the segmentation-context channels [seg t-1, seg t+1] "
                          "(6-channel sample sets built with context=True; 4ncnn and dcnet)")
    epochs: int = Field(30, ge=1)
    samples_per_epoch: int | None = Field(4000, ge=1, description="draws per epoch (sampler); None = one pass")
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    balance: Literal["sampler", "loss", "none"] = "sampler"
    max_train_per_class: int | None = Field(None, ge=1, description="random subsample of each class in train")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    patience: int = Field(6, ge=1, description="early stopping on validation macro-F1")
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int = Field(1, ge=1, description="torch CPU threads (1 is fastest on a loaded machine)")
    out: str = Field(..., description="parent folder; the model folder is out/name")

    @field_validator("classes")
    @classmethod
    def _known_states(cls, v: list[str]) -> list[str]:
        from dynacell import STATES

        bad = [c for c in v if c not in STATES]
        if bad or len(v) < 2 or len(set(v)) != len(v):
            raise ValueError(f"classes must be >= 2 distinct states from {list(STATES)}, got {v}")
        return v

    @model_validator(mode="after")
    def _known_model(self) -> TrainConfig:
        from dynacell.models import MODEL_NAMES

        if self.model not in MODEL_NAMES:
            raise ValueError(f"model {self.model!r} unknown; expected one of {list(MODEL_NAMES)}")
        return self


def load_config(path: str | Path) -> TrainConfig:
    """Read a :class:`TrainConfig` from YAML (relative paths are relative to the working directory).

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    TrainConfig
        The validated configuration.

    Raises
    ------
    FormatError
        If the file is missing, not valid YAML or not a mapping (:func:`dynacell.cards.read_yaml_mapping`).
    InvalidInputError
        If a field is wrong (the message lists the fields).
    """
    path = Path(path)
    raw = read_yaml_mapping(path, "training config", hint="give a YAML file, see docs/models.md")
    try:
        cfg = TrainConfig.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInputError(f"training config {path}: {validation_problems(exc)}") from None
    return cfg
