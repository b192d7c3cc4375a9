"""``fit(config)``: one trainer for every question; returns the model and its per-epoch History.

Knows nothing of questions or plots. After each epoch it can write a checkpoint (model,
optimizer, schedule, every RNG state, history so far), so a killed run resumes from its last
finished epoch and ends with the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import math
import os
import random
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from . import data, numerics, optim
from .config import RunConfig, resolve_device
from .files import atomic_torch_save
from .models import build_model
from .progress import bar as progress_bar
from .tracking import Tracker

EVAL_BATCH = 2000
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")
VALIDATION = ("val_loss", "val_acc")  # NaN without a validation split, and in epochs not evaluated


@dataclass
class History:
    """Per-epoch metrics: ``epoch, train_loss, train_acc, test_loss, test_acc, val_loss, val_acc, seconds``."""

    rows: list = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["epoch", *METRICS, *VALIDATION, "seconds"])

    @property
    def final(self) -> dict:
        return self.rows[-1]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return the generator that orders batches and augments them."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def weights_sha256(model) -> str:
    """The sha256 of a model's state, every tensor's name and bytes in name order: equal bits, equal hash."""
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def set_deterministic(on: bool) -> None:
    """Deterministic kernels (and cuBLAS' fixed workspace) when ``on``; PyTorch's defaults otherwise."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.benchmark = False


def make_optimizer(config: RunConfig, params, device: str) -> torch.optim.Optimizer:
    """Adam, AdamW, SGD or RMSprop with the config's learning rate, momentum and weight decay.

    Adam, AdamW and SGD use their fused kernel (one call updates every parameter): the same update
    rule as the per-parameter loop, faster on CPU and CUDA, and what lets a CUDA step be graphed.
    RMSprop on a CPU is ``optim.RMSprop``: torch's rule with a square root that is the same on every CPU.
    """
    common = dict(lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, **common, fused=True)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, **common, fused=True)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, **common, momentum=config.momentum, fused=True)
    if torch.device(device).type == "cpu":
        return optim.RMSprop(params, **common, momentum=config.momentum)
    return torch.optim.RMSprop(params, **common, momentum=config.momentum)


def lr_factor(config: RunConfig, steps_per_epoch: int):
    """Per-step learning-rate multiplier: 1, or linear warm-up then cosine decay to 0."""
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if config.schedule == "constant":
            return 1.0
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    return factor


def random_shift(x: torch.Tensor, generator: torch.Generator, pixels: int = 2) -> torch.Tensor:
    """Translate each image by up to ``pixels`` in x and y, filling with the background value."""
    b = x.shape[0]
    padded = F.pad(x, (pixels,) * 4, value=(0 - data.MEAN) / data.STD)
    shifts = torch.randint(0, 2 * pixels + 1, (2, b), generator=generator).to(x.device)
    base = torch.arange(28, device=x.device)
    rows = (base + shifts[0, :, None])[:, :, None]
    cols = (base + shifts[1, :, None])[:, None, :]
    return padded[torch.arange(b, device=x.device)[:, None, None], 0, rows, cols].unsqueeze(1)


def channels_last(model, optimizer=None) -> None:
    """Store a CPU model's 4-d (conv) weights channels-last, in place, with their optimizer state.

    oneDNN's convolutions are faster on channels-last weights, and the layout carries through
    the network; the values, and so the mathematics, stay the same. Optimizer state is copied
    into its parameter's layout, because the fused CPU kernels walk every tensor in memory order.
    """
    for p in model.parameters():
        if p.dim() != 4 or p.device.type != "cpu":
            continue
        p.data = p.data.to(memory_format=torch.channels_last)  # unlike .contiguous(), also restrides C=1
        state = optimizer.state.get(p, {}) if optimizer is not None else {}
        for key, value in state.items():
            if torch.is_tensor(value) and value.shape == p.shape and value.stride() != p.stride():
                state[key] = torch.empty_like(p).copy_(value)


