"""Run a command and report the peak of its process tree's summed resident memory, sampled every second.

    .venv/bin/python tests/peak_memory.py ./build.sh --out build/x --figures build/x/figures

Prints ``peak_rss_mb=... seconds=...`` at the end; exits with the command's status.
"""

import subprocess
import sys
import time

import psutil


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def main(argv) -> int:
    start = time.perf_counter()
    child = subprocess.Popen(argv)
    proc, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        peak = max(peak, tree_rss(proc))
        time.sleep(1)
    print(f"peak_rss_mb={peak / 2**20:.0f} seconds={time.perf_counter() - start:.0f}", flush=True)
    return child.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
