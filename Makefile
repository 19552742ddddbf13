# dlbricks-gen: one command to try it, one to test it.
#   make demo      set up .venv, write the example models, compile, run the suite, measure, estimate
#   make test      set up .venv and run the tests (ruff, mypy, pytest)
#   make lint      ruff and mypy only
#   make generate  refresh generated/ (the committed example suite)

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
DEMO   ?= demo
H      ?= 1
THREADS ?= 1

.PHONY: setup demo test lint generate clean help

help:
	@sed -n 's/^#   //p' Makefile

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/dlbricks-gen zoo $(DEMO)/models
	$(BIN)/dlbricks-gen compile $(DEMO)/models -o $(DEMO)/suite -H $(H)
	$(MAKE) -C $(DEMO)/suite run THREADS=$(THREADS) PYTHON=$(abspath $(BIN))/python
	$(BIN)/dlbricks-gen e2e $(DEMO)/models -o $(DEMO)/e2e.json --threads $(THREADS)
	$(BIN)/dlbricks-gen estimate --plan $(DEMO)/suite.plan.json --results $(DEMO)/suite/results --e2e $(DEMO)/e2e.json

test: setup lint
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check dlbricks_gen tests benchmarks
	$(BIN)/mypy

generate: setup
	$(BIN)/python -m dlbricks_gen.workflows.examples generated examples/generated.plan.json

clean:
	rm -rf $(DEMO) .pytest_cache
