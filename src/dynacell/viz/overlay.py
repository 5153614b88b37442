"""Overlays of nucleus states on images: max projections, coloured outlines, ``overlay.mp4``.

Colours follow the seed system's video (SEEDS.md §1): stable green, mitotic yellow,
new_daughter light blue, death red; ``unknown`` grey.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie

__all__ = [
    "STATE_COLORS",
    "max_projection",
    "project_labels",
    "to_uint8",
    "overlay_frame",
    "write_overlay_video",
]

logger = logging.getLogger(__name__)

#: RGB colour (uint8) of each state in overlays and plots.
STATE_COLORS: dict[str, tuple[int, int, int]] = {
    "stable": (0, 200, 0),
    "mitotic": (255, 230, 0),
    "new_daughter": (120, 200, 255),
    "death": (230, 30, 30),
    "unknown": (160, 160, 160),
}


def max_projection(frame: np.ndarray) -> np.ndarray:
    """Maximum-intensity projection along Z.

    Parameters
    ----------
    frame : numpy.ndarray
        Shape ``(Z, Y, X)`` or ``(Y, X)``, any dtype.

    Returns
    -------
    numpy.ndarray
        Shape ``(Y, X)``, same dtype (a 2-D frame is returned unchanged).

    Raises
    ------
    InvalidInputError
        If the frame is not 2-D or 3-D.
    """
    frame = np.asarray(frame)
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3:
        return frame.max(axis=0)
    raise InvalidInputError(f"max_projection: expected a (Z, Y, X) or (Y, X) frame, got shape {frame.shape}")


def project_labels(labels: np.ndarray, image: np.ndarray | None = None) -> np.ndarray:
    """Project a label volume to 2-D, keeping at each pixel the nucleus seen in the intensity MIP.

    Parameters
    ----------
    labels : numpy.ndarray
        Label image, shape ``(Z, Y, X)`` or ``(Y, X)``, integer, 0 = background.
    image : numpy.ndarray, optional
        Intensities of the same shape. When given, each pixel takes the label of the first
        foreground voxel at or above the brightest plane, else of any foreground voxel along Z;
        when absent, the first foreground voxel along Z.

    Returns
    -------
    numpy.ndarray
        Shape ``(Y, X)``, same integer dtype as ``labels``.

    Raises
    ------
    InvalidInputError
        If the shapes differ or the arrays are not 2-D / 3-D.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return labels
    if labels.ndim != 3:
        raise InvalidInputError(f"project_labels: expected (Z, Y, X) or (Y, X) labels, got shape {labels.shape}")
    fg = labels > 0
    first = np.argmax(fg, axis=0)
    if image is not None:
        image = np.asarray(image)
        if image.shape != labels.shape:
            raise InvalidInputError(
                f"project_labels: image shape {image.shape} differs from labels shape {labels.shape}"
            )
        brightest = np.argmax(image, axis=0)
        at_bright = np.take_along_axis(labels, brightest[None], axis=0)[0]
        first = np.where(at_bright > 0, brightest, first)
    return np.take_along_axis(labels, first[None], axis=0)[0]


