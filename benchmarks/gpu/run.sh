#!/usr/bin/env bash
# The GPU check as one command on an offline GPU node (docs/cluster.md): a venv over the node's own torch
# (--system-site-packages), vid3d and the wheelhouse's packages installed with --no-index (DeepSpeed built
# from its sdist with DS_BUILD_OPS=0 against the node's torch), then benchmarks/gpu_check.py under what is
# left of one wall-clock budget. Every table and JSON goes to one folder.
#
#   bash benchmarks/gpu/run.sh                   # on the node, from the repository root
#   bash benchmarks/gpu/run.sh --dry             # CPU, tiny shapes (CI); other flags go to gpu_check.py
#
# Settings (environment): WHEELHOUSE (wheelhouse/, made by make_wheelhouse.sh), OUTDIR (default $OUT if set,
# else benchmarks/results/gpu-<UTC date-time>), BUDGET_S (480: install + check), PYTHON (the node's python
# with torch: python3), VENV (/tmp/vid3d-gpu-venv; reused when present), SYSTEM_SITE (1: the venv gets
# --system-site-packages; ci_offline.sh sets 0 so that the CI machine's base python cannot mask a missing wheel).
# Output: gpu_check.md/.json (every part), attention.md/.json, parts.tar.gz (each training configuration's
# JSON), install.log, run.log, env.txt — 8 files, what the lent machine hands back at most.
set -uo pipefail  # not -e: the check's own exit status is reported, its folder packed
cd "$(dirname "$0")/../.."
t0=$(date +%s)
BUDGET_S=${BUDGET_S:-480}
WHEELHOUSE=$(realpath -m "${WHEELHOUSE:-wheelhouse}")
OUTDIR=${OUTDIR:-${OUT:-benchmarks/results/gpu-$(date -u +%Y%m%d-%H%M)}}
PYTHON=${PYTHON:-python3}
VENV=${VENV:-/tmp/vid3d-gpu-venv}
mkdir -p "$OUTDIR"
OUTDIR=$(realpath "$OUTDIR")
log() { echo "[run.sh +$(( $(date +%s) - t0 ))s] $*"; }
die() { echo "error: $*" >&2; exit 1; }

[ -f "$WHEELHOUSE/SHA256SUMS" ] || die "$WHEELHOUSE/SHA256SUMS missing: make the wheelhouse where PyPI is" \
  "reachable (bash benchmarks/gpu/make_wheelhouse.sh) and copy it beside the tree"
(cd "$WHEELHOUSE" && sha256sum --quiet -c SHA256SUMS) || die "$WHEELHOUSE: a file does not match SHA256SUMS"
# what the node must have (too big to carry: its own CUDA builds, or ~50 MiB for opencv-python-headless)
for m in torch torchvision numpy PIL cv2; do
  "$PYTHON" -c "import $m" 2>/dev/null || die "$PYTHON cannot import $m (the node must provide torch," \
    "torchvision, numpy, pillow, opencv-python-headless): set PYTHON to the node's python"
done

# only the wheelhouse: no pip configuration of this machine (extra indexes, find-links, constraints)
for v in $(compgen -e | grep '^PIP_' || true); do unset "$v"; done
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1

log "venv $VENV over $("$PYTHON" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__)')"
step() {  # step DESCRIPTION COMMAND...: run it into install.log; stop the script if it fails
  echo "== $1" >> "$OUTDIR/install.log"
  "${@:2}" >> "$OUTDIR/install.log" 2>&1 && return 0
  tail -25 "$OUTDIR/install.log"
  die "install step failed: $1 (whole log: $OUTDIR/install.log)"
}
: > "$OUTDIR/install.log"
if [ ! -x "$VENV/bin/python" ]; then
  step "venv" "$PYTHON" -m venv $([ "${SYSTEM_SITE:-1}" = 1 ] && echo --system-site-packages) "$VENV"
  # --system-site-packages reaches the *base* interpreter's packages only; where $PYTHON is itself a venv
  # (the lent node's python3 is /opt/torch/.venv/bin/python3) its torch is elsewhere: every non-stdlib
  # folder on $PYTHON's sys.path goes on the new venv's path too (after its own site-packages)
  site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  "$PYTHON" -c 'import os, sys, sysconfig
std = os.path.realpath(sysconfig.get_paths()["stdlib"])
for p in sys.path:
    r = os.path.realpath(p) if p else ""
    if r and os.path.isdir(r) and not (r == std or r.startswith(std + os.sep)) and not r.endswith("lib-dynload"):
        print(r)' > "$site/_node_site.pth"
  # Python < 3.12 venvs bring their own old setuptools; the node's (torch needs a recent one) must win
  if "$PYTHON" -c "import setuptools" 2>/dev/null && [ -d "$site/setuptools" ]; then
    step "the venv's own setuptools out (the node's is used)" "$VENV/bin/python" -m pip uninstall -y -q setuptools
  fi
fi
pip=("$VENV/bin/python" -m pip install -q --no-index --find-links "$WHEELHOUSE" --no-cache-dir)
step "packages from the wheelhouse" "${pip[@]}" -r benchmarks/gpu/requirements.txt
# DeepSpeed: source only; built against the node's torch, none of its CUDA ops compiled ahead
step "DeepSpeed from its sdist (DS_BUILD_OPS=0)" env DS_BUILD_OPS=0 "${pip[@]}" --no-build-isolation --no-deps \
  "$WHEELHOUSE"/deepspeed-*.tar.gz
step "vid3d (editable, no deps)" "${pip[@]}" --no-build-isolation --no-deps -e .
step "imports" "$VENV/bin/python" -c \
  "import diffusers, transformers, hydra, omegaconf, lightning, torchmetrics, deepspeed, roma, jaxtyping, vid3d"
{ "$VENV/bin/python" -m pip freeze; nvidia-smi 2>/dev/null || echo "no nvidia-smi"; } > "$OUTDIR/env.txt" 2>&1
left=$(( BUDGET_S - ($(date +%s) - t0) ))
log "installed; $left s left for the check"
[ "$left" -gt 30 ] || die "install took the whole budget of $BUDGET_S s"
# the check keeps 20 s for its last report; `timeout` is the hard stop if a part ignores its own limit
timeout --kill-after=10 "$left" env PYTHONUNBUFFERED=1 WANDB_MODE=offline \
  "$VENV/bin/python" -m benchmarks.gpu_check --out "$OUTDIR" --budget-s $(( left - 20 )) "$@" 2>&1 \
  | tee "$OUTDIR/run.log"
rc=${PIPESTATUS[0]}
[ "$rc" = 124 ] || [ "$rc" = 137 ] && log "stopped at the budget: gpu_check.md holds every part that ended"
if [ -d "$OUTDIR/parts" ]; then tar czf "$OUTDIR/parts.tar.gz" -C "$OUTDIR" parts && rm -rf "$OUTDIR/parts"; fi
log "done (rc $rc): $OUTDIR"
ls "$OUTDIR"
exit "$rc"
