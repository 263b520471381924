#!/usr/bin/env bash
# Wheels an offline GPU node installs vid3d's GPU check from (benchmarks/gpu/run.sh), made where PyPI is
# reachable. Everything vid3d's check imports beyond the node's own torch stack (torch, torchvision, triton,
# nvidia-*/cuda-*, numpy, pillow, opencv-python-headless (~50 MiB) and torch's own pure-Python needs are NOT
# downloaded: the node's are used, run.sh checks they import), for the node's Python, plus
# DeepSpeed's source distribution (built on the node with DS_BUILD_OPS=0 against its torch) and the wheels
# of the pure-Python packages PyPI only has as source (antlr4-python3-runtime, omegaconf's parser), built here.
#
#   bash benchmarks/gpu/make_wheelhouse.sh                      # Python 3.12, manylinux x86_64 -> wheelhouse/
#   PY_VERSION=3.11 WHEELHOUSE=/tmp/wh bash benchmarks/gpu/make_wheelhouse.sh
#
# Settings (environment): PY_VERSION (3.12), PLATFORMS (manylinux x86_64 tags, newest first), WHEELHOUSE
# (wheelhouse/, git-ignored), PYTHON (the python whose pip downloads: .venv/bin/python, else python3),
# LIMIT_MB (64 MiB, what the node takes of tree + untracked files, less the tracked tree and 4 MiB to spare).
# Prints each file's size and sha256 and the total; writes SHA256SUMS; fails over LIMIT_MB. Reruns reuse
# files already there (pip download skips them).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY_VERSION=${PY_VERSION:-3.12}
PLATFORMS=${PLATFORMS:-"manylinux_2_39_x86_64 manylinux_2_35_x86_64 manylinux_2_34_x86_64 manylinux_2_31_x86_64 manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64"}
WHEELHOUSE=${WHEELHOUSE:-wheelhouse}
tree_bytes=$( (git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1) 2>/dev/null || true)
tree_mib=$(( (${tree_bytes:-16777216} + 1048575) / 1048576 ))  # no git: assume 16 MiB
LIMIT_MB=${LIMIT_MB:-$(( 64 - tree_mib - 4 ))}
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# What the check needs (top level; their dependencies are resolved below): benchmarks/gpu/requirements.txt
mapfile -t REQS < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' benchmarks/gpu/requirements.txt | grep -v '^$')
DEEPSPEED=${DEEPSPEED:-"deepspeed>=0.19.8"}
# provided by the node (its CUDA torch stack): never carried
SKIP_RE='^(torch|torchvision|torchaudio|triton|numpy|pillow|opencv-python-headless|nvidia-.*|cuda-.*|setuptools|pip|wheel'
SKIP_RE+='|sympy|mpmath|networkx|jinja2|markupsafe|filelock|fsspec|typing-extensions)$'  # torch's own needs

mkdir -p "$WHEELHOUSE"
tags=(--python-version "$PY_VERSION" --implementation cp --abi "cp${PY_VERSION/./}" --abi abi3 --abi none)
for p in $PLATFORMS; do tags+=(--platform "$p"); done
tags+=(--platform any)

report=$(mktemp)
trap 'rm -f "$report"' EXIT
echo "== resolving for CPython $PY_VERSION (metadata only; torch's stack is the node's)"
# antlr4-python3-runtime 4.9.x exists only as source (pure Python): its py3-none-any wheel is built here
# first, so the binary-only resolution below finds it in the wheelhouse
ls "$WHEELHOUSE"/antlr4_python3_runtime-*.whl >/dev/null 2>&1 \
  || "$PYTHON" -m pip wheel -q --no-deps -w "$WHEELHOUSE" "antlr4-python3-runtime==4.9.3"
"$PYTHON" -m pip install -q --dry-run --ignore-installed --report "$report" "${tags[@]}" \
  --only-binary=:all: --find-links "$WHEELHOUSE" --target "$(mktemp -d)" "${REQS[@]}" 2>&1 \
  | grep -v "^WARNING: Target directory" || true
test -s "$report" || { echo "error: pip could not resolve the requirements above for Python $PY_VERSION"; exit 1; }
mapfile -t pins < <("$PYTHON" - "$report" "$SKIP_RE" <<'PY'
import json, re, sys
rep, skip = json.load(open(sys.argv[1])), re.compile(sys.argv[2])
for it in rep["install"]:
    name = it["metadata"]["name"].lower().replace("_", "-")
    if not skip.match(name):
        print(f"{name}=={it['metadata']['version']}")
PY
)
echo "== downloading ${#pins[@]} distributions into $WHEELHOUSE/"
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: "${tags[@]}" --find-links "$WHEELHOUSE" \
  -d "$WHEELHOUSE" "${pins[@]}"
ls "$WHEELHOUSE"/deepspeed-*.tar.gz >/dev/null 2>&1 \
  || "$PYTHON" -m pip download -q --no-deps --no-binary=:all: -d "$WHEELHOUSE" "$DEEPSPEED"
printf '%s\n' "${pins[@]}" "$(basename "$WHEELHOUSE"/deepspeed-*.tar.gz)" > "$WHEELHOUSE/PINS.txt"
# a rerun after an upgrade: wheels of versions no longer resolved go (two versions of one package waste room)
"$PYTHON" - "$WHEELHOUSE" <<'PY'
import pathlib, re, sys
wh = pathlib.Path(sys.argv[1])
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()  # noqa: E731
pins = {norm(l.split("==")[0]) + "==" + l.split("==")[1] for l in (wh / "PINS.txt").read_text().split() if "==" in l}
for f in wh.glob("*.whl"):
    name, version = f.name.split("-")[:2]
    if f"{norm(name)}=={version}" not in pins and norm(name) != "antlr4-python3-runtime":
        print(f"removing {f.name} (not resolved this time)")
        f.unlink()
PY

echo "== contents"
(cd "$WHEELHOUSE" && sha256sum -- *.whl *.tar.gz > SHA256SUMS)
while read -r sum f; do
  printf '%8.2f MiB  %s  %s\n' "$(awk "BEGIN { print $(stat -c %s "$WHEELHOUSE/$f") / 1048576 }")" "$sum" "$f"
done < "$WHEELHOUSE/SHA256SUMS"
bytes=$(du -cb "$WHEELHOUSE" | tail -1 | cut -f1)
mib=$(( (bytes + 1048575) / 1048576 ))
echo "total: $(ls "$WHEELHOUSE" | wc -l) files, $bytes bytes ($mib MiB; limit $LIMIT_MB MiB beside the" \
  "$tree_mib MiB tracked tree) in $WHEELHOUSE/"
if [ "$mib" -gt "$LIMIT_MB" ]; then
  echo "error: $WHEELHOUSE/ is $mib MiB, over LIMIT_MB=$LIMIT_MB (tree $tree_mib MiB; the node takes 64 MiB in all)"
  exit 1
fi
