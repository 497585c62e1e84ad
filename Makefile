# fakeproof: one Makefile for setup, tests and the end-to-end demo.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# test processes (pytest-xdist; one module stays in one process, so its module fixtures are built once);
# `make test PYTEST_WORKERS=0` runs the suite in this process
PYTEST_WORKERS ?= 2
# The CPU build of torch lies in a local wheel folder on machines of this kind; elsewhere pip's index is used.
TORCH_SPEC ?= torch==2.13.0
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
LIBSSL_DIR := $(CURDIR)/.cache/libssl11
export LD_LIBRARY_PATH := $(LIBSSL_DIR)/root/usr/lib/x86_64-linux-gnu:$(LD_LIBRARY_PATH)
export FIFTYONE_DO_NOT_TRACK := true
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install test demo bench clean-venv lint

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile scripts/fetch_libssl11.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade uv
	# torch first, from the local CPU wheel: a bare torch requirement would pull a multi-GB CUDA build
	$(BIN)/uv pip install --python $(BIN)/python $(FIND_LINKS) "$(TORCH_SPEC)"
	$(BIN)/uv pip install --python $(BIN)/python $(FIND_LINKS) "$(TORCH_SPEC)" -e ".[test]"
	bash scripts/fetch_libssl11.sh $(LIBSSL_DIR)
	$(BIN)/fakeproof models prepare
	touch $@

lint: install
	$(BIN)/ruff check .

test: install lint
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

demo: install
	$(BIN)/fakeproof demo --out demo_out

bench: install
	# the peer library the verification benchmark compares with (never a fakeproof dependency)
	$(BIN)/uv pip install --python $(BIN)/python --no-deps "face_recognition==1.3.0"
	for b in benchmarks/*.py; do case $$b in */_*) continue;; esac; $(BIN)/python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
