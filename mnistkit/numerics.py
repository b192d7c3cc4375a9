"""Same numbers on every machine: the CPU kernels are pinned before torch starts, and recorded.

A CPU run's numbers depend on which kernels compute them, and PyTorch, MKL, oneDNN, OpenBLAS,
NumPy and OpenCV each choose theirs by the processor they find: AVX2 or AVX-512, Intel or AMD,
and (for a reduction) the number of threads sharing it. Two AVX2 machines, an AMD and an
Intel one, gave LeNet 99.03% and 99.07% from one config before these pins. ``pin()`` runs when
``mnistkit`` is imported and chooses one portable path for every x86-64 CPU with AVX2:

==================== ================ =========================================================
variable             value            what it fixes
==================== ================ =========================================================
ATEN_CPU_CAPABILITY  avx2             PyTorch's own vectorized kernels: no AVX-512 variants
ONEDNN_MAX_CPU_ISA   AVX2             oneDNN's convolutions: its AVX2 kernels
MKL_CBWR             COMPATIBLE       MKL's matrix products: one code path on Intel and AMD (MKL
                                      honours its AVX2 branch on Intel processors only)
OPENBLAS_CORETYPE    Haswell          NumPy's, SciPy's and scikit-learn's BLAS (the baseline)
NPY_DISABLE_CPU_...  X86_V4 AVX512... NumPy's dispatched loops: its AVX2 (X86_V3) ones
OPENCV_CPU_DISABLE   AVX512F,...      OpenCV's own kernels (SIFT's descriptor): its AVX2 ones
OPENCV_IPP           avx2             the Intel IPP kernels OpenCV calls (SIFT's exp): AVX2 ones
==================== ================ =========================================================

and every CPU training run computes with ``RUN_THREADS`` intra-op threads, whatever the machine's
core count or ``jobs``: one thread per run, the report's runs side by side in processes.

The last three only on a CPU with AVX-512, and OPENCV_CPU_DISABLE names each AVX-512 feature this
CPU has, as OpenCV spells them (it warns about a feature it does not know or the CPU lacks). A
library ignores a value it does not know, mostly without a word, so tests/test_numerics.py checks
each one by the library's own report. Off x86-64 nothing is pinned (PyTorch would warn about avx2).

Environment variables are read when each library starts, so the pins hold in a process that
imports ``mnistkit`` before torch, NumPy or OpenCV, and in every process started from it (they
inherit the environment); build.sh and the ``mnistkit`` Jupyter kernel set them from the start.
Where a library had already started unpinned, ``fingerprint()`` says so, and since the fingerprint
is part of every run's key, such runs are stored apart instead of mixed with pinned ones.
``MNISTKIT_KERNELS=native`` turns the pins off (each library's fastest path for this CPU), for
speed comparisons; those runs are keyed apart too.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from functools import lru_cache

RUN_THREADS = 1
PINS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "COMPATIBLE",
    "OPENBLAS_CORETYPE": "Haswell",
}
# The variables that turn NumPy's and OpenCV's AVX-512 code off, set on a CPU with AVX-512 only (``avx512_off``).
AVX512_PINS = ("NPY_DISABLE_CPU_FEATURES", "OPENCV_CPU_DISABLE", "OPENCV_IPP")
# OpenCV's names of the AVX-512 features it detects (``g_hwFeatureNames`` in modules/core/src/system.cpp), each
# with the /proc/cpuinfo flags it stands for. OPENCV_CPU_DISABLE takes a comma-separated list of them (a space
# does not separate), and prints a warning for a name it does not know or a feature the CPU lacks.
_COMMON = frozenset({"avx512f", "avx512cd"})
_SKX = _COMMON | {"avx512bw", "avx512dq", "avx512vl"}
_KNL = _COMMON | {"avx512er", "avx512pf"}
OPENCV_AVX512 = {
    "AVX512F": {"avx512f"}, "AVX512CD": {"avx512cd"}, "AVX512BW": {"avx512bw"}, "AVX512DQ": {"avx512dq"},
    "AVX512VL": {"avx512vl"}, "AVX512ER": {"avx512er"}, "AVX512PF": {"avx512pf"}, "AVX512IFMA": {"avx512ifma"},
    "AVX512VBMI": {"avx512vbmi"}, "AVX512VBMI2": {"avx512_vbmi2"}, "AVX512VNNI": {"avx512_vnni"},
    "AVX512BITALG": {"avx512_bitalg"}, "AVX512VPOPCNTDQ": {"avx512_vpopcntdq"},
    "AVX5124VNNIW": {"avx512_4vnniw"}, "AVX5124FMAPS": {"avx512_4fmaps"},
    "AVX512-COMMON": _COMMON, "AVX512-SKX": _SKX, "AVX512-KNL": _KNL,
    "AVX512-KNM": _KNL | {"avx512_4fmaps", "avx512_4vnniw", "avx512_vpopcntdq"},
    "AVX512-CNL": _SKX | {"avx512ifma", "avx512vbmi"}, "AVX512-CLX": _SKX | {"avx512_vnni"},
    "AVX512-ICL": _SKX | {"avx512ifma", "avx512vbmi", "avx512_vnni", "avx512_vbmi2", "avx512_bitalg",
                          "avx512_vpopcntdq"},
}
# Which library reads which variable (and so must not have started before it was set).
READERS = {"ATEN_CPU_CAPABILITY": "torch", "ONEDNN_MAX_CPU_ISA": "torch", "MKL_CBWR": "torch",
           "OPENBLAS_CORETYPE": "numpy", "NPY_DISABLE_CPU_FEATURES": "numpy", "OPENCV_CPU_DISABLE": "cv2",
           "OPENCV_IPP": "cv2"}
_in_time: dict = {}


def native() -> bool:
    """True when ``MNISTKIT_KERNELS=native`` asks for each library's fastest path instead of the pins."""
    return os.environ.get("MNISTKIT_KERNELS", "pinned") == "native"


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def avx512_off(flags: frozenset) -> dict:
    """The ``AVX512_PINS`` for a CPU with AVX-512 and these flags: NumPy's AVX-512 dispatch targets
    (numpy 2.4's ``__cpu_dispatch__`` beyond X86_V3), the AVX-512 features of ``OPENCV_AVX512`` the CPU
    has, and IPP's AVX2 kernels (one of OpenCV's ``OPENCV_IPP`` values)."""
    return {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
            "OPENCV_CPU_DISABLE": ",".join(name for name, needs in OPENCV_AVX512.items() if needs <= flags),
            "OPENCV_IPP": "avx2"}


