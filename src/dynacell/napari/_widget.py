"""napari widget *Run dynacell*: ``dynacell run`` on the open image (and labels) layer, result opened as layers."""

from pathlib import Path

import napari
import numpy as np
from magicgui import magic_factory

from dynacell.errors import InvalidInputError

__all__ = ["run_widget", "run_on_layers"]


def _movie(data, axes: str, voxel_size_um, frame_interval_s, source: str):
    from dynacell.io.movie import Movie

    return Movie(np.asarray(data), axes, voxel_size_um=voxel_size_um, frame_interval_s=frame_interval_s,
                 source=source)


def run_on_layers(
    image: np.ndarray,
    out: str | Path,
    *,
    labels: np.ndarray | None = None,
    voxel_size_um: tuple[float, ...] | None = None,
    frame_interval_s: float | None = None,
    overwrite: bool = False,
    video: bool = False,
    name: str = "napari layer",
):
    """Run the main job (as ``dynacell run``) on arrays taken from napari layers.

    Parameters
    ----------
    image : numpy.ndarray
        Movie ``(T, Y, X)`` or ``(T, Z, Y, X)``.
    out : str or Path
        Output folder (as ``dynacell run -o``).
    labels : numpy.ndarray, optional
        Label movie of the same shape (else the classical segmenter runs).
    voxel_size_um : tuple of float, optional
        ``(Y, X)`` or ``(Z, Y, X)`` in µm.
    frame_interval_s : float, optional
        Time between frames in s.
    overwrite : bool
        Replace ``out``.
    video : bool
        Also write ``overlay.mp4``.
    name : str
        Name of the layer, recorded as the movie's source.

    Returns
    -------
    dynacell.pipeline.RunResult

    Raises
    ------
    InvalidInputError
        An image that is not 3-D or 4-D, or labels of another shape.
    """
    from dynacell.pipeline import run

    image = np.asarray(image)
    if image.ndim not in (3, 4):
        raise InvalidInputError(f"layer {name!r}: expected a movie (T, Y, X) or (T, Z, Y, X), got shape {image.shape}")
    axes = "TYX" if image.ndim == 3 else "TZYX"
    movie = _movie(image, axes, voxel_size_um, frame_interval_s, name)
    lab = None
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != image.shape:
            raise InvalidInputError(f"labels layer shape {labels.shape} differs from the image's {image.shape}")
        lab = _movie(labels.astype(np.int32), axes, voxel_size_um, frame_interval_s, f"{name} labels")
    return run(movie, out=out, labels=lab, voxel_size_um=voxel_size_um, frame_interval_s=frame_interval_s,
               overwrite=overwrite, video=video, progress=False)


@magic_factory(
    call_button="Run dynacell",
    out={"mode": "d", "label": "output folder"},
    voxel_size_um={"label": "pixel size µm ([Z] Y X)"},
    frame_interval_s={"label": "frame interval (s)", "min": 0.0, "max": 1e6},
)
def run_widget(
    viewer: napari.Viewer,
    image: napari.layers.Image,
    labels: napari.layers.Labels | None = None,
    out: Path = Path("dynacell-out"),
    voxel_size_um: str = "",
    frame_interval_s: float = 0.0,
    overwrite: bool = False,
) -> None:
    """Run dynacell on the chosen layers and add the result (states, tracks) to the viewer.

    The pixel size defaults to the image layer's scale when that is not 1; give it in µm
    (one number per spatial axis) when the layer does not carry it.
    """
    from dynacell.cli.options import parse_voxel_size
    from dynacell.napari._reader import read_run_folder

    ndim = image.data.ndim - 1
    vs = parse_voxel_size(voxel_size_um) if voxel_size_um.strip() else None
    if vs is None and any(abs(s - 1.0) > 1e-9 for s in image.scale[1:]):
        vs = tuple(float(s) for s in image.scale[-ndim:])
    run_on_layers(image.data, out, labels=None if labels is None else labels.data, voxel_size_um=vs,
                  frame_interval_s=frame_interval_s or None, overwrite=overwrite, name=image.name)
    for data, kwargs, kind in read_run_folder(str(out)):
        if kwargs.get("name") == "movie":
            continue  # the image is already open
        getattr(viewer, f"add_{kind}")(data, **kwargs)
