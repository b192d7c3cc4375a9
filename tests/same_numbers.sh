#!/usr/bin/env bash
# The smoke profile three ways, each from an empty run store: one training process, two, and two
# confined to one core. Each summary.json must equal tests/golden/smoke_summary.json in every number.
#   bash tests/same_numbers.sh            (about 3 smoke builds' time; exit status 1 on a difference)
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for way in "jobs1:--jobs 1" "jobs2:--jobs 2" "one-core:--jobs 2 taskset"; do
  name=${way%%:*}
  opts=${way#*:}
  run=(./build.sh --profile smoke --out "$tmp/$name" --figures "$tmp/$name/figures" ${opts% taskset})
  [[ $opts == *taskset ]] && run=(taskset -c 0 "${run[@]}")
  MNISTKIT_STORE=$tmp/$name/runs "${run[@]}" >"$tmp/$name.log" 2>&1 || { echo "$name: build failed"; tail "$tmp/$name.log"; exit 1; }
  .venv/bin/python - "$tmp/$name/figures/summary.json" "$name" <<'PY' || status=1
import json, sys
sys.path.insert(0, "tests/golden")
import cases
golden = json.load(open("tests/golden/smoke_summary.json"))
diff = cases.differences(golden, cases.numbers(json.load(open(sys.argv[1]))))
print(f"{sys.argv[2]}: " + ("equal to the golden smoke summary" if not diff else f"{len(diff)} differences"))
print("\n".join(diff))
sys.exit(1 if diff else 0)
PY
done
exit $status
