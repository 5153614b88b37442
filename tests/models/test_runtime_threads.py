"""dynacell.models.runtime.threads_beside_worker: torch's thread count inside and after the block."""

from __future__ import annotations

import pytest
import torch

from dynacell.errors import InvalidInputError
from dynacell.models.runtime import threads_beside_worker


@pytest.fixture
def four_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    yield
    torch.set_num_threads(before)


def test_leaves_the_workers_cores_and_restores(four_threads):
    with threads_beside_worker(1) as inside:
        assert inside == 3
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == 4
    with threads_beside_worker(10) as inside:  # never below one thread
        assert inside == 1 == torch.get_num_threads()
    with threads_beside_worker(0) as inside:
        assert inside == 4 == torch.get_num_threads()
    assert torch.get_num_threads() == 4


def test_restores_after_an_error(four_threads):
    with pytest.raises(RuntimeError, match="boom"):
        with threads_beside_worker(2):
            assert torch.get_num_threads() == 2
            raise RuntimeError("boom")
    assert torch.get_num_threads() == 4


def test_rejects_negative_workers():
    with pytest.raises(InvalidInputError, match="workers must be >= 0"):
        with threads_beside_worker(-1):
            pass
