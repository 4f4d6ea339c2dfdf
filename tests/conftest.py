"""Fixtures shared by the test files."""

import pytest
import torch


@pytest.fixture
def single_thread():
    """Tiny models run fastest on one thread (and do not stall on a busy machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
