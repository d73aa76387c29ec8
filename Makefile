# geocluster: `make demo` and `make test` work from nothing on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WORKSPACE ?= workspace
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo demo-build test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## demo: build the demo workspace (Mexico + Helsinki) and serve API + map on http://$(HOST):$(PORT)
demo: install
	$(BIN)/geocluster demo --workspace $(WORKSPACE) --host $(HOST) --port $(PORT)

## demo-build: build the demo workspace and print its summary, without serving
demo-build: install
	$(BIN)/geocluster demo --workspace $(WORKSPACE) --no-serve

## test: lint, then every test (browser tests included: they need /usr/bin/chromium)
test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .

## bench: the speed/memory benchmarks (minutes; prints ratios against baselines)
bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/clusters.py
	$(BIN)/python bench/tiles.py

clean:
	rm -rf $(VENV) $(WORKSPACE) .pytest_cache .ruff_cache artifacts
