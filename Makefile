# Two commands for a fresh machine:  `make run` (main job) and `make test` (whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
# Prebuilt torch-scatter / torch-sparse wheels: ../shared/wheels on the project's machines,
# otherwise PyG's wheel index for the installed torch (pip then builds from source if neither fits).
WHEELS ?= $(firstword $(wildcard $(abspath ../shared/wheels)))
export STGNN_DATA_DIR ?= $(firstword $(wildcard $(abspath ../shared/data)))
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
PRESET ?= fast

.PHONY: run test install clean-venv bench

$(VENV)/.installed: setup.cfg pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# torch first: with no torch present, a plain `torch` requirement would pull a multi-GB CUDA build.
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	@links="$(WHEELS)"; \
	if [ -z "$$links" ]; then \
	  tv=$$($(PY) -c "import torch; print(torch.__version__.split('+')[0])"); \
	  tc=$$($(PY) -c "import torch; print('cu'+torch.version.cuda.replace('.','') if torch.version.cuda else 'cpu')"); \
	  links="https://data.pyg.org/whl/torch-$$tv+$$tc.html"; \
	  echo "No local torch-scatter/torch-sparse wheels; using $$links."; \
	  echo "If no wheel there matches, pip builds them from source: this takes 15-30 minutes."; \
	fi; \
	before=$$($(PY) -c "import torch; print(torch.__version__)"); \
	PIP_FIND_LINKS="$$links" $(PY) -m pip install -q -e ".[dev,serve]" && \
	after=$$($(PY) -c "import torch; print(torch.__version__)") && \
	if [ "$$before" != "$$after" ]; then \
	  echo "ERROR: installing stgnn replaced torch $$before with $$after; pin torch and retry." >&2; exit 1; \
	fi
	$(PY) -m stgnn.utils.env --check
	@touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/stgnn reproduce nyc --preset $(PRESET)

test: install
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/data_prepare.py

clean-venv:
	rm -rf $(VENV)
