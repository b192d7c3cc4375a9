"""``RunConfig``: everything that decides a training run's numbers, validated and hashed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import data, numerics
from .data import TRAIN_SIZE, check_subset, check_validation, dataset
from .errors import ConfigError, check_flag, check_number, from_mapping
from .models import check_model, ensemblable

# Bump when a change to the training code changes the numbers: old runs are then not reused.
CODE_VERSION = 5  # 4: RMSprop's square root and the ViT's linear products portable; 5: its attention products too

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
FUSED = ("adam", "adamw", "sgd")  # those with a fused kernel (trainer.make_optimizer), which a CUDA graph needs
SCHEDULES = ("constant", "cosine")
AUGMENTS = ("none", "shift")
OPT_IN = ("ensemble", "cuda_graph")  # GPU paths off by default and left out of the key while off
MAX_EPOCHS = 1000  # the report's longest run has 10; a typo like 100000000000 should not train for ever
MAX_SEED = 2**32 - 1  # NumPy's seeds end here


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; an unavailable device raises ``ConfigError``.

    'mps' (Apple silicon) is accepted where this PyTorch has it; 'auto' never picks it.
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if isinstance(device, str) and (device == "cuda" or device.startswith("cuda:")):
        if not torch.cuda.is_available():
            raise ConfigError("device", device, "CUDA is not available on this machine; use 'cpu' or 'auto'")
        return device
    if device == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("device", device, "Apple's MPS is not available on this machine (macOS on Apple "
                                                "silicon only); use 'cpu' or 'auto'")
        return device
    raise ConfigError("device", device, "must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")


def device_name(device: str) -> str:
    """The GPU's name, or the CPU model from /proc/cpuinfo (the platform's processor elsewhere)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _choice(name, value, allowed):
    if value not in allowed:
        raise ConfigError(name, value, f"must be one of {list(allowed)}")


@dataclass(frozen=True)
class RunConfig:
    """One training run, completely: same config -> same run folder -> same numbers."""

    dataset: str = data.DEFAULT  # a name of data.DATASETS
    model: str = "lenet"
    model_kw: dict = field(default_factory=dict)
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0  # SGD and RMSprop only
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 10
    subset: int | None = None  # None: every training image (outside the validation split); else a balanced subset
    subset_seed: int = 0
    seed: int = 42
    schedule: str = "constant"  # or "cosine": linear warm-up, then cosine decay to 0, per step
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    augment: str = "none"  # or "shift": random translation by up to 2 pixels
    device: str = "auto"
    deterministic: bool = False
    validation: int = 0  # held-out training images (data.validation_indices) scored every epoch; 0: none
    evaluate_every: int = 1  # epochs between test (and validation) passes; the last epoch always has one
    ensemble: bool = False  # trained with its configuration's other seeds as one vmapped network (CUDA only)
    cuda_graph: bool = False  # its training step replayed as a CUDA graph where it runs on CUDA

    def __post_init__(self):
        dataset(self.dataset)
        if not isinstance(self.model_kw, dict):
            raise ConfigError("model_kw", self.model_kw, "must be a mapping of model keyword arguments")
        check_model(self.model, self.model_kw)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        check_number("lr", self.lr, 0, low_open=True)
        check_number("momentum", self.momentum, 0, 1)
        if self.momentum and self.optimizer not in ("sgd", "rmsprop"):
            raise ConfigError("momentum", self.momentum, f"only SGD and RMSprop take momentum, not {self.optimizer}")
        check_number("weight_decay", self.weight_decay, 0)
        check_number("batch_size", self.batch_size, 1, TRAIN_SIZE, integer=True)
        check_number("epochs", self.epochs, 1, MAX_EPOCHS, integer=True)
        check_validation(self.validation)
        check_subset(self.dataset, self.subset, self.validation)
        check_number("subset_seed", self.subset_seed, 0, MAX_SEED, integer=True)
        check_number("seed", self.seed, 0, MAX_SEED, integer=True)
        _choice("schedule", self.schedule, SCHEDULES)
        check_number("warmup_epochs", self.warmup_epochs, 0, self.epochs)
        check_number("label_smoothing", self.label_smoothing, 0, 1)
        _choice("augment", self.augment, AUGMENTS)
        check_flag("deterministic", self.deterministic)
        check_number("evaluate_every", self.evaluate_every, 1, integer=True)
        device = resolve_device(self.device)
        for name in OPT_IN:
            check_flag(name, getattr(self, name))
        if self.ensemble and not device.startswith("cuda"):
            raise ConfigError("ensemble", True, f"needs a CUDA device (device is {self.device!r}); on a CPU runs "
                                                "train one by one")
        if self.ensemble and not ensemblable(self.model, self.model_kw):
            raise ConfigError("ensemble", True, f"{self.model} keeps batch statistics, which ensemble members "
                                                "cannot keep apart: it trains alone")
        if self.cuda_graph and self.optimizer not in FUSED:
            raise ConfigError("cuda_graph", True, f"needs a fused optimizer ({', '.join(FUSED)}), not {self.optimizer}")

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        """Build a config from a mapping; an unknown key raises ``ConfigError``."""
        return from_mapping(cls, values, "run parameter")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    def key(self) -> str:
        """Stable hash of everything that changes the numbers: the values, the device type, the code
        version and, on a CPU, the kernels and thread count (``numerics.fingerprint``). MNIST's name is left
        out (``data.keyed``): its runs keep the keys they had before the dataset was a value; so are ``ensemble``
        and ``cuda_graph`` while off, so a member of an ensemble is keyed apart from a single run."""
        values = {k: v for k, v in data.keyed(self.to_dict()).items() if k not in OPT_IN or v}
        values["device"] = torch.device(resolve_device(self.device)).type
        values["code_version"] = CODE_VERSION
        if values["device"] == "cpu":
            values["numerics"] = numerics.fingerprint()
        blob = json.dumps(values, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def train_images(self) -> int:
        """How many images the run trains on: its subset, or every training image outside the validation split."""
        return data.train_images(self.subset, self.validation)

    def label(self) -> str:
        """A short human-readable description, for progress bars and tables."""
        where = "" if self.dataset == data.DEFAULT else f"{self.dataset} "
        return (f"{where}{self.model} {self.optimizer} lr={self.lr:g} bs={self.batch_size} n={self.train_images} "
                f"seed={self.seed}")
