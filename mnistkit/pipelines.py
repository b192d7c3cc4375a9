"""What ``bench`` measures: the assignment's training pipeline and mnistkit's, an epoch of each timed,
and the quantities behind efficiency (a model's counted training FLOPs, the core's sgemm peak).

``AssignmentPipeline`` re-implements the assignment's loop faithfully (torchvision's ``MNIST``
decoding every image on access, ``DataLoader(shuffle=True)``, ``.to(device)`` per batch,
``loss.item()`` every step); ``MnistkitPipeline`` is ``trainer.train_epoch`` + ``trainer.evaluate``
on device-resident tensors. ``mnistkit.bench`` runs each in a worker process with its kernels.
"""

from __future__ import annotations

import copy
import resource
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, RandomSampler
from torch.utils.flop_counter import FlopCounterMode
from torchvision.datasets import MNIST
from torchvision.transforms import Compose, Normalize, ToTensor

from . import data, gemm, trainer
from .config import RunConfig, resolve_device
from .models import build_model

LR = 1e-3
WARMUP_BATCHES = 30
PEAK_SIZE = 2048  # the sgemm of the peak: PEAK_SIZE x PEAK_SIZE float32 matrices
PEAK_REPEATS = 3  # per measurement; measured before and after the timed epochs, the best kept
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
        data.check_available("mnist")  # verified files in place; a missing one raises DataError
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
        self.train_x, self.train_y = data.load(config.dataset, True, device)
        self.test_x, self.test_y = data.load(config.dataset, False, device)
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


def timed(pipeline, device: str) -> dict:
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


def sgemm_gflops(size: int = PEAK_SIZE, repeats: int = PEAK_REPEATS, route: bool = False) -> float:
    """GFLOP/s of the fastest of ``repeats`` float32 products of two ``size`` x ``size`` matrices on one
    thread, after one untimed product: ``torch.mm`` on this process's BLAS (torch's thread count restored
    after), or with ``route`` the product of ``gemm``'s pinned route (NumPy's OpenBLAS, Haswell kernel,
    checked first; that route keeps one thread for the process, as training does)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(size, size, generator=g), torch.rand(size, size, generator=g)
    if route:
        gemm.check()
        a, b = a.numpy(), b.numpy()
    product = gemm._matmul if route else torch.mm
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        product(a, b)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            product(a, b)
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    return 2 * size**3 / best / 1e9
