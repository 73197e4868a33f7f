"""What the benchmark scripts share."""
from __future__ import annotations

import time
from typing import Callable


def best_seconds(function: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of `repeats` timed calls: on two shared cores the minimum is the stable figure."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)
