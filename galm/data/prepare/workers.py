"""Decoding worker processes: a pool whose workers die with the process that started them.

A spawned worker of a ``ProcessPoolExecutor`` notices a killed parent only between tasks, so after
``kill -9`` of ``galm data prepare --workers N`` its workers went on decoding for a minute or more.
Each worker now asks Linux to kill it when its parent dies (``PR_SET_PDEATHSIG``) and, on every
platform, watches its parent's pid from a thread and exits within a second of the parent's death.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator

from galm.runs.lock import pid_alive

PARENT_POLL_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Worker initializer: end this process when process ``parent`` ends."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if not pid_alive(parent):  # it died before the request above took effect
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="galm-parent-watch", daemon=True).start()


def _watch(parent: int) -> None:
    """Exit as soon as ``parent`` no longer runs (or this process was re-parented away from it)."""
    direct = os.getppid() == parent
    while pid_alive(parent) and (not direct or os.getppid() == parent):
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


@contextlib.contextmanager
def decoded(tasks: list[Any], workers: int, function: Callable[[Any], Any]) -> Iterator[Iterator[Any]]:
    """``function`` of every task, in task order: in-process for one worker, else from spawned
    processes that die with this one."""
    if workers == 1 or len(tasks) < 2:
        yield (function(task) for task in tasks)
        return
    context = multiprocessing.get_context("spawn")
    chunksize = max(1, min(64, len(tasks) // (workers * 8)))
    executor = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context,
                                   initializer=die_with_parent, initargs=(os.getpid(),))
    try:
        yield _checked(executor.map(function, tasks, chunksize=chunksize))
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _checked(results: Iterator[Any]) -> Iterator[Any]:
    """Pass results through, explaining a worker pool that could not start."""
    try:
        yield from results
    except BrokenProcessPool as error:
        raise RuntimeError(
            f"decoding worker processes failed ({error}); when calling prepare from a script, guard it "
            "with `if __name__ == '__main__':`, or use workers=1"
        ) from None
