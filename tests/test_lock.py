"""One writer per directory (galm.runs.lock): a held lock refuses a second writer naming its
holder, a stale lock (its process gone) is taken over, a lock from another host is never broken."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from galm.runs.lock import LOCK_FILE, DirectoryLocked, lock_directory, pid_alive

ROOT = Path(__file__).resolve().parents[1]


class Holder:
    """Another process holding the lock of a directory until it is stopped."""

    def __init__(self, directory: Path) -> None:
        code = ("import sys; from galm.runs.lock import lock_directory; lock = lock_directory(sys.argv[1]); "
                "print('locked', flush=True); sys.stdin.read(); lock.release()")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen([sys.executable, "-c", code, str(directory)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)
        assert self.process.stdout.readline().strip() == "locked"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.stdin.close()
        assert self.process.wait(timeout=30) == 0


@pytest.fixture
def holder(tmp_path):
    directory = tmp_path / "d"
    directory.mkdir()
    held = Holder(directory)
    yield directory, held
    if held.process.poll() is None:
        held.stop()


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_second_writer_is_refused_naming_the_holder(holder):
    directory, held = holder
    with pytest.raises(DirectoryLocked, match=f"pid {held.pid} on {socket.gethostname()}"):
        lock_directory(directory)
    held.stop()
    assert not (directory / LOCK_FILE).exists()
    with lock_directory(directory):
        assert json.loads((directory / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (directory / LOCK_FILE).exists()


def test_a_stale_lock_is_taken_over(tmp_path):
    pid = _dead_pid()
    assert not pid_alive(pid)
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "token": "old"}))
    with lock_directory(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_a_lock_of_another_host_is_never_broken(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": _dead_pid(), "host": "elsewhere.example", "token": "x"}))
    with pytest.raises(DirectoryLocked, match="elsewhere.example.*delete"):
        lock_directory(tmp_path)
    assert (tmp_path / LOCK_FILE).exists()


def test_a_lock_of_another_host_is_taken_over_only_in_the_role_the_caller_names(tmp_path):
    record = {"pid": 12, "host": "elsewhere.example", "token": "x", "role": "grid cell", "command": "galm"}
    (tmp_path / LOCK_FILE).write_text(json.dumps(record))
    with pytest.raises(DirectoryLocked, match=r"grid cell, galm.*delete"):
        lock_directory(tmp_path, takes_over="another role")
    with lock_directory(tmp_path, role="grid cell", takes_over="grid cell"):
        holder = json.loads((tmp_path / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["role"] == "grid cell"
    assert not (tmp_path / LOCK_FILE).exists()
    (tmp_path / LOCK_FILE).write_text(json.dumps({**record, "role": None}))
    with pytest.raises(DirectoryLocked, match="elsewhere.example"):
        lock_directory(tmp_path, takes_over="grid cell")  # a holder without that role keeps its lock


def test_the_holder_may_lock_again_and_the_outermost_release_frees_it(tmp_path):
    outer = lock_directory(tmp_path)
    with lock_directory(tmp_path):
        pass
    assert (tmp_path / LOCK_FILE).exists()
    outer.release()
    assert not (tmp_path / LOCK_FILE).exists()
