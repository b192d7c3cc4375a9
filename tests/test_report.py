"""The report: parameter files validated up front, papermill refusals, and the smoke build end to end."""

import json
import os
import re
import subprocess

import pytest
import yaml

from conftest import ROOT, files_under
from mnistkit import experiments
from mnistkit.__main__ import main

TIMING = re.compile(r"seconds|_ms_|threads|jobs")


def test_the_committed_parameter_files_and_notebook_defaults_are_valid():
    for name in ("full", "smoke"):
        params = experiments.load_params(ROOT / "parameters" / f"{name}.yaml")
        assert params["profile"] == name
    defaults = experiments.load_params()
    assert defaults["profile"] == "interactive"
    full = experiments.plan(experiments.load_params(ROOT / "parameters" / "full.yaml"))
    assert full["q1"][0].epochs == 10 and full["q1"][0].subset is None
    assert len(full["q2"]) >= 11 * 3
    assert {c.model for c in full["q6"]} == {"vit", "lenet"}
    assert all(c.model_kw.get("depth", 2) == 2 for c in full["q6"] if c.model == "vit")


BAD_PARAMS = [
    ({"lerning_rate": 0.1}, "'lerning_rate'"),
    ({"only": "q7"}, "'only'"),
    ({"jobs": 0}, "'jobs'"),
    ({"device": "tpu"}, "'device'"),
    ({"seeds": [0, -1]}, "'seeds'"),
    ({"seeds": []}, "'seeds'"),
    ({"train_subset": 605}, "'train_subset'"),
    ({"progress": "loud"}, "'progress'"),
    ({"q1": {"epochs": 0, "seed": 42}}, "'q1.epochs'"),
    ({"q1": {"epochs": 2, "seed": 42, "lr": 0.1}}, "'q1.lr'"),
    ({"q2": {"epochs": 1, "settings": [{"optimizer": "adagrad"}],
             "factorial": {"epochs": 1, "optimizer": ["adam", "sgd"], "lr": [0.1, 0.01], "batch_size": [8, 16]}}},
     "'q2.settings[0].optimizer'"),
    ({"q2": {"epochs": 1, "settings": [{"lr": -1}],
             "factorial": {"epochs": 1, "optimizer": ["adam", "sgd"], "lr": [0.1, 0.01], "batch_size": [8, 16]}}},
     "'q2.settings[0].lr'"),
    ({"q2": {"epochs": 1, "settings": [{"lr": 0.1}],
             "factorial": {"epochs": 1, "optimizer": ["adam"], "lr": [0.1, 0.01], "batch_size": [8, 16]}}},
     "'q2.factorial.optimizer'"),
    ({"q2": {"epochs": 1, "settings": [{"lr": 0.1}],
             "factorial": {"epochs": 1, "optimizer": ["adam", "sgd"], "lr": [0.1, 0.01], "batch_size": [0, 16]}}},
     "'q2.factorial.batch_size'"),
    ({"q3": {"bovw": {"words": 1}}}, "'q3.bovw.words'"),
    ({"q3": {"bovw": {"wrods": 64}}}, "'q3.bovw.wrods'"),
    ({"q4": {"epochs": -3}}, "'q4.epochs'"),
    ({"q5": {"sizes": [600, 6001], "epochs": 1}}, "'q5.sizes[1]'"),
    ({"q5": {"sizes": [600, 60000], "epochs": 1}}, "'q5.sizes[1]'"),
    ({"q6": {"sizes": [6000], "epochs": 1, "seeds": [0],
             "recipes": {"x": {"optimizer": "adam", "vit": {"depth": 0}}}}}, "'q6.recipes.x"),
    ({"q6": {"sizes": [6000], "epochs": 1, "seeds": [0],
             "recipes": {"x": {"warmup_epochs": 5}}}}, "'q6.recipes.x.warmup_epochs'"),
]


