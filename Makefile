# dlbricks-gen: one command to try it, one to test it.
#   make demo      set up .venv (the plain install: no TVM, no test tools), write the example
#                  models, compile, run the suite, measure, estimate; QUICK=1: a minute, smoke-test timings
#   make test      set up .venv and run the tests (ruff, mypy, pytest)
#   make lint      ruff and mypy only
#   make generate  refresh generated/ (the committed example suite)

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
DEMO   ?= demo
H      ?= 1
THREADS ?= 1
QUICK  ?=
QUICK_FLAG = $(if $(filter-out 0 no false,$(QUICK)),--quick)

.PHONY: setup demo test lint generate clean help

help:
	@sed -n 's/^#   //p' Makefile

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The demo needs the package's own dependencies only (not TVM, xgboost or the test tools).
$(VENV)/.installed-demo: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

setup: $(VENV)/.installed

demo: $(VENV)/.installed-demo
	$(BIN)/dlbricks-gen zoo $(DEMO)/models
	$(BIN)/dlbricks-gen compile $(DEMO)/models -o $(DEMO)/suite -H $(H)
	$(MAKE) -C $(DEMO)/suite run THREADS=$(THREADS) QUICK=$(QUICK) PYTHON=$(abspath $(BIN))/python
	$(BIN)/dlbricks-gen e2e $(DEMO)/models -o $(DEMO)/e2e.json --threads $(THREADS) $(QUICK_FLAG)
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
