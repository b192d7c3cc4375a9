#!/usr/bin/env bash
# The checks that need CUDA, in one call: the GPU-only tests (CUDA graph steps against eager ones,
# ensembles against single runs), the benchmark for LeNet and the ViT, and the full profile from an
# empty store through the Dask executor with both opt-in paths on (ensemble, cuda_graph; BoVW on
# the host's cores), with its wall time and peak memory. Until it has passed, both stay off by default. Run from the
# repository root on a machine with a GPU and PyTorch; MNIST is read from $MNISTKIT_DATA (default
# build/data). Results go to $OUT (default build/gpu). FULL=0 skips the full profile.
set -uo pipefail
OUT=${OUT:-build/gpu}
PY=${PY:-python3}
FULL=${FULL:-1}
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
if [ "$FULL" = 1 ]; then
  # Full profile, empty store, on the GPU (the target: 3 minutes, BoVW included); peak resident
  # memory summed over the process tree (kernel, Dask workers, BoVW workers), sampled every second.
  store=$(mktemp -d)
  start=$(date +%s)
  MNISTKIT_STORE=$store "$PY" -m papermill report.ipynb "$OUT/full.ipynb" -f parameters/full.yaml \
    -p device cuda -p ensemble True -p cuda_graph True -p jobs "$(nproc)" -p figures_dir "$OUT/figures-full" -p progress none -k python3 --cwd . \
    >"$OUT/full.log" 2>&1 &
  pm=$!
  "$PY" - "$pm" <<'PYEOF'
import sys, time, psutil  # psutil comes with distributed
root, peak = psutil.Process(int(sys.argv[1])), 0
while root.is_running() and root.status() != psutil.STATUS_ZOMBIE:
    try:
        peak = max(peak, sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]))
    except psutil.Error:
        pass
    time.sleep(1)
print(f"full profile peak RSS (process tree): {peak / 2**20:.0f} MB")
PYEOF
  wait "$pm"; rc=$?
  echo "full profile on cuda: exit $rc, $(( $(date +%s) - start )) s"
  tail -5 "$OUT/full.log"
  rm -rf "$store"
fi
