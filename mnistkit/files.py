"""Atomic writes and checksums: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import torch


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _read_umask()  # once, at import: setting and restoring it later would race with other threads


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to a temporary file beside ``path``, flush it to disk, then rename. The file gets
    the permissions of any file this process creates (0644 under the usual umask), not mkstemp's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_torch_save(obj, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_yaml(path: Path | str, name: str = "parameter file"):
    """The contents of a YAML file; ``ConfigError`` naming ``name`` if it is missing, empty,
    not UTF-8 text, not YAML, or not a mapping of names to values."""
    import yaml

    from .errors import ConfigError

    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(name, str(path), "no such file") from None
    except IsADirectoryError:
        raise ConfigError(name, str(path), "is a folder; give a YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(name, str(path), "is not a text file; give a YAML file of name: value lines") from None
    except OSError as err:
        raise ConfigError(name, str(path), f"cannot be read ({err.strerror})") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(name, str(path), f"is not valid YAML: {problem}{where}") from None
    if values is None:
        raise ConfigError(name, str(path), "is empty; give at least one name: value line")
    if not isinstance(values, dict):
        raise ConfigError(name, str(path), f"must hold a mapping of name: value lines, not a {type(values).__name__}")
    return values
