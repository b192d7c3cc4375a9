"""``python -m mnistkit bench``: the assignment's training pipeline against mnistkit's, side by side.

It measures the wall time of one "epoch" (one training pass over the 60,000 training images plus
one pass over the 10,000 test images) for two pipelines with the same model, loss
(cross-entropy), optimizer (Adam, lr 1e-3), batch size and seed:

* ``assignment``: the assignment's code, re-implemented faithfully: torchvision's ``MNIST`` decoding and
  normalizing every image on access (``ToTensor`` + ``Normalize((0.5,), (0.5,))``),
  ``DataLoader(shuffle=True)``, each batch moved with ``.to(device)``, ``loss.item()`` after every
  step, and a test loop under ``torch.no_grad()`` with the same batch size and ``.item()`` sums.
  For the ViT it uses the assignment's model, ``AssignmentViT``, built from PyTorch's
  ``nn.TransformerEncoder``; ``mnistkit.models.ViT`` has the same parameters, initial values
  and mathematics, with a faster CPU dropout mask.
* ``mnistkit``: ``trainer.train_epoch`` + ``trainer.evaluate`` on the normalized tensors of
  ``mnistkit.data``, held on the device.

Both run in one process, alternating epoch by epoch (the order swapped every epoch) after a short
warm-up of each on a throw-away copy of the model, so a load from other processes hits both alike:
the ratio of their times is the result; the seconds are context. Also reported: images per second
(training + test images / seconds), the peak memory during each pipeline's epochs (the process's
peak resident set on CPU, ``torch.cuda.max_memory_allocated`` on CUDA; both pipelines' data stay
loaded throughout, so each figure includes the other's) and the test accuracy after the last epoch. ``args.out``
(``build/bench.json``) keeps the machine, versions, thread count and every epoch's timing.
"""

from __future__ import annotations

import copy
import json
import resource
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler
from torchvision.datasets import MNIST
from torchvision.transforms import Compose, Normalize, ToTensor

from . import data, numerics, trainer
from .config import RunConfig, device_name, resolve_device
from .errors import ConfigError
from .files import atomic_write_text
from .models import build_model
from .progress import bar as progress_bar

LR = 1e-3
WARMUP_BATCHES = 30


