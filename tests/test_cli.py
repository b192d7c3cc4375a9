"""The command line: the key=value contract, reuse, and clear errors with nothing written."""

import subprocess
import sys

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


def test_a_refusal_exits_2_from_a_real_process_without_a_traceback(tmp_path):
    result = mnistkit("train", "--lr", "-1", store=tmp_path)
    assert result.returncode == 2
    assert "parameter 'lr' = -1.0: must be a number > 0" in result.stderr
    assert "Traceback" not in result.stderr
    assert files_under(tmp_path) == []
