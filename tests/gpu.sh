#!/usr/bin/env bash
# The checks that need CUDA, in one call: the GPU-only tests, then the benchmark for LeNet and the
# ViT. Run from the repository root on a machine with a GPU and PyTorch; MNIST is read from
# $MNISTKIT_DATA (default build/data). Results go to $OUT (default build/gpu).
set -uo pipefail
OUT=${OUT:-build/gpu}
PY=${PY:-python3}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
"$PY" -m pytest -q -p no:cacheprovider -m gpu tests/ 2>&1 | tail -15
"$PY" -m pytest -q -p no:cacheprovider tests/test_trainer.py 2>&1 | tail -3
for model in lenet vit; do
  "$PY" -m mnistkit bench --model "$model" --device cuda --epochs 3 --quiet --out "$OUT/bench-$model.json" 2>&1 | tail -12
done
# The same on the CPU cores of that machine, for the ratio of a GPU to its host.
"$PY" -m mnistkit bench --model lenet --device cpu --epochs 1 --quiet --out "$OUT/bench-lenet-cpu.json" 2>&1 | tail -3
