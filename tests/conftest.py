"""Shared fixtures: small seeded data sets that train in well under a second."""

from __future__ import annotations

import pytest
from toy_data import make_toy

from mtl_lab.data.base import MultiTaskData


@pytest.fixture
def toy() -> MultiTaskData:
    return make_toy()
