"""The run store: one folder per entry (a training run, or the BoVW baseline). It locks, loads,
verifies and writes entries; it computes nothing (``executor`` does).

A folder counts as finished only once ``manifest.json`` is in it: written last and atomically, it
holds the sha256 of every other file. A folder without one, or whose files do not match it, is
never served: it is resumed from its checkpoint or recomputed, with a one-line warning. A lock
file per key (``<key>.lock``, there only while an entry is being made) lets two processes ask for
the same entry at once: the second waits, then reuses. A process killed while holding it leaves
the file; the next process on the same machine sees that its owner is gone and takes it over.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Protocol

from filelock import SoftFileLock, Timeout

from . import paths
from .files import atomic_write_bytes, atomic_write_text

MANIFEST = "manifest.json"


class Entry(Protocol):
    """Anything the store can hold: a name for its folder, a computation and its reading."""

    def folder_name(self) -> str:
        """The entry's folder under the store root: a stable hash of everything that sets its numbers."""

    def compute(self, folder: Path, progress: bool) -> dict[str, bytes]:
        """Compute the entry (``folder`` exists, for checkpoints); returns the files to store."""

    def read(self, folder: Path, files: dict[str, bytes]):
        """The result, from the verified files of a finished entry."""


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


def entry_lock(root: Path, name: str) -> SoftFileLock:
    """The lock of store entry ``name``: ``<root>/<name>.lock``, deleted on release.

    A soft lock (a file created exclusively, holding its owner's pid) rather than ``flock``:
    ``flock`` needs its file to stay for good, one beside every entry; this one is gone once
    the entry is made, and a holder that died is detected and replaced (same machine).
    """
    return SoftFileLock(str(Path(root) / f"{name}.lock"))


class Store:
    """Entries under ``root`` (default: ``$MNISTKIT_STORE``, else ``build/runs``; see ``mnistkit.paths``),
    each in the folder its ``folder_name()`` names."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else paths.store_root()

    def folder(self, item: Entry) -> Path:
        return self.root / item.folder_name()

    def load(self, item: Entry):
        """The finished result of ``item``, or None. A damaged entry is warned about and cleared."""
        folder = self.folder(item)
        files = read_entry(folder)
        return None if files is None else item.read(folder, files)

    def tidy(self) -> list[str]:
        """Remove what a stopped build leaves in the store: the lock of an owner that is gone (asked for
        at once, filelock breaks a stale lock and takes it; a live owner's is left) and the folder of an
        entry that never wrote a file. Finished entries and checkpoints stay. Returns what went."""
        gone = []
        if not self.root.is_dir():
            return gone
        for path in sorted(self.root.glob("*.lock")):
            try:
                with SoftFileLock(str(path), timeout=0):
                    pass
            except Timeout:
                continue
            gone.append(path.name)
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if not any(folder.iterdir()) and not (self.root / f"{folder.name}.lock").exists():
                folder.rmdir()
                gone.append(folder.name)
        return gone

    def lock(self, item: Entry) -> SoftFileLock:
        """The lock of ``item``'s entry: whoever holds it is the only one to compute or write it."""
        self.root.mkdir(parents=True, exist_ok=True)
        return entry_lock(self.root, item.folder_name())

    def write(self, item: Entry, files: dict[str, bytes]):
        """Store ``files`` as ``item``'s finished entry (the caller holds its lock) and return it.

        An entry found finished by now is kept, never written twice (a shared filesystem's cached
        lookups can hide a finished entry from a worker until after it computed).
        """
        folder = self.folder(item)
        found = self.load(item)
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
