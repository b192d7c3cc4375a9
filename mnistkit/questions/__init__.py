"""The report's six questions, one module each: its plan entries (the runs it needs), its reader
(a result built from the run store, never training) and its result object (numbers, statistics,
verdicts and the report's text for it, unit-tested on made-up inputs).

``plan`` orders every question's entries into stages and trains what the store lacks; ``common``
holds the pieces the questions share (building configs, reading runs, frames), ``text`` the
formatting of numbers in sentences; ``failures`` and ``headlines`` are the report's closing parts.
"""
