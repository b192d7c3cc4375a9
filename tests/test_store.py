"""Run store: reuse without training, keys, damaged entries, resume after SIGKILL, concurrency."""

import os
import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from mnistkit import executor
from mnistkit import runs as runs_module
from mnistkit.runs import Training
from mnistkit.config import RunConfig
from mnistkit.errors import ConfigError
from mnistkit.store import Store
from mnistkit.trainer import METRICS, fit

from conftest import ROOT

TINY = RunConfig(subset=200, epochs=2, batch_size=100, device="cpu")  # 4 steps


def test_finished_run_is_reused_without_training(store_root, monkeypatch):
    first = executor.make(Store(store_root), TINY, progress=False)
    assert not first.reused
    assert sorted(p.name for p in first.folder.iterdir()) == ["config.json", "history.csv", "manifest.json", "model.pt"]

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(runs_module, "fit", no_training)
    second = executor.make(Store(store_root), TINY, progress=False)
    assert second.reused and second.key == first.key
    assert second.history.equals(first.history)
    x = torch.zeros(2, 1, 28, 28)
    assert torch.equal(second.model()(x), first.model()(x))


def test_key_changes_exactly_when_the_numbers_can_change(monkeypatch):
    assert TINY.key() == RunConfig(subset=200, epochs=2, batch_size=100, device="cpu").key()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # 'auto' is then the CPU: the same run
    assert TINY.key() == TINY.replace(device="auto").key()
    for change in [dict(lr=2e-3), dict(seed=1), dict(epochs=3), dict(subset=2000), dict(subset_seed=1),
                   dict(batch_size=32), dict(model="vit"), dict(weight_decay=1e-4), dict(augment="shift")]:
        assert TINY.replace(**change).key() != TINY.key(), change


def test_the_gpu_paths_are_opt_in_and_an_ensemble_member_is_keyed_apart(monkeypatch, bn_lenet):
    """``ensemble`` and ``cuda_graph`` are off by default and left out of the key while off, so no stored key
    changed; on, each gives another key. Ensembles need CUDA and a model without batch statistics."""
    from mnistkit import config as config_module
    from mnistkit import models

    assert not RunConfig().ensemble and not RunConfig().cuda_graph
    with pytest.raises(ConfigError, match="'ensemble' = True: needs a CUDA device"):
        TINY.replace(ensemble=True)
    with pytest.raises(ConfigError, match="'cuda_graph' = 'yes': must be true or false"):
        TINY.replace(cuda_graph="yes")
    monkeypatch.setattr(config_module, "resolve_device", lambda device: "cuda" if device == "cuda" else "cpu")
    single = TINY.replace(device="cuda")
    member, graphed = single.replace(ensemble=True), single.replace(cuda_graph=True)
    assert len({single.key(), member.key(), graphed.key(), member.replace(cuda_graph=True).key()}) == 4

    assert models.ensemblable("lenet") and models.ensemblable("vit") and not models.ensemblable("bn_lenet")
    with pytest.raises(ConfigError, match="'ensemble' = True: bn_lenet keeps batch statistics"):
        single.replace(model="bn_lenet", ensemble=True)

    from types import SimpleNamespace

    from mnistkit.questions import common

    monkeypatch.setattr(common, "resolve_device", config_module.resolve_device)
    asked = SimpleNamespace(device="cuda", ensemble=True, cuda_graph=True)
    assert common._opted_in(asked, {"model": "vit"}) == {"ensemble": True, "cuda_graph": True}
    assert common._opted_in(asked, {"model": "bn_lenet"}) == {"ensemble": False, "cuda_graph": True}  # alone
    assert common._opted_in(asked, {"optimizer": "rmsprop"}) == {"ensemble": True, "cuda_graph": False}  # not fused
    assert common._opted_in(SimpleNamespace(device="cpu", ensemble=True, cuda_graph=True), {}) == {}
    with pytest.raises(ConfigError, match="'cuda_graph' = True: needs a fused optimizer"):
        single.replace(optimizer="rmsprop", cuda_graph=True)
    # the key of a CUDA run made before the opt-in fields existed (commit 7a7a878), pinned: a stored run is found
    assert RunConfig(device="cuda").key() == "8e3301d817ef"
    assert [len(task) for task in executor._tasks([member, member.replace(seed=1), single])] == [2, 1]


@pytest.mark.parametrize("damage", ["truncate history", "edit history", "delete model", "garbage manifest"])
def test_damaged_entry_is_detected_and_recomputed(store_root, damage):
    store = Store(store_root)
    clean = executor.make(store, TINY, progress=False)
    folder = clean.folder
    if damage == "truncate history":
        (folder / "history.csv").write_bytes((folder / "history.csv").read_bytes()[:40])
    elif damage == "edit history":
        (folder / "history.csv").write_text((folder / "history.csv").read_text().replace("0.", "0.9", 1))
    elif damage == "delete model":
        (folder / "model.pt").unlink()
    else:
        (folder / "manifest.json").write_text("{not json")
    with pytest.warns(UserWarning, match="damaged"):
        again = executor.make(store, TINY, progress=False)
    assert not again.reused
    assert again.history[list(METRICS)].equals(clean.history[list(METRICS)])


def test_truncated_checkpoint_is_ignored_and_the_run_starts_over(tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    fit(TINY.replace(epochs=1), checkpoint=checkpoint, progress=False)
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="unreadable checkpoint"):
        _, history = fit(TINY, checkpoint=checkpoint, progress=False)
    assert history.frame()[list(METRICS)].equals(fit(TINY, progress=False)[1].frame()[list(METRICS)])


