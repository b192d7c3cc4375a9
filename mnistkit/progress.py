"""Progress bars that go where the user looks: the notebook, the terminal, a log, or nowhere.

``$MNISTKIT_PROGRESS`` chooses: ``text`` (the report's default: a text bar in the cell's own output,
redrawn in place and cleared when it ends; no widget, so JupyterLab shows the kernel busy for as
long as it trains and the bar stays where the cell is), ``notebook`` (tqdm.auto, widgets in
Jupyter), ``terminal`` (the terminal that started the process, so that a report run by papermill
shows its progress there and not in the report), or ``none``. Worker processes inherit it. Where
the output is neither a terminal nor a notebook (a pipe, a log file, CI), a bar prints plain lines
instead: one per update, at most one a second, and a last one when it closes; no carriage returns
or cursor moves.
"""

from __future__ import annotations

import os
import sys
import time
from functools import lru_cache

from tqdm import auto, notebook, std

def set_mode(mode: str) -> None:
    os.environ["MNISTKIT_PROGRESS"] = mode


@lru_cache(maxsize=1)
def _terminal():
    """The process's original stderr. Inside a Jupyter kernel fd 2 is captured into the notebook;
    ipykernel keeps a copy of the original descriptor, which still reaches the terminal."""
    fd = getattr(sys.stderr, "_original_stdstream_copy", None)
    return sys.__stderr__ if fd is None else open(os.dup(fd), "w", buffering=1)


def _in_kernel(file) -> bool:
    """Whether ``file`` is a Jupyter kernel's captured stream (its output goes into the notebook)."""
    return hasattr(file, "_original_stdstream_copy") or type(file).__module__.startswith("ipykernel")


def _is_terminal(file) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):
        return False


def bar(*args, disable: bool = False, **kw):
    """A tqdm bar (or ``Lines``) for the mode in ``$MNISTKIT_PROGRESS``; takes tqdm's arguments."""
    mode = os.environ.get("MNISTKIT_PROGRESS", "text")
    if disable or mode == "none":
        return std.tqdm(*args, disable=True, **kw)
    if mode == "notebook" and issubclass(auto.tqdm, notebook.tqdm):
        return auto.tqdm(*args, **kw)
    if mode == "text" and _in_kernel(sys.stderr):  # Jupyter draws a stream's carriage returns in place
        return std.tqdm(*args, file=sys.stderr, **{**kw, "leave": False})
    file = _terminal() if mode == "terminal" else sys.stderr
    if not _is_terminal(file):
        return Lines(*args, file=file, **kw)
    return std.tqdm(*args, file=file, **kw)


class Lines:
    """The part of tqdm's interface mnistkit uses, printed as plain lines (tqdm's own layout)."""

    def __init__(self, iterable=None, desc=None, total=None, initial=0, unit="it", file=None,
                 mininterval=1.0, bar_format=None, postfix=None, leave=True, **_):
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable, self.desc, self.total, self.unit = iterable, desc or "", total, unit
        self.n = self.initial = initial
        self.file, self.mininterval, self.bar_format = file or sys.stderr, mininterval, bar_format
        self.postfix = postfix or ""
        self.start, self.printed, self.closed = time.time(), float("-inf"), False
        if total:  # a first line at once: the log shows what is under way before its first update
            self._print()

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update()
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n=1) -> None:
        self.n += n
        if time.time() - self.printed >= self.mininterval:
            self._print()

    def set_postfix(self, ordered_dict=None, refresh=True, **kw) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in {**(ordered_dict or {}), **kw}.items())

    def set_postfix_str(self, s="", refresh=True) -> None:
        self.postfix = s

    def set_description(self, desc=None, refresh=True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        self._print()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._print()

    def _print(self) -> None:
        self.printed = time.time()
        line = std.tqdm.format_meter(self.n, self.total, self.printed - self.start, ncols=None, prefix=self.desc,
                                     ascii=True, unit=self.unit, bar_format=self.bar_format,
                                     postfix=self.postfix, initial=self.initial)
        self.file.write(line.replace("\r", "") + "\n")
        self.file.flush()