@pytest.mark.parametrize("values, name", BAD_PARAMS, ids=[next(iter(v)) + str(i) for i, (v, _) in enumerate(BAD_PARAMS)])
def test_bad_parameter_file_is_refused_before_any_work(tmp_path, capsys, values, name):
    path = tmp_path / "bad.yaml"
    base = yaml.safe_load((ROOT / "parameters" / "smoke.yaml").read_text())
    path.write_text(yaml.safe_dump({**base, **values}))
    store = tmp_path / "runs"
    assert main(["params", str(path), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert name in err and "parameter" in err
    assert files_under(store) == []


def test_missing_parameter_file_is_refused(capsys, tmp_path):
    assert main(["params", str(tmp_path / "nope.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


PAPERMILL_BAD = [
    ({"lerning_rate": 0.1}, "lerning_rate"),
    ({"only": "q9"}, "'only'"),
    ({"q5": {"sizes": [605], "epochs": 1}}, "'q5.sizes[0]'"),
    ({"jobs": "two"}, "'jobs'"),
]


@pytest.mark.parametrize("values, name", PAPERMILL_BAD, ids=[next(iter(v)) for v, _ in PAPERMILL_BAD])
def test_papermill_run_with_a_bad_parameter_fails_at_the_top_with_nothing_stored(tmp_path, monkeypatch, values, name):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    store = tmp_path / "runs"
    monkeypatch.setenv("MNISTKIT_STORE", str(store))
    params = {**yaml.safe_load((ROOT / "parameters" / "smoke.yaml").read_text()), **values}
    with pytest.raises(PapermillExecutionError) as caught:
        papermill.execute_notebook(str(ROOT / "report.ipynb"), str(tmp_path / "out.ipynb"), parameters=params,
                                   kernel_name="python3", cwd=str(ROOT), progress_bar=False)
    assert caught.value.ename == "ConfigError" and name in caught.value.evalue
    assert files_under(store) == []


def _build_smoke(tmp_path, store):
    env = {**os.environ, "MNISTKIT_STORE": str(store)}
    out, figures = tmp_path / "report", tmp_path / "figures"
    result = subprocess.run(["bash", "build.sh", "--profile", "smoke", "--out", str(out), "--figures", str(figures)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "without encryption" not in result.stderr  # the kernel runs over IPC
    return out, figures, result.stderr


def _numbers(summary: dict) -> dict:
    """The summary without its timings, which differ from run to run."""
    return {k: _numbers(v) if isinstance(v, dict) else v for k, v in summary.items() if not TIMING.search(k)}


def test_smoke_report_builds_with_every_section_and_is_reproducible(tmp_path):
    store = tmp_path / "runs"
    out, figures, log = _build_smoke(tmp_path / "first", store)
    html = (out / "report.html").read_text()
    for heading in ("1. LeNet, logged at every epoch", "2. Hyperparameters", "3. The best CNN against SIFT",
                    "4. Doubling the convolutional layers", "5. Training-set size", "6. A 2-layer Transformer",
                    "Where the models fail", "Summary of headline numbers"):
        assert heading in html, heading
    assert html.count("data:image/png") >= 12
    assert html.count("<table") >= 7
    assert not re.search(r'<script[^>]+src="http', html), "the report must open offline"
    assert "Traceback" not in html
    has_chromium = subprocess.run(["bash", "-c", "source ./build.sh; chromium_bin"], cwd=ROOT,
                                  capture_output=True, text=True).stdout.strip()
    if has_chromium:
        pdf = (out / "report.pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 3
    else:  # the HTML alone, and one line on how to get the PDF
        assert not (out / "report.pdf").exists()
        assert len([line for line in log.splitlines() if line.startswith("[build] no PDF: it needs Chromium")]) == 1
    assert len(list(figures.glob("*.png"))) >= 12

    summary = json.loads((figures / "summary.json").read_text())
    for key in ("profile", "device", "torch", "wall_seconds"):
        assert key in summary
    assert summary["profile"] == "smoke"
    assert 0 < summary["q1"]["test_acc"] <= 1 and 0 < summary["q3"]["bovw_test_acc"] <= 1
    assert set(summary["q5"]["test_acc_mean"]) == {"200", "500", "1000"}

    # The same profile again, in a fresh store: the same numbers, byte for byte.
    _, figures2, _ = _build_smoke(tmp_path / "second", tmp_path / "runs2")
    again = json.loads((figures2 / "summary.json").read_text())
    assert json.dumps(_numbers(again), sort_keys=True) == json.dumps(_numbers(summary), sort_keys=True)
    for folder in store.iterdir():
        if (folder / "history.csv").exists():
            twin = tmp_path / "runs2" / folder.name / "history.csv"
            first = [line.rsplit(",", 1)[0] for line in (folder / "history.csv").read_text().splitlines()]
            second = [line.rsplit(",", 1)[0] for line in twin.read_text().splitlines()]
            assert first == second, folder.name
