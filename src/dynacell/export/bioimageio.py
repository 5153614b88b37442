"""Export a shipped state model to the bioimage.io model format (a zip any bioimage.io tool can run).

The package holds the network as TorchScript (traced with the model's own channels, temperature
and softmax inside, so its output is the calibrated state probabilities), a test input and its
expected output, the model card as documentation, and the ``rdf.yaml`` description built and
checked with ``bioimageio.spec`` (its own validator; a package that does not validate is not
written).

Input: a batch of crops ``(batch, channel, [z,] y, x)`` float32 exactly as dynacell makes them
(:func:`dynacell.samples.crops.crop_window`: channels t−1, t, t+1, mask and, for context models,
segmentation t−1, t+1; intensities normalised per crop). Output: ``(batch, class)`` probabilities.
"""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

import numpy as np

from dynacell.errors import FormatError, OutputExistsError

__all__ = ["export_bioimageio", "validate_bioimageio"]


def _wrapped(clf):
    import torch

    channels = list(clf.channels)
    temperature = float(clf.temperature)

    class _Probabilities(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            logits = self.net(x[:, channels])
            return torch.softmax(logits / temperature, dim=1)

    return _Probabilities(clf.model.eval()).eval()


def validate_bioimageio(source: str | Path) -> str:
    """Validate a bioimage.io package or ``rdf.yaml`` with bioimageio.spec's own checker.

    Parameters
    ----------
    source : str or Path
        The ``.zip`` package or its ``rdf.yaml``.

    Returns
    -------
    str
        The validation status (``"valid-format"`` or ``"passed"``).

    Raises
    ------
    FormatError
        If the description does not validate (the checker's summary is in the message).
    """
    from bioimageio.spec import load_description

    with warnings.catch_warnings():  # bioimageio.spec leaves files open for the garbage collector
        warnings.simplefilter("ignore", ResourceWarning)
        descr = load_description(str(source), perform_io_checks=True)
        summary = descr.validation_summary
        del descr
        gc.collect()
    if summary.status not in ("valid-format", "passed"):
        raise FormatError(f"{source}: bioimage.io validation {summary.status}: {summary.format()}")
    return str(summary.status)


def export_bioimageio(name: str, out: str | Path, *, overwrite: bool = False, seed: int = 0) -> Path:
    """Write a shipped (or any) state model as a validated bioimage.io model package.

    Parameters
    ----------
    name : str
        Shipped model name (``nuclei-2d``, ``nuclei-3d``) or model folder.
    out : str or Path
        Output ``.zip``.
    overwrite : bool
        Replace an existing ``out``.
    seed : int
        Seed of the random test input.

    Returns
    -------
    Path
        The package.

    Raises
    ------
    OutputExistsError
        If ``out`` exists and ``overwrite`` is False.
    FormatError
        If bioimageio.spec does not validate the description.
    """
    import tempfile

    import torch
    import yaml
    from bioimageio.spec import save_bioimageio_package
    from bioimageio.spec.model.v0_5 import (
        Author,
        AxisId,
        BatchAxis,
        ChannelAxis,
        CiteEntry,
        FileDescr,
        Identifier,
        InputTensorDescr,
        IntervalOrRatioDataDescr,
        ModelDescr,
        OutputTensorDescr,
        SpaceInputAxis,
        TensorId,
        TorchscriptWeightsDescr,
        Version,
        WeightsDescr,
    )

    from dynacell import __version__
    from dynacell.states import load_model

    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} exists; pass overwrite=True to replace it")
    clf = load_model(name)
    card = clf.card.model_dump(mode="json") if hasattr(clf.card, "model_dump") else dict(clf.card)
    n_in = int(clf.n_input_channels)
    shape = (1, n_in, *clf.crop_size)
    x = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    net = _wrapped(clf)
    with torch.no_grad():
        y = net(torch.from_numpy(x)).numpy()
    channel_names = (list(card.get("channels") or []) + [f"c{i}" for i in range(n_in)])[:n_in]
    space = [SpaceInputAxis(id=AxisId(a), size=int(s)) for a, s in zip("zyx"[-clf.ndim:], clf.crop_size)]
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        np.save(tmp / "test_input.npy", x)
        np.save(tmp / "test_output.npy", y)
        with warnings.catch_warnings():  # TorchScript is what bioimage.io consumers run; torch 2.13 flags it
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.trace(net, torch.from_numpy(x))
        traced.save(str(tmp / "weights_torchscript.pt"))
        doc = tmp / "README.md"
        doc.write_text(
            f"# dynacell {clf.name}: nucleus state classifier\n\n"
            f"Classifies each nucleus of a time-lapse movie into {', '.join(clf.classes)} from a crop of "
            f"the frames before, at and after it (channels: {', '.join(channel_names)}). Input crops are "
            "made by dynacell (`dynacell.samples.crops.crop_window`); the output is the calibrated "
            "probability of each state.\n\n## Model card\n\n```yaml\n"
            + yaml.safe_dump(card, sort_keys=False, allow_unicode=True) + "```\n", encoding="utf-8")
        descr = ModelDescr(
            name=f"dynacell {clf.name} nucleus states",
            description=f"Nucleus state ({', '.join(clf.classes)}) classifier of time-lapse microscopy, "
                        f"{clf.ndim}D crops of {'x'.join(map(str, clf.crop_size))} pixels.",
            authors=[Author(name="dynacell developers")],
            # the real 2D training data (HeLa, GOWT1, bacteria) are Cell Tracking Challenge sequences
            cite=[CiteEntry(text="Maška M. et al. The Cell Tracking Challenge: 10 years of objective benchmarking. "
                                 "Nature Methods 20, 1010-1020 (2023)", doi="10.1038/s41592-023-01879-y")],
            license="BSD-3-Clause",
            documentation=FileDescr(source=doc),
            tags=["cell-tracking", "mitosis", "nuclei", "time-lapse", f"{clf.ndim}d", "classification"],
            version=__version__,
            inputs=[InputTensorDescr(
                id=TensorId("crops"), description="crops (t-1, t, t+1, mask[, seg t-1, seg t+1]), float32",
                axes=[BatchAxis(), ChannelAxis(channel_names=[Identifier(c.replace(" ", "_").replace("-", "m")
                                                                         .replace("+", "p"))
                                                              for c in channel_names]), *space],
                test_tensor=FileDescr(source=tmp / "test_input.npy"),
                data=IntervalOrRatioDataDescr(type="float32"))],
            outputs=[OutputTensorDescr(
                id=TensorId("probabilities"), description="probability of each state",
                axes=[BatchAxis(), ChannelAxis(channel_names=[Identifier(c) for c in clf.classes])],
                test_tensor=FileDescr(source=tmp / "test_output.npy"),
                data=IntervalOrRatioDataDescr(type="float32"))],
            weights=WeightsDescr(torchscript=TorchscriptWeightsDescr(
                source=tmp / "weights_torchscript.pt", pytorch_version=Version(torch.__version__.split("+")[0]))),
        )
        part = out.with_name(f".{out.name}.part")
        try:
            with warnings.catch_warnings():  # bioimageio.spec leaves files open for the garbage collector
                warnings.simplefilter("ignore", ResourceWarning)
                save_bioimageio_package(descr, output_path=part)
                validate_bioimageio(part)
                del descr
                gc.collect()
            part.replace(out)
        finally:
            part.unlink(missing_ok=True)
    return out
