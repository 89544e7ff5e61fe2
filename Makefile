# Every target is phony: nothing here is a file we keep up to date.
.PHONY: venv lint format test test-unit test-integration demo bench clean help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Narrow a test run: make test file=tests/unit/test_inputs.py
file ?=
PYTEST_ARGS ?=

help:
	@echo "make demo   - run the main job (the end-to-end workflow on this machine)"
	@echo "make test   - lint, then run every test (starts the services it needs)"
	@echo "make bench  - benchmarks, printing ratios against the peers"
	@echo "make venv   - create $(VENV) and install the project with its dev tools"

# The venv is rebuilt when pyproject.toml changes.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/pytest $(if $(file),$(file),tests) $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: venv
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

demo: venv
	$(BIN)/python -m runner.demo

bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
