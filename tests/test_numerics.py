"""The CPU kernel pins: set before torch starts, recorded, part of every run's key, one thread per run."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

from conftest import ROOT
from mnistkit import numerics, trainer
from mnistkit.bovw import BovwConfig
from mnistkit.config import RunConfig


def _run(code: str, env: dict, *options: str) -> tuple:
    """Run ``code`` in a fresh interpreter (the repo on its path, no pins but ``env``'s): its stdout, stderr."""
    environ = {k: v for k, v in os.environ.items() if k not in numerics.READERS and k != "MNISTKIT_KERNELS"}
    result = subprocess.run([sys.executable, *options, "-c", code], cwd=ROOT, env={**environ, **env},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr


def _python(code: str, **env) -> dict:
    """Run ``code`` in a fresh interpreter and return the JSON it prints."""
    return json.loads(_run(code, env)[0].splitlines()[-1])


REPORT = ("import json, os; from mnistkit import numerics; "
          "print(json.dumps({'env': {k: os.environ.get(k) for k in numerics.READERS}, "
          "'fp': numerics.fingerprint(), 'bovw': numerics.baseline_fingerprint()}))")
# /proc/cpuinfo's AVX-512 flags of a Skylake-X and of an AMD EPYC (Zen 4), with their AVX2 ones.
SKYLAKE_X = frozenset("avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl".split())
ZEN4 = SKYLAKE_X | {"avx512ifma", "avx512vbmi", "avx512_vbmi2", "avx512_vnni", "avx512_bitalg", "avx512_vpopcntdq",
                    "avx512_bf16"}
# The pins on an AVX-512 CPU: this one's where it has AVX-512 (or a Zen 4's), by the library that reads them.
AVX512_FLAGS = numerics.cpu_flags() if "avx512f" in numerics.cpu_flags() else ZEN4
AVX512_HOST = AVX512_FLAGS == numerics.cpu_flags()


def _pins(library: str) -> dict:
    return {k: v for k, v in numerics.wanted(AVX512_FLAGS).items() if numerics.READERS[k] == library}


@pytest.mark.slow
def test_importing_mnistkit_pins_every_library_before_it_starts():
    out = _python("import mnistkit; " + REPORT)
    assert out["env"] == {k: numerics.wanted().get(k) for k in numerics.READERS}
    assert {k: out["env"][k] for k in numerics.PINS} == numerics.PINS
    assert out["fp"] == {"cpu_capability": "AVX2", "onednn_isa": "AVX2", "mkl_cbwr": "COMPATIBLE", "threads": 1}
    assert out["bovw"] == {"openblas": "Haswell", "avx512": "off"}


@pytest.mark.slow
def test_a_library_that_started_first_is_recorded_as_native_and_keyed_apart():
    late = _python("import numpy, torch; torch.ones(2) @ torch.ones(2); import mnistkit; " + REPORT)
    assert late["fp"]["mkl_cbwr"] == late["fp"]["onednn_isa"] == "native"
    assert late["bovw"]["openblas"] == "native"
    # The pins given by the environment from the start (as build.sh's kernel does) count as in time.
    early = _python("import numpy, torch; import mnistkit; " + REPORT, **numerics.PINS)
    assert early["fp"]["mkl_cbwr"] == "COMPATIBLE" and early["bovw"]["openblas"] == "Haswell"


@pytest.mark.slow
def test_native_kernels_are_not_pinned():
    out = _python("import mnistkit; " + REPORT, MNISTKIT_KERNELS="native")
    assert out["env"] == {k: None for k in numerics.READERS}
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


def test_the_avx512_pins_follow_the_cpu_flags(monkeypatch):
    assert numerics.wanted(frozenset({"avx", "avx2", "fma"})) == numerics.PINS  # no AVX-512: the four pins only
    # OpenCV warns about an AVX-512 feature the CPU lacks, so each CPU gets the names of those it has
    assert numerics.wanted(SKYLAKE_X)["OPENCV_CPU_DISABLE"] == \
        "AVX512F,AVX512CD,AVX512BW,AVX512DQ,AVX512VL,AVX512-COMMON,AVX512-SKX"
    assert numerics.wanted(ZEN4)["OPENCV_CPU_DISABLE"] == (
        "AVX512F,AVX512CD,AVX512BW,AVX512DQ,AVX512VL,AVX512IFMA,AVX512VBMI,AVX512VBMI2,AVX512VNNI,AVX512BITALG,"
        "AVX512VPOPCNTDQ,AVX512-COMMON,AVX512-SKX,AVX512-CNL,AVX512-CLX,AVX512-ICL")
    assert {k: v for k, v in numerics.wanted(ZEN4).items() if k != "OPENCV_CPU_DISABLE"} == \
        {**numerics.PINS, "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR", "OPENCV_IPP": "avx2"}
    # pin() on such a CPU, in a process where NumPy and OpenCV had started: their AVX-512 code counts as on ...
    monkeypatch.setattr(numerics, "cpu_flags", lambda: ZEN4)
    monkeypatch.setattr(numerics, "_in_time", {})
    monkeypatch.setitem(sys.modules, "cv2", sys.modules.get("cv2", types.ModuleType("cv2")))
    for name in numerics.READERS:
        monkeypatch.delenv(name, raising=False)
    numerics.pin()
    assert {k: os.environ[k] for k in numerics.AVX512_PINS} == numerics.avx512_off(ZEN4)
    assert numerics.baseline_fingerprint() == {"openblas": "native", "avx512": "native"}
    # ... unless the environment had the pins from the start (as in a process started from this one).
    numerics.pin()
    assert numerics.baseline_fingerprint() == {"openblas": "Haswell", "avx512": "off"}


def test_nothing_is_pinned_off_x86_64(monkeypatch):
    # PyTorch for aarch64 knows no avx2 and would warn "ignoring invalid value for ATEN_CPU_CAPABILITY".
    monkeypatch.setattr(numerics.platform, "machine", lambda: "aarch64")
    assert numerics.wanted(ZEN4) == {}


OPENCV_REPORT = ("import json, cv2; names = {i: cv2.getHardwareFeatureName(i) for i in range(512)}; "
                 "print(json.dumps({'on': {n: cv2.checkHardwareSupport(i) for i, n in names.items() if n}, "
                 "'ipp': cv2.ipp.getIppVersion()}))")


def _opencv(**env) -> tuple:
    out, err = _run(OPENCV_REPORT, env)
    return json.loads(out), err


@pytest.mark.slow
def test_opencv_turns_off_each_avx512_feature_and_its_ipp_kernels_and_prints_nothing():
    report, err = _opencv(**_pins("cv2"))
    assert set(numerics.OPENCV_AVX512) <= set(report["on"])  # every name in the table is one OpenCV knows
    assert not any(on for name, on in report["on"].items() if "512" in name)
    assert "AVX-512" not in report["ipp"] and "(k0)" not in report["ipp"]
    if AVX512_HOST:
        assert err == ""
    else:  # names of features this CPU lacks (pin() names none of them here): known, so no other warning
        assert all("unavailable CPU feature" in line for line in err.splitlines())


@pytest.mark.slow
def test_the_checks_tell_a_name_a_library_does_not_know():
    _, err = _opencv(OPENCV_CPU_DISABLE="AVX512_SKX")  # the value before: OpenCV spells it AVX512-SKX
    assert "OPENCV: Trying to disable unknown CPU feature: 'AVX512_SKX'" in err
    report, err = _opencv(OPENCV_CPU_DISABLE="AVX2,FMA3")  # features this CPU has: turned off, without a word
    assert err == "" and report["on"]["AVX2"] is False and report["on"]["FMA3"] is False
    _, err = _run("import numpy", {"NPY_DISABLE_CPU_FEATURES": "AVX512F"}, "-W", "always::ImportWarning")
    assert "ImportWarning" in err and "You cannot disable CPU features (AVX512F)" in err


NUMPY_REPORT = ("import json, numpy, scipy.linalg, threadpoolctl; from numpy._core import _multiarray_umath as m; "
                "print(json.dumps({'on': m.__cpu_features__, 'dispatch': m.__cpu_dispatch__, "
                "'current': sorted({t['current'] for f in m.__cpu_targets_info__.values() for t in f.values()}), "
                "'openblas': [i['architecture'] for i in threadpoolctl.threadpool_info() "
                "if i['internal_api'] == 'openblas']}))")


@pytest.mark.slow
def test_numpy_and_openblas_take_their_avx2_paths_and_print_nothing():
    pins = _pins("numpy")
    out, err = _run(NUMPY_REPORT, pins, "-W", "always::ImportWarning")  # NumPy's warning about a name
    report = json.loads(out)
    assert err == ""
    off = pins["NPY_DISABLE_CPU_FEATURES"].split()
    assert set(off) == set(report["dispatch"]) - {"X86_V3"}  # each AVX-512 target NumPy dispatches to
    assert not any(report["on"].get(name) for name in off)
    assert not any(target.startswith(("X86_V4", "AVX512")) for target in report["current"])
    assert report["openblas"] and set(report["openblas"]) == {"Haswell"}  # NumPy's and SciPy's (silent if unknown)


TORCH_REPORT = ("import json, torch; torch.set_num_threads(1); "
                "torch.nn.functional.conv2d(torch.ones(8, 1, 28, 28), torch.ones(6, 1, 5, 5)); "
                "torch.ones(64, 64) @ torch.ones(64, 64); print(json.dumps(torch.backends.cpu.get_cpu_capability()))")


@pytest.mark.slow
def test_torch_onednn_and_mkl_take_their_pinned_paths_and_print_nothing():
    out, err = _run(TORCH_REPORT, {**numerics.PINS, "ONEDNN_VERBOSE": "1", "MKL_VERBOSE": "1"}, "-W", "always")
    *verbose, capability = out.splitlines()
    assert err == "" and json.loads(capability) == "AVX2"
    assert all(line.startswith(("onednn_verbose,", "MKL_VERBOSE ")) for line in verbose)
    # oneDNN and MKL ignore a value they do not know without a word: their verbose lines say what they run
    assert any(line.endswith(",cpu,isa:Intel AVX2") for line in verbose)
    gemms = [line for line in verbose if "GEMM(" in line]
    assert gemms and all("CNR:COMPATIBLE" in line for line in gemms)


def test_rmsprop_takes_a_correctly_rounded_square_root():
    # torch.sqrt on a CPU tensor is MKL VML's vsSqrt, and under MKL_CBWR=COMPATIBLE that is the kernel
    # mkl_vml_kernel_sSqrt_EXHAynn: RSQRTPS, one Newton step and a correction. RSQRTPS's bits differ between
    # Intel and AMD, so now and then a root gets another last bit (lenet_rmsprop's golden weights on a Sapphire
    # Rapids, made on an AMD EPYC). The update must take a correctly rounded root instead (NumPy's, SQRTPS).
    g = torch.Generator().manual_seed(0)
    for momentum in (0.0, 0.9):
        param = torch.nn.Parameter(torch.randn(4096, generator=g))
        grad = torch.randn(4096, generator=g) * 10.0 ** torch.randint(-6, 1, (4096,), generator=g)
        lr, alpha, eps = 1e-3, 0.99, 1e-8  # RMSprop's defaults for alpha and eps
        expected, square_avg, buf = param.detach().clone(), torch.zeros(4096), torch.zeros(4096)
        optimizer = trainer.make_optimizer(RunConfig(optimizer="rmsprop", lr=lr, momentum=momentum), [param], "cpu")
        for _ in range(3):
            param.grad = grad.clone()
            optimizer.step()
            square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
            avg = torch.from_numpy(np.sqrt(square_avg.numpy())).add_(eps)
            if momentum:
                expected.add_(buf.mul_(momentum).addcdiv_(grad, avg), alpha=-lr)
            else:
                expected.addcdiv_(grad, avg, value=-lr)
        assert torch.equal(param.detach(), expected), f"momentum={momentum}"
