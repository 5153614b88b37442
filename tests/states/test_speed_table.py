"""The classification speed table (benchmarks/classify.py) runs and reports sane figures."""

from __future__ import annotations


def test_speed_table_rows_for_untrained_and_shipped_models() -> None:
    from dynacell.states.speed import speed_table

    table = speed_table(n=16, threads=1, batch_size=8, repeats=1, sizes={2: 16})
    assert {"4ncnn", "dcnet"} <= set(table["model"])
    assert (table["nuclei_per_s"] > 0).all() and (table["nuclei_per_cpu_s"] > 0).all()
    assert set(table["ndim"]) == {2}
    assert table.loc[table["model"] == "dcnet", "crop"].item() == "16×16"


def test_crop_speed_counts_every_nucleus_of_the_movie() -> None:
    from _helpers import FixedClassifier, synthetic_movie

    from dynacell.states.speed import crop_speed

    images, labels = synthetic_movie(T=4, size=64)
    out = crop_speed(images, labels, FixedClassifier(), repeats=1)
    # nucleus A in every frame, B until frame 2 then its two daughters: 2 + 2 + 2 + 3
    assert out["nuclei"] == 9 and out["frames"] == 4
    assert out["crop"] == "4×16×16" and out["nuclei_per_cpu_s"] > 0
