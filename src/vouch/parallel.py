"""Work over many items in threads, without concurrent.futures (which imports logging and queue: start-up
time that a verify or a release re-run of many images does not need)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def parallel_map(fn: Callable[[T], R], items: list[T], concurrency: int) -> list[R]:
    """fn over items in up to `concurrency` threads, results in input order; the first error in input order
    is raised once all have run."""
    if len(items) <= 1 or concurrency <= 1:
        return [fn(i) for i in items]
    results: list[Any] = [None] * len(items)
    errors: list[BaseException | None] = [None] * len(items)
    work = iter(range(len(items)))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                i = next(work, None)
            if i is None:
                return
            try:
                results[i] = fn(items[i])
            except BaseException as exc:  # (re-raised in the caller's thread)
                errors[i] = exc

    threads = [threading.Thread(target=worker, daemon=True, name=f"vouch-{n}")
               for n in range(min(concurrency, len(items)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for exc in errors:
        if exc is not None:
            raise exc
    return results
