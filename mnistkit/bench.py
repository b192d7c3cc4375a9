"""``python -m mnistkit bench``: the assignment's training pipeline against mnistkit's, side by side.

It measures the wall time of one "epoch" (one training pass over the 60,000 training images plus
one pass over the 10,000 test images) for three sides with the same model, loss (cross-entropy),
optimizer (Adam, lr 1e-3), batch size and seed:

* ``assignment``: the assignment's code, re-implemented faithfully: torchvision's ``MNIST`` decoding and
  normalizing every image on access (``ToTensor`` + ``Normalize((0.5,), (0.5,))``),
  ``DataLoader(shuffle=True)``, each batch moved with ``.to(device)``, ``loss.item()`` after every
  step, and a test loop under ``torch.no_grad()`` with the same batch size and ``.item()`` sums.
  For the ViT it uses the assignment's model, ``AssignmentViT``, built from PyTorch's
  ``nn.TransformerEncoder``; ``mnistkit.models.ViT`` has the same parameters, initial values
  and mathematics, with a faster CPU dropout mask. It runs on each library's native kernels, as
  the assignment's users ran it.
* ``mnistkit``: ``trainer.train_epoch`` + ``trainer.evaluate`` on the normalized tensors of
  ``mnistkit.data``, held on the device, on the pinned kernels of ``mnistkit.numerics`` (what every
  stored run computes with).
* ``mnistkit_native``: the same with ``MNISTKIT_KERNELS=native`` (each library's fastest path).

Kernels are chosen per process when torch starts, so each side runs in a worker process of its
own (``worker``: ``subprocess`` with the side's environment, JSON lines on its stdin and stdout),
on ``threads`` intra-op threads (default ``numerics.RUN_THREADS``, one). Each worker builds its
pipeline and warms it up on a throw-away copy of the model; then the parent asks the workers for
one epoch at a time, in turn, the order reversed every epoch, while the others wait idle, so a
load from other processes hits all sides alike: the ratios of their times are the result (from
the same alternation); the seconds are context. Reported per side: seconds per epoch, training
images per second (the training pass alone), the worker's peak memory during its epochs (its
peak resident set on CPU, ``torch.cuda.max_memory_allocated`` on CUDA) and the test accuracy
after the last epoch.

Efficiency (on CPU): training images/s x FLOPs per training image / (sgemm peak x threads).
FLOPs per image are counted by ``torch.utils.flop_counter.FlopCounterMode`` over one forward and
backward pass of a batch (on the CPU, in training mode), divided by the batch size: matrix
products and convolutions only (mm, addmm, bmm, convolution and their backward; not pooling,
activations, norms, softmax, dropout, the loss or the optimizer). The peak is one 2048 x 2048
float32 ``torch.mm`` on one thread, best of a few repeats before and after the timed epochs, in
the native workers (the core's own fastest sgemm, MKL's here); the pinned worker's sgemm
(``MKL_CBWR=COMPATIBLE``) is reported beside it. The test pass is excluded from efficiency and
images/s, and included in seconds per epoch. ``args.out`` (``build/bench.json``) keeps the
machine, versions, every worker's kernels, the counted FLOPs per operator and every epoch's timing.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, RandomSampler
from torch.utils.flop_counter import FlopCounterMode
from torchvision.datasets import MNIST
from torchvision.transforms import Compose, Normalize, ToTensor

from . import data, gemm, numerics, trainer
from .config import RunConfig, device_name, resolve_device
from .errors import ConfigError, DataError, KernelError
from .files import atomic_write_text
from .models import build_model
from .progress import bar as progress_bar

LR = 1e-3
WARMUP_BATCHES = 30
PEAK_SIZE = 2048  # the sgemm of the peak: PEAK_SIZE x PEAK_SIZE float32 matrices
PEAK_REPEATS = 3  # per measurement; measured before and after the timed epochs, the best kept
# The sides: name -> (pipeline, kernels). The parent alternates them in this order (reversed every other epoch).
SIDES = {"assignment": ("assignment", "native"), "mnistkit": ("mnistkit", "pinned"),
         "mnistkit_native": ("mnistkit", "native")}


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
        seen = self.train(model, limit)
        acc, total = self.test(model, limit)
        return acc, seen + total

    def train(self, model=None, limit=None) -> int:
        """The training pass of ``epoch``; returns the number of training images."""
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
        return seen

    def test(self, model=None, limit=None) -> tuple[float, int]:
        """The test pass of ``epoch``; returns (test accuracy, test images)."""
        if model is None:
            model, limit = self.model, self.limit
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
        return correct / total, total


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
        seen = self.train(model, limit)
        acc, total = self.test(model, limit)
        return acc, seen + total

    def train(self, model=None, limit=None) -> int:
        """The training pass of ``epoch``; returns the number of training images."""
        x, y = self.train_x, self.train_y
        optimizer, scheduler, generator = self.optimizer, self.scheduler, self.generator
        if model is not None:
            n = limit * self.config.batch_size
            x, y = x[:n], y[:n]
            optimizer = trainer.make_optimizer(self.config, model.parameters(), self.config.device)
            scheduler = self._scheduler(optimizer, n)
            generator = torch.Generator().manual_seed(self.config.seed)
        model = self.model if model is None else model
        trainer.train_epoch(model, optimizer, scheduler, x, y, self.config, generator)
        return len(y)

    def test(self, model=None, limit=None) -> tuple[float, int]:
        """The test pass of ``epoch``; returns (test accuracy, test images)."""
        tx, ty = self.test_x, self.test_y
        if model is not None:
            n = limit * self.config.batch_size
            tx, ty = tx[:n], ty[:n]
        model = self.model if model is None else model
        return trainer.evaluate(model, tx, ty)["test_acc"], len(ty)


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


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _timed(pipeline, device: str) -> dict:
    """One epoch of ``pipeline``: its seconds (the training pass's apart; GPU work included), test
    accuracy, images (training images apart) and peak MB."""
    _reset_peak(device)
    start = time.perf_counter()
    train_images = pipeline.train()
    _sync(device)
    middle = time.perf_counter()
    acc, test_images = pipeline.test()
    _sync(device)
    end = time.perf_counter()
    return {"seconds": end - start, "train_seconds": middle - start, "acc": acc,
            "images": train_images + test_images, "train_images": train_images, "peak_mb": _peak_mb(device)}


def training_flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, dict]:
    """FLOPs per image of one training step of ``model`` on the batch ``(x, y)``, and the counts per operator.

    ``FlopCounterMode`` over forward, cross-entropy and backward on a CPU copy of the model in training
    mode (its parameters' gradients and the global random state left alone), divided by the batch
    size. It counts matrix products and convolutions (2 FLOPs a multiply-add), forward and backward,
    and nothing else: no pooling, activation, norm, softmax, dropout, loss or optimizer step.
    """
    model = copy.deepcopy(model).cpu().train()
    with torch.random.fork_rng(devices=[]), gemm.plain(), FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    per_op = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    return counter.get_total_flops() / len(y), per_op


def sgemm_gflops(size: int = PEAK_SIZE, repeats: int = PEAK_REPEATS) -> float:
    """GFLOP/s of the fastest of ``repeats`` float32 ``torch.mm`` of two ``size`` x ``size`` matrices on one
    thread, on this process's BLAS (after one untimed product; the thread count is restored after)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(size, size, generator=g), torch.rand(size, size, generator=g)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.mm(a, b)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    return 2 * size**3 / best / 1e9


def _pipeline(spec: dict):
    kind, _ = SIDES[spec["side"]]
    if kind == "assignment":
        return AssignmentPipeline(spec["model"], spec["batch_size"], spec["seed"], spec["device"],
                                  spec["limit_batches"])
    config = RunConfig(model=spec["model"], batch_size=spec["batch_size"], epochs=spec["epochs"], seed=spec["seed"],
                       device=spec["device"])
    return MnistkitPipeline(config, spec["limit_batches"])


def worker() -> None:
    """A worker process (``Worker`` starts it): builds one side's pipeline from the JSON spec in ``sys.argv[1]``,
    warms it up, counts its FLOPs, then answers one JSON line on stdout for each line on stdin ("epoch",
    "peak") until stdin closes. Anything else it prints goes to stderr."""
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def send(message: dict) -> None:
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    try:
        spec = json.loads(sys.argv[1])
        torch.set_num_threads(spec["threads"])
        trainer.keep_freed_memory()
        pipeline = _pipeline(spec)
        pipeline.epoch(copy.deepcopy(pipeline.model), spec["warmup_batches"])
        x, y = data.load(True)
        flops, per_op = training_flops(pipeline.model, x[: spec["batch_size"]], y[: spec["batch_size"]])
        send({"kernels": numerics.fingerprint(), "threads": torch.get_num_threads(), "flops_per_image": flops,
              "flops_per_batch_by_op": per_op})
        for line in sys.stdin:
            command = line.strip()
            if command == "epoch":
                send(_timed(pipeline, spec["device"]))
            elif command == "peak":
                send({"gflops": sgemm_gflops(spec["peak_size"])})
            else:
                raise ValueError(f"unknown command {command!r}")
    except Exception as err:  # reported to the parent, which raises it there
        send({"error": type(err).__name__, "message": str(err), "traceback": traceback.format_exc()})


def side_env(kernels: str) -> dict:
    """This process's environment for a worker on ``kernels`` ("pinned" or "native"): every pin and
    ``MNISTKIT_KERNELS`` removed, then ``MNISTKIT_KERNELS=native`` for native (a pinned worker sets the
    pins itself when it imports ``mnistkit``, before torch)."""
    names = {*numerics.PINS, *numerics.AVX512_PINS, "MNISTKIT_KERNELS"}
    env = {k: v for k, v in os.environ.items() if k not in names}
    if kernels == "native":
        env["MNISTKIT_KERNELS"] = "native"
    return env


class Worker:
    """The parent's handle on one side's worker process."""

    def __init__(self, spec: dict):
        self.side = spec["side"]
        root = str(Path(__file__).resolve().parent.parent)
        env = side_env(SIDES[self.side][1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen([sys.executable, "-c", "from mnistkit import bench; bench.worker()",
                                         json.dumps(spec)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        env=env, text=True, bufsize=1)

    def receive(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"bench worker {self.side!r} exited ({self.process.wait()}) without an answer")
        reply = json.loads(line)
        if "error" in reply:
            if reply["error"] in ("DataError", "KernelError"):  # one line for the command to print
                raise {"DataError": DataError, "KernelError": KernelError}[reply["error"]](reply["message"])
            raise RuntimeError(f"bench worker {self.side!r} failed:\n{reply['traceback']}")
        return reply

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.receive()

    def close(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


def run(model: str = "lenet", batch_size: int = 64, epochs: int = 2, device: str = "auto", seed: int = 0,
        out: str | Path | None = "build/bench.json", progress: bool = True, limit_batches: int | None = None,
        warmup_batches: int = WARMUP_BATCHES, threads: int | None = None, peak_size: int = PEAK_SIZE) -> dict:
    """Time the three sides for ``epochs`` epochs each, in worker processes; returns the summary pairs (see ``main``).

    ``limit_batches`` (for tests) cuts every epoch to that many training and test batches;
    ``threads`` is each worker's intra-op thread count (default ``numerics.RUN_THREADS``);
    ``peak_size`` (for tests) the sgemm of the peak. Bad arguments raise ``ConfigError`` before any work.
    """
    config = RunConfig(model=model, batch_size=batch_size, epochs=epochs, seed=seed, device=device)
    if limit_batches is not None and (isinstance(limit_batches, bool) or not isinstance(limit_batches, int)
                                      or limit_batches < 1):
        raise ConfigError("limit_batches", limit_batches, "must be an integer >= 1, or None for whole epochs")
    threads = numerics.RUN_THREADS if threads is None else threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError("threads", threads, "must be an integer >= 1")
    device = resolve_device(device)
    config = config.replace(device=device)
    cpu = torch.device(device).type == "cpu"
    warm = min(warmup_batches, limit_batches or warmup_batches)
    spec = {"model": model, "batch_size": batch_size, "epochs": epochs, "seed": seed, "device": device,
            "limit_batches": limit_batches, "warmup_batches": warm, "threads": threads, "peak_size": peak_size}

    workers, failed = [], True
    try:
        workers = [Worker({**spec, "side": side}) for side in SIDES]  # they build and warm up at once
        ready = {w.side: w.receive() for w in workers}
        peaks = {w.side: [] for w in workers}
        if cpu:
            for w in workers:
                peaks[w.side].append(w.ask("peak")["gflops"])
        timings = {w.side: [] for w in workers}
        bar = progress_bar(total=len(workers) * epochs, desc=f"bench {model}", unit="epoch", disable=not progress,
                           leave=False)
        for e in range(epochs):
            for w in workers if e % 2 == 0 else workers[::-1]:
                timings[w.side].append(w.ask("epoch"))
                bar.set_postfix({w.side: f"{timings[w.side][-1]['seconds']:.2f}s"})
                bar.update()
        bar.close()
        if cpu:
            for w in workers:
                peaks[w.side].append(w.ask("peak")["gflops"])
        failed = False
    finally:
        for w in workers:
            w.close(kill=failed)

    peak = {k: max((max(peaks[s]) for s, (_, kernels) in SIDES.items() if kernels == k), default=None)
            for k in ("native", "pinned")} if cpu else {"native": None, "pinned": None}
    summary = {}
    for name, rows in timings.items():
        train_s = sum(r["train_seconds"] for r in rows)
        images_per_s = sum(r["train_images"] for r in rows) / train_s
        flops = ready[name]["flops_per_image"]
        summary[name] = {"s": sum(r["seconds"] for r in rows) / len(rows), "train_s": train_s / len(rows),
                         "images_per_s": images_per_s, "peak_mb": max(r["peak_mb"] for r in rows),
                         "acc": rows[-1]["acc"], "flops_per_image": flops,
                         "efficiency": images_per_s * flops / (peak["native"] * 1e9 * threads) if cpu else None}
    ratio = summary["assignment"]["s"] / summary["mnistkit"]["s"]
    pinned_over_native = summary["mnistkit"]["s"] / summary["mnistkit_native"]["s"]
    if progress:
        print(table(summary, timings, peak, threads))
    if out:
        record = {"device": device, "device_name": device_name(device), "torch": torch.__version__,
                  "threads": threads, "kernels": {s: r["kernels"] for s, r in ready.items()}, "model": model,
                  "batch_size": batch_size, "epochs": epochs, "seed": seed, "limit_batches": limit_batches,
                  "warmup_batches": warm, "ratio": ratio, "pinned_over_native": pinned_over_native,
                  "peak_gflops": {**peak, "size": peak_size, "threads": 1, "measured": peaks},
                  "flops_per_batch_by_op": {s: r["flops_per_batch_by_op"] for s, r in ready.items()},
                  "summary": summary, "epochs_timed": timings}
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(out), json.dumps(record, indent=2) + "\n")
    pairs = {"ratio": ratio, "pinned_over_native": pinned_over_native}
    for name, s in summary.items():
        pairs.update({f"{name}_s": s["s"], f"{name}_images_per_s": s["images_per_s"], f"{name}_acc": s["acc"],
                      f"{name}_peak_mb": s["peak_mb"]})
    pairs["flops_per_image"] = summary["mnistkit"]["flops_per_image"]
    if cpu:
        pairs.update({"peak_gflops": peak["native"], "peak_gflops_pinned": peak["pinned"],
                      "efficiency": summary["mnistkit"]["efficiency"],
                      "efficiency_native": summary["mnistkit_native"]["efficiency"],
                      "efficiency_assignment": summary["assignment"]["efficiency"]})
    pairs.update({"device": device, "model": model, "batch_size": batch_size, "epochs": epochs, "threads": threads})
    return pairs


LABELS = {"assignment": "assignment (native)", "mnistkit": "mnistkit (pinned)", "mnistkit_native": "mnistkit (native)"}


def table(summary: dict, timings: dict, peak: dict, threads: int) -> str:
    """The human-readable result: one row per side, then the ratios (with each epoch's) and the efficiency."""
    lines = [f"{'side':<22}{'s/epoch':>9}{'train s':>9}{'train img/s':>13}{'peak MB':>9}{'test acc':>10}"
             f"{'efficiency':>12}"]
    for name, s in summary.items():
        eff = "-" if s["efficiency"] is None else f"{s['efficiency']:.1%}"
        lines.append(f"{LABELS[name]:<22}{s['s']:>9.2f}{s['train_s']:>9.2f}{s['images_per_s']:>13,.0f}"
                     f"{s['peak_mb']:>9,.0f}{s['acc']:>10.4f}{eff:>12}")

    def per_epoch(a, b):
        return ", ".join(f"{x['seconds'] / y['seconds']:.2f}" for x, y in zip(timings[a], timings[b]))

    lines.append("ratio assignment (native) / mnistkit (pinned): "
                 f"{summary['assignment']['s'] / summary['mnistkit']['s']:.2f}"
                 f" (per epoch: {per_epoch('assignment', 'mnistkit')})")
    lines.append(f"ratio mnistkit pinned / native: {summary['mnistkit']['s'] / summary['mnistkit_native']['s']:.2f}"
                 f" (per epoch: {per_epoch('mnistkit', 'mnistkit_native')})")
    flops = summary["mnistkit"]["flops_per_image"]
    lines.append(f"training FLOPs per image (matmul + conv, forward + backward): {flops / 1e6:.3f} M")
    if peak["native"] is not None:
        lines.append(f"sgemm peak, 1 thread, fp32: {peak['native']:.1f} GFLOP/s native, {peak['pinned']:.1f} pinned; "
                     f"efficiency = train img/s x FLOPs per image / ({threads} x native peak), test pass excluded")
    return "\n".join(lines)


def main(args) -> dict:
    """The ``bench`` command: ``run`` with the command line's arguments; returns its key=value pairs.

    ``args.limit_batches`` (not on the command line; for tests) limits every epoch's batches.
    """
    return run(model=args.model, batch_size=args.batch_size, epochs=args.epochs, device=args.device,
               seed=args.seed, out=args.out, progress=not args.quiet,
               limit_batches=getattr(args, "limit_batches", None), threads=getattr(args, "threads", None),
               peak_size=getattr(args, "peak_size", PEAK_SIZE))