def _train_cmd(store, *extra):
    return [sys.executable, "-m", "mnistkit", "train", "--subset", "1000", "--epochs", "4", "--device", "cpu",
            "--quiet", "--store", str(store), *extra]


def _history_len(checkpoint):
    try:
        return len(torch.load(checkpoint, weights_only=False)["history"])
    except Exception:
        return 0


@pytest.mark.slow
def test_run_killed_after_second_epoch_resumes_equal_to_a_clean_run(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    config = RunConfig(subset=1000, epochs=4, device="cpu")
    checkpoint = killed / config.key() / "checkpoint.pt"
    proc = subprocess.Popen(_train_cmd(killed), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while _history_len(checkpoint) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _history_len(checkpoint)
    assert 2 <= done < 4
    assert not (killed / config.key() / "manifest.json").exists()

    out = subprocess.run(_train_cmd(killed), cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "reused=false" in out
    subprocess.run(_train_cmd(clean), cwd=ROOT, capture_output=True, check=True)
    resumed = Store(killed).load(Training(config)).history
    fresh = Store(clean).load(Training(config)).history
    assert resumed[list(METRICS)].equals(fresh[list(METRICS)])
    assert not (killed / config.key() / "checkpoint.pt").exists()


@pytest.mark.slow
def test_two_processes_on_one_run_leave_one_valid_entry(tmp_path):
    cmd = _train_cmd(tmp_path, "--epochs", "2")
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate()[0].strip().splitlines()[-1] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted("reused=true" in line for line in outputs) == [False, True]
    folders = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(folders) == 1
    run = Store(tmp_path).load(Training(RunConfig(subset=1000, epochs=2, device="cpu")))
    assert run is not None and len(run.history) == 2
    assert json.loads((folders[0] / "config.json").read_text())["key"] == folders[0].name


class Counting:
    """A tiny store entry: its computation writes one file and counts its calls."""

    calls = 0

    def __init__(self, value: int):
        self.value = value

    def folder_name(self) -> str:
        return f"counting-{self.value}"

    def compute(self, folder, progress):
        Counting.calls += 1
        (folder / "scratch.tmp").write_text("left behind")  # what a computation leaves is cleared
        return {"value.json": json.dumps(self.value).encode()}

    def read(self, folder, files):
        return _Value(json.loads(files["value.json"]), reused=True)


class _Value:
    def __init__(self, value, reused):
        self.value, self.reused = value, reused


def test_any_entry_goes_through_the_one_sequence_lock_load_compute_write(tmp_path):
    store = Store(tmp_path)
    Counting.calls = 0
    first = executor.make(store, Counting(7))
    assert (first.value, first.reused, Counting.calls) == (7, False, 1)
    assert sorted(p.name for p in (tmp_path / "counting-7").iterdir()) == ["manifest.json", "value.json"]
    again = executor.make(store, Counting(7))
    assert (again.value, again.reused, Counting.calls) == (7, True, 1)
    (tmp_path / "counting-7" / "value.json").write_text("8")
    with pytest.warns(UserWarning, match="damaged"):
        assert store.load(Counting(7)) is None
    assert executor.make(store, Counting(7)).value == 7 and Counting.calls == 2


@pytest.mark.slow
def test_run_all_shares_training_among_processes_then_runs_self_parallel_entries_alone(tmp_path):
    Counting.calls = 0
    specs = [Counting(1), TINY.replace(epochs=1, seed=1), TINY.replace(epochs=1, seed=2)]
    results = executor.run_all(Store(tmp_path), specs, jobs=2, progress=False)
    assert results[0].value == 1 and Counting.calls == 1
    assert [r.config.seed for r in results[1:]] == [1, 2] and not any(r.reused for r in results[1:])
    assert all((tmp_path / s.key() / "manifest.json").exists() for s in specs[1:])


def test_written_files_follow_the_umask_like_any_other(tmp_path):
    from mnistkit.files import atomic_write_text

    from mnistkit import files

    atomic_write_text(tmp_path / "summary.json", "{}")
    (tmp_path / "plain.png").write_bytes(b"x")  # as any other file of this process is made
    assert (tmp_path / "summary.json").stat().st_mode & 0o777 == (tmp_path / "plain.png").stat().st_mode & 0o777
    assert (tmp_path / "summary.json").stat().st_mode & 0o777 == 0o666 & ~files.UMASK


def test_tidy_removes_a_dead_owners_lock_and_empty_folders_and_keeps_the_rest(tmp_path):
    import subprocess
    import sys

    from filelock import SoftFileLock

    from mnistkit.store import Store

    store = Store(tmp_path)
    (tmp_path / "aaaa").mkdir()  # an entry that never wrote a file
    (tmp_path / "bbbb").mkdir()
    (tmp_path / "bbbb" / "checkpoint.pt").write_bytes(b"x")  # an interrupted run's checkpoint: kept to resume
    dead = subprocess.run([sys.executable, "-c", "import os, sys; from filelock import SoftFileLock; "
                           f"held = SoftFileLock({str(tmp_path / 'cccc.lock')!r}); held.acquire(); os._exit(0)"],
                          check=True)
    assert dead.returncode == 0 and (tmp_path / "cccc.lock").exists()  # left by a process that died holding it
    (tmp_path / "dddd").mkdir()
    live = SoftFileLock(str(tmp_path / "dddd.lock"))
    with live:  # an entry being made now: its lock and folder stay
        gone = store.tidy()
    assert sorted(gone) == ["aaaa", "cccc.lock"]
    assert (tmp_path / "bbbb" / "checkpoint.pt").exists() and (tmp_path / "dddd").exists()
