"""``dynacell.samples`` imports its submodules on first use: the crops of a run do not pull in the rest."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_crops_import_leaves_build_splits_and_sampleset_unloaded():
    code = ("import sys; from dynacell.samples.crops import iter_frame_crops; "
            "print(sorted(m for m in sys.modules if m.startswith('dynacell.samples')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = eval(out.strip())  # noqa: S307 - our own printed list
    assert "dynacell.samples.crops" in loaded
    assert not {"dynacell.samples.build", "dynacell.samples.splits", "dynacell.samples.sampleset"} & set(loaded)


def test_every_public_name_resolves_and_unknown_names_raise():
    import dynacell.samples as samples
    from dynacell.samples.build import build_sample_set
    from dynacell.samples.sampleset import SampleSet

    for name in samples.__all__:
        assert getattr(samples, name) is not None, name
        assert name in dir(samples)
    assert samples.SampleSet is SampleSet and samples.build_sample_set is build_sample_set
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        samples.nope  # noqa: B018
