# vid3d: `make demo` (install + embedded dataset + train + sample + eval + table), `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
ARCH := $(shell uname -m)
# A torch/torchvision pair known to import together. On x86_64 pip takes 2.14.1/0.29.1 (a CUDA build that
# also runs on the CPU); on aarch64 2.9.1/0.24.1 (CPU build). Override with TORCH_SPEC="..." to choose.
ifeq ($(ARCH),aarch64)
TORCH_SPEC ?= torch==2.9.1 torchvision==0.24.1
else
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
endif
# VENV_FLAGS=--system-site-packages reuses a system (CUDA) torch instead of installing one.
VENV_FLAGS ?=

.PHONY: install demo test lint clean-demo gpu-check wheelhouse gpu-offline-rehearsal studio studio-install

# Two stamps: what `make demo` runs (torch, vid3d and its extras), then what only tests and other commands
# need (DUSt3R's and RoMa's code, DeepSpeed's build): `make demo` on a fresh clone skips the second.
$(VENV)/.installed-core: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(PIP) install -q --upgrade pip
	@# Keep a torch that already imports together with torchvision (a user's own CUDA build); else install the pair.
	$(PY) -c "import torch, torchvision" 2>/dev/null || $(PIP) install -q $(TORCH_SPEC)
	@# sweep: the Optuna sweeper (hparams_search=optuna), a few small pure-Python packages
	$(PIP) install -q -e ".[dev,eval,sweep]"
	touch $@

$(VENV)/.installed: $(VENV)/.installed-core
	@# DUSt3R's and RoMa's code without their pinned dependencies (which would downgrade numpy/pillow and pull
	@# GUI packages); what they need comes from the eval extra. No weights are downloaded.
	$(PIP) install -q --no-deps "mini-dust3r==0.1.2" romatch
	@# DeepSpeed (trainer=deepspeed_zero2; its strategy is built in a test on the CPU, it trains on CUDA only).
	@# It is an sdist whose setup imports torch: build it against the installed torch, without its CUDA ops.
	DS_BUILD_OPS=0 $(PIP) install -q --no-build-isolation "deepspeed>=0.19.8"
	touch $@

install: $(VENV)/.installed

# The studio's extra (gradio, ~170 MB with its dependencies), installed only by `make studio`.
$(VENV)/.studio-installed: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e ".[studio]"
	touch $@

studio-install: $(VENV)/.studio-installed

# The local web app on http://127.0.0.1:7860 (STUDIO_ARGS="--model <ckpt> --port 0 ..."; python -m vid3d.studio -h)
studio: studio-install
	$(PY) -m vid3d.studio $(STUDIO_ARGS)

demo: $(VENV)/.installed-core
	$(PY) -m vid3d.demo

# The default suite on TEST_WORKERS pytest-xdist workers (default 2; TEST_WORKERS=0 runs in one process)
TEST_WORKERS ?= 2
test: install
	$(PY) -m ruff check vid3d tests benchmarks train.py sample.py eval.py
	$(PY) -m pytest -q -m "not slow" -n $(TEST_WORKERS)

# The prepared GPU check (benchmarks/gpu_check.py): ~8 minutes on one GPU; table + JSON in benchmarks/results/.
gpu-check: install
	$(PY) -m benchmarks.gpu_check

# An offline GPU node (docs/cluster.md): the wheels it installs from (PY_VERSION=3.12 by default), made here;
# there, `bash benchmarks/gpu/run.sh` needs no install step and no index.
wheelhouse: install
	PYTHON=$(PY) bash benchmarks/gpu/make_wheelhouse.sh

# CI's rehearsal of that node on this machine's CPU (what CI_GPU_OFFLINE=1 bash .ci/run adds)
gpu-offline-rehearsal: install
	SRC_PYTHON=$(PY) bash benchmarks/gpu/ci_offline.sh

lint: install
	$(PY) -m ruff check vid3d tests benchmarks train.py sample.py eval.py

clean-demo:
	rm -rf outputs/demo data_cache/synthetic_*
