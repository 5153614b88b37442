"""The classification speed table (benchmarks/classify.py) runs and reports sane figures."""

from __future__ import annotations


def test_speed_table_rows_for_untrained_and_shipped_models() -> None:
    from dynacell.states.speed import speed_table

    table = speed_table(n=16, threads=1, batch_size=8, repeats=1, sizes={2: 16})
    assert {"4ncnn", "dcnet"} <= set(table["model"])
    assert (table["nuclei_per_s"] > 0).all() and (table["nuclei_per_cpu_s"] > 0).all()
    assert set(table["ndim"]) == {2}
    assert table.loc[table["model"] == "dcnet", "crop"].item() == "16×16"
