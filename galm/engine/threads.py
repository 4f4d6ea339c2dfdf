"""How many CPU threads torch uses in this process: the `threads` setting, else the cores it was given.

A process is given cores by whoever started it: an executor's share (a ``--jobs N`` worker gets
1/N of the driver's cores, a Ray task its ``num_cpus``), ``OMP_NUM_THREADS`` (torchrun sets it per
rank), the CPU affinity mask (``taskset``, Slurm, a container's cpuset) and a cgroup CPU quota
(``docker --cpus``, Kubernetes limits). torch's own default counts the machine's cores, so
processes sharing a machine oversubscribe it many times over; :func:`thread_count` decides.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

# The cgroup v2 CPU quota of this process ("max 100000" when unlimited, "<quota> <period>" otherwise).
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def _env_threads() -> int | None:
    """``OMP_NUM_THREADS`` as a positive count (None when unset or not a positive integer)."""
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def _affinity_cores() -> int:
    """Cores this process may run on (its affinity mask; the machine's count where there is none)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _quota_cores() -> int | None:
    """Whole cores of the cgroup v2 CPU quota, rounded up (None when unlimited or unreadable)."""
    try:
        quota, _, period = CGROUP_CPU_MAX.read_text(encoding="ascii").strip().partition(" ")
        if quota == "max":
            return None
        return max(1, math.ceil(int(quota) / int(period or "100000")))
    except (OSError, ValueError, ZeroDivisionError):
        return None


def available_cores() -> int:
    """The cores this process was given: ``OMP_NUM_THREADS`` when set, else its affinity mask
    capped by its cgroup CPU quota."""
    from_env = _env_threads()
    if from_env is not None:
        return from_env
    quota = _quota_cores()
    affinity = _affinity_cores()
    return min(affinity, quota) if quota is not None else affinity


def share_of_cores(jobs: int, cores: int | None = None) -> int:
    """Cores of each of `jobs` processes sharing `cores` (default: this process's), at least one."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    total = available_cores() if cores is None else cores
    return max(1, total // jobs)


def thread_count(setting: int, granted: float | None = None) -> int:
    """torch's thread count for a `threads` setting: a positive setting as given; 0 takes the cores
    an executor `granted` this process (a ``--jobs`` share, a Ray task's CPUs; rounded down, at
    least one), else :func:`available_cores`."""
    if setting < 0:
        raise ValueError(f"threads must be 0 (the cores this process was given) or positive, got {setting}")
    if setting > 0:
        return setting
    if granted is not None:
        return max(1, int(granted))
    return available_cores()


def configure_threads(setting: int, granted: float | None = None) -> int:
    """Set torch's CPU thread count as :func:`thread_count` decides; returns it."""
    import torch

    count = thread_count(setting, granted)
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count
