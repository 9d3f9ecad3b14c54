"""What the panel tests share: the small toy data under the name 'digits', and waiting for a run's thread."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from toy_data import make_toy

from mtl_lab.widgets.config import DATA_CACHE


@contextmanager
def toy_as_digits() -> Iterator[None]:
    """The Lab loads data sets by name through ``DATA_CACHE``: within the block the small conftest data stand
    under the name 'digits', so that every run takes well under a second; the cache is put back after."""
    key = json.dumps({"name": "digits", "options": {}}, sort_keys=True)
    saved = DATA_CACHE.get(key)
    DATA_CACHE[key] = make_toy()
    try:
        yield
    finally:
        if saved is None:
            DATA_CACHE.pop(key, None)
        else:
            DATA_CACHE[key] = saved


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Poll ``condition`` every 10 ms until it holds (``True``) or ``timeout`` seconds pass (``False``)."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if condition():
            return True
        time.sleep(0.01)
    return False
