"""The run store: one folder per ``RunConfig`` key; finished runs are reused, never retrained.

A folder counts as finished only once ``manifest.json`` is in it: written last and atomically, it
holds the sha256 of every other file. A folder without one, or whose files do not match it, is
never served: it is resumed from its checkpoint or recomputed, with a one-line warning. A file
lock per key lets two processes ask for the same run at once: the second waits, then reuses.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from filelock import FileLock

from .config import RunConfig, resolve_device
from .files import atomic_write_bytes, atomic_write_text
from .models import build_model, count_parameters
from .trainer import fit

MANIFEST = "manifest.json"



def write_entry(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into ``folder``, then the manifest of their sha256, last: the entry is finished."""
    for name, payload in files.items():
        atomic_write_bytes(folder / name, payload)
    digests = {name: hashlib.sha256(payload).hexdigest() for name, payload in files.items()}
    atomic_write_text(folder / MANIFEST, json.dumps({"sha256": digests}, indent=2, sort_keys=True))


def read_entry(folder: Path) -> dict[str, bytes] | None:
    """The files of a finished entry, verified against its manifest; None if there is none.

    A damaged entry (a file missing, truncated or edited) is warned about and deleted, so that
    the caller recomputes it: it is never served.
    """
    manifest = folder / MANIFEST
    if not manifest.exists():
        return None
    try:
        digests = json.loads(manifest.read_text())["sha256"]
        files = {name: (folder / name).read_bytes() for name in digests}
        bad = [name for name, blob in files.items() if hashlib.sha256(blob).hexdigest() != digests[name]]
        if bad:
            raise ValueError(f"{', '.join(bad)} changed since it was written")
    except Exception as err:
        warnings.warn(f"store entry {folder} is damaged ({err}); recomputing it", stacklevel=2)
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return files


def default_root() -> Path:
    """``$MNISTKIT_STORE`` or ``build/runs``."""
    return Path(os.environ.get("MNISTKIT_STORE", "build/runs"))


@dataclass
class Run:
    """A finished run: its config, per-epoch history and where its files lie."""

    config: RunConfig
    folder: Path
    history: pd.DataFrame
    info: dict
    reused: bool

    @property
    def key(self) -> str:
        return self.folder.name

    @property
    def final(self) -> dict:
        return self.history.iloc[-1].to_dict()

    def model(self, device: str = "cpu") -> torch.nn.Module:
        """The trained network, loaded from ``model.pt``."""
        model = build_model(self.config.model, **self.config.model_kw)
        model.load_state_dict(torch.load(self.folder / "model.pt", map_location=device, weights_only=True))
        return model.to(device).eval()


class Store:
    """Runs under ``root`` (default ``build/runs``), keyed by ``RunConfig.key()``."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else default_root()

    def folder(self, config: RunConfig) -> Path:
        return self.root / config.key()

    def load(self, config: RunConfig) -> Run | None:
        """The finished run for ``config``, or None. A damaged entry is warned about and cleared."""
        folder = self.folder(config)
        files = read_entry(folder)
        if files is None:
            return None
        info = json.loads(files["config.json"])
        history = pd.read_csv(io.BytesIO(files["history.csv"]), float_precision="round_trip")
        return Run(config, folder, history, info, reused=True)

    def run(self, config: RunConfig, progress: bool = True, tracker: str = "none", on_epoch=None) -> Run:
        """The finished run for ``config``: from the store if there, else trained (or resumed) now.

        ``on_epoch(row)`` hears of every epoch trained (see ``trainer.fit``).
        """
        with self.lock(config):
            found = self.load(config)
            if found is not None:
                return found
            return self.train(config, progress=progress, tracker=tracker, on_epoch=on_epoch)

    def train(self, config: RunConfig, progress: bool = True, tracker: str = "none", on_epoch=None) -> Run:
        """Train (or resume) ``config`` into its entry; the caller holds its lock (``Store.lock``)."""
        folder = self.folder(config)
        folder.mkdir(parents=True, exist_ok=True)
        model, history = fit(config, checkpoint=folder / "checkpoint.pt", progress=progress, tracker=tracker,
                             on_epoch=on_epoch)
        return self.finish(config, model, history)

    def finish(self, config: RunConfig, model, history) -> Run:
        """Write the entry of a trained run (the caller holds its lock) and drop its checkpoint.

        An entry found finished by now is kept, never written twice (a shared filesystem's cached
        lookups can hide a finished entry from a worker until after it trained).
        """
        folder = self.folder(config)
        folder.mkdir(parents=True, exist_ok=True)
        found = self.load(config)
        if found is not None:
            (folder / "checkpoint.pt").unlink(missing_ok=True)
            return found
        info = {
            "key": config.key(),
            "config": config.to_dict(),
            "parameters": count_parameters(model),
            "device": torch.device(resolve_device(config.device)).type,
            "torch": torch.__version__,
        }
        weights = io.BytesIO()
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, weights)
        write_entry(folder, {
            "config.json": json.dumps(info, indent=2, sort_keys=True).encode(),
            "history.csv": history.frame().to_csv(index=False).encode(),
            "model.pt": weights.getvalue(),
        })
        (folder / "checkpoint.pt").unlink(missing_ok=True)
        run = self.load(config)
        run.reused = False
        return run

    def lock(self, config: RunConfig) -> FileLock:
        """The lock of ``config``'s entry: whoever holds it is the only one to train or write it."""
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / f"{config.key()}.lock"))

    def run_all(self, configs: list[RunConfig], jobs: int = 1, progress: bool = True,
                cluster: str | None = None) -> list[Run]:
        """Every run of ``configs`` (in order), training the missing ones as Dask tasks
        (``executor.train``: a LocalCluster of ``jobs`` processes, or the scheduler at ``cluster``)."""
        from . import executor

        runs: list[Run | None] = [self.load(c) for c in configs]
        todo = [configs[i] for i, run in enumerate(runs) if run is None]
        if todo:
            trained = executor.train(self.root, todo, jobs=jobs, cluster=cluster, progress=progress)
            for i, run in enumerate(runs):
                if run is None:
                    runs[i] = self.load(configs[i])
                    runs[i].reused = not trained[configs[i].key()]
        return runs
