"""What the bench scripts share: the best of several wall-clock timings of a call."""
from __future__ import annotations

import time
from typing import Any, Callable


def best_time(call: Callable[[], Any], repeat: int = 3) -> float:
    """The shortest of `repeat` wall-clock times of `call()`, in seconds: the run least disturbed by the machine."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)
