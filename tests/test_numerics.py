"""The CPU kernel pins: set before torch starts, recorded, part of every run's key, one thread per run."""

import json
import os
import subprocess
import sys

import torch

from conftest import ROOT
from mnistkit import numerics, trainer
from mnistkit.bovw import BovwConfig
from mnistkit.config import RunConfig


def _python(code: str, **env) -> dict:
    """Run ``code`` in a fresh interpreter (the repo on its path) and return the JSON it prints."""
    environ = {k: v for k, v in os.environ.items() if k not in numerics.PINS and k != "MNISTKIT_KERNELS"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**environ, **env},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.splitlines()[-1])


REPORT = ("import json, os; from mnistkit import numerics; "
          "print(json.dumps({'env': {k: os.environ.get(k) for k in numerics.PINS}, "
          "'fp': numerics.fingerprint(), 'bovw': numerics.baseline_fingerprint()}))")


def test_importing_mnistkit_pins_every_library_before_it_starts():
    out = _python("import mnistkit; " + REPORT)
    assert out["env"] == numerics.PINS
    assert out["fp"] == {"cpu_capability": "AVX2", "onednn_isa": "AVX2", "mkl_cbwr": "COMPATIBLE", "threads": 1}
    assert out["bovw"] == {"openblas": "Haswell", "avx512": "off"}


def test_a_library_that_started_first_is_recorded_as_native_and_keyed_apart():
    late = _python("import numpy, torch; torch.ones(2) @ torch.ones(2); import mnistkit; " + REPORT)
    assert late["fp"]["mkl_cbwr"] == late["fp"]["onednn_isa"] == "native"
    assert late["bovw"]["openblas"] == "native"
    # The pins given by the environment from the start (as build.sh's kernel does) count as in time.
    early = _python("import numpy, torch; import mnistkit; " + REPORT, **numerics.PINS)
    assert early["fp"]["mkl_cbwr"] == "COMPATIBLE" and early["bovw"]["openblas"] == "Haswell"


def test_native_kernels_are_not_pinned():
    out = _python("import mnistkit; " + REPORT, MNISTKIT_KERNELS="native")
    assert out["env"] == {k: None for k in numerics.PINS}
    assert out["fp"]["mkl_cbwr"] == "native" and out["fp"]["onednn_isa"] == "native"


def test_the_kernels_are_part_of_every_cpu_key(monkeypatch):
    run, baseline = RunConfig(device="cpu"), BovwConfig()
    keys = run.key(), baseline.key()
    monkeypatch.setattr(numerics, "fingerprint", lambda: {"cpu_capability": "AVX512", "onednn_isa": "native",
                                                          "mkl_cbwr": "native", "threads": 1})
    monkeypatch.setattr(numerics, "baseline_fingerprint", lambda: {"openblas": "native", "avx512": "native"})
    assert run.key() != keys[0] and baseline.key() != keys[1]


def test_a_cpu_run_computes_with_one_thread_and_gives_the_callers_count_back(monkeypatch):
    seen = []
    monkeypatch.setattr(trainer, "_fit", lambda *args: seen.append(torch.get_num_threads()) or (None, None))
    before = torch.get_num_threads()
    trainer.fit(RunConfig(device="cpu", epochs=1, subset=100), progress=False)
    assert seen == [numerics.RUN_THREADS] and torch.get_num_threads() == before
