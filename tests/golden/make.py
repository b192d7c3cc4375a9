"""Write the golden numbers: ``.venv/bin/python tests/golden/make.py [runs] [smoke]``.

``runs.json``: every case of ``cases.py``. ``smoke_summary.json``: the smoke profile's summary.json
without timings, from ``./build.sh --profile smoke`` in a fresh run store. Regenerate them only when
the numbers are meant to change (``CODE_VERSION`` bumped) and commit them; never edit them by hand.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]
os.environ.setdefault("MNISTKIT_DATA", str(ROOT / "build" / "data"))

import mnistkit  # noqa: E402,F401  pins the CPU kernels first
import cases  # noqa: E402
from mnistkit import numerics  # noqa: E402


def write(name: str, values: dict) -> None:
    (HERE / name).write_text(json.dumps(values, indent=1, sort_keys=True) + "\n")
    print(f"wrote {HERE / name}")


def main(what) -> None:
    if "runs" in what:
        runs = {name: cases.compute(name) for name in [*cases.RUNS, "bovw"]}
        write("runs.json", {"numerics": numerics.fingerprint(), "runs": runs})
    if "smoke" in what:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "MNISTKIT_STORE": f"{tmp}/runs"}
            subprocess.run(["bash", "build.sh", "--profile", "smoke", "--out", f"{tmp}/report",
                            "--figures", f"{tmp}/figures"], cwd=ROOT, env=env, check=True)
            summary = json.loads(Path(f"{tmp}/figures/summary.json").read_text())
        write("smoke_summary.json", cases.numbers(summary))


if __name__ == "__main__":
    main(sys.argv[1:] or ["runs", "smoke"])
