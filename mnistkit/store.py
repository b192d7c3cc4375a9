"""The run store: one folder per entry (a training run, or the BoVW baseline); finished entries are reused.

A folder counts as finished only once ``manifest.json`` is in it: written last and atomically, it
holds the sha256 of every other file. A folder without one, or whose files do not match it, is
never served: it is resumed from its checkpoint or recomputed, with a one-line warning. A lock
file per key (``<key>.lock``, there only while a run is being made) lets two processes ask for the
same run at once: the second waits, then reuses. A process killed while holding it leaves the
file; the next process on the same machine sees that its owner is gone and takes it over.
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
from typing import Protocol

import pandas as pd
import torch
from filelock import SoftFileLock

from . import numerics, paths, tracking
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
    """``$MNISTKIT_STORE``, else ``build/runs`` of the checkout (see ``mnistkit.paths``)."""
    return paths.store_root()


def entry_lock(root: Path, name: str) -> SoftFileLock:
    """The lock of store entry ``name``: ``<root>/<name>.lock``, deleted on release.

    A soft lock (a file created exclusively, holding its owner's pid) rather than ``flock``:
    ``flock`` needs its file to stay for good, one beside every entry; this one is gone once
    the entry is made, and a holder that died is detected and replaced (same machine).
    """
    return SoftFileLock(str(Path(root) / f"{name}.lock"))


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


class Entry(Protocol):
    """Anything the store can hold: a name for its folder, a computation and its reading.

    ``Store.run`` gives every kind of entry the same sequence: lock, load, compute, write.
    """

    processes: int  # worker processes its computation starts itself (1: none)

    def folder_name(self) -> str:
        """The entry's folder under the store root: a stable hash of everything that sets its numbers."""

    def compute(self, folder: Path, progress: bool) -> dict[str, bytes]:
        """Compute the entry (``folder`` exists, for checkpoints); returns the files to store."""

    def read(self, folder: Path, files: dict[str, bytes]):
        """The result, from the verified files of a finished entry."""


@dataclass(frozen=True)
class Training:
    """The store entry of a training run: ``fit(config)``, stored as its config, history and weights."""

    config: RunConfig
    tracker: str = "none"
    on_epoch: object = None  # called with each epoch's row (progress reports from workers)
    processes = 1

    def folder_name(self) -> str:
        return self.config.key()

    def compute(self, folder: Path, progress: bool) -> dict[str, bytes]:
        model, history = fit(self.config, checkpoint=folder / "checkpoint.pt", progress=progress,
                             tracker=tracking.start(self.tracker, self.config, folder.parent), on_epoch=self.on_epoch)
        return self.files(model, history)

    def files(self, model, history) -> dict[str, bytes]:
        """The entry's files for a trained ``model`` and its ``History``."""
        info = {
            "key": self.config.key(),
            "config": self.config.to_dict(),
            "parameters": count_parameters(model),
            "device": torch.device(resolve_device(self.config.device)).type,
            "torch": torch.__version__,
        }
        if info["device"] == "cpu":
            info["numerics"] = numerics.fingerprint()
        weights = io.BytesIO()
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, weights)
        return {
            "config.json": json.dumps(info, indent=2, sort_keys=True).encode(),
            "history.csv": history.frame().to_csv(index=False).encode(),
            "model.pt": weights.getvalue(),
        }

    def read(self, folder: Path, files: dict[str, bytes]) -> Run:
        info = json.loads(files["config.json"])
        history = pd.read_csv(io.BytesIO(files["history.csv"]), float_precision="round_trip")
        return Run(self.config, folder, history, info, reused=True)


def entry(spec) -> Entry:
    """The store entry of ``spec``: a ``RunConfig`` becomes a ``Training``; anything else is its own entry."""
    return Training(spec) if isinstance(spec, RunConfig) else spec


