# One entry point for people and CI. `make demo` and `make test` are the
# README's quick start; both set up what they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
CHECKOV_VENV := .venv-checkov
LOWEST_VENV := .venv-lowest

.PHONY: demo test test-lowest lint types unit infra-check bench clean setup

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(VENV)/bin/python requirements.txt requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

node_modules/.bin/azurite: package.json
	npm install --no-audit --no-fund --silent
	touch node_modules/.bin/azurite

setup: $(STAMP) node_modules/.bin/azurite

demo: $(STAMP)
	$(PY) -m remediation demo

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

types: $(STAMP)
	$(PY) -m mypy

unit: setup
	$(PY) -m pytest

$(CHECKOV_VENV)/bin/checkov:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet "checkov>=3.2,<4"

infra-check: $(CHECKOV_VENV)/bin/checkov
	$(CHECKOV_VENV)/bin/checkov --skip-download --quiet --compact -d infra --framework bicep --config-file infra/.checkov.yaml

test: lint types unit infra-check

# The tests again with every runtime dependency at the lowest version requirements.txt
# allows (scripts/lowest_constraints.py turns each floor into a pin), in a venv of its own.
$(LOWEST_VENV)/.installed: requirements.txt requirements-dev.txt scripts/lowest_constraints.py
	rm -rf $(LOWEST_VENV)
	$(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PYTHON) scripts/lowest_constraints.py requirements.txt > $(LOWEST_VENV)/constraints.txt
	$(LOWEST_VENV)/bin/python -m pip install --quiet -r requirements-dev.txt -c $(LOWEST_VENV)/constraints.txt
	touch $@

test-lowest: $(LOWEST_VENV)/.installed node_modules/.bin/azurite
	@echo "runtime dependencies at their floors:"; $(LOWEST_VENV)/bin/python -m pip list --format=freeze | grep -i -f $(LOWEST_VENV)/constraints.txt || true
	$(LOWEST_VENV)/bin/python -m pytest

bench: setup
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(LOWEST_VENV) node_modules .mypy_cache .ruff_cache .pytest_cache
