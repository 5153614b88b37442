"""The model card of a nucleus state classifier: :class:`StateModelCard` (pydantic, validated on load)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dynacell import STATES
from dynacell.cards import ModelCard

__all__ = ["StateModelCard", "ScaleNormalization"]


class ScaleNormalization(BaseModel):
    """The nucleus-size rule: crops are cut at ``median nucleus diameter / target_diameter_px`` per movie.

    Attributes
    ----------
    method : str
        ``"nucleus-size"``.
    target_diameter_px : float
        Diameter, in crop pixels, a median nucleus is scaled to.
    n_frames : int
        Labelled frames whose nuclei give the median diameter.
    units : {"px", "um"}
        Whether diameters are measured in pixels or in µm (3D, anisotropic voxels).
    rule : str
        The rule in words.
    training_movies : dict
        Per training movie: nucleus diameter and crop scale.
    """

    model_config = ConfigDict(extra="forbid")

    method: Literal["nucleus-size"] = "nucleus-size"
    target_diameter_px: float = Field(gt=0)
    n_frames: int = Field(3, ge=1)
    units: Literal["px", "um"] = "px"
    rule: str = ""
    training_movies: dict[str, Any] = Field(default_factory=dict)


class StateModelCard(ModelCard):
    """Card (``model.yaml``) of a state classifier; see :class:`dynacell.cards.ModelCard` for the common fields.

    Attributes
    ----------
    task : "states"
    classes : list of str
        Output classes in order (a subset of ``dynacell.STATES``).
    channels : list of str
        Crop channels of the sample sets (``t-1, t, t+1, mask`` [, ``seg t-1, seg t+1``]).
    model_channels : list of int
        Indices of the crop channels the network reads.
    crop_size_px : list of int
        Crop size per spatial axis in crop pixels.
    crop_size_um : list of float or None
        Physical crop size when crops are resampled to a fixed voxel.
    crop_size_rule : str or None
        What the crop covers, in words.
    target_voxel_um : float, list of float or None
        Physical crop voxel (µm) when the model resamples crops to a fixed voxel size.
    scale_normalization : ScaleNormalization or None
        The nucleus-size rule, when used.
    normalization : dict
        Intensity normalisation of the crops.
    temperature : float
        Softmax temperature fitted on the validation side (Guo et al. 2017).
    held_out : dict
        Held-out groups per dataset (the test side of the split).
    balance : str
        Class balancing (``sampler`` / ``loss`` / ``none``).
    best_epoch, epochs_run : int
        Selected epoch and epochs run.
    train_seconds : float
        Training wall time.
    machine : str
        Where it was trained.
    """

    task: Literal["states"]
    classes: list[str]
    channels: list[str]
    model_channels: list[int]
    crop_size_px: list[int]
    crop_size_um: list[float] | None = None
    crop_size_rule: str | None = None
    target_voxel_um: float | list[float] | None = None
    scale_normalization: ScaleNormalization | None = None
    normalization: dict[str, Any] | str
    temperature: float = Field(gt=0)
    held_out: dict[str, Any] = Field(default_factory=dict)
    balance: str = "sampler"
    best_epoch: int | None = None
    epochs_run: int | None = None
    train_seconds: float | None = None
    machine: str | None = None

    @field_validator("classes")
    @classmethod
    def _classes(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if c not in STATES]
        if not v or bad:
            raise ValueError(f"classes must be states of {list(STATES)}, got {v}")
        return v

    @field_validator("ndim")
    @classmethod
    def _ndim(cls, v: int) -> int:
        if v not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, got {v}")
        return v
