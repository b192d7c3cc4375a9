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
(``MKL_CBWR=COMPATIBLE``) is reported beside it. The ceiling is the same product through the pinned
route of ``gemm`` (NumPy's OpenBLAS, Haswell kernel), measured in the pinned worker: the fastest
sgemm that gives the same bits on every vendor's CPU, so "of ceiling" says how much of what the
pins allow a side uses. The test pass is excluded from efficiency and
images/s, and included in seconds per epoch. ``args.out`` (``build/bench.json``) keeps the
machine, versions, every worker's kernels, the counted FLOPs per operator and every epoch's timing.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

import torch

from . import data, gemm, numerics, trainer
from .config import RunConfig, device_name, resolve_device
from .errors import ConfigError, DataError, KernelError
from .files import atomic_write_text
from .pipelines import (PEAK_SIZE, WARMUP_BATCHES, AssignmentPipeline, MnistkitPipeline, sgemm_gflops, timed,
                        training_flops)
from .progress import bar as progress_bar

# The sides: name -> (pipeline, kernels). The parent alternates them in this order (reversed every other epoch).
SIDES = {"assignment": ("assignment", "native"), "mnistkit": ("mnistkit", "pinned"),
         "mnistkit_native": ("mnistkit", "native")}


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
        x, y = data.load("mnist", True)
        flops, per_op = training_flops(pipeline.model, x[: spec["batch_size"]], y[: spec["batch_size"]])
        send({"kernels": numerics.fingerprint(), "threads": torch.get_num_threads(), "flops_per_image": flops,
              "flops_per_batch_by_op": per_op})
        for line in sys.stdin:
            command = line.strip()
            if command == "epoch":
                send(timed(pipeline, spec["device"]))
            elif command == "peak":  # the pinned worker also measures the route's ceiling
                ceiling = sgemm_gflops(spec["peak_size"], route=True) if gemm.active() else None
                send({"gflops": sgemm_gflops(spec["peak_size"]), "ceiling": ceiling})
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
        peaks, ceilings = {w.side: [] for w in workers}, []

        def measure_peaks():
            for w in workers:
                reply = w.ask("peak")
                peaks[w.side].append(reply["gflops"])
                ceilings.extend([reply["ceiling"]] if reply["ceiling"] else [])

        if cpu:
            measure_peaks()
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
            measure_peaks()
        failed = False
    finally:
        for w in workers:
            w.close(kill=failed)

    peak = {k: max((max(peaks[s]) for s, (_, kernels) in SIDES.items() if kernels == k), default=None)
            for k in ("native", "pinned")} if cpu else {"native": None, "pinned": None}
    peak["ceiling"] = max(ceilings, default=None)
    summary = {}
    for name, rows in timings.items():
        train_s = sum(r["train_seconds"] for r in rows)
        images_per_s = sum(r["train_images"] for r in rows) / train_s
        flops = ready[name]["flops_per_image"]
        summary[name] = {"s": sum(r["seconds"] for r in rows) / len(rows), "train_s": train_s / len(rows),
                         "images_per_s": images_per_s, "peak_mb": max(r["peak_mb"] for r in rows),
                         "acc": rows[-1]["acc"], "flops_per_image": flops,
                         "efficiency": images_per_s * flops / (peak["native"] * 1e9 * threads) if cpu else None,
                         "efficiency_ceiling": (images_per_s * flops / (peak["ceiling"] * 1e9 * threads)
                                                if peak["ceiling"] else None)}
    ratio = summary["assignment"]["s"] / summary["mnistkit"]["s"]
    pinned_over_native = summary["mnistkit"]["s"] / summary["mnistkit_native"]["s"]
    if progress:
        print(table(summary, timings, peak, threads))
    if out:
        record = {"device": device, "device_name": device_name(device), "torch": torch.__version__,
                  "threads": threads, "kernels": {s: r["kernels"] for s, r in ready.items()}, "model": model,
                  "batch_size": batch_size, "epochs": epochs, "seed": seed, "limit_batches": limit_batches,
                  "warmup_batches": warm, "ratio": ratio, "pinned_over_native": pinned_over_native,
                  "peak_gflops": {**peak, "size": peak_size, "threads": 1, "measured": peaks,
                                  "ceiling_measured": ceilings},
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
                      "efficiency": summary["mnistkit"]["efficiency"], "ceiling_gflops": peak["ceiling"],
                      "efficiency_ceiling": summary["mnistkit"]["efficiency_ceiling"],
                      "efficiency_native": summary["mnistkit_native"]["efficiency"],
                      "efficiency_assignment": summary["assignment"]["efficiency"]})
    pairs.update({"device": device, "model": model, "batch_size": batch_size, "epochs": epochs, "threads": threads})
    return pairs


LABELS = {"assignment": "assignment (native)", "mnistkit": "mnistkit (pinned)", "mnistkit_native": "mnistkit (native)"}


def table(summary: dict, timings: dict, peak: dict, threads: int) -> str:
    """The human-readable result: one row per side, then the ratios (with each epoch's) and the efficiency."""
    lines = [f"{'side':<22}{'s/epoch':>9}{'train s':>9}{'train img/s':>13}{'peak MB':>9}{'test acc':>10}"
             f"{'efficiency':>12}{'of ceiling':>12}"]
    for name, s in summary.items():
        eff, ceil = ("-" if v is None else f"{v:.1%}" for v in (s["efficiency"], s["efficiency_ceiling"]))
        lines.append(f"{LABELS[name]:<22}{s['s']:>9.2f}{s['train_s']:>9.2f}{s['images_per_s']:>13,.0f}"
                     f"{s['peak_mb']:>9,.0f}{s['acc']:>10.4f}{eff:>12}{ceil:>12}")

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
    if peak.get("ceiling"):
        lines.append(f"ceiling: the pinned route's sgemm (OpenBLAS, Haswell kernel, 1 thread), {peak['ceiling']:.1f} "
                     f"GFLOP/s, the fastest product that gives the same bits on every vendor; "
                     f"of ceiling = train img/s x FLOPs per image / ({threads} x ceiling)")
    return "\n".join(lines)


def main(args) -> dict:
    """The ``bench`` command: ``run`` with the command line's arguments; returns its key=value pairs.

    ``args.limit_batches`` (not on the command line; for tests) limits every epoch's batches.
    """
    return run(model=args.model, batch_size=args.batch_size, epochs=args.epochs, device=args.device,
               seed=args.seed, out=args.out, progress=not args.quiet,
               limit_batches=getattr(args, "limit_batches", None), threads=getattr(args, "threads", None),
               peak_size=getattr(args, "peak_size", PEAK_SIZE))