@functools.cache
def keep_freed_memory() -> None:
    """Ask glibc's malloc to keep freed memory for reuse instead of handing it back to the kernel.

    A training step frees and reallocates the same activation buffers thousands of times; with
    glibc's defaults, blocks above a moving threshold are unmapped when freed (and the heap top is
    trimmed), so every step pays page faults to get them back: 14% of a ViT epoch on 2 cores, in a
    process that also ran the DataLoader pipeline. Pinning the thresholds (blocks under 32 MB come
    from the heap; up to 1 GB of free heap is kept) removes those faults. A no-op without glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD (32 MB is glibc's largest)
    except (OSError, AttributeError):
        pass


def train_step(model, optimizer, x, y, config, sums) -> torch.Tensor:
    """Forward, loss, backward and update on one batch; adds its loss sum and hits to ``sums``.

    Returns the batch's mean loss (a device tensor: no host sync).
    """
    logits = model(x)
    loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    sums[0] += loss.detach() * len(y)
    sums[1] += (logits.argmax(1) == y).sum()
    return loss


EAGER = weakref.WeakSet()  # optimizers whose step could not be captured: their run trains eagerly from then on


class CudaGraphStep:
    """``step_fn`` (``train_step``, or an ensemble's) recorded as a CUDA graph after a few eager steps, then
    replayed per batch.

    Exists because a small model on a GPU spends most of a step launching kernels; a replay
    launches the whole step at once, with the same kernels and numbers. The learning rate is read
    from a device tensor refreshed before each replay, so schedules still apply. Batches of another
    size (the last, partial one) run eagerly. Only for fused optimizers, whose state lives on the GPU.
    """

    WARMUP = 3  # eager steps before capture, on a side stream, as CUDA graph capture requires

    def __init__(self, model, optimizer, config, sums, step_fn=None):
        self.args = (model, optimizer, config, sums)
        self.step_fn = step_fn or train_step  # or another step of the same signature (an ensemble's)
        self.graph, self.done, self.side, self.failed = None, 0, torch.cuda.Stream(), False

    def __call__(self, x, y) -> torch.Tensor:
        model, optimizer, config, sums = self.args
        if self.graph is None and not self.failed and self.done >= self.WARMUP and y.shape[-1] == config.batch_size:
            try:
                self._capture(x, y)
            except Exception as err:  # a step that cannot be captured runs eagerly: the same numbers, slower
                self.graph, self.failed = None, True
                EAGER.add(optimizer)  # for the rest of the run: one warning
                warnings.warn(f"CUDA graph capture failed ({type(err).__name__}: {err}); training eagerly",
                              stacklevel=2)
        if self.graph is None or y.shape != self.y.shape:
            main = torch.cuda.current_stream()
            self.side.wait_stream(main)
            with torch.cuda.stream(self.side):
                loss = self.step_fn(model, optimizer, x, y, config, sums)
            main.wait_stream(self.side)
            self.done += 1
            return loss
        for lr, group in zip(self.lrs, optimizer.param_groups):
            lr.fill_(group["lr"])
        self.x.copy_(x)
        self.y.copy_(y)
        self.graph.replay()
        return self.loss

    def _capture(self, x, y) -> None:
        model, optimizer, config, sums = self.args
        self.x, self.y = x.clone(), y.clone()
        self.lrs = [torch.tensor(float(g["lr"]), device=x.device) for g in optimizer.param_groups]
        saved = [dict(g) for g in optimizer.param_groups]
        for group, lr in zip(optimizer.param_groups, self.lrs):
            group["lr"] = lr
            if "capturable" in group:
                group["capturable"] = True
        try:
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.loss = self.step_fn(model, optimizer, self.x, self.y, config, sums).detach()
        finally:
            for group, old in zip(optimizer.param_groups, saved):
                group["lr"] = old["lr"]
                if "capturable" in old:
                    group["capturable"] = old["capturable"]


def make_step(model, optimizer, config, sums, device, step_fn=train_step) -> Callable:
    """The step ``epoch_loop`` calls per batch: ``step_fn`` (``train_step``, or an ensemble's) on these arguments,
    with the engineering that keeps its mathematics. On CPU, a single run's conv weights are made channels-last
    first; with ``config.cuda_graph`` on CUDA with a fused optimizer, the step is replayed as a CUDA graph, unless
    a capture of this run's step has failed (``EAGER``)."""
    if step_fn is train_step:
        channels_last(model, optimizer)
    if (config.cuda_graph and device.type == "cuda" and optimizer not in EAGER
            and all(g.get("fused") for g in optimizer.param_groups)):
        return CudaGraphStep(model, optimizer, config, sums, step_fn=step_fn)
    return lambda x, y: step_fn(model, optimizer, x, y, config, sums)


def augmented(batches, config, generator):
    """``batches`` with the run's augmentation, drawn from ``generator`` after each batch's order."""
    for x, y in batches:
        yield (random_shift(x, generator) if config.augment == "shift" else x), y


def epoch_loop(step, batches, scheduler) -> None:
    """The one loop over an epoch's batches, for a single run and an ensemble alike: ``step`` (a single run's
    or an ensemble's) on each batch, the learning rate's schedule advanced after it."""
    for x, y in batches:
        step(x, y)
        scheduler.step()


def train_epoch(model, optimizer, scheduler, images, labels, config, generator) -> dict:
    """One pass over the training data; returns mean loss and accuracy (one host sync, at the end)."""
    model.train()
    sums = [torch.zeros((), device=images.device), torch.zeros((), device=images.device, dtype=torch.long)]
    batches = augmented(data.batches(images, labels, config.batch_size, generator), config, generator)
    epoch_loop(make_step(model, optimizer, config, sums, images.device), batches, scheduler)
    return {"train_loss": sums[0].item() / len(labels), "train_acc": sums[1].item() / len(labels)}


CPU_EVAL_BATCH = 256  # on CPU, batches that stay in cache: LeNet and ViT test passes 2x and 1.4x faster than 2000


@torch.inference_mode()
def evaluate(model, images, labels) -> dict:
    """Mean cross-entropy and accuracy on ``images`` in large batches, without gradients."""
    model.eval()
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), device=images.device, dtype=torch.long)
    batch = CPU_EVAL_BATCH if images.device.type == "cpu" else EVAL_BATCH
    for x, y in data.batches(images, labels, batch):
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    return {"test_loss": loss_sum.item() / len(labels), "test_acc": correct.item() / len(labels)}