class AssignmentViT(nn.Module):
    """The assignment's ViT (question 6: 2 layers), on PyTorch's built-in transformer modules."""

    def __init__(self, patch_size=7, dim=128, depth=2, heads=8, mlp_dim=256):
        super().__init__()
        self.patch_size = patch_size
        self.pos_embedding = nn.Parameter(torch.randn(1, (28 // patch_size) ** 2 + 1, dim))
        self.patch_to_embedding = nn.Linear(patch_size * patch_size, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        layer = nn.TransformerEncoderLayer(d_model=dim, nhead=heads, dim_feedforward=mlp_dim, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, num_layers=depth, enable_nested_tensor=False)
        self.mlp_head = nn.Sequential(nn.Linear(dim, mlp_dim), nn.ReLU(), nn.Linear(mlp_dim, 10))

    def forward(self, img):
        b, p = img.shape[0], self.patch_size
        img = img.unfold(2, p, p).unfold(3, p, p).contiguous().view(b, -1, p * p)
        x = torch.cat((self.cls_token.expand(b, -1, -1), self.patch_to_embedding(img)), dim=1)
        x = self.transformer(x + self.pos_embedding[:, : x.size(1)])
        return self.mlp_head(x[:, 0])


def assignment_model(model: str) -> nn.Module:
    """The network as the assignment builds it: ``AssignmentViT`` for "vit", else mnistkit's model."""
    return AssignmentViT() if model == "vit" else build_model(model)


class AssignmentPipeline:
    """The assignment's data loading, training loop and test loop."""

    name = "assignment"

    def __init__(self, model: str, batch_size: int, seed: int, device: str, limit: int | None = None):
        self.device, self.limit, self.seed = device, limit, seed
        torch.manual_seed(seed)
        self.model = assignment_model(model).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.criterion = nn.CrossEntropyLoss()
        data.load(True), data.load(False)  # verified files in place; a missing one raises DataError
        transform = Compose([ToTensor(), Normalize((0.5,), (0.5,))])
        root = str(data.data_root())
        train = MNIST(root=root, train=True, download=True, transform=transform)
        test = MNIST(root=root, train=False, download=True, transform=transform)
        self.train_loader = self._shuffled(train, batch_size)
        self.test_loader = DataLoader(test, batch_size=batch_size)

    def _shuffled(self, dataset, batch_size) -> DataLoader:
        """The assignment's ``shuffle=True`` loader, its order drawn from a generator of its own.

        A sampler with the run seed's generator gives the order of ``data.batches`` with the same seed
        (a ``DataLoader(generator=...)`` would first draw a worker seed from it), and the order
        does not depend on what the other pipeline draws from the global generator.
        """
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(self.seed))
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler)

    def epoch(self, model=None, limit=None) -> tuple[float, int]:
        """Train one epoch, then test; returns (test accuracy, images seen).

        With ``model`` (a warm-up copy), that model is trained by an Adam and a shuffle of its own,
        so the measured run sees the same batches as mnistkit's.
        """
        optimizer, loader = self.optimizer, self.train_loader
        if model is None:
            model, limit = self.model, self.limit
        else:
            optimizer = torch.optim.Adam(model.parameters(), lr=LR)
            loader = self._shuffled(loader.dataset, loader.batch_size)
        model.train()
        running_loss, seen = 0.0, 0
        for i, (images, labels) in enumerate(loader):
            if limit is not None and i == limit:
                break
            images, labels = images.to(self.device), labels.to(self.device)
            optimizer.zero_grad()
            out = model(images)
            loss = self.criterion(out, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            seen += len(labels)
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for i, (images, labels) in enumerate(self.test_loader):
                if limit is not None and i == limit:
                    break
                images, labels = images.to(self.device), labels.to(self.device)
                out = model(images)
                _, predicted = torch.max(out.data, 1)
                total += labels.size(0)
                correct += (predicted == labels).sum().item()
        return correct / total, seen + total


class MnistkitPipeline:
    """``trainer.train_epoch`` + ``trainer.evaluate`` on device-resident tensors, as ``fit`` runs them."""

    name = "mnistkit"

    def __init__(self, config: RunConfig, limit: int | None = None):
        self.config = config
        device = resolve_device(config.device)
        self.generator = trainer.seed_everything(config.seed)
        self.model = build_model(config.model).to(device)
        self.optimizer = trainer.make_optimizer(config, self.model.parameters(), device)
        self.train_x, self.train_y = data.train_split(None, 0, device)
        self.test_x, self.test_y = data.load(False, device)
        if limit is not None:
            n = limit * config.batch_size
            self.train_x, self.train_y = self.train_x[:n], self.train_y[:n]
            self.test_x, self.test_y = self.test_x[:n], self.test_y[:n]
        self.scheduler = self._scheduler(self.optimizer, len(self.train_y))

    def _scheduler(self, optimizer, n):
        steps = -(-n // self.config.batch_size)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, trainer.lr_factor(self.config, steps))

    def epoch(self, model=None, limit=None) -> tuple[float, int]:
        """Train one epoch, then test; returns (test accuracy, images seen).

        With ``model`` (a warm-up copy), that model is trained on ``limit`` batches by an optimizer,
        schedule and batch order of its own, leaving the measured run's state alone.
        """
        x, y, tx, ty = self.train_x, self.train_y, self.test_x, self.test_y
        optimizer, scheduler, generator = self.optimizer, self.scheduler, self.generator
        if model is not None:
            n = limit * self.config.batch_size
            x, y, tx, ty = x[:n], y[:n], tx[:n], ty[:n]
            optimizer = trainer.make_optimizer(self.config, model.parameters(), self.config.device)
            scheduler = self._scheduler(optimizer, n)
            generator = torch.Generator().manual_seed(self.config.seed)
        model = self.model if model is None else model
        trainer.train_epoch(model, optimizer, scheduler, x, y, self.config, generator)
        return trainer.evaluate(model, tx, ty)["test_acc"], len(y) + len(ty)


def _reset_peak(device: str) -> None:
    """Start a new peak-memory window, so that each epoch's peak is its own."""
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # Linux: writing 5 resets the peak resident set (VmHWM) to the current one
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_mb(device: str) -> float:
    """Peak memory since the last reset: CUDA memory allocated, or the process's resident set."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux, never reset


def _timed(pipeline, device: str) -> dict:
    """One epoch of ``pipeline``: its seconds (GPU work included), test accuracy, images and peak MB."""
    _reset_peak(device)
    start = time.perf_counter()
    acc, images = pipeline.epoch()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "acc": acc, "images": images, "peak_mb": _peak_mb(device)}


def run(model: str = "lenet", batch_size: int = 64, epochs: int = 2, device: str = "auto", seed: int = 0,
        out: str | Path | None = "build/bench.json", progress: bool = True, limit_batches: int | None = None,
        warmup_batches: int = WARMUP_BATCHES) -> dict:
    """Time both pipelines for ``epochs`` epochs each; returns the summary pairs (see ``main``).

    ``limit_batches`` (for tests) cuts every epoch to that many training and test batches.
    Bad arguments raise ``ConfigError`` before any work.
    """
    config = RunConfig(model=model, batch_size=batch_size, epochs=epochs, seed=seed, device=device)
    if limit_batches is not None and (isinstance(limit_batches, bool) or not isinstance(limit_batches, int)
                                      or limit_batches < 1):
        raise ConfigError("limit_batches", limit_batches, "must be an integer >= 1, or None for whole epochs")
    device = resolve_device(device)
    config = config.replace(device=device)
    trainer.keep_freed_memory()  # process-wide, so the assignment pipeline has it too
    pipelines = [AssignmentPipeline(model, batch_size, seed, device, limit_batches), MnistkitPipeline(config, limit_batches)]

    warm = min(warmup_batches, limit_batches or warmup_batches)
    for p in pipelines:
        p.epoch(copy.deepcopy(p.model), warm)

    timings = {p.name: [] for p in pipelines}
    bar = progress_bar(total=2 * epochs, desc=f"bench {model}", unit="epoch", disable=not progress, leave=False)
    for e in range(epochs):
        for p in pipelines if e % 2 == 0 else pipelines[::-1]:
            timings[p.name].append(_timed(p, device))
            bar.set_postfix({p.name: f"{timings[p.name][-1]['seconds']:.2f}s"})
            bar.update()
    bar.close()

    summary = {}
    for name, rows in timings.items():
        seconds = sum(r["seconds"] for r in rows) / len(rows)
        summary[name] = {"s": seconds, "images_per_s": sum(r["images"] for r in rows) / sum(r["seconds"] for r in rows),
                         "peak_mb": max(r["peak_mb"] for r in rows), "acc": rows[-1]["acc"]}
    ratio = summary["assignment"]["s"] / summary["mnistkit"]["s"]
    if progress:
        print(table(summary, ratio, timings))
    if out:
        record = {"device": device, "device_name": device_name(device), "torch": torch.__version__,
                  "threads": torch.get_num_threads(), "kernels": {k: v for k, v in numerics.fingerprint().items() if k != "threads"}, "model": model, "batch_size": batch_size,
                  "epochs": epochs, "seed": seed, "limit_batches": limit_batches, "warmup_batches": warm,
                  "ratio": ratio, "summary": summary, "epochs_timed": timings}
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(out), json.dumps(record, indent=2) + "\n")
    return {"ratio": ratio, "assignment_s": summary["assignment"]["s"], "mnistkit_s": summary["mnistkit"]["s"],
            "assignment_acc": summary["assignment"]["acc"], "mnistkit_acc": summary["mnistkit"]["acc"],
            "assignment_peak_mb": summary["assignment"]["peak_mb"], "mnistkit_peak_mb": summary["mnistkit"]["peak_mb"],
            "device": device, "model": model, "batch_size": batch_size, "epochs": epochs,
            "threads": torch.get_num_threads()}


def table(summary: dict, ratio: float, timings: dict) -> str:
    """The human-readable result: one row per pipeline, then the ratio and each epoch's."""
    lines = [f"{'pipeline':<12}{'s/epoch':>10}{'images/s':>11}{'peak MB':>10}{'test acc':>10}"]
    for name, s in summary.items():
        lines.append(f"{name:<12}{s['s']:>10.2f}{s['images_per_s']:>11,.0f}{s['peak_mb']:>10,.0f}{s['acc']:>10.4f}")
    per_epoch = ", ".join(f"{a['seconds'] / b['seconds']:.2f}" for a, b in zip(timings["assignment"], timings["mnistkit"]))
    lines.append(f"ratio assignment/mnistkit: {ratio:.2f} (per epoch: {per_epoch})")
    return "\n".join(lines)


def main(args) -> dict:
    """The ``bench`` command: ``run`` with the command line's arguments; returns its key=value pairs.

    ``args.limit_batches`` (not on the command line; for tests) limits every epoch's batches.
    """
    return run(model=args.model, batch_size=args.batch_size, epochs=args.epochs, device=args.device,
               seed=args.seed, out=args.out, progress=not args.quiet,
               limit_batches=getattr(args, "limit_batches", None))
