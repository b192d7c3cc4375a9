"""The README's results table is the committed summary.json's headline table, through package code."""

import json
from pathlib import Path

from mnistkit import results
from mnistkit.params import Params

ROOT = Path(__file__).resolve().parents[1]


def test_markdown_escapes_pipes_and_keeps_the_columns():
    import pandas as pd

    text = results.markdown(pd.DataFrame({"a": ["x|y"], "b": [1.5]}))
    assert text.splitlines() == ["| a | b |", "| --- | --- |", "| x\\|y | 1.5 |"]


def test_the_readme_results_table_is_the_committed_summary():
    summary = json.loads((ROOT / "figures" / "summary.json").read_text())
    params = Params.from_yaml(ROOT / "parameters" / f"{summary['profile']}.yaml")
    table = results.markdown(results.headlines(summary, params.q1.epochs, len(params.q2.settings)))
    assert table in (ROOT / "README.md").read_text(), (
        "README.md's results table is not figures/summary.json's; paste this table there:\n" + table)
