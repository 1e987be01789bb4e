# Two commands matter: `make run` and `make test`. Both create .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: run test lint fmt bench install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -q -e .
	@touch $@

# torch first, pinned: the local CPU wheel. Anything that pulls torch later sees it satisfied.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev]"
	@touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

run: $(VENV)/.installed
	$(BIN)/avatarbot serve

test: $(VENV)/.installed-dev
	bash scripts/install-test-system-deps.sh
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check avatarbot tests
	$(BIN)/ruff format --check avatarbot tests

fmt: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix avatarbot tests
	$(BIN)/ruff format avatarbot tests

bench: $(VENV)/.installed
	$(BIN)/avatarbot bench pipeline

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
