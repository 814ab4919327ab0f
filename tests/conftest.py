"""Test-suite settings shared by every package's tests."""

import pytest
from hypothesis import settings

# CI must be reproducible: hypothesis draws the same examples on every run (a failure found once is found again).
settings.register_profile("rote", derandomize=True, deadline=None)
settings.load_profile("rote")


@pytest.fixture
def one_torch_thread():
    """One torch thread for the tiny training tests: on a shared 2-core machine, 2-thread kernels on tiny tensors
    mostly wait for each other (up to 15x slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
