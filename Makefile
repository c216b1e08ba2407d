# stocktrack developer commands. `make run` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PACKAGES := libs/common libs/devtools services/fetcher services/writer services/api services/streamer \
            services/recommender services/janitor services/alerts
EDITABLES := $(foreach p,$(wildcard $(addsuffix /pyproject.toml,$(PACKAGES))),-e $(dir $(p)))
STAMP := $(VENV)/.installed

.PHONY: install run test lint fmt check bench clean

$(STAMP): $(wildcard constraints.txt requirements-dev.txt */*/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(if $(wildcard constraints.txt),-c constraints.txt) -r requirements-dev.txt $(EDITABLES)
	touch $(STAMP)

install: $(STAMP)  ## create the virtualenv and install every package in editable mode

run: install  ## the whole stack on the simulated market (no API key needed)
	$(PY) -m stocktrack_devtools.stack

test: install deploy-tools  ## the test suite against real Redis and PostgreSQL (found or started)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

check: lint test

bench: install
	$(PY) bench/ingest.py

include deploy/Makefile.images.mk

clean:
	rm -rf build $(VENV) .stack .pytest_cache .mypy_cache .ruff_cache
