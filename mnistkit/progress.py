"""Progress bars that go where the user looks: the notebook, the terminal, or nowhere.

``$MNISTKIT_PROGRESS`` chooses: ``notebook`` (default: tqdm.auto, widgets in Jupyter),
``terminal`` (the process's real stderr, so a report run by papermill shows its progress in the
terminal and not in the report), or ``none``. Worker processes inherit it.
"""

from __future__ import annotations

import os
import sys

from tqdm import auto, std

MODES = ("notebook", "terminal", "none")


def set_mode(mode: str) -> None:
    os.environ["MNISTKIT_PROGRESS"] = mode


def bar(*args, disable: bool = False, **kw):
    mode = os.environ.get("MNISTKIT_PROGRESS", "notebook")
    if mode == "terminal":
        return std.tqdm(*args, file=sys.__stderr__, disable=disable, **kw)
    return auto.tqdm(*args, disable=disable or mode == "none", **kw)
