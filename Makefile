# Two commands for a newcomer:  `make run`  and  `make test`.
# Both create the virtual environment in .venv (and install Chromium for the browser tests) first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SUDO   := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
REPS   ?= 3
RUNS   ?= runs

.PHONY: run test bench lint audit browser-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,dev]"
	touch $(STAMP)

# Chromium and ChromeDriver for the end-to-end dashboard tests (Debian packages).
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver; \
	fi

## run: simulate the shipped scenarios and serve the dashboard on http://127.0.0.1:8050
run: $(STAMP)
	$(BIN)/cxsim run $(wildcard scenarios/*.yaml) --baseline baseline --reps $(REPS) --out $(RUNS)
	$(BIN)/cxsim dashboard --runs $(RUNS)

## test: the whole test suite (lint and types, unit, statistical validation, CLI, browser)
test: $(STAMP) browser-deps lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_queue.py
	$(BIN)/python benchmarks/bench_engine.py

lint: $(STAMP)
	$(BIN)/ruff check sim calibration dashboard tests benchmarks .ci
	$(BIN)/mypy

## audit: known vulnerabilities in the installed dependencies (pip-audit, PyPI's database).
## Offline it says it checked nothing and passes; online (CI) a known vulnerability fails.
## Not part of `make test`.
audit: $(STAMP)
	$(BIN)/python .ci/audit.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
