"""Progress reporting: a tqdm bar on a terminal, plain occasional lines in logs and pipes.

A tqdm bar written to a file fills it with carriage returns and hundreds of redraws; a job log
wants a readable line every ~10% of the work or every few seconds instead.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Callable, Iterable, Iterator, TextIO

from tqdm import tqdm

__all__ = ["progress", "PlainProgress", "format_duration"]


def format_duration(seconds: float) -> str:
    """Short human duration: ``12s``, ``3m05s``, ``2h07m``; ``?`` when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _format_value(value: Any) -> str:
    """A postfix value: floats with four significant digits, everything else as ``str``."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class PlainProgress:
    """tqdm's ``update``/``set_postfix``/``close``/iteration interface, printing plain lines.

    A line is printed when the count crosses the next ``fraction_step`` of ``total``, when
    ``interval_s`` has passed since the last line, and on ``close``; never a carriage return.
    """

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        stream: TextIO | None = None,
        interval_s: float = 30.0,
        fraction_step: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = 0
        self._stream = stream if stream is not None else sys.stderr
        self._interval_s = interval_s
        self._fraction_step = fraction_step
        self._clock = clock
        self._start = clock()
        self._last_print_time = self._start
        self._last_printed_n = 0
        self._postfix: dict[str, Any] = {}
        self._closed = False

    def _bucket(self, n: int) -> int:
        """Index of the ``fraction_step`` band that count ``n`` falls in."""
        if not self.total:
            return 0
        return int(n / self.total / self._fraction_step + 1e-9)

    def update(self, n: int = 1) -> None:
        """Advances the count by ``n`` and prints a line if a band or the interval was crossed."""
        previous = self.n
        self.n += n
        now = self._clock()
        crossed_band = self._bucket(self.n) > self._bucket(previous)
        if crossed_band or now - self._last_print_time >= self._interval_s:
            self._print(now)

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True,
                    **kwargs: Any) -> None:
        """Sets ``key=value`` pairs shown at the end of each line (tqdm-compatible signature)."""
        self._postfix = {**(ordered_dict or {}), **kwargs}

    def set_description(self, desc: str = "", refresh: bool = True) -> None:
        """Changes the line prefix."""
        self.desc = desc

    def write(self, message: str) -> None:
        """Prints a message on its own line (as ``tqdm.write``)."""
        self._stream.write(message.rstrip("\n") + "\n")
        self._stream.flush()

    def format_line(self, now: float) -> str:
        """The status line at time ``now``."""
        elapsed = now - self._start
        prefix = f"{self.desc}: " if self.desc else ""
        if self.total:
            percent = 100.0 * self.n / self.total
            rate = self.n / elapsed if elapsed > 0 else math.nan
            eta = (self.total - self.n) / rate if self.n and rate > 0 else math.nan
            text = (
                f"{prefix}{self.n}/{self.total} ({percent:.0f}%) "
                f"elapsed {format_duration(elapsed)} eta {format_duration(eta)}"
            )
        else:
            rate_text = f" {self.n / elapsed:.3g} {self.unit}/s" if elapsed > 0 else ""
            text = f"{prefix}{self.n} {self.unit} elapsed {format_duration(elapsed)}{rate_text}"
        postfix = " ".join(f"{key}={_format_value(value)}" for key, value in self._postfix.items())
        return f"{text} {postfix}" if postfix else text

    def _print(self, now: float) -> None:
        self._stream.write(self.format_line(now) + "\n")
        self._stream.flush()
        self._last_print_time = now
        self._last_printed_n = self.n

    def close(self) -> None:
        """Prints the final line (unless the last line already showed the final count)."""
        if self._closed:
            return
        self._closed = True
        if self.n != self._last_printed_n or self.n == 0:
            self._print(self._clock())

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("this progress object was created without an iterable")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # closed or detached stream
        return False


def progress(
    iterable: Iterable[Any] | None = None,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    stream: TextIO | None = None,
    interval_s: float = 30.0,
) -> tqdm | PlainProgress:
    """A progress reporter on ``stream`` (default stderr): tqdm on a terminal, else plain lines;
    a silent one on the ranks other than 0 of a torchrun job (rank 0 reports for the job)."""
    if os.environ.get("RANK", "0") != "0":  # torchrun names each process's rank; no torch import here
        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=True)
    stream = stream if stream is not None else sys.stderr
    if _is_terminal(stream):
        return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream, dynamic_ncols=True)
    return PlainProgress(iterable, total=total, desc=desc, unit=unit, stream=stream,
                         interval_s=interval_s)