def scored(model, epoch: int, config: RunConfig, test, validation) -> dict:
    """The test (and, with a validation split, validation) metrics of the model after ``epoch``
    (from 1): measured after every ``config.evaluate_every``-th epoch and the last; NaN otherwise."""
    if epoch % config.evaluate_every and epoch != config.epochs:
        return {k: math.nan for k in ("test_loss", "test_acc", *VALIDATION)}
    row = evaluate(model, *test)
    if validation is None:
        return {**row, "val_loss": math.nan, "val_acc": math.nan}
    val = evaluate(model, *validation)
    return {**row, "val_loss": val["test_loss"], "val_acc": val["test_acc"]}


def epoch_row(epoch: int, trained: dict, scores: dict, seconds: float) -> dict:
    """An epoch's row of a ``History`` (a single run's or an ensemble member's): its training loss and accuracy,
    its test scores, its seconds, then its validation scores."""
    return {"epoch": epoch, **trained, **{k: scores[k] for k in METRICS[2:]}, "seconds": seconds,
            **{k: scores[k] for k in VALIDATION}}


def held_out(config: RunConfig, device: str):
    """``(test images and labels, validation images and labels or None)`` for ``config``."""
    validation = data.validation_split(config.dataset, config.validation, device) if config.validation else None
    return data.load(config.dataset, False, device), validation


@torch.inference_mode()
def predict(model, images) -> torch.Tensor:
    """Predicted class of every image, as a CPU tensor."""
    model.eval()
    return torch.cat([model(x).argmax(1).cpu() for x, _ in data.batches(images, images, EVAL_BATCH)])


def _rng_state(generator) -> dict:
    state = {"generator": generator.get_state(), "torch": torch.get_rng_state(),
             "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(generator, state: dict) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _load_checkpoint(path: Path, config: RunConfig):
    """The checkpoint's contents if it is readable and belongs to ``config``; else None (with a warning)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        if ckpt["key"] != config.key():
            raise ValueError("it belongs to another config")
        return ckpt
    except Exception as err:  # a truncated or foreign file is never trusted: train from scratch
        warnings.warn(f"ignoring unreadable checkpoint {path} ({err}); training from epoch 1")
        return None


def fit(config: RunConfig, checkpoint: Path | None = None, progress: bool = True, tracker: Tracker | None = None,
        on_epoch=None):
    """Train ``config`` and return ``(model, History)``.

    With ``checkpoint``, state is saved there after every epoch and a run found there resumes
    from its last finished epoch. ``tracker`` (``tracking.start(...)``) logs every trained epoch.
    ``on_epoch(row)`` is called with each epoch's row once it is checkpointed (progress reports).
    On a CPU it computes with ``numerics.RUN_THREADS`` threads, so its numbers do not depend on
    the machine's core count.
    """
    device = resolve_device(config.device)
    with numerics.run_threads(torch.device(device).type):
        return _fit(config, device, checkpoint, progress, tracker, on_epoch)


def _fit(config: RunConfig, device: str, checkpoint, progress: bool, tracker, on_epoch):
    keep_freed_memory()
    set_deterministic(config.deterministic)
    generator = seed_everything(config.seed)
    model = build_model(config.model, **config.model_kw).to(device)
    optimizer = make_optimizer(config, model.parameters(), device)
    train_x, train_y = data.train_split(config.dataset, config.subset, config.subset_seed, device,
                                        validation=config.validation)
    test, validation = held_out(config, device)
    steps = math.ceil(len(train_y) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, steps))
    history = History()

    ckpt = _load_checkpoint(checkpoint, config) if checkpoint and Path(checkpoint).exists() else None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        _set_rng_state(generator, ckpt["rng"])
        history.rows = ckpt["history"]

    tracker = tracker or Tracker(config, ".")
    bar = progress_bar(range(len(history.rows), config.epochs), desc=config.label(), disable=not progress,
               initial=len(history.rows), total=config.epochs, unit="epoch", leave=False)
    for epoch in bar:
        start = time.perf_counter()
        trained = train_epoch(model, optimizer, scheduler, train_x, train_y, config, generator)
        scores = scored(model, epoch + 1, config, test, validation)
        row = epoch_row(epoch + 1, trained, scores, time.perf_counter() - start)  # its test passes timed too
        history.rows.append(row)
        bar.set_postfix(test_acc=f"{row['test_acc']:.4f}")
        tracker.log(row)
        if checkpoint:
            atomic_torch_save({"key": config.key(), "model": model.state_dict(),
                               "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                               "rng": _rng_state(generator), "history": history.rows}, checkpoint)
        if on_epoch is not None:
            on_epoch(row)
    tracker.close()  # an epoch's log is flushed as it is written, so a crash loses none
    return model, history
