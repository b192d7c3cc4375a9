"""Shared fixtures: real MNIST from build/data, and an empty run store per test."""

import os
import sys
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


def files_under(path: Path) -> list:
    return sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).exists() else []
