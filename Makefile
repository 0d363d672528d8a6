# Every target bootstraps .venv itself: a fresh clone needs only python3 and the registries.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
ARGS ?=

.PHONY: venv demo test lint typecheck unit integration bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/snowflake-processor demo $(ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest $(ARGS)

unit: venv
	$(BIN)/pytest tests/unit $(ARGS)

bench: venv
	$(BIN)/python benchmarks/run.py $(ARGS)

clean:
	rm -rf .demo .mypy_cache .ruff_cache .pytest_cache