def to_uint8(image: np.ndarray, percentiles: tuple[float, float] = (1.0, 99.8)) -> np.ndarray:
    """Rescale intensities to uint8 between two percentiles (contrast stretch).

    Parameters
    ----------
    image : numpy.ndarray
        Any shape, real dtype.
    percentiles : tuple of float
        Low and high percentiles mapped to 0 and 255.

    Returns
    -------
    numpy.ndarray
        Same shape, uint8.
    """
    img = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(img, percentiles)
    if hi <= lo:
        hi = lo + 1.0
    return (np.clip((img - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def overlay_frame(
    image: np.ndarray,
    labels: np.ndarray,
    states: Mapping[int, str],
    *,
    scale: int = 1,
    thickness: int = 1,
) -> np.ndarray:
    """Draw nucleus outlines coloured by state over a grey image.

    Parameters
    ----------
    image : numpy.ndarray
        Intensities of one frame, shape ``((Z), Y, X)``; 3-D frames are max-projected.
    labels : numpy.ndarray
        Label image of the same frame and shape, integer, 0 = background.
    states : mapping of int to str
        State of each label (keys: label ids). Labels missing from it are drawn as ``unknown``.
    scale : int
        Integer upscaling factor (nearest neighbour) applied before drawing, for small frames.
    thickness : int
        Outline thickness in output pixels.

    Returns
    -------
    numpy.ndarray
        RGB image, shape ``(Y * scale, X * scale, 3)``, uint8.

    Raises
    ------
    InvalidInputError
        If image and labels shapes differ.
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import find_boundaries

    image = np.asarray(image)
    labels = np.asarray(labels)
    if image.shape != labels.shape:
        raise InvalidInputError(f"overlay_frame: image shape {image.shape} differs from labels shape {labels.shape}")
    lab2d = project_labels(labels, image if image.ndim == 3 else None)
    grey = to_uint8(max_projection(image))
    if scale > 1:
        grey = np.kron(grey, np.ones((scale, scale), dtype=np.uint8))
        lab2d = np.kron(lab2d, np.ones((scale, scale), dtype=lab2d.dtype))
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    edges = find_boundaries(lab2d, mode="inner")
    if thickness > 1:
        edges = ndi.binary_dilation(edges, iterations=thickness - 1) & (lab2d > 0)
    edge_labels = np.where(edges, lab2d, 0)
    ids = np.unique(edge_labels)
    ids = ids[ids > 0]
    if ids.size:
        lut = np.zeros((int(ids.max()) + 1, 3), dtype=np.uint8)
        for lab in ids:
            lut[lab] = STATE_COLORS.get(states.get(int(lab), "unknown"), STATE_COLORS["unknown"])
        mask = edge_labels > 0
        rgb[mask] = lut[edge_labels[mask]]
    return rgb


def _draw_caption(rgb: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` and the state colour legend in the top-left corner (white on black)."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.fromarray(rgb)
    draw = ImageDraw.Draw(img)
    size = max(12, rgb.shape[1] // 50)
    font = ImageFont.load_default(size=size)
    x = 4
    entries = [(text, (255, 255, 255))] + [(s, STATE_COLORS[s]) for s in ("stable", "mitotic", "new_daughter", "death")]
    draw.rectangle((0, 0, rgb.shape[1], size + 6), fill=(0, 0, 0))
    for label, colour in entries:
        draw.text((x, 2), label, fill=colour, font=font)
        x += int(draw.textlength(label, font=font)) + size
    return np.asarray(img)


def write_overlay_video(
    path: str | Path,
    images: Movie,
    labels: Movie,
    states: pd.DataFrame,
    *,
    fps: float = 4.0,
    codec: str = "libx264",
    min_width: int = 512,
    progress: bool = True,
) -> Path:
    """Write ``overlay.mp4``: the max projection of each frame with outlines coloured by state.

    Frames are read, drawn and encoded one at a time (memory flat in ``T``); the file is
    written to a temporary name and renamed at the end.

    Parameters
    ----------
    path : str or Path
        Output ``.mp4`` path.
    images, labels : Movie
        Intensities and labels, shape ``(T, (Z), Y, X)``, same frame numbers.
    states : pandas.DataFrame
        Columns ``t, label, state`` (e.g. ``states.csv``).
    fps : float
        Frames per second of the video.
    codec : str
        PyAV codec (``"libx264"`` = H.264, or ``"mpeg4"``).
    min_width : int
        Small frames are upscaled by an integer factor to at least this width.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        The written video.

    Raises
    ------
    InvalidInputError
        If images and labels have different shapes.
    """
    import imageio.v3 as iio
    from tqdm.auto import tqdm

    if images.shape != labels.shape:
        raise InvalidInputError(
            f"overlay video: images {images.source} shape {images.shape} differs from labels {labels.source} "
            f"shape {labels.shape}"
        )
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    by_t = {int(t): dict(zip(g["label"].astype(int), g["state"])) for t, g in states.groupby("t")}
    width = images.frame_shape[-1]
    scale = max(1, int(np.ceil(min_width / width)))
    try:
        with iio.imopen(tmp, "w", plugin="pyav") as out:
            out.init_video_stream(codec, fps=fps)
            for t in tqdm(images.frame_indices, desc="overlay video", disable=not progress):
                rgb = overlay_frame(images.frame(t), labels.frame(t), by_t.get(int(t), {}), scale=scale,
                                    thickness=2 if scale == 1 and width >= 600 else 1)
                rgb = _draw_caption(rgb, f"t={t}")
                pad = [(0, rgb.shape[0] % 2), (0, rgb.shape[1] % 2), (0, 0)]
                out.write_frame(np.pad(rgb, pad))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("overlay video written to %s", path)
    return path
