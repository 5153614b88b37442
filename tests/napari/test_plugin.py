"""The napari plugin, headless (pytest-qt, QT_QPA_PLATFORM=offscreen): manifest, reader of a run folder,
the Run dynacell widget."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
napari = pytest.importorskip("napari", reason="napari is installed by the test extra: pip install -e '.[test]'")


def _run_folder(tmp_path):
    """A small run folder as `dynacell run` writes it: movie, ctc/ masks = track ids, states.csv, lineage.geff."""
    import tifffile

    from dynacell.lineage.formats import write_geff
    from dynacell.lineage.graph import Lineage

    T, Y, X = 4, 32, 40
    img = np.zeros((T, Y, X), np.uint16)
    masks = np.zeros((T, Y, X), np.uint16)
    masks[0:2, 5:12, 5:12] = 1  # track 1, divides after frame 1
    masks[2:4, 3:9, 3:9] = 2
    masks[2:4, 15:22, 20:27] = 3
    img[masks > 0] = 500
    movie = tmp_path / "movie.tif"
    tifffile.imwrite(movie, img, metadata={"axes": "TYX"})
    out = tmp_path / "run"
    (out / "ctc").mkdir(parents=True)
    for t in range(T):
        tifffile.imwrite(out / "ctc" / f"mask{t:03d}.tif", masks[t])
    lin = Lineage(n_frames=T)
    for t, lab, c in [(0, 1, (8, 8)), (1, 1, (8, 8)), (2, 2, (5.5, 5.5)), (3, 2, (5.5, 5.5)), (2, 3, (18, 23)),
                      (3, 3, (18, 23))]:
        lin.add_node((t, lab), c, track_id=lab)
    for e in [((0, 1), (1, 1)), ((1, 1), (2, 2)), ((1, 1), (2, 3)), ((2, 2), (3, 2)), ((2, 3), (3, 3))]:
        lin.add_edge(*e)
    write_geff(lin, out / "lineage.geff")
    pd.DataFrame({"t": [0, 1, 2, 2, 3, 3], "label": [1, 1, 2, 3, 2, 3], "track_id": [1, 1, 2, 3, 2, 3],
                  "state": ["stable", "mitotic", "new_daughter", "new_daughter", "stable", "death"]}
                 ).to_csv(out / "states.csv", index=False)
    (out / "run.json").write_text(json.dumps({"parameters": {"movie": str(movie), "voxel_size_um": [0.5, 0.5],
                                                             "frame_interval_s": 600, "shape": [T, Y, X]}}))
    return out


def test_manifest_is_valid():
    import importlib.resources

    import npe2

    path = importlib.resources.files("dynacell.napari") / "napari.yaml"
    manifest = npe2.PluginManifest.from_file(str(path))
    assert manifest.name == "dynacell"
    assert {c.id for c in manifest.contributions.commands} == {"dynacell.get_reader", "dynacell.run_widget"}


def test_reader_layers(tmp_path):
    from dynacell.napari import get_reader
    from dynacell.napari._reader import STATE_CODES

    out = _run_folder(tmp_path)
    assert get_reader(str(tmp_path)) is None  # not a run folder: napari tries other readers
    layers = get_reader(str(out))(str(out))
    by_name = {kw["name"]: (data, kw, kind) for data, kw, kind in layers}
    assert set(by_name) == {"movie", "nuclei (track id)", "states", "tracks"}
    assert by_name["movie"][2] == "image" and by_name["movie"][1]["scale"] == (1.0, 0.5, 0.5)
    states = np.asarray(by_name["states"][0])
    assert states[1, 8, 8] == STATE_CODES["mitotic"] and states[3, 18, 23] == STATE_CODES["death"]
    assert states[2, 5, 5] == STATE_CODES["new_daughter"] and states[0, 0, 0] == 0
    tracks, kw, kind = by_name["tracks"]
    assert kind == "tracks" and tracks.shape == (6, 4) and kw["graph"] == {2: [1], 3: [1]}


@pytest.mark.slow
def test_viewer_opens_run_folder(tmp_path):
    """The plugin's reader, found through napari's plugin manager (the package's npe2 entry point) and
    called by napari's own open, on a headless viewer model (no OpenGL canvas needed)."""
    from napari.components import ViewerModel
    from napari.plugins import _initialize_plugins

    _initialize_plugins()  # what napari.Viewer does at start: discover installed npe2 plugins
    out = _run_folder(tmp_path)
    viewer = ViewerModel()
    viewer.open(str(out), plugin="dynacell")
    names = [layer.name for layer in viewer.layers]
    assert {"movie", "nuclei (track id)", "states", "tracks"} <= set(names)
    assert type(viewer.layers["tracks"]).__name__ == "Tracks"
    assert tuple(viewer.layers["states"].scale) == (1.0, 0.5, 0.5)


def test_widget_builds(qtbot):
    """The Run dynacell widget is a Qt widget with the layer pickers and the unit fields."""
    from dynacell.napari._widget import run_widget

    widget = run_widget()
    qtbot.addWidget(widget.native)
    assert widget.call_button.text == "Run dynacell"
    assert {w.name for w in widget} >= {"image", "labels", "out", "voxel_size_um", "frame_interval_s"}


def test_run_on_layers_rejects_bad_shapes(tmp_path):
    from dynacell.errors import InvalidInputError
    from dynacell.napari._widget import run_on_layers

    with pytest.raises(InvalidInputError, match="expected a movie"):
        run_on_layers(np.zeros((5, 5)), tmp_path / "o")
    with pytest.raises(InvalidInputError, match="differs"):
        run_on_layers(np.zeros((3, 8, 8)), tmp_path / "o", labels=np.zeros((3, 8, 9)))


@pytest.mark.slow
def test_viewer_opens_the_demo_output(tmp_path):
    """The output of `dynacell demo` (a small simulated 3D embryo) opens through the plugin: image, labels,
    states and tracks layers with the run's voxel size."""
    from _helpers import make_tiny_model
    from napari.components import ViewerModel
    from napari.plugins import _initialize_plugins

    from dynacell.demo import run_demo

    model = make_tiny_model(tmp_path / "tiny3d", 3)
    run_demo(tmp_path / "demo", seed=1, n_start=4, n_frames=8, min_divisions=1, min_deaths=0, model=model,
             progress=False)
    _initialize_plugins()
    viewer = ViewerModel()
    viewer.open(str(tmp_path / "demo" / "run"), plugin="dynacell")
    names = {layer.name for layer in viewer.layers}
    assert {"movie", "nuclei (track id)", "states", "tracks"} <= names
    assert viewer.layers["movie"].data.ndim == 4  # (T, Z, Y, X)
    assert len(viewer.layers["tracks"].data) > 0
