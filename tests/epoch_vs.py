"""Time one epoch of the benchmark's mnistkit pipeline from two source trees, alternated.

    .venv/bin/python tests/epoch_vs.py MODEL PAIRS BEFORE AFTER [BATCHES]

BEFORE and AFTER are checkouts of mnistkit (e.g. ``git worktree add /tmp/before HEAD~1``). Each
epoch runs in a fresh process on the pinned kernels and one thread, as ``bench``'s "mnistkit"
side does (``bench._pipeline``, warmed up as there): BATCHES training batches of 64 (default:
all 60,000 images), then the test pass. The trees take turns, the order reversed every pair, so a
load from other processes hits both alike; the ratios AFTER / BEFORE, pair by pair, are the result.
"""

import json
import os
import subprocess
import sys
from statistics import median

EPOCH = """
import copy, json, mnistkit, torch
from mnistkit import bench, pipelines, trainer
torch.set_num_threads(1)
trainer.keep_freed_memory()
spec = dict(side="mnistkit", model={model!r}, batch_size=64, epochs=1, seed=0, device="cpu", limit_batches={limit})
pipeline = bench._pipeline(spec)
pipeline.epoch(copy.deepcopy(pipeline.model), pipelines.WARMUP_BATCHES)
print(json.dumps(pipelines.timed(pipeline, "cpu")))
"""


def epoch(tree: str, model: str, limit) -> dict:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
    env.pop("MNISTKIT_KERNELS", None)  # pinned, whatever this shell says
    done = subprocess.run([sys.executable, "-c", EPOCH.format(model=model, limit=limit)], env=env, cwd=tree,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(model: str, pairs: str, before: str, after: str, batches: str | None = None) -> None:
    limit = int(batches) if batches else None
    times = {before: [], after: []}
    for i in range(int(pairs)):
        for tree in (before, after) if i % 2 == 0 else (after, before):
            row = epoch(tree, model, limit)
            times[tree].append(row)
            print(f"{tree}: {row['seconds']:.2f} s (training {row['train_seconds']:.2f} s), test accuracy {row['acc']}",
                  flush=True)
    for key, name in (("seconds", "epoch"), ("train_seconds", "training pass")):
        ratios = [b[key] / a[key] for a, b in zip(times[before], times[after])]
        print(f"{name}, after / before: median {median(ratios):.3f} (pairs: {', '.join(f'{r:.3f}' for r in ratios)})")


if __name__ == "__main__":
    main(*sys.argv[1:])
