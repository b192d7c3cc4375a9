"""The report's questions, one module each, found here: every module of this package that declares
``QUESTION`` (a ``common.Question``) is one. A question's module holds its parameter section, its plan
entries (the runs it needs), its reader (a result built from the run store, never training) and its
result object (numbers, statistics and verdicts, unit-tested on made-up inputs); its text lies in
``templates/``.

``registry`` gives the questions in order and ``parameters`` the report's ``Params`` class built from
their sections, so the plan, the report, the summary, the headlines and the answers all iterate over
one list. ``plan`` orders every question's entries into stages and trains what the store lacks;
``common`` holds the pieces the questions share, ``text`` the formatting of numbers in sentences;
``failures`` and ``headlines`` are the report's closing parts.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from ..params import schema


@lru_cache(maxsize=1)
def registry() -> dict:
    """Every question (``common.Question``), by name, in the order of their numbers."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        question = getattr(importlib.import_module(f"{__name__}.{info.name}"), "QUESTION", None)
        if question is not None:
            found.append(question)
    return {q.name: q for q in sorted(found, key=lambda q: q.number)}


@lru_cache(maxsize=1)
def parameters() -> type:
    """The report's ``Params`` class: the report-wide parameters, then each question's section."""
    return schema({name: q.section for name, q in registry().items()})
