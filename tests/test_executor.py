"""The Dask executor: a real scheduler and workers, a worker killed mid-run, one writer per entry."""

import io
import os
import signal
import threading
import time

import pytest
import torch

from conftest import ROOT
from mnistkit import executor, progress
from mnistkit import runs as runs_module
from mnistkit import store as store_module
from mnistkit.config import RunConfig
from mnistkit.errors import ConfigError
from mnistkit.questions import plan
from mnistkit.runs import Training
from mnistkit.store import Store
from mnistkit.trainer import METRICS


def _smoke_runs():
    """Real runs of the smoke profile's plan: q4's LeNet seeds, with three epochs (so a run can die
    mid-way). The whole smoke profile on this cluster is test_report's second build."""
    params = plan.load_params(ROOT / "parameters" / "smoke.yaml", overrides={"q4": {"epochs": 3}})
    return [c for c in plan.first_stage(params)["q4"] if c.model == "lenet"]


def _epochs_in_checkpoint(path):
    try:
        return len(torch.load(path, weights_only=False)["history"])
    except Exception:
        return 0


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_nothing_and_the_numbers_equal_a_local_cluster(dask_cluster, tmp_path):
    from distributed import Client

    configs = _smoke_runs()
    remote, local = tmp_path / "remote", tmp_path / "local"
    outcome = {}

    def train():
        try:
            outcome["trained"] = executor.train(remote, configs, cluster=dask_cluster.address, progress=False)
        except BaseException as err:  # reported by the main thread
            outcome["error"] = err

    thread = threading.Thread(target=train)
    thread.start()
    victim, deadline = None, time.time() + 180
    with Client(dask_cluster.address) as client:
        while victim is None and thread.is_alive() and time.time() < deadline:
            for checkpoint in remote.glob("*/checkpoint.pt"):
                if _epochs_in_checkpoint(checkpoint) == 1:  # one of three epochs done
                    task = f"train-{checkpoint.parent.name}"
                    victim = next((w for w, keys in client.processing().items() if task in keys), None)
                    if victim:
                        break
            time.sleep(0.05)
        assert victim is not None, "no run was caught between its epochs"
        pid = client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)
        # Reaped at once, as a shell or a nanny reaps its worker: until then the dead worker is a
        # zombie whose pid still looks alive, and the run's lock file (which names it) stays taken.
        assert next(p for p in dask_cluster.workers if p.pid == pid).wait(timeout=10) == -signal.SIGKILL
        killed_key = checkpoint.parent.name
        thread.join(timeout=300)
    assert not thread.is_alive() and "error" not in outcome, outcome.get("error")
    assert set(outcome["trained"]) == {c.key() for c in configs}
    dask_cluster.start_worker()  # back to two workers for the next test

    resumed = Store(remote).load(Training(next(c for c in configs if c.key() == killed_key)))
    assert resumed is not None and len(resumed.history) == 3
    assert not list(remote.glob("*/checkpoint.pt"))
    executor.train(local, configs, jobs=2, progress=False)
    for config in configs:
        a, b = Store(remote).load(Training(config)).history, Store(local).load(Training(config)).history
        assert a[list(METRICS)].equals(b[list(METRICS)]), config.label()
    dask_cluster.wait_for_workers(2)


@pytest.mark.slow
def test_two_requests_for_one_run_on_two_workers_train_it_once(dask_cluster, tmp_path):
    from distributed import Client

    config = RunConfig(subset=500, epochs=2, device="cpu", seed=7)
    root = str(tmp_path / "runs")
    ident = executor.store_id(tmp_path / "runs")
    with Client(dask_cluster.address) as client:
        workers = sorted(client.scheduler_info()["workers"])[:2]
        futures = [client.submit(executor.train_task, root, ident, config, config.key(), key=f"twice-{i}",
                                 workers=[w], allow_other_workers=False) for i, w in enumerate(workers)]
        results = client.gather(futures)
    assert sorted(r["trained"][0] for r in results) == [False, True]
    assert Store(root).load(Training(config)) is not None


