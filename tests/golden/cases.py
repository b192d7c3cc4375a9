"""The golden cases: short CPU runs covering every model and optimizer path, and a small BoVW run.

``compute(name)`` returns what ``runs.json`` holds for a case: the final metrics of each epoch as
exact floats and the sha256 of the trained weights. ``make.py`` writes them; ``test_golden.py``
recomputes and compares them bit for bit, on any x86-64 CPU with AVX2.
"""

from __future__ import annotations

import re

COMMON = dict(subset=500, subset_seed=0, epochs=2, batch_size=50, seed=0, device="cpu")
RUNS = {
    "lenet_adam": dict(model="lenet", optimizer="adam", lr=1e-3),
    "double_conv_lenet_adam": dict(model="double_conv_lenet", optimizer="adam", lr=1e-3),
    "vit_adam_dropout": dict(model="vit", optimizer="adam", lr=1e-3),
    "lenet_sgd_momentum": dict(model="lenet", optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4),
    "lenet_rmsprop": dict(model="lenet", optimizer="rmsprop", lr=1e-3),
    "vit_adamw_cosine_smoothing_shift": dict(
        model="vit", model_kw={"norm_first": True}, optimizer="adamw", lr=2e-3, weight_decay=0.05,
        schedule="cosine", warmup_epochs=0.5, label_smoothing=0.1, augment="shift"),
}
BOVW = dict(subset=300, upscale=28, step=4, patch=2.0, words=32, kmeans_sample=3_000, levels=2, jobs=1)
# summary keys that differ from run to run, or name the machine (the numbers must not depend on it)
TIMING = re.compile(r"seconds|_ms_|threads|jobs|device_name")


def compute(name: str) -> dict:
    """Train golden case ``name`` (or run the BoVW case for ``"bovw"``) and return its numbers."""
    if name == "bovw":
        from mnistkit.bovw import BovwConfig, _compute

        result = _compute(BovwConfig(**BOVW), progress=False)
        return {"test_acc": result.test_acc, "per_class_acc": result.per_class_acc}
    from mnistkit.config import RunConfig
    from mnistkit.trainer import fit, weights_sha256

    model, history = fit(RunConfig(**COMMON, **RUNS[name]), progress=False)
    epochs = [{k: row[k] for k in ("train_loss", "train_acc", "test_loss", "test_acc")} for row in history.rows]
    return {"epochs": epochs, "weights_sha256": weights_sha256(model)}


def numbers(summary: dict) -> dict:
    """A report's summary.json without its timings, thread and job counts and the machine's name."""
    return {k: numbers(v) if isinstance(v, dict) else v for k, v in summary.items() if not TIMING.search(k)}


# The baseline's accuracies and what is derived from them, compared to within 3 of the 10,000 test images:
# the same code and pins gave the smoke baseline 0.9606 on the AMD EPYC that wrote the first golden and
# 0.9607 on an Intel Xeon and on an AMD Zen 4 (AVX-512): OpenCV's SIFT descriptors of 30 images differ
# (NOTES.md, "The baseline across CPUs"); the search's accuracies (on the validation images) are
# compared the same way, and McNemar's p values, which one discordant image moves, to within 0.1 and
# on the same side of 0.05.
# Every training run's number is compared exactly.
BASELINE = re.compile(r"^q3\.(bovw_test_acc|cnn_minus_bovw|search\.(accuracies|best_accuracy)|mcnemar_p)")
BASELINE_TOLERANCE = 3e-4  # of 10,000 test images; twice that for the search's 5,000 validation images
P_TOLERANCE = 0.1
SIGNIFICANCE = 0.05  # the level the report's McNemar verdicts use


def differences(expected, actual, path: str = "") -> list[str]:
    """Every leaf where ``actual`` differs from ``expected``, as 'path: expected -> actual' lines
    (the baseline's numbers within ``BASELINE_TOLERANCE``)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual), key=str):
            out += differences(expected.get(key, "<missing>"), actual.get(key, "<missing>"), f"{path}.{key}".lstrip("."))
        return out
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [line for i, (e, a) in enumerate(zip(expected, actual)) for line in differences(e, a, f"{path}[{i}]")]
    if BASELINE.match(path) and isinstance(expected, float) and isinstance(actual, float):
        p_value = path.startswith("q3.mcnemar_p")
        tolerance = P_TOLERANCE if p_value else BASELINE_TOLERANCE * (2 if path.startswith("q3.search.") else 1)
        same_verdict = not p_value or (expected < SIGNIFICANCE) == (actual < SIGNIFICANCE)
        return [] if abs(expected - actual) <= tolerance and same_verdict else [f"{path}: {expected!r} -> {actual!r}"]
    return [] if expected == actual else [f"{path}: {expected!r} -> {actual!r}"]
