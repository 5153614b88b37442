"""bioimage.io export of a shipped state model: validated by bioimageio.spec, the packaged network gives
the same probabilities as dynacell's own classifier."""

from __future__ import annotations

import gc
import zipfile

import numpy as np
import pytest

pytest.importorskip("bioimageio.spec")


@pytest.mark.slow
# bioimageio.spec 0.5.14 leaves the package's files open until garbage collection; collected below
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning", "ignore::ResourceWarning")
def test_export_nuclei_2d(tmp_path):
    import torch

    from dynacell.errors import FormatError, OutputExistsError
    from dynacell.export.bioimageio import export_bioimageio, validate_bioimageio
    from dynacell.states import load_model

    out = export_bioimageio("nuclei-2d", tmp_path / "nuclei-2d.zip")
    assert validate_bioimageio(out) in ("valid-format", "passed")
    with zipfile.ZipFile(out) as z:
        assert {"rdf.yaml", "weights_torchscript.pt", "test_input.npy", "test_output.npy", "README.md"} <= set(
            z.namelist())
        z.extractall(tmp_path / "pkg")
    x = np.load(tmp_path / "pkg" / "test_input.npy")
    y = np.load(tmp_path / "pkg" / "test_output.npy")
    net = torch.jit.load(str(tmp_path / "pkg" / "weights_torchscript.pt"))
    with torch.no_grad():
        np.testing.assert_allclose(net(torch.from_numpy(x)).numpy(), y, atol=1e-6)
    clf = load_model("nuclei-2d")
    np.testing.assert_allclose(clf.predict_proba(x), y, atol=1e-5)  # same calibrated probabilities
    assert y.shape == (1, len(clf.classes))
    with pytest.raises(OutputExistsError):
        export_bioimageio("nuclei-2d", out)
    rdf = (tmp_path / "pkg" / "rdf.yaml")
    text = rdf.read_text()
    rdf.write_text(text.replace("type: batch", "type: bach", 1))  # an unknown axis type
    with pytest.raises(FormatError, match="bioimage.io validation"):
        validate_bioimageio(rdf)
    gc.collect()  # close what bioimageio.spec left open, inside this test's warning filter