def test_two_threads_on_one_run_write_its_entry_once(store_root, monkeypatch):
    from mnistkit.models import build_model
    from mnistkit.trainer import History

    writes, fits = [], []
    real_write = store_module.write_entry

    def slow_fit(config, **kw):
        fits.append(config.key())
        time.sleep(0.5)
        row = {"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 1.0, "test_acc": 0.5, "seconds": 0.5}
        return build_model("lenet"), History([row])

    monkeypatch.setattr(runs_module, "fit", slow_fit)
    monkeypatch.setattr(store_module, "write_entry", lambda *a: (writes.append(a[0]), real_write(*a)))
    config = RunConfig(subset=500, epochs=1, device="cpu")
    runs = []
    threads = [threading.Thread(target=lambda: runs.append(executor.make(Store(store_root), config, progress=False)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fits) == 1 and len(writes) == 1
    assert sorted(r.reused for r in runs) == [False, True]


def test_cluster_parameter_is_checked_before_any_work(tmp_path):
    for bad in ("localhost:8786", 8786, "tcp://"):
        with pytest.raises(ConfigError, match="'cluster'"):
            plan.load_params(ROOT / "parameters" / "smoke.yaml", overrides={"cluster": bad})
    params = plan.load_params(ROOT / "parameters" / "smoke.yaml", overrides={"cluster": "tcp://127.0.0.1:8786"})
    assert params.cluster == "tcp://127.0.0.1:8786"


def test_worker_refuses_a_store_that_is_not_the_clients(tmp_path):
    executor.store_id(tmp_path / "a")
    executor.store_id(tmp_path / "b")
    with pytest.raises(RuntimeError, match="shared filesystem"):
        executor.check_store(str(tmp_path / "b"), executor.store_id(tmp_path / "a"))


def test_progress_prints_plain_lines_when_not_on_a_terminal(monkeypatch):
    out = io.StringIO()
    monkeypatch.setenv("MNISTKIT_PROGRESS", "notebook")
    monkeypatch.setattr("sys.stderr", out)
    bar = progress.bar(total=4.0, desc="runs", mininterval=0,
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]")
    for step in range(4):
        bar.set_postfix_str(f"{step}/4 runs")
        bar.update(1.0)
    bar.close()
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert len(lines) == 6 and lines[0].startswith("runs:   0%")  # a first line at once, then one per update
    assert lines[-1].startswith("runs: 100%") and "3/4 runs" in lines[-1]
    assert list(progress.bar(range(3), desc="epochs")) == [0, 1, 2]


@pytest.mark.slow
def test_cli_train_on_a_cluster_and_a_bad_address(dask_cluster, tmp_path, capsys):
    from mnistkit.__main__ import main

    args = ["train", "--subset", "100", "--epochs", "1", "--device", "cpu", "--quiet", "--store", str(tmp_path)]
    assert main([*args, "--cluster", "localhost:8786"]) == 2
    assert "'cluster'" in capsys.readouterr().err and not list(tmp_path.iterdir())
    assert main([*args, "--cluster", dask_cluster.address]) == 0
    assert "reused=false" in capsys.readouterr().out
    assert main([*args, "--cluster", dask_cluster.address]) == 0
    assert "reused=true" in capsys.readouterr().out


def test_in_a_notebook_the_text_bar_redraws_one_line_and_clears_it(monkeypatch):
    class KernelStream(io.StringIO):  # what ipykernel puts in sys.stderr: it keeps the terminal's descriptor
        _original_stdstream_copy = 2

    out = KernelStream()
    monkeypatch.setenv("MNISTKIT_PROGRESS", "text")
    monkeypatch.setattr("sys.stderr", out)
    bar = progress.bar(total=3, desc="runs", mininterval=0, leave=True)
    for _ in range(3):
        bar.update(1)
    bar.close()
    text = out.getvalue()
    assert "\r" in text and "\n" not in text.rstrip("\n") and "runs: 100%" in text  # one line, drawn in place
    assert text.endswith("\r")  # cleared when it ends (leave=False): nothing stays above the report
