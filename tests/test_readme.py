"""The README's results table is the committed headline table, whose numbers are summary.json's."""

import json
import re
from pathlib import Path

import pandas as pd

from mnistkit.questions.text import markdown, pct, points

ROOT = Path(__file__).resolve().parents[1]


def test_markdown_escapes_pipes_and_keeps_the_columns():
    text = markdown(pd.DataFrame({"a": ["x|y"], "b": [1.5]}))
    assert text.splitlines() == ["| a | b |", "| --- | --- |", "| x\\|y | 1.5 |"]


def test_the_readme_results_table_is_the_committed_headline_table():
    table = (ROOT / "figures" / "headlines.md").read_text().strip()
    assert table in (ROOT / "README.md").read_text(), (
        "README.md's results table is not figures/headlines.md; paste this table there:\n" + table)


def _numbers(value) -> list:
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return [value] if isinstance(value, float) else []


def test_every_number_of_the_headline_table_is_one_of_the_committed_summarys():
    """Both come from one build: each figure in the table's mnistkit column is a number of summary.json
    as the table writes it (an accuracy in percent, a difference or an interval end in points)."""
    written = {f(n) for n in _numbers(json.loads((ROOT / "figures" / "summary.json").read_text()))
               for f in (pct, points)}
    rows = [line.split(" | ") for line in (ROOT / "figures" / "headlines.md").read_text().splitlines()[2:]]
    cells = [row[1] for row in rows]
    found = [number for cell in cells for number in re.findall(r"[+-]?\d+\.\d+%?", cell)]
    assert len(found) >= len(rows)
    assert [n for n in found if n not in written] == []


def test_the_readme_transfer_table_is_the_fashion_builds():
    """Where the Fashion-MNIST build is committed, the README shows its transfer table as it wrote it."""
    written = ROOT / "figures" / "fashion" / "transfer.md"
    assert written.exists(), "figures/fashion/transfer.md is missing: build ./build.sh --profile fashion"
    table = written.read_text().strip()
    assert table in (ROOT / "README.md").read_text(), (
        "README.md's transfer table is not figures/fashion/transfer.md; paste this table there:\n" + table)
