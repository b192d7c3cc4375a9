"""The run store: one folder per ``RunConfig`` key; finished runs are reused, never retrained.

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
import shutil
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
import torch
from filelock import SoftFileLock

from .config import RunConfig, resolve_device
from .files import atomic_write_bytes, atomic_write_text
from .models import build_model, count_parameters
from . import paths, tracking
from .progress import bar as progress_bar
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


class Store:
    """Runs under ``root`` (default ``paths.store_root()``), keyed by ``RunConfig.key()``."""

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

    def run(self, config: RunConfig, progress: bool = True, tracker: str = "none") -> Run:
        """The finished run for ``config``: from the store if there, else trained (or resumed) now.

        ``tracker`` (``none``, ``wandb``, ``tensorboard``) logs the epochs trained here; a run
        found in the store is returned as it is, not logged again.
        """
        tracking.check(tracker)
        self.root.mkdir(parents=True, exist_ok=True)
        with entry_lock(self.root, config.key()):
            found = self.load(config)
            if found is not None:
                return found
            folder = self.folder(config)
            folder.mkdir(exist_ok=True)
            checkpoint = folder / "checkpoint.pt"
            model, history = fit(config, checkpoint=checkpoint, progress=progress,
                                 tracker=tracking.start(tracker, config, self.root))
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
            checkpoint.unlink(missing_ok=True)
            run = self.load(config)
        run.reused = False
        return run

    def run_all(self, configs: list[RunConfig], jobs: int = 1, progress: bool = True,
                tracker: str = "none") -> list[Run]:
        """Every run of ``configs`` (in order), training the missing ones in ``jobs`` processes."""
        tracking.check(tracker)
        runs: list[Run | None] = [self.load(c) for c in configs]
        todo = [i for i, run in enumerate(runs) if run is None]
        bar = progress_bar(total=len(configs), initial=len(configs) - len(todo), desc="runs",
                   unit="run", disable=not progress or not todo)
        if jobs <= 1 or len(todo) <= 1:
            for i in todo:
                runs[i] = self.run(configs[i], progress=progress, tracker=tracker)
                bar.update()
        else:
            threads = max(1, torch.get_num_threads() // jobs)
            ctx = get_context("spawn")
            with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                                     initargs=(threads,)) as pool:
                futures = {pool.submit(_train, str(self.root), configs[i], tracker): i for i in todo}
                for future in as_completed(futures):
                    future.result()
                    run = runs[futures[future]] = self.load(configs[futures[future]])
                    run.reused = False
                    bar.update()
        bar.close()
        return runs


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _train(root: str, config: RunConfig, tracker: str = "none") -> str:
    return Store(root).run(config, progress=False, tracker=tracker).key
