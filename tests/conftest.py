"""Shared fixtures: real MNIST from build/data, an empty run store per test, one Dask cluster per session."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MNISTKIT_DATA", str(ROOT / "build" / "data"))
sys.path.insert(0, str(ROOT))
import mnistkit  # noqa: E402,F401  pins the CPU kernels before a test module loads torch or NumPy


@pytest.fixture
def store_root(tmp_path, monkeypatch):
    """An empty run store, also set as $MNISTKIT_STORE for code and subprocesses that use the default."""
    root = tmp_path / "runs"
    monkeypatch.setenv("MNISTKIT_STORE", str(root))
    return root


@pytest.fixture
def bn_lenet(monkeypatch):
    """A model with batch statistics, registered as "bn_lenet" for the test: one that is never ensembled."""
    import torch

    from mnistkit import models

    class BatchNormLeNet(models.LeNet):
        title, work = "batch-norm LeNet", 1

        def __init__(self):
            super().__init__()
            self.norm = torch.nn.BatchNorm2d(6)

    monkeypatch.setitem(models.MODELS, "bn_lenet", BatchNormLeNet)
    return "bn_lenet"


def files_under(path: Path) -> list:
    return sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).exists() else []


class DaskCluster:
    """A ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1, as a user would start them."""

    def __init__(self, folder: Path):
        self.folder, self.workers = folder, []
        self.dask = str(Path(sys.executable).parent / "dask")
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        scheduler_file = folder / "scheduler.json"
        self.scheduler = self._start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                     "--scheduler-file", str(scheduler_file))
        deadline = time.time() + 60
        while not scheduler_file.exists():
            assert self.scheduler.poll() is None and time.time() < deadline, "dask scheduler did not start"
            time.sleep(0.1)
        self.address = json.loads(scheduler_file.read_text())["address"]

    def _start(self, *args):
        log = open(self.folder / f"{args[0]}-{len(self.workers)}.log", "w")
        return subprocess.Popen([self.dask, *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def start_worker(self) -> subprocess.Popen:
        """One more worker: one thread, no nanny (so that ``kill -9`` on it is a lost worker)."""
        worker = self._start("worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                             "--memory-limit", "0", "--preload", "mnistkit", "--death-timeout", "60",
                             "--local-directory", str(self.folder))
        self.workers.append(worker)
        return worker

    def wait_for_workers(self, n: int, timeout: float = 120) -> None:
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(n, timeout=timeout)

    def close(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory):
    """One scheduler and two workers on 127.0.0.1, shared by every test that needs a cluster."""
    cluster = DaskCluster(tmp_path_factory.mktemp("dask"))
    try:
        cluster.start_worker()
        cluster.start_worker()
        cluster.wait_for_workers(2)
        yield cluster
    finally:
        cluster.close()
