"""Progress of long loops: tqdm's redrawing bar on a terminal, whole lines anywhere else.

A redrawing bar rewrites its line with ``\\r`` a few times a second. In a log file,
a CI job or a pipe every redraw stays, and one epoch leaves thousands of partial
lines. So :func:`progress_bar` draws tqdm's bar only when its stream is a terminal
(``stream.isatty()``); otherwise (Keras' ``verbose=2``, Lightning's non-interactive
progress) it writes one whole line at most every ``interval`` seconds while the
loop runs and, when ``leave`` is true, one line when it closes::

    epoch 1/10: 120/120 batch in 35.2 s (3.41 batch/s), loss=0.4321, img_s=12.3

so an epoch that takes less than ``interval`` seconds writes exactly one line.
"""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm

__all__ = ["progress_bar", "LineProgress", "LINE_INTERVAL"]

LINE_INTERVAL = 30.0


class LineProgress:
    """tqdm's interface (iterate, ``update``, ``set_postfix``, ``close``) writing whole lines to ``stream``.

    ``stream=None`` writes nothing. A line is written by ``update`` when ``interval``
    seconds have passed since the start or the previous line, and by ``close``
    (called at the end of an iteration, once) when ``leave`` is true.
    """

    def __init__(self, iterable=None, *, total=None, desc: str = "", unit: str = "it", interval: float = LINE_INTERVAL,
                 stream=None, leave: bool = True):
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.interval, self.stream, self.leave = float(interval), stream, leave
        self.n = 0
        self.postfix: dict = {}
        self.started = self._last = time.monotonic()
        self.closed = False

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()  # as tqdm: a loop run to its end closes the display

    def __len__(self) -> int:
        return self.total if self.total is not None else len(self.iterable)

    def set_postfix(self, **values) -> None:
        self.postfix = values

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._write(now)

    def close(self) -> None:
        if not self.closed and self.leave:
            self._write(time.monotonic())
        self.closed = True

    def line(self, now: float) -> str:
        """``desc: n/total unit in s (rate unit/s), key=value, ...``."""
        elapsed = now - self.started
        count = f"{self.n}/{self.total}" if self.total is not None else f"{self.n}"
        rate = f" ({self.n / elapsed:.2f} {self.unit}/s)" if elapsed > 0 else ""
        text = f"{self.desc}: {count} {self.unit} in {elapsed:.1f} s{rate}"
        return text + "".join(f", {key}={value}" for key, value in self.postfix.items())

    def _write(self, now: float) -> None:
        if self.stream is not None:
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()


def progress_bar(iterable=None, *, total=None, desc: str = "", unit: str = "it", enabled: bool = True,
                 leave: bool = True, interval: float | None = None, stream=None):
    """A progress display for ``iterable`` (or for ``update`` calls when it is None).

    ``enabled=False``: nothing is written. ``stream`` (default ``sys.stderr``, read
    at call time) a terminal: tqdm's bar (``dynamic_ncols``). Otherwise a
    :class:`LineProgress` writing a line every ``interval`` seconds (default
    :data:`LINE_INTERVAL`, 30) and one at ``close`` when ``leave``.
    """
    stream = sys.stderr if stream is None else stream
    if enabled and _is_terminal(stream):
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True, file=stream)
    return LineProgress(iterable, total=total, desc=desc, unit=unit,
                        interval=LINE_INTERVAL if interval is None else interval,
                        stream=stream if enabled else None, leave=leave)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
