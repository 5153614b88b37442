"""Model cards: one validated pydantic description of every model folder (no torch).

A *model folder* holds ``weights.pt`` (a torch ``state_dict``, loaded with
``torch.load(weights_only=True)``) and ``model.yaml``, the card. Every task subclasses
:class:`ModelCard` with its own fields and a ``task`` literal (the discriminator);
:func:`load_card` validates a ``model.yaml`` against that class and turns a missing or
malformed field into a :class:`~dynacell.errors.FormatError` that names the file and the
field — never a silent default. Shipped models live in ``dynacell/<task>/pretrained/<name>/``.

Common fields (:class:`ModelCard`): ``name``, ``task``, ``format_version``, ``dynacell_version``,
``torch_version``, ``architecture``, ``model_kwargs``, ``n_parameters``, ``ndim``,
``training_data``, ``split``, ``metrics`` (held-out figures), ``config`` (the training
configuration), ``training_command``, ``seed``, ``weights_sha256``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from dynacell.errors import FormatError, validation_problems

__all__ = ["ModelCard", "load_card", "read_yaml_mapping", "write_card", "sha256_file", "CARD_FILE", "WEIGHTS_FILE"]

#: File names inside a model folder.
CARD_FILE = "model.yaml"
WEIGHTS_FILE = "weights.pt"

C = TypeVar("C", bound="ModelCard")


class ModelCard(BaseModel):
    """Fields every model card has, whatever the task.

    Attributes
    ----------
    name : str
        Model name (the folder name of a shipped model).
    task : str
        ``"states"``, ``"segmentation"``, ``"forecast-frames"``, ``"forecast-positions"``,
        ``"diffusion"`` — subclasses narrow it to a literal.
    format_version : int
        Card format version (1).
    dynacell_version, torch_version : str
        Versions that wrote the model.
    architecture : str
        Name of the network in :mod:`dynacell.models`.
    model_kwargs : dict
        Keyword arguments of the network's constructor.
    n_parameters : int
        Trainable parameters.
    ndim : int
        Spatial dimensionality of the input (2 or 3).
    training_data : dict
        Files / datasets and sample counts used for training.
    split : dict
        How train / validation / test were separated (by sequence, tree, time block).
    metrics : dict
        Held-out metrics (``test``) and model-selection metrics (``val``).
    config : dict
        The training configuration (``model_dump(mode="json")``).
    training_command : str or None
        The command that trained it.
    seed : int or None
        The training seed.
    weights_sha256 : str
        SHA-256 of ``weights.pt``; checked on load.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str
    task: str
    format_version: int = 1
    dynacell_version: str
    torch_version: str
    architecture: str
    model_kwargs: dict[str, Any]
    n_parameters: int
    ndim: int
    training_data: dict[str, Any]
    split: dict[str, Any]
    metrics: dict[str, Any]
    config: dict[str, Any]
    training_command: str | None = None
    seed: int | None = None
    weights_sha256: str


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks).

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    str
        64 lowercase hex digits.

    Raises
    ------
    OSError
        If the file cannot be read.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_card(folder: str | Path, card_cls: type[C]) -> C:
    """Read and validate ``folder/model.yaml`` as ``card_cls``.

    Parameters
    ----------
    folder : path
        The model folder.
    card_cls : type
        A :class:`ModelCard` subclass.

    Returns
    -------
    ModelCard
        An instance of ``card_cls``.

    Raises
    ------
    FormatError
        If the card is missing, is not YAML, or a field is missing or malformed (the message
        names the file and each offending field).
    """
    path = Path(folder) / CARD_FILE
    raw = read_yaml_mapping(path, "model card", hint=f"a model folder holds {CARD_FILE} and {WEIGHTS_FILE}")
    try:
        return card_cls.model_validate(raw)
    except ValidationError as exc:
        problems = validation_problems(exc, prefix="field ", whole="(card)")
        raise FormatError(f"{path}: invalid {card_cls.__name__}: {problems}") from None


#: PyYAML's safe loader in libyaml's C implementation when PyYAML was built with it (the same documents,
#: about 7× faster on a card of 2,000 lines: 0.16 → 0.02 s), else the pure-Python one.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml_mapping(path: str | Path, what: str, *, hint: str = "", empty_ok: bool = False) -> dict[str, Any]:
    """Read a YAML file that holds one mapping: a model card or a training configuration.

    The one reader of dynacell's own YAML documents (model cards, training configurations); the
    caller validates the mapping against its pydantic model (:func:`dynacell.errors.validation_problems`
    for the message).

    Parameters
    ----------
    path : path
        The YAML file (UTF-8).
    what : str
        What the file is, for the messages (``"model card"``, ``"training configuration"``).
    hint : str
        Added to the message of a missing file (what to give instead).
    empty_ok : bool
        An empty file is an empty mapping (else an error).

    Returns
    -------
    dict
        The mapping.

    Raises
    ------
    FormatError
        ``"{path}: {what} not found"`` (and ``hint``), ``"{path}: not valid YAML (...)"``, or
        ``"{path}: expected a mapping of {what} fields, got {type}"``.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: {what} not found" + (f" ({hint})" if hint else ""))
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise FormatError(f"{path}: not valid YAML ({exc})") from None
    if raw is None and empty_ok:
        return {}
    if not isinstance(raw, dict):
        raise FormatError(f"{path}: expected a mapping of {what} fields, got {type(raw).__name__}")
    return raw


def write_card(card: ModelCard, folder: str | Path) -> Path:
    """Write ``card`` as ``folder/model.yaml`` (UTF-8, keys in field order).

    The folder should be the temporary folder of an atomic write
    (:func:`dynacell.io.writers.atomic_folder`), so that a card is never half written.

    Parameters
    ----------
    card : ModelCard
        The card.
    folder : str or Path
        The model folder (existing).

    Returns
    -------
    pathlib.Path
        The card file.
    """
    path = Path(folder) / CARD_FILE
    path.write_text(yaml.safe_dump(card.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    return path
