"""Realism check of dynacell.simulate: simulated frames side by side with real ones.

Real data (read in place with tifffile, never copied):
- ``embryo3d/mouse-8cell``: 3D light-sheet mouse 8-cell embryo, 11 frames with nucleus
  label volumes. The folder gives no voxel size; we assume BlastoSPIM's 2.0 µm z step
  and 0.208 µm pixels binned 4x in xy, i.e. (2.0, 0.832, 0.832) µm (the embryo, ~55 µm
  between extreme nuclei, then spans the same size along z and xy).
- ``ctc/Fluo-N2DL-HeLa/02``: 2D H2B-GFP HeLa, 0.645 µm/px, frames 0-19 with the
  silver-truth segmentation ``02_ST/SEG`` (12 of those frames).

Statistics per frame (median over frames): background median and noise (1.4826 x MAD of
background pixels, ADU), nucleus median and 99th percentile (ADU), contrast SNR =
(mean nucleus - mean background) / background noise, nucleus equivalent diameter (µm,
from the label volume/area), and nearest-neighbour centroid spacing (µm). The simulated
frames come from :func:`dynacell.simulate.simulate_embryo` with the presets
``ImagingParams.mouse_lightsheet()`` / ``ImagingParams.hela_widefield()`` and the
geometry given below (``SIM_MOUSE`` / ``SIM_HELA``).

Run: ``python benchmarks/realism.py [--out /tmp] [--seed 0]``; prints a table and writes
``realism.png`` (histograms of background-normalised intensity and example slices).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from rich.console import Console
from rich.table import Table
from scipy import ndimage
from scipy.spatial import cKDTree

from dynacell.simulate import AppearanceParams, ImagingParams, simulate_embryo

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MOUSE = DATA / "embryo3d" / "mouse-8cell"
HELA = DATA / "ctc" / "Fluo-N2DL-HeLa"
MOUSE_VOXEL_UM = (2.0, 0.832, 0.832)
HELA_PIXEL_UM = (0.645, 0.645)

#: Geometry of the simulated counterparts (chosen to match the real sizes and spacings).
SIM_MOUSE = dict(ndim=3, n_start=8, n_frames=4, division_rate_per_frame=0.0, death_rate_per_frame=0.0,
                 radius_um=9.0, cell_radius_um=15.0, motility_um_per_frame=0.5,
                 appearance=AppearanceParams(texture_amplitude=0.8, texture_scale_um=4.0))
SIM_HELA = dict(ndim=2, n_start=160, n_frames=4, division_rate_per_frame=0.02, death_rate_per_frame=0.0,
                radius_um=10.0, cell_radius_um=12.5, motility_um_per_frame=2.0,
                appearance=AppearanceParams(texture_amplitude=0.4, brightness_sd=0.5))


def frame_stats(image: np.ndarray, labels: np.ndarray, voxel_um: tuple[float, ...]) -> dict[str, float]:
    """Intensity, size and spacing statistics of one frame (see the module docstring).

    Parameters
    ----------
    image : ndarray, shape ((Z), Y, X)
        Raw intensities (ADU).
    labels : ndarray, shape ((Z), Y, X), int
        Nucleus instance labels, 0 = background.
    voxel_um : tuple of float
        Voxel size in µm per axis of ``image``.
    """
    image = image.astype(np.float64)
    bg = image[labels == 0]
    fg = image[labels > 0]
    bg_med = float(np.median(bg))
    noise = float(1.4826 * np.median(np.abs(bg - bg_med)))
    ids = np.unique(labels)
    ids = ids[ids > 0]
    n_vox = ndimage.sum_labels(np.ones(labels.shape), labels, ids)
    vox = float(np.prod(voxel_um))
    if image.ndim == 3:
        diam = (6.0 * n_vox * vox / np.pi) ** (1.0 / 3.0)
    else:
        diam = 2.0 * np.sqrt(n_vox * vox / np.pi)
    cents = np.array(ndimage.center_of_mass(np.ones(labels.shape), labels, ids)) * np.asarray(voxel_um)
    nn = cKDTree(cents).query(cents, k=2)[0][:, 1] if len(cents) > 1 else np.array([np.nan])
    return {
        "background median (ADU)": bg_med,
        "background noise (ADU)": noise,
        "nucleus median (ADU)": float(np.median(fg)),
        "nucleus p99 (ADU)": float(np.percentile(fg, 99)),
        "contrast SNR": float((fg.mean() - bg.mean()) / max(noise, 1e-9)),
        "nucleus diameter (µm)": float(np.median(diam)),
        "NN spacing (µm)": float(np.median(nn)),
        "nuclei per frame": float(len(ids)),
    }


def real_mouse() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rows, img, lab = [], None, None
    for f in sorted((MOUSE / "images").glob("t*.tif")):
        img = tifffile.imread(f)
        lab = tifffile.imread(MOUSE / "labels" / f.name)
        rows.append(frame_stats(img, lab, MOUSE_VOXEL_UM))
    return pd.DataFrame(rows), img, lab


def real_hela() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rows, img, lab = [], None, None
    for f in sorted((HELA / "02_ST" / "SEG").glob("man_seg*.tif")):
        t = int(f.stem[len("man_seg"):])
        raw = HELA / "02" / f"t{t:03d}.tif"
        if not raw.exists():
            continue
        img = tifffile.imread(raw)
        lab = tifffile.imread(f)
        rows.append(frame_stats(img, lab, HELA_PIXEL_UM))
    return pd.DataFrame(rows), img, lab


def simulated(geometry: dict, imaging: ImagingParams, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    res = simulate_embryo(imaging=imaging, seed=seed, progress=False, **geometry)
    vs = res.voxel_size_um
    rows = [frame_stats(res.images[t], res.labels[t], vs) for t in range(res.images.shape[0])]
    return pd.DataFrame(rows), res.images[-1], res.labels[-1]


def _norm(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    bg = image[labels == 0].astype(float)
    med = np.median(bg)
    return (image.astype(float) - med) / max(1.4826 * np.median(np.abs(bg - med)), 1e-9)


def figure(pairs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(pairs), 3, figsize=(15, 4.5 * len(pairs)), squeeze=False)
    for row, (name, (ri, rl, si, sl)) in enumerate(pairs.items()):
        ax = axes[row]
        bins = np.linspace(-5, 25, 121)
        ax[0].hist(_norm(ri, rl).ravel(), bins=bins, density=True, histtype="step", label="real")
        ax[0].hist(_norm(si, sl).ravel(), bins=bins, density=True, histtype="step", label="simulated")
        ax[0].set_yscale("log")
        ax[0].set_xlabel("(I - background median) / background noise")
        ax[0].set_title(f"{name}: intensity histogram")
        ax[0].legend()
        for k, (im, lab, what) in enumerate(((ri, rl, "real"), (si, sl, "simulated")), start=1):
            if im.ndim == 3:
                z = int(np.argmax((lab > 0).sum(axis=(1, 2))))
                im = im[z]
            ax[k].imshow(im, cmap="gray", vmin=np.percentile(im, 1), vmax=np.percentile(im, 99.8))
            ax[k].set_title(f"{name}: {what}" + (f" (z = {z})" if ri.ndim == 3 else ""))
            ax[k].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp"), help="folder for realism.png (default /tmp)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not (MOUSE.exists() and HELA.exists()):
        raise SystemExit(f"real data not found under {DATA}; this benchmark needs ../shared/data")

    cases = {
        "mouse-8cell 3D": (real_mouse(), simulated(SIM_MOUSE, ImagingParams.mouse_lightsheet(), args.seed)),
        "HeLa 02 2D": (real_hela(), simulated(SIM_HELA, ImagingParams.hela_widefield(), args.seed)),
    }
    table = Table(title=f"Real vs simulated frames (median over frames; seed {args.seed})")
    table.add_column("statistic")
    for name in cases:
        table.add_column(f"{name} real")
        table.add_column(f"{name} sim")
    stats = list(cases.values())[0][0][0].columns
    for s in stats:
        row = [s]
        for (real, _, _), (sim, _, _) in cases.values():
            row += [f"{real[s].median():.1f}", f"{sim[s].median():.1f}"]
        table.add_row(*row)
    table.add_row("frames", *[f"{len(r[0])}" if i % 2 == 0 else f"{len(s[0])}"
                              for (r, s) in cases.values() for i in range(2)])
    Console().print(table)
    Console().print("presets: mouse_lightsheet = ", ImagingParams.mouse_lightsheet())
    Console().print("         hela_widefield   = ", ImagingParams.hela_widefield())
    Console().print(f"geometry and appearance: mouse {SIM_MOUSE}\n          HeLa {SIM_HELA}")
    os.makedirs(args.out, exist_ok=True)
    path = args.out / "realism.png"
    figure({name: (r[1], r[2], s[1], s[2]) for name, (r, s) in cases.items()}, path)
    Console().print(f"figure: {path}")


if __name__ == "__main__":
    main()
