"""Two nuclei under one id (8-bit labels wrapped past 255, merged masks) are found and said, never silently linked."""

from __future__ import annotations

import numpy as np
from _helpers import FixedClassifier, synthetic_movie

from dynacell.io.movie import Movie
from dynacell.io.scan import frame_objects, scan_labels, separated_ids, shared_id_notes
from dynacell.pipeline import run


def _discs(n_side: int = 18, r: int = 3, gap: int = 10) -> np.ndarray:
    """A grid of ``n_side²`` discs with ids 1.. (more than 255 when n_side >= 16)."""
    size = n_side * gap + gap
    yy, xx = np.mgrid[:size, :size]
    lab = np.zeros((size, size), np.int32)
    k = 0
    for i in range(n_side):
        for j in range(n_side):
            k += 1
            lab[(yy - gap - i * gap) ** 2 + (xx - gap - j * gap) ** 2 <= r * r] = k
    return lab


def test_ids_wrapped_by_8_bit_labels_are_found():
    lab = _discs()
    assert separated_ids(lab, *_objects(lab)) == []  # 324 distinct nuclei: nothing to say
    wrapped = (lab % 256).astype(np.uint8)  # ids 257.. become 1.., 256 becomes background
    found = dict(separated_ids(wrapped, *_objects(wrapped)))
    assert set(found) == set(range(1, 324 - 255)) and set(found.values()) == {2}
    notes = shared_id_notes(Movie(wrapped[None], "TYX", source="wrapped"),
                            [(0, i, n) for i, n in sorted(found.items())])
    assert len(notes) == 1 and "68 label id(s) in 1 frame(s) of wrapped" in notes[0] and "8-bit" in notes[0]
    assert shared_id_notes(Movie(wrapped[None], "TYX"), []) == []


def test_one_long_bent_nucleus_and_a_far_speck_are_not_reported():
    lab = np.zeros((120, 120), np.uint16)
    for k in range(80):  # a thin diagonal rod: sparse box, wide span, one piece
        lab[20 + k, 20 + k: 24 + k] = 1
    for n, (y, x) in enumerate([(5, 100), (100, 5), (60, 100), (100, 60)], start=2):
        lab[y:y + 6, x:x + 6] = n
    lab[110, 110] = 2  # one stray pixel of nucleus 2 far away: a speck, harmless to its centroid
    assert separated_ids(lab, *_objects(lab)) == []
    lab[100:106, 100:106] = 2  # a whole second nucleus under id 2
    assert separated_ids(lab, *_objects(lab)) == [(2, 3)]
    vol = np.zeros((6, 60, 60), np.uint16)  # 3D: the same rule in a volume
    vol[1:4, 2:8, 2:8] = 1
    vol[1:4, 50:56, 50:56] = 1
    for n, (y, x) in enumerate([(2, 40), (40, 2), (25, 25)], start=2):
        vol[1:4, y:y + 6, x:x + 6] = n
    assert separated_ids(vol, *_objects(vol)) == [(1, 2)]


def test_run_notes_shared_ids(tmp_path):
    images, labels = synthetic_movie(T=4)
    data = np.array(labels.data)
    a, b = int(data[3, 20, 20]), int(data[3, 44, 54])  # two of frame 3's three nuclei under one id
    data[3][data[3] == b] = a
    assert separated_ids(data[3], *_objects(data[3])) == [(a, 2)]
    shared = []
    scan_labels(images, Movie(data, "TYX", source="merged"), progress=False, objects={}, shared=shared)
    assert shared == [(3, a, 2)]
    res = run(images, labels=Movie(data, "TYX", source="merged"), model=FixedClassifier(), out=tmp_path / "o",
              progress=False, video=False)
    assert sum("1 label id(s) in 1 frame(s) of merged are made of separate pieces" in n for n in res.info["notes"]) == 1
    assert not any("separate pieces" in n for n in run(images, labels=labels, model=FixedClassifier(),
                                                       out=tmp_path / "o2", progress=False, video=False).info["notes"])


def _objects(frame: np.ndarray):
    ids, _, sizes, boxes = frame_objects(frame, 0)
    return ids, sizes, boxes


def test_background_carrying_an_id_is_refused(tmp_path):
    """Labels whose background is 65535 (or 255) instead of 0: one giant 'nucleus' would wreck the whole frame."""
    import pytest

    from dynacell.errors import InvalidInputError

    images, labels = synthetic_movie(T=3)
    data = np.array(labels.data)
    data[data == 0] = 65535
    with pytest.raises(InvalidInputError, match=r"frame 0: label 65535 covers 9\d% of the frame and touches all four"):
        scan_labels(images, Movie(data, "TYX", source="bg"), progress=False, objects={})
    with pytest.raises(InvalidInputError, match="looks like the background"):
        run(images, labels=Movie(data, "TYX", source="bg"), model=FixedClassifier(), out=tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()
    one = np.zeros((2, 16, 16), np.uint16)
    one[:, 1:15, 1:15] = 3  # a single large nucleus is not background (nothing else in the frame)
    one[:, 0, :] = 3
    one[:, :, 0] = 3
    one[:, -1, :] = 3
    one[:, :, -1] = 3
    m = Movie(one, "TYX")
    scan_labels(m, m, progress=False, objects={})
    vol = np.full((1, 4, 20, 20), 255, np.uint8)  # 3D: the same
    vol[0, 1:3, 2:6, 2:6] = 1
    vol[0, 1:3, 10:14, 10:14] = 2
    with pytest.raises(InvalidInputError, match="label 255 covers"):
        scan_labels(Movie(vol, "TZYX"), Movie(vol, "TZYX"), progress=False, objects={})
