# convstore tasks. `make help` lists them. The virtual environment is built on first use.
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	touch $@

.PHONY: help install run demo check lint format typecheck test fuzz bench vendor web-browser

help: ## List the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(BIN)/.installed ## Create .venv and install convstore with its dev tools

run: install ## Serve the API on the embedded SQLite default (./convstore.db) at 127.0.0.1:8000
	$(BIN)/convstore serve

demo: install ## Store a short chat turn in ./convstore.db with the library and print it
	$(BIN)/convstore demo

check: lint typecheck test ## Everything CI runs: format check, lint, type check, tests

lint: install ## ruff format --check and ruff check
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench

format: install ## Reformat and fix what ruff can
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

typecheck: install ## mypy --strict on src/
	$(BIN)/mypy

test: install ## pytest on SQLite and PostgreSQL
	$(BIN)/pytest

fuzz: install ## The fuzz and model tests at length (>= 200 examples per operation), both databases
	CONVSTORE_FUZZ_PROFILE=long $(BIN)/pytest tests/fuzz -p no:randomly -q --durations=10

# The benchmarks run in a virtual environment of their own: the peers' pins (older asyncpg,
# aiosqlite, websockets, uuid-utils) must not move the development environment's versions.
BENCH_VENV ?= .venv-bench
BENCH_BIN := $(BENCH_VENV)/bin
BENCH_ARGS ?= --sizes 100k

$(BENCH_BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_BIN)/python -m pip install --quiet --upgrade pip
	$(BENCH_BIN)/python -m pip install --quiet -e '.[all,dev,bench]'
	touch $@

bench: $(BENCH_BIN)/.installed ## convstore vs peers and raw bounds, SQLite and PostgreSQL (docs/performance.md); BENCH_ARGS="--sizes 10k,1M"
	sh bench/setup.sh
	$(BENCH_BIN)/python -m bench $(BENCH_ARGS)

web-browser: ## Install Debian's chromium for the page's browser tests (root; apt-get)
	sh scripts/install-chromium.sh

vendor: ## Re-fetch the web page's vendored JavaScript (Preact+htm, markdown-it, Swagger UI, ReDoc) from npm
	sh scripts/vendor-web.sh
