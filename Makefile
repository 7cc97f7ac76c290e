# Chat Studio. `make run` serves the embedded defaults; `make test` runs the whole suite.
# Every install comes from uv.lock (the whole dependency tree, hashed); `make lock` refreshes it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
HOST ?= 127.0.0.1
PORT ?= 8000
export LITELLM_LOCAL_MODEL_COST_MAP := True
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Write every dependency's bytecode at install: a start then reads it, even where
# PYTHONDONTWRITEBYTECODE is set (the container, some CI hosts), instead of compiling them all
# again in every process (litellm's import alone: ~13 s of CPU instead of ~7 on a slow host).
export UV_COMPILE_BYTECODE := 1

.PHONY: run test lint lock lock-check bench install dev clean migration

$(UV):
	@echo "==> Creating $(VENV) with $$($(PYTHON) --version)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> Installing uv $(UV_VERSION), which installs exactly what uv.lock lists"
	$(PY) -m pip install --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.installed: uv.lock pyproject.toml | $(UV)
	@echo "==> Installing the locked dependencies (first time: a minute or two, ~550 MB)"
	$(UV) sync --frozen --inexact
	touch $@

$(VENV)/.installed-dev: uv.lock pyproject.toml | $(UV)
	@echo "==> Installing the locked dependencies with the dev extras"
	$(UV) sync --frozen --inexact --extra dev
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

run: $(VENV)/.installed
	@echo "==> Serving on http://$(HOST):$(PORT)/ (Ctrl-C stops)"
	$(PY) main.py serve --host $(HOST) --port $(PORT)

# uv.lock must describe pyproject.toml: a dependency changed in one and not the other fails here.
lock-check: | $(UV)
	@$(UV) lock --check --offline >/dev/null 2>&1 || $(UV) lock --check || { \
		echo "uv.lock does not match pyproject.toml: run 'make lock' and commit uv.lock"; exit 1; }

# Refresh the lock on purpose: newest versions within pyproject.toml's ranges.
lock: | $(UV)
	$(UV) lock --upgrade

lint: lock-check $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy builders storage runtime studio adapters main.py
	$(VENV)/bin/hadolint Dockerfile

test: lint
	$(PY) -m pytest

bench: $(VENV)/.installed-dev
	$(PY) -m bench

migration: $(VENV)/.installed-dev  # make migration m="what changed"
	$(PY) -m storage.migrate "$(m)"
	$(VENV)/bin/ruff format -q storage/migrations

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
