# Chat Studio. `make run` serves the embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: run test lint bench install dev clean migration

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e ".[dev]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

run: $(VENV)/.installed
	$(PY) main.py serve

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy builders storage runtime studio adapters main.py

test: lint
	$(PY) -m pytest

bench: $(VENV)/.installed-dev
	$(PY) -m bench

migration: $(VENV)/.installed-dev  # make migration m="what changed"
	$(PY) -m storage.migrate "$(m)"
	$(VENV)/bin/ruff format -q storage/migrations

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
