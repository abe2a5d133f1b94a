# Two entry points: `make demo` and `make test`. Both build .venv from pyproject.toml first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench docs clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/chargepoint demo

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -n auto

bench: $(STAMP)
	$(BIN)/python benchmarks/meter_bus.py

# the configuration reference and the editors' JSON schema, from chargepoint/config.py
docs: $(STAMP)
	$(BIN)/chargepoint config-reference --format markdown --output docs/configuration.md
	$(BIN)/chargepoint config-reference --format json-schema --output docs/chargepoint.schema.json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
