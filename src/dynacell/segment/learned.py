"""Learned nucleus segmentation: normalisation, nucleus-size rescaling and instance extraction.

The pieces shared by training (:mod:`dynacell.train.segment`) and inference
(:mod:`dynacell.segment.predict`), with no torch import:

- :func:`normalize_image` — percentile normalisation of one frame (1st → 0, 99.8th → 1).
- :func:`estimate_nucleus_diameter_px` — the lateral nucleus size of a 2D or 3D frame without
  any mask, by scale-space blob detection (Laplacian of Gaussian; Lindeberg, "Feature detection
  with automatic scale selection", IJCV 30 (1998) 79–116; noise-normalised responses in 3D), so that one model serves several
  magnifications: every frame is resampled so that its nuclei are ``target_diameter_px`` across,
  the size the model was trained at.
- :func:`lateral_diameters_px` — the lateral diameter of each object of a label image (the
  nucleus-size definition of training; a 3D model's first-pass objects refine the blob estimate,
  :func:`dynacell.segment.predict.estimate_nucleus_diameter_for_model`).
- :func:`training_targets` — foreground, boundary and normalised-distance maps of a label image.
- :func:`instances_from_maps` — seeded watershed of the predicted maps into instances.
- :func:`h_maxima_in_object` — the one home of h-maxima (the seeds of ``seed_h`` and the cuts of
  :func:`split_by_shape`), computed object by object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dynacell.errors import InvalidInputError

__all__ = [
    "PostprocessParams",
    "cut_outlines_by_object",
    "estimate_nucleus_diameter_px",
    "h_maxima_in_object",
    "instances_from_maps",
    "lateral_diameters_px",
    "normalize_image",
    "training_targets",
]


def normalize_image(image: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """Percentile normalisation of one frame: the ``low`` percentile maps to 0, ``high`` to 1.

    Parameters
    ----------
    image : numpy.ndarray
        One frame ``((Z), Y, X)``, any real dtype.
    low, high : float
        Percentiles (0–100).

    Returns
    -------
    numpy.ndarray
        float32, same shape, not clipped (values outside [0, 1] keep their contrast).

    Notes
    -----
    The normalisation of CSBDeep / StarDist (Weigert et al., Nature Methods 15 (2018) 1090);
    a flat frame gives zeros.
    """
    x = np.asarray(image, dtype=np.float32)
    lo, hi = (float(v) for v in np.percentile(x, (low, high)))
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise InvalidInputError("normalize_image: the frame holds NaN or infinite values")
    if hi - lo < 1e-6:
        return np.zeros_like(x)
    return ((x - lo) / (hi - lo)).astype(np.float32, copy=False)


def _blob_sigmas_2d(x: np.ndarray, max_side_px: int) -> tuple[np.ndarray, int]:
    """Scales ``σ`` (working pixels) of the LoG blobs of a normalised 2D frame, and the downsampling factor."""
    from scipy import ndimage as ndi
    from skimage.feature import blob_log

    f = max(1, int(np.ceil(max(x.shape) / float(max_side_px))))
    if f > 1:
        x = ndi.uniform_filter(x, size=f)[::f, ::f]
    x = np.clip(ndi.gaussian_filter(x, 1.0), 0, 1)  # σ = 1 px: texture inside nuclei no longer forms blobs
    blobs = blob_log(x, min_sigma=1.0, max_sigma=max(2.0, min(x.shape) / 6), num_sigma=12, threshold=0.05,
                     log_scale=True)
    return (blobs[:, 2] if len(blobs) else np.zeros(0)), f


def _significant_blob_sigma_2d(x: np.ndarray, max_side_px: int, n_scales: int = 16,
                               min_significance: float = 3.0, keep_fraction: float = 0.5) -> tuple[float, float]:
    """Median scale of the most significant blobs of a noisy plane, and the top significance.

    The scale-normalised LoG response ``−σ²∇²G_σ * x`` at each of ``n_scales`` scales is divided
    by its robust spread over the plane (1.4826·MAD), so a blob counts by how far it stands
    out of the noise at its own scale (pixel noise dominates the raw response at small scales).
    Scale-space maxima (3×3×3) above ``min_significance`` whose significance is at least
    ``keep_fraction`` of the strongest are kept, overlapping ones pruned.
    Returns ``(σ in input pixels or NaN, top significance)``.
    """
    from scipy import ndimage as ndi

    f = max(1, int(np.ceil(max(x.shape) / float(max_side_px))))
    if f > 1:
        x = ndi.uniform_filter(x, size=f)[::f, ::f]
    x = np.clip(x, 0, 1)
    sig = np.geomspace(1.0, max(2.0, min(x.shape) / 6), n_scales)
    resp = np.stack([-(s ** 2) * ndi.gaussian_laplace(x, s, mode="reflect") for s in sig])
    flat = resp.reshape(n_scales, -1)
    med = np.median(flat, axis=1)
    mad = 1.4826 * np.median(np.abs(flat - med[:, None]), axis=1) + 1e-6
    sgn = (resp - med[:, None, None]) / mad[:, None, None]
    peaks = (sgn == ndi.maximum_filter(sgn, size=3, mode="nearest")) & (sgn > min_significance)
    peaks[0] = peaks[-1] = False
    k, yy, xx = np.nonzero(peaks)
    if len(k) == 0:
        return float("nan"), 0.0
    s = sgn[k, yy, xx]
    order = np.argsort(-s)
    k, yy, xx, s = k[order], yy[order], xx[order], s[order]
    taken: list[int] = []
    for i in range(len(k)):
        if s[i] < keep_fraction * s[0]:
            break
        ri = sig[k[i]] * np.sqrt(2)
        if any((yy[i] - yy[j]) ** 2 + (xx[i] - xx[j]) ** 2 < 0.25 * (ri + sig[k[j]] * np.sqrt(2)) ** 2 for j in taken):
            continue
        taken.append(i)
    return float(np.median(sig[k[taken]]) * f), float(s[0])


def estimate_nucleus_diameter_px(image: np.ndarray, *, voxel_size_um: tuple[float, ...] | None = None,
                                 max_side_px: int = 256) -> float:
    """Typical lateral nucleus diameter of a frame in pixels, by scale-space blob detection.

    Parameters
    ----------
    image : numpy.ndarray
        One frame ``(Y, X)`` or ``(Z, Y, X)`` of bright nuclei on a dark background.
    voxel_size_um : tuple of float, optional
        Voxel size (µm, axis order); checked against the frame's dimensions only. The diameter is
        measured in the frame's YX planes, so it is in lateral pixels and does not depend on the
        z spacing (anisotropic stacks need no resampling, and a wrong z step cannot bias it).
    max_side_px : int
        Each plane is downsampled by an integer factor so that its longest side is at most this
        (speed); the result is scaled back.

    Returns
    -------
    float
        ``2·√2·σ`` of the blobs' median scale ``σ`` (the diameter of a disc whose normalised LoG
        response peaks at ``σ``), in lateral pixels of the input frame.

    Raises
    ------
    InvalidInputError
        If the frame is not 2-D/3-D, the voxel size does not match it, or no blob is found (an
        empty or flat frame).

    Notes
    -----
    2D: Laplacian-of-Gaussian blob detection with automatic scale selection (Lindeberg, IJCV 30
    (1998) 79–116) on the percentile-normalised frame smoothed by σ = 1 px. 3D: the stack is
    smoothed by σ = 1 voxel and normalised; on the 12 planes with the brightest 99.9th
    percentile, the scale-normalised LoG response is divided by its robust noise level per scale
    (:func:`_significant_blob_sigma_2d`; raw responses of a noisy light-sheet stack peak on pixel
    noise), and the median over the 5 planes with the most significant blobs is returned.
    Measured against the reference masks (median equivalent diameter; 3D: of each nucleus's
    largest YX section), see ``docs/segmentation.md``: GOWT1 62 vs 60 px, HeLa 25 vs 28, DSB
    25–27 vs 24, mouse 8-cell 22–25 vs 20, StarDist 3D 11 vs 13; phase-contrast bacteria 23 vs 35
    (the method assumes bright objects on a dark background).
    """
    from scipy import ndimage as ndi

    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise InvalidInputError(f"nucleus size: expected a 2-D or 3-D frame, got shape {arr.shape}")
    if voxel_size_um is not None and len(voxel_size_um) != arr.ndim:
        raise InvalidInputError(f"nucleus size: voxel_size_um {voxel_size_um} does not match a {arr.ndim}-D frame")
    if arr.ndim == 2:
        sigma, f = _blob_sigmas_2d(normalize_image(arr), max_side_px)
        d = float(np.median(sigma) * 2 * np.sqrt(2) * f) if len(sigma) else float("nan")
    else:
        x = normalize_image(ndi.gaussian_filter(arr.astype(np.float32), 1.0))
        bright = np.percentile(x.reshape(x.shape[0], -1), 99.9, axis=1)
        planes = np.argsort(-bright)[: max(1, min(12, x.shape[0] // 2))]
        res = [_significant_blob_sigma_2d(x[z], max_side_px) for z in planes]
        best = sorted(range(len(res)), key=lambda i: -res[i][1])[:5]
        sig = [res[i][0] for i in best if np.isfinite(res[i][0])]
        d = float(np.median(sig) * 2 * np.sqrt(2)) if sig else float("nan")
    if not np.isfinite(d) or d <= 0:
        raise InvalidInputError("nucleus size: no bright blob found in the frame (empty or flat image); "
                                "give the nucleus diameter explicitly")
    return d


def lateral_diameters_px(labels: np.ndarray) -> np.ndarray:
    """Lateral equivalent diameter of every object of a label image, in pixels.

    Parameters
    ----------
    labels : numpy.ndarray
        Integer labels ``(Y, X)`` or ``(Z, Y, X)`` (0 = background).

    Returns
    -------
    numpy.ndarray
        float64, one value per object present (ascending label order): ``√(4·A/π)`` with ``A``
        the object's area (2D) or the area of its largest YX section (3D), in lateral pixels — the
        z step does not enter. Empty when there is no object.

    Raises
    ------
    InvalidInputError
        If ``labels`` is not 2-D or 3-D.

    Notes
    -----
    The nucleus-size definition the models were trained with
    (:func:`dynacell.train.segment.reference_diameter_px` takes its median over the reference
    objects); the median over a first pass's objects is the refined 3D estimate of
    :func:`dynacell.segment.predict.estimate_nucleus_diameter_for_model`.
    """
    lab = np.asarray(labels)
    if lab.ndim not in (2, 3):
        raise InvalidInputError(f"lateral diameters: expected 2-D or 3-D labels, got shape {lab.shape}")
    if not lab.any():
        return np.zeros(0)
    lab = lab.astype(np.int64, copy=False)
    n = int(lab.max()) + 1
    planes = lab[None] if lab.ndim == 2 else lab
    area = np.zeros(n)
    for z in range(planes.shape[0]):
        area = np.maximum(area, np.bincount(planes[z].ravel(), minlength=n))
    ids = np.unique(lab[lab > 0])
    return np.sqrt(4 * area[ids] / np.pi)


def training_targets(labels: np.ndarray) -> np.ndarray:
    """Foreground, boundary and normalised-distance targets of an instance label image.

    Parameters
    ----------
    labels : numpy.ndarray
        Integer labels ``((Z), Y, X)``, 0 = background.

    Returns
    -------
    numpy.ndarray
        float32 ``(3, (Z), Y, X)``: channel 0 foreground (1 inside any object), channel 1
        boundary (the object's inner boundary, 2 pixels thick), channel 2 the Euclidean distance
        to the object's edge divided by its maximum inside the object (0..1, 1 at the centre).
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import find_boundaries

    lab = np.asarray(labels)
    out = np.zeros((3, *lab.shape), dtype=np.float32)
    fg = lab > 0
    if not fg.any():
        return out
    edge = find_boundaries(lab, mode="inner") & fg
    inner = fg & ~edge
    dist = ndi.distance_transform_edt(inner).astype(np.float32)
    dist[inner] += 1.0
    ids = np.unique(lab[fg])
    mx = np.asarray(ndi.maximum(dist, lab, index=ids), dtype=np.float32)
    lut = np.zeros(int(ids.max()) + 1, dtype=np.float32)
    lut[ids] = np.where(mx > 0, mx, 1.0)
    out[0] = fg
    out[1] = ndi.binary_dilation(edge, iterations=1) & fg
    out[2] = np.divide(dist, lut[lab], out=np.zeros_like(dist), where=fg)
    return out


def _object_boxes(objects: np.ndarray, min_size: int = 0):
    """Each object of a label image in its own bounding box, grown by one pixel on every side.

    Parameters
    ----------
    objects : numpy.ndarray
        int labels ``((Z), Y, X)``, 0 = background.
    min_size : int
        Objects of fewer pixels than this are skipped (0: none; the sizes are counted once, before
        the first object is yielded, so a caller may relabel the objects it has already seen).

    Yields
    ------
    tuple
        ``(id, box, inside)``: the object's id, its box (a tuple of slices, clipped at the image's
        start) and the object's boolean mask in that box.
    """
    from scipy import ndimage as ndi

    sizes = np.bincount(objects.ravel()) if min_size > 0 else None
    for i, sl in enumerate(ndi.find_objects(objects), start=1):
        if sl is None or (sizes is not None and sizes[i] < min_size):
            continue
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
        yield i, box, objects[box] == i


def h_maxima_in_object(values: np.ndarray, inside: np.ndarray, h: float, *, extended: bool = False) -> np.ndarray:
    """The maxima of dynamic ``h`` or more of ``values`` inside one object (the one home of h-maxima).

    Parameters
    ----------
    values : numpy.ndarray
        The map whose peaks are sought (a predicted distance, or the Euclidean distance transform of
        the object's mask) in the object's box; it is set to 0 outside ``inside``.
    inside : numpy.ndarray
        bool, the object's mask, same shape.
    h : float
        Smallest height of a peak above the saddle that joins it to a higher one (its dynamic).
    extended : bool
        False: scikit-image ``h_maxima`` — the top of every peak of height ≥ ``h``; two equal peaks
        joined by a saddle less than ``h`` below them are both kept. True: the extended maxima (Soille,
        *Morphological Image Analysis*, 2003, §6.3.5; MATLAB ``imextendedmax``), the regional maxima
        of the reconstruction by dilation of ``values − h`` under ``values`` (scikit-image
        ``reconstruction`` and ``local_maxima``) — such equal peaks form one plateau, hence one
        maximum, and each maximum is the whole plateau (the pixels within ``h`` of its top). The
        shape split (:func:`split_by_shape`) needs the second: a convex nucleus's distance
        transform has ridges of equal peaks that must stay one object.

    Returns
    -------
    numpy.ndarray
        bool, the maxima (inside the object only).

    Notes
    -----
    The objects of a label image are separated by background (0 once masked), so the
    reconstruction of one box cannot reach another object at a positive level: applied object by
    object (:func:`_object_boxes`) it gives the result of the whole masked map at the cost of the
    foreground only (mouse 8-cell volume: 1.1 s → a few ms). Vincent, IEEE TIP 2 (1993) 176–201.
    """
    from skimage.morphology import h_maxima, local_maxima, reconstruction

    sub = np.where(inside, values, 0).astype(np.float64)
    if extended:
        rec = reconstruction(np.maximum(sub - float(h), 0.0), sub, method="dilation")
        return local_maxima(rec).astype(bool) & inside
    return h_maxima(sub, h).astype(bool) & inside


def _h_maxima_per_component(mask: np.ndarray, distance: np.ndarray, h: float) -> np.ndarray:
    """h-maxima (scikit-image ``h_maxima``) of ``distance`` inside each connected component of ``mask``.

    Each component in its own box (:func:`h_maxima_in_object`); the result is that of ``h_maxima``
    on the whole masked map. A component lower than ``h`` gets its top as a seed here and none on
    the whole map; it is one object either way (:func:`instances_from_maps` keeps seedless
    components whole).
    """
    from scipy import ndimage as ndi

    comp, _ = ndi.label(mask)
    core = np.zeros(mask.shape, dtype=bool)
    for _, box, inside in _object_boxes(comp):
        core[box] |= h_maxima_in_object(distance[box], inside, h)
    return core


@dataclass(frozen=True)
class PostprocessParams:
    """Thresholds of :func:`instances_from_maps` (probabilities 0..1, sizes in model pixels).

    Attributes
    ----------
    foreground : float
        Foreground probability above which a pixel belongs to a nucleus.
    seed_distance : float
        Predicted normalised distance above which a pixel is a seed (nucleus core).
    min_size_px : int
        Instances smaller than this (pixels/voxels at the model's scale) are removed.
    min_mean_foreground : float
        0 (off), or the mean foreground probability an object needs to be kept (its
        confidence): faint texture outside the nuclei reaches the foreground threshold in a
        few pixels but not on average.
    seed_h : float
        0 (off: seeds are the cores above ``seed_distance``), or the smallest dynamic (height
        above the saddle that joins it to a higher peak; distance units 0..1) of a peak of the
        predicted distance that seeds its own nucleus. For small, densely packed nuclei whose
        predicted distance stays low and whose cores join (``nuclei-seg-3d`` on the StarDist 3D
        stack: distance ≤ 0.34, one object for 30 nuclei at ``seed_distance`` 0.4).
    outline_foreground : float
        0 (off: the outline is cut at ``foreground``), or the foreground probability at which
        :func:`dynacell.segment.predict.segment_frame` cuts the outlines of the labels resized back
        to the frame (the watershed and its seeds keep ``foreground``): a separate, higher cut for
        models whose outlines are too wide (``nuclei-seg-3d``, see docs/segmentation.md).
    outline_sigma_px : float
        Gaussian σ (frame voxels, every axis) of the foreground map before that outline cut; 0 = no
        smoothing. Used only with ``outline_foreground`` > 0.
    split_h_px : float
        0 (off), or a split of each object by its shape after the seeded watershed: the object is cut
        at the h-maxima of the Euclidean distance transform of its own mask (h in model pixels: a
        neck at least ``2 h`` narrower than both lobes), so two touching nuclei whose predicted
        distance gave one seed or none (dim pairs) become two; a convex nucleus has one maximum.
    split_min_area_px : int
        Only objects of at least this many model pixels are split by shape (0: every object).
    outline_intensity_weight : float
        0 (off), or the weight ``w`` of the frame's own intensity in the outline cut of a 2D frame
        resized back from model scale (:func:`cut_outlines_by_object`): each object is cut where
        ``(1 − w)·foreground + w·level`` ≤ ``foreground``, ``level`` being the smoothed intensity
        relative to the object's own interior and its surrounding background.
    outline_intensity_fraction : float
        The fraction of the way from the object's background to its interior at which ``level`` is
        0.5 (the intensity alone would cut there).
    outline_intensity_sigma_px : float
        Gaussian σ (frame pixels) of the normalised frame before ``level`` is taken.
    """

    foreground: float = 0.5
    seed_distance: float = 0.5
    min_size_px: int = 12
    min_mean_foreground: float = 0.0
    seed_h: float = 0.0
    outline_foreground: float = 0.0
    outline_sigma_px: float = 0.0
    split_h_px: float = 0.0
    split_min_area_px: int = 0
    outline_intensity_weight: float = 0.0
    outline_intensity_fraction: float = 0.25
    outline_intensity_sigma_px: float = 2.0


#: Width (frame pixels) of the ring around each object whose median intensity is its background in
#: :func:`cut_outlines_by_object`.
OUTLINE_RING_PX = 4.0


def _label_medians(values: np.ndarray, labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Median of ``values`` over each label ``0..n`` (index 0 unused) and the pixel counts.

    The median of an even count is the mean of the two middle values (as ``scipy.ndimage.median``);
    a label without pixels gets 0. One sort of the labelled pixels instead of ``ndimage.median``'s
    per-label selection (GOWT1 frame: ~0.9 → ~0.05 s).
    """
    mask = labels > 0
    lab = labels[mask].astype(np.int64)
    val = values[mask].astype(np.float64)
    order = np.lexsort((val, lab))
    val = val[order]
    counts = np.bincount(lab, minlength=n + 1)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    med = np.zeros(n + 1)
    has = counts > 0
    lo = starts[has] + (counts[has] - 1) // 2
    hi = starts[has] + counts[has] // 2
    med[has] = 0.5 * (val[lo] + val[hi])
    return med, counts


def cut_outlines_by_object(labels: np.ndarray, foreground: np.ndarray, image: np.ndarray, *, threshold: float = 0.5,
                           weight: float = 0.25, fraction: float = 0.25, sigma_px: float = 2.0,
                           ring_px: float = OUTLINE_RING_PX) -> np.ndarray:
    """Cut 2D labels by their foreground probability blended with each object's own intensity level.

    Parameters
    ----------
    labels : numpy.ndarray
        int labels ``(Y, X)`` at the frame's size, before any outline cut (resized back and grown).
    foreground : numpy.ndarray
        Foreground probability (0..1), same shape.
    image : numpy.ndarray
        The normalised frame (:func:`normalize_image`), same shape.
    threshold : float
        Cut level (the model's ``foreground``); also what makes an object's interior.
    weight : float
        Weight ``w`` of the intensity level (0: the plain cut ``foreground > threshold``).
    fraction : float
        Fraction of the way from background to interior where the level is 0.5.
    sigma_px : float
        Gaussian σ of the frame before the level is taken (0: none).
    ring_px : float
        Width of the background ring.

    Returns
    -------
    numpy.ndarray
        New int labels: a pixel of object ``k`` is kept where
        ``(1 − w)·foreground + w·0.5·(I − B_k) / (fraction·(I_k − B_k)) > threshold``, with ``I``
        the smoothed frame, ``I_k`` its median over the object's interior (``foreground >
        threshold``) and ``B_k`` its median over the ring ``ring_px`` wide around that interior
        outside every object's interior; holes then left inside one object (enclosed by it alone,
        inside its uncut extent) are filled. An object without an interior, a ring or a positive
        contrast keeps the plain cut.

    Notes
    -----
    A per-object outline rule (session 12, chosen on the validation frames of GOWT1 01 and HeLa 02,
    see docs/segmentation.md): where the model's probability draws one outline for every nucleus, the
    intensity places it at a fixed fraction of each nucleus's own contrast, so a dim nucleus is
    outlined at its own level rather than at the bright nuclei's.
    """
    from scipy import ndimage as ndi

    labels = np.asarray(labels)
    fg = np.asarray(foreground, np.float32)
    out = np.where(fg > threshold, labels, 0)
    n = int(labels.max())
    if n == 0 or weight <= 0:
        return out
    # everything in the labels' bounding box, grown so that the ring inside it is the whole frame's
    pad = 2 * int(np.ceil(ring_px)) + 2
    nz = [np.flatnonzero(labels.any(axis=1 - ax)) for ax in range(2)]
    box = tuple(slice(max(int(z[0]) - pad, 0), min(int(z[-1]) + pad + 1, labels.shape[ax])) for ax, z in enumerate(nz))
    lab, f, core = labels[box], fg[box], out[box]
    x = np.asarray(image, np.float32)
    xs = (ndi.gaussian_filter(x, float(sigma_px)) if sigma_px > 0 else x)[box]
    ring = _nearest_ring(core, ring_px)
    inner, n_in = _label_medians(xs, core, n)
    bg, n_bg = _label_medians(xs, ring, n)
    contrast = inner - bg
    ok = (n_in > 0) & (n_bg > 0) & (contrast > 1e-6)
    ok[0] = False
    scale = np.where(ok, 0.5 / (float(fraction) * np.where(ok, contrast, 1.0)), 0.0)
    inside = lab > 0
    ids = lab[inside]
    keep = (1.0 - weight) * f[inside] + weight * (xs[inside] - bg[ids]) * scale[ids] > threshold
    cut = core.copy()
    cut[inside] = np.where(ok[ids], np.where(keep, ids, 0), core[inside])
    background, n_bg_comp = ndi.label(cut == 0)  # holes: background components away from the box's edge
    hole_ids = np.ones(n_bg_comp + 1, bool)
    hole_ids[0] = False
    hole_ids[np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])] = False
    holes = hole_ids[background]
    if holes.any():
        comp, _ = ndi.label(holes)
        for _, sl, hole in _object_boxes(comp):
            around = np.unique(cut[sl][ndi.binary_dilation(hole) & ~hole])
            if len(around) == 1 and around[0] > 0:  # enclosed by one object: its uncut pixels come back
                cut[sl][hole & (lab[sl] == around[0])] = around[0]
    result = np.zeros_like(out)
    result[box] = cut
    return result


def _nearest_ring(core: np.ndarray, ring_px: float) -> np.ndarray:
    """Each background pixel within ``ring_px`` of an object, labelled by its nearest object (Euclidean).

    ``skimage.segmentation.expand_labels(core, ring_px)`` outside ``core``, computed in a box around
    each object when those boxes are smaller in all than the frame (a nearer other object always lies
    inside the box, grown by ``2·ring_px + 2``): same labels, a fraction of the distance transform
    (GOWT1 frame, 24 nuclei: ~0.15 → ~0.03 s).
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import expand_labels

    pad = 2 * int(np.ceil(ring_px)) + 2
    slices = ndi.find_objects(core)
    boxes = [None if sl is None else tuple(slice(max(a.start - pad, 0), min(a.stop + pad, n))
                                           for a, n in zip(sl, core.shape, strict=True)) for sl in slices]
    area = sum(int(np.prod([b.stop - b.start for b in box])) for box in boxes if box is not None)
    if area >= core.size:
        ring = expand_labels(core, float(ring_px))
        ring[core > 0] = 0
        return ring
    ring = np.zeros_like(core)
    for k, box in enumerate(boxes, start=1):
        if box is None:
            continue
        sub = core[box]
        mine = (expand_labels(sub, float(ring_px)) == k) & (sub == 0)
        ring[box][mine] = k
    return ring


def split_by_shape(labels: np.ndarray, h_px: float, min_area_px: int = 0) -> np.ndarray:
    """Each object cut at the h-maxima of the Euclidean distance transform of its own mask.

    Parameters
    ----------
    labels : numpy.ndarray
        int instances ``((Z), Y, X)``.
    h_px : float
        Smallest dynamic (pixels) of a distance-transform peak that becomes its own object: two lobes
        joined by a neck ``2 h`` narrower than each lobe's inscribed diameter are split.
    min_area_px : int
        Objects smaller than this are left whole.

    Returns
    -------
    numpy.ndarray
        int32 labels; every new piece gets an id above the input's largest; a convex object has one
        maximum and is unchanged.

    Notes
    -----
    Raises nothing of its own: ``labels`` is cast to int32 first (float ids are truncated).
    The h-maxima are the extended maxima (:func:`h_maxima_in_object` with ``extended=True``): the
    regional maxima of the morphological reconstruction by dilation of ``edt - h`` under ``edt``
    (maxima of dynamic ≥ h; Vincent, IEEE TIP 2 (1993) 176–201; scikit-image ``reconstruction`` and
    ``local_maxima``), and the cut is a watershed of ``-edt`` from them (scikit-image ``watershed``),
    as in the classical distance-transform split of touching nuclei.
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import watershed

    out = np.asarray(labels).astype(np.int32, copy=True)
    if out.max() == 0 or h_px <= 0:
        return out
    nxt = int(out.max()) + 1
    for _, box, inside in _object_boxes(out, min_size=max(int(min_area_px), 2)):
        edt = ndi.distance_transform_edt(inside)
        # the extended maxima: two equal lobes joined above their top - h are one plateau, one maximum
        peaks, n = ndi.label(h_maxima_in_object(edt, inside, h_px, extended=True))
        if n < 2:
            continue
        parts = watershed(-edt, peaks, mask=inside)
        sub = out[box]
        for k in range(2, n + 1):
            sub[parts == k] = nxt
            nxt += 1
    return out


def instances_from_maps(foreground: np.ndarray, distance: np.ndarray, boundary: np.ndarray | None = None,
                        params: PostprocessParams | None = None) -> np.ndarray:
    """Instances from predicted foreground / distance (/ boundary) maps by seeded watershed.

    Parameters
    ----------
    foreground : numpy.ndarray
        Foreground probability ``((Z), Y, X)``, float in 0..1.
    distance : numpy.ndarray
        Predicted normalised distance to the edge (0..1), same shape.
    boundary : numpy.ndarray, optional
        Boundary probability; seeds exclude pixels with boundary probability > 0.5.
    params : PostprocessParams, optional
        Thresholds.

    Returns
    -------
    numpy.ndarray
        int32 labels, 0 = background, ids 1..N.

    Notes
    -----
    Seeds = connected components of ``distance > seed_distance`` inside the foreground (with
    ``seed_h`` > 0: the h-maxima of the distance inside the foreground, scikit-image
    ``h_maxima``; Vincent, IEEE TIP 2 (1993) 176–201); watershed of ``−distance`` from those seeds restricted to ``foreground > threshold``;
    foreground components without a seed keep their own id; with ``split_h_px`` > 0 each object is
    then cut by its shape (:func:`split_by_shape`); objects whose mean foreground
    probability is below ``min_mean_foreground`` (when > 0) and small objects are removed.
    (Naylor et al., IEEE TMI 38 (2019) 448–459; scikit-image ``watershed``.)
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import relabel_sequential, watershed

    p = params or PostprocessParams()
    mask = np.asarray(foreground) > p.foreground
    if not mask.any():
        return np.zeros(mask.shape, dtype=np.int32)
    dist = np.asarray(distance, dtype=np.float32)
    if p.seed_h > 0:
        core = _h_maxima_per_component(mask, dist, p.seed_h)
    else:
        core = mask & (dist > p.seed_distance)
        if boundary is not None:
            core &= np.asarray(boundary) < 0.5
    markers, _ = ndi.label(core)
    labels = watershed(-dist, markers, mask=mask).astype(np.int32)
    rest = mask & (labels == 0)
    if rest.any():
        extra, _ = ndi.label(rest)
        labels[rest] = extra[rest] + labels.max()
    if p.split_h_px > 0:
        labels = split_by_shape(labels, p.split_h_px, p.split_min_area_px)
    if p.min_mean_foreground > 0 and labels.max() > 0:
        ids = np.arange(1, labels.max() + 1)
        conf = np.asarray(ndi.mean(np.asarray(foreground, np.float32), labels, ids))
        weak = np.zeros(labels.max() + 1, bool)
        weak[1:] = np.nan_to_num(conf, nan=1.0) < p.min_mean_foreground
        labels[weak[labels]] = 0
    sizes = np.bincount(labels.ravel())
    small = sizes < p.min_size_px
    small[0] = False
    if small.any():
        labels[small[labels]] = 0
    return relabel_sequential(labels)[0].astype(np.int32)
