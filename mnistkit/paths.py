"""Where the run store and the MNIST files live, wherever a command is run from.

Each folder is, first found: its environment variable (``$MNISTKIT_STORE``, ``$MNISTKIT_DATA``);
else ``build/`` of the source checkout this package was imported from (a clone, run in place or
installed with ``pip install -e .``), from any working folder; else, for a plain installed
package, the user's cache folder (``$XDG_CACHE_HOME/mnistkit``, by default ``~/.cache/mnistkit``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import ConfigError

PACKAGE = Path(__file__).resolve().parent


def checkout() -> Path | None:
    """The source checkout holding this package (beside ``pyproject.toml`` and ``report.ipynb``), or None."""
    root = PACKAGE.parent
    return root if (root / "pyproject.toml").is_file() and (root / "report.ipynb").is_file() else None


def build_dir() -> Path:
    """The checkout's ``build/``, or the user's cache folder for an installed package."""
    root = checkout()
    if root is not None:
        return root / "build"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "mnistkit"


def _from_env(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    return Path(value).expanduser().absolute() if value else default


def store_root() -> Path:
    """The run store: ``$MNISTKIT_STORE``, else ``<build>/runs``."""
    return _from_env("MNISTKIT_STORE", build_dir() / "runs")


def check_store(root: Path | str | None = None) -> Path:
    """The run store (``root``, else ``store_root()``) made and proven to take files; else ``ConfigError`` naming
    what chose it: ``MNISTKIT_STORE`` where that variable is set, else ``store``. Returns its absolute path."""
    name = "MNISTKIT_STORE" if root is None and os.environ.get("MNISTKIT_STORE") else "store"
    return check_writable(root if root is not None else store_root(), name)


def data_root() -> Path:
    """The folder holding ``MNIST/raw``: ``$MNISTKIT_DATA``, else ``<build>/data``."""
    return _from_env("MNISTKIT_DATA", build_dir() / "data").resolve()


def check_writable(folder: Path | str, name: str) -> Path:
    """Make ``folder`` (and its parents) and prove it takes a file; raise ``ConfigError`` naming
    ``name`` otherwise. Returns the absolute path. Leaves no file behind."""
    folder = Path(folder).expanduser().absolute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ConfigError(name, str(folder), f"must be a folder this user can create and write ({reason})") from None
    return folder


def check_creatable(folder: Path | str, name: str) -> None:
    """Raise ``ConfigError`` naming ``name`` unless ``folder`` exists and takes a file, or could be
    made: its nearest existing parent takes a new folder. Leaves nothing behind and makes nothing."""
    folder = Path(folder).expanduser().absolute()
    probe = folder
    while not probe.exists():
        probe = probe.parent
    try:
        if not probe.is_dir():
            raise NotADirectoryError(20, "not a folder")
        os.rmdir(tempfile.mkdtemp(dir=probe, prefix=".mnistkit-probe-"))
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ConfigError(name, str(folder), f"must be a folder this user can create and write ({reason} at "
                                             f"{probe})") from None