def wanted(flags: frozenset | None = None) -> dict:
    """The variables ``pin`` sets on a CPU with these flags (this one's by default): none off x86-64,
    the AVX-512 ones only where the CPU has AVX-512."""
    if native() or platform.machine().lower() not in ("x86_64", "amd64"):
        return {}
    flags = cpu_flags() if flags is None else flags
    return {**PINS, **(avx512_off(flags) if "avx512f" in flags else {})}


def pin() -> None:
    """Set the pinned variables, and note for each whether its library had not started yet."""
    for name, value in wanted().items():
        already = os.environ.get(name) == value
        _in_time[name] = already or READERS[name] not in sys.modules
        os.environ[name] = value


def _pinned(name: str) -> str:
    """The pinned value of ``name`` if it took effect, else 'native'."""
    value = wanted().get(name)
    return value if value is not None and _in_time.get(name, False) else "native"


def fingerprint() -> dict:
    """The kernels and thread count a CPU training run computes with: recorded with every run and
    part of its key. ``cpu_capability`` is ATen's own answer; the others are the pinned values, or
    'native' where the pin is off or came after torch had started."""
    import torch

    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "onednn_isa": _pinned("ONEDNN_MAX_CPU_ISA"),
            "mkl_cbwr": _pinned("MKL_CBWR"), "threads": RUN_THREADS}


def baseline_fingerprint() -> dict:
    """The same for the SIFT-BoVW-SVM baseline: NumPy's BLAS and SIMD loops, and OpenCV's."""
    off = "avx512f" not in cpu_flags() or all(_pinned(name) != "native" for name in AVX512_PINS)
    return {"openblas": _pinned("OPENBLAS_CORETYPE"), "avx512": "off" if off else "native"}


@contextlib.contextmanager
def run_threads(device: str):
    """Compute with ``RUN_THREADS`` intra-op threads on a CPU (the caller's count is restored after)."""
    import torch

    if device != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(RUN_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def kernel_env() -> dict:
    """The pinned variables as set in this process: what a child process or a kernel spec needs."""
    return {name: os.environ[name] for name in wanted() if name in os.environ}