class Store:
    """Entries under ``root`` (default ``build/runs``): training runs keyed by ``RunConfig.key()``,
    and any other ``Entry`` (the BoVW baseline) by its own ``folder_name()``."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else default_root()

    def folder(self, spec) -> Path:
        return self.root / entry(spec).folder_name()

    def load(self, spec):
        """The finished result for ``spec``, or None. A damaged entry is warned about and cleared."""
        item = entry(spec)
        folder = self.root / item.folder_name()
        files = read_entry(folder)
        return None if files is None else item.read(folder, files)

    def lock(self, spec) -> SoftFileLock:
        """The lock of ``spec``'s entry: whoever holds it is the only one to compute or write it."""
        self.root.mkdir(parents=True, exist_ok=True)
        return entry_lock(self.root, entry(spec).folder_name())

    def run(self, spec, progress: bool = True, tracker: str = "none", on_epoch=None):
        """The finished result for ``spec``: from the store if there, else computed now.

        The one sequence for every kind of entry: lock, load, compute (a training run resumes from
        its checkpoint), write the files and then the manifest, remove what computing left behind.
        ``on_epoch(row)`` hears of every epoch a training run trains; ``tracker`` (``none``, ``wandb``,
        ``tensorboard``) logs them, and a result found in the store is not logged again.
        """
        tracking.check(tracker)
        item = Training(spec, tracker, on_epoch) if isinstance(spec, RunConfig) else entry(spec)
        with self.lock(spec):
            found = self.load(spec)
            if found is not None:
                return found
            folder = self.root / item.folder_name()
            folder.mkdir(exist_ok=True)
            return self.write(spec, item.compute(folder, progress))

    def train(self, config: RunConfig, progress: bool = True, on_epoch=None) -> Run:
        """Train (or resume) ``config`` into its entry; the caller holds its lock (``Store.lock``)."""
        item = Training(config, on_epoch=on_epoch)
        folder = self.root / item.folder_name()
        folder.mkdir(parents=True, exist_ok=True)
        return self.write(config, item.compute(folder, progress))

    def finish(self, config: RunConfig, model, history) -> Run:
        """Write the entry of a run trained elsewhere (an ensemble member); the caller holds its lock."""
        return self.write(config, Training(config).files(model, history))

    def write(self, spec, files: dict[str, bytes]):
        """Store ``files`` as ``spec``'s finished entry (the caller holds its lock) and return it.

        An entry found finished by now is kept, never written twice (a shared filesystem's cached
        lookups can hide a finished entry from a worker until after it computed).
        """
        item = entry(spec)
        folder = self.root / item.folder_name()
        found = self.load(spec)
        if found is None:
            folder.mkdir(parents=True, exist_ok=True)
            write_entry(folder, files)
        kept = set(json.loads((folder / MANIFEST).read_text())["sha256"]) | {MANIFEST}
        for leftover in set(os.listdir(folder)) - kept:  # a checkpoint, say
            (folder / leftover).unlink(missing_ok=True)
        if found is not None:
            return found
        result = item.read(folder, files)
        result.reused = False
        return result

    def run_all(self, specs: list, jobs: int = 1, progress: bool = True, cluster: str | None = None,
                tracker: str = "none") -> list:
        """Every result of ``specs`` (in order), computing the missing ones: THE place where the
        report's entries are computed. Training runs are Dask tasks (``executor.train``: a
        LocalCluster of ``jobs`` processes, or the scheduler at ``cluster``); entries that start
        worker processes of their own (the BoVW baseline) then run one at a time in this process,
        once the training workers are gone, so that their memory never adds up."""
        from . import executor

        results: list = [self.load(s) for s in specs]
        todo = [i for i, found in enumerate(results) if found is None]
        runs = [i for i in todo if isinstance(specs[i], RunConfig)]
        trained = executor.train(self.root, [specs[i] for i in runs], jobs=jobs, cluster=cluster,
                                 progress=progress, tracker=tracker) if runs else {}
        for i in todo:
            if i in runs:
                results[i] = self.load(specs[i])
                results[i].reused = not trained[specs[i].key()]
            else:
                results[i] = self.run(specs[i], progress=progress)
        return results
