"""One torch thread for these tests: the models are tiny, and on a loaded machine the second OpenMP thread makes
every small operation wait (tens of ms each); results do not depend on the thread count on CPU."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
