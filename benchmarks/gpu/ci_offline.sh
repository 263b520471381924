#!/usr/bin/env bash
# CI's rehearsal of the offline node (.ci/run runs it when CI_GPU_OFFLINE=1; docs/cluster.md): a wheelhouse
# for this machine's Python made by make_wheelhouse.sh (the network is used here and only here; kept in
# WHEELHOUSE, .ci-cache/ by default, between runs), a "node python" that holds the torch stack alone (a bare
# venv whose path reaches links to .venv's torch, torchvision, triton, nvidia-*, numpy, pillow,
# opencv-python-headless, setuptools and torch's own needs, and nothing else: what the lent node has), then
# benchmarks/gpu/run.sh --dry with it: every other package must come from the wheelhouse through --no-index,
# so a missing wheel or an install step that needs the network fails here, not on the node.
#
#   bash benchmarks/gpu/ci_offline.sh     # 2 cores: 2.8-3.3 min with the wheelhouse cached, 4-6 without
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC=${SRC_PYTHON:-.venv/bin/python}
py_version=$("$SRC" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
export WHEELHOUSE=${WHEELHOUSE:-$PWD/.ci-cache/wheelhouse-py$py_version}
work=${WORK:-$(mktemp -d /tmp/vid3d-offline.XXXXXX)}
t0=$(date +%s)
echo "== wheelhouse for Python $py_version: $WHEELHOUSE"
PY_VERSION=$py_version PYTHON="$SRC" bash benchmarks/gpu/make_wheelhouse.sh | tail -1
t1=$(date +%s)

echo "== node python: a bare venv + the torch stack of $SRC, nothing else"
base=$("$SRC" -c 'import sys; print(sys.base_prefix)')/bin/python3
"$base" -m venv "$work/node"
"$work/node/bin/python" -m pip uninstall -q -y setuptools  # 3.11's bundled one: the stack's is the node's
stack="$work/torch-stack"
mkdir -p "$stack"
"$SRC" - "$stack" <<'PY'
import importlib.metadata as md, os, re, sys
stack = sys.argv[1]
keep = re.compile(r"^(torch|torchvision|triton|numpy|pillow|nvidia-.*|cuda-.*|sympy|mpmath|networkx|jinja2|"
                  r"markupsafe|filelock|fsspec|typing-extensions|setuptools|opencv-python-headless)$")
for d in md.distributions():
    name = re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower()
    if not keep.match(name):
        continue
    root = d.locate_file("")
    tops = {f.parts[0] for f in d.files or [] if not f.parts[0].startswith("..")}
    for t in tops:
        src, dst = os.path.join(root, t), os.path.join(stack, t)
        if os.path.exists(src) and not os.path.lexists(dst):
            os.symlink(src, dst)
PY
site=$("$work/node/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$stack" > "$site/torch_stack.pth"
"$work/node/bin/python" -c 'import torch, torchvision; print("node python: torch", torch.__version__)'
if "$work/node/bin/python" -c 'import diffusers' 2>/dev/null; then
  echo "error: the node python sees diffusers: the rehearsal would not test the wheelhouse"; exit 1
fi

echo "== benchmarks/gpu/run.sh --dry from the wheelhouse only (--no-index)"
out="$work/out"
PYTHON="$work/node/bin/python" VENV="$work/venv" SYSTEM_SITE=0 OUTDIR="$out" BUDGET_S=${BUDGET_S:-900} \
  bash benchmarks/gpu/run.sh --dry --steps 1
"$SRC" - "$out/gpu_check.json" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
bad = {r["part"]: r.get("error") or r.get("reason") for r in rep["results"]
       if r["status"] in ("failed", "timed out")}
assert rep["dry"] and len(rep["results"]) == 8, [r["part"] for r in rep["results"]]
assert not bad, bad
att = next(r for r in rep["results"] if "within_tol" in r)
assert att["within_tol"], att["summary"]
print("offline rehearsal: every part ok or skipped with its reason")
PY
echo "== wheelhouse $(( t1 - t0 )) s, install + dry check $(( $(date +%s) - t1 )) s"
rm -rf "$work"
