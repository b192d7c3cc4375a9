"""The cross-machine check: short CPU runs and a small BoVW run give exactly the committed numbers.

``tests/golden/runs.json`` was written by ``tests/golden/make.py`` on another machine; every
x86-64 CPU with AVX2 must reproduce it bit for bit (``mnistkit.numerics`` pins the kernels). A
difference is a bug to fix, not to skip: the failure lists every value that differs.
"""

import json
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "golden"))
import cases  # noqa: E402

GOLDEN = json.loads((ROOT / "tests" / "golden" / "runs.json").read_text())


@pytest.mark.parametrize("name", [*cases.RUNS, "bovw"])
@pytest.mark.slow
def test_golden_run_is_reproduced_bit_for_bit(name):
    from mnistkit import numerics

    assert numerics.fingerprint() == GOLDEN["numerics"], "this process computes with other kernels than the golden runs"
    diff = cases.differences(GOLDEN["runs"][name], cases.compute(name))
    assert not diff, f"{name} differs from tests/golden/runs.json:\n" + "\n".join(diff)


def test_differences_lists_every_changed_value():
    expected = {"a": 1.0, "b": {"c": [0.5, 0.25]}, "d": 2}
    actual = {"a": 1.0, "b": {"c": [0.5, 0.2500001]}, "e": 3}
    assert cases.differences(expected, actual) == [
        "b.c[1]: 0.25 -> 0.2500001", "d: 2 -> '<missing>'", "e: '<missing>' -> 3"]
    baseline = {"q3": {"bovw_test_acc_mean": 0.9606, "cnn_minus_bovw_ci95": [-0.5, 0.2], "cnn_test_acc_mean": 0.99,
                       "search": {"accuracies": [0.95, 0.96]}, "mcnemar_p": [0.5]}}
    near = {"q3": {"bovw_test_acc_mean": 0.9607, "cnn_minus_bovw_ci95": [-0.5001, 0.2001], "cnn_test_acc_mean": 0.99,
                   "search": {"accuracies": [0.9505, 0.96]}, "mcnemar_p": [0.45]}}
    assert cases.differences(baseline, near) == []  # the baseline within 3 test images of 10,000, 3 of 5,000 validation
    far = {"q3": {"bovw_test_acc_mean": 0.9610, "cnn_minus_bovw_ci95": [-0.5, 0.2], "cnn_test_acc_mean": 0.9901,
                  "search": {"accuracies": [0.9508, 0.96]}, "mcnemar_p": [0.3]}}
    assert cases.differences(baseline, far) == [
        "q3.bovw_test_acc_mean: 0.9606 -> 0.961", "q3.cnn_test_acc_mean: 0.99 -> 0.9901", "q3.mcnemar_p[0]: 0.5 -> 0.3",
        "q3.search.accuracies[0]: 0.95 -> 0.9508"]
