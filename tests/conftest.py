"""Shared fixtures: small seeded data sets that train in well under a second.

Property tests draw their examples from a fixed seed (``derandomize``): the suite gives the same verdict on
every run and every machine, so a red run means the code changed, not the luck of the draw. To search
afresh for new counter-examples, run ``pytest --hypothesis-profile=explore``.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from toy_data import make_toy

from mtl_lab.data.base import MultiTaskData

settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile("repeatable")


@pytest.fixture
def toy() -> MultiTaskData:
    return make_toy()
