"""Threads with `threads: 0`: the cores a process was given (executor share, OMP_NUM_THREADS,
affinity, cgroup quota), never the machine's count; `--jobs N` divides them."""

import os

import pytest
import torch

from galm.engine import threads
from galm.engine.threads import available_cores, configure_threads, share_of_cores, thread_count
from galm.experiments.executors import ProcessPoolCells


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A process allowed on 6 of the machine's cores, no OMP_NUM_THREADS, no cgroup quota file."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(6)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(threads, "CGROUP_CPU_MAX", tmp_path / "cpu.max")
    return tmp_path / "cpu.max"


def test_affinity_not_the_machine_count(machine):
    assert available_cores() == 6
    assert thread_count(0) == 6


def test_omp_num_threads_wins_over_affinity(machine, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # what torchrun sets per rank
    assert thread_count(0) == 2
    for bad in ("0", "two", ""):
        monkeypatch.setenv("OMP_NUM_THREADS", bad)
        assert thread_count(0) == 6


def test_cgroup_quota_caps_the_affinity(machine):
    machine.write_text("150000 100000\n")  # docker --cpus=1.5
    assert available_cores() == 2
    machine.write_text("max 100000\n")
    assert available_cores() == 6
    machine.write_text("garbage\n")
    assert available_cores() == 6


def test_granted_cores_and_explicit_setting(machine, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert thread_count(0, granted=2.0) == 2  # a Ray task's num_cpus or a --jobs share
    assert thread_count(0, granted=0.5) == 1  # a fractional CPU still runs on one thread
    assert thread_count(3, granted=2.0) == 3  # an explicit setting is kept as given
    with pytest.raises(ValueError, match="threads"):
        thread_count(-1)


def test_jobs_divide_the_cores(machine, monkeypatch):
    assert share_of_cores(2) == 3
    assert share_of_cores(4) == 1
    assert share_of_cores(8, cores=2) == 1
    assert ProcessPoolCells(3).cores_per_cell() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    assert ProcessPoolCells(2).cores_per_cell() == 4
    with pytest.raises(ValueError, match="jobs"):
        share_of_cores(0)
    with pytest.raises(ValueError, match="--jobs"):
        ProcessPoolCells(0)


def test_configure_threads_sets_torch(machine):
    before = torch.get_num_threads()
    try:
        assert configure_threads(0, granted=2) == 2 and torch.get_num_threads() == 2
        assert configure_threads(0) == 6 and torch.get_num_threads() == 6
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
