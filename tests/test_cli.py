"""The command line: the key=value contract, reuse, and clear errors with nothing written."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import ROOT, files_under
from mnistkit.__main__ import main


def mnistkit(*args, store=None):
    cmd = [sys.executable, "-m", "mnistkit", *args]
    if store is not None:
        cmd += ["--store", str(store)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def pairs(stdout: str) -> dict:
    return dict(item.split("=", 1) for item in stdout.strip().splitlines()[-1].split())


@pytest.mark.slow
def test_train_prints_key_values_then_reuses(tmp_path):
    args = ["train", "--subset", "2000", "--epochs", "1", "--device", "cpu", "--quiet"]
    first = mnistkit(*args, store=tmp_path)
    assert first.returncode == 0, first.stderr
    kv = pairs(first.stdout)
    assert kv["reused"] == "false" and len(kv["run"]) == 12
    assert 0.5 < float(kv["test_acc"]) <= 1 and float(kv["seconds"]) > 0
    second = mnistkit(*args, store=tmp_path)
    again = pairs(second.stdout)
    assert again["reused"] == "true" and again["run"] == kv["run"] and again["test_acc"] == kv["test_acc"]


BAD = [
    (["train", "--model", "resnet"], "--model"),
    (["train", "--optimizer", "adagrad"], "--optimizer"),
    (["train", "--lr", "0"], "'lr'"),
    (["train", "--lr", "-0.1"], "'lr'"),
    (["train", "--lr", "nan"], "'lr'"),
    (["train", "--batch-size", "0"], "'batch_size'"),
    (["train", "--epochs", "0"], "'epochs'"),
    (["train", "--subset", "605"], "'subset'"),
    (["train", "--subset", "60000", "--subset", "54220"], "'subset'"),
    (["train", "--seed", "-1"], "'seed'"),
    (["train", "--momentum", "0.9"], "'momentum'"),
    (["train", "--weight-decay", "-1"], "'weight_decay'"),
    (["train", "--label-smoothing", "1.5"], "'label_smoothing'"),
    (["train", "--schedule", "step"], "--schedule"),
    (["train", "--augment", "flip"], "--augment"),
    (["train", "--device", "tpu"], "'device'"),
    (["train", "--model-kw", "dim=64"], "'model_kw.dim'"),
    (["train", "--model", "vit", "--model-kw", "patch_size=5"], "'model_kw.patch_size'"),
    (["train", "--warmup-epochs", "20", "--epochs", "5"], "'warmup_epochs'"),
    (["train", "--batch-size", "x"], "--batch-size"),
]
if not torch.cuda.is_available():
    BAD.append((["train", "--device", "cuda"], "CUDA is not available"))


@pytest.mark.parametrize("args, names", BAD, ids=[" ".join(a[1:]) for a, _ in BAD])
def test_bad_input_is_refused_with_its_name_and_nothing_written(tmp_path, capsys, args, names):
    try:
        code = main([*args, "--store", str(tmp_path)])
    except SystemExit as exit:  # argparse's own refusals
        code = exit.code
    assert code == 2
    assert names in capsys.readouterr().err
    assert files_under(tmp_path) == []


@pytest.mark.slow
def test_a_refusal_exits_2_from_a_real_process_without_a_traceback(tmp_path):
    result = mnistkit("train", "--lr", "-1", store=tmp_path)
    assert result.returncode == 2
    assert "parameter 'lr' = -1.0: must be a number > 0" in result.stderr
    assert "Traceback" not in result.stderr
    assert files_under(tmp_path) == []


# ---------------------------------------------------------------- one-line refusals, nothing written


def refuse(capsys, args) -> str:
    """Run the command in-process; it must exit 2 with one line on stderr. Returns that line."""
    try:
        code = main(args)
    except SystemExit as exit:  # argparse's own refusals
        code = exit.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("not a folder\n")
    return path


@pytest.mark.parametrize("args, words", [
    (["--epochs", "100000000000"], ["'epochs'", "<= 1000"]),
    (["--epochs", "1001"], ["'epochs'", "<= 1000"]),
    (["--batch-size", "60001"], ["'batch_size'", "<= 60000"]),
    (["--seed", str(2**32)], ["'seed'", "<= 4294967295"]),
    (["--subset-seed", str(2**32)], ["'subset_seed'", "<= 4294967295"]),
    (["--model-kw", "dim=[1,"], ["'--model-kw'", "not valid YAML"]),
    (["--device", "mps"] if not torch.backends.mps.is_available() else ["--device", "npu"], ["'device'"]),
    (["--tracker", "mlflow"], ["--tracker", "invalid choice"]),
])
def test_train_refuses_out_of_range_values_before_making_the_store(tmp_path, capsys, args, words):
    store = tmp_path / "runs"
    err = refuse(capsys, ["train", *args, "--store", str(store)])
    for word in words:
        assert word in err, err
    assert not store.exists()


@pytest.mark.parametrize("tracker", ["wandb", "tensorboard"])
def test_a_tracker_whose_package_is_missing_is_refused_before_any_work(tmp_path, capsys, monkeypatch, tracker):
    from mnistkit import data, tracking

    monkeypatch.setattr(tracking, "installed", lambda package: False)
    monkeypatch.setattr(data, "load", lambda *a, **k: pytest.fail("data loaded before the tracker was checked"))
    store = tmp_path / "runs"
    err = refuse(capsys, ["train", "--epochs", "1", "--tracker", tracker, "--store", str(store)])
    assert f"'tracker' = '{tracker}'" in err and f"pip install 'mnistkit[{tracker}]'" in err
    assert not store.exists()


def test_unwritable_store_paths_are_refused_with_their_name(tmp_path, capsys, monkeypatch, a_file):
    for bad in (a_file, a_file / "runs"):
        err = refuse(capsys, ["train", "--epochs", "1", "--store", str(bad)])
        assert "'--store'" in err and "must be a folder this user can create and write" in err
    assert a_file.read_text() == "not a folder\n"
    monkeypatch.setenv("MNISTKIT_STORE", str(a_file / "runs"))
    assert "'MNISTKIT_STORE'" in refuse(capsys, ["train", "--epochs", "1"])
    assert "'--store'" in refuse(capsys, ["bovw", "--subset", "100", "--store", str(a_file)])
    assert "'--out'" in refuse(capsys, ["bench", "--epochs", "1", "--out", str(a_file / "bench.json")])


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="/proc is Linux's")
def test_a_store_under_proc_is_refused(capsys):
    err = refuse(capsys, ["train", "--epochs", "1", "--store", "/proc/nope"])
    assert "parameter '--store' = '/proc/nope': must be a folder this user can create and write" in err


@pytest.mark.parametrize("content, words", [
    (b"q1: [unclosed\n", ["not valid YAML", "line 2"]),
    (b"", ["is empty"]),
    (b"# only a comment\n", ["is empty"]),
    (bytes(range(256)), ["is not a text file"]),
    (b"- profile\n- smoke\n", ["must hold a mapping", "not a list"]),
    (b"just words\n", ["must hold a mapping", "not a str"]),
    (b"tracker: mlflow\n", ["'tracker' = 'mlflow'"]),
    (b"q1: {epochs: 100000000000}\n", ["'q1.epochs'", "<= 1000"]),
])
def test_bad_parameter_files_are_refused_on_one_line(tmp_path, capsys, content, words):
    path = tmp_path / "params.yaml"
    path.write_bytes(content)
    err = refuse(capsys, ["params", str(path)])
    for word in words:
        assert word in err, err


def test_a_folder_or_a_bad_set_is_refused(tmp_path, capsys):
    assert "is a folder" in refuse(capsys, ["params", str(tmp_path)])
    good = str(ROOT / "parameters" / "smoke.yaml")
    assert "'--set' = 'jobs'" in refuse(capsys, ["params", good, "--set", "jobs"])
    assert "'tracker' = 'mlflow'" in refuse(capsys, ["params", good, "--set", "tracker=mlflow"])


@pytest.mark.slow
def test_a_broken_yaml_file_exits_2_from_a_real_process_with_one_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("q1: [unclosed\n")
    result = mnistkit("params", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: parameter 'parameter file' = '{path}': is not valid YAML: "
        "expected ',' or ']', but got '<stream end>' at line 2, column 1"]


@pytest.mark.slow
def test_no_lock_file_is_left_beside_a_store_entry(tmp_path):
    result = mnistkit("train", "--subset", "100", "--epochs", "1", "--device", "cpu", "--quiet", store=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == [pairs(result.stdout)["run"]]


@pytest.mark.slow
def test_train_from_another_folder_says_where_its_store_is(tmp_path, monkeypatch):
    monkeypatch.delenv("MNISTKIT_STORE", raising=False)
    store = tmp_path / "runs"
    env = {**os.environ, "MNISTKIT_STORE": str(store), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "mnistkit", "train", "--subset", "100", "--epochs", "1", "--device", "cpu"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(cmd, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"store: {store} ($MNISTKIT_STORE); data: " in result.stderr
    assert (store / pairs(result.stdout)["run"] / "manifest.json").exists()
    assert files_under(elsewhere) == []
