"""Tests for galm.engine.progress: plain-line mode off a terminal, tqdm on one."""

from __future__ import annotations

import io

import pytest
from tqdm import tqdm

from galm.engine.progress import PlainProgress, format_duration, progress


class FakeClock:
    """A clock the test advances by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TtyStringIO(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_every_ten_percent_with_eta_and_postfix() -> None:
    stream, clock = io.StringIO(), FakeClock()
    bar = PlainProgress(total=100, desc="search", stream=stream, clock=clock, interval_s=1e9)
    for step in range(100):
        clock.now += 0.3
        bar.set_postfix(loss=1.0 / (step + 1), arch="c3")
        bar.update(1)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert len(lines) == 10
    assert lines[3] == "search: 40/100 (40%) elapsed 12s eta 18s loss=0.025 arch=c3"
    assert lines[-1].startswith("search: 100/100 (100%) elapsed 30s eta 0s")


def test_plain_lines_on_interval_without_total() -> None:
    stream, clock = io.StringIO(), FakeClock()
    with PlainProgress(desc="epoch", unit="img", stream=stream, clock=clock, interval_s=10) as bar:
        for _ in range(25):
            clock.now += 1.0
            bar.update(4)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "epoch: 40 img elapsed 10s 4 img/s",
        "epoch: 80 img elapsed 20s 4 img/s",
        "epoch: 100 img elapsed 25s 4 img/s",
    ]


def test_iteration_yields_items_counts_len_and_closes() -> None:
    stream = io.StringIO()
    items = list(progress(range(7), desc="d", stream=stream))
    assert items == list(range(7))
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith("d: 7/7 (100%)")
    assert len(lines) == 7  # each item crosses a 10% band (7 < 10 items)


def test_close_prints_once_even_when_called_twice() -> None:
    stream = io.StringIO()
    bar = progress(total=3, stream=stream)
    bar.update(1)
    bar.close()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("1/3 (33%)")


def test_progress_uses_tqdm_on_a_terminal() -> None:
    stream = TtyStringIO()
    bar = progress(total=5, desc="x", stream=stream)
    assert isinstance(bar, tqdm)
    bar.update(5)
    bar.close()
    assert "x" in stream.getvalue()


def test_plain_progress_without_iterable_cannot_iterate() -> None:
    with pytest.raises(TypeError, match="without an iterable"):
        iter(PlainProgress(stream=io.StringIO())).__next__()


@pytest.mark.parametrize(
    "seconds, text",
    [(0, "0s"), (59.4, "59s"), (125, "2m05s"), (7620, "2h07m"), (float("nan"), "?")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
