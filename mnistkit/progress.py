"""Progress bars that go where the user looks: the notebook, the terminal, or nowhere.

``$MNISTKIT_PROGRESS`` chooses: ``notebook`` (default: tqdm.auto, widgets in Jupyter),
``terminal`` (the terminal that started the process, so that a report run by papermill shows its
progress there and not in the report), or ``none``. Worker processes inherit it.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache

from tqdm import auto, std

MODES = ("notebook", "terminal", "none")


def set_mode(mode: str) -> None:
    os.environ["MNISTKIT_PROGRESS"] = mode


@lru_cache(maxsize=1)
def _terminal():
    """The process's original stderr. Inside a Jupyter kernel fd 2 is captured into the notebook;
    ipykernel keeps a copy of the original descriptor, which still reaches the terminal."""
    fd = getattr(sys.stderr, "_original_stdstream_copy", None)
    return sys.__stderr__ if fd is None else open(os.dup(fd), "w", buffering=1)


def bar(*args, disable: bool = False, **kw):
    mode = os.environ.get("MNISTKIT_PROGRESS", "notebook")
    if mode == "terminal":
        return std.tqdm(*args, file=_terminal(), disable=disable, **kw)
    return auto.tqdm(*args, disable=disable or mode == "none", **kw)
