# geocluster: `make demo` and `make test` work from nothing on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WORKSPACE ?= workspace
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install sysdeps demo demo-build test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Byte-code compiled at install, as pip does for installed packages: an editable install
# under PYTHONDONTWRITEBYTECODE would otherwise compile every module in every process
# (0.3-0.4 s of each CLI call). Only stale files are compiled again.
install: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 geocluster api >/dev/null

## demo: build the demo workspace (Mexico + Helsinki) and serve API + map on http://$(HOST):$(PORT)
demo: install
	$(BIN)/geocluster demo --workspace $(WORKSPACE) --host $(HOST) --port $(PORT)

## demo-build: build the demo workspace and print its summary, without serving
demo-build: install
	$(BIN)/geocluster demo --workspace $(WORKSPACE) --no-serve

# System (Debian) packages the tests need, each with the file that proves it is installed:
# chromium drives the browser test, poppler-utils' pdftotext reads PDF output,
# postgresql-15 + postgresql-15-postgis-3 host the PostGIS store tests and baseline.
SYSDEPS := chromium:/usr/bin/chromium \
           fonts-dejavu-core:/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf \
           gdal-bin:/usr/bin/ogr2ogr \
           poppler-utils:/usr/bin/pdftotext \
           postgresql-15:/usr/lib/postgresql/15/bin/postgres \
           postgresql-15-postgis-3:/usr/share/postgresql/15/extension/postgis.control
SYSDEPS_PKGS = $(foreach d,$(SYSDEPS),$(firstword $(subst :, ,$(d))))
# recursive (=) so that nothing is looked up unless sysdeps runs
SYSDEPS_MISSING = $(strip $(foreach d,$(SYSDEPS),\
    $(if $(wildcard $(lastword $(subst :, ,$(d)))),,$(firstword $(subst :, ,$(d))))))
CAN_APT = $(and $(filter 0,$(shell id -u)),$(shell command -v apt-get))

## sysdeps: install the Debian packages above that are missing (as root, with apt-get);
## otherwise stop at once with one line saying what to install. Idempotent.
sysdeps:
	$(if $(SYSDEPS_MISSING),$(if $(CAN_APT),,$(error make test needs the Debian packages $(SYSDEPS_MISSING); install them as root: apt-get install -y $(SYSDEPS_MISSING))))
	@missing="$(SYSDEPS_MISSING)"; [ -z "$$missing" ] || { \
	    echo "sysdeps: installing $$missing (needed: $(SYSDEPS_PKGS))"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; }

## test: system packages (chromium, poppler-utils, postgresql-15, postgis), lint, then every
## test in 2 pytest-xdist workers (the tests use free ports and tmp_path only)
PYTEST_WORKERS ?= 2
test: sysdeps install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .

## bench: the speed/memory benchmarks (minutes; prints ratios against baselines)
bench: sysdeps install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/clusters.py
	$(BIN)/python bench/tiles.py
	$(BIN)/python bench/e2e.py
	$(BIN)/python bench/dask.py

clean:
	rm -rf $(VENV) $(WORKSPACE) .pytest_cache .ruff_cache artifacts
